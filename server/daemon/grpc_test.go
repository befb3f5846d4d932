package daemon

import (
	"context"
	"log/slog"
	"net"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	encryptionv1 "github.com/encryptiond/encryptiond/gen/atlas/encryption/v1"
)

// TestInterceptorPanics puts a panicking interceptor at every position of
// the server's chains but the first, and checks that the call fails with
// INTERNAL and that the server goes on serving: recovery must be the
// outermost interceptor, not only the innermost.
func TestInterceptorPanics(t *testing.T) {
	t.Parallel()
	allow := func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		return handler(ctx, req)
	}
	panicUnary := func(context.Context, any, *grpc.UnaryServerInfo, grpc.UnaryHandler) (any, error) {
		panic("unary interceptor bug")
	}
	panicStream := func(any, grpc.ServerStream, *grpc.StreamServerInfo, grpc.StreamHandler) error {
		panic("stream interceptor bug")
	}
	log := &syncBuffer{}
	logger := slog.New(slog.NewJSONHandler(log, nil))
	allowStream := func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		return handler(srv, ss)
	}
	unary, stream := interceptors(logger, allow, allowStream, true, newStopper())

	for i := 1; i <= len(unary); i++ {
		chain := slices.Insert(slices.Clone(unary), i, panicUnary)
		conn := panicServer(t, grpc.ChainUnaryInterceptor(chain...), grpc.ChainStreamInterceptor(stream...))
		c := encryptionv1.NewEncryptionServiceClient(conn)
		for range 2 { // the second call shows that the server survived
			_, err := c.GetEncryptionAtRest(t.Context(), &encryptionv1.GetEncryptionAtRestRequest{GroupId: testGroup})
			if status.Code(err) != codes.Internal {
				t.Errorf("GetEncryptionAtRest() with a panic at unary interceptor %d = %v, want Internal", i, err)
			}
		}
	}
	for i := 1; i <= len(stream); i++ {
		chain := slices.Insert(slices.Clone(stream), i, panicStream)
		conn := panicServer(t, grpc.ChainUnaryInterceptor(unary...), grpc.ChainStreamInterceptor(chain...))
		for range 2 {
			w, err := healthpb.NewHealthClient(conn).Watch(t.Context(), &healthpb.HealthCheckRequest{})
			if err == nil {
				_, err = w.Recv()
			}
			if status.Code(err) != codes.Internal {
				t.Errorf("Watch() with a panic at stream interceptor %d = %v, want Internal", i, err)
			}
		}
	}
	if !strings.Contains(log.String(), "interceptor bug") {
		t.Errorf("the log does not show the panics:\n%s", log)
	}
}

// panicServer serves the encryption service (unimplemented) and health
// in memory with opts until the test ends, and returns a connection to it.
func panicServer(t *testing.T, opts ...grpc.ServerOption) *grpc.ClientConn {
	t.Helper()
	lis := bufconn.Listen(1 << 16)
	s := grpc.NewServer(opts...)
	if err := registerServices(s, encryptionv1.UnimplementedEncryptionServiceServer{}, health.NewServer()); err != nil {
		t.Fatal(err)
	}
	go s.Serve(lis)
	t.Cleanup(s.Stop)
	conn, err := grpc.NewClient("passthrough:///panic-test",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}
