// Package authz decides who may call the encryption service: it refuses
// unauthenticated callers, applies the authorization policy (which caller
// may read or change which Atlas project) and a per-caller rate limit, all
// in one gRPC interceptor, so that gRPC and REST (whose gateway dials the
// gRPC server) share it.
//
// Start with NewInterceptor and Config; LoadPolicy reads the policy file
// (see ParsePolicy for its format), and Interceptor.SetPolicy replaces the
// policy of a running interceptor, for a policy file reloaded while
// serving. The interceptor covers the methods of
// atlas.encryption.v1.EncryptionService only; health and reflection pass
// through untouched.
//
// The interceptor does not establish who is calling: it reads the identity
// the daemon put in the context with caller.NewContext, so install it
// inside the interceptor that does that. Install it inside the audit
// interceptor too, so that the audit log records every refusal of a
// mutation.
//
// Decisions, in order, for a method of the encryption service:
//
//  1. With Authenticate, a caller without an identity (caller.Anonymous) is
//     refused with UNAUTHENTICATED. A certificate whose identity is literally
//     "anonymous" is refused the same way: it cannot be told apart.
//  2. With a RateLimit, a caller whose bucket is empty is refused with
//     RESOURCE_EXHAUSTED and a RetryInfo saying when a token is available.
//     Refused calls of step 3 count against the caller's rate, so that a
//     caller retrying a refusal in a loop is slowed down too.
//  3. With Authenticate, the policy decides (Policy.Allows; a nil policy
//     lets every caller read and nobody change); a refusal is
//     PERMISSION_DENIED naming the caller, the action and the project.
//     GetEncryptionAtRest, WatchEncryptionAtRest, ListPrivateEndpoints,
//     GetPrivateEndpoint and WatchPrivateEndpoint are Reads;
//     UpdateEncryptionAtRest, CreatePrivateEndpoint and
//     DeletePrivateEndpoint Writes, validate-only or not.
//     ListEncryptionAtRest reads every project: it is never refused here;
//     the policy decides for each project instead, through the filter put
//     in the call's context (server.NewReadableContext), so that the list
//     holds exactly the projects the caller could Get.
//
// Streaming calls (WatchEncryptionAtRest, WatchPrivateEndpoint) get the
// same decisions from the
// stream interceptor (InterceptStream), made when the handler
// receives the request (it names the project): a refusal ends the stream
// with its status before anything is sent.
//
// Without Authenticate (plaintext, -dev) there are no identities and every
// caller may read and change every project; only the rate limit applies.
//
// Rate-limit buckets are kept per identity. Anonymous callers (without
// Authenticate) get one bucket per IP address: for a REST call, the HTTP
// client's address, which the daemon's gateway passes along
// (caller.ForwardedFor); for a gRPC call, the TCP peer's. Anonymous calls
// with neither (a Unix socket, say) share one bucket.
//
// Every refusal carries a google.rpc.ErrorInfo (package failure) in the
// domain "encryptiond" with the reason UNAUTHENTICATED, PERMISSION_DENIED or
// RATE_LIMITED and the metadata httpStatus (401, 403, 429) and groupId
// (when the request has one, cut to 128 bytes), for the REST layer.
//
// The group id is taken from the request as it is and matched exactly: a
// malformed id is allowed only to a caller allowed all projects, and the
// service then refuses it with INVALID_ARGUMENT; any other caller gets
// PERMISSION_DENIED, so that callers learn nothing about projects they may
// not use.
package authz

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"

	encryptionv1 "github.com/encryptiond/encryptiond/gen/atlas/encryption/v1"
	"github.com/encryptiond/encryptiond/server"
	"github.com/encryptiond/encryptiond/server/caller"
	"github.com/encryptiond/encryptiond/server/failure"
)

// DefaultMaxCallers is the number of rate-limit buckets kept when
// Config.MaxCallers is 0.
const DefaultMaxCallers = 10000

// actions classifies every method of the encryption service. NewInterceptor
// refuses to run when the service has a method this map does not list.
var actions = map[string]Action{
	encryptionv1.EncryptionService_GetEncryptionAtRest_FullMethodName:    Read,
	encryptionv1.EncryptionService_UpdateEncryptionAtRest_FullMethodName: Write,
	encryptionv1.EncryptionService_ListPrivateEndpoints_FullMethodName:   Read,
	encryptionv1.EncryptionService_GetPrivateEndpoint_FullMethodName:     Read,
	encryptionv1.EncryptionService_CreatePrivateEndpoint_FullMethodName:  Write,
	encryptionv1.EncryptionService_DeletePrivateEndpoint_FullMethodName:  Write,
	encryptionv1.EncryptionService_WatchPrivateEndpoint_FullMethodName:   Read,
	encryptionv1.EncryptionService_WatchEncryptionAtRest_FullMethodName:  Read,
	encryptionv1.EncryptionService_ListEncryptionAtRest_FullMethodName:   Read,
}

// perProject are the methods that read many projects in one call: the
// policy decides for each project the call would read, not for the call,
// through the filter decide puts in the call's context
// (server.NewReadableContext).
var perProject = map[string]bool{
	encryptionv1.EncryptionService_ListEncryptionAtRest_FullMethodName: true,
}

// Config configures the interceptor.
type Config struct {
	// Authenticate says that callers are authenticated (mutual TLS): every
	// call must carry an identity, and the policy applies. Default false:
	// every caller may read and change (plaintext, -dev).
	Authenticate bool
	// Policy says which identity may read or change which project; it
	// needs Authenticate. Default nil: every authenticated caller may read,
	// nobody may change.
	Policy *Policy
	// RateLimit is the number of calls per second each caller may make on
	// average. Default 0: unlimited.
	RateLimit float64
	// Burst is how many calls a caller may make at once. Default 0: the
	// rate limit rounded up, at least 1.
	Burst int
	// MaxCallers bounds the number of callers whose rate is tracked at
	// once; beyond it, the least recently seen caller's bucket is dropped
	// and refilled if it comes back. Default 0: DefaultMaxCallers.
	MaxCallers int
}

// Summary describes in one line what cfg allows, for the daemon's start-up
// log.
func (cfg Config) Summary() string {
	var s string
	if cfg.Authenticate {
		s = "authorization: " + cfg.Policy.Summary()
	} else {
		s = "authorization off (no client authentication): every caller may read and change every project"
	}
	if cfg.RateLimit > 0 {
		s += fmt.Sprintf("; rate limit %g calls per second per caller, burst %d", cfg.RateLimit, burstOf(cfg))
	} else {
		s += "; no rate limit"
	}
	return s
}

func burstOf(cfg Config) int {
	if cfg.Burst > 0 {
		return cfg.Burst
	}
	return max(1, int(math.Ceil(cfg.RateLimit)))
}

// Interceptor authenticates, rate-limits and authorizes calls of the
// encryption service; install its Intercept method as a unary server
// interceptor and its InterceptStream method as a stream one. Its policy can be replaced while it serves (SetPolicy): each
// call is decided under one policy, the one in force when it arrived. It is
// safe for concurrent use.
type Interceptor struct {
	authenticate bool
	policy       atomic.Pointer[Policy] // nil: every authenticated caller may read
	buckets      *buckets               // nil without a rate limit
	now          func() time.Time
}

// NewInterceptor returns the interceptor that authenticates, rate-limits
// and authorizes calls of the encryption service as cfg says: install both
// its Intercept (unary) and its InterceptStream (streaming) on a server;
// they share their rate limits. It fails on a configuration it cannot
// enforce: a policy without Authenticate, a negative or infinite rate, a
// negative burst, or an encryption service with a method it does not know
// how to classify.
func NewInterceptor(cfg Config) (*Interceptor, error) {
	return newInterceptor(cfg, time.Now)
}

// SetPolicy makes p the policy of the calls that arrive from now on; calls
// already past the interceptor are not affected. A nil p is the policy
// without a file (every authenticated caller may read, nobody may change).
// It fails, changing nothing, when p is not nil and the interceptor does
// not authenticate callers: a policy names callers by identity.
func (i *Interceptor) SetPolicy(p *Policy) error {
	if p != nil && !i.authenticate {
		return errPolicyWithoutAuthentication
	}
	i.policy.Store(p)
	return nil
}

// Policy returns the policy in force.
func (i *Interceptor) Policy() *Policy { return i.policy.Load() }

var errPolicyWithoutAuthentication = errors.New("authz: a policy needs authenticated callers (mutual TLS)")

func newInterceptor(cfg Config, now func() time.Time) (*Interceptor, error) {
	switch {
	case cfg.Policy != nil && !cfg.Authenticate:
		return nil, errPolicyWithoutAuthentication
	case math.IsNaN(cfg.RateLimit) || math.IsInf(cfg.RateLimit, 0) || cfg.RateLimit < 0:
		return nil, fmt.Errorf("authz: rate limit %v: want a finite number of calls per second, 0 for unlimited", cfg.RateLimit)
	case cfg.Burst < 0:
		return nil, fmt.Errorf("authz: burst %d: want 0 or more", cfg.Burst)
	case cfg.MaxCallers < 0:
		return nil, fmt.Errorf("authz: max callers %d: want 0 or more", cfg.MaxCallers)
	}
	if err := checkService(&encryptionv1.EncryptionService_ServiceDesc); err != nil {
		return nil, err
	}
	i := &Interceptor{authenticate: cfg.Authenticate, now: now}
	i.policy.Store(cfg.Policy)
	if cfg.RateLimit > 0 {
		maxCallers := cfg.MaxCallers
		if maxCallers == 0 {
			maxCallers = DefaultMaxCallers
		}
		i.buckets = newBuckets(cfg.RateLimit, burstOf(cfg), maxCallers)
	}
	return i, nil
}

// checkService makes sure that every method of the service is classified,
// so that a method added later is not left open by mistake. A stream whose
// client sends more than one message cannot be authorized on its first,
// and is refused.
func checkService(sd *grpc.ServiceDesc) error {
	names := make([]string, 0, len(sd.Methods)+len(sd.Streams))
	for _, m := range sd.Methods {
		names = append(names, m.MethodName)
	}
	for _, st := range sd.Streams {
		if st.ClientStreams {
			return fmt.Errorf("authz: %s/%s takes a stream of requests, which authorization does not cover", sd.ServiceName, st.StreamName)
		}
		names = append(names, st.StreamName)
	}
	for _, name := range names {
		if _, ok := actions["/"+sd.ServiceName+"/"+name]; !ok {
			return fmt.Errorf("authz: %s/%s is neither a read nor a write: classify it in authz", sd.ServiceName, name)
		}
	}
	return nil
}

// servicePrefix is the prefix of the methods the interceptor covers.
var servicePrefix = "/" + encryptionv1.EncryptionService_ServiceDesc.ServiceName + "/"

// Intercept is the grpc.UnaryServerInterceptor: it lets a call of the
// encryption service through to handler, or refuses it, as the package
// documentation says; other services' calls pass untouched.
func (i *Interceptor) Intercept(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if !strings.HasPrefix(info.FullMethod, servicePrefix) {
		return handler(ctx, req)
	}
	ctx, err := i.decide(ctx, info.FullMethod, req)
	if err != nil {
		return nil, err
	}
	return handler(ctx, req)
}

// InterceptStream authorizes a server-streaming call of the encryption
// service when its handler receives the request, which names the project.
// Streams of other services pass through.
func (i *Interceptor) InterceptStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if !strings.HasPrefix(info.FullMethod, servicePrefix) {
		return handler(srv, ss)
	}
	return handler(srv, &authorizedStream{ServerStream: ss, i: i, method: info.FullMethod})
}

// authorizedStream decides on the first request it receives.
type authorizedStream struct {
	grpc.ServerStream
	i       *Interceptor
	method  string
	decided bool
}

func (s *authorizedStream) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	if s.decided {
		return nil
	}
	s.decided = true
	_, err := s.i.decide(s.Context(), s.method, m)
	return err
}

// decide returns the context in which the call of method with req may go
// ahead, or the status refusing it.
func (i *Interceptor) decide(ctx context.Context, method string, req any) (context.Context, error) {
	id := caller.FromContext(ctx)
	var groupID string
	if r, ok := req.(interface{ GetGroupId() string }); ok {
		groupID = r.GetGroupId()
	}
	action, known := actions[method]
	switch {
	case !known:
		// checkService rules this out for the generated service; refuse
		// rather than guess if a method is served by other means.
		return nil, refusal(codes.PermissionDenied, failure.ReasonPermissionDenied, http.StatusForbidden, groupID,
			fmt.Sprintf("method %s is not covered by the authorization policy", printable(method)))
	case i.authenticate && id == caller.Anonymous:
		return nil, Unauthenticated(groupID)
	}
	if i.buckets != nil {
		key, who := rateKey(ctx, id)
		if wait := i.buckets.take(key, i.now()); wait > 0 {
			wait = (wait + time.Millisecond - 1).Truncate(time.Millisecond) // whole ms, never early
			return nil, failure.New(codes.ResourceExhausted,
				fmt.Sprintf("%s made too many requests: retry in %v", who, wait),
				serviceInfo(failure.ReasonRateLimited, http.StatusTooManyRequests, groupID),
				failure.RetryInfo(wait))
		}
	}
	if perProject[method] {
		if !i.authenticate {
			return ctx, nil // every caller may read every project
		}
		policy := i.policy.Load() // the policy in force when the call came
		return server.NewReadableContext(ctx, func(groupID string) bool { return policy.Allows(id, groupID, action) }), nil
	}
	if i.authenticate && !i.policy.Load().Allows(id, groupID, action) {
		return nil, refusal(codes.PermissionDenied, failure.ReasonPermissionDenied, http.StatusForbidden, groupID,
			fmt.Sprintf("caller %s may not %s project %s", printable(id), action.verb(), printable(groupID)))
	}
	return ctx, nil
}

// rateKey is the key of the caller's bucket, and how to name the caller in
// a refusal. Authenticated callers are keyed by identity. Anonymous callers
// (without Authenticate) are keyed by their IP address: for REST calls, the
// HTTP client's address that the daemon's gateway passed on
// (caller.ForwardedFor), since they arrive over an in-process connection;
// for gRPC calls, the TCP peer's. Anonymous callers with neither share one
// bucket.
func rateKey(ctx context.Context, id string) (key, who string) {
	if id != caller.Anonymous {
		return "id:" + id, "caller " + printable(id)
	}
	if addr := caller.ForwardedFor(ctx); addr != "" {
		ip := addr
		if host, _, err := net.SplitHostPort(addr); err == nil {
			ip = host
		}
		return "ip:" + ip, "anonymous caller at " + printable(ip)
	}
	if p, ok := peer.FromContext(ctx); ok {
		if a, ok := p.Addr.(*net.TCPAddr); ok {
			ip := a.IP.String()
			return "ip:" + ip, "anonymous caller at " + ip
		}
	}
	return "anonymous", "anonymous callers"
}

// refusal is a status refusing a call, with its ErrorInfo.
// CertificateRequired is what a caller without a client certificate is
// told, under mutual TLS.
const CertificateRequired = "a client certificate signed by the configured client CA is required"

// Unauthenticated is the refusal of a caller without a client certificate
// (groupID: the project its request names, if any).
func Unauthenticated(groupID string) error {
	return refusal(codes.Unauthenticated, failure.ReasonUnauthenticated, http.StatusUnauthorized, groupID, CertificateRequired)
}

func refusal(code codes.Code, reason string, httpStatus int, groupID, msg string) error {
	return failure.New(code, msg, serviceInfo(reason, httpStatus, groupID))
}

func serviceInfo(reason string, httpStatus int, groupID string) failure.Info {
	return failure.Info{Domain: failure.DomainService, Reason: reason, HTTPStatus: httpStatus, GroupID: groupID}
}

// maxEcho bounds how much of a caller-supplied string a refusal repeats.
const maxEcho = 128

// printable is s for a message: as it is when it is short and plainly
// printable, else quoted and truncated.
func printable(s string) string {
	plain := s != "" && len(s) <= maxEcho
	for _, r := range s {
		if !plain {
			break
		}
		plain = unicode.IsGraphic(r) && !unicode.IsSpace(r) && r != '"'
	}
	if plain {
		return s
	}
	return strconv.Quote(failure.Truncate(s, maxEcho))
}
