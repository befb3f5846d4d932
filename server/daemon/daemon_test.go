package daemon

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/descriptorpb"

	"github.com/encryptiond/encryptiond/atlas/atlastest"
	encryptionv1 "github.com/encryptiond/encryptiond/gen/atlas/encryption/v1"
)

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a logger.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// records decodes the JSON log lines written so far.
func (b *syncBuffer) records(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(b.String()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var rec map[string]any
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("log line %q is not JSON: %v", sc.Text(), err)
		}
		out = append(out, rec)
	}
	return out
}

// auditRecords returns the audit records logged so far.
func (b *syncBuffer) auditRecords(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, rec := range b.records(t) {
		if rec["audit"] == true {
			out = append(out, rec)
		}
	}
	return out
}

// daemon is a Run in progress, for tests.
type daemon struct {
	addrs  Addrs
	log    *syncBuffer
	stdout *syncBuffer
	stop   func() error // cancels Run and returns its error
}

// startDaemon serves cfg on 127.0.0.1 listeners of its own until the test
// ends or stop is called.
func startDaemon(t *testing.T, cfg Config) *daemon {
	t.Helper()
	if cfg.AtlasAPIVersion == "" {
		cfg.AtlasAPIVersion = "v2"
	}
	if cfg.ShutdownTimeout == 0 {
		cfg.ShutdownTimeout = 5 * time.Second
	}
	d := &daemon{log: &syncBuffer{}, stdout: &syncBuffer{}}
	logger := slog.New(slog.NewJSONHandler(d.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	listen := func() net.Listener {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		return l
	}
	grpcLis, httpLis := listen(), listen()
	ready := make(chan Addrs, 1)
	cfg.OnReady = func(a Addrs) { ready <- a }
	built, err := New(cfg, logger, d.stdout)
	if err != nil {
		t.Fatalf("New() = %v; log:\n%s", err, d.log)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- built.Serve(ctx, Listeners{GRPC: grpcLis, HTTP: httpLis}) }()
	var once sync.Once
	var runErr error
	d.stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case runErr = <-done:
			case <-time.After(30 * time.Second):
				t.Errorf("Serve did not return 30 s after its context was cancelled")
			}
		})
		return runErr
	}
	t.Cleanup(func() { d.stop() })
	select {
	case d.addrs = <-ready:
	case err := <-done:
		t.Fatalf("Serve() = %v before it was ready; log:\n%s", err, d.log)
	case <-time.After(30 * time.Second):
		t.Fatalf("Serve() not ready after 30 s; log:\n%s", d.log)
	}
	return d
}

func (d *daemon) url(path string) string { return "http://" + d.addrs.HTTP.String() + path }

func (d *daemon) grpcConn(t *testing.T) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(d.addrs.GRPC.String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("grpc.NewClient: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// httpDo sends a request and returns the status and body.
func httpDo(t *testing.T, client *http.Client, method, url, body string) (int, string) {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, url, r)
	if err != nil {
		t.Fatalf("NewRequest: %v", err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", method, url, err)
	}
	return resp.StatusCode, string(b)
}

const testGroup = "5f1a2b3c4d5e6f7a8b9c0d1e"

func awsEnable() *encryptionv1.AwsKms {
	return &encryptionv1.AwsKms{
		Enabled:             proto.Bool(true),
		CustomerMasterKeyId: proto.String("arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"),
		Region:              proto.String("US_EAST_1"),
		AccessKeyId:         proto.String("AKIAIOSFODNN7EXAMPLE"),
		SecretAccessKey:     proto.String("wJalrXUtnFEMI-inprocess-s3cr3t"),
	}
}

func awsUpdate(groupID string, aws *encryptionv1.AwsKms, validateOnly bool) *encryptionv1.UpdateEncryptionAtRestRequest {
	return &encryptionv1.UpdateEncryptionAtRestRequest{
		GroupId:      groupID,
		Config:       &encryptionv1.ProviderConfig{Provider: &encryptionv1.ProviderConfig_AwsKms{AwsKms: aws}},
		ValidateOnly: validateOnly,
	}
}

func TestRunDev(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, Config{Dev: true, LogFormat: "json"})
	conn := d.grpcConn(t)
	ctx := t.Context()

	t.Run("banner", func(t *testing.T) {
		out := d.stdout.String()
		for _, w := range []string{"EMULATOR", "GetEncryptionAtRest", "UpdateEncryptionAtRest", `"enabled": false`, "-X PATCH", SampleGroupID, hostPort(d.addrs.GRPC)} {
			if !strings.Contains(out, w) {
				t.Errorf("banner lacks %q:\n%s", w, out)
			}
		}
	})

	t.Run("health", func(t *testing.T) {
		hc := healthpb.NewHealthClient(conn)
		for _, svc := range []string{"", encryptionv1.EncryptionService_ServiceDesc.ServiceName} {
			resp, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: svc})
			if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
				t.Errorf("Check(%q) = %v, %v; want SERVING", svc, resp.GetStatus(), err)
			}
		}
	})

	t.Run("reflection", func(t *testing.T) {
		stream, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
		if err != nil {
			t.Fatalf("ServerReflectionInfo: %v", err)
		}
		defer stream.CloseSend()
		ask := func(req *reflectionpb.ServerReflectionRequest) *reflectionpb.ServerReflectionResponse {
			t.Helper()
			if err := stream.Send(req); err != nil {
				t.Fatalf("Send: %v", err)
			}
			resp, err := stream.Recv()
			if err != nil {
				t.Fatalf("Recv: %v", err)
			}
			return resp
		}
		list := ask(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}})
		var names []string
		for _, s := range list.GetListServicesResponse().GetService() {
			names = append(names, s.GetName())
		}
		for _, want := range []string{"atlas.encryption.v1.EncryptionService", "grpc.health.v1.Health"} {
			if !strings.Contains(strings.Join(names, " "), want) {
				t.Errorf("ListServices = %v, want %s", names, want)
			}
		}

		resp := ask(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_FileContainingSymbol{
			FileContainingSymbol: "atlas.encryption.v1.AwsKms",
		}})
		var comments []string
		for _, raw := range resp.GetFileDescriptorResponse().GetFileDescriptorProto() {
			fd := new(descriptorpb.FileDescriptorProto)
			if err := proto.Unmarshal(raw, fd); err != nil {
				t.Fatalf("Unmarshal FileDescriptorProto: %v", err)
			}
			for _, loc := range fd.GetSourceCodeInfo().GetLocation() {
				comments = append(comments, loc.GetLeadingComments())
			}
		}
		// The comment of AwsKms.access_key_id.
		if all := strings.Join(comments, "\n"); !strings.Contains(all, "The IAM access key id") {
			t.Errorf("reflection returned no field comment; comments:\n%s", all)
		}
	})

	t.Run("http endpoints", func(t *testing.T) {
		c := &http.Client{Timeout: 10 * time.Second}
		for _, tt := range []struct{ path, want string }{
			{"/healthz", "ok"},
			{"/readyz", "ready"},
			{"/openapi.json", `"swagger"`},
		} {
			code, body := httpDo(t, c, "GET", d.url(tt.path), "")
			if code != http.StatusOK || !strings.Contains(body, tt.want) {
				t.Errorf("GET %s = %d %.200q, want 200 containing %q", tt.path, code, body, tt.want)
			}
		}
	})

	t.Run("mutations are audited once each", func(t *testing.T) {
		client := encryptionv1.NewEncryptionServiceClient(conn)
		hc := &http.Client{Timeout: 10 * time.Second}
		before := len(d.log.auditRecords(t))

		if _, err := client.GetEncryptionAtRest(ctx, &encryptionv1.GetEncryptionAtRestRequest{GroupId: testGroup}); err != nil {
			t.Fatalf("GetEncryptionAtRest = %v", err)
		}
		if _, err := client.UpdateEncryptionAtRest(ctx, awsUpdate(testGroup, awsEnable(), true)); err != nil {
			t.Fatalf("validate-only enable = %v", err)
		}
		if _, err := client.UpdateEncryptionAtRest(ctx, awsUpdate(testGroup, awsEnable(), false)); err != nil {
			t.Fatalf("enable = %v", err)
		}
		if code, body := httpDo(t, hc, "PATCH", d.url("/v1/groups/"+testGroup+"/encryptionAtRest"), `{"awsKms": {"region": "US_WEST_2"}}`); code != http.StatusOK {
			t.Fatalf("REST partial update = %d %s, want 200", code, body)
		}
		_, err := client.UpdateEncryptionAtRest(ctx, awsUpdate(testGroup, &encryptionv1.AwsKms{Enabled: proto.Bool(false), Region: proto.String("US_EAST_1")}, false))
		if status.Code(err) != codes.InvalidArgument {
			t.Fatalf("disable with another field = %v, want InvalidArgument", err)
		}

		want := []struct{ action, outcome, code string }{
			{"validate", "validated", "OK"},
			{"enable", "applied", "OK"},
			{"update", "applied", "OK"},
			{"disable", "refused", "InvalidArgument"},
		}
		got := d.log.auditRecords(t)[before:]
		if len(got) != len(want) {
			t.Fatalf("%d audit records, want %d: %v", len(got), len(want), got)
		}
		for i, w := range want {
			r := got[i]
			if r["action"] != w.action || r["outcome"] != w.outcome || r["code"] != w.code ||
				r["group_id"] != testGroup || r["provider"] != "awsKms" || r["caller"] != "anonymous" {
				t.Errorf("audit record %d = %v, want action %s, outcome %s, code %s", i, r, w.action, w.outcome, w.code)
			}
		}
		if f, _ := got[2]["fields"].([]any); len(f) != 1 || f[0] != "region" {
			t.Errorf("partial update audit fields = %v, want [region]", got[2]["fields"])
		}
		if strings.Contains(d.log.String(), "s3cr3t") {
			t.Errorf("the log shows a secret:\n%s", d.log)
		}
	})

	t.Run("metrics", func(t *testing.T) {
		code, body := httpDo(t, &http.Client{Timeout: 10 * time.Second}, "GET", d.url("/metrics"), "")
		for _, w := range []string{
			`grpc_server_handled_total{grpc_code="OK",grpc_method="GetEncryptionAtRest"`,
			`encryptiond_atlas_requests_total{error_code="",method="GET",status="200"}`,
			`encryptiond_encryption_at_rest_valid{group_id="` + testGroup + `",provider="awsKms"}`,
			"go_goroutines",
		} {
			if code != http.StatusOK || !strings.Contains(body, w) {
				t.Errorf("GET /metrics = %d, want 200 containing %q", code, w)
			}
		}
	})

	// The emulator has seen the secrets sent above; no local process may
	// read them back or reconfigure it.
	t.Run("emulator control endpoints are off", func(t *testing.T) {
		c := &http.Client{Timeout: 10 * time.Second}
		for _, path := range []string{"/_emulator/requests", "/_emulator/stats", "/_emulator/state?group=" + testGroup} {
			code, body := httpDo(t, c, "GET", d.addrs.Atlas+path, "")
			if code != http.StatusNotFound || strings.Contains(body, "s3cr3t") {
				t.Errorf("GET %s%s = %d %.200q, want 404", d.addrs.Atlas, path, code, body)
			}
		}
	})

	if err := d.stop(); err != nil {
		t.Errorf("Run() after cancel = %v, want nil", err)
	}
	if !strings.Contains(d.log.String(), `"msg":"stopped"`) {
		t.Errorf("no stopped record in the log:\n%s", d.log)
	}
}

func jsonBody(s string) io.Reader { return strings.NewReader(s) }

func TestShutdownEndsHealthWatch(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, Config{Dev: true, LogFormat: "json", ShutdownTimeout: 20 * time.Second})
	watch, err := healthpb.NewHealthClient(d.grpcConn(t)).Watch(t.Context(), &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	if resp, err := watch.Recv(); err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("Watch first status = %v, %v; want SERVING", resp.GetStatus(), err)
	}

	start := time.Now()
	stopped := make(chan error, 1)
	go func() { stopped <- d.stop() }()
	if resp, err := watch.Recv(); err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Errorf("Watch status after shutdown began = %v, %v; want NOT_SERVING", resp.GetStatus(), err)
	}
	if err := <-stopped; err != nil {
		t.Errorf("Run() = %v, want nil", err)
	}
	// A watcher must not hold shutdown for the whole timeout.
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("shutdown took %v with a health watcher, want well under the 20 s timeout", took)
	}
}

// TestRunDevH2C: with -atlas-h2c the Atlas client speaks h2c to the
// emulator, which accepts it, and calls work as over HTTP/1.1.
func TestRunDevH2C(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, Config{Dev: true, AtlasH2C: true, LogFormat: "json"})
	c := encryptionv1.NewEncryptionServiceClient(d.grpcConn(t))
	for range 3 {
		if _, err := c.GetEncryptionAtRest(t.Context(), &encryptionv1.GetEncryptionAtRestRequest{GroupId: SampleGroupID}); err != nil {
			t.Fatalf("GetEncryptionAtRest() = %v", err)
		}
	}
	if err := d.stop(); err != nil {
		t.Errorf("Run() after cancel = %v, want nil", err)
	}
}

// TestShutdownClosesAtlasConnections checks that Run closes the Atlas
// client's idle connections when it stops, rather than leave them open
// until Atlas's idle timeout.
func TestShutdownClosesAtlasConnections(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	open := map[net.Conn]bool{}
	srv := httptest.NewUnstartedServer(atlastest.NewEmulator(atlastest.EmulatorConfig{
		PublicKey: "pub", PrivateKey: "priv", AutoCreateGroups: true, DisableRecording: true,
	}))
	srv.Config.ConnState = func(c net.Conn, s http.ConnState) {
		mu.Lock()
		defer mu.Unlock()
		switch s {
		case http.StateNew:
			open[c] = true
		case http.StateClosed, http.StateHijacked:
			delete(open, c)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	openConns := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(open)
	}

	d := startDaemon(t, Config{AtlasBaseURL: srv.URL, Credentials: Credentials{PublicKey: "pub", PrivateKey: "priv"}, LogFormat: "json"})
	c := encryptionv1.NewEncryptionServiceClient(d.grpcConn(t))
	if _, err := c.GetEncryptionAtRest(t.Context(), &encryptionv1.GetEncryptionAtRestRequest{GroupId: testGroup}); err != nil {
		t.Fatalf("GetEncryptionAtRest() = %v", err)
	}
	if n := openConns(); n == 0 {
		t.Fatal("no connection to Atlas is open after a call")
	}
	if err := d.stop(); err != nil {
		t.Fatalf("Run() after cancel = %v, want nil", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for openConns() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections to Atlas still open 5 s after Run returned", openConns())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
