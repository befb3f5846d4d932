package daemon

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	encryptionv1 "github.com/encryptiond/encryptiond/gen/atlas/encryption/v1"
	"github.com/encryptiond/encryptiond/server/telemetry"
)

// secretVolume lays files out as the kubelet mounts a Secret: each name is
// a symlink to ..data/<name>, ..data a symlink to a directory holding this
// generation of every file. update writes a new generation and swaps
// ..data with one rename, as the kubelet does (and cert-manager relies on).
type secretVolume struct {
	t     *testing.T
	dir   string
	files map[string][]byte
	gen   int
}

func newSecretVolume(t *testing.T, files map[string][]byte) *secretVolume {
	t.Helper()
	v := &secretVolume{t: t, dir: t.TempDir(), files: map[string][]byte{}}
	v.update(files)
	return v
}

// path returns the path of a file of the volume, the one a flag names.
func (v *secretVolume) path(name string) string { return filepath.Join(v.dir, name) }

// update replaces the given files, keeps the others, and switches to the
// new generation atomically.
func (v *secretVolume) update(changes map[string][]byte) {
	v.t.Helper()
	for name, data := range changes {
		v.files[name] = data
	}
	v.gen++
	gen := fmt.Sprintf("..gen-%d", v.gen)
	must := func(err error) {
		v.t.Helper()
		if err != nil {
			v.t.Fatal(err)
		}
	}
	must(os.Mkdir(filepath.Join(v.dir, gen), 0o700))
	for name, data := range v.files {
		must(os.WriteFile(filepath.Join(v.dir, gen, name), data, 0o600))
	}
	must(os.Symlink(gen, filepath.Join(v.dir, "..data_tmp")))
	must(os.Rename(filepath.Join(v.dir, "..data_tmp"), filepath.Join(v.dir, "..data")))
	for name := range v.files {
		if _, err := os.Lstat(v.path(name)); errors.Is(err, os.ErrNotExist) {
			must(os.Symlink(filepath.Join("..data", name), v.path(name)))
		}
	}
	if v.gen > 1 {
		must(os.RemoveAll(filepath.Join(v.dir, fmt.Sprintf("..gen-%d", v.gen-1))))
	}
}

// serverCert issues a certificate for the daemon on 127.0.0.1.
func serverCert(t *testing.T, ca *testCA) (certPEM, keyPEM []byte, serial *big.Int) {
	t.Helper()
	certPEM, keyPEM = ca.issue(t, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "encryptiond"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	block, _ := pem.Decode(certPEM)
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return certPEM, keyPEM, cert.SerialNumber
}

// servedSerial returns the serial number of the certificate a new TLS
// handshake with addr presents.
func servedSerial(t *testing.T, addr net.Addr, roots *x509.CertPool) *big.Int {
	t.Helper()
	d := tls.Dialer{Config: &tls.Config{RootCAs: roots, NextProtos: []string{"h2"}}}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	conn, err := d.DialContext(ctx, "tcp", addr.String())
	if err != nil {
		t.Fatalf("TLS handshake with %s: %v", addr, err)
	}
	defer conn.Close()
	return conn.(*tls.Conn).ConnectionState().PeerCertificates[0].SerialNumber
}

// eventually calls cond until it is true, for up to 30 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after 30 s, still not %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// reloadRecords returns the log records of reloads of what.
func (b *syncBuffer) reloadRecords(t *testing.T, what string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, rec := range b.records(t) {
		if rec["what"] == what && (rec["msg"] == "reloaded" || strings.HasPrefix(rec["msg"].(string), "reload failed")) {
			out = append(out, rec)
		}
	}
	return out
}

// waitReload waits for the n-th reload record of what (counted from 1)
// and returns it.
func (d *daemon) waitReload(t *testing.T, what string, n int) map[string]any {
	t.Helper()
	eventually(t, fmt.Sprintf("%d reload records of %s in the log", n, what), func() bool {
		return len(d.log.reloadRecords(t, what)) >= n
	})
	return d.log.reloadRecords(t, what)[n-1]
}

// reloadCounts returns encryptiond_config_reloads_total by "what/result".
func reloadCounts(t *testing.T, g prometheus.Gatherer) map[string]float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatalf("Gather() = %v", err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "encryptiond_config_reloads_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			out[labels["what"]+"/"+labels["result"]] = m.GetCounter().GetValue()
		}
	}
	return out
}

// scrapeMetric returns the value of one series on the daemon's /metrics.
func scrapeMetric(t *testing.T, client *http.Client, url, series string) string {
	t.Helper()
	code, body := httpDo(t, client, "GET", url+"/metrics", "")
	if code != http.StatusOK {
		t.Fatalf("GET /metrics = %d", code)
	}
	for line := range strings.Lines(body) {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("GET /metrics has no %s", series)
	return ""
}

// tlsClients makes gRPC and HTTP clients that trust roots and present
// certs.
type tlsClients struct {
	t     *testing.T
	d     *daemon
	roots *x509.CertPool
}

func (c tlsClients) grpc(certs ...tls.Certificate) encryptionv1.EncryptionServiceClient {
	c.t.Helper()
	conn, err := grpc.NewClient(c.d.addrs.GRPC.String(), grpc.WithTransportCredentials(
		credentials.NewTLS(&tls.Config{RootCAs: c.roots, Certificates: certs})))
	if err != nil {
		c.t.Fatalf("grpc.NewClient: %v", err)
	}
	c.t.Cleanup(func() { conn.Close() })
	return encryptionv1.NewEncryptionServiceClient(conn)
}

func (c tlsClients) http(cache tls.ClientSessionCache, certs ...tls.Certificate) *http.Client {
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: c.roots, Certificates: certs, ClientSessionCache: cache}, ForceAttemptHTTP2: true}
	c.t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Timeout: 10 * time.Second, Transport: tr}
}

func (c tlsClients) restURL() string { return "https://" + c.d.addrs.HTTP.String() }

// callers keeps calling the daemon in the background until stop, and
// counts what fails.
type callers struct {
	stopping chan struct{}
	wg       sync.WaitGroup
	mu       sync.Mutex
	calls    int
	failures []error
}

func (c *callers) start(call func() error) {
	c.wg.Go(func() {
		for {
			select {
			case <-c.stopping:
				return
			default:
			}
			err := call()
			c.mu.Lock()
			c.calls++
			if err != nil && len(c.failures) < 10 {
				c.failures = append(c.failures, err)
			}
			c.mu.Unlock()
			time.Sleep(5 * time.Millisecond)
		}
	})
}

// stop stops the callers and returns how many calls they made and the
// first failures.
func (c *callers) stop() (int, []error) {
	close(c.stopping)
	c.wg.Wait()
	return c.calls, c.failures
}

// restGetOK sends a GET and fails unless the answer is 200; it may run on
// any goroutine.
func restGetOK(ctx context.Context, client *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s = %d", url, resp.StatusCode)
	}
	return nil
}

// TestTLSRotation rotates the server certificate, then the client CA,
// under a running daemon, the way the kubelet updates a Secret that
// cert-manager renews: new handshakes present the new certificate and
// trust the new CA, established connections go on untouched, and calls
// keep succeeding throughout.
func TestTLSRotation(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t, "test CA")
	cert1, key1, serial1 := serverCert(t, ca)
	vol := newSecretVolume(t, map[string][]byte{"tls.crt": cert1, "tls.key": key1, "ca.crt": ca.pem})
	d := startDaemon(t, Config{
		Dev:            true,
		LogFormat:      "json",
		TLSCert:        vol.path("tls.crt"),
		TLSKey:         vol.path("tls.key"),
		TLSClientCA:    vol.path("ca.crt"),
		ReloadInterval: 50 * time.Millisecond,
	})
	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)
	clients := tlsClients{t, d, roots}
	const caller = "spiffe://example.org/ns/platform/sa/key-admin"
	clientCert := ca.clientCert(t, caller)
	get := &encryptionv1.GetEncryptionAtRestRequest{GroupId: testGroup}
	ctx := t.Context()

	// An established connection, over gRPC and over REST.
	established := clients.grpc(clientCert)
	var p peer.Peer
	if _, err := established.GetEncryptionAtRest(ctx, get, grpc.Peer(&p)); err != nil {
		t.Fatalf("GetEncryptionAtRest() = %v", err)
	}
	if got := p.AuthInfo.(credentials.TLSInfo).State.PeerCertificates[0].SerialNumber; got.Cmp(serial1) != 0 {
		t.Fatalf("the first connection got serial %x, want %x", got, serial1)
	}
	keptAlive := clients.http(nil, clientCert)
	restGet := clients.restURL() + "/v1/groups/" + testGroup + "/encryptionAtRest"
	req, _ := http.NewRequestWithContext(ctx, "GET", restGet, nil)
	resp, err := keptAlive.Do(req)
	if err != nil {
		t.Fatalf("REST GET: %v", err)
	}
	resp.Body.Close()
	// The certificate comes from GetConfigForClient, whose config must
	// carry net/http's ALPN protocols for HTTP/2 to be negotiated.
	if resp.StatusCode != http.StatusOK || resp.ProtoMajor != 2 {
		t.Fatalf("REST GET = %d over %s, want 200 over HTTP/2", resp.StatusCode, resp.Proto)
	}

	t.Run("server certificate", func(t *testing.T) {
		bg := &callers{stopping: make(chan struct{})}
		bg.start(func() error { _, err := established.GetEncryptionAtRest(ctx, get); return err })
		bg.start(func() error { return restGetOK(ctx, keptAlive, restGet) })
		// New connections during the swap: every handshake presents one
		// certificate or the other, never fails.
		bg.start(func() error {
			tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{clientCert}}}
			defer tr.CloseIdleConnections()
			return restGetOK(ctx, &http.Client{Timeout: 10 * time.Second, Transport: tr}, restGet)
		})

		cert2, key2, serial2 := serverCert(t, ca)
		vol.update(map[string][]byte{"tls.crt": cert2, "tls.key": key2})
		eventually(t, "serving the new certificate over gRPC", func() bool { return servedSerial(t, d.addrs.GRPC, roots).Cmp(serial2) == 0 })
		eventually(t, "serving the new certificate over REST", func() bool { return servedSerial(t, d.addrs.HTTP, roots).Cmp(serial2) == 0 })

		var p peer.Peer
		if _, err := established.GetEncryptionAtRest(ctx, get, grpc.Peer(&p)); err != nil {
			t.Errorf("GetEncryptionAtRest() on the established connection = %v", err)
		} else if got := p.AuthInfo.(credentials.TLSInfo).State.PeerCertificates[0].SerialNumber; got.Cmp(serial1) != 0 {
			t.Errorf("the established connection now has serial %x, want still %x: it was not kept", got, serial1)
		}
		if _, err := clients.grpc(clientCert).GetEncryptionAtRest(ctx, get, grpc.Peer(&p)); err != nil {
			t.Errorf("GetEncryptionAtRest() on a new connection = %v", err)
		} else if got := p.AuthInfo.(credentials.TLSInfo).State.PeerCertificates[0].SerialNumber; got.Cmp(serial2) != 0 {
			t.Errorf("a new connection got serial %x, want %x", got, serial2)
		}

		calls, failures := bg.stop()
		if len(failures) > 0 {
			t.Errorf("%d calls during the rotation; failures: %v", calls, failures)
		}
		rec := d.waitReload(t, whatTLS, 1)
		if rec["msg"] != "reloaded" || rec["trigger"] != triggerFileChange || !strings.Contains(rec["summary"].(string), serial2.Text(16)) {
			t.Errorf("reload record = %v, want reloaded on a file change, naming serial %x", rec, serial2)
		}
	})

	t.Run("client CA", func(t *testing.T) {
		ca2 := newTestCA(t, "next CA")
		newClient := ca2.clientCert(t, caller)
		// A client of the old CA that resumes TLS sessions: it must not
		// resume its way past the rotation.
		sessions := tls.NewLRUClientSessionCache(8)
		for _, wantResumed := range []bool{false, true} {
			req, _ := http.NewRequestWithContext(ctx, "GET", restGet, nil)
			resp, err := clients.http(sessions, clientCert).Do(req) // a new connection each time
			if err != nil {
				t.Fatalf("REST GET with the old CA's certificate before the rotation: %v", err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || resp.TLS.DidResume != wantResumed {
				t.Fatalf("REST GET with the old CA's certificate before the rotation = %d, resumed %v; want 200, resumed %v",
					resp.StatusCode, resp.TLS.DidResume, wantResumed)
			}
		}
		if _, err := clients.grpc(newClient).GetEncryptionAtRest(ctx, get); status.Code(err) != codes.Unauthenticated {
			t.Fatalf("GetEncryptionAtRest() with the next CA's certificate before the rotation = %v, want Unauthenticated", err)
		}

		vol.update(map[string][]byte{"ca.crt": ca2.pem})
		d.waitReload(t, whatTLS, 2)

		if _, err := clients.grpc(newClient).GetEncryptionAtRest(ctx, get); err != nil {
			t.Errorf("GetEncryptionAtRest() with the next CA's certificate = %v, want accepted", err)
		}
		if code, body := httpDo(t, clients.http(nil, newClient), "GET", restGet, ""); code != http.StatusOK {
			t.Errorf("REST GET with the next CA's certificate = %d %s, want 200", code, body)
		}
		if _, err := clients.grpc(clientCert).GetEncryptionAtRest(ctx, get); status.Code(err) != codes.Unauthenticated {
			t.Errorf("GetEncryptionAtRest() with the old CA's certificate on a new connection = %v, want Unauthenticated", err)
		}
		if code, _ := httpDo(t, clients.http(sessions, clientCert), "GET", restGet, ""); code != http.StatusUnauthorized {
			t.Errorf("REST GET with the old CA's certificate, resuming a session = %d, want 401", code)
		}
		if _, err := established.GetEncryptionAtRest(ctx, get); err != nil {
			t.Errorf("GetEncryptionAtRest() on the connection established before = %v, want it untouched", err)
		}
		if got := scrapeMetric(t, clients.http(nil, newClient), clients.restURL(), `encryptiond_config_reloads_total{result="ok",what="tls"}`); got != "2" {
			t.Errorf(`encryptiond_config_reloads_total{result="ok",what="tls"} = %s, want 2`, got)
		}
	})
}

// TestTLSReloadFailures: on SIGHUP, TLS files that do not load are
// refused, logged and counted, and the certificate in force stays; files
// that load replace it.
func TestTLSReloadFailures(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t, "test CA")
	cert1, key1, serial1 := serverCert(t, ca)
	dir := t.TempDir()
	certPath, keyPath := writeFile(t, dir, "tls.crt", cert1), writeFile(t, dir, "tls.key", key1)
	caPath := writeFile(t, dir, "ca.crt", ca.pem)
	reload := make(chan os.Signal, 1)
	d := startDaemon(t, Config{
		Dev:         true,
		LogFormat:   "json",
		TLSCert:     certPath,
		TLSKey:      keyPath,
		TLSClientCA: caPath,
		Reload:      reload, // and no polling: only the signal reloads
	})
	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)
	clients := tlsClients{t, d, roots}
	clientCert := ca.clientCert(t, "spiffe://example.org/ns/platform/sa/key-admin")
	api := clients.grpc(clientCert)
	_, otherKey, _ := serverCert(t, ca)
	cert2, key2, serial2 := serverCert(t, ca)

	steps := []struct {
		name       string
		files      map[string][]byte // written before the signal; nil: removed
		wantError  string            // in the failure record, "" for success
		wantSerial *big.Int
	}{
		{"a key that does not match", map[string][]byte{keyPath: otherKey}, "private key does not match public key", serial1},
		{"a certificate that is not PEM", map[string][]byte{certPath: []byte("not a certificate"), keyPath: key1}, "-tls-cert/-tls-key", serial1},
		{"a client CA bundle without a certificate", map[string][]byte{certPath: cert1, caPath: []byte("# empty\n")}, "-tls-client-ca: no PEM certificate", serial1},
		{"a missing key", map[string][]byte{caPath: ca.pem, keyPath: nil}, "-tls-key: open " + keyPath, serial1},
		{"unchanged files", map[string][]byte{keyPath: key1}, "", serial1},
		{"a new certificate", map[string][]byte{certPath: cert2, keyPath: key2}, "", serial2},
	}
	for n, step := range steps {
		for path, data := range step.files {
			var err error
			if data == nil {
				err = os.Remove(path)
			} else {
				err = os.WriteFile(path, data, 0o600)
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		reload <- syscall.SIGHUP
		rec := d.waitReload(t, whatTLS, n+1)
		if step.wantError == "" {
			if rec["msg"] != "reloaded" || rec["trigger"] != triggerSignal {
				t.Errorf("%s: reload record = %v, want reloaded on a signal", step.name, rec)
			}
		} else if msg, _ := rec["error"].(string); !strings.HasPrefix(rec["msg"].(string), "reload failed") || !strings.Contains(msg, step.wantError) {
			t.Errorf("%s: reload record = %v, want a failure containing %q", step.name, rec, step.wantError)
		}
		if got := servedSerial(t, d.addrs.GRPC, roots); got.Cmp(step.wantSerial) != 0 {
			t.Errorf("%s: serving serial %x, want %x", step.name, got, step.wantSerial)
		}
		if _, err := api.GetEncryptionAtRest(t.Context(), &encryptionv1.GetEncryptionAtRestRequest{GroupId: testGroup}); err != nil {
			t.Errorf("%s: GetEncryptionAtRest() = %v", step.name, err)
		}
	}
	if rec := d.log.reloadRecords(t, whatTLS)[4]; rec["changed"] != false {
		t.Errorf("reload of unchanged files: changed = %v, want false", rec["changed"])
	}
	metrics := clients.http(nil, clientCert)
	for series, want := range map[string]string{
		`encryptiond_config_reloads_total{result="ok",what="tls"}`:    "2",
		`encryptiond_config_reloads_total{result="error",what="tls"}`: "4",
	} {
		if got := scrapeMetric(t, metrics, clients.restURL(), series); got != want {
			t.Errorf("%s = %s, want %s", series, got, want)
		}
	}
}

// TestPolicyRotation: a policy file that changes is applied to the calls
// that follow; one that does not parse is refused with its line, logged
// and counted, and the policy in force stays.
func TestPolicyRotation(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t, "test CA")
	cert, key, _ := serverCert(t, ca)
	const reader = "spiffe://example.org/ns/apps/sa/reader"
	readOnly := "callers:\n  - identity: " + reader + "\n    read: [\"*\"]\n"
	readWrite := "callers:\n  - identity: " + reader + "\n    write: [\"" + testGroup + "\"]\n"
	broken := "callers:\n  - identity: " + reader + "\n    read: [\"*\"]\n    wrte: [\"" + testGroup + "\"]\n"
	vol := newSecretVolume(t, map[string][]byte{"tls.crt": cert, "tls.key": key, "ca.crt": ca.pem, "policy.yaml": []byte(readOnly)})
	d := startDaemon(t, Config{
		Dev:            true,
		LogFormat:      "json",
		TLSCert:        vol.path("tls.crt"),
		TLSKey:         vol.path("tls.key"),
		TLSClientCA:    vol.path("ca.crt"),
		AuthzPolicy:    vol.path("policy.yaml"),
		ReloadInterval: 50 * time.Millisecond,
	})
	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)
	clients := tlsClients{t, d, roots}
	readerCert := ca.clientCert(t, reader)
	api := clients.grpc(readerCert)
	rest := clients.http(nil, readerCert)
	restPatch := clients.restURL() + "/v1/groups/" + testGroup + "/encryptionAtRest?validateOnly=true"
	const patch = `{"awsKms": {"enabled": true, "customerMasterKeyID": "k", "region": "US_EAST_1", "roleId": "64b6e34b3d91647abb20e7b9"}}`
	validate := awsUpdate(testGroup, awsEnable(), true)
	ctx := t.Context()

	if _, err := api.UpdateEncryptionAtRest(ctx, validate); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("UpdateEncryptionAtRest() under the read-only policy = %v, want PermissionDenied", err)
	}

	vol.update(map[string][]byte{"policy.yaml": []byte(readWrite)})
	rec := d.waitReload(t, whatPolicy, 1)
	if rec["msg"] != "reloaded" || !strings.Contains(rec["summary"].(string), "change project "+testGroup) {
		t.Errorf("reload record = %v, want reloaded with a summary of the new policy", rec)
	}
	if _, err := api.UpdateEncryptionAtRest(ctx, validate); err != nil {
		t.Errorf("UpdateEncryptionAtRest() under the new policy = %v, want allowed", err)
	}
	if code, body := httpDo(t, rest, "PATCH", restPatch, patch); code != http.StatusOK {
		t.Errorf("REST PATCH under the new policy = %d %s, want 200", code, body)
	}

	vol.update(map[string][]byte{"policy.yaml": []byte(broken)})
	rec = d.waitReload(t, whatPolicy, 2)
	if msg, _ := rec["error"].(string); !strings.HasPrefix(rec["msg"].(string), "reload failed") ||
		!strings.Contains(msg, vol.path("policy.yaml")) || !strings.Contains(msg, "line 4") || !strings.Contains(msg, `"wrte"`) {
		t.Errorf("reload record = %v, want a failure naming the file, line 4 and the key", rec)
	}
	if _, err := api.UpdateEncryptionAtRest(ctx, validate); err != nil {
		t.Errorf("UpdateEncryptionAtRest() after a broken policy = %v, want still allowed by the policy in force", err)
	}
	time.Sleep(200 * time.Millisecond) // a few more polls of the same broken file
	if n := len(d.log.reloadRecords(t, whatPolicy)); n != 2 {
		t.Errorf("%d policy reload records, want 2: a broken file is reported once", n)
	}
	for series, want := range map[string]string{
		`encryptiond_config_reloads_total{result="ok",what="policy"}`:    "1",
		`encryptiond_config_reloads_total{result="error",what="policy"}`: "1",
		`encryptiond_config_reloads_total{result="ok",what="tls"}`:       "0",
	} {
		if got := scrapeMetric(t, rest, clients.restURL(), series); got != want {
			t.Errorf("%s = %s, want %s", series, got, want)
		}
	}

	vol.update(map[string][]byte{"policy.yaml": []byte(readOnly)})
	d.waitReload(t, whatPolicy, 3)
	if _, err := api.UpdateEncryptionAtRest(ctx, validate); status.Code(err) != codes.PermissionDenied {
		t.Errorf("UpdateEncryptionAtRest() under the read-only policy again = %v, want PermissionDenied", err)
	}
}

// TestReloaderPoll checks when polling applies and reports a change,
// without timing: poll is called by hand.
func TestReloaderPoll(t *testing.T) {
	t.Parallel()
	path := writeFile(t, t.TempDir(), "conf", []byte("good v1"))
	var applied string
	r := &reloadable{
		what:  "conf",
		files: []watchedFile{{flag: "-conf", path: path, limit: 64}},
		apply: func(contents [][]byte) (string, error) {
			v, ok := strings.CutPrefix(string(contents[0]), "good ")
			if !ok {
				return "", fmt.Errorf("bad content %q", contents[0])
			}
			applied = v
			return "version " + v, nil
		},
	}
	var logged syncBuffer
	reg := prometheus.NewRegistry()
	metrics, err := telemetry.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	rl := &reloader{reloadReporter: reloadReporter{log: slog.New(slog.NewJSONHandler(&logged, nil)), metrics: metrics}}
	if err := rl.add(r); err != nil {
		t.Fatalf("add() = %v", err)
	}
	write := func(s string) func() {
		return func() {
			if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	steps := []struct {
		name    string
		change  func()
		applied string
		report  string // the message of the record this poll adds, "" for none
		changed bool   // of a "reloaded" record
	}{
		{"unchanged", func() {}, "v1", "", false},
		{"a good change is applied at once", write("good v2"), "v2", "reloaded", true},
		{"a bad change is not reported the first time", write("bad"), "v2", "", false},
		{"nor the same bad change tried a second time", func() {}, "v2", "reload failed: the previous configuration stays in force", false},
		{"nor a third", func() {}, "v2", "", false},
		{"a change half way through", write("partial"), "v2", "", false},
		{"is not reported once it completes", write("good v3"), "v3", "reloaded", true},
		{"a file that disappears", func() { os.Remove(path) }, "v3", "", false},
		{"and stays away", func() {}, "v3", "reload failed: the previous configuration stays in force", false},
		{"then comes back unchanged", write("good v3"), "v3", "reloaded", false},
		{"too large", write("good " + strings.Repeat("x", 64)), "v3", "", false},
		{"still too large", func() {}, "v3", "reload failed: the previous configuration stays in force", false},
	}
	for _, step := range steps {
		before := len(logged.records(t))
		step.change()
		rl.poll(r)
		if applied != step.applied {
			t.Errorf("%s: applied %q, want %q", step.name, applied, step.applied)
		}
		recs := logged.records(t)[before:]
		switch {
		case step.report == "" && len(recs) != 0:
			t.Errorf("%s: logged %v, want nothing", step.name, recs)
		case step.report != "" && (len(recs) != 1 || recs[0]["msg"] != step.report || recs[0]["trigger"] != triggerFileChange):
			t.Errorf("%s: logged %v, want one %q record", step.name, recs, step.report)
		case step.report == "reloaded" && recs[0]["changed"] != step.changed:
			t.Errorf("%s: changed = %v, want %v", step.name, recs[0]["changed"], step.changed)
		}
	}
	if diff := cmp.Diff(map[string]float64{"conf/ok": 3, "conf/error": 3}, reloadCounts(t, reg)); diff != "" {
		t.Errorf("encryptiond_config_reloads_total mismatch (-want +got):\n%s", diff)
	}
	if !bytes.Contains([]byte(logged.String()), []byte("larger than 64 bytes")) {
		t.Errorf("no record says the file is too large:\n%s", logged.String())
	}
}

// TestReloaderRun: run reloads on each signal, reports that it was
// asked, and returns when its context ends.
func TestReloaderRun(t *testing.T) {
	t.Parallel()
	path := writeFile(t, t.TempDir(), "conf", []byte("v1"))
	applied := make(chan string, 10)
	r := &reloadable{
		what:  "conf",
		files: []watchedFile{{flag: "-conf", path: path, limit: 64}},
		apply: func(contents [][]byte) (string, error) { applied <- string(contents[0]); return "", nil },
	}
	var logged syncBuffer
	metrics, err := telemetry.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	signals := make(chan os.Signal)
	rl := &reloader{reloadReporter: reloadReporter{log: slog.New(slog.NewJSONHandler(&logged, nil)), metrics: metrics}, signals: signals}
	if err := rl.add(r); err != nil {
		t.Fatalf("add() = %v", err)
	}
	<-applied
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); rl.run(ctx) }()

	for _, v := range []string{"v1", "v2"} {
		if err := os.WriteFile(path, []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
		signals <- syscall.SIGHUP
		if got := <-applied; got != v {
			t.Errorf("applied %q after a signal, want %q", got, v)
		}
	}
	cancel()
	<-done
	var asked int
	for _, rec := range logged.records(t) {
		if rec["msg"] == "reload requested" && rec["signal"] == syscall.SIGHUP.String() {
			asked++
		}
	}
	if asked != 2 {
		t.Errorf("%d reload requested records, want 2:\n%s", asked, logged.String())
	}
}
