package authz

import (
	"context"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	encryptionv1 "github.com/encryptiond/encryptiond/gen/atlas/encryption/v1"
	"github.com/encryptiond/encryptiond/server/caller"
	"github.com/encryptiond/encryptiond/server/failure"
)

// watchService answers every watch with one message, and counts the
// watches that reach it.
type watchService struct {
	fakeService
}

func (w *watchService) WatchPrivateEndpoint(req *encryptionv1.WatchPrivateEndpointRequest, stream grpc.ServerStreamingServer[encryptionv1.PrivateEndpoint]) error {
	w.calls.Add(1)
	return stream.Send(&encryptionv1.PrivateEndpoint{Id: req.GetEndpointId(), Status: encryptionv1.PrivateEndpoint_ACTIVE})
}

func testIdentityStream(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	ctx := ss.Context()
	if v := metadata.ValueFromIncomingContext(ctx, testIdentityKey); len(v) == 1 {
		ctx = caller.NewContext(ctx, v[0])
	}
	return handler(srv, &identityStream{ServerStream: ss, ctx: ctx})
}

type identityStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *identityStream) Context() context.Context { return s.ctx }

// startStreamServer serves watchService with both interceptors of i.
func startStreamServer(t *testing.T, i *Interceptor) (encryptionv1.EncryptionServiceClient, *watchService) {
	t.Helper()
	svc := &watchService{}
	lis := bufconn.Listen(1 << 20)
	srv := grpc.NewServer(
		grpc.ChainUnaryInterceptor(testIdentity, i.Intercept),
		grpc.ChainStreamInterceptor(testIdentityStream, i.InterceptStream),
	)
	encryptionv1.RegisterEncryptionServiceServer(srv, svc)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient("passthrough:///bufconn",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return encryptionv1.NewEncryptionServiceClient(conn), svc
}

// watch opens a watch of groupID as identity and returns how it ended:
// nil when it delivered its message.
func watch(ctx context.Context, client encryptionv1.EncryptionServiceClient, identity, groupID string) error {
	if identity != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, testIdentityKey, identity)
	}
	stream, err := client.WatchPrivateEndpoint(ctx, &encryptionv1.WatchPrivateEndpointRequest{GroupId: groupID, CloudProvider: encryptionv1.CloudProvider_AWS, EndpointId: group2})
	if err != nil {
		return err
	}
	_, err = stream.Recv()
	return err
}

func TestStreamsGetTheSameDecisions(t *testing.T) {
	t.Parallel()
	policy := mustParse(t, examplePolicy)
	tests := []struct {
		name     string
		identity string
		group    string
		want     codes.Code
		reason   string
	}{
		{"reader may watch", auditor, group1, codes.OK, ""},
		{"writer may watch", keyAdmin, group1, codes.OK, ""},
		{"stranger may not", stranger, group1, codes.PermissionDenied, failure.ReasonPermissionDenied},
		{"anonymous may not", "", group1, codes.Unauthenticated, failure.ReasonUnauthenticated},
	}
	i, err := newInterceptor(Config{Authenticate: true, Policy: policy}, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	client, svc := startStreamServer(t, i)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := svc.calls.Load()
			err := watch(t.Context(), client, tt.identity, tt.group)
			if status.Code(err) != tt.want {
				t.Fatalf("watch as %q = %v, want %v", tt.identity, err, tt.want)
			}
			if got := failure.Parse(status.Convert(err)).Info.Reason; got != tt.reason {
				t.Errorf("watch as %q: reason %q, want %q", tt.identity, got, tt.reason)
			}
			if reached := svc.calls.Load() > before; reached != (tt.want == codes.OK) {
				t.Errorf("watch as %q reached the service: %v", tt.identity, reached)
			}
		})
	}
}

func TestStreamsShareTheRateLimit(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{now: time.Unix(1000, 0)}
	i, err := newInterceptor(Config{RateLimit: 1, Burst: 1}, clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	client, _ := startStreamServer(t, i)
	if _, err := client.GetEncryptionAtRest(t.Context(), &encryptionv1.GetEncryptionAtRestRequest{GroupId: group1}); err != nil {
		t.Fatalf("first call = %v", err)
	}
	err = watch(t.Context(), client, "", group1)
	if status.Code(err) != codes.ResourceExhausted || failure.Parse(status.Convert(err)).RetryAfter <= 0 {
		t.Errorf("a watch right after a call, burst 1 = %v, want RESOURCE_EXHAUSTED with RetryInfo", err)
	}
	clock.Advance(time.Second)
	if err := watch(t.Context(), client, "", group1); err != nil {
		t.Errorf("a watch once a token is back = %v, want it served", err)
	}
}
