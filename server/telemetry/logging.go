package telemetry

import (
	"context"
	"log/slog"
	"net/http"
	"time"
	"unicode/utf8"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/encryptiond/encryptiond/server/caller"
)

// groupIDer is implemented by every request message that names a project.
type groupIDer interface{ GetGroupId() string }

// quietPrefixes are methods logged at debug level when they succeed:
// health checks and reflection would otherwise drown the log.
var quietPrefixes = []string{"/grpc.health.v1.Health/", "/grpc.reflection."}

// UnaryLogging returns an interceptor that logs one record per call with the
// method, status code, duration, group id, peer address, caller identity
// and, for a REST call, the HTTP client's address (caller.ForwardedFor).
// It never logs the request or response.
func UnaryLogging(logger *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		start := time.Now()
		resp, err := handler(ctx, req)
		g, hasGroup := req.(groupIDer)
		var groupID string
		if hasGroup {
			groupID = g.GetGroupId()
		}
		logCall(ctx, logger, info.FullMethod, start, err, hasGroup, groupID)
		return resp, err
	}
}

// StreamLogging is UnaryLogging for streaming calls (health Watch,
// reflection).
func StreamLogging(logger *slog.Logger) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		start := time.Now()
		err := handler(srv, ss)
		logCall(ss.Context(), logger, info.FullMethod, start, err, false, "")
		return err
	}
}

// maxCallAttrs is the most attributes logCall writes.
const maxCallAttrs = 8

// logCall writes the record of one call, with a group_id attribute if
// hasGroup. It runs for every call, so it builds nothing when the record's
// level is disabled, and its attributes live in an array on the stack.
func logCall(ctx context.Context, logger *slog.Logger, method string, start time.Time, err error, hasGroup bool, groupID string) {
	code := status.Code(err)
	level := levelFor(method, code)
	if !logger.Enabled(ctx, level) {
		return
	}
	var buf [maxCallAttrs]slog.Attr
	attrs := append(buf[:0],
		slog.String("method", method),
		slog.String("code", code.String()),
		slog.Duration("duration", time.Since(start)),
	)
	if hasGroup {
		attrs = append(attrs, slog.String("group_id", groupID))
	}
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		attrs = append(attrs, slog.String("peer", p.Addr.String()))
	}
	// For a REST call, the HTTP client's address as the gateway saw it; the
	// peer is then the gateway itself. Never the x-forwarded-for metadata as
	// it arrives: its leading entries, and all of it on a direct gRPC call,
	// are whatever the caller chose to send.
	if addr := caller.ForwardedFor(ctx); addr != "" {
		attrs = append(attrs, slog.String("forwarded_for", truncate(addr, 256)))
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
			if len(method) >= len(p) && method[:len(p)] == p {
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

// AccessLog wraps next with an HTTP access log: method, path (never the
// query or body), status, duration and remote address. Requests to quiet
// paths (probes, metrics scrapes) are logged at debug level.
func AccessLog(logger *slog.Logger, next http.Handler, quietPaths ...string) http.Handler {
	quiet := make(map[string]bool, len(quietPaths))
	for _, p := range quietPaths {
		quiet[p] = true
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		level := slog.LevelInfo
		switch {
		case rec.status >= 500:
			level = slog.LevelError
		case quiet[r.URL.Path] && rec.status < 400:
			level = slog.LevelDebug
		}
		logger.LogAttrs(r.Context(), level, "http request",
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.Int("status", rec.status),
			slog.Duration("duration", time.Since(start)),
			slog.String("remote_addr", r.RemoteAddr),
		)
	})
}

// statusRecorder remembers the status code a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	status      int
	wroteHeader bool
}

func (s *statusRecorder) WriteHeader(code int) {
	if !s.wroteHeader {
		s.status, s.wroteHeader = code, true
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	s.wroteHeader = true
	return s.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer (Flush).
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// truncate bounds a caller-supplied string before it is logged: at most n
// bytes, cut between characters, then "…".
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
