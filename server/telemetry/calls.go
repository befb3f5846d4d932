package telemetry

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"

	"github.com/encryptiond/encryptiond/server/caller"
	"github.com/encryptiond/encryptiond/server/failure"
)

// Calls is a gRPC stats.Handler that logs and counts every call the server
// sees, as otelgrpc does for traces. Interceptors would miss the calls
// grpc-go ends before they run: a message too large, an unknown method, a
// stream reset. It writes one "grpc call" record per call and keeps the
// grpc_server_* metrics that go-grpc-middleware's Prometheus provider
// defines, under the same names and labels. Install it with
// grpc.StatsHandler on every server, after the handler that establishes the
// caller's identity (caller.NewContext) in TagRPC.
type Calls struct {
	log     *slog.Logger
	metrics *Metrics
}

// NewCalls returns the handler, logging to logger and counting in m.
func NewCalls(logger *slog.Logger, m *Metrics) *Calls {
	return &Calls{log: logger, metrics: m}
}

var _ stats.Handler = (*Calls)(nil)

// call is what Calls keeps of one call, in its context.
type call struct {
	method string
	series *methodSeries

	mu       sync.Mutex
	typ      string // unary, client_stream, server_stream, bidi_stream
	groupID  string
	hasGroup bool // the request has a group id field
	received bool // a request message arrived
}

type callKey struct{}

// groupIDer is implemented by every request message that names a project.
type groupIDer interface{ GetGroupId() string }

// TagRPC starts the call's record.
func (c *Calls) TagRPC(ctx context.Context, info *stats.RPCTagInfo) context.Context {
	return context.WithValue(ctx, callKey{}, &call{method: info.FullMethodName, series: c.metrics.grpc.method(info.FullMethodName), typ: "unary"})
}

// HandleRPC counts messages and, at the end, the call, and logs it.
func (c *Calls) HandleRPC(ctx context.Context, s stats.RPCStats) {
	cl, _ := ctx.Value(callKey{}).(*call)
	if cl == nil || s.IsClient() {
		return
	}
	switch s := s.(type) {
	case *stats.Begin:
		cl.mu.Lock()
		cl.typ = rpcType(s.IsClientStream, s.IsServerStream)
		cl.mu.Unlock()
		cl.series.started(cl.typ).Inc()
	case *stats.InPayload:
		cl.mu.Lock()
		if !cl.received {
			cl.received = true
			if g, ok := s.Payload.(groupIDer); ok {
				cl.hasGroup, cl.groupID = true, g.GetGroupId()
			}
		}
		typ := cl.typ
		cl.mu.Unlock()
		cl.series.received(typ).Inc()
	case *stats.OutPayload:
		cl.mu.Lock()
		typ := cl.typ
		cl.mu.Unlock()
		cl.series.sent(typ).Inc()
	case *stats.End:
		cl.mu.Lock()
		typ, hasGroup, groupID := cl.typ, cl.hasGroup, cl.groupID
		cl.mu.Unlock()
		took := s.EndTime.Sub(s.BeginTime)
		code := status.Code(s.Error)
		cl.series.handled(typ, code).Inc()
		cl.series.seconds(typ).Observe(took.Seconds())
		logCall(ctx, c.log, cl.method, took, s.Error, hasGroup, groupID)
	}
}

// TagConn and HandleConn are part of stats.Handler; connections are not
// counted.
func (c *Calls) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context { return ctx }

// HandleConn does nothing.
func (c *Calls) HandleConn(context.Context, stats.ConnStats) {}

// rpcType names a call's type as go-grpc-middleware does.
func rpcType(clientStream, serverStream bool) string {
	switch {
	case clientStream && serverStream:
		return "bidi_stream"
	case clientStream:
		return "client_stream"
	case serverStream:
		return "server_stream"
	}
	return "unary"
}

// quietPrefixes are methods logged at debug level when they succeed:
// health checks and reflection would otherwise drown the log.
var quietPrefixes = []string{"/grpc.health.v1.Health/", "/grpc.reflection."}

// maxCallAttrs is the most attributes logCall writes.
const maxCallAttrs = 8

// logCall writes the record of one call: method, code, duration, group id
// (when the request has one), peer, the HTTP client's address for a REST
// call (caller.ForwardedFor), caller identity and the status message. It
// never logs a request or response. It builds nothing when the record's
// level is disabled, and its attributes live in an array on the stack.
func logCall(ctx context.Context, logger *slog.Logger, method string, took time.Duration, err error, hasGroup bool, groupID string) {
	code := status.Code(err)
	level := levelFor(method, code)
	if !logger.Enabled(ctx, level) {
		return
	}
	var buf [maxCallAttrs]slog.Attr
	attrs := append(buf[:0],
		slog.String("method", method),
		slog.String("code", code.String()),
		slog.Duration("duration", took),
	)
	if hasGroup {
		attrs = append(attrs, slog.String("group_id", failure.Truncate(groupID, 256)))
	}
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		attrs = append(attrs, slog.String("peer", p.Addr.String()))
	}
	// For a REST call, the HTTP client's address as the gateway saw it; the
	// peer is then the gateway itself. Never the x-forwarded-for metadata as
	// it arrives: its leading entries, and all of it on a direct gRPC call,
	// are whatever the caller chose to send.
	if addr := caller.ForwardedFor(ctx); addr != "" {
		attrs = append(attrs, slog.String("forwarded_for", failure.Truncate(addr, 256)))
	}
	attrs = append(attrs, slog.String("caller", caller.FromContext(ctx)))
	if err != nil {
		// Status messages are built by the server to be shown to callers:
		// they name fields, never values.
		attrs = append(attrs, slog.String("error", status.Convert(err).Message()))
	}
	logger.LogAttrs(ctx, level, "grpc call", attrs...)
}

// levelFor logs server faults as errors, caller faults as info, and
// successful health checks and reflection as debug.
func levelFor(method string, code codes.Code) slog.Level {
	switch code {
	case codes.OK:
		for _, p := range quietPrefixes {
			if strings.HasPrefix(method, p) {
				return slog.LevelDebug
			}
		}
		return slog.LevelInfo
	case codes.Internal, codes.Unknown, codes.DataLoss, codes.Unimplemented:
		return slog.LevelError
	case codes.Unavailable, codes.DeadlineExceeded, codes.ResourceExhausted:
		return slog.LevelWarn
	}
	return slog.LevelInfo
}

// grpcMetrics are the grpc_server_* metrics, as go-grpc-middleware's
// Prometheus provider names them.
type grpcMetrics struct {
	startedVec  *prometheus.CounterVec
	handledVec  *prometheus.CounterVec
	receivedVec *prometheus.CounterVec
	sentVec     *prometheus.CounterVec
	secondsVec  *prometheus.HistogramVec

	mu      sync.RWMutex
	methods map[string]*methodSeries
	// sealed is set once InitializeMetrics has registered the server's
	// methods: any other name is a caller's invention, counted under
	// "unknown" so that it cannot add series.
	sealed  bool
	unknown *methodSeries
}

func newGRPCMetrics() *grpcMetrics {
	labels := []string{"grpc_type", "grpc_service", "grpc_method"}
	return &grpcMetrics{
		startedVec: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "grpc_server_started_total", Help: "Total number of RPCs started on the server.",
		}, labels),
		handledVec: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "grpc_server_handled_total", Help: "Total number of RPCs completed on the server, regardless of success or failure.",
		}, append(labels, "grpc_code")),
		receivedVec: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "grpc_server_msg_received_total", Help: "Total number of RPC stream messages received on the server.",
		}, labels),
		sentVec: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "grpc_server_msg_sent_total", Help: "Total number of gRPC stream messages sent by the server.",
		}, labels),
		secondsVec: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "grpc_server_handling_seconds",
			Help:    "Histogram of response latency (seconds) of gRPC that had been application-level handled by the server.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, labels),
		methods: map[string]*methodSeries{},
	}
}

func (g *grpcMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{g.startedVec, g.handledVec, g.receivedVec, g.sentVec, g.secondsVec}
}

// methodSeries holds one method's series by call type, so that a call
// updates them without hashing its labels. A method's calls have one type;
// the map is keyed by it all the same, since a call that grpc-go ends
// before it begins (an unknown method) has none.
type methodSeries struct {
	g             *grpcMetrics
	service, name string
	mu            sync.RWMutex
	byType        map[string]*typeSeries
}

type typeSeries struct {
	started, received, sent prometheus.Counter
	seconds                 prometheus.Observer
	handled                 [17]prometheus.Counter // by code, codes.OK to codes.Unauthenticated
}

// method returns the series of a full method name, /pkg.Service/Method.
func (g *grpcMetrics) method(fullMethod string) *methodSeries {
	g.mu.RLock()
	m := g.methods[fullMethod]
	g.mu.RUnlock()
	if m != nil {
		return m
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if m = g.methods[fullMethod]; m != nil {
		return m
	}
	if g.sealed {
		if g.unknown == nil {
			g.unknown = &methodSeries{g: g, service: "unknown", name: "unknown", byType: map[string]*typeSeries{}}
		}
		return g.unknown
	}
	service, name := splitMethod(fullMethod)
	m = &methodSeries{g: g, service: service, name: name, byType: map[string]*typeSeries{}}
	g.methods[fullMethod] = m
	return m
}

func splitMethod(full string) (service, method string) {
	full = strings.TrimPrefix(full, "/")
	if i := strings.LastIndexByte(full, '/'); i >= 0 {
		return full[:i], full[i+1:]
	}
	return "unknown", full
}

func (m *methodSeries) of(typ string) *typeSeries {
	m.mu.RLock()
	t := m.byType[typ]
	m.mu.RUnlock()
	if t != nil {
		return t
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if t = m.byType[typ]; t == nil {
		labels := []string{typ, m.service, m.name}
		t = &typeSeries{
			started:  m.g.startedVec.WithLabelValues(labels...),
			received: m.g.receivedVec.WithLabelValues(labels...),
			sent:     m.g.sentVec.WithLabelValues(labels...),
			seconds:  m.g.secondsVec.WithLabelValues(labels...),
		}
		for c := range t.handled {
			t.handled[c] = m.g.handledVec.WithLabelValues(typ, m.service, m.name, codes.Code(c).String())
		}
		m.byType[typ] = t
	}
	return t
}

func (m *methodSeries) started(typ string) prometheus.Counter  { return m.of(typ).started }
func (m *methodSeries) received(typ string) prometheus.Counter { return m.of(typ).received }
func (m *methodSeries) sent(typ string) prometheus.Counter     { return m.of(typ).sent }
func (m *methodSeries) seconds(typ string) prometheus.Observer { return m.of(typ).seconds }

func (m *methodSeries) handled(typ string, code codes.Code) prometheus.Counter {
	t := m.of(typ)
	if int(code) < len(t.handled) {
		return t.handled[code]
	}
	return m.g.handledVec.WithLabelValues(typ, m.service, m.name, code.String())
}

// InitializeMetrics creates the series of every method registered on s at
// zero, so that rates exist before the first call. Calls of any other
// method are counted with grpc_service and grpc_method "unknown" from then
// on, so that callers cannot add series by inventing names.
func (m *Metrics) InitializeMetrics(s *grpc.Server) {
	for service, info := range s.GetServiceInfo() {
		for _, mi := range info.Methods {
			m.grpc.method("/" + service + "/" + mi.Name).of(rpcType(mi.IsClientStream, mi.IsServerStream))
		}
	}
	m.grpc.mu.Lock()
	m.grpc.sealed = true
	m.grpc.mu.Unlock()
}
