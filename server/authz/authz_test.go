package authz

import (
	"context"
	"errors"
	"io"
	"math"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthgrpc "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/reflection"
	reflectionv1 "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	encryptionv1 "github.com/encryptiond/encryptiond/gen/atlas/encryption/v1"
	"github.com/encryptiond/encryptiond/server"
	"github.com/encryptiond/encryptiond/server/caller"
	"github.com/encryptiond/encryptiond/server/failure"
)

// testIdentityKey is the metadata key in which tests name the caller; the
// test server's identity interceptor stands in for the daemon's mTLS
// identity.
const testIdentityKey = "x-test-identity"

// fakeService answers every call with an empty configuration, or
// INVALID_ARGUMENT for a malformed group id, and counts the calls that
// reach it.
type fakeService struct {
	encryptionv1.UnimplementedEncryptionServiceServer
	calls atomic.Int64
}

func (f *fakeService) answer(groupID string) (*encryptionv1.EncryptionAtRest, error) {
	f.calls.Add(1)
	if !server.IsAtlasID(groupID) {
		return nil, status.Error(codes.InvalidArgument, "malformed group id")
	}
	return &encryptionv1.EncryptionAtRest{}, nil
}

func (f *fakeService) GetEncryptionAtRest(_ context.Context, req *encryptionv1.GetEncryptionAtRestRequest) (*encryptionv1.EncryptionAtRest, error) {
	return f.answer(req.GetGroupId())
}

func (f *fakeService) UpdateEncryptionAtRest(_ context.Context, req *encryptionv1.UpdateEncryptionAtRestRequest) (*encryptionv1.EncryptionAtRest, error) {
	return f.answer(req.GetGroupId())
}

// auditRecorder stands in for the audit interceptor, outside authz: it
// records the code of every UpdateEncryptionAtRest call.
type auditRecorder struct {
	mu    sync.Mutex
	codes []codes.Code
}

func (a *auditRecorder) intercept(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	resp, err := handler(ctx, req)
	if info.FullMethod == encryptionv1.EncryptionService_UpdateEncryptionAtRest_FullMethodName {
		a.mu.Lock()
		a.codes = append(a.codes, status.Code(err))
		a.mu.Unlock()
	}
	return resp, err
}

func (a *auditRecorder) recorded() []codes.Code {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]codes.Code(nil), a.codes...)
}

func testIdentity(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if v := metadata.ValueFromIncomingContext(ctx, testIdentityKey); len(v) == 1 {
		ctx = caller.NewContext(ctx, v[0])
	}
	return handler(ctx, req)
}

// testServer is a grpc.Server over bufconn with the encryption service,
// health and reflection, and the interceptors identity → audit → authz.
type testServer struct {
	conn    *grpc.ClientConn
	client  encryptionv1.EncryptionServiceClient
	service *fakeService
	audit   *auditRecorder
}

func startServer(t *testing.T, authz grpc.UnaryServerInterceptor) *testServer {
	t.Helper()
	ts := &testServer{service: &fakeService{}, audit: &auditRecorder{}}
	lis := bufconn.Listen(1 << 20)
	srv := grpc.NewServer(grpc.ChainUnaryInterceptor(testIdentity, ts.audit.intercept, authz))
	encryptionv1.RegisterEncryptionServiceServer(srv, ts.service)
	healthgrpc.RegisterHealthServer(srv, health.NewServer())
	reflection.Register(srv)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	t.Cleanup(func() {
		srv.Stop()
		if err := <-served; err != nil {
			t.Errorf("Serve() = %v", err)
		}
	})

	conn, err := grpc.NewClient("passthrough:///bufconn",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("grpc.NewClient() = %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	ts.conn = conn
	ts.client = encryptionv1.NewEncryptionServiceClient(conn)
	return ts
}

// call makes a Read or Write call on groupID as identity ("" for none).
func (ts *testServer) call(ctx context.Context, identity, groupID string, action Action) error {
	if identity != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, testIdentityKey, identity)
	}
	var err error
	if action == Write {
		_, err = ts.client.UpdateEncryptionAtRest(ctx, &encryptionv1.UpdateEncryptionAtRestRequest{GroupId: groupID})
	} else {
		_, err = ts.client.GetEncryptionAtRest(ctx, &encryptionv1.GetEncryptionAtRestRequest{GroupId: groupID})
	}
	return err
}

func errorInfoOf(err error) *errdetails.ErrorInfo {
	for _, d := range status.Convert(err).Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info
		}
	}
	return nil
}

func retryInfoOf(err error) *errdetails.RetryInfo {
	for _, d := range status.Convert(err).Details() {
		if info, ok := d.(*errdetails.RetryInfo); ok {
			return info
		}
	}
	return nil
}

// refused is what a refusal should look like.
type refused struct {
	code     codes.Code
	message  string // a part of the message
	reason   string // ErrorInfo reason; "" for no ErrorInfo
	metadata map[string]string
}

func checkRefusal(t *testing.T, call string, err error, want refused) {
	t.Helper()
	if got := status.Code(err); got != want.code {
		t.Fatalf("%s = %v, want code %v", call, err, want.code)
	}
	if !strings.Contains(status.Convert(err).Message(), want.message) {
		t.Errorf("%s = %v, want a message containing %q", call, err, want.message)
	}
	info := errorInfoOf(err)
	if want.reason == "" {
		if info != nil {
			t.Errorf("%s has ErrorInfo %v, want none", call, info)
		}
		return
	}
	if info == nil {
		t.Fatalf("%s = %v, want an ErrorInfo", call, err)
	}
	if info.GetReason() != want.reason || info.GetDomain() != "encryptiond" {
		t.Errorf("%s ErrorInfo = %s/%s, want %s/encryptiond", call, info.GetReason(), info.GetDomain(), want.reason)
	}
	if diff := cmp.Diff(want.metadata, info.GetMetadata()); diff != "" {
		t.Errorf("%s ErrorInfo metadata (-want +got):\n%s", call, diff)
	}
}

func TestInterceptor(t *testing.T) {
	t.Parallel()
	policy := mustParse(t, examplePolicy)
	const malformed = "NOT-A-GROUP"
	denied := func(msg, group string) refused {
		return refused{codes.PermissionDenied, msg, failure.ReasonPermissionDenied, map[string]string{"httpStatus": "403", "groupId": group}}
	}
	unauthenticated := refused{codes.Unauthenticated, "client certificate", failure.ReasonUnauthenticated, map[string]string{"httpStatus": "401", "groupId": group1}}
	tests := []struct {
		name     string
		cfg      Config
		identity string // "" for an anonymous caller
		group    string
		action   Action
		want     *refused // nil: the call reaches the service
	}{
		{"allowed read", Config{Authenticate: true, Policy: policy}, keyAdmin, group2, Read, nil},
		{"allowed write", Config{Authenticate: true, Policy: policy}, keyAdmin, group1, Write, nil},
		{"allowed read by auditor", Config{Authenticate: true, Policy: policy}, auditor, group1, Read, nil},
		{"denied write", Config{Authenticate: true, Policy: policy}, keyAdmin, group2, Write,
			&refused{codes.PermissionDenied, "caller " + keyAdmin + " may not change project " + group2, failure.ReasonPermissionDenied, map[string]string{"httpStatus": "403", "groupId": group2}}},
		{"denied write by auditor", Config{Authenticate: true, Policy: policy}, auditor, group1, Write,
			ptr(denied("caller "+auditor+" may not change project "+group1, group1))},
		{"denied read by stranger", Config{Authenticate: true, Policy: policy}, stranger, group1, Read,
			ptr(denied("caller "+stranger+" may not read project "+group1, group1))},
		{"anonymous read", Config{Authenticate: true, Policy: policy}, "", group1, Read, &unauthenticated},
		{"anonymous write", Config{Authenticate: true, Policy: policy}, "", group1, Write, &unauthenticated},
		{"malformed group, all projects: service decides", Config{Authenticate: true, Policy: policy}, keyAdmin, malformed, Read,
			&refused{codes.InvalidArgument, "malformed group id", "", nil}},
		{"malformed group, some projects: denied", Config{Authenticate: true, Policy: policy}, keyAdmin, malformed, Write,
			ptr(denied("may not change project NOT-A-GROUP", malformed))},
		{"empty group: denied", Config{Authenticate: true, Policy: policy}, keyAdmin, "", Write,
			&refused{codes.PermissionDenied, `may not change project ""`, failure.ReasonPermissionDenied, map[string]string{"httpStatus": "403"}}},
		{"no policy: read", Config{Authenticate: true}, stranger, group1, Read, nil},
		{"no policy: write denied", Config{Authenticate: true}, keyAdmin, group1, Write,
			ptr(denied("caller "+keyAdmin+" may not change project "+group1, group1))},
		{"no policy: anonymous", Config{Authenticate: true}, "", group1, Read, &unauthenticated},
		{"open: anonymous read", Config{}, "", group1, Read, nil},
		{"open: anonymous write", Config{}, "", group1, Write, nil},
		{"open: any identity write", Config{}, stranger, group1, Write, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			authz, err := NewInterceptor(tt.cfg)
			if err != nil {
				t.Fatalf("NewInterceptor(%+v) = %v", tt.cfg, err)
			}
			ts := startServer(t, authz.Intercept)
			err = ts.call(t.Context(), tt.identity, tt.group, tt.action)
			call := tt.action.String() + " " + tt.group + " as " + tt.identity
			if tt.want == nil {
				if err != nil {
					t.Fatalf("%s = %v, want nil", call, err)
				}
			} else {
				checkRefusal(t, call, err, *tt.want)
			}
			reached := tt.want == nil || tt.want.code == codes.InvalidArgument
			if got := ts.service.calls.Load() == 1; got != reached {
				t.Errorf("%s reached the service: %v, want %v", call, got, reached)
			}
			if tt.action == Write {
				if diff := cmp.Diff([]codes.Code{status.Code(err)}, ts.audit.recorded()); diff != "" {
					t.Errorf("%s audited (-want +got):\n%s", call, diff)
				}
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

// fakeClock is a clock that moves only when told.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func TestInterceptorRateLimit(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{now: time.Unix(1000, 0)}
	cfg := Config{Authenticate: true, RateLimit: 10, Burst: 1} // a call every 100ms
	i, err := newInterceptor(cfg, clock.Now)
	if err != nil {
		t.Fatalf("newInterceptor(%+v) = %v", cfg, err)
	}
	ts := startServer(t, i.Intercept)
	ctx := t.Context()

	if err := ts.call(ctx, auditor, group1, Read); err != nil {
		t.Fatalf("first read = %v, want nil", err)
	}
	err = ts.call(ctx, auditor, group1, Read)
	checkRefusal(t, "second read", err, refused{codes.ResourceExhausted, "caller " + auditor + " made too many requests: retry in 100ms",
		failure.ReasonRateLimited, map[string]string{"httpStatus": "429", "groupId": group1}})
	retry := retryInfoOf(err)
	if retry == nil {
		t.Fatalf("second read = %v, want a RetryInfo", err)
	}
	if got, want := retry.GetRetryDelay().AsDuration(), 100*time.Millisecond; got != want {
		t.Errorf("second read RetryInfo delay = %v, want %v", got, want)
	}

	// Other callers have their own buckets; anonymous callers are refused
	// before they get one.
	if err := ts.call(ctx, keyAdmin, group1, Read); err != nil {
		t.Errorf("read by another caller = %v, want nil", err)
	}
	checkRefusal(t, "anonymous read", ts.call(ctx, "", group1, Read), refused{codes.Unauthenticated, "", failure.ReasonUnauthenticated, map[string]string{"httpStatus": "401", "groupId": group1}})
	if got := i.buckets.len(); got != 2 {
		t.Errorf("buckets = %d, want 2", got)
	}

	clock.Advance(retry.GetRetryDelay().AsDuration())
	if err := ts.call(ctx, auditor, group1, Read); err != nil {
		t.Errorf("read after the retry delay = %v, want nil", err)
	}

	// A refused write counts against the caller's rate too.
	clock.Advance(time.Second)
	checkRefusal(t, "write", ts.call(ctx, auditor, group1, Write), refused{codes.PermissionDenied, "may not change", failure.ReasonPermissionDenied, map[string]string{"httpStatus": "403", "groupId": group1}})
	if err := ts.call(ctx, auditor, group1, Read); status.Code(err) != codes.ResourceExhausted {
		t.Errorf("read after a refused write = %v, want RESOURCE_EXHAUSTED", err)
	}
	if diff := cmp.Diff([]codes.Code{codes.PermissionDenied}, ts.audit.recorded()); diff != "" {
		t.Errorf("audited (-want +got):\n%s", diff)
	}
}

func TestInterceptorRateLimitOpen(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{now: time.Unix(1000, 0)}
	i, err := newInterceptor(Config{RateLimit: 1}, clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, i.Intercept)
	if err := ts.call(t.Context(), "", group1, Write); err != nil {
		t.Fatalf("first anonymous write = %v, want nil", err)
	}
	// bufconn peers have no IP address: anonymous callers share a bucket.
	err = ts.call(t.Context(), "", group2, Read)
	checkRefusal(t, "second anonymous read", err, refused{codes.ResourceExhausted, "anonymous callers made too many requests: retry in 1s",
		failure.ReasonRateLimited, map[string]string{"httpStatus": "429", "groupId": group2}})
}

func TestHealthAndReflectionNotGated(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{now: time.Unix(1000, 0)}
	i, err := newInterceptor(Config{Authenticate: true, Policy: mustParse(t, "callers: []"), RateLimit: 1, Burst: 1}, clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, i.Intercept)
	ctx := t.Context()

	// Anonymous, and more often than the rate limit allows.
	for range 3 {
		resp, err := healthgrpc.NewHealthClient(ts.conn).Check(ctx, &healthgrpc.HealthCheckRequest{})
		if err != nil || resp.GetStatus() != healthgrpc.HealthCheckResponse_SERVING {
			t.Fatalf("Check() = %v, %v; want SERVING", resp, err)
		}
		stream, err := reflectionv1.NewServerReflectionClient(ts.conn).ServerReflectionInfo(ctx)
		if err != nil {
			t.Fatalf("ServerReflectionInfo() = %v", err)
		}
		if err := stream.Send(&reflectionv1.ServerReflectionRequest{MessageRequest: &reflectionv1.ServerReflectionRequest_ListServices{}}); err != nil {
			t.Fatalf("Send(ListServices) = %v", err)
		}
		resp2, err := stream.Recv()
		if err != nil {
			t.Fatalf("Recv() = %v", err)
		}
		if got := len(resp2.GetListServicesResponse().GetService()); got == 0 {
			t.Errorf("ListServices() = %v, want services", resp2)
		}
		if err := stream.CloseSend(); err != nil {
			t.Fatalf("CloseSend() = %v", err)
		}
		if _, err := stream.Recv(); !errors.Is(err, io.EOF) {
			t.Fatalf("Recv() after CloseSend = %v, want EOF", err)
		}
	}
	if got := i.buckets.len(); got != 0 {
		t.Errorf("buckets = %d, want 0", got)
	}
	// The service itself is gated.
	if err := ts.call(ctx, "", group1, Read); status.Code(err) != codes.Unauthenticated {
		t.Errorf("anonymous read = %v, want UNAUTHENTICATED", err)
	}
}

func TestRefusalBoundsEcho(t *testing.T) {
	t.Parallel()
	authz, err := NewInterceptor(Config{Authenticate: true, Policy: mustParse(t, examplePolicy)})
	if err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, authz.Intercept)
	long := strings.Repeat("é", 1000) // 2000 bytes; a byte cut would split a character
	err = ts.call(t.Context(), auditor, long, Write)
	if status.Code(err) != codes.PermissionDenied {
		t.Fatalf("write = %v, want PERMISSION_DENIED", err)
	}
	if msg := status.Convert(err).Message(); len(msg) > 300 {
		t.Errorf("message is %d bytes, want at most 300", len(msg))
	}
	info := errorInfoOf(err)
	if info == nil {
		t.Fatalf("write = %v, want an ErrorInfo", err)
	}
	if g := info.GetMetadata()["groupId"]; len(g) > maxEcho+len("…") || !utf8.ValidString(g) || !strings.HasPrefix(long, strings.TrimSuffix(g, "…")) {
		t.Errorf("ErrorInfo groupId = %q, want a valid prefix of at most %d bytes", g, maxEcho)
	}
}

func TestNewInterceptorErrors(t *testing.T) {
	t.Parallel()
	policy := mustParse(t, examplePolicy)
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"policy without authentication", Config{Policy: policy}, "needs authenticated callers"},
		{"negative rate", Config{RateLimit: -1}, "rate limit -1"},
		{"NaN rate", Config{RateLimit: math.NaN()}, "rate limit NaN"},
		{"infinite rate", Config{RateLimit: math.Inf(1)}, "rate limit +Inf"},
		{"negative burst", Config{RateLimit: 1, Burst: -1}, "burst -1"},
		{"negative max callers", Config{MaxCallers: -1}, "max callers -1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if _, err := NewInterceptor(tt.cfg); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("NewInterceptor(%+v) = %v, want an error containing %q", tt.cfg, err, tt.want)
			}
		})
	}
}

func TestCheckService(t *testing.T) {
	t.Parallel()
	if err := checkService(&encryptionv1.EncryptionService_ServiceDesc); err != nil {
		t.Errorf("checkService(EncryptionService) = %v, want nil", err)
	}
	grown := encryptionv1.EncryptionService_ServiceDesc
	grown.Methods = append(append([]grpc.MethodDesc(nil), grown.Methods...), grpc.MethodDesc{MethodName: "DeleteEncryptionAtRest"})
	if err := checkService(&grown); err == nil || !strings.Contains(err.Error(), "DeleteEncryptionAtRest is neither a read nor a write") {
		t.Errorf("checkService(with an unclassified method) = %v, want an error naming it", err)
	}
	streaming := encryptionv1.EncryptionService_ServiceDesc
	streaming.Streams = append(append([]grpc.StreamDesc(nil), streaming.Streams...), grpc.StreamDesc{StreamName: "WatchEverything", ServerStreams: true})
	if err := checkService(&streaming); err == nil || !strings.Contains(err.Error(), "WatchEverything is neither a read nor a write") {
		t.Errorf("checkService(with an unclassified stream) = %v, want an error naming it", err)
	}
	uploads := encryptionv1.EncryptionService_ServiceDesc
	uploads.Streams = []grpc.StreamDesc{{StreamName: "WatchPrivateEndpoint", ClientStreams: true}}
	if err := checkService(&uploads); err == nil || !strings.Contains(err.Error(), "stream of requests") {
		t.Errorf("checkService(with a client stream) = %v, want an error", err)
	}
}

func TestUnknownMethodDenied(t *testing.T) {
	t.Parallel()
	i, err := newInterceptor(Config{}, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	info := &grpc.UnaryServerInfo{FullMethod: servicePrefix + "DeleteEncryptionAtRest"}
	handler := func(context.Context, any) (any, error) { return nil, nil }
	_, err = i.Intercept(t.Context(), &encryptionv1.GetEncryptionAtRestRequest{GroupId: group1}, info, handler)
	checkRefusal(t, "DeleteEncryptionAtRest", err, refused{codes.PermissionDenied, "not covered by the authorization policy",
		failure.ReasonPermissionDenied, map[string]string{"httpStatus": "403", "groupId": group1}})
}

func TestRateKey(t *testing.T) {
	t.Parallel()
	tcp := &net.TCPAddr{IP: net.ParseIP("192.0.2.7"), Port: 41000}
	tests := []struct {
		name     string
		ctx      context.Context
		identity string
		key, who string
	}{
		{"identity", peer.NewContext(t.Context(), &peer.Peer{Addr: tcp}), keyAdmin, "id:" + keyAdmin, "caller " + keyAdmin},
		{"anonymous over TCP", peer.NewContext(t.Context(), &peer.Peer{Addr: tcp}), caller.Anonymous, "ip:192.0.2.7", "anonymous caller at 192.0.2.7"},
		{"anonymous in process", peer.NewContext(t.Context(), &peer.Peer{Addr: bufconn.Listen(1).Addr()}), caller.Anonymous, "anonymous", "anonymous callers"},
		{"anonymous without peer", t.Context(), caller.Anonymous, "anonymous", "anonymous callers"},
		{"anonymous over REST", caller.NewForwardedContext(peer.NewContext(t.Context(), &peer.Peer{Addr: bufconn.Listen(1).Addr()}), "198.51.100.4"), caller.Anonymous, "ip:198.51.100.4", "anonymous caller at 198.51.100.4"},
		{"anonymous over REST, with a port", caller.NewForwardedContext(t.Context(), "198.51.100.4:5555"), caller.Anonymous, "ip:198.51.100.4", "anonymous caller at 198.51.100.4"},
		{"identity looking like a key", t.Context(), "ip:192.0.2.7", "id:ip:192.0.2.7", "caller ip:192.0.2.7"},
	}
	for _, tt := range tests {
		if key, who := rateKey(tt.ctx, tt.identity); key != tt.key || who != tt.who {
			t.Errorf("%s: rateKey(%q) = %q, %q; want %q, %q", tt.name, tt.identity, key, who, tt.key, tt.who)
		}
	}
}

func TestConfigSummary(t *testing.T) {
	t.Parallel()
	tests := []struct {
		cfg  Config
		want string
	}{
		{Config{}, "authorization off (no client authentication): every caller may read and change every project; no rate limit"},
		{Config{Authenticate: true, RateLimit: 2.5}, "authorization: no policy file: every authenticated caller may read, nobody may change; rate limit 2.5 calls per second per caller, burst 3"},
		{Config{Authenticate: true, Policy: mustParse(t, "callers: []"), RateLimit: 5, Burst: 20}, "authorization: policy: nobody may read or change; rate limit 5 calls per second per caller, burst 20"},
	}
	for _, tt := range tests {
		if got := tt.cfg.Summary(); got != tt.want {
			t.Errorf("Config%+v.Summary() = %q, want %q", tt.cfg, got, tt.want)
		}
	}
}

func TestPrintable(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		keyAdmin:                 keyAdmin,
		"CN=x":                   "CN=x",
		"":                       `""`,
		"a b":                    `"a b"`,
		"a\nb":                   `"a\nb"`,
		`a"b`:                    `"a\"b"`,
		"ünïcode":                "ünïcode",
		strings.Repeat("x", 200): `"` + strings.Repeat("x", maxEcho) + `…"`,
	}
	for in, want := range tests {
		if got := printable(in); got != want {
			t.Errorf("printable(%q) = %q, want %q", in, got, want)
		}
	}
}
