package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/encryptiond/encryptiond/atlas/atlastest"
	"github.com/encryptiond/encryptiond/server/daemon"
)

// certAuthority issues the test's certificates.
type certAuthority struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newCertAuthority(t *testing.T) *certAuthority {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "rotation test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &certAuthority{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue returns a leaf certificate and its key, PEM-encoded, and its serial
// number.
func (ca *certAuthority) issue(t *testing.T, tmpl *x509.Certificate) (certPEM, keyPEM []byte, serial *big.Int) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err = rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	if err != nil {
		t.Fatal(err)
	}
	tmpl.SerialNumber = serial
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
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), serial
}

func (ca *certAuthority) server(t *testing.T) (certPEM, keyPEM []byte, serial *big.Int) {
	t.Helper()
	return ca.issue(t, &x509.Certificate{
		Subject: pkix.Name{CommonName: "encryptiond"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
}

func (ca *certAuthority) client(t *testing.T, identity string) tls.Certificate {
	t.Helper()
	u, err := url.Parse(identity)
	if err != nil {
		t.Fatal(err)
	}
	c, k, _ := ca.issue(t, &x509.Certificate{URIs: []*url.URL{u}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	pair, err := tls.X509KeyPair(c, k)
	if err != nil {
		t.Fatal(err)
	}
	return pair
}

// replaceFile replaces path's content atomically, as the kubelet does.
func replaceFile(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// waitRecord waits up to 30 s for the n-th stderr record (counted from 1)
// that match accepts, and returns it.
func (p *proc) waitRecord(t *testing.T, n int, match func(map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var found []map[string]any
		for _, rec := range logRecords(t, p.stderr.String()) {
			if match(rec) {
				found = append(found, rec)
			}
		}
		if len(found) >= n {
			return found[n-1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no record #%d of the kind wanted after 30 s; stderr:\n%s", n, p.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// reloadOf matches the reload records of what ("reloaded" or "reload
// failed: …").
func reloadOf(what string) func(map[string]any) bool {
	return func(rec map[string]any) bool {
		msg, _ := rec["msg"].(string)
		return rec["what"] == what && (msg == "reloaded" || strings.HasPrefix(msg, "reload failed"))
	}
}

// TestBinaryRotation rotates, under the real binary, its certificate and
// authorization policy (applied on SIGHUP, with polling off) and its Atlas
// private key (a _FILE read again at the next authentication): the
// process keeps running and serving throughout, and exits 0 on SIGTERM.
func TestBinaryRotation(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the real binary; skipped with -short")
	}
	t.Parallel()
	bin := buildEncryptiond(t)

	// Atlas, which accepts one API key until rotate, then only the next.
	const publicKey, oldKey, newKey = "rotation-public", "rotation-private-s3cr3t-A", "rotation-private-s3cr3t-B"
	oldAtlas := atlastest.NewEmulator(atlastest.EmulatorConfig{PublicKey: publicKey, PrivateKey: oldKey, AutoCreateGroups: true})
	newAtlas := atlastest.NewEmulator(atlastest.EmulatorConfig{PublicKey: publicKey, PrivateKey: newKey, AutoCreateGroups: true})
	var current atomic.Pointer[atlastest.Emulator]
	current.Store(oldAtlas)
	atlas := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { current.Load().ServeHTTP(w, r) }))
	t.Cleanup(atlas.Close)

	dir := t.TempDir()
	file := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		replaceFile(t, p, data)
		return p
	}
	keyFile := file("private-key", []byte(oldKey+"\n"))

	t.Run("credential file errors stop it at start with status 2", func(t *testing.T) {
		for _, tt := range []struct {
			name string
			env  []string
			want []string
		}{
			{"a variable and its _FILE form", []string{daemon.EnvPublicKey + "=" + publicKey, daemon.EnvPrivateKey + "=" + oldKey, daemon.EnvPrivateKeyFile + "=" + keyFile},
				[]string{daemon.EnvPrivateKey + " and " + daemon.EnvPrivateKeyFile + " are both set"}},
			{"a file that cannot be read", []string{daemon.EnvPublicKey + "=" + publicKey, daemon.EnvPrivateKeyFile + "=" + filepath.Join(dir, "absent")},
				[]string{daemon.EnvPrivateKeyFile, filepath.Join(dir, "absent")}},
		} {
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			cmd := exec.CommandContext(ctx, bin, "-grpc-addr", "127.0.0.1:0", "-http-addr", "127.0.0.1:0")
			cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, tt.env...)
			out, err := cmd.CombinedOutput()
			cancel()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 2 {
				t.Errorf("%s: encryptiond = %v, want exit status 2\n%s", tt.name, err, out)
			}
			for _, w := range tt.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("%s: encryptiond printed %q, want %q", tt.name, out, w)
				}
			}
			if strings.Contains(string(out), oldKey) {
				t.Errorf("%s: encryptiond printed the secret: %q", tt.name, out)
			}
		}
	})

	ca := newCertAuthority(t)
	cert1, key1, serial1 := ca.server(t)
	const reader = "spiffe://example.org/ns/apps/sa/reader"
	readOnly := []byte("callers:\n  - identity: " + reader + "\n    read: [\"*\"]\n")
	readWrite := []byte("callers:\n  - identity: " + reader + "\n    write: [\"" + e2eGroup + "\"]\n")
	certPath, keyPath, policyPath := file("tls.crt", cert1), file("tls.key", key1), file("policy.yaml", readOnly)
	p := start(t, bin,
		[]string{daemon.EnvPublicKey + "=" + publicKey, daemon.EnvPrivateKeyFile + "=" + keyFile},
		"-grpc-addr", "127.0.0.1:0", "-http-addr", "127.0.0.1:0", "-atlas-base-url", atlas.URL,
		"-tls-cert", certPath, "-tls-key", keyPath, "-tls-client-ca", file("ca.crt", ca.pem),
		"-authz-policy", policyPath, "-reload-interval", "0",
	)

	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)
	readerCert := ca.client(t, reader)
	transport := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{readerCert}}, ForceAttemptHTTP2: true}
	t.Cleanup(transport.CloseIdleConnections)
	client := &http.Client{Timeout: 30 * time.Second, Transport: transport} // keeps its connection across the rotation
	base := "https://" + p.httpAD + "/v1/groups/" + e2eGroup + "/encryptionAtRest"
	do := func(method, url, body string) (int, string) {
		t.Helper()
		return restOK(t, client, method, url, body)
	}
	const validate = `{"awsKms": {"enabled": true, "customerMasterKeyID": "k", "region": "US_EAST_1", "roleId": "64b6e34b3d91647abb20e7b9"}}`
	served := func() *big.Int {
		t.Helper()
		d := tls.Dialer{Config: &tls.Config{RootCAs: roots}}
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		conn, err := d.DialContext(ctx, "tcp", p.httpAD)
		if err != nil {
			t.Fatalf("TLS handshake: %v", err)
		}
		defer conn.Close()
		return conn.(*tls.Conn).ConnectionState().PeerCertificates[0].SerialNumber
	}

	if code, body := do("GET", base, ""); code != http.StatusOK {
		t.Fatalf("GET = %d %s, want 200", code, body)
	}
	if code, _ := do("PATCH", base+"?validateOnly=true", validate); code != http.StatusForbidden {
		t.Fatalf("PATCH by a reader = %d, want 403", code)
	}
	if got := served(); got.Cmp(serial1) != 0 {
		t.Fatalf("serving serial %x, want %x", got, serial1)
	}

	t.Run("SIGHUP reloads the certificate and the policy", func(t *testing.T) {
		cert2, key2, serial2 := ca.server(t)
		replaceFile(t, certPath, cert2)
		replaceFile(t, keyPath, key2)
		replaceFile(t, policyPath, readWrite)
		if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatalf("SIGHUP: %v", err)
		}
		for _, what := range []string{"tls", "policy"} {
			if rec := p.waitRecord(t, 1, reloadOf(what)); rec["msg"] != "reloaded" || rec["trigger"] != "signal" {
				t.Errorf("%s reload record = %v, want reloaded on a signal", what, rec)
			}
		}
		if got := served(); got.Cmp(serial2) != 0 {
			t.Errorf("serving serial %x after SIGHUP, want %x", got, serial2)
		}
		if code, body := do("PATCH", base+"?validateOnly=true", validate); code != http.StatusOK {
			t.Errorf("PATCH by a reader under the new policy = %d %s, want 200", code, body)
		}
	})

	t.Run("a broken policy on SIGHUP is refused with its line", func(t *testing.T) {
		replaceFile(t, policyPath, []byte("callers:\n  - identity: "+reader+"\n    wirte: [\"*\"]\n"))
		if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatalf("SIGHUP: %v", err)
		}
		rec := p.waitRecord(t, 2, reloadOf("policy"))
		if msg, _ := rec["error"].(string); rec["level"] != "ERROR" || !strings.Contains(msg, "line 3") {
			t.Errorf("policy reload record = %v, want an ERROR naming line 3", rec)
		}
		if code, body := do("PATCH", base+"?validateOnly=true", validate); code != http.StatusOK {
			t.Errorf("PATCH by a reader under the policy still in force = %d %s, want 200", code, body)
		}
	})

	t.Run("the private key file is read again at the next authentication", func(t *testing.T) {
		current.Store(newAtlas) // Atlas revokes the old key
		if code, body := do("GET", base, ""); code != http.StatusInternalServerError || !strings.Contains(body, "credentials") {
			t.Errorf("GET once Atlas refuses the old key = %d %s, want 500 about the credentials", code, body)
		}
		replaceFile(t, keyFile, []byte(newKey+"\n"))
		if code, body := do("GET", base, ""); code != http.StatusOK {
			t.Errorf("GET after the key file was rotated = %d %s, want 200", code, body)
		}
		if s := newAtlas.Stats(); s.Gets != 1 {
			t.Errorf("Atlas with the new key served %d GETs, want 1", s.Gets)
		}
	})

	select {
	case err := <-p.done:
		t.Fatalf("encryptiond exited during the rotations: %v\nstderr:\n%s", err, p.stderr)
	default:
	}
	if err := p.stop(t); err != nil {
		t.Errorf("exit after SIGTERM = %v, want status 0\nstderr:\n%s", err, p.stderr)
	}
	checkNoSecrets(t, p, oldKey, newKey)
}
