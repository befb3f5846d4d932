package daemon

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"google.golang.org/grpc"
	healthgrpc "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/encryptiond/encryptiond/server"
)

// How encryptiond stops, on SIGTERM or SIGINT (the context of Serve):
//
//  1. Health goes NOT_SERVING and /readyz 503; health Watch streams end
//     (after NOT_SERVING), and so do the watches of private endpoints, at
//     once, with UNAVAILABLE: "watch again" (grpc.go,
//     stopper.stream).
//  2. Both listeners stop accepting at the same moment: the public gRPC
//     server stops (GracefulStop: no new connection or call; calls in
//     flight go on), with the health listener of -health-addr, and the
//     HTTP server shuts down (no new connection; requests in flight go on). The in-process gRPC server the gateway
//     calls keeps serving, so REST requests already in flight finish; it
//     stops gracefully once the HTTP server has.
//  3. When -shutdown-timeout passes with calls still in flight, they are
//     cut: their contexts end with server.ErrStopping as the cause, and the
//     service answers them UNAVAILABLE, saying that a change may or may not
//     have been applied (REST: 503 in the route's error shape). They get
//     cutGrace to write that answer before the servers close what is left.
//  4. PATCHes already sent to Atlas whose callers were answered (cut, or
//     gone on their own) run on to Atlas's answer: the process waits up
//     to atlasGrace for them (server.Server.WaitForAtlas), so that it
//     does not drop a change in flight that Atlas may still apply, and
//     says so when some are still unanswered at exit.

// cutGrace is how long calls cut at the end of the shutdown timeout get to
// answer before their connections are closed.
const cutGrace = 2 * time.Second

// atlasGrace is how long the process waits, once no call runs, for the
// answers to PATCHes it has already answered OUTCOME_UNKNOWN.
const atlasGrace = 10 * time.Second

// ShutdownOverrun is the longest the process runs after -shutdown-timeout
// has passed: cutGrace, then atlasGrace. A supervisor's grace period
// (Kubernetes' terminationGracePeriodSeconds) must cover -shutdown-timeout
// plus this; deploy/manifests_test.go checks the shipped manifests.
const ShutdownOverrun = cutGrace + atlasGrace

// stopper ends the contexts of the calls in flight when the shutdown
// timeout passes. Its interceptors give every call a context that cut
// cancels.
type stopper struct {
	ctx context.Context
	cut context.CancelCauseFunc
	// stopping ends when shutdown begins.
	stopping context.Context
	begin    context.CancelFunc // marks the start of shutdown
}

func newStopper() *stopper {
	ctx, cut := context.WithCancelCause(context.Background())
	stopping, begin := context.WithCancel(context.Background())
	return &stopper{ctx: ctx, cut: cut, stopping: stopping, begin: begin}
}

// callContext returns ctx, ended with server.ErrStopping as its cause when
// the calls are cut. Call release when the call ends.
func (s *stopper) callContext(ctx context.Context) (_ context.Context, release func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	stop := context.AfterFunc(s.ctx, func() { cancel(context.Cause(s.ctx)) })
	return ctx, func() { stop(); cancel(nil) }
}

// unary is the interceptor that lets cut end a unary call.
func (s *stopper) unary(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	ctx, release := s.callContext(ctx)
	defer release()
	return handler(ctx, req)
}

// watchGrace is how long a health Watch stream stays open after shutdown
// begins, so that it delivers NOT_SERVING before it ends.
const watchGrace = 250 * time.Millisecond

// stream is the interceptor that lets cut end a streaming call, and that
// ends, once shutdown begins, the streams that would otherwise outlast any
// shutdown: health Watch after watchGrace, so that it delivers NOT_SERVING
// first, and the encryption service's watches at once. Their context ends
// with server.ErrStopping as its cause, which the watches answer
// UNAVAILABLE ("watch again"). A watch may wait for hours, so GracefulStop
// would otherwise wait for the whole shutdown timeout whenever a client
// watches. It starts no goroutine a stream (context.AfterFunc), and wraps
// the stream's context once: a server of watches holds thousands.
func (s *stopper) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	var grace time.Duration
	switch {
	case info.FullMethod == healthgrpc.Health_Watch_FullMethodName:
		grace = watchGrace
	case strings.HasPrefix(info.FullMethod, serviceMethodPrefix):
	default:
		ctx, release := s.callContext(ss.Context())
		defer release()
		return handler(srv, &contextStream{ServerStream: ss, ctx: ctx})
	}
	// A watch ends when shutdown begins (health Watch watchGrace after),
	// before any cut: its context needs no other end.
	ctx, cancel := context.WithCancelCause(ss.Context())
	defer cancel(nil)
	end := context.AfterFunc(s.stopping, func() {
		if grace == 0 {
			cancel(server.ErrStopping)
			return
		}
		time.AfterFunc(grace, func() { cancel(server.ErrStopping) }) // a no-op once the stream has ended
	})
	defer end()
	return handler(srv, &contextStream{ServerStream: ss, ctx: ctx})
}

// shutdown stops the servers as the comment at the top of this file says.
// In-flight calls outlasting the timeout are cut, as the operator asked;
// that is not a failure of the daemon.
func (d *Daemon) shutdown() {
	timeout := d.cfg.ShutdownTimeout
	d.log.Info("shutting down", slog.Duration("timeout", timeout))
	d.ready.Store(false)
	d.health.Shutdown()
	d.stop.begin()

	// graceful runs stop, and after it then, returning when both are done.
	graceful := func(stop, then func()) <-chan struct{} {
		done := make(chan struct{})
		go func() {
			defer close(done)
			stop()
			then()
		}()
		return done
	}
	httpCtx, cancelHTTP := context.WithCancel(context.Background())
	defer cancelHTTP()
	publicDone := graceful(d.public.GracefulStop, d.probes.GracefulStop)
	restDone := graceful(func() { _ = d.http.Shutdown(httpCtx) }, d.internal.GracefulStop)

	wait := func(d time.Duration) bool {
		t := time.NewTimer(d)
		defer t.Stop()
		for _, done := range []<-chan struct{}{publicDone, restDone} {
			select {
			case <-done:
			case <-t.C:
				return false
			}
		}
		return true
	}
	if !wait(timeout) {
		d.log.Warn("shutdown timeout: answering the calls still in flight and closing their connections")
		d.stop.cut(server.ErrStopping)
		if !wait(cutGrace) {
			cancelHTTP()
			d.public.Stop()
			d.probes.Stop()
			_ = d.http.Close()
			d.internal.Stop()
			<-publicDone
			<-restDone
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), atlasGrace)
	defer cancel()
	if n := d.svc.WaitForAtlas(ctx); n > 0 {
		d.log.Warn("stopping with changes sent to Atlas still unanswered: Atlas may still apply them; read their projects before changing them again",
			slog.Int("changes", n), slog.Duration("waited", atlasGrace))
	}
	d.log.Info("stopped")
}
