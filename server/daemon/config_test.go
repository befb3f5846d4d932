package daemon

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/encryptiond/encryptiond/atlas"
)

// envOf returns a getenv reading m.
func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

var digestEnv = map[string]string{EnvPublicKey: "pubkey", EnvPrivateKey: "priv-secret-value"}

func TestParseConfig(t *testing.T) {
	t.Parallel()
	defaults := Config{
		GRPCAddr:        ":9090",
		HTTPAddr:        ":8080",
		AtlasBaseURL:    "https://cloud.mongodb.com",
		AtlasAPIVersion: atlas.APIVersionV2,
		LogFormat:       "json",
		LogLevel:        slog.LevelInfo,
		ShutdownTimeout: DefaultShutdownTimeout,
		Credentials:     Credentials{PublicKey: "pubkey", PrivateKey: "priv-secret-value"},

		AtlasRetryMaxElapsed:        10 * time.Second,
		AtlasRolePropagationTimeout: 3 * time.Minute,
		ReloadInterval:              DefaultReloadInterval,
		WatchInterval:               time.Minute,
		WatchFailures:               5,
		AtlasConcurrency:            8,
	}
	with := func(f func(*Config)) Config {
		c := defaults
		f(&c)
		return c
	}
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want Config
	}{
		{name: "defaults with an API key", env: digestEnv, want: defaults},
		{
			name: "service account",
			env:  map[string]string{EnvClientID: "mdb_sa_id_1", EnvClientSecret: "mdb_sa_sk_2"},
			want: with(func(c *Config) { c.Credentials = Credentials{ClientID: "mdb_sa_id_1", ClientSecret: "mdb_sa_sk_2"} }),
		},
		{
			name: "every flag",
			args: []string{
				"-grpc-addr", "127.0.0.1:1", "-http-addr=127.0.0.1:2", "-atlas-base-url", "http://127.0.0.1:3",
				"-atlas-api-version", "v1.0", "-log-format", "text", "-log-level", "debug", "-shutdown-timeout", "3s",
				"-tls-cert", "c.pem", "-tls-key", "k.pem", "-tls-client-ca", "ca.pem",
				"-authz-policy", "policy.yaml", "-rate-limit", "2.5", "-rate-burst", "5",
				"-atlas-retry-max-elapsed", "1500ms", "-atlas-h2c", "-reload-interval", "1m",
				"-watch-interval", "30s", "-watch-failures", "3", "-atlas-concurrency", "16",
				"-monitor", "5e6f7a8b9c0d1e2f3a4b5c6d, 6f7a8b9c0d1e2f3a4b5c6d7e,5e6f7a8b9c0d1e2f3a4b5c6d",
			},
			env: digestEnv,
			want: with(func(c *Config) {
				c.GRPCAddr, c.HTTPAddr, c.AtlasBaseURL = "127.0.0.1:1", "127.0.0.1:2", "http://127.0.0.1:3"
				c.AtlasAPIVersion, c.LogFormat, c.LogLevel, c.ShutdownTimeout = atlas.APIVersionV1, "text", slog.LevelDebug, 3*time.Second
				c.TLSCert, c.TLSKey, c.TLSClientCA = "c.pem", "k.pem", "ca.pem"
				c.AuthzPolicy, c.RateLimit, c.RateBurst = "policy.yaml", 2.5, 5
				c.AtlasRetryMaxElapsed = 1500 * time.Millisecond
				c.AtlasH2C = true
				c.ReloadInterval = time.Minute
				c.WatchInterval, c.WatchFailures, c.AtlasConcurrency = 30*time.Second, 3, 16
				c.Monitor = MonitorTargets{GroupIDs: []string{"5e6f7a8b9c0d1e2f3a4b5c6d", "6f7a8b9c0d1e2f3a4b5c6d7e"}}
			}),
		},
		{
			name: "monitor every project",
			args: []string{"-monitor", "all"},
			env:  digestEnv,
			want: with(func(c *Config) { c.Monitor = MonitorTargets{All: true} }),
		},
		{
			name: "base URL from the environment",
			env:  map[string]string{EnvPublicKey: "pubkey", EnvPrivateKey: "priv-secret-value", EnvBaseURL: "http://env:1"},
			want: with(func(c *Config) { c.AtlasBaseURL = "http://env:1" }),
		},
		{
			name: "the flag beats the environment",
			args: []string{"-atlas-base-url", "http://flag:1"},
			env:  map[string]string{EnvPublicKey: "pubkey", EnvPrivateKey: "priv-secret-value", EnvBaseURL: "http://env:1"},
			want: with(func(c *Config) { c.AtlasBaseURL = "http://flag:1" }),
		},
		{
			name: "dev needs no credentials and stays on loopback",
			args: []string{"-dev"},
			want: with(func(c *Config) {
				c.Dev, c.Credentials = true, Credentials{}
				c.GRPCAddr, c.HTTPAddr = "127.0.0.1:9090", "127.0.0.1:8080"
			}),
		},
		{
			name: "dev ignores half a pair and keeps explicit hosts",
			args: []string{"-dev", "-grpc-addr", "0.0.0.0:1", "-http-addr", ":0"},
			env:  map[string]string{EnvClientID: "only-the-id"},
			want: with(func(c *Config) {
				c.Dev, c.Credentials = true, Credentials{}
				c.GRPCAddr, c.HTTPAddr = "0.0.0.0:1", "127.0.0.1:0"
			}),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseConfig(tt.args, envOf(tt.env))
			if err != nil {
				t.Fatalf("ParseConfig(%q) = %v, want no error", tt.args, err)
			}
			if diff := cmp.Diff(tt.want, got, cmpopts.IgnoreFields(Config{}, "OnReady")); diff != "" {
				t.Errorf("ParseConfig(%q) mismatch (-want +got):\n%s", tt.args, diff)
			}
		})
	}
}

func TestParseConfigErrors(t *testing.T) {
	t.Parallel()
	allFour := []string{EnvPublicKey, EnvPrivateKey, EnvClientID, EnvClientSecret}
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want []string // substrings of the error
	}{
		{name: "no credentials", want: append(allFour, "-dev")},
		{name: "public key only", env: map[string]string{EnvPublicKey: "p"}, want: []string{EnvPublicKey, EnvPrivateKey, EnvPrivateKey + " is missing"}},
		{name: "private key only", env: map[string]string{EnvPrivateKey: "s3cr3t"}, want: []string{EnvPublicKey + " is missing"}},
		{name: "client id only", env: map[string]string{EnvClientID: "id"}, want: []string{EnvClientSecret + " is missing"}},
		{name: "client secret only", env: map[string]string{EnvClientSecret: "s3cr3t"}, want: []string{EnvClientID + " is missing"}},
		{
			name: "both modes",
			env:  map[string]string{EnvPublicKey: "p", EnvPrivateKey: "s3cr3t", EnvClientID: "id", EnvClientSecret: "s3cr3t"},
			want: append(allFour, "exactly one"),
		},
		{name: "bad API version", args: []string{"-atlas-api-version", "v3"}, env: digestEnv, want: []string{"-atlas-api-version", "v1.0"}},
		{name: "bad log format", args: []string{"-log-format", "xml"}, env: digestEnv, want: []string{"-log-format"}},
		{name: "bad log level", args: []string{"-log-level", "loud"}, env: digestEnv, want: []string{"log-level"}},
		{name: "zero retry budget", args: []string{"-atlas-retry-max-elapsed", "0s"}, env: digestEnv, want: []string{"-atlas-retry-max-elapsed"}},
		{name: "h2c to https", args: []string{"-atlas-h2c"}, env: digestEnv, want: []string{"-atlas-h2c", "https://cloud.mongodb.com"}},
		{name: "zero shutdown timeout", args: []string{"-shutdown-timeout", "0s"}, env: digestEnv, want: []string{"-shutdown-timeout"}},
		{name: "cert without key", args: []string{"-tls-cert", "c.pem"}, env: digestEnv, want: []string{"-tls-cert and -tls-key"}},
		{name: "client CA without cert", args: []string{"-tls-client-ca", "ca.pem"}, env: digestEnv, want: []string{"-tls-client-ca"}},
		{name: "policy without mutual TLS", args: []string{"-authz-policy", "p.yaml"}, env: digestEnv, want: []string{"-authz-policy", "-tls-client-ca"}},
		{name: "negative rate limit", args: []string{"-rate-limit", "-1"}, env: digestEnv, want: []string{"-rate-limit"}},
		{name: "negative burst", args: []string{"-rate-burst", "-1"}, env: digestEnv, want: []string{"-rate-burst"}},
		{name: "negative reload interval", args: []string{"-reload-interval", "-1s"}, env: digestEnv, want: []string{"-reload-interval"}},
		{name: "watch interval too short", args: []string{"-watch-interval", "5s"}, env: digestEnv, want: []string{"-watch-interval", "10s or more"}},
		{name: "no watch failures", args: []string{"-watch-failures", "0"}, env: digestEnv, want: []string{"-watch-failures"}},
		{name: "no concurrency", args: []string{"-atlas-concurrency", "0"}, env: digestEnv, want: []string{"-atlas-concurrency"}},
		{name: "monitor of a malformed id", args: []string{"-monitor", "5e6f7a8b9c0d1e2f3a4b5c6d,Orders"}, env: digestEnv, want: []string{"-monitor", `"Orders" is not one`}},
		{name: "empty monitor", args: []string{"-monitor", ""}, env: digestEnv, want: []string{"-monitor"}},
		{name: "unknown flag", args: []string{"-public-key", "x"}, env: digestEnv, want: []string{"public-key"}},
		{name: "argument", args: []string{"serve"}, env: digestEnv, want: []string{`"serve"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := ParseConfig(tt.args, envOf(tt.env))
			if err == nil {
				t.Fatalf("ParseConfig(%q) = nil error, want one naming %q", tt.args, tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("ParseConfig(%q) = %q, want it to contain %q", tt.args, err, w)
				}
			}
			if strings.Contains(err.Error(), "s3cr3t") {
				t.Errorf("ParseConfig(%q) = %q, shows a secret", tt.args, err)
			}
		})
	}
}

func TestParseConfigHelp(t *testing.T) {
	t.Parallel()
	for _, arg := range []string{"-help", "-h", "--help"} {
		if _, err := ParseConfig([]string{arg}, envOf(nil)); !errors.Is(err, flag.ErrHelp) {
			t.Errorf("ParseConfig(%q) = %v, want flag.ErrHelp", arg, err)
		}
	}
}

func TestUsageDocumentsEverything(t *testing.T) {
	t.Parallel()
	usage := Usage()
	want := []string{
		"-grpc-addr", "-http-addr", "-atlas-base-url", "-atlas-api-version", "-dev", "-log-format",
		"-log-level", "-shutdown-timeout", "-tls-cert", "-tls-key", "-tls-client-ca",
		"-authz-policy", "-rate-limit", "-rate-burst", "-atlas-retry-max-elapsed", "-atlas-h2c", "-reload-interval",
		"-watch-interval", "-watch-failures", "-atlas-concurrency", "-monitor", "(default 1m0s)", "(default off)",
		EnvPublicKey, EnvPrivateKey, EnvClientID, EnvClientSecret, EnvBaseURL,
		EnvPublicKeyFile, EnvPrivateKeyFile, EnvClientIDFile, EnvClientSecretFile, "SIGHUP",
		`(default ":9090")`, `(default ":8080")`, `(default "https://cloud.mongodb.com")`, "(default v2)",
		`(default "json")`, "(default INFO)", "(default 15s)", "(default 10s)", "(default 5s)",
	}
	for _, w := range want {
		if !strings.Contains(usage, w) {
			t.Errorf("Usage() lacks %q:\n%s", w, usage)
		}
	}
	// Every flag states its default.
	fs := newFlagSet(&Config{})
	fs.VisitAll(func(f *flag.Flag) {
		i := strings.Index(usage, "  -"+f.Name+" ")
		if i < 0 {
			i = strings.Index(usage, "  -"+f.Name+"\n")
		}
		if i < 0 {
			t.Errorf("Usage() lacks -%s", f.Name)
			return
		}
		entry := usage[i+3:]
		if next := strings.Index(entry, "\n  -"); next >= 0 {
			entry = entry[:next]
		}
		if !strings.Contains(entry, "(default ") {
			t.Errorf("Usage() entry of -%s states no default: %q", f.Name, entry)
		}
	})
}

func TestCredentialsNeverPrinted(t *testing.T) {
	t.Parallel()
	cfg := Config{Credentials: Credentials{PublicKey: "pub", PrivateKey: "private-s3cr3t", ClientSecret: "client-s3cr3t"}}
	var logged strings.Builder
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("config", "config", cfg, "creds", cfg.Credentials)
	for _, out := range []string{fmt.Sprintf("%v %+v %#v %s", cfg, cfg, cfg, cfg.Credentials), logged.String()} {
		if strings.Contains(out, "s3cr3t") {
			t.Errorf("printed configuration shows a secret: %s", out)
		}
	}
}
