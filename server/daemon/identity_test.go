package daemon

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	encryptionv1 "github.com/encryptiond/encryptiond/gen/atlas/encryption/v1"
)

// testCA issues certificates for tests.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue returns a leaf certificate and its key, PEM-encoded.
func (ca *testCA) issue(t *testing.T, tmpl *x509.Certificate) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl.SerialNumber = big.NewInt(time.Now().UnixNano())
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
}

func (ca *testCA) clientCert(t *testing.T, identity string) tls.Certificate {
	t.Helper()
	u, err := url.Parse(identity)
	if err != nil {
		t.Fatal(err)
	}
	c, k := ca.issue(t, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "ignored-cn"},
		URIs:        []*url.URL{u},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	pair, err := tls.X509KeyPair(c, k)
	if err != nil {
		t.Fatal(err)
	}
	return pair
}

func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// startMutualTLS starts a -dev daemon that serves TLS with a certificate of
// a new test CA for 127.0.0.1, accepts client certificates that CA signs,
// and applies policy. It returns the daemon, the CA (for client
// certificates) and roots that trust the daemon.
func startMutualTLS(t *testing.T, policy string) (*daemon, *testCA, *x509.CertPool) {
	t.Helper()
	dir := t.TempDir()
	ca := newTestCA(t, "test CA")
	serverCert, serverKey := ca.issue(t, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "encryptiond"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	d := startDaemon(t, Config{
		Dev:         true,
		LogFormat:   "json",
		TLSCert:     writeFile(t, dir, "server.pem", serverCert),
		TLSKey:      writeFile(t, dir, "server-key.pem", serverKey),
		TLSClientCA: writeFile(t, dir, "ca.pem", ca.pem),
		AuthzPolicy: writeFile(t, dir, "policy.yaml", []byte(policy)),
	})
	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)
	return d, ca, roots
}

func TestMutualTLSIdentity(t *testing.T) {
	t.Parallel()
	const ops, reader = "spiffe://example.org/ops", "spiffe://example.org/reader"
	policy := "callers:\n  - identity: " + ops + "\n    write: [\"" + testGroup + "\"]\n  - identity: " + reader + "\n    read: [\"*\"]\n"
	d, ca, roots := startMutualTLS(t, policy)
	opsCert := ca.clientCert(t, ops)
	readerCert := ca.clientCert(t, reader)
	strangerCert := newTestCA(t, "other CA").clientCert(t, "spiffe://example.org/stranger")

	grpcClient := func(certs ...tls.Certificate) *grpc.ClientConn {
		conn, err := grpc.NewClient(d.addrs.GRPC.String(), grpc.WithTransportCredentials(
			credentials.NewTLS(&tls.Config{RootCAs: roots, Certificates: certs}),
		))
		if err != nil {
			t.Fatalf("grpc.NewClient: %v", err)
		}
		t.Cleanup(func() { conn.Close() })
		return conn
	}
	httpClient := func(certs ...tls.Certificate) *http.Client {
		return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: roots, Certificates: certs},
		}}
	}
	restURL := "https://" + d.addrs.HTTP.String()
	validate := awsUpdate(testGroup, awsEnable(), true)
	ctx := t.Context()

	// lastAudit returns the caller and code of the newest audit record,
	// after checking that exactly one was added since before.
	lastAudit := func(t *testing.T, before int) (caller, code string) {
		t.Helper()
		recs := d.log.auditRecords(t)
		if len(recs) != before+1 {
			t.Fatalf("%d new audit records, want 1", len(recs)-before)
		}
		r := recs[len(recs)-1]
		c, _ := r["caller"].(string)
		k, _ := r["code"].(string)
		return c, k
	}

	t.Run("gRPC caller is the certificate's URI SAN, whatever its metadata says", func(t *testing.T) {
		before := len(d.log.auditRecords(t))
		smuggled := metadata.AppendToOutgoingContext(ctx, callerMetadataKey, "spiffe://example.org/admin")
		if _, err := encryptionv1.NewEncryptionServiceClient(grpcClient(opsCert)).UpdateEncryptionAtRest(smuggled, validate); err != nil {
			t.Fatalf("UpdateEncryptionAtRest = %v", err)
		}
		if caller, code := lastAudit(t, before); caller != ops || code != "OK" {
			t.Errorf("audit caller, code = %q, %q; want %q, OK", caller, code, ops)
		}
	})

	t.Run("REST caller is the certificate's URI SAN, whatever its headers say", func(t *testing.T) {
		before := len(d.log.auditRecords(t))
		req, _ := http.NewRequestWithContext(ctx, "PATCH", restURL+"/v1/groups/"+testGroup+"/encryptionAtRest?validateOnly=true",
			jsonBody(`{"awsKms": {"enabled": true, "customerMasterKeyID": "k", "region": "US_EAST_1", "roleId": "64b6e34b3d91647abb20e7b9"}}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Grpc-Metadata-"+callerMetadataKey, "spiffe://example.org/admin")
		req.Header.Set(callerMetadataKey, "spiffe://example.org/admin")
		resp, err := httpClient(opsCert).Do(req)
		if err != nil {
			t.Fatalf("PATCH: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("PATCH = %d, want 200", resp.StatusCode)
		}
		if caller, code := lastAudit(t, before); caller != ops || code != "OK" {
			t.Errorf("audit caller, code = %q, %q; want %q, OK", caller, code, ops)
		}
	})

	t.Run("the policy refuses a write: PERMISSION_DENIED, audited", func(t *testing.T) {
		conn := grpcClient(readerCert)
		if _, err := encryptionv1.NewEncryptionServiceClient(conn).GetEncryptionAtRest(ctx, &encryptionv1.GetEncryptionAtRestRequest{GroupId: testGroup}); err != nil {
			t.Errorf("GetEncryptionAtRest by a reader = %v, want allowed", err)
		}
		before := len(d.log.auditRecords(t))
		_, err := encryptionv1.NewEncryptionServiceClient(conn).UpdateEncryptionAtRest(ctx, validate)
		if status.Code(err) != codes.PermissionDenied {
			t.Errorf("UpdateEncryptionAtRest by a reader = %v, want PermissionDenied", err)
		}
		if caller, code := lastAudit(t, before); caller != reader || code != "PermissionDenied" {
			t.Errorf("audit caller, code = %q, %q; want %q, PermissionDenied", caller, code, reader)
		}
		code, _ := httpDo(t, httpClient(readerCert), "PATCH", restURL+"/v1/groups/"+testGroup+"/encryptionAtRest", `{"awsKms": {"region": "US_EAST_2"}}`)
		if code != http.StatusForbidden {
			t.Errorf("REST PATCH by a reader = %d, want 403", code)
		}
	})

	t.Run("no certificate: UNAUTHENTICATED, audited", func(t *testing.T) {
		before := len(d.log.auditRecords(t))
		_, err := encryptionv1.NewEncryptionServiceClient(grpcClient()).UpdateEncryptionAtRest(ctx, validate)
		if status.Code(err) != codes.Unauthenticated {
			t.Errorf("UpdateEncryptionAtRest without a certificate = %v, want Unauthenticated", err)
		}
		if caller, code := lastAudit(t, before); caller != "anonymous" || code != "Unauthenticated" {
			t.Errorf("audit caller, code = %q, %q; want anonymous, Unauthenticated", caller, code)
		}
		code, _ := httpDo(t, httpClient(), "GET", restURL+"/v1/groups/"+testGroup+"/encryptionAtRest", "")
		if code != http.StatusUnauthorized {
			t.Errorf("REST GET without a certificate = %d, want 401", code)
		}
	})

	t.Run("probes need no certificate, metrics do", func(t *testing.T) {
		resp, err := healthpb.NewHealthClient(grpcClient()).Check(ctx, &healthpb.HealthCheckRequest{})
		if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("Health.Check without a certificate = %v, %v; want SERVING", resp.GetStatus(), err)
		}
		for path, want := range map[string]int{"/healthz": 200, "/readyz": 200, "/metrics": 401} {
			if code, _ := httpDo(t, httpClient(), "GET", restURL+path, ""); code != want {
				t.Errorf("GET %s without a certificate = %d, want %d", path, code, want)
			}
		}
		if code, _ := httpDo(t, httpClient(opsCert), "GET", restURL+"/metrics", ""); code != http.StatusOK {
			t.Errorf("GET /metrics with a certificate = %d, want 200", code)
		}
	})

	t.Run("a certificate from another CA is refused", func(t *testing.T) {
		// Go's TLS client sends no certificate the server's CA list does not
		// name; force it to.
		forced := &tls.Config{RootCAs: roots, GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return &strangerCert, nil
		}}
		conn, err := grpc.NewClient(d.addrs.GRPC.String(), grpc.WithTransportCredentials(credentials.NewTLS(forced)))
		if err != nil {
			t.Fatalf("grpc.NewClient: %v", err)
		}
		defer conn.Close()
		_, err = encryptionv1.NewEncryptionServiceClient(conn).GetEncryptionAtRest(ctx, &encryptionv1.GetEncryptionAtRestRequest{GroupId: testGroup})
		if status.Code(err) != codes.Unavailable {
			t.Errorf("GetEncryptionAtRest with a stranger's certificate = %v, want Unavailable (handshake failure)", err)
		}
		req, _ := http.NewRequestWithContext(ctx, "GET", restURL+"/v1/groups/"+testGroup+"/encryptionAtRest", nil)
		forcedHTTP := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: forced}}
		if resp, err := forcedHTTP.Do(req); err == nil {
			resp.Body.Close()
			t.Errorf("REST GET with a stranger's certificate = %d, want a TLS failure", resp.StatusCode)
		}
	})
}

func TestCertIdentity(t *testing.T) {
	t.Parallel()
	u, _ := url.Parse("spiffe://example.org/svc")
	tests := []struct {
		name string
		cert *x509.Certificate
		want string
	}{
		{"URI SAN first", &x509.Certificate{URIs: []*url.URL{u}, DNSNames: []string{"svc.example.org"}, Subject: pkix.Name{CommonName: "cn"}}, "spiffe://example.org/svc"},
		{"then DNS SAN", &x509.Certificate{DNSNames: []string{"svc.example.org"}, Subject: pkix.Name{CommonName: "cn"}}, "svc.example.org"},
		{"then CN", &x509.Certificate{Subject: pkix.Name{CommonName: "cn"}}, "cn"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := certIdentity(tt.cert); got != tt.want {
				t.Errorf("certIdentity() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestRESTClientAddr(t *testing.T) {
	t.Parallel()
	internal := &peer.Peer{Addr: &net.TCPAddr{}, AuthInfo: internalAuthInfo{}}
	public := &peer.Peer{Addr: &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 1}}
	tests := []struct {
		name string
		peer *peer.Peer
		xff  []string
		want string
	}{
		{"in-process, gateway's own entry only", internal, []string{"127.0.0.1"}, "127.0.0.1"},
		{"in-process, client entries first", internal, []string{"203.0.113.66, 10.0.0.1,  192.0.2.7"}, "192.0.2.7"},
		{"in-process, several values", internal, []string{"203.0.113.66", "198.51.100.1, 192.0.2.7"}, "192.0.2.7"},
		{"in-process, none", internal, nil, ""},
		{"public connection", public, []string{"203.0.113.66"}, ""},
		{"no peer", nil, []string{"203.0.113.66"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			if tt.peer != nil {
				ctx = peer.NewContext(ctx, tt.peer)
			}
			md := metadata.MD{}
			for _, v := range tt.xff {
				md.Append("x-forwarded-for", v)
			}
			ctx = metadata.NewIncomingContext(ctx, md)
			if got := restClientAddr(ctx); got != tt.want {
				t.Errorf("restClientAddr(%q) = %q, want %q", tt.xff, got, tt.want)
			}
		})
	}
}

// TestForwardedForLogged checks the call log's forwarded_for: for a REST
// call, the HTTP client's address as the gateway saw it, not what the
// client wrote in X-Forwarded-For; for a gRPC call, nothing, whatever its
// metadata says.
func TestForwardedForLogged(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, Config{Dev: true, LogFormat: "json"})
	const spoofed = "203.0.113.66"
	// call returns the nth "grpc call" record of GetEncryptionAtRest (from
	// 1), waiting for it: the record is written when the call ends on the
	// server, which may be after its answer reached the client.
	call := func(t *testing.T, n int) map[string]any {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			var calls []map[string]any
			for _, rec := range d.log.records(t) {
				if rec["msg"] == "grpc call" && rec["method"] == encryptionv1.EncryptionService_GetEncryptionAtRest_FullMethodName {
					calls = append(calls, rec)
				}
			}
			if len(calls) >= n {
				return calls[n-1]
			}
			if time.Now().After(deadline) {
				t.Fatalf("no grpc call record %d of GetEncryptionAtRest in the log:\n%s", n, d.log)
			}
		}
	}

	req, _ := http.NewRequestWithContext(t.Context(), "GET", d.url("/v1/groups/"+testGroup+"/encryptionAtRest"), nil)
	req.Header.Set("X-Forwarded-For", spoofed+", "+strings.Repeat("9", 300))
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("GET: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET = %d, want 200", resp.StatusCode)
	}
	if got := call(t, 1)["forwarded_for"]; got != "127.0.0.1" {
		t.Errorf("REST call: forwarded_for = %v, want 127.0.0.1 (the HTTP client's own address)", got)
	}

	ctx := metadata.AppendToOutgoingContext(t.Context(), "x-forwarded-for", spoofed)
	if _, err := encryptionv1.NewEncryptionServiceClient(d.grpcConn(t)).GetEncryptionAtRest(ctx, &encryptionv1.GetEncryptionAtRestRequest{GroupId: testGroup}); err != nil {
		t.Fatalf("GetEncryptionAtRest() = %v", err)
	}
	if got, ok := call(t, 2)["forwarded_for"]; ok {
		t.Errorf("gRPC call: forwarded_for = %v, want none", got)
	}
}
