package daemon

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	encryptionv1 "github.com/encryptiond/encryptiond/gen/atlas/encryption/v1"
	"github.com/encryptiond/encryptiond/server/failure"
)

// restWatch opens a REST watch and returns its first line, decoded, and
// the HTTP status; the stream is closed when the test ends.
func restWatch(t *testing.T, ctx context.Context, client *http.Client, url string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	t.Cleanup(func() { res.Body.Close() })
	sc := bufio.NewScanner(res.Body)
	if !sc.Scan() {
		return res.StatusCode, nil
	}
	var line map[string]any
	if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
		t.Fatalf("line %q: %v", sc.Text(), err)
	}
	return res.StatusCode, line
}

// TestPrivateEndpointsUnderMutualTLS checks that the watch, a stream, gets
// the decisions of unary calls over gRPC and over REST, whose gateway
// passes the HTTP client's identity on its streams too, and that creates
// are audited with their caller.
func TestPrivateEndpointsUnderMutualTLS(t *testing.T) {
	t.Parallel()
	const ops, reader, nobody = "spiffe://example.org/ops", "spiffe://example.org/reader", "spiffe://example.org/nobody"
	policy := "callers:\n  - identity: " + ops + "\n    write: [\"" + testGroup + "\"]\n  - identity: " + reader + "\n    read: [\"*\"]\n"
	d, ca, roots := startMutualTLS(t, policy)
	client := func(id string) encryptionv1.EncryptionServiceClient {
		cfg := &tls.Config{RootCAs: roots}
		if id != "" {
			cfg.Certificates = []tls.Certificate{ca.clientCert(t, id)}
		}
		conn, err := grpc.NewClient(d.addrs.GRPC.String(), grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return encryptionv1.NewEncryptionServiceClient(conn)
	}
	httpClient := func(id string) *http.Client {
		cfg := &tls.Config{RootCAs: roots}
		if id != "" {
			cfg.Certificates = []tls.Certificate{ca.clientCert(t, id)}
		}
		return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}
	}
	ctx := t.Context()

	ep, err := client(ops).CreatePrivateEndpoint(ctx, &encryptionv1.CreatePrivateEndpointRequest{
		GroupId: testGroup, CloudProvider: encryptionv1.CloudProvider_AZURE, PrivateEndpoint: &encryptionv1.PrivateEndpoint{RegionName: "EUROPE_WEST"},
	})
	if err != nil {
		t.Fatalf("CreatePrivateEndpoint by ops = %v", err)
	}
	_, err = client(reader).CreatePrivateEndpoint(ctx, &encryptionv1.CreatePrivateEndpointRequest{
		GroupId: testGroup, CloudProvider: encryptionv1.CloudProvider_AZURE, PrivateEndpoint: &encryptionv1.PrivateEndpoint{RegionName: "EUROPE_WEST"},
	})
	if status.Code(err) != codes.PermissionDenied {
		t.Errorf("CreatePrivateEndpoint by a reader = %v, want PermissionDenied: a create is a write", err)
	}
	var audited []string
	for _, r := range d.log.auditRecords(t) {
		audited = append(audited, r["caller"].(string)+" "+r["action"].(string)+" "+r["code"].(string)+" "+r["outcome"].(string))
	}
	if want := []string{ops + " create_private_endpoint OK applied", reader + " create_private_endpoint PermissionDenied refused"}; strings.Join(audited, "; ") != strings.Join(want, "; ") {
		t.Errorf("audit records %q, want %q", audited, want)
	}

	watchURL := "https://" + d.addrs.HTTP.String() + "/v1/groups/" + testGroup + "/encryptionAtRest/AZURE/privateEndpoints/" + ep.GetId() + ":watch"
	tests := []struct {
		name     string
		identity string
		wantCode codes.Code
		wantHTTP int
	}{
		{"a reader may watch", reader, codes.OK, http.StatusOK},
		{"a writer may watch", ops, codes.OK, http.StatusOK},
		{"the policy refuses a stranger", nobody, codes.PermissionDenied, http.StatusForbidden},
		{"no certificate", "", codes.Unauthenticated, http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			stream, err := client(tt.identity).WatchPrivateEndpoint(ctx, &encryptionv1.WatchPrivateEndpointRequest{
				GroupId: testGroup, CloudProvider: encryptionv1.CloudProvider_AZURE, EndpointId: ep.GetId(),
			})
			if err == nil {
				var first *encryptionv1.PrivateEndpoint
				first, err = stream.Recv()
				if err == nil && first.GetId() != ep.GetId() {
					t.Errorf("first message %v, want the endpoint", first)
				}
			}
			if status.Code(err) != tt.wantCode {
				t.Errorf("gRPC watch = %v, want %v", err, tt.wantCode)
			}
			code, line := restWatch(t, ctx, httpClient(tt.identity), watchURL)
			if code != tt.wantHTTP {
				t.Errorf("REST watch = %d %v, want %d", code, line, tt.wantHTTP)
			}
			if tt.wantCode == codes.OK {
				if result, _ := line["result"].(map[string]any); result["id"] != ep.GetId() {
					t.Errorf("REST watch's first line %v, want the endpoint", line)
				}
			}
		})
	}
}

// TestShutdownEndsPrivateEndpointWatches checks that watches, which may
// wait for hours, end when shutdown begins, over gRPC and REST, with
// UNAVAILABLE: the shutdown never needs its timeout for them.
func TestShutdownEndsPrivateEndpointWatches(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, Config{Dev: true, LogFormat: "json", ShutdownTimeout: 30 * time.Second})
	c := encryptionv1.NewEncryptionServiceClient(d.grpcConn(t))
	ep, err := c.CreatePrivateEndpoint(t.Context(), &encryptionv1.CreatePrivateEndpointRequest{
		GroupId: testGroup, CloudProvider: encryptionv1.CloudProvider_AZURE, PrivateEndpoint: &encryptionv1.PrivateEndpoint{RegionName: "UK_SOUTH"},
	})
	if err != nil {
		t.Fatal(err)
	}
	// Nobody approves it: it would wait in PENDING_ACCEPTANCE forever.
	stream, err := c.WatchPrivateEndpoint(t.Context(), &encryptionv1.WatchPrivateEndpointRequest{GroupId: testGroup, CloudProvider: encryptionv1.CloudProvider_AZURE, EndpointId: ep.GetId()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil {
		t.Fatalf("first message: %v", err)
	}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, d.url("/v1/groups/"+testGroup+"/encryptionAtRest/AZURE/privateEndpoints/"+ep.GetId()+":watch"), nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	lines := bufio.NewScanner(res.Body)
	if !lines.Scan() || !strings.Contains(lines.Text(), `"result"`) {
		t.Fatalf("REST watch's first line %q, want a result", lines.Text())
	}

	stopped := make(chan error, 1)
	go func() { stopped <- d.stop() }()
	var grpcErr error
	for grpcErr == nil {
		_, grpcErr = stream.Recv()
	}
	if st := status.Convert(grpcErr); st.Code() != codes.Unavailable || failure.Parse(st).Info.Reason != failure.ReasonShuttingDown || !strings.Contains(st.Message(), "watch again") {
		t.Errorf("gRPC watch ended with %v, want UNAVAILABLE SHUTTING_DOWN, asking to watch again", grpcErr)
	}
	var last string
	for lines.Scan() {
		last = lines.Text()
	}
	if !strings.Contains(last, `"error"`) || !strings.Contains(last, `"UNAVAILABLE"`) || !strings.Contains(last, "SHUTTING_DOWN") {
		t.Errorf("REST watch's last line %q, want the UNAVAILABLE error", last)
	}
	if err := <-stopped; err != nil {
		t.Errorf("Serve() = %v, want nil", err)
	}
	for _, r := range d.log.records(t) {
		if r["msg"] == "shutdown timeout: answering the calls still in flight and closing their connections" {
			t.Errorf("the shutdown waited for its timeout: the watches held it")
		}
	}
}
