package telemetry

import (
	"context"
	"log/slog"
	"net/http"
	"runtime/debug"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/recovery"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"

	"github.com/encryptiond/encryptiond/server/failure"
)

// recoveryOption turns a panic into codes.Internal with a fixed message,
// logging the panic value and stack: the caller learns nothing of the
// server's internals.
func recoveryOption(logger *slog.Logger) recovery.Option {
	return recovery.WithRecoveryHandlerContext(func(ctx context.Context, p any) error {
		logger.LogAttrs(ctx, slog.LevelError, "panic in gRPC handler",
			slog.Any("panic", p), slog.String("stack", string(debug.Stack())))
		return failure.New(codes.Internal, "internal error",
			failure.Info{Domain: failure.DomainService, Reason: failure.ReasonInternal, HTTPStatus: http.StatusInternalServerError})
	})
}

// UnaryRecovery returns an interceptor that turns a panic into an Internal
// error and logs it. Put it last in the chain, so that the other
// interceptors see a handler's panic as the Internal code, and first as
// well, so that a panic in one of those interceptors does not end the
// process.
func UnaryRecovery(logger *slog.Logger) grpc.UnaryServerInterceptor {
	return recovery.UnaryServerInterceptor(recoveryOption(logger))
}

// StreamRecovery is UnaryRecovery for streaming calls.
func StreamRecovery(logger *slog.Logger) grpc.StreamServerInterceptor {
	return recovery.StreamServerInterceptor(recoveryOption(logger))
}
