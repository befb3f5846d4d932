package daemon

// How callers are identified, over gRPC and over REST.
//
// Two gRPC servers with the same options serve two listeners: the public
// TCP listener (-grpc-addr) and an in-process, in-memory listener that only
// the REST gateway of this process can dial. Every stats handler and
// interceptor thus runs for gRPC and REST alike.
//
// Public connections are TLS (mutual TLS with -tls-client-ca) or plaintext,
// as configured; a public caller's identity is its verified client
// certificate's, and any identity metadata it sends is ignored.
//
// In-process connections skip the TLS handshake (splitCredentials): the
// bytes never leave the process. The gateway, which terminated the HTTP
// client's TLS itself, sends that client's verified certificate identity in
// the metadata key callerMetadataKey; the gRPC side trusts that key only on
// an in-process connection. The gateway's client interceptors
// (forwardIdentity, and forwardIdentityStream for a REST watch) set the one
// it verified, and first delete any value already under that key. The
// gateway's header matcher forwards no Grpc-Metadata-* header (only
// X-Request-Id), so an HTTP client cannot put one there today; the delete
// keeps it that way should the matcher ever change.
//
// The HTTP client's address crosses in the same trusted way: on an
// in-process connection only, restClientAddr takes the last element of
// x-forwarded-for, the one grpc-gateway appended, for the call log.

import (
	"context"
	"crypto/x509"
	"net"
	"net/http"
	"net/url"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/test/bufconn"

	"github.com/encryptiond/encryptiond/server/authz"
	"github.com/encryptiond/encryptiond/server/caller"
)

// callerMetadataKey carries a REST caller's verified identity from the
// gateway to the gRPC server, over the in-process connection only.
const callerMetadataKey = "x-encryptiond-internal-caller"

// internalBufferSize is the in-memory connection's buffer per direction.
const internalBufferSize = 1 << 20

// internalListener is the in-process listener the gateway dials. Its
// connections are marked so that splitCredentials and callerIdentity can
// tell them from public ones; nothing outside this process can create one.
type internalListener struct{ *bufconn.Listener }

func newInternalListener() *internalListener {
	return &internalListener{bufconn.Listen(internalBufferSize)}
}

func (l *internalListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return internalConn{c}, nil
}

// dial is the gateway client's dialer.
func (l *internalListener) dial(ctx context.Context, _ string) (net.Conn, error) {
	return l.DialContext(ctx)
}

// internalConn marks a server-side in-process connection.
type internalConn struct{ net.Conn }

// internalAuthInfo is the AuthInfo of an in-process connection.
type internalAuthInfo struct{ credentials.CommonAuthInfo }

func (internalAuthInfo) AuthType() string { return "in-process" }

// splitCredentials hands public connections to the configured credentials
// (TLS or insecure) and accepts in-process connections without a handshake.
type splitCredentials struct {
	public credentials.TransportCredentials
}

func (c splitCredentials) ServerHandshake(conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	if _, ok := conn.(internalConn); ok {
		return conn, internalAuthInfo{credentials.CommonAuthInfo{SecurityLevel: credentials.PrivacyAndIntegrity}}, nil
	}
	return c.public.ServerHandshake(conn)
}

func (c splitCredentials) ClientHandshake(ctx context.Context, authority string, conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return c.public.ClientHandshake(ctx, authority, conn)
}

func (c splitCredentials) Info() credentials.ProtocolInfo { return c.public.Info() }

func (c splitCredentials) Clone() credentials.TransportCredentials {
	return splitCredentials{c.public.Clone()}
}

//nolint:staticcheck // Part of the interface.
func (c splitCredentials) OverrideServerName(name string) error {
	return c.public.OverrideServerName(name) //nolint:staticcheck
}

// certIdentity is a client certificate's identity: its first URI SAN
// (SPIFFE-style), else its first DNS SAN, else its subject CN.
func certIdentity(cert *x509.Certificate) string {
	switch {
	case len(cert.URIs) > 0:
		return cert.URIs[0].String()
	case len(cert.DNSNames) > 0:
		return cert.DNSNames[0]
	}
	return cert.Subject.CommonName
}

// verifiedIdentity is the identity of the leaf of the first verified chain,
// or "" when there is none.
func verifiedIdentity(chains [][]*x509.Certificate) string {
	if len(chains) == 0 || len(chains[0]) == 0 {
		return ""
	}
	return certIdentity(chains[0][0])
}

type authenticatedKey struct{}

// callerIdentity returns the identity of the caller of the call in ctx, or
// "" when the caller is not authenticated.
func callerIdentity(ctx context.Context) string {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return ""
	}
	switch info := p.AuthInfo.(type) {
	case internalAuthInfo:
		if v := metadata.ValueFromIncomingContext(ctx, callerMetadataKey); len(v) == 1 {
			if id, err := url.PathUnescape(v[0]); err == nil {
				return id
			}
		}
	case credentials.TLSInfo:
		return verifiedIdentity(info.State.VerifiedChains)
	}
	return ""
}

// withIdentity puts the caller's identity into ctx for caller.FromContext,
// and marks the call authenticated when there is one. For a REST call it
// also puts the HTTP client's address there, for caller.ForwardedFor.
func withIdentity(ctx context.Context) context.Context {
	if addr := restClientAddr(ctx); addr != "" {
		ctx = caller.NewForwardedContext(ctx, addr)
	}
	id := callerIdentity(ctx)
	if id == "" {
		return ctx
	}
	return context.WithValue(caller.NewContext(ctx, id), authenticatedKey{}, true)
}

// restClientAddr returns the address of the HTTP client on whose behalf the
// REST gateway made the call in ctx: the last element of x-forwarded-for,
// the one grpc-gateway appends from the HTTP request's remote address. The
// elements before it are the HTTP client's own X-Forwarded-For, which it
// may set as it likes. It returns "" for a call that did not come over the
// in-process connection: there x-forwarded-for is whatever the gRPC caller
// chose to send.
func restClientAddr(ctx context.Context) string {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return ""
	}
	if _, ok := p.AuthInfo.(internalAuthInfo); !ok {
		return ""
	}
	v := metadata.ValueFromIncomingContext(ctx, "x-forwarded-for")
	if len(v) == 0 {
		return ""
	}
	last := v[len(v)-1]
	if i := strings.LastIndexByte(last, ','); i >= 0 {
		last = last[i+1:]
	}
	return strings.TrimSpace(last)
}

// identityStats establishes the caller's identity when a call begins, as
// a stats.Handler, so that everything after it sees the identity: the call
// log and metrics (telemetry.Calls, the next stats handler), then every
// interceptor. It refuses nothing: authorization does (package authz for
// unary calls, requireAuthStream for streams), after the audit log has seen
// the call.
type identityStats struct{}

func (identityStats) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context {
	return withIdentity(ctx)
}

func (identityStats) HandleRPC(context.Context, stats.RPCStats) {}

func (identityStats) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context { return ctx }

func (identityStats) HandleConn(context.Context, stats.ConnStats) {}

// contextStream replaces a stream's context.
type contextStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *contextStream) Context() context.Context { return s.ctx }

// healthMethodPrefix is open to unauthenticated callers, so that probes
// need no client certificate.
const healthMethodPrefix = "/grpc.health.v1.Health/"

// requireAuthStream refuses streaming calls (reflection) of unauthenticated
// callers with UNAUTHENTICATED, health Watch excepted; installed only with
// mutual TLS. The service's own streams are left to package authz, which
// decides on them as on its unary calls.
func requireAuthStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	ok, _ := ss.Context().Value(authenticatedKey{}).(bool)
	if !ok && !strings.HasPrefix(info.FullMethod, healthMethodPrefix) && !strings.HasPrefix(info.FullMethod, serviceMethodPrefix) {
		return authz.Unauthenticated("")
	}
	return handler(srv, ss)
}

// restIdentityKey carries a REST caller's verified identity from the HTTP
// handler to forwardIdentity through the request's context.
type restIdentityKey struct{}

// withRESTIdentity stores the HTTP client's verified certificate identity
// in the request's context, for forwardIdentity.
func withRESTIdentity(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS != nil {
			if id := verifiedIdentity(r.TLS.VerifiedChains); id != "" {
				r = r.WithContext(context.WithValue(r.Context(), restIdentityKey{}, id))
			}
		}
		next.ServeHTTP(w, r)
	})
}

// forwardIdentity is the gateway client's interceptor: it removes any
// client-supplied value of callerMetadataKey and sets the verified one.
func forwardIdentity(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	return invoker(withForwardedIdentity(ctx), method, req, reply, cc, opts...)
}

// forwardIdentityStream is forwardIdentity for the gateway's streaming
// calls (a REST watch).
func forwardIdentityStream(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	return streamer(withForwardedIdentity(ctx), desc, cc, method, opts...)
}

// withForwardedIdentity returns ctx with the REST caller's verified
// identity as the only value of callerMetadataKey in its outgoing metadata.
func withForwardedIdentity(ctx context.Context) context.Context {
	md, _ := metadata.FromOutgoingContext(ctx)
	md = md.Copy()
	delete(md, callerMetadataKey)
	if id, ok := ctx.Value(restIdentityKey{}).(string); ok && id != "" {
		// Escaped: metadata values must be printable ASCII, a CN need not be.
		md.Set(callerMetadataKey, url.PathEscape(id))
	}
	return metadata.NewOutgoingContext(ctx, md)
}
