// Package daemon assembles encryptiond: it parses the configuration
// (ParseConfig), builds the service and its servers from it (New), and
// serves them on listeners until its context ends (Daemon.Serve). Run does
// all three for cmd/encryptiond.
//
// Start with New and Serve. The pieces they wire:
//
//   - gRPC (grpc.go): the service, health (SERVING once ready, NOT_SERVING
//     while stopping) and reflection from the commented source descriptors;
//     stats handlers for identity, logging and metrics; interceptors for
//     audit, authorization and panic recovery; keepalive and size limits. Two gRPC
//     servers with the same options: one for the public listener, one for
//     the in-process connection of the REST gateway, so that shutdown can
//     close the first while the second finishes the REST calls in flight.
//   - REST (http.go): the grpc-gateway handler under /v1/ and /api/atlas/,
//     dialing the in-process gRPC server so every interceptor runs for REST
//     too (identity.go explains how a REST caller's certificate identity
//     crosses it); /openapi.json, /metrics, /healthz, /readyz.
//   - Shutdown (shutdown.go): both listeners stop at once, in-flight calls
//     finish or are answered UNAVAILABLE when the timeout ends.
//   - Reloads (reload.go): the TLS files (tls.go) and the authorization
//     policy are read again when they change or on Config.Reload (SIGHUP),
//     and replaced without dropping connections; Atlas credentials from
//     _FILE variables (credentials.go) are read again at each new
//     authentication.
//   - -dev (dev.go): the emulator and the banner with ready-to-paste
//     commands.
package daemon

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/encryptiond/encryptiond/atlas"
	encryptionv1 "github.com/encryptiond/encryptiond/gen/atlas/encryption/v1"
	"github.com/encryptiond/encryptiond/server"
	"github.com/encryptiond/encryptiond/server/authz"
	"github.com/encryptiond/encryptiond/server/gateway"
	"github.com/encryptiond/encryptiond/server/monitor"
	"github.com/encryptiond/encryptiond/server/telemetry"
)

// Daemon is encryptiond built from a Config, not yet serving. New builds
// it; Serve runs it once; Close releases what New made when Serve is never
// called.
type Daemon struct {
	cfg    Config
	log    *slog.Logger
	stdout io.Writer

	dev     *devAtlas // the in-process emulator of -dev, else nil
	baseURL string
	creds   Credentials
	client  *atlas.Client
	svc     *server.Server
	monitor *monitor.Monitor // nil without -monitor

	tls       *serverTLS // nil: plaintext
	mutualTLS bool
	authz     string // what the authorization allows, for the serving record
	reloader  *reloader

	health   *health.Server
	public   *grpc.Server // serves the gRPC listener
	internal *grpc.Server // serves the gateway's in-process connection
	probes   *grpc.Server // serves health alone, in plaintext, on Listeners.Health
	inproc   *internalListener
	conn     *grpc.ClientConn // the gateway's connection to internal
	http     *http.Server
	ready    atomic.Bool
	stop     *stopper
}

// New builds the daemon cfg describes: the Atlas client (or, with -dev, an
// emulator started in-process), the service, its gRPC servers and the REST
// gateway. It listens on nothing. Logs go to logger; in -dev the banner goes
// to stdout.
func New(cfg Config, logger *slog.Logger, stdout io.Writer) (d *Daemon, err error) {
	d = &Daemon{cfg: cfg, log: logger, stdout: stdout, baseURL: cfg.AtlasBaseURL, creds: cfg.Credentials, stop: newStopper()}
	defer func() {
		if err != nil {
			err = errors.Join(err, d.Close())
			d = nil
		}
	}()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics, err := telemetry.NewMetrics(reg)
	if err != nil {
		return d, err
	}

	if cfg.Dev {
		if d.dev, err = startDevAtlas(); err != nil {
			return d, err
		}
		d.baseURL, d.creds = d.dev.url, d.dev.creds
	}
	reports := reloadReporter{log: logger, metrics: metrics}
	d.reloader = &reloader{reloadReporter: reports, interval: cfg.ReloadInterval, signals: cfg.Reload}
	d.client, err = newAtlasClient(d.baseURL, cfg.AtlasAPIVersion, cfg.AtlasRetryMaxElapsed, cfg.AtlasH2C, d.creds, reports, metrics.AtlasObserver(logger))
	if err != nil {
		return d, err
	}
	d.svc = server.New(d.client,
		server.WithValidObserver(metrics.ObserveValid),
		server.WithRetryObserver(metrics.ObserveRoleRetry),
		server.WithPollObserver(metrics.ObservePoll),
		server.WithRolePropagationTimeout(cfg.AtlasRolePropagationTimeout),
		server.WithWatchInterval(cfg.WatchInterval),
		server.WithWatchFailures(cfg.WatchFailures),
		server.WithConcurrency(cfg.AtlasConcurrency),
		server.WithPageTokenKey(pageTokenKey(d.creds)))
	if cfg.Monitor.On() {
		mcfg := monitor.Config{All: cfg.Monitor.All, GroupIDs: cfg.Monitor.GroupIDs, Interval: cfg.WatchInterval}
		if d.monitor, err = monitor.New(mcfg, d.svc, d.client, logger.With(slog.String("logger", "monitor")), nil); err != nil {
			return d, err
		}
	}

	public := insecure.NewCredentials()
	if d.tls = newServerTLS(cfg); d.tls != nil {
		if err := d.reloader.add(d.tls.reloadable(cfg)); err != nil {
			return d, err
		}
		public = credentials.NewTLS(d.tls.serverConfig("h2"))
		d.mutualTLS = d.tls.mutual
	}
	authzConfig := authz.Config{Authenticate: d.mutualTLS, RateLimit: cfg.RateLimit, Burst: cfg.RateBurst}
	authorize, err := authz.NewInterceptor(authzConfig)
	if err != nil {
		return d, err
	}
	if cfg.AuthzPolicy != "" {
		if err := d.reloader.add(policyReloadable(cfg.AuthzPolicy, authorize)); err != nil {
			return d, err
		}
	}
	authzConfig.Policy = authorize.Policy()
	d.authz = authzConfig.Summary()
	if d.mutualTLS && authzConfig.Policy == nil {
		logger.Warn("no -authz-policy: every authenticated caller may read and nobody may change")
	}

	d.health = health.NewServer()
	d.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	d.health.SetServingStatus(encryptionv1.EncryptionService_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_NOT_SERVING)
	opts := grpcServerOptions(logger, metrics, public, authorize, d.mutualTLS, d.stop)
	d.public, d.internal = grpc.NewServer(opts...), grpc.NewServer(opts...)
	for _, s := range []*grpc.Server{d.public, d.internal} {
		if err := registerServices(s, d.svc, d.health); err != nil {
			return d, err
		}
		metrics.InitializeMetrics(s)
	}

	d.probes = grpc.NewServer(grpc.ChainStreamInterceptor(d.stop.stream))
	healthpb.RegisterHealthServer(d.probes, d.health)

	// The gateway's client connection reaches the internal gRPC server in
	// memory; grpc.NewClient connects lazily, on the first call.
	d.inproc = newInternalListener()
	d.conn, err = grpc.NewClient("passthrough:///encryptiond-internal",
		grpc.WithContextDialer(d.inproc.dial),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithUnaryInterceptor(forwardIdentity),
		grpc.WithStreamInterceptor(forwardIdentityStream),
	)
	if err != nil {
		return d, fmt.Errorf("gateway: %w", err)
	}
	api, err := gateway.New(context.Background(), d.conn, gateway.WithLogger(logger), gateway.WithMaxBodyBytes(MaxBodyBytes))
	if err != nil {
		return d, fmt.Errorf("gateway: %w", err)
	}
	d.http = newHTTPServer(logger, newHTTPHandler(logger, api, reg, &d.ready, d.mutualTLS))
	if d.tls != nil {
		// The protocols net/http serves over TLS by default.
		d.http.TLSConfig = d.tls.serverConfig("h2", "http/1.1")
	}
	return d, nil
}

// Close releases what New made: the gateway's connection, the Atlas
// client's idle connections and the -dev emulator. Serve calls it when it
// returns.
func (d *Daemon) Close() error {
	var errs []error
	if d.conn != nil {
		errs = append(errs, d.conn.Close())
	}
	if d.inproc != nil {
		errs = append(errs, d.inproc.Close())
	}
	if d.client != nil {
		// No call to Atlas is left: close the connections the client keeps
		// for reuse rather than leave them to Atlas's idle timeout.
		d.client.CloseIdleConnections()
	}
	if d.dev != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		errs = append(errs, d.dev.close(ctx))
	}
	return errors.Join(errs...)
}

// Listeners are where a Daemon serves.
type Listeners struct {
	GRPC net.Listener // the gRPC API, health and reflection
	HTTP net.Listener // REST, /openapi.json, /metrics, /healthz, /readyz
	// Health, if not nil, serves the gRPC health service alone, in
	// plaintext (-health-addr).
	Health net.Listener
}

// Serve serves on l until ctx is cancelled, then shuts down as shutdown.go
// describes, closes the listeners and returns; a clean shutdown returns
// nil. It may be called once.
func (d *Daemon) Serve(ctx context.Context, l Listeners) (err error) {
	defer func() { err = errors.Join(err, d.Close()) }()
	g, gctx := errgroup.WithContext(ctx)
	grpcLis, httpLis := l.GRPC, l.HTTP
	g.Go(func() error {
		if err := d.public.Serve(grpcLis); err != nil {
			return fmt.Errorf("grpc: %w", err)
		}
		return nil
	})
	if l.Health != nil {
		g.Go(func() error {
			if err := d.probes.Serve(l.Health); err != nil {
				return fmt.Errorf("grpc (health): %w", err)
			}
			return nil
		})
	}
	g.Go(func() error {
		if err := d.internal.Serve(d.inproc); err != nil {
			return fmt.Errorf("grpc (in-process): %w", err)
		}
		return nil
	})
	g.Go(func() error {
		var err error
		if d.tls != nil {
			err = d.http.ServeTLS(httpLis, "", "")
		} else {
			err = d.http.Serve(httpLis)
		}
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("http: %w", err)
		}
		return nil
	})

	addrs := Addrs{GRPC: grpcLis.Addr(), HTTP: httpLis.Addr(), Atlas: d.baseURL}
	if l.Health != nil {
		addrs.Health = l.Health.Addr()
	}
	d.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	d.health.SetServingStatus(encryptionv1.EncryptionService_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	d.ready.Store(true)
	if d.cfg.Dev {
		// Before the "serving" record, so that whoever waits for that
		// record finds the banner already written.
		writeBanner(d.stdout, addrs, d.tls != nil)
	}
	d.log.Info("serving",
		slog.String("grpc_addr", addrs.GRPC.String()),
		slog.String("http_addr", addrs.HTTP.String()),
		slog.String("health_addr", addrOrNone(addrs.Health)),
		slog.String("atlas_base_url", d.baseURL),
		slog.String("atlas_api_version", string(d.cfg.AtlasAPIVersion)),
		slog.String("atlas_auth", d.creds.Mode()),
		slog.Bool("dev", d.cfg.Dev),
		slog.Bool("tls", d.tls != nil),
		slog.Bool("mutual_tls", d.mutualTLS),
		slog.String("authz", d.authz),
		slog.Duration("watch_interval", d.cfg.WatchInterval),
		slog.String("monitor", monitorOrOff(d.cfg.Monitor)),
		// How many threads run Go code: GOMAXPROCS, or the container's
		// CPU limit, or every core (README, Sizing).
		slog.Int("gomaxprocs", runtime.GOMAXPROCS(0)),
	)
	if d.cfg.OnReady != nil {
		d.cfg.OnReady(addrs)
	}

	g.Go(func() error {
		d.reloader.run(gctx)
		return nil
	})
	if d.monitor != nil {
		g.Go(func() error {
			d.monitor.Run(gctx)
			return nil
		})
	}
	g.Go(func() error {
		<-gctx.Done()
		d.shutdown()
		return nil
	})
	return g.Wait()
}

// Run listens on cfg's addresses and serves the daemon New builds from cfg
// until ctx is cancelled: what cmd/encryptiond runs.
func Run(ctx context.Context, cfg Config, logger *slog.Logger, stdout io.Writer) error {
	grpcLis, err := net.Listen("tcp", cfg.GRPCAddr)
	if err != nil {
		return fmt.Errorf("-grpc-addr: %w", err)
	}
	defer grpcLis.Close()
	httpLis, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("-http-addr: %w", err)
	}
	defer httpLis.Close()
	l := Listeners{GRPC: grpcLis, HTTP: httpLis}
	if cfg.HealthAddr != "" {
		if l.Health, err = net.Listen("tcp", cfg.HealthAddr); err != nil {
			return fmt.Errorf("-health-addr: %w", err)
		}
		defer l.Health.Close()
	}
	d, err := New(cfg, logger, stdout)
	if err != nil {
		return err
	}
	return d.Serve(ctx, l)
}

// newAtlasClient builds the Atlas client from the credentials; credentials
// from files are read again at each new authentication, and their changes
// reported to reports. A positive retryMaxElapsed replaces the default
// policy's retry budget; h2c selects HTTP/2 without TLS.
func newAtlasClient(baseURL string, version atlas.APIVersion, retryMaxElapsed time.Duration, h2c bool, creds Credentials, reports reloadReporter, observe func(atlas.Exchange)) (*atlas.Client, error) {
	retry := atlas.DefaultRetryPolicy()
	if retryMaxElapsed > 0 {
		retry.MaxElapsed = retryMaxElapsed
	}
	opts := []atlas.Option{
		atlas.WithBaseURL(baseURL),
		atlas.WithAPIVersion(version),
		atlas.WithRetryPolicy(retry),
		atlas.WithObserver(observe),
	}
	if h2c {
		opts = append(opts, atlas.WithUnencryptedHTTP2())
	}
	auth, err := atlasAuth(creds, reports)
	if err != nil {
		return nil, err
	}
	c, err := atlas.NewClient(append(opts, auth)...)
	if err != nil {
		return nil, fmt.Errorf("atlas client: %w", err)
	}
	return c, nil
}

// addrOrNone is a's string, or "" for none.
func addrOrNone(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}

// monitorOrOff describes -monitor for the serving record.
func monitorOrOff(t MonitorTargets) string {
	if !t.On() {
		return "off"
	}
	return t.String()
}

// pageTokenKey derives the key that signs ListEncryptionAtRest's page
// tokens from the Atlas credentials' secret, so that replicas sharing the
// credentials accept each other's tokens while nobody without the secret
// can forge one. A token signed before the secret rotated is refused by a
// process started after: the caller lists again from the start.
func pageTokenKey(c Credentials) []byte {
	secret := c.PrivateKey
	if secret == "" {
		secret = c.ClientSecret
	}
	if secret == "" {
		return nil // server.New then uses a random key of the process
	}
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte("encryptiond ListEncryptionAtRest page tokens"))
	return m.Sum(nil)
}
