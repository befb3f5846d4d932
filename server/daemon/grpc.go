package daemon

import (
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthgrpc "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"
	reflectionv1 "google.golang.org/grpc/reflection/grpc_reflection_v1"
	reflectionv1alpha "google.golang.org/grpc/reflection/grpc_reflection_v1alpha"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"

	encryptionv1 "github.com/encryptiond/encryptiond/gen/atlas/encryption/v1"
	"github.com/encryptiond/encryptiond/server/audit"
	"github.com/encryptiond/encryptiond/server/authz"
	"github.com/encryptiond/encryptiond/server/failure"
	"github.com/encryptiond/encryptiond/server/telemetry"
)

// Limits of the gRPC server.
const (
	// maxRecvMsgSize matches the REST body limit: a request is about a
	// kilobyte, so anything near this is not a request.
	maxRecvMsgSize = 1 << 20
	// maxSendMsgSize bounds answers (an EncryptionAtRest is about a kilobyte;
	// reflection answers are larger).
	maxSendMsgSize = 4 << 20
	// maxConcurrentStreams bounds concurrent calls per connection; the REST
	// gateway's calls all share one connection.
	maxConcurrentStreams = 1000
	// maxHeaderListSize bounds a call's metadata.
	maxHeaderListSize = 256 << 10
)

// grpcServerOptions assembles the server's options, with the interceptor
// chains of interceptors.
func grpcServerOptions(logger *slog.Logger, metrics *telemetry.Metrics, public credentials.TransportCredentials, authorize *authz.Interceptor, requireAuth bool, stop *stopper) []grpc.ServerOption {
	unary, stream := interceptors(logger, authorize.Intercept, authorize.InterceptStream, requireAuth, stop)
	return []grpc.ServerOption{
		grpc.Creds(splitCredentials{public}),
		// Stats handlers see every call, those grpc-go ends before any
		// interceptor included; TagRPC runs in this order.
		grpc.StatsHandler(identityStats{}),
		grpc.StatsHandler(telemetry.NewCalls(logger, metrics)),
		grpc.ForceServerCodecV2(newRequestCodec()),
		grpc.UnknownServiceHandler(unknownMethod),
		grpc.ChainUnaryInterceptor(unary...),
		grpc.ChainStreamInterceptor(stream...),
		grpc.MaxRecvMsgSize(maxRecvMsgSize),
		grpc.MaxSendMsgSize(maxSendMsgSize),
		grpc.MaxConcurrentStreams(maxConcurrentStreams),
		grpc.MaxHeaderListSize(maxHeaderListSize),
		grpc.ConnectionTimeout(10 * time.Second),
		grpc.KeepaliveParams(keepalive.ServerParameters{
			// Close idle connections so that load balancers rebalance, and
			// ping quiet ones to find dead peers.
			MaxConnectionIdle: 15 * time.Minute,
			Time:              2 * time.Minute,
			Timeout:           20 * time.Second,
		}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{
			MinTime:             15 * time.Second,
			PermitWithoutStream: true,
		}),
	}
}

// interceptors returns the server's interceptor chains, outermost first.
// (The caller's identity, the call log and the metrics come before them, from
// the stats handlers.) Unary: recovery (outermost, so that a panic in any
// interceptor is an INTERNAL answer rather than the end of the process), the
// shutdown's cut (shutdown.go), audit (sees every mutation, refused ones
// included), authorization (authz: authentication, rate limit, policy), the
// refusal of a request the codec marked, undecodable or setting two members
// of a oneof (codec.go), recovery again (innermost, so that the others see a
// handler's panic as INTERNAL). Streaming calls (WatchEncryptionAtRest,
// WatchPrivateEndpoint, reflection, health Watch) get recovery, the cut, their end when shutdown
// begins (stopper.stream), authentication of reflection (mTLS only),
// authorization of the service's streams (authz, as for unary calls), the
// refusal of a marked request and recovery.
func interceptors(logger *slog.Logger, authorize grpc.UnaryServerInterceptor, authorizeStream grpc.StreamServerInterceptor, requireAuth bool, stop *stopper) ([]grpc.UnaryServerInterceptor, []grpc.StreamServerInterceptor) {
	unary := []grpc.UnaryServerInterceptor{
		telemetry.UnaryRecovery(logger),
		stop.unary,
		audit.UnaryServerInterceptor(logger.With(slog.String("logger", "audit"))),
		authorize,
		refuseMarked,
		telemetry.UnaryRecovery(logger),
	}
	stream := []grpc.StreamServerInterceptor{
		telemetry.StreamRecovery(logger),
		stop.stream,
	}
	if requireAuth {
		stream = append(stream, requireAuthStream)
	}
	stream = append(stream, authorizeStream, refuseMarkedStream, telemetry.StreamRecovery(logger))
	return unary, stream
}

// unknownMethod answers a method no service has, so that such calls pass
// through the stats handlers and the stream interceptors like any other.
func unknownMethod(_ any, ss grpc.ServerStream) error {
	method, _ := grpc.MethodFromServerStream(ss)
	if len(method) > 128 {
		method = method[:128] + "…"
	}
	return failure.New(codes.Unimplemented, fmt.Sprintf("this server has no method %q", strings.ToValidUTF8(method, "")),
		failure.Info{Domain: failure.DomainService, Reason: failure.ReasonUnknownMethod, HTTPStatus: http.StatusNotImplemented})
}

// serviceMethodPrefix starts the encryption service's methods.
var serviceMethodPrefix = "/" + encryptionv1.EncryptionService_ServiceDesc.ServiceName + "/"

// registerServices registers the encryption service, health and reflection
// on s. Reflection serves the source descriptors, comments included.
func registerServices(s *grpc.Server, svc encryptionv1.EncryptionServiceServer, hs *health.Server) error {
	encryptionv1.RegisterEncryptionServiceServer(s, svc)
	healthgrpc.RegisterHealthServer(s, hs)

	resolver, err := newSourceResolver()
	if err != nil {
		return err
	}
	opts := reflection.ServerOptions{Services: s, DescriptorResolver: resolver}
	reflectionv1.RegisterServerReflectionServer(s, reflection.NewServerV1(opts))
	reflectionv1alpha.RegisterServerReflectionServer(s, reflection.NewServer(opts))
	return nil
}

// sourceResolver resolves descriptors from the API's source descriptor
// (encryptionv1.SourceFileDescriptor, which keeps the comments that the
// descriptor linked into the Go package lacks), and everything else
// (health, reflection, imports) from protoregistry.GlobalFiles.
type sourceResolver struct{ source *protoregistry.Files }

func newSourceResolver() (*sourceResolver, error) {
	fdp := new(descriptorpb.FileDescriptorProto)
	if err := proto.Unmarshal(encryptionv1.SourceFileDescriptor(), fdp); err != nil {
		return nil, fmt.Errorf("reflection: decoding the source descriptor: %w", err)
	}
	fd, err := protodesc.NewFile(fdp, protoregistry.GlobalFiles)
	if err != nil {
		return nil, fmt.Errorf("reflection: building the source descriptor: %w", err)
	}
	files := new(protoregistry.Files)
	if err := files.RegisterFile(fd); err != nil {
		return nil, fmt.Errorf("reflection: registering the source descriptor: %w", err)
	}
	return &sourceResolver{source: files}, nil
}

func (r *sourceResolver) FindFileByPath(path string) (protoreflect.FileDescriptor, error) {
	if fd, err := r.source.FindFileByPath(path); err == nil {
		return fd, nil
	}
	return protoregistry.GlobalFiles.FindFileByPath(path)
}

func (r *sourceResolver) FindDescriptorByName(name protoreflect.FullName) (protoreflect.Descriptor, error) {
	if d, err := r.source.FindDescriptorByName(name); err == nil {
		return d, nil
	}
	return protoregistry.GlobalFiles.FindDescriptorByName(name)
}
