package daemon

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/encryptiond/encryptiond/atlas/atlastest"
	encryptionv1 "github.com/encryptiond/encryptiond/gen/atlas/encryption/v1"
	"github.com/encryptiond/encryptiond/server/telemetry"
)

func TestParseConfigCredentialFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := func(name, content string) string { return writeFile(t, dir, name, []byte(content)) }
	private := file("private-key", "priv-s3cr3t\n")
	crlf := file("public-key", "pub\r\n")
	twoNewlines := file("secret", "sa-s3cr3t\n\n")
	id := file("client-id", "mdb_sa_id_1")
	tests := []struct {
		name string
		env  map[string]string
		want Credentials
	}{
		{
			name: "private key from a file, public key from the environment",
			env:  map[string]string{EnvPublicKey: "pub", EnvPrivateKeyFile: private},
			want: Credentials{PublicKey: "pub", PrivateKey: "priv-s3cr3t", PrivateKeyFile: private},
		},
		{
			name: "both from files; one newline, \\r\\n too, is stripped",
			env:  map[string]string{EnvPublicKeyFile: crlf, EnvPrivateKeyFile: private},
			want: Credentials{PublicKey: "pub", PrivateKey: "priv-s3cr3t", PublicKeyFile: crlf, PrivateKeyFile: private},
		},
		{
			name: "service account from files; only one newline is stripped",
			env:  map[string]string{EnvClientIDFile: id, EnvClientSecretFile: twoNewlines},
			want: Credentials{ClientID: "mdb_sa_id_1", ClientSecret: "sa-s3cr3t\n", ClientIDFile: id, ClientSecretFile: twoNewlines},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := ParseConfig(nil, envOf(tt.env))
			if err != nil {
				t.Fatalf("ParseConfig() = %v", err)
			}
			if diff := cmp.Diff(tt.want, cfg.Credentials); diff != "" {
				t.Errorf("ParseConfig().Credentials mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseConfigCredentialFileErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	secret := writeFile(t, dir, "private-key", []byte("priv-s3cr3t\n"))
	empty := writeFile(t, dir, "empty", []byte("\n"))
	large := writeFile(t, dir, "large", bytes.Repeat([]byte("s3cr3t"), maxCredentialFileSize))
	absent := filepath.Join(dir, "absent")
	tests := []struct {
		name string
		env  map[string]string
		want []string // substrings of the error
	}{
		{
			name: "a variable and its _FILE form",
			env:  map[string]string{EnvPublicKey: "pub", EnvPrivateKey: "s3cr3t", EnvPrivateKeyFile: secret},
			want: []string{EnvPrivateKey + " and " + EnvPrivateKeyFile + " are both set"},
		},
		{
			name: "the same for the service account",
			env:  map[string]string{EnvClientID: "id", EnvClientIDFile: secret, EnvClientSecret: "s3cr3t"},
			want: []string{EnvClientID + " and " + EnvClientIDFile + " are both set"},
		},
		{
			name: "a file that does not exist",
			env:  map[string]string{EnvPublicKey: "pub", EnvPrivateKeyFile: absent},
			want: []string{EnvPrivateKeyFile, absent, "no such file"},
		},
		{
			name: "a directory",
			env:  map[string]string{EnvPublicKey: "pub", EnvPrivateKeyFile: dir},
			want: []string{EnvPrivateKeyFile, dir},
		},
		{
			name: "an empty file",
			env:  map[string]string{EnvPublicKey: "pub", EnvPrivateKeyFile: empty},
			want: []string{EnvPrivateKeyFile, empty, "is empty"},
		},
		{
			name: "a file too large for a secret",
			env:  map[string]string{EnvPublicKey: "pub", EnvPrivateKeyFile: large},
			want: []string{EnvPrivateKeyFile, "larger than"},
		},
		{
			name: "half a pair from a file",
			env:  map[string]string{EnvPrivateKeyFile: secret},
			want: []string{EnvPublicKey + " is missing", "_FILE"},
		},
		{
			name: "both pairs, one from files",
			env:  map[string]string{EnvPublicKey: "pub", EnvPrivateKeyFile: secret, EnvClientID: "id", EnvClientSecret: "s3cr3t"},
			want: []string{"exactly one pair"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := ParseConfig(nil, envOf(tt.env))
			if err == nil {
				t.Fatalf("ParseConfig() = nil error, want one containing %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("ParseConfig() = %q, want it to contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "s3cr3t") {
				t.Errorf("ParseConfig() = %q, shows a secret", err)
			}
		})
	}
}

// TestCredentialValueRereads: a value from a file is read again each time
// it is asked for; a change is reported, and a file that can no longer be
// read keeps the last value, reported as a failure.
func TestCredentialValueRereads(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := writeFile(t, dir, "secret", []byte("first-s3cr3t\n"))
	var logged syncBuffer
	reg := prometheus.NewRegistry()
	metrics, err := telemetry.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	reports := reloadReporter{log: slog.New(slog.NewJSONHandler(&logged, nil)), metrics: metrics}
	v := &credentialValue{name: EnvClientSecret, path: path, value: "first-s3cr3t"}

	steps := []struct {
		name    string
		change  func() error
		want    string
		message string // of the log record it adds, "" for none
	}{
		{"unchanged", func() error { return nil }, "first-s3cr3t", ""},
		{"rotated", func() error { return os.WriteFile(path, []byte("second-s3cr3t\n"), 0o600) }, "second-s3cr3t", "reloaded"},
		{"removed", func() error { return os.Remove(path) }, "second-s3cr3t", "reload failed: the previous configuration stays in force"},
		{"back", func() error { return os.WriteFile(path, []byte("third-s3cr3t"), 0o600) }, "third-s3cr3t", "reloaded"},
	}
	for _, step := range steps {
		before := len(logged.records(t))
		if err := step.change(); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		if got := v.current(reports); got != step.want {
			t.Errorf("%s: current() = %q, want %q", step.name, got, step.want)
		}
		recs := logged.records(t)[before:]
		switch {
		case step.message == "" && len(recs) != 0:
			t.Errorf("%s: logged %v, want nothing", step.name, recs)
		case step.message != "" && (len(recs) != 1 || recs[0]["msg"] != step.message || recs[0]["what"] != whatCredentials):
			t.Errorf("%s: logged %v, want one %q record of %s", step.name, recs, step.message, whatCredentials)
		}
	}
	if strings.Contains(logged.String(), "s3cr3t") {
		t.Errorf("the log shows a secret:\n%s", logged.String())
	}
	if !strings.Contains(logged.String(), EnvClientSecretFile) {
		t.Errorf("the log does not name %s:\n%s", EnvClientSecretFile, logged.String())
	}
	if diff := cmp.Diff(map[string]float64{"atlas_credentials/ok": 2, "atlas_credentials/error": 1}, reloadCounts(t, reg)); diff != "" {
		t.Errorf("encryptiond_config_reloads_total mismatch (-want +got):\n%s", diff)
	}
}

// rotatingAtlas serves the old emulator until rotate, then the new one,
// which accepts other credentials: Atlas once the old key or secret is
// revoked.
type rotatingAtlas struct {
	old, new *atlastest.Emulator
	current  atomic.Pointer[atlastest.Emulator]
	url      string
}

func newRotatingAtlas(t *testing.T, old, new atlastest.EmulatorConfig) *rotatingAtlas {
	t.Helper()
	a := &rotatingAtlas{old: atlastest.NewEmulator(old), new: atlastest.NewEmulator(new)}
	a.current.Store(a.old)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.current.Load().ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	a.url = srv.URL
	return a
}

func (a *rotatingAtlas) rotate() { a.current.Store(a.new) }

// TestCredentialFileRotation runs the daemon with its Atlas credentials in
// files of a Secret volume, then rotates them as an operator does: Atlas
// first stops accepting the old ones, then the kubelet updates the files.
// Calls fail in between (Atlas refuses the old credentials) and succeed
// again with the next authentication, without a restart.
func TestCredentialFileRotation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		old, new atlastest.EmulatorConfig
		files    func(atlastest.EmulatorConfig) map[string][]byte
		env      func(*secretVolume) map[string]string
	}{
		{
			name: "API key",
			old:  atlastest.EmulatorConfig{PublicKey: "rotating-public-A", PrivateKey: "rotating-private-s3cr3t-A", AutoCreateGroups: true},
			new:  atlastest.EmulatorConfig{PublicKey: "rotating-public-B", PrivateKey: "rotating-private-s3cr3t-B", AutoCreateGroups: true},
			files: func(c atlastest.EmulatorConfig) map[string][]byte {
				return map[string][]byte{"public-key": []byte(c.PublicKey + "\n"), "private-key": []byte(c.PrivateKey + "\n")}
			},
			env: func(v *secretVolume) map[string]string {
				return map[string]string{EnvPublicKeyFile: v.path("public-key"), EnvPrivateKeyFile: v.path("private-key")}
			},
		},
		{
			name: "service account",
			old:  atlastest.EmulatorConfig{ClientID: "mdb_sa_id_rotating", ClientSecret: "mdb_sa_sk_s3cr3t_A", AutoCreateGroups: true},
			new:  atlastest.EmulatorConfig{ClientID: "mdb_sa_id_rotating", ClientSecret: "mdb_sa_sk_s3cr3t_B", AutoCreateGroups: true},
			files: func(c atlastest.EmulatorConfig) map[string][]byte {
				return map[string][]byte{"client-secret": []byte(c.ClientSecret + "\n")}
			},
			env: func(v *secretVolume) map[string]string {
				return map[string]string{EnvClientID: "mdb_sa_id_rotating", EnvClientSecretFile: v.path("client-secret")}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := newRotatingAtlas(t, tt.old, tt.new)
			vol := newSecretVolume(t, tt.files(tt.old))
			cfg, err := ParseConfig([]string{"-atlas-base-url", a.url}, envOf(tt.env(vol)))
			if err != nil {
				t.Fatalf("ParseConfig() = %v", err)
			}
			d := startDaemon(t, cfg)
			api := encryptionv1.NewEncryptionServiceClient(d.grpcConn(t))
			get := &encryptionv1.GetEncryptionAtRestRequest{GroupId: testGroup}
			ctx := t.Context()
			if _, err := api.GetEncryptionAtRest(ctx, get); err != nil {
				t.Fatalf("GetEncryptionAtRest() with the first credentials = %v", err)
			}

			a.rotate()
			_, err = api.GetEncryptionAtRest(ctx, get)
			if st := status.Convert(err); st.Code() != codes.Internal || !strings.Contains(st.Message(), "rejected this service's API credentials") {
				t.Fatalf("GetEncryptionAtRest() once Atlas refuses the old credentials = %v, want Internal naming the credentials", err)
			}

			vol.update(tt.files(tt.new))
			if _, err := api.GetEncryptionAtRest(ctx, get); err != nil {
				t.Fatalf("GetEncryptionAtRest() after the files were rotated = %v", err)
			}
			if _, err := api.UpdateEncryptionAtRest(ctx, awsUpdate(testGroup, awsEnable(), false)); err != nil {
				t.Fatalf("UpdateEncryptionAtRest() after the files were rotated = %v", err)
			}
			if s := a.new.Stats(); s.Gets != 1 || s.Patches != 1 {
				t.Errorf("Atlas with the new credentials processed %d GETs and %d PATCHes, want 1 and 1", s.Gets, s.Patches)
			}
			var changed int
			for _, rec := range d.log.reloadRecords(t, whatCredentials) {
				if rec["msg"] == "reloaded" && rec["trigger"] == triggerAuthentication {
					changed++
				}
			}
			if want := len(tt.files(tt.new)); changed != want {
				t.Errorf("%d credential reload records, want %d (one per file):\n%s", changed, want, d.log)
			}
			if strings.Contains(d.log.String(), "s3cr3t") {
				t.Errorf("the log shows a secret:\n%s", d.log)
			}
		})
	}
}
