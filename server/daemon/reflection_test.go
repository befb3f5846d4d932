package daemon

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/descriptorpb"

	encryptionv1 "github.com/encryptiond/encryptiond/gen/atlas/encryption/v1"
)

// nodeModulesEnv names the node_modules directory that holds the Node
// reflection client's packages. `make test` installs them there from
// testdata/node-reflection/package-lock.json when npm is on PATH.
const nodeModulesEnv = "ENCRYPTIOND_NODE_MODULES"

// fixedGroupID is the one project the fixed service knows.
const fixedGroupID = "32b6e34b3d91647abb20e7b8"

// fixedService answers GetEncryptionAtRest for fixedGroupID with
// fixedConfig, and any other group id with INVALID_ARGUMENT.
type fixedService struct {
	encryptionv1.UnimplementedEncryptionServiceServer
}

// fixedConfig has a value of each kind the API uses, including a proto3
// optional false, whose presence a client must keep.
func fixedConfig() *encryptionv1.EncryptionAtRest {
	return &encryptionv1.EncryptionAtRest{
		AwsKms: &encryptionv1.AwsKmsState{
			Enabled:                  proto.Bool(true),
			Valid:                    proto.Bool(true),
			CustomerMasterKeyId:      proto.String("arn:aws:kms:us-east-1:123456789012:key/k"),
			Region:                   proto.String("US_EAST_1"),
			RoleId:                   proto.String("64b6e34b3d91647abb20e7b9"),
			RequirePrivateNetworking: proto.Bool(false),
		},
		AzureKeyVault:         &encryptionv1.AzureKeyVaultState{Enabled: proto.Bool(false)},
		GoogleCloudKms:        &encryptionv1.GoogleCloudKmsState{Enabled: proto.Bool(false)},
		EnabledForSearchNodes: proto.Bool(true),
	}
}

func (fixedService) GetEncryptionAtRest(_ context.Context, req *encryptionv1.GetEncryptionAtRestRequest) (*encryptionv1.EncryptionAtRest, error) {
	if req.GetGroupId() != fixedGroupID {
		return nil, status.Errorf(codes.InvalidArgument, "unknown group id %q", req.GetGroupId())
	}
	return fixedConfig(), nil
}

// serveLoopback serves svc, health and reflection as the daemon registers
// them, on 127.0.0.1, until the test ends, and returns the address.
func serveLoopback(t *testing.T, svc encryptionv1.EncryptionServiceServer) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	if err := registerServices(s, svc, health.NewServer()); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(lis) }()
	t.Cleanup(func() {
		s.Stop()
		if err := <-done; err != nil {
			t.Errorf("Serve() = %v, want nil", err)
		}
	})
	return lis.Addr().String()
}

// reflectedFiles asks the server at addr, over reflection, for the file that
// defines symbol and every file it depends on, transitively, as a client
// building its descriptor pool would.
func reflectedFiles(t *testing.T, addr, symbol string) map[string]*descriptorpb.FileDescriptorProto {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	stream, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(t.Context())
	if err != nil {
		t.Fatalf("ServerReflectionInfo() = %v", err)
	}
	defer stream.CloseSend()

	files := map[string]*descriptorpb.FileDescriptorProto{}
	ask := func(req *reflectionpb.ServerReflectionRequest) {
		t.Helper()
		if err := stream.Send(req); err != nil {
			t.Fatalf("Send(%v) = %v", req, err)
		}
		resp, err := stream.Recv()
		if err != nil {
			t.Fatalf("Recv() after %v = %v", req, err)
		}
		if e := resp.GetErrorResponse(); e != nil {
			t.Fatalf("reflection answered %v with %v", req, e)
		}
		for _, raw := range resp.GetFileDescriptorResponse().GetFileDescriptorProto() {
			fd := new(descriptorpb.FileDescriptorProto)
			if err := proto.Unmarshal(raw, fd); err != nil {
				t.Fatalf("Unmarshal(FileDescriptorProto) = %v", err)
			}
			files[fd.GetName()] = fd
		}
	}
	ask(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_FileContainingSymbol{FileContainingSymbol: symbol}})
	// The server leaves out files it sent earlier on the stream; ask for any
	// dependency still missing, by name, until none is.
	for missing := true; missing; {
		missing = false
		for _, fd := range files {
			for _, dep := range fd.GetDependency() {
				if _, ok := files[dep]; !ok {
					missing = true
					ask(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_FileByFilename{FileByFilename: dep}})
				}
			}
		}
	}
	return files
}

// TestReflectionServesOnlyWhatClientsNeed checks the descriptors that
// reflection serves for the API: they form a complete set, none of them is
// a tool's option file (protoc-gen-openapiv2's), and the only extension of a
// google.protobuf.*Options message among them is google.api.http. A client
// builds its descriptor pool from every file it is sent, and some fail on
// the openapiv2 extensions (grpc-js-reflection-client stopped at "duplicate
// id 1042 in Type .google.protobuf.FileOptions").
func TestReflectionServesOnlyWhatClientsNeed(t *testing.T) {
	t.Parallel()
	addr := serveLoopback(t, encryptionv1.UnimplementedEncryptionServiceServer{})
	service := encryptionv1.EncryptionService_ServiceDesc.ServiceName
	set := &descriptorpb.FileDescriptorSet{}
	for _, fd := range reflectedFiles(t, addr, service) {
		set.File = append(set.File, fd)
	}
	files, err := protodesc.NewFiles(set)
	if err != nil {
		t.Fatalf("protodesc.NewFiles(the reflected files) = %v, want a complete set", err)
	}
	if _, err := files.FindDescriptorByName(protoreflect.FullName(service)); err != nil {
		t.Errorf("FindDescriptorByName(%s) in the reflected files = %v", service, err)
	}

	const toolOptions = "protoc-gen-openapiv2/"
	files.RangeFiles(func(fd protoreflect.FileDescriptor) bool {
		if strings.HasPrefix(fd.Path(), toolOptions) {
			t.Errorf("reflection serves %s; want no %s file", fd.Path(), toolOptions)
		}
		for i := range fd.Imports().Len() {
			if dep := fd.Imports().Get(i).Path(); strings.HasPrefix(dep, toolOptions) {
				t.Errorf("reflection serves %s, which imports %s; want no %s file", fd.Path(), dep, toolOptions)
			}
		}
		for _, xd := range extensions(fd) {
			extendee := xd.ContainingMessage().FullName()
			if extendee.Parent() != "google.protobuf" || !strings.HasSuffix(string(extendee.Name()), "Options") {
				continue
			}
			if xd.FullName() != "google.api.http" {
				t.Errorf("reflection serves %s, which extends %s with %s (field %d); want only google.api.http", fd.Path(), extendee, xd.FullName(), xd.Number())
			}
		}
		return true
	})
}

// extensions returns the extensions that fd declares, at top level and in
// its messages.
func extensions(fd protoreflect.FileDescriptor) []protoreflect.ExtensionDescriptor {
	var all []protoreflect.ExtensionDescriptor
	var add func(protoreflect.ExtensionDescriptors, protoreflect.MessageDescriptors)
	add = func(xds protoreflect.ExtensionDescriptors, mds protoreflect.MessageDescriptors) {
		for i := range xds.Len() {
			all = append(all, xds.Get(i))
		}
		for i := range mds.Len() {
			add(mds.Get(i).Extensions(), mds.Get(i).Messages())
		}
	}
	add(fd.Extensions(), fd.Messages())
	return all
}

// TestNodeReflectionClient runs testdata/node-reflection/client.js, a Node
// client built only from what reflection serves (grpc-js-reflection-client
// with @grpc/grpc-js), against the service as the daemon registers it, and
// checks the answers it decodes. It needs node on PATH and the client's
// packages in $ENCRYPTIOND_NODE_MODULES, which `make test` installs when npm
// is on PATH; otherwise it skips.
func TestNodeReflectionClient(t *testing.T) {
	t.Parallel()
	modules := os.Getenv(nodeModulesEnv)
	if modules == "" {
		t.Skipf("$%s is not set: run `make test` with npm on PATH to install the Node reflection client", nodeModulesEnv)
	}
	if _, err := os.Stat(filepath.Join(modules, "grpc-js-reflection-client")); err != nil {
		t.Skipf("the Node reflection client is not installed in $%s (%v): `make test` installs it when npm is on PATH and the registry can be reached", nodeModulesEnv, err)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skipf("no node on PATH: %v", err)
	}
	addr := serveLoopback(t, fixedService{})

	tests := []struct {
		name    string
		groupID string
		want    *encryptionv1.EncryptionAtRest
		code    codes.Code
	}{
		{name: "answer", groupID: fixedGroupID, want: fixedConfig()},
		{name: "status", groupID: "not-a-group-id", code: codes.InvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, node, filepath.Join("testdata", "node-reflection", "client.js"), addr, tt.groupID)
			// The packages are outside the script's directory tree, so
			// Node finds them through NODE_PATH.
			cmd.Env = append(os.Environ(), "NODE_PATH="+modules)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("node client.js %s %s = %v, want a completed call; stderr:\n%s", addr, tt.groupID, err, stderr.String())
			}

			var result struct {
				Response json.RawMessage `json:"response"`
				Error    *struct {
					Code    codes.Code `json:"code"`
					Details string     `json:"details"`
				} `json:"error"`
			}
			if err := json.Unmarshal(out, &result); err != nil {
				t.Fatalf("node client.js printed %q: %v", out, err)
			}
			if tt.want == nil {
				if result.Error == nil || result.Error.Code != tt.code {
					t.Errorf("Node GetEncryptionAtRest(%q) = %s, want status %v", tt.groupID, out, tt.code)
				}
				return
			}
			if result.Error != nil {
				t.Fatalf("Node GetEncryptionAtRest(%q) = status %v: %s, want an answer", tt.groupID, result.Error.Code, result.Error.Details)
			}
			// The client prints proto field names, which protojson accepts.
			got := new(encryptionv1.EncryptionAtRest)
			if err := protojson.Unmarshal(result.Response, got); err != nil {
				t.Fatalf("protojson.Unmarshal(%s) = %v", result.Response, err)
			}
			if diff := cmp.Diff(tt.want, got, protocmp.Transform()); diff != "" {
				t.Errorf("Node GetEncryptionAtRest(%q) (-want +got):\n%s", tt.groupID, diff)
			}
		})
	}
}
