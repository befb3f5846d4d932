package gateway_test

import (
	"context"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	encryptionv1 "github.com/encryptiond/encryptiond/gen/atlas/encryption/v1"
)

// endpointService is fakeService with private endpoints: it records the
// requests that reach gRPC and answers with what the test set. Its watch
// sends the messages of watch, waiting before each for the test to call
// step, then ends with watchErr.
type endpointService struct {
	*fakeService
	endpoint *encryptionv1.PrivateEndpoint
	list     *encryptionv1.ListPrivateEndpointsResponse

	watch    []*encryptionv1.PrivateEndpoint
	watchErr error
	steps    chan struct{}

	mu       sync.Mutex
	requests []proto.Message
}

func newEndpointService() *endpointService {
	return &endpointService{
		fakeService: &fakeService{resp: state()},
		endpoint:    &encryptionv1.PrivateEndpoint{Id: endpointID, CloudProvider: encryptionv1.CloudProvider_AZURE, RegionName: "EUROPE_WEST", Status: encryptionv1.PrivateEndpoint_INITIATING},
		steps:       make(chan struct{}),
	}
}

const endpointID = "0123456789abcdef01234567"

func (f *endpointService) record(req proto.Message) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, req)
}

func (f *endpointService) seen() []proto.Message {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]proto.Message(nil), f.requests...)
}

// step lets the watch send its next message.
func (f *endpointService) step() { f.steps <- struct{}{} }

func (f *endpointService) ListPrivateEndpoints(_ context.Context, req *encryptionv1.ListPrivateEndpointsRequest) (*encryptionv1.ListPrivateEndpointsResponse, error) {
	f.record(req)
	return f.list, f.err
}

func (f *endpointService) GetPrivateEndpoint(_ context.Context, req *encryptionv1.GetPrivateEndpointRequest) (*encryptionv1.PrivateEndpoint, error) {
	f.record(req)
	return f.endpoint, f.err
}

func (f *endpointService) CreatePrivateEndpoint(_ context.Context, req *encryptionv1.CreatePrivateEndpointRequest) (*encryptionv1.PrivateEndpoint, error) {
	f.record(req)
	return f.endpoint, f.err
}

func (f *endpointService) DeletePrivateEndpoint(_ context.Context, req *encryptionv1.DeletePrivateEndpointRequest) (*encryptionv1.PrivateEndpoint, error) {
	f.record(req)
	return f.endpoint, f.err
}

func (f *endpointService) WatchPrivateEndpoint(req *encryptionv1.WatchPrivateEndpointRequest, stream grpc.ServerStreamingServer[encryptionv1.PrivateEndpoint]) error {
	f.record(req)
	for _, ep := range f.watch {
		select {
		case <-f.steps:
		case <-stream.Context().Done():
			return stream.Context().Err()
		}
		if err := stream.Send(ep); err != nil {
			return err
		}
	}
	return f.watchErr
}
