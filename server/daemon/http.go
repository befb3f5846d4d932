package daemon

import (
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/encryptiond/encryptiond/server/authz"
	"github.com/encryptiond/encryptiond/server/gateway"
	"github.com/encryptiond/encryptiond/server/telemetry"
)

// Limits and timeouts of the HTTP server.
const (
	// MaxBodyBytes bounds a REST request body.
	MaxBodyBytes = 1 << 20
	// maxHeaderBytes bounds a request's header.
	maxHeaderBytes = 64 << 10
	// The timeouts leave room for a call to Atlas with its retries (the
	// Atlas client gives up after 30 s per attempt).
	readHeaderTimeout = 10 * time.Second
	readTimeout       = 30 * time.Second
	writeTimeout      = 90 * time.Second
	idleTimeout       = 2 * time.Minute
)

// newHTTPHandler routes the REST API (the gateway, under /v1/ and Atlas's
// own /api/atlas/), /openapi.json, /metrics, /healthz and /readyz. The
// gateway writes its own access log; the other routes get AccessLog. With
// mutual TLS, /metrics requires a verified client certificate (its labels
// name projects); the API's callers are checked by the gRPC server, where the
// gateway's calls land.
//
// Every other path goes to the gateway, which answers those it does not
// serve with a JSON 404, and those that are not in canonical form (//v1/…,
// /./, x/../) with a JSON 400, in the shape of the path they stand for:
// net/http's ServeMux would answer the latter with a redirect to the
// cleaned path, unlogged, and a client that follows redirects would send a
// change again.
func newHTTPHandler(logger *slog.Logger, api http.Handler, reg *prometheus.Registry, ready *atomic.Bool, mutualTLS bool) http.Handler {
	api = withRESTIdentity(api)
	other := http.NewServeMux()
	other.Handle("GET /openapi.json", gateway.OpenAPIHandler())
	var metrics http.Handler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelError),
	})
	if mutualTLS {
		metrics = requireClientCert(metrics)
	}
	other.Handle("GET /metrics", metrics)
	other.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok\n"))
	})
	other.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if !ready.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte("not ready\n"))
			return
		}
		w.Write([]byte("ready\n"))
	})
	probes := telemetry.AccessLog(logger, other, "/healthz", "/readyz", "/metrics")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/openapi.json", "/metrics", "/healthz", "/readyz":
			probes.ServeHTTP(w, r)
		default:
			api.ServeHTTP(w, r)
		}
	})
}

// requireClientCert answers 401 to a request without a verified client
// certificate.
func requireClientCert(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil || verifiedIdentity(r.TLS.VerifiedChains) == "" {
			http.Error(w, authz.CertificateRequired, http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// newHTTPServer returns the HTTP server with its limits and timeouts.
func newHTTPServer(logger *slog.Logger, h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
}
