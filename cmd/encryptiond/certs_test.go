package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/encryptiond/encryptiond/atlas/atlastest"
	encryptionv1 "github.com/encryptiond/encryptiond/gen/atlas/encryption/v1"
	"github.com/encryptiond/encryptiond/server/daemon"
)

// recipeMarker precedes the recipe's code block in docs/DEPLOYING.md.
const recipeMarker = "<!-- docs/certs.sh, verbatim:"

// recipeBlock returns the ```sh block that follows the marker in doc.
func recipeBlock(doc string) (string, bool) {
	_, after, ok := strings.Cut(doc, recipeMarker)
	if !ok {
		return "", false
	}
	_, after, ok = strings.Cut(after, "-->\n```sh\n")
	if !ok {
		return "", false
	}
	block, _, ok := strings.Cut(after, "\n```\n")
	return block + "\n", ok
}

// TestCertRecipe checks that docs/DEPLOYING.md shows docs/certs.sh byte for
// byte, runs that script in an empty directory, serves with its output
// under mutual TLS and the kit's example policy (whose identities are the
// script's), and makes allowed and refused calls with its client
// certificates over gRPC and REST.
func TestCertRecipe(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the real binary; skipped with -short")
	}
	t.Parallel()
	script, err := os.ReadFile("../../docs/certs.sh")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile("../../docs/DEPLOYING.md")
	if err != nil {
		t.Fatal(err)
	}
	block, ok := recipeBlock(string(doc))
	if !ok {
		t.Fatalf("docs/DEPLOYING.md: no ```sh block after %q", recipeMarker)
	}
	if block != string(script) {
		t.Fatalf("docs/DEPLOYING.md shows a recipe that is not docs/certs.sh: paste the file into the block, byte for byte")
	}
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl is not installed, so the recipe cannot run here (apt-get install openssl)")
	}
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh to run the recipe")
	}

	dir := t.TempDir()
	scriptPath, err := filepath.Abs("../../docs/certs.sh")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, sh, scriptPath)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sh docs/certs.sh: %v\n%s", err, out)
	}
	file := func(name string) string { return filepath.Join(dir, name) }

	b := buildBinaries(t)
	const clientID, clientSecret = "mdb_sa_id_recipe", "mdb_sa_sk_recipe-s3cr3t"
	_, srv := atlastest.NewServer(t, atlastest.EmulatorConfig{ClientID: clientID, ClientSecret: clientSecret, AutoCreateGroups: true})
	p := start(t, b.encryptiond,
		[]string{daemon.EnvClientID + "=" + clientID, daemon.EnvClientSecret + "=" + clientSecret, daemon.EnvBaseURL + "=" + srv.URL},
		"-grpc-addr", "127.0.0.1:0", "-http-addr", "127.0.0.1:0",
		"-tls-cert", file("server.pem"), "-tls-key", file("server-key.pem"), "-tls-client-ca", file("ca.pem"),
		"-authz-policy", "../../deploy/kubernetes/example/policy.yaml",
	)

	// The callers trust the recipe's CA; the server's SANs hold 127.0.0.1
	// (dialled over gRPC) and the Service's name (used as ServerName over REST).
	roots := x509.NewCertPool()
	caPEM, err := os.ReadFile(file("ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if !roots.AppendCertsFromPEM(caPEM) {
		t.Fatal("ca.pem holds no certificate")
	}
	caller := func(name string) []tls.Certificate {
		pair, err := tls.LoadX509KeyPair(file(name+".pem"), file(name+"-key.pem"))
		if err != nil {
			t.Fatalf("%s.pem: %v", name, err)
		}
		return []tls.Certificate{pair}
	}
	grpcAs := func(name string) encryptionv1.EncryptionServiceClient {
		conn, err := grpc.NewClient(p.grpcAddr, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: roots, Certificates: caller(name)})))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return encryptionv1.NewEncryptionServiceClient(conn)
	}
	restAs := func(name, method, body string) (int, string) {
		t.Helper()
		conf := &tls.Config{RootCAs: roots, ServerName: "encryptiond.encryptiond.svc"}
		if name != "" {
			conf.Certificates = caller(name)
		}
		tr := &http.Transport{TLSClientConfig: conf}
		defer tr.CloseIdleConnections()
		req, err := http.NewRequestWithContext(t.Context(), method, "https://"+p.httpAD+"/v1/groups/"+recipeGroup+"/encryptionAtRest", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := (&http.Client{Transport: tr, Timeout: 30 * time.Second}).Do(req)
		if err != nil {
			t.Fatalf("%s as %q: %v", method, name, err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(out)
	}
	enable := &encryptionv1.UpdateEncryptionAtRestRequest{
		GroupId: recipeGroup,
		Config: &encryptionv1.ProviderConfig{Provider: &encryptionv1.ProviderConfig_AwsKms{AwsKms: &encryptionv1.AwsKms{
			Enabled:             proto.Bool(true),
			CustomerMasterKeyId: proto.String("arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"),
			Region:              proto.String("US_EAST_1"),
			RoleId:              proto.String("64b6e34b3d91647abb20e7b9"),
		}}},
	}

	t.Run("gRPC: key-admin may change the project", func(t *testing.T) {
		got, err := grpcAs("key-admin").UpdateEncryptionAtRest(t.Context(), enable)
		if err != nil || !got.GetAwsKms().GetEnabled() {
			t.Errorf("UpdateEncryptionAtRest as key-admin = %v, %v; want AWS KMS enabled", got, err)
		}
	})
	t.Run("gRPC: the auditor may not", func(t *testing.T) {
		_, err := grpcAs("auditor").UpdateEncryptionAtRest(t.Context(), enable)
		if status.Code(err) != codes.PermissionDenied {
			t.Errorf("UpdateEncryptionAtRest as auditor = %v, want PermissionDenied", err)
		}
	})
	t.Run("REST: the auditor may read", func(t *testing.T) {
		if code, body := restAs("auditor", http.MethodGet, ""); code != http.StatusOK || !strings.Contains(body, `"awsKms"`) {
			t.Errorf("GET as auditor = %d %s, want 200 with the configuration", code, body)
		}
	})
	t.Run("REST: the auditor may not change", func(t *testing.T) {
		if code, body := restAs("auditor", http.MethodPatch, `{"awsKms": {"enabled": false}}`); code != http.StatusForbidden {
			t.Errorf("PATCH as auditor = %d %s, want 403", code, body)
		}
	})
	t.Run("REST: no client certificate, no call", func(t *testing.T) {
		if code, body := restAs("", http.MethodGet, ""); code != http.StatusUnauthorized {
			t.Errorf("GET without a certificate = %d %s, want 401", code, body)
		}
	})
	t.Run("the audit log names the callers by their URI SAN", func(t *testing.T) {
		want := map[string]string{
			"spiffe://example.org/ns/platform/sa/key-admin": "applied",
			"spiffe://example.org/ns/apps/sa/auditor":       "refused",
		}
		for deadline := time.Now().Add(10 * time.Second); len(want) > 0 && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			for _, r := range auditRecords(t, p.stderr.String()) {
				if c, _ := r["caller"].(string); want[c] == r["outcome"] {
					delete(want, c)
				}
			}
		}
		if len(want) > 0 {
			t.Errorf("no audit records for %v\n%s", want, p.stderr)
		}
	})

	if err := p.stop(t); err != nil {
		t.Errorf("exit after SIGTERM = %v, want status 0\nstderr:\n%s", err, p.stderr)
	}
	if out := p.stdout.String() + p.stderr.String(); strings.Contains(out, clientSecret) {
		t.Errorf("the daemon's output shows the client secret")
	}
}

// recipeGroup is the project the example policy lets key-admin change.
const recipeGroup = "32b6e34b3d91647abb20e7b8"
