package daemon

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"os"
	"strings"
	"time"

	"github.com/encryptiond/encryptiond/atlas"
	"github.com/encryptiond/encryptiond/server"
)

// Environment variables read by ParseConfig. Credentials come only from the
// environment (or files it names, credentials.go), never from flags, which
// any user could read in ps.
const (
	EnvPublicKey    = "MONGODB_ATLAS_PUBLIC_API_KEY"
	EnvPrivateKey   = "MONGODB_ATLAS_PRIVATE_API_KEY"
	EnvClientID     = "MONGODB_ATLAS_CLIENT_ID"
	EnvClientSecret = "MONGODB_ATLAS_CLIENT_SECRET"
	EnvBaseURL      = "MONGODB_ATLAS_BASE_URL"
)

// Defaults of the flags.
const (
	DefaultGRPCAddr        = ":9090"
	DefaultHTTPAddr        = ":8080"
	DefaultShutdownTimeout = 15 * time.Second
)

// Config is everything Run needs, parsed from flags and the environment by
// ParseConfig. The zero value is not useful; build one with ParseConfig, or
// in tests set the fields directly.
type Config struct {
	// GRPCAddr is the gRPC listen address (-grpc-addr). ":0" picks a port;
	// OnReady reports it.
	GRPCAddr string
	// HTTPAddr is the REST, metrics and health listen address (-http-addr).
	HTTPAddr string
	// HealthAddr, if not empty, is a plaintext listen address serving only
	// the gRPC health service (-health-addr): for probes that cannot speak
	// TLS, such as the kubelet's native gRPC probe, when GRPCAddr serves
	// TLS. With Dev an address without a host listens on 127.0.0.1.
	HealthAddr string
	// AtlasBaseURL is Atlas's host (-atlas-base-url, else
	// MONGODB_ATLAS_BASE_URL, else atlas.DefaultBaseURL). Ignored with Dev.
	AtlasBaseURL string
	// AtlasAPIVersion selects Atlas API v2 or the legacy v1.0
	// (-atlas-api-version).
	AtlasAPIVersion atlas.APIVersion
	// AtlasRetryMaxElapsed bounds how long one call to Atlas keeps retrying
	// what may be retried (-atlas-retry-max-elapsed); see atlas.RetryPolicy.
	// 0 means atlas.DefaultRetryPolicy's 10 s.
	AtlasRetryMaxElapsed time.Duration
	// AtlasRolePropagationTimeout bounds how long a change naming a Cloud
	// Provider Access role is sent again while Atlas cannot use the role
	// yet (-atlas-role-propagation-timeout); see
	// server.WithRolePropagationTimeout.
	AtlasRolePropagationTimeout time.Duration
	// AtlasH2C speaks HTTP/2 without TLS (h2c) to an http:// Atlas base
	// URL such as an emulator's (-atlas-h2c); see atlas.WithUnencryptedHTTP2.
	AtlasH2C bool
	// Dev runs against an Atlas emulator started in-process on a random
	// loopback port with generated credentials (-dev).
	Dev bool
	// LogFormat is "json" or "text" (-log-format).
	LogFormat string
	// LogLevel is the minimum level logged (-log-level).
	LogLevel slog.Level
	// ShutdownTimeout bounds how long in-flight calls may run after the
	// context is cancelled (-shutdown-timeout).
	ShutdownTimeout time.Duration
	// TLSCert and TLSKey are PEM files; when set, gRPC and HTTP serve TLS
	// (-tls-cert, -tls-key).
	TLSCert, TLSKey string
	// TLSClientCA is a PEM bundle; when set, callers must present a client
	// certificate signed by it (mutual TLS), and their identity is the
	// certificate's (-tls-client-ca).
	TLSClientCA string
	// AuthzPolicy is the authorization policy file (-authz-policy): which
	// certificate identity may read or change which project. It needs
	// TLSClientCA. Without it, with mutual TLS, every authenticated caller
	// may read and nobody may change.
	AuthzPolicy string
	// RateLimit is each caller's average number of calls per second
	// (-rate-limit); 0 means unlimited.
	RateLimit float64
	// RateBurst is how many calls a caller may make at once (-rate-burst);
	// 0 means the rate limit rounded up.
	RateBurst int
	// ReloadInterval is how often the TLS files and the policy file are
	// read to see whether they changed, and reloaded if they did
	// (-reload-interval; reload.go). 0 turns polling off; Reload still
	// works.
	ReloadInterval time.Duration
	// WatchInterval is how often a watched project is polled
	// (-watch-interval): by WatchEncryptionAtRest and the monitor.
	WatchInterval time.Duration
	// WatchFailures is how many polls of a watched project may fail in a
	// row before its watchers get the error (-watch-failures).
	WatchFailures int
	// AtlasConcurrency is how many projects ListEncryptionAtRest reads at
	// once (-atlas-concurrency).
	AtlasConcurrency int
	// Monitor selects the projects the daemon watches on its own
	// (-monitor): none (off), every project the credentials can see (All),
	// or the GroupIDs.
	Monitor MonitorTargets
	// Credentials authenticate to Atlas; from the environment only, each
	// value directly or from the file its _FILE variable names.
	Credentials Credentials

	// OnReady, if not nil, is called once both servers accept connections,
	// with the addresses they are bound to (and the emulator's with Dev).
	// Not a flag: tests and benchmarks wait on it.
	OnReady func(Addrs)
	// Reload, if not nil, makes the serving daemon read the TLS files and
	// the policy file again each time it delivers a value, whether they
	// changed or not. Not a flag: cmd/encryptiond delivers SIGHUP here.
	Reload <-chan os.Signal
}

// MinWatchInterval is the shortest -watch-interval: a shorter one would
// poll Atlas more than its rate limits allow.
const MinWatchInterval = 10 * time.Second

// MonitorTargets are the projects of -monitor.
type MonitorTargets struct {
	All      bool     // -monitor all
	GroupIDs []string // -monitor id,id,…
}

// On reports whether the monitor runs.
func (t MonitorTargets) On() bool { return t.All || len(t.GroupIDs) > 0 }

// String is the flag's value as given.
func (t MonitorTargets) String() string {
	if t.All {
		return "all"
	}
	return strings.Join(t.GroupIDs, ",")
}

// parseMonitor reads -monitor: "all", or group ids separated by commas.
func parseMonitor(s string) (MonitorTargets, error) {
	if s == "all" {
		return MonitorTargets{All: true}, nil
	}
	var t MonitorTargets
	seen := map[string]bool{}
	for _, id := range strings.Split(s, ",") {
		id = strings.TrimSpace(id)
		if !server.IsAtlasID(id) {
			return MonitorTargets{}, fmt.Errorf("want all, or Atlas project ids (24 lowercase hexadecimal characters) separated by commas; %q is not one", id)
		}
		if !seen[id] {
			seen[id] = true
			t.GroupIDs = append(t.GroupIDs, id)
		}
	}
	return t, nil
}

// Addrs are the addresses the daemon listens on.
type Addrs struct {
	GRPC   net.Addr
	HTTP   net.Addr
	Health net.Addr // nil without -health-addr
	// Atlas is the base URL of the Atlas API in use (the emulator's in -dev).
	Atlas string
}

// ParseConfig parses the command-line arguments (without the program name)
// and the environment, read through getenv. It returns flag.ErrHelp for
// -help or -h; print Usage then. Every error names the flag or variable at
// fault.
func ParseConfig(args []string, getenv func(string) string) (Config, error) {
	cfg := Config{}
	fs := newFlagSet(&cfg)
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected argument %q: encryptiond takes only flags (see -help)", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	if !set["atlas-base-url"] {
		if v := getenv(EnvBaseURL); v != "" {
			cfg.AtlasBaseURL = v
		}
	}
	if cfg.AtlasAPIVersion != atlas.APIVersionV2 && cfg.AtlasAPIVersion != atlas.APIVersionV1 {
		return Config{}, fmt.Errorf("-atlas-api-version %q: want %q or %q", cfg.AtlasAPIVersion, atlas.APIVersionV2, atlas.APIVersionV1)
	}
	if cfg.LogFormat != "json" && cfg.LogFormat != "text" {
		return Config{}, fmt.Errorf("-log-format %q: want \"json\" or \"text\"", cfg.LogFormat)
	}
	if cfg.AtlasRetryMaxElapsed <= 0 {
		return Config{}, fmt.Errorf("-atlas-retry-max-elapsed %v: want a positive duration", cfg.AtlasRetryMaxElapsed)
	}
	if cfg.AtlasRolePropagationTimeout < 0 {
		return Config{}, fmt.Errorf("-atlas-role-propagation-timeout %v: want 0 (never send again) or a positive duration", cfg.AtlasRolePropagationTimeout)
	}
	if cfg.AtlasH2C && !cfg.Dev && !strings.HasPrefix(cfg.AtlasBaseURL, "http://") {
		return Config{}, fmt.Errorf("-atlas-h2c needs an http:// Atlas base URL, not %q: over https HTTP/2 is negotiated anyway", cfg.AtlasBaseURL)
	}
	if cfg.ShutdownTimeout <= 0 {
		return Config{}, fmt.Errorf("-shutdown-timeout %v: want a positive duration", cfg.ShutdownTimeout)
	}
	if (cfg.TLSCert == "") != (cfg.TLSKey == "") {
		return Config{}, errors.New("-tls-cert and -tls-key: give both or neither")
	}
	if cfg.TLSClientCA != "" && cfg.TLSCert == "" {
		return Config{}, errors.New("-tls-client-ca needs -tls-cert and -tls-key: mutual TLS is TLS first")
	}

	if cfg.AuthzPolicy != "" && cfg.TLSClientCA == "" {
		return Config{}, errors.New("-authz-policy needs -tls-client-ca: a policy names callers by their client certificates")
	}
	if math.IsNaN(cfg.RateLimit) || math.IsInf(cfg.RateLimit, 0) || cfg.RateLimit < 0 {
		return Config{}, fmt.Errorf("-rate-limit %v: want 0 (unlimited) or a positive number of calls per second", cfg.RateLimit)
	}
	if cfg.RateBurst < 0 {
		return Config{}, fmt.Errorf("-rate-burst %d: want 0 or more", cfg.RateBurst)
	}
	if cfg.WatchInterval < MinWatchInterval {
		return Config{}, fmt.Errorf("-watch-interval %v: want %v or more (Atlas checks keys every 15 minutes; shorter polls only spend its rate limit)", cfg.WatchInterval, MinWatchInterval)
	}
	if cfg.WatchFailures < 1 {
		return Config{}, fmt.Errorf("-watch-failures %d: want 1 or more", cfg.WatchFailures)
	}
	if cfg.AtlasConcurrency < 1 {
		return Config{}, fmt.Errorf("-atlas-concurrency %d: want 1 or more", cfg.AtlasConcurrency)
	}
	if cfg.ReloadInterval < 0 {
		return Config{}, fmt.Errorf("-reload-interval %v: want 0 (off) or a positive duration", cfg.ReloadInterval)
	}
	if cfg.Dev {
		// -dev is open to any caller: keep it on loopback unless told otherwise.
		cfg.GRPCAddr, cfg.HTTPAddr = loopback(cfg.GRPCAddr), loopback(cfg.HTTPAddr)
		if cfg.HealthAddr != "" {
			cfg.HealthAddr = loopback(cfg.HealthAddr)
		}
	}

	creds, err := credentialsFromEnv(getenv)
	if err != nil && !cfg.Dev {
		return Config{}, err
	}
	if !cfg.Dev {
		cfg.Credentials = creds
	}
	return cfg, nil
}

// loopback puts an address without a host (":9090") on 127.0.0.1.
func loopback(addr string) string {
	if host, port, err := net.SplitHostPort(addr); err == nil && host == "" {
		return net.JoinHostPort("127.0.0.1", port)
	}
	return addr
}

// newFlagSet declares every flag, bound to cfg with its default.
func newFlagSet(cfg *Config) *flag.FlagSet {
	fs := flag.NewFlagSet("encryptiond", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // Usage is printed by the caller, once.
	fs.StringVar(&cfg.GRPCAddr, "grpc-addr", DefaultGRPCAddr, "gRPC listen `address`; with -dev an address without a host listens on 127.0.0.1")
	fs.StringVar(&cfg.HTTPAddr, "http-addr", DefaultHTTPAddr, "REST, /metrics, /healthz, /readyz and /openapi.json listen `address`; with -dev an address without a host listens on 127.0.0.1")
	fs.StringVar(&cfg.HealthAddr, "health-addr", "", "plaintext listen `address` serving only the gRPC health service (grpc.health.v1.Health), for probes that cannot speak TLS, such as Kubernetes' native gRPC probe, when -tls-cert makes -grpc-addr TLS-only (default none)")
	fs.StringVar(&cfg.AtlasBaseURL, "atlas-base-url", atlas.DefaultBaseURL, "Atlas Administration API base `URL`; when not given, $"+EnvBaseURL+" if set")
	cfg.AtlasAPIVersion = atlas.APIVersionV2
	fs.Func("atlas-api-version", "Atlas API `version`: v2 or v1.0 (legacy) (default v2)", func(s string) error {
		cfg.AtlasAPIVersion = atlas.APIVersion(s)
		return nil
	})
	fs.DurationVar(&cfg.AtlasRetryMaxElapsed, "atlas-retry-max-elapsed", atlas.DefaultRetryPolicy().MaxElapsed, "how long one call to Atlas may keep retrying, counted from its start; reads retry 429, 5xx and connection failures, changes only 429 and connections refused (never past the caller's deadline)")
	fs.DurationVar(&cfg.AtlasRolePropagationTimeout, "atlas-role-propagation-timeout", server.DefaultRolePropagationTimeout, "how long a change naming a Cloud Provider Access role (roleId) is sent again while Atlas answers that it cannot use the role yet (CANNOT_ASSUME_ROLE and the like, for minutes after the role is authorized), counted from the first attempt; never past the caller's deadline; 0 sends it once")
	fs.BoolVar(&cfg.AtlasH2C, "atlas-h2c", false, "speak HTTP/2 without TLS (h2c) to an http:// Atlas base URL, such as cmd/atlas-emulator's, so that concurrent calls share a few connections; Atlas itself is HTTPS, where HTTP/2 is negotiated without this flag (default off)")
	fs.BoolVar(&cfg.Dev, "dev", false, "run against an Atlas emulator started in-process on a random loopback port, with generated credentials; prints ready-to-paste commands (default off)")
	fs.StringVar(&cfg.LogFormat, "log-format", "json", "log `format`: json or text")
	cfg.LogLevel = slog.LevelInfo
	fs.TextVar(&cfg.LogLevel, "log-level", slog.LevelInfo, "minimum log `level`: debug, info, warn or error")
	fs.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", DefaultShutdownTimeout, "how long in-flight calls may finish after SIGTERM or SIGINT; calls still running are then answered, and the process waits for Atlas to answer changes already sent, so it may run up to "+ShutdownOverrun.String()+" longer")
	fs.StringVar(&cfg.TLSCert, "tls-cert", "", "PEM certificate `file`; with -tls-key, gRPC and HTTP serve TLS (default none: plaintext)")
	fs.StringVar(&cfg.TLSKey, "tls-key", "", "PEM private key `file` for -tls-cert (default none)")
	fs.StringVar(&cfg.TLSClientCA, "tls-client-ca", "", "PEM CA bundle `file`; when given, callers must present a client certificate it signed (mutual TLS) (default none: no client authentication)")
	fs.StringVar(&cfg.AuthzPolicy, "authz-policy", "", "authorization policy `file` (YAML or JSON) mapping client certificate identities to the projects they may read and change; needs -tls-client-ca. Without it, under mutual TLS, every authenticated caller may read and nobody may change (default none)")
	fs.Float64Var(&cfg.RateLimit, "rate-limit", 0, "average `calls` per second each caller may make; 0 is unlimited (default 0)")
	fs.IntVar(&cfg.RateBurst, "rate-burst", 0, "`calls` a caller may make at once; 0 is -rate-limit rounded up (default 0)")
	fs.DurationVar(&cfg.WatchInterval, "watch-interval", server.DefaultWatchInterval, "how often a watched project (WatchEncryptionAtRest, -monitor) is polled; every watcher of a project shares its polls; at least "+MinWatchInterval.String())
	fs.IntVar(&cfg.WatchFailures, "watch-failures", server.DefaultWatchFailures, "how many `polls` of a watched project may fail in a row (retried with backoff) before its watch streams end with the error")
	fs.IntVar(&cfg.AtlasConcurrency, "atlas-concurrency", server.DefaultConcurrency, "how many `projects` ListEncryptionAtRest reads from Atlas at once")
	fs.Func("monitor", "watch `projects` without a caller: all (every project the credentials can see, listed again every -watch-interval) or group ids separated by commas; keeps encryptiond_encryption_at_rest_valid current and logs WARN when an enabled provider's key turns invalid, INFO when it is valid again (default off)", func(s string) error {
		t, err := parseMonitor(s)
		if err != nil {
			return err
		}
		cfg.Monitor = t
		return nil
	})
	fs.DurationVar(&cfg.ReloadInterval, "reload-interval", DefaultReloadInterval, "how often the -tls-cert, -tls-key, -tls-client-ca and -authz-policy files are read to see whether they changed; a change is applied without a restart (new connections get the new certificate, established ones keep theirs), one that fails to load is logged and the previous configuration stays; 0 turns this off (SIGHUP still reloads)")
	return fs
}

// Usage returns the -help text: every flag and environment variable with
// its default.
func Usage() string {
	var b strings.Builder
	b.WriteString(`encryptiond serves the atlas.encryption.v1.EncryptionService API (gRPC and
REST) for MongoDB Atlas Encryption at Rest with Customer Key Management.

Usage:
  encryptiond [flags]

Flags:
`)
	fs := newFlagSet(&Config{})
	fs.SetOutput(&b)
	fs.PrintDefaults()
	fmt.Fprintf(&b, `
Environment (credentials are read only from here, never from flags):
  %s, %s
        Atlas programmatic API key (HTTP digest authentication).
  %s, %s
        Atlas service account (OAuth 2.0 client credentials).
        Set exactly one of the two pairs; without -dev, a missing pair, half a
        pair or both pairs stop the daemon at once. No defaults.
  %s, %s,
  %s, %s
        Files holding those values instead (the content, without one trailing
        newline), such as a mounted Kubernetes Secret. A file is read again
        whenever the daemon authenticates to Atlas anew (a digest challenge,
        including Atlas refusing a revoked key; a service-account token
        fetch), so a rotated Secret is used without a restart. Setting a
        variable and its _FILE form, or a file that cannot be read or is
        empty, stops the daemon at start. No defaults.
  %s
        Atlas base URL, used when -atlas-base-url is not given
        (default %s).

Signals: SIGTERM or SIGINT stops the daemon gracefully (see -shutdown-timeout);
it exits 0. SIGHUP reads the -tls-cert, -tls-key, -tls-client-ca and
-authz-policy files again at once, as -reload-interval does when they change:
what loads is applied without dropping connections, what fails is logged and
the previous configuration stays in force.
`, EnvPublicKey, EnvPrivateKey, EnvClientID, EnvClientSecret,
		EnvPublicKeyFile, EnvPrivateKeyFile, EnvClientIDFile, EnvClientSecretFile,
		EnvBaseURL, atlas.DefaultBaseURL)
	return b.String()
}

// NewLogger returns the logger cfg asks for, writing to w.
// Durations are written with their unit ("timeout":"15s",
// "duration":"1.204ms"), not as slog's JSON handler would, a bare count of
// nanoseconds.
func NewLogger(cfg Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel, ReplaceAttr: durationWithUnit}
	if cfg.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// durationWithUnit writes a duration attribute as its string: 1.5s.
func durationWithUnit(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		return slog.String(a.Key, a.Value.Duration().String())
	}
	return a
}
