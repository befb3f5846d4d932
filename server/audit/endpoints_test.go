package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	encryptionv1 "github.com/encryptiond/encryptiond/gen/atlas/encryption/v1"
	"github.com/encryptiond/encryptiond/server/caller"
)

func TestPrivateEndpointChangesAreAudited(t *testing.T) {
	t.Parallel()
	const (
		group   = "5f1a2b3c4d5e6f7a8b9c0d1e"
		created = "0123456789abcdef01234567"
		gone    = "fedcba9876543210fedcba98"
	)
	var buf bytes.Buffer
	icpt := UnaryServerInterceptor(slog.New(slog.NewJSONHandler(&buf, nil)))
	ctx := caller.NewContext(context.Background(), "spiffe://example.org/ops")
	info := func(m string) *grpc.UnaryServerInfo { return &grpc.UnaryServerInfo{FullMethod: m} }
	answer := func(ep *encryptionv1.PrivateEndpoint, err error) grpc.UnaryHandler {
		return func(context.Context, any) (any, error) { return ep, err }
	}
	create := &encryptionv1.CreatePrivateEndpointRequest{GroupId: group, CloudProvider: encryptionv1.CloudProvider_AZURE, PrivateEndpoint: &encryptionv1.PrivateEndpoint{RegionName: "EUROPE_WEST"}}
	calls := []struct {
		method string
		req    any
		h      grpc.UnaryHandler
	}{
		{encryptionv1.EncryptionService_CreatePrivateEndpoint_FullMethodName, create, answer(&encryptionv1.PrivateEndpoint{Id: created}, nil)},
		{encryptionv1.EncryptionService_CreatePrivateEndpoint_FullMethodName, &encryptionv1.CreatePrivateEndpointRequest{GroupId: group, CloudProvider: encryptionv1.CloudProvider_GCP, ValidateOnly: true}, answer(nil, status.Error(codes.InvalidArgument, "no"))},
		{encryptionv1.EncryptionService_CreatePrivateEndpoint_FullMethodName, &encryptionv1.CreatePrivateEndpointRequest{GroupId: group, CloudProvider: encryptionv1.CloudProvider_AWS, ValidateOnly: true}, answer(&encryptionv1.PrivateEndpoint{}, nil)},
		{encryptionv1.EncryptionService_DeletePrivateEndpoint_FullMethodName, &encryptionv1.DeletePrivateEndpointRequest{GroupId: group, CloudProvider: encryptionv1.CloudProvider_AWS, EndpointId: gone}, answer(&encryptionv1.PrivateEndpoint{Id: gone}, nil)},
		// Reads are not audited.
		{encryptionv1.EncryptionService_GetPrivateEndpoint_FullMethodName, &encryptionv1.GetPrivateEndpointRequest{GroupId: group}, answer(&encryptionv1.PrivateEndpoint{}, nil)},
		{encryptionv1.EncryptionService_ListPrivateEndpoints_FullMethodName, &encryptionv1.ListPrivateEndpointsRequest{GroupId: group}, answer(nil, nil)},
	}
	for _, c := range calls {
		_, _ = icpt(ctx, c.req, info(c.method), c.h)
	}
	type record struct {
		Provider   string   `json:"provider"`
		Action     string   `json:"action"`
		Fields     []string `json:"fields"`
		Code       string   `json:"code"`
		Outcome    string   `json:"outcome"`
		EndpointID string   `json:"endpoint_id"`
	}
	var got []record
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var r record
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("record %q: %v", line, err)
		}
		got = append(got, r)
	}
	want := []record{
		{"azureKeyVault", "create_private_endpoint", []string{"regionName"}, "OK", OutcomeApplied, created},
		{"googleCloudKms", "create_private_endpoint", []string{}, "InvalidArgument", OutcomeRefused, ""},
		{"awsKms", "create_private_endpoint", []string{}, "OK", OutcomeValidated, ""},
		{"awsKms", "delete_private_endpoint", []string{}, "OK", OutcomeApplied, gone},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("audit records (-want +got):\n%s", diff)
	}
}
