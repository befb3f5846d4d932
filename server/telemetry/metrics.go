package telemetry

import (
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/encryptiond/encryptiond/atlas"
)

// Metrics holds encryptiond's Prometheus metrics. Register it once with a
// registry of its own (no global state); every method is safe for
// concurrent use.
type Metrics struct {
	grpc         *grpcMetrics
	valid        *validCollector
	atlasCalls   *prometheus.CounterVec
	atlasLatency *prometheus.HistogramVec
	challenges   prometheus.Counter
	credentials  *credentialsGauge
	roleRetries  *prometheus.CounterVec
	polls        *prometheus.CounterVec
	reloads      *prometheus.CounterVec

	// atlasMu guards atlasSeriesByKey, the series ObserveAtlas updates:
	// looking them up here costs no allocation, where one exchange with
	// Atlas would otherwise cost label hashing and allocations in two
	// WithLabelValues.
	atlasMu          sync.RWMutex
	atlasSeriesByKey map[atlasKey]atlasSeries
}

// atlasKey is the labels of an exchange with Atlas.
type atlasKey struct {
	method    string
	status    int
	errorCode string
}

// atlasSeries is what ObserveAtlas updates for one atlasKey.
type atlasSeries struct {
	calls   prometheus.Counter
	latency prometheus.Observer
}

// NewMetrics creates the metrics and registers them with reg.
//
//   - grpc_server_* (kept by Calls, named as go-grpc-middleware's
//     Prometheus provider names them): calls started and handled by method
//     and code, messages received and sent, and a handling-time histogram.
//   - encryptiond_encryption_at_rest_valid{group_id,provider}: 1 or 0, the
//     last `valid` flag Atlas reported. Alert on 0 for an enabled provider.
//     At most MaxValidProjects projects get a series, the first seen.
//   - encryptiond_encryption_at_rest_valid_dropped_total: observations of
//     `valid` not recorded because MaxValidProjects projects already have a
//     series.
//   - encryptiond_atlas_requests_total{method,status,error_code}: every HTTP
//     exchange with Atlas but digest challenges, token requests and retries
//     included; status "0" when no response arrived. A 401 here is a
//     refusal of encryptiond's credentials.
//   - encryptiond_atlas_digest_challenges_total: 401 digest challenges, a
//     normal part of digest authentication (the first request, a new
//     nonce).
//   - encryptiond_atlas_credentials_accepted: 1 if Atlas accepted the last
//     signed request (or issued the last token), 0 if it refused it; no
//     sample before the first.
//   - encryptiond_atlas_request_duration_seconds{method}.
//   - encryptiond_role_propagation_retries_total{provider}: changes sent
//     again while Atlas could not use their Cloud Provider Access role yet.
//   - encryptiond_config_reloads_total{what,result}: configuration read
//     again while serving (what: "tls", "policy", "atlas_credentials"),
//     result "ok", or "error" when the previous configuration stays in
//     force. Alert on a rising error count.
//   - encryptiond_watch_polls_total{what,result}: polls of Atlas by the
//     watches and the monitor (what: "encryption_at_rest",
//     "private_endpoint"), result "ok" or "error".
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		grpc:             newGRPCMetrics(),
		valid:            newValidCollector(),
		atlasSeriesByKey: make(map[atlasKey]atlasSeries),
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
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "encryptiond",
			Name:      "config_reloads_total",
			Help:      "Configuration read again while serving, by what (tls, policy, atlas_credentials) and result (ok; error: the previous configuration stays in force).",
		}, []string{"what", "result"}),
	}
	m.challenges = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "encryptiond",
		Name:      "atlas_digest_challenges_total",
		Help:      "401 digest challenges from Atlas, answered by signing: the first request, and each nonce Atlas stops accepting.",
	})
	m.credentials = newCredentialsGauge()
	m.roleRetries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "encryptiond",
		Name:      "role_propagation_retries_total",
		Help:      "Changes sent to Atlas again while it could not use their Cloud Provider Access role yet (IAM propagation), by provider.",
	}, []string{"provider"})
	m.polls = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "encryptiond",
		Name:      "watch_polls_total",
		Help:      "Polls of Atlas by the watches and the monitor, by what they read (encryption_at_rest, private_endpoint) and result (ok, error).",
	}, []string{"what", "result"})
	for _, c := range append(m.grpc.collectors(), m.valid, m.atlasCalls, m.atlasLatency, m.challenges, m.credentials, m.roleRetries, m.reloads, m.polls) {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// ObserveValid records the `enabled` and `valid` flags Atlas reported for a
// provider; it fits server.WithValidObserver. Only enabled providers have a
// series. A project beyond the first MaxValidProjects gets none; its
// observations are counted as dropped.
func (m *Metrics) ObserveValid(groupID, provider string, enabled, valid bool) {
	m.valid.observe(groupID, provider, enabled, valid)
}

// ObserveRoleRetry counts a change sent again while its role propagates;
// it fits server.WithRetryObserver.
func (m *Metrics) ObserveRoleRetry(provider string) { m.roleRetries.WithLabelValues(provider).Inc() }

// ObservePoll counts a poll of a watch; it fits server.WithPollObserver.
func (m *Metrics) ObservePoll(what string, err error) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.polls.WithLabelValues(what, result).Inc()
}

// ObserveAtlas records one exchange with Atlas; it fits atlas.WithObserver.
// It reports whether the exchange changed what Atlas makes of encryptiond's
// credentials, and what it makes of them now.
func (m *Metrics) ObserveAtlas(e atlas.Exchange) (changed, accepted bool) {
	if e.Auth == atlas.AuthChallenge {
		m.challenges.Inc()
	} else {
		s := m.atlasSeries(atlasKey{e.Method, e.Status, e.ErrorCode})
		s.calls.Inc()
		s.latency.Observe(e.Duration.Seconds())
	}
	switch e.Auth {
	case atlas.AuthAccepted:
		return m.credentials.set(credentialsAccepted), true
	case atlas.AuthRefused:
		return m.credentials.set(credentialsRefused), false
	}
	return false, m.credentials.state.Load() != credentialsRefused
}

// AtlasObserver returns the function to give atlas.WithObserver: it records
// each exchange (ObserveAtlas) and logs one ERROR record when Atlas starts
// refusing encryptiond's credentials, and one INFO record when it accepts
// them again. Never the credentials themselves.
func (m *Metrics) AtlasObserver(logger *slog.Logger) func(atlas.Exchange) {
	return func(e atlas.Exchange) {
		changed, accepted := m.ObserveAtlas(e)
		switch {
		case changed && !accepted:
			logger.Error("Atlas refuses encryptiond's credentials: check the MONGODB_ATLAS_* credentials (every call to Atlas will fail until they are right)",
				slog.String("method", e.Method), slog.Int("status", e.Status), slog.String("error_code", e.ErrorCode))
		case changed:
			logger.Info("Atlas accepts encryptiond's credentials")
		}
	}
}

// The states of credentialsGauge.
const (
	credentialsUnknown int32 = iota
	credentialsAccepted
	credentialsRefused
)

// credentialsGauge is encryptiond_atlas_credentials_accepted, with no sample
// until the first verdict.
type credentialsGauge struct {
	desc  *prometheus.Desc
	state atomic.Int32
}

func newCredentialsGauge() *credentialsGauge {
	return &credentialsGauge{desc: prometheus.NewDesc("encryptiond_atlas_credentials_accepted",
		"1 if Atlas accepted encryptiond's credentials on the last signed request (or token request), 0 if it refused them; no sample before the first.", nil, nil)}
}

// set records state and reports whether it changed from a known other one,
// or is a first refusal.
func (g *credentialsGauge) set(state int32) bool {
	old := g.state.Swap(state)
	return old != state && (old != credentialsUnknown || state == credentialsRefused)
}

func (g *credentialsGauge) Describe(ch chan<- *prometheus.Desc) { ch <- g.desc }

func (g *credentialsGauge) Collect(ch chan<- prometheus.Metric) {
	v := 0.0
	switch g.state.Load() {
	case credentialsUnknown:
		return
	case credentialsAccepted:
		v = 1
	}
	ch <- prometheus.MustNewConstMetric(g.desc, prometheus.GaugeValue, v)
}

// atlasSeries returns the series of k, creating them on first use. There
// are as many keys as atlas_requests_total has series.
func (m *Metrics) atlasSeries(k atlasKey) atlasSeries {
	m.atlasMu.RLock()
	s, ok := m.atlasSeriesByKey[k]
	m.atlasMu.RUnlock()
	if ok {
		return s
	}
	m.atlasMu.Lock()
	defer m.atlasMu.Unlock()
	if s, ok := m.atlasSeriesByKey[k]; ok {
		return s
	}
	s = atlasSeries{
		calls:   m.atlasCalls.WithLabelValues(k.method, strconv.Itoa(k.status), k.errorCode),
		latency: m.atlasLatency.WithLabelValues(k.method),
	}
	m.atlasSeriesByKey[k] = s
	return s
}

// InitializeReloads creates the reload series of what at zero, so that they
// exist before the first reload.
func (m *Metrics) InitializeReloads(what string) {
	m.reloads.WithLabelValues(what, "ok")
	m.reloads.WithLabelValues(what, "error")
}

// ObserveReload counts a reload of what: "ok" when err is nil, else
// "error".
func (m *Metrics) ObserveReload(what string, err error) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.reloads.WithLabelValues(what, result).Inc()
}
