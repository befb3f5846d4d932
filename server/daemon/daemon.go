// Package daemon assembles encryptiond: it parses the configuration
// (ParseConfig), then Run connects the Atlas client (or, with -dev, an
// in-process Atlas emulator) to the EncryptionService and serves it over
// gRPC and REST until its context ends.
//
// Start with Run. The pieces it wires:
//
//   - gRPC (grpc.go): the service, health (SERVING once ready, NOT_SERVING
//     while stopping) and reflection from the commented source descriptors;
//     interceptors for identity, logging, metrics, audit, authentication
//     (mTLS) and panic recovery; keepalive and size limits.
//   - REST (http.go): the grpc-gateway handler under /v1/ and /api/atlas/,
//     dialing the gRPC server through an in-process connection so every
//     interceptor runs for REST too (identity.go explains how a REST caller's
//     certificate identity crosses it); /openapi.json, /metrics, /healthz,
//     /readyz.
//   - -dev (dev.go): the emulator and the banner with ready-to-paste
//     commands.
package daemon

import (
	"context"
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
	"github.com/encryptiond/encryptiond/server/telemetry"
)

// Run serves the EncryptionService as cfg says until ctx is cancelled, then
// shuts down gracefully: health goes NOT_SERVING and /readyz 503, the
// listeners close, and in-flight calls get up to cfg.ShutdownTimeout to
// finish before they are cut. A clean shutdown returns nil. Logs go to
// logger; in -dev the banner goes to stdout.
func Run(ctx context.Context, cfg Config, logger *slog.Logger, stdout io.Writer) (err error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics, err := telemetry.NewMetrics(reg)
	if err != nil {
		return err
	}

	baseURL, creds := cfg.AtlasBaseURL, cfg.Credentials
	if cfg.Dev {
		dev, err := startDevAtlas()
		if err != nil {
			return err
		}
		defer func() {
			closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
			defer cancel()
			err = errors.Join(err, dev.close(closeCtx))
		}()
		baseURL, creds = dev.url, dev.creds
	}
	client, err := newAtlasClient(baseURL, cfg.AtlasAPIVersion, cfg.AtlasRetryMaxElapsed, cfg.AtlasH2C, creds, metrics.ObserveAtlas)
	if err != nil {
		return err
	}
	// Once both servers have stopped no call to Atlas is left: close the
	// connections the client keeps for reuse rather than leave them to
	// Atlas's idle timeout.
	defer client.CloseIdleConnections()
	svc := server.New(client, server.WithValidObserver(metrics.ObserveValid))

	tlsConf, err := loadTLS(cfg)
	if err != nil {
		return err
	}
	public := insecure.NewCredentials()
	if tlsConf != nil {
		public = credentials.NewTLS(tlsConf.Clone())
	}
	mutualTLS := tlsConf != nil && tlsConf.ClientCAs != nil
	authzConfig := authz.Config{Authenticate: mutualTLS, RateLimit: cfg.RateLimit, Burst: cfg.RateBurst}
	if cfg.AuthzPolicy != "" {
		if authzConfig.Policy, err = authz.LoadPolicy(cfg.AuthzPolicy); err != nil {
			return fmt.Errorf("-authz-policy: %w", err)
		}
	}
	authorize, err := authz.NewInterceptor(authzConfig)
	if err != nil {
		return err
	}
	if mutualTLS && authzConfig.Policy == nil {
		logger.Warn("no -authz-policy: every authenticated caller may read and nobody may change")
	}

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
	internalLis := newInternalListener()
	defer internalLis.Close()

	stopping := make(chan struct{})
	gs := grpc.NewServer(grpcServerOptions(logger, metrics, public, authorize, mutualTLS, stopping)...)
	hs := health.NewServer()
	hs.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	hs.SetServingStatus(encryptionv1.EncryptionService_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_NOT_SERVING)
	if err := registerServices(gs, svc, hs); err != nil {
		return err
	}
	metrics.InitializeMetrics(gs)

	// The gateway's client connection reaches the gRPC server in memory;
	// grpc.NewClient connects lazily, on the first call.
	conn, err := grpc.NewClient("passthrough:///encryptiond-internal",
		grpc.WithContextDialer(internalLis.dial),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithUnaryInterceptor(forwardIdentity),
	)
	if err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	defer conn.Close()
	gwCtx, cancelGateway := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelGateway()
	api, err := gateway.New(gwCtx, conn, gateway.WithLogger(logger), gateway.WithMaxBodyBytes(MaxBodyBytes))
	if err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	var ready atomic.Bool
	hsrv := newHTTPServer(logger, newHTTPHandler(logger, api, reg, &ready, mutualTLS))
	if tlsConf != nil {
		hsrv.TLSConfig = tlsConf.Clone()
	}

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		if err := gs.Serve(grpcLis); err != nil {
			return fmt.Errorf("grpc: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		if err := gs.Serve(internalLis); err != nil {
			return fmt.Errorf("grpc (in-process): %w", err)
		}
		return nil
	})
	g.Go(func() error {
		var err error
		if tlsConf != nil {
			err = hsrv.ServeTLS(httpLis, "", "")
		} else {
			err = hsrv.Serve(httpLis)
		}
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("http: %w", err)
		}
		return nil
	})

	addrs := Addrs{GRPC: grpcLis.Addr(), HTTP: httpLis.Addr(), Atlas: baseURL}
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	hs.SetServingStatus(encryptionv1.EncryptionService_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	ready.Store(true)
	if cfg.Dev {
		// Before the "serving" record, so that whoever waits for that
		// record finds the banner already written.
		writeBanner(stdout, addrs, tlsConf != nil)
	}
	logger.Info("serving",
		slog.String("grpc_addr", addrs.GRPC.String()),
		slog.String("http_addr", addrs.HTTP.String()),
		slog.String("atlas_base_url", baseURL),
		slog.String("atlas_api_version", string(cfg.AtlasAPIVersion)),
		slog.String("atlas_auth", creds.Mode()),
		slog.Bool("dev", cfg.Dev),
		slog.Bool("tls", tlsConf != nil),
		slog.Bool("mutual_tls", mutualTLS),
		slog.String("authz", authzConfig.Summary()),
		// How many threads run Go code: GOMAXPROCS, or the container's
		// CPU limit, or every core (README, Sizing).
		slog.Int("gomaxprocs", runtime.GOMAXPROCS(0)),
	)
	if cfg.OnReady != nil {
		cfg.OnReady(addrs)
	}

	g.Go(func() error {
		<-gctx.Done()
		close(stopping)
		return shutdown(logger, cfg.ShutdownTimeout, hs, &ready, gs, hsrv)
	})
	return g.Wait()
}

// shutdown stops both servers within timeout: health NOT_SERVING first,
// then HTTP (whose in-flight requests still need the gRPC server), then
// gRPC, which is cut with Stop if its calls outlast the timeout.
func shutdown(logger *slog.Logger, timeout time.Duration, hs *health.Server, ready *atomic.Bool, gs *grpc.Server, hsrv *http.Server) error {
	logger.Info("shutting down", slog.Duration("timeout", timeout))
	ready.Store(false)
	hs.Shutdown()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()

	var errs []error
	if err := hsrv.Shutdown(ctx); err != nil {
		errs = append(errs, fmt.Errorf("http shutdown: %w", err))
		hsrv.Close()
	}
	stopped := make(chan struct{})
	go func() {
		gs.GracefulStop()
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-ctx.Done():
		logger.Warn("shutdown timeout: cutting in-flight gRPC calls")
		gs.Stop()
		<-stopped
	}
	if len(errs) > 0 {
		// In-flight REST calls outlasting the timeout are cut, as the
		// operator asked; that is not a failure of the daemon.
		logger.Warn("shutdown incomplete", slog.Any("error", errors.Join(errs...)))
	}
	logger.Info("stopped")
	return nil
}

// newAtlasClient builds the Atlas client from the credentials. A positive
// retryMaxElapsed replaces the default policy's retry budget; h2c selects
// HTTP/2 without TLS.
func newAtlasClient(baseURL string, version atlas.APIVersion, retryMaxElapsed time.Duration, h2c bool, creds Credentials, observe func(atlas.Exchange)) (*atlas.Client, error) {
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
	switch {
	case creds.PublicKey != "":
		opts = append(opts, atlas.WithDigest(creds.PublicKey, creds.PrivateKey))
	case creds.ClientID != "":
		opts = append(opts, atlas.WithServiceAccount(creds.ClientID, creds.ClientSecret))
	default:
		return nil, fmt.Errorf("no Atlas credentials: set %s and %s, or %s and %s",
			EnvPublicKey, EnvPrivateKey, EnvClientID, EnvClientSecret)
	}
	c, err := atlas.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("atlas client: %w", err)
	}
	return c, nil
}
