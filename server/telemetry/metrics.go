package telemetry

import (
	"strconv"

	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	"github.com/encryptiond/encryptiond/atlas"
)

// Metrics holds encryptiond's Prometheus metrics. Register it once with a
// registry of its own (no global state); every method is safe for
// concurrent use.
type Metrics struct {
	grpc         *grpcprom.ServerMetrics
	valid        *prometheus.GaugeVec
	atlasCalls   *prometheus.CounterVec
	atlasLatency *prometheus.HistogramVec
}

// NewMetrics creates the metrics and registers them with reg.
//
//   - grpc_server_* (go-grpc-middleware's provider): calls started and
//     handled by method and code, and a handling-time histogram.
//   - encryptiond_encryption_at_rest_valid{group_id,provider}: 1 or 0, the
//     last `valid` flag Atlas reported. Alert on 0 for an enabled provider.
//   - encryptiond_atlas_requests_total{method,status,error_code}: every HTTP
//     exchange with Atlas, including digest challenges, token requests and
//     retries; status "0" when no response arrived.
//   - encryptiond_atlas_request_duration_seconds{method}.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		grpc: grpcprom.NewServerMetrics(grpcprom.WithServerHandlingTimeHistogram(
			grpcprom.WithHistogramBuckets([]float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}),
		)),
		valid: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "encryptiond",
			Name:      "encryption_at_rest_valid",
			Help:      "The last `valid` flag Atlas reported for a project's key provider: 1 if Atlas can use the key, 0 if not.",
		}, []string{"group_id", "provider"}),
		atlasCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "encryptiond",
			Name:      "atlas_requests_total",
			Help:      "HTTP exchanges with the Atlas Administration API by method, HTTP status (0: no response) and Atlas errorCode.",
		}, []string{"method", "status", "error_code"}),
		atlasLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "encryptiond",
			Name:      "atlas_request_duration_seconds",
			Help:      "Duration of HTTP exchanges with the Atlas Administration API.",
			Buckets:   []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"method"}),
	}
	for _, c := range []prometheus.Collector{m.grpc, m.valid, m.atlasCalls, m.atlasLatency} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// UnaryServerInterceptor counts and times unary calls.
func (m *Metrics) UnaryServerInterceptor() grpc.UnaryServerInterceptor {
	return m.grpc.UnaryServerInterceptor()
}

// StreamServerInterceptor counts and times streaming calls.
func (m *Metrics) StreamServerInterceptor() grpc.StreamServerInterceptor {
	return m.grpc.StreamServerInterceptor()
}

// InitializeMetrics pre-creates the gRPC series of every method registered
// on s at zero, so that rates exist before the first call.
func (m *Metrics) InitializeMetrics(s *grpc.Server) { m.grpc.InitializeMetrics(s) }

// ObserveValid records the `valid` flag Atlas reported; it fits
// server.WithValidObserver.
func (m *Metrics) ObserveValid(groupID, provider string, valid bool) {
	v := 0.0
	if valid {
		v = 1
	}
	m.valid.WithLabelValues(groupID, provider).Set(v)
}

// ObserveAtlas records one exchange with Atlas; it fits atlas.WithObserver.
func (m *Metrics) ObserveAtlas(e atlas.Exchange) {
	m.atlasCalls.WithLabelValues(e.Method, strconv.Itoa(e.Status), e.ErrorCode).Inc()
	m.atlasLatency.WithLabelValues(e.Method).Observe(e.Duration.Seconds())
}
