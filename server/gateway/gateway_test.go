package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/protoadapt"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/durationpb"

	encryptionv1 "github.com/encryptiond/encryptiond/gen/atlas/encryption/v1"
	"github.com/encryptiond/encryptiond/server/gateway"
)

const groupID = "32b6e34b3d91647abb20e7b8"

var (
	v1Path    = "/v1/groups/" + groupID + "/encryptionAtRest"
	atlasPath = "/api/atlas/v1.0/groups/" + groupID + "/encryptionAtRest"
)

// fakeService records what reaches gRPC and answers with resp or err.
type fakeService struct {
	encryptionv1.UnimplementedEncryptionServiceServer
	resp *encryptionv1.EncryptionAtRest
	err  error

	mu      sync.Mutex
	gets    []*encryptionv1.GetEncryptionAtRestRequest
	updates []*encryptionv1.UpdateEncryptionAtRestRequest
	mds     []metadata.MD
}

func (f *fakeService) GetEncryptionAtRest(ctx context.Context, req *encryptionv1.GetEncryptionAtRestRequest) (*encryptionv1.EncryptionAtRest, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gets = append(f.gets, req)
	md, _ := metadata.FromIncomingContext(ctx)
	f.mds = append(f.mds, md)
	return f.resp, f.err
}

func (f *fakeService) UpdateEncryptionAtRest(ctx context.Context, req *encryptionv1.UpdateEncryptionAtRestRequest) (*encryptionv1.EncryptionAtRest, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.updates = append(f.updates, req)
	md, _ := metadata.FromIncomingContext(ctx)
	f.mds = append(f.mds, md)
	return f.resp, f.err
}

func (f *fakeService) calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.gets) + len(f.updates)
}

// lockedBuffer collects log output.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// newGateway serves f on an in-memory gRPC server and returns the gateway
// over a client connection to it, and the access log's output.
func newGateway(t *testing.T, f encryptionv1.EncryptionServiceServer, opts ...gateway.Option) (http.Handler, *lockedBuffer) {
	t.Helper()
	lis := bufconn.Listen(1 << 20)
	srv := grpc.NewServer()
	encryptionv1.RegisterEncryptionServiceServer(srv, f)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)

	conn, err := grpc.NewClient("passthrough:///bufconn",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("grpc.NewClient() = %v", err)
	}
	t.Cleanup(func() { _ = conn.Close() })

	logs := &lockedBuffer{}
	opts = append([]gateway.Option{gateway.WithLogger(slog.New(slog.NewJSONHandler(logs, nil)))}, opts...)
	h, err := gateway.New(t.Context(), conn, opts...)
	if err != nil {
		t.Fatalf("gateway.New() = %v", err)
	}
	return h, logs
}

func serve(t *testing.T, h http.Handler, method, target, body string, header ...string) *httptest.ResponseRecorder {
	t.Helper()
	var r *http.Request
	if body == "" {
		r = httptest.NewRequestWithContext(t.Context(), method, target, nil)
	} else {
		r = httptest.NewRequestWithContext(t.Context(), method, target, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// decode reads a JSON body for cmp.Diff.
func decode(t *testing.T, b []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("response body is not JSON: %v\n%s", err, b)
	}
	return v
}

func state() *encryptionv1.EncryptionAtRest {
	return &encryptionv1.EncryptionAtRest{
		AwsKms: &encryptionv1.AwsKmsState{
			Enabled:             proto.Bool(true),
			Valid:               proto.Bool(true),
			CustomerMasterKeyId: proto.String("030gce02-586d-48d2-a966-05ea954fde0g"),
			Region:              proto.String("US_EAST_1"),
			RoleId:              proto.String("66c7a5d8e4b0a1b2c3d4e5f6"),
		},
		AzureKeyVault:  &encryptionv1.AzureKeyVaultState{Enabled: proto.Bool(false), Valid: proto.Bool(false)},
		GoogleCloudKms: &encryptionv1.GoogleCloudKmsState{Enabled: proto.Bool(false), Valid: proto.Bool(false)},
	}
}

const stateJSON = `{
  "awsKms": {"enabled": true, "valid": true, "customerMasterKeyID": "030gce02-586d-48d2-a966-05ea954fde0g", "region": "US_EAST_1", "roleId": "66c7a5d8e4b0a1b2c3d4e5f6"},
  "azureKeyVault": {"enabled": false, "valid": false},
  "googleCloudKms": {"enabled": false, "valid": false}
}`

func TestNewRefusesBadArguments(t *testing.T) {
	t.Parallel()
	if _, err := gateway.New(t.Context(), nil); err == nil {
		t.Errorf("New(nil conn) = nil error, want an error")
	}
	conn, err := grpc.NewClient("passthrough:///unused", grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("grpc.NewClient() = %v", err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	if _, err := gateway.New(t.Context(), conn, gateway.WithMaxBodyBytes(0)); err == nil {
		t.Errorf("New(WithMaxBodyBytes(0)) = nil error, want an error")
	}
}

func TestGet(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		target string
	}{
		{"v1", v1Path},
		{"atlas alias", atlasPath},
		{"pretty and envelope false", v1Path + "?pretty=false&envelope=false"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := &fakeService{resp: state()}
			h, _ := newGateway(t, f)
			w := serve(t, h, http.MethodGet, tt.target, "")
			if w.Code != http.StatusOK {
				t.Fatalf("GET %s = %d %s, want 200", tt.target, w.Code, w.Body)
			}
			if diff := cmp.Diff(decode(t, []byte(stateJSON)), decode(t, w.Body.Bytes())); diff != "" {
				t.Errorf("GET %s body mismatch (-want +got):\n%s", tt.target, diff)
			}
			if got := w.Header().Get("Content-Type"); got != "application/json" {
				t.Errorf("GET %s Content-Type = %q, want application/json", tt.target, got)
			}
			want := []*encryptionv1.GetEncryptionAtRestRequest{{GroupId: groupID}}
			if diff := cmp.Diff(want, f.gets, protocmp.Transform()); diff != "" {
				t.Errorf("GET %s: requests the service saw mismatch (-want +got):\n%s", tt.target, diff)
			}
		})
	}
}

func TestUpdate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		target string
		body   string
		want   *encryptionv1.UpdateEncryptionAtRestRequest
	}{
		{
			name:   "v1 enable AWS with role",
			target: v1Path,
			body:   `{"awsKms": {"enabled": true, "customerMasterKeyID": "030gce02-586d-48d2-a966-05ea954fde0g", "region": "US_EAST_1", "roleId": "66c7a5d8e4b0a1b2c3d4e5f6"}}`,
			want: &encryptionv1.UpdateEncryptionAtRestRequest{
				GroupId: groupID,
				Config: &encryptionv1.ProviderConfig{Provider: &encryptionv1.ProviderConfig_AwsKms{AwsKms: &encryptionv1.AwsKms{
					Enabled:             proto.Bool(true),
					CustomerMasterKeyId: proto.String("030gce02-586d-48d2-a966-05ea954fde0g"),
					Region:              proto.String("US_EAST_1"),
					RoleId:              proto.String("66c7a5d8e4b0a1b2c3d4e5f6"),
				}}},
			},
		},
		{
			name:   "atlas alias, Azure partial update keeps presence of false",
			target: atlasPath,
			body:   `{"azureKeyVault": {"clientID": "5b4a3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d", "secret": "s3cr3t", "requirePrivateNetworking": false}}`,
			want: &encryptionv1.UpdateEncryptionAtRestRequest{
				GroupId: groupID,
				Config: &encryptionv1.ProviderConfig{Provider: &encryptionv1.ProviderConfig_AzureKeyVault{AzureKeyVault: &encryptionv1.AzureKeyVault{
					ClientId:                 proto.String("5b4a3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d"),
					Secret:                   proto.String("s3cr3t"),
					RequirePrivateNetworking: proto.Bool(false),
				}}},
			},
		},
		{
			name:   "disable GCP with validateOnly",
			target: v1Path + "?validateOnly=true",
			body:   `{"googleCloudKms": {"enabled": false}}`,
			want: &encryptionv1.UpdateEncryptionAtRestRequest{
				GroupId:      groupID,
				ValidateOnly: true,
				Config: &encryptionv1.ProviderConfig{Provider: &encryptionv1.ProviderConfig_GoogleCloudKms{GoogleCloudKms: &encryptionv1.GoogleCloudKms{
					Enabled: proto.Bool(false),
				}}},
			},
		},
		{
			name:   "validateOnly=false with pretty and envelope on the alias",
			target: atlasPath + "?validateOnly=false&pretty=true&envelope=false",
			body:   `{"googleCloudKms": {"enabled": false}}`,
			want: &encryptionv1.UpdateEncryptionAtRestRequest{
				GroupId: groupID,
				Config: &encryptionv1.ProviderConfig{Provider: &encryptionv1.ProviderConfig_GoogleCloudKms{GoogleCloudKms: &encryptionv1.GoogleCloudKms{
					Enabled: proto.Bool(false),
				}}},
			},
		},
		{
			name:   "proto field names are accepted as protojson accepts them",
			target: v1Path,
			body:   `{"aws_kms": {"customer_master_key_id": "alias/k"}}`,
			want: &encryptionv1.UpdateEncryptionAtRestRequest{
				GroupId: groupID,
				Config: &encryptionv1.ProviderConfig{Provider: &encryptionv1.ProviderConfig_AwsKms{AwsKms: &encryptionv1.AwsKms{
					CustomerMasterKeyId: proto.String("alias/k"),
				}}},
			},
		},
		{
			name:   "null provider beside a set one is not a second provider",
			target: v1Path,
			body:   `{"awsKms": {"enabled": false}, "azureKeyVault": null}`,
			want: &encryptionv1.UpdateEncryptionAtRestRequest{
				GroupId: groupID,
				Config: &encryptionv1.ProviderConfig{Provider: &encryptionv1.ProviderConfig_AwsKms{AwsKms: &encryptionv1.AwsKms{
					Enabled: proto.Bool(false),
				}}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := &fakeService{resp: state()}
			h, _ := newGateway(t, f)
			w := serve(t, h, http.MethodPatch, tt.target, tt.body)
			if w.Code != http.StatusOK {
				t.Fatalf("PATCH %s = %d %s, want 200", tt.target, w.Code, w.Body)
			}
			if diff := cmp.Diff([]*encryptionv1.UpdateEncryptionAtRestRequest{tt.want}, f.updates, protocmp.Transform()); diff != "" {
				t.Errorf("PATCH %s: requests the service saw mismatch (-want +got):\n%s", tt.target, diff)
			}
			if diff := cmp.Diff(decode(t, []byte(stateJSON)), decode(t, w.Body.Bytes())); diff != "" {
				t.Errorf("PATCH %s body mismatch (-want +got):\n%s", tt.target, diff)
			}
		})
	}
}

// atlasRefusal is the part of an Atlas ApiError the refusal tests check.
type atlasRefusal struct {
	Error     int      `json:"error"`
	ErrorCode string   `json:"errorCode"`
	Detail    string   `json:"detail"`
	Reason    string   `json:"reason"`
	Params    []string `json:"parameters"`
}

// TestRefusals covers what the gateway refuses itself, on the Atlas path
// (where errorCode is visible) and on /v1: nothing may reach gRPC.
func TestRefusals(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		method     string
		query      string
		body       string
		wantStatus int
		wantCode   string // Atlas errorCode
		wantDetail string // exact detail
	}{
		{
			name: "typo validateonly", method: http.MethodPatch, query: "?validateonly=true",
			body:       `{"awsKms": {"enabled": false}}`,
			wantStatus: 400, wantCode: "INVALID_QUERY_PARAMETER",
			wantDetail: `Invalid query parameter "validateonly" is not a query parameter of this route, which accepts only envelope, pretty, validateOnly; did you mean validateOnly?`,
		},
		{
			name: "proto spelling validate_only", method: http.MethodPatch, query: "?validate_only=true",
			body:       `{"awsKms": {"enabled": false}}`,
			wantStatus: 400, wantCode: "INVALID_QUERY_PARAMETER",
			wantDetail: `Invalid query parameter "validate_only" is not a query parameter of this route, which accepts only envelope, pretty, validateOnly; did you mean validateOnly?`,
		},
		{
			name: "validateOnly on GET", method: http.MethodGet, query: "?validateOnly=true",
			wantStatus: 400, wantCode: "INVALID_QUERY_PARAMETER",
			wantDetail: `Invalid query parameter "validateOnly" is not a query parameter of this route, which accepts only envelope, pretty; validateOnly applies only to PATCH.`,
		},
		{
			name: "unknown parameter on GET", method: http.MethodGet, query: "?itemsPerPage=5",
			wantStatus: 400, wantCode: "INVALID_QUERY_PARAMETER",
			wantDetail: `Invalid query parameter "itemsPerPage" is not a query parameter of this route, which accepts only envelope, pretty.`,
		},
		{
			name: "bad boolean", method: http.MethodPatch, query: "?validateOnly=yes",
			body:       `{"awsKms": {"enabled": false}}`,
			wantStatus: 400, wantCode: "INVALID_QUERY_PARAMETER",
			wantDetail: `Invalid query parameter "validateOnly" must be true or false.`,
		},
		{
			name: "repeated parameter", method: http.MethodPatch, query: "?validateOnly=true&validateOnly=false",
			body:       `{"awsKms": {"enabled": false}}`,
			wantStatus: 400, wantCode: "INVALID_QUERY_PARAMETER",
			wantDetail: `Invalid query parameter "validateOnly" is given more than once.`,
		},
		{
			name: "malformed query", method: http.MethodGet, query: "?pretty=%zz",
			wantStatus: 400, wantCode: "INVALID_QUERY_PARAMETER",
			wantDetail: `The query string is malformed: check its escapes (%XX).`,
		},
		{
			name: "unknown field", method: http.MethodPatch,
			body:       `{"awsKms": {"enabled": true, "customerMasterKey": "k"}}`,
			wantStatus: 400, wantCode: "INVALID_ATTRIBUTE",
			wantDetail: `Invalid attribute awsKms.customerMasterKey specified: it is not a field of this API.`,
		},
		{
			name: "unknown top-level field", method: http.MethodPatch,
			body:       `{"awsKMS": {"enabled": true}}`,
			wantStatus: 400, wantCode: "INVALID_ATTRIBUTE",
			// A near miss gets the field meant.
			wantDetail: `Invalid attribute awsKMS specified: it is not a field of this API; did you mean awsKms?`,
		},
		{
			name: "read-only field is unknown in a request", method: http.MethodPatch,
			body:       `{"awsKms": {"valid": true}}`,
			wantStatus: 400, wantCode: "INVALID_ATTRIBUTE",
			wantDetail: `Invalid attribute awsKms.valid specified: it is not a field of this API.`,
		},
		{
			name: "malformed JSON", method: http.MethodPatch,
			body:       `{"awsKms": {"enabled": true,}}`,
			wantStatus: 400, wantCode: "INVALID_JSON",
			wantDetail: `The request body is not valid JSON: syntax error at line 1, column 29.`,
		},
		{
			name: "truncated JSON", method: http.MethodPatch,
			body:       `{"awsKms": {"enabled": true`,
			wantStatus: 400, wantCode: "INVALID_JSON",
			wantDetail: `The request body is not valid JSON: it ends too early.`,
		},
		{
			name: "two providers", method: http.MethodPatch,
			body:       `{"awsKms": {"enabled": false}, "azureKeyVault": {"enabled": false}}`,
			wantStatus: 400, wantCode: "INVALID_ATTRIBUTE",
			wantDetail: `Exactly one provider per request is allowed: the body sets awsKms and azureKeyVault. Send one request per provider.`,
		},
		{
			name: "wrong type", method: http.MethodPatch,
			body:       `{"awsKms": {"enabled": "yes"}}`,
			wantStatus: 400, wantCode: "INVALID_ATTRIBUTE",
			wantDetail: `Invalid attribute awsKms.enabled specified: it must be true or false, not a string.`,
		},
		{
			name: "field given twice by its two names", method: http.MethodPatch,
			body:       `{"awsKms": {"roleId": "a", "role_id": "b"}}`,
			wantStatus: 400, wantCode: "INVALID_ATTRIBUTE",
			wantDetail: `Invalid attribute awsKms.roleId specified: it is given more than once.`,
		},
		{
			name: "exact key given twice", method: http.MethodPatch,
			body:       `{"awsKms": {"roleId": "a", "roleId": "b"}}`,
			wantStatus: 400, wantCode: "INVALID_ATTRIBUTE",
			// The gateway's own strict decoding sees the repeated key and names
			// its path; protojson's text, which it no longer parses, named
			// only "roleId".
			wantDetail: `Invalid attribute awsKms.roleId specified: it is given more than once.`,
		},
		{
			name: "array body", method: http.MethodPatch,
			body:       `[{"awsKms": {}}]`,
			wantStatus: 400, wantCode: "INVALID_JSON",
			wantDetail: `The request body must be a JSON object, not an array.`,
		},
		{
			name: "string body", method: http.MethodPatch,
			body:       `"hello"`,
			wantStatus: 400, wantCode: "INVALID_JSON",
			wantDetail: `The request body must be a JSON object, not a string.`,
		},
		{
			name: "trailing data", method: http.MethodPatch,
			body:       `{"awsKms": {"enabled": false}} {}`,
			wantStatus: 400, wantCode: "INVALID_JSON",
			wantDetail: `The request body must hold one JSON object and nothing after it.`,
		},
		{
			name: "empty body", method: http.MethodPatch,
			wantStatus: 400, wantCode: "INVALID_JSON",
			wantDetail: `The request body is empty: send a JSON object, e.g. {"awsKms": {"enabled": false}}.`,
		},
		{
			name: "body over 1 MiB", method: http.MethodPatch,
			body:       `{"awsKms": {"customerMasterKeyID": "` + strings.Repeat("k", 1<<20) + `"}}`,
			wantStatus: 413, wantCode: "REQUEST_BODY_TOO_LARGE",
			wantDetail: `The request body is larger than the limit of 1048576 bytes.`,
		},
		{
			name: "method not allowed", method: http.MethodDelete,
			wantStatus: 405, wantCode: "METHOD_NOT_ALLOWED",
			wantDetail: `This path does not accept the DELETE method; see /openapi.json.`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := &fakeService{resp: state()}
			h, logs := newGateway(t, f)

			// Atlas's ApiError on the alias.
			w := serve(t, h, tt.method, atlasPath+tt.query, tt.body)
			var got atlasRefusal
			if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
				t.Fatalf("%s %s body is not JSON: %v", tt.method, tt.query, err)
			}
			want := atlasRefusal{Error: tt.wantStatus, ErrorCode: tt.wantCode, Detail: tt.wantDetail, Reason: http.StatusText(tt.wantStatus), Params: got.Params}
			if w.Code != tt.wantStatus {
				t.Errorf("%s %s%s = %d, want %d", tt.method, atlasPath, tt.query, w.Code, tt.wantStatus)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%s %s%s ApiError mismatch (-want +got):\n%s", tt.method, atlasPath, tt.query, diff)
			}

			// AIP-193 on /v1, with the same message and status.
			w = serve(t, h, tt.method, v1Path+tt.query, tt.body)
			var aip struct {
				Error struct {
					Code    int    `json:"code"`
					Status  string `json:"status"`
					Message string `json:"message"`
				} `json:"error"`
			}
			if err := json.Unmarshal(w.Body.Bytes(), &aip); err != nil {
				t.Fatalf("%s %s body is not JSON: %v", tt.method, tt.query, err)
			}
			if w.Code != tt.wantStatus || aip.Error.Code != tt.wantStatus || aip.Error.Message != tt.wantDetail {
				t.Errorf("%s %s%s = %d %+v, want %d with message %q", tt.method, v1Path, tt.query, w.Code, aip.Error, tt.wantStatus, tt.wantDetail)
			}

			if n := f.calls(); n != 0 {
				t.Errorf("%s %s: the service was called %d times, want 0", tt.method, tt.query, n)
			}
			for line := range strings.Lines(logs.String()) {
				if !strings.Contains(line, `"refused_by_gateway":true`) {
					t.Errorf("access log record %s: want refused_by_gateway true", line)
				}
			}
		})
	}
}

func TestRefusalDetails(t *testing.T) {
	t.Parallel()
	f := &fakeService{resp: state()}
	h, _ := newGateway(t, f)
	body := `{"azureKeyVault": {"clientId": "x", "tenantID": 5}}`

	w := serve(t, h, http.MethodPatch, atlasPath, body)
	want := `{
	  "error": 400, "errorCode": "INVALID_ATTRIBUTE", "reason": "Bad Request",
	  "detail": "Invalid attributes specified: azureKeyVault.clientId is not a field of this API; did you mean clientID?; azureKeyVault.tenantID must be a JSON string, not a number.",
	  "parameters": ["azureKeyVault.clientId", "azureKeyVault.tenantID"],
	  "badRequestDetail": {"fields": [
	    {"field": "azureKeyVault.clientId", "description": "azureKeyVault.clientId is not a field of this API; did you mean clientID?"},
	    {"field": "azureKeyVault.tenantID", "description": "azureKeyVault.tenantID must be a JSON string, not a number"}
	  ]}
	}`
	if diff := cmp.Diff(decode(t, []byte(want)), decode(t, w.Body.Bytes())); diff != "" {
		t.Errorf("PATCH %s %s mismatch (-want +got):\n%s", atlasPath, body, diff)
	}

	w = serve(t, h, http.MethodPatch, v1Path, body)
	want = `{"error": {
	  "code": 400, "status": "INVALID_ARGUMENT",
	  "message": "Invalid attributes specified: azureKeyVault.clientId is not a field of this API; did you mean clientID?; azureKeyVault.tenantID must be a JSON string, not a number.",
	  "details": [
	    {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "INVALID_ATTRIBUTE", "domain": "encryptiond", "metadata": {"httpStatus": "400"}},
	    {"@type": "type.googleapis.com/google.rpc.BadRequest", "fieldViolations": [
	      {"field": "config.azure_key_vault.clientId", "description": "azureKeyVault.clientId is not a field of this API; did you mean clientID?"},
	      {"field": "config.azure_key_vault.tenant_id", "description": "azureKeyVault.tenantID must be a JSON string, not a number"}
	    ]}
	  ]
	}}`
	if diff := cmp.Diff(decode(t, []byte(want)), decode(t, w.Body.Bytes())); diff != "" {
		t.Errorf("PATCH %s %s mismatch (-want +got):\n%s", v1Path, body, diff)
	}
}

// TestLongKeysShortened checks that an unknown JSON key is cut to 64 bytes
// wherever a refusal names it, as query parameter names are.
func TestLongKeysShortened(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("k", 10<<10)
	short := strings.Repeat("k", 64) + "…"
	tests := []struct {
		name string
		body string
		want string // the JSON path named
	}{
		{"top level", `{"` + long + `": 1}`, short},
		{"in a provider", `{"awsKms": {"` + long + `": 1}}`, "awsKms." + short},
		{"multibyte", `{"` + strings.Repeat("é", 5<<10) + `": 1}`, strings.Repeat("é", 32) + "…"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h, _ := newGateway(t, &fakeService{resp: state()})
			for _, target := range []string{v1Path, atlasPath} {
				w := serve(t, h, http.MethodPatch, target, tt.body)
				if w.Code != http.StatusBadRequest {
					t.Errorf("PATCH %s = %d, want 400", target, w.Code)
				}
				if got := w.Body.Len(); got > 2000 {
					t.Errorf("PATCH %s: response is %d bytes, want a short one:\n%.300s", target, got, w.Body)
				}
				if !strings.Contains(w.Body.String(), tt.want+" is not a field of this API") {
					t.Errorf("PATCH %s = %s, want it to name %s", target, w.Body, tt.want)
				}
			}
		})
	}
}

func TestSecretsNeverEchoed(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		secret string
		body   string
	}{
		{"number for a string", "12345678", `{"awsKms": {"secretAccessKey": 12345678}}`},
		{"string with a quote for a bool", `SECRET"QUOTE`, `{"awsKms": {"enabled": "SECRET\"QUOTE"}}`},
		{"string in an unknown field", "SECRET-UNKNOWN", `{"awsKms": {"secretAcessKey": "SECRET-UNKNOWN"}}`},
		{"bad literal", "SECRETLITERAL", `{"awsKms": {"secretAccessKey": SECRETLITERAL}}`},
		{"syntax error after a secret", "SECRET-SYNTAX", `{"azureKeyVault": {"secret": "SECRET-SYNTAX" "x"}}`},
		{"two providers with secrets", "SECRET-TWO", `{"azureKeyVault": {"secret": "SECRET-TWO"}, "googleCloudKms": {"serviceAccountKey": "SECRET-TWO"}}`},
		{"secret given twice", "SECRET-TWICE", `{"azureKeyVault": {"secret": "SECRET-TWICE", "secret": "SECRET-TWICE"}}`},
		{"bad query value", "SECRET-QUERY", ``},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := &fakeService{resp: state()}
			h, logs := newGateway(t, f)
			for _, target := range []string{v1Path, atlasPath} {
				target += "?pretty=true"
				body := tt.body
				if body == "" {
					target += "&validateOnly=" + tt.secret
					body = `{"awsKms": {"enabled": false}}`
				}
				w := serve(t, h, http.MethodPatch, target, body)
				if w.Code != http.StatusBadRequest {
					t.Errorf("PATCH %s %s = %d, want 400", target, body, w.Code)
				}
				for _, s := range []string{tt.secret, strings.Split(tt.secret, `"`)[0]} {
					if strings.Contains(w.Body.String(), s) {
						t.Errorf("PATCH %s: response %s contains the secret %q", target, w.Body, s)
					}
					if strings.Contains(headerString(w.Header()), s) {
						t.Errorf("PATCH %s: response headers %v contain the secret %q", target, w.Header(), s)
					}
				}
			}
			if got := logs.String(); strings.Contains(got, strings.Split(tt.secret, `"`)[0]) {
				t.Errorf("access log contains the secret %q:\n%s", tt.secret, got)
			}
		})
	}
}

func headerString(h http.Header) string {
	var b strings.Builder
	_ = h.Write(&b)
	return b.String()
}

func TestPrettyAndEnvelope(t *testing.T) {
	t.Parallel()
	conflict := status.New(codes.FailedPrecondition, "CANNOT_DISABLE_ENCRYPTION_AT_REST: clusters still use this key")
	conflict, err := conflict.WithDetails(&errdetails.ErrorInfo{
		Reason: "CANNOT_DISABLE_ENCRYPTION_AT_REST", Domain: "cloud.mongodb.com",
		Metadata: map[string]string{"httpStatus": "409", "groupId": groupID, "provider": "awsKms"},
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		err        error
		method     string
		target     string
		wantStatus int
		wantBody   string // exact bytes
	}{
		{
			name: "pretty success", method: http.MethodGet, target: v1Path + "?pretty=true",
			wantStatus: 200,
			wantBody: `{
  "awsKms": {
    "enabled": true,
    "valid": true,
    "customerMasterKeyID": "030gce02-586d-48d2-a966-05ea954fde0g",
    "region": "US_EAST_1",
    "roleId": "66c7a5d8e4b0a1b2c3d4e5f6"
  },
  "azureKeyVault": {
    "enabled": false,
    "valid": false
  },
  "googleCloudKms": {
    "enabled": false,
    "valid": false
  }
}
`,
		},
		{
			name: "envelope success", method: http.MethodGet, target: atlasPath + "?envelope=true",
			wantStatus: 200,
			wantBody:   `{"status":200,"content":{"awsKms":{"enabled":true,"valid":true,"customerMasterKeyID":"030gce02-586d-48d2-a966-05ea954fde0g","region":"US_EAST_1","roleId":"66c7a5d8e4b0a1b2c3d4e5f6"},"azureKeyVault":{"enabled":false,"valid":false},"googleCloudKms":{"enabled":false,"valid":false}}}`,
		},
		{
			name: "envelope service error on the alias", err: conflict.Err(), method: http.MethodPatch, target: atlasPath + "?envelope=true",
			wantStatus: 200,
			wantBody:   `{"status":409,"content":{"error":409,"errorCode":"CANNOT_DISABLE_ENCRYPTION_AT_REST","detail":"CANNOT_DISABLE_ENCRYPTION_AT_REST: clusters still use this key","reason":"Conflict","parameters":[]}}`,
		},
		{
			name: "pretty envelope refusal", method: http.MethodPatch, target: v1Path + "?envelope=true&pretty=true&dryRun=true",
			wantStatus: 200,
			wantBody: `{
  "status": 400,
  "content": {
    "error": {
      "code": 400,
      "status": "INVALID_ARGUMENT",
      "message": "Invalid query parameter \"dryRun\" is not a query parameter of this route, which accepts only envelope, pretty, validateOnly.",
      "details": [
        {
          "@type": "type.googleapis.com/google.rpc.ErrorInfo",
          "reason": "INVALID_QUERY_PARAMETER",
          "domain": "encryptiond",
          "metadata": {
            "httpStatus": "400"
          }
        },
        {
          "@type": "type.googleapis.com/google.rpc.BadRequest",
          "fieldViolations": [
            {
              "field": "dryRun",
              "description": "\"dryRun\" is not a query parameter of this route, which accepts only envelope, pretty, validateOnly"
            }
          ]
        }
      ]
    }
  }
}
`,
		},
		{
			name: "pretty 404", method: http.MethodGet, target: "/v1/nothing?pretty=true",
			wantStatus: 404,
			wantBody: `{
  "error": {
    "code": 404,
    "status": "NOT_FOUND",
    "message": "No resource of this API has this path; see /openapi.json.",
    "details": [
      {
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        "reason": "RESOURCE_NOT_FOUND",
        "domain": "encryptiond",
        "metadata": {
          "httpStatus": "404"
        }
      }
    ]
  }
}
`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := &fakeService{resp: state(), err: tt.err}
			h, _ := newGateway(t, f)
			w := serve(t, h, tt.method, tt.target, `{"awsKms": {"enabled": false}}`)
			if w.Code != tt.wantStatus {
				t.Errorf("%s %s = %d, want %d", tt.method, tt.target, w.Code, tt.wantStatus)
			}
			if diff := cmp.Diff(tt.wantBody, w.Body.String()); diff != "" {
				t.Errorf("%s %s body mismatch (-want +got):\n%s", tt.method, tt.target, diff)
			}
		})
	}
}

// TestServiceErrors checks the two error shapes of the service's status
// errors, built as the service's contract says.
func TestServiceErrors(t *testing.T) {
	t.Parallel()
	mustStatus := func(st *status.Status, details ...protoadapt.MessageV1) error {
		t.Helper()
		s, err := st.WithDetails(details...)
		if err != nil {
			t.Fatal(err)
		}
		return s.Err()
	}
	invalid := mustStatus(status.New(codes.InvalidArgument, "required to enable Azure Key Vault"),
		&errdetails.ErrorInfo{Reason: "MISSING_ATTRIBUTE", Domain: "encryptiond", Metadata: map[string]string{"httpStatus": "400", "groupId": groupID, "provider": "azureKeyVault"}},
		&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{
			{Field: "config.azure_key_vault.client_id", Description: "clientID: required to enable Azure Key Vault"},
			{Field: "config.aws_kms.region", Description: "region: required"},
		}},
	)
	conflict := mustStatus(status.New(codes.FailedPrecondition, "Atlas answered 409 CANNOT_DISABLE_ENCRYPTION_AT_REST: clusters use it"),
		&errdetails.ErrorInfo{Reason: "CANNOT_DISABLE_ENCRYPTION_AT_REST", Domain: "cloud.mongodb.com", Metadata: map[string]string{"httpStatus": "409", "groupId": groupID, "provider": "awsKms"}},
	)
	limited := mustStatus(status.New(codes.ResourceExhausted, "Atlas answered 429 RATE_LIMITED_TOKEN_BUCKET"),
		&errdetails.ErrorInfo{Reason: "RATE_LIMITED_TOKEN_BUCKET", Domain: "cloud.mongodb.com", Metadata: map[string]string{"httpStatus": "429"}},
		&errdetails.RetryInfo{RetryDelay: durationpb.New(1500 * time.Millisecond)},
	)
	unavailable := mustStatus(status.New(codes.Unavailable, "cannot reach Atlas"),
		&errdetails.RetryInfo{RetryDelay: durationpb.New(3 * time.Second)},
	)
	tests := []struct {
		name           string
		err            error
		target         string
		wantStatus     int
		wantRetryAfter string
		wantBody       string
	}{
		{
			name: "AIP-193 with details", err: invalid, target: v1Path, wantStatus: 400,
			wantBody: `{"error": {"code": 400, "status": "INVALID_ARGUMENT", "message": "required to enable Azure Key Vault", "details": [
			  {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "MISSING_ATTRIBUTE", "domain": "encryptiond", "metadata": {"httpStatus": "400", "groupId": "` + groupID + `", "provider": "azureKeyVault"}},
			  {"@type": "type.googleapis.com/google.rpc.BadRequest", "fieldViolations": [
			    {"field": "config.azure_key_vault.client_id", "description": "clientID: required to enable Azure Key Vault"},
			    {"field": "config.aws_kms.region", "description": "region: required"}
			  ]}
			]}}`,
		},
		{
			name: "ApiError with Atlas JSON paths", err: invalid, target: atlasPath, wantStatus: 400,
			wantBody: `{"error": 400, "errorCode": "MISSING_ATTRIBUTE", "detail": "required to enable Azure Key Vault", "reason": "Bad Request", "parameters": [],
			  "badRequestDetail": {"fields": [
			    {"field": "azureKeyVault.clientID", "description": "clientID: required to enable Azure Key Vault"},
			    {"field": "awsKms.region", "description": "region: required"}
			  ]}}`,
		},
		{
			name: "ApiError 409 from metadata", err: conflict, target: atlasPath, wantStatus: 409,
			wantBody: `{"error": 409, "errorCode": "CANNOT_DISABLE_ENCRYPTION_AT_REST", "detail": "Atlas answered 409 CANNOT_DISABLE_ENCRYPTION_AT_REST: clusters use it", "reason": "Conflict", "parameters": []}`,
		},
		{
			name: "AIP-193 keeps the canonical status for FAILED_PRECONDITION", err: conflict, target: v1Path, wantStatus: 400,
			wantBody: `{"error": {"code": 400, "status": "FAILED_PRECONDITION", "message": "Atlas answered 409 CANNOT_DISABLE_ENCRYPTION_AT_REST: clusters use it", "details": [
			  {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "CANNOT_DISABLE_ENCRYPTION_AT_REST", "domain": "cloud.mongodb.com", "metadata": {"httpStatus": "409", "groupId": "` + groupID + `", "provider": "awsKms"}}
			]}}`,
		},
		{
			name: "Retry-After on 429, Atlas shape", err: limited, target: atlasPath, wantStatus: 429, wantRetryAfter: "2",
			wantBody: `{"error": 429, "errorCode": "RATE_LIMITED_TOKEN_BUCKET", "detail": "Atlas answered 429 RATE_LIMITED_TOKEN_BUCKET", "reason": "Too Many Requests", "parameters": []}`,
		},
		{
			name: "Retry-After on 429, AIP-193", err: limited, target: v1Path, wantStatus: 429, wantRetryAfter: "2",
			wantBody: `{"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "message": "Atlas answered 429 RATE_LIMITED_TOKEN_BUCKET", "details": [
			  {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "RATE_LIMITED_TOKEN_BUCKET", "domain": "cloud.mongodb.com", "metadata": {"httpStatus": "429"}},
			  {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1.500s"}
			]}}`,
		},
		{
			name: "Retry-After on 503 without ErrorInfo: errorCode is the code name", err: unavailable, target: atlasPath, wantStatus: 503, wantRetryAfter: "3",
			wantBody: `{"error": 503, "errorCode": "UNAVAILABLE", "detail": "cannot reach Atlas", "reason": "Service Unavailable", "parameters": []}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := &fakeService{err: tt.err}
			h, logs := newGateway(t, f)
			w := serve(t, h, http.MethodPatch, tt.target, `{"azureKeyVault": {"enabled": true}}`)
			if w.Code != tt.wantStatus {
				t.Errorf("PATCH %s = %d, want %d", tt.target, w.Code, tt.wantStatus)
			}
			if got := w.Header().Get("Retry-After"); got != tt.wantRetryAfter {
				t.Errorf("PATCH %s Retry-After = %q, want %q", tt.target, got, tt.wantRetryAfter)
			}
			if diff := cmp.Diff(decode(t, []byte(tt.wantBody)), decode(t, w.Body.Bytes())); diff != "" {
				t.Errorf("PATCH %s body mismatch (-want +got):\n%s", tt.target, diff)
			}
			if n := f.calls(); n != 1 {
				t.Errorf("PATCH %s: the service was called %d times, want 1", tt.target, n)
			}
			if got := logs.String(); !strings.Contains(got, `"refused_by_gateway":false`) {
				t.Errorf("access log %s: want refused_by_gateway false", got)
			}
		})
	}
}

func TestHeaders(t *testing.T) {
	t.Parallel()
	f := &fakeService{resp: state()}
	h, _ := newGateway(t, f)
	w := serve(t, h, http.MethodGet, v1Path, "",
		"Authorization", "Bearer SECRET-TOKEN",
		"Cookie", "session=SECRET-COOKIE",
		"Grpc-Metadata-Foo", "bar",
		"X-Request-Id", "req-1",
	)
	if w.Code != http.StatusOK {
		t.Fatalf("GET %s = %d %s", v1Path, w.Code, w.Body)
	}
	md := f.mds[0]
	for _, k := range []string{"authorization", "cookie", "foo", "grpc-metadata-foo"} {
		if v := md.Get(k); len(v) > 0 {
			t.Errorf("metadata %q = %q reached gRPC, want it dropped", k, v)
		}
	}
	if got := md.Get("x-request-id"); !cmp.Equal(got, []string{"req-1"}) {
		t.Errorf("metadata x-request-id = %q, want [req-1]", got)
	}
	for k := range w.Header() {
		if strings.HasPrefix(k, "Grpc-") {
			t.Errorf("response header %s: want no gRPC metadata on the response", k)
		}
	}
}

func TestAccessLog(t *testing.T) {
	t.Parallel()
	f := &fakeService{resp: state()}
	h, logs := newGateway(t, f)
	serve(t, h, http.MethodGet, v1Path+"?pretty=true", "")
	serve(t, h, http.MethodPatch, atlasPath+"?validateonly=VALUE-IN-QUERY", `{"awsKms": {"enabled": false}}`)

	type record struct {
		Msg       string `json:"msg"`
		Method    string `json:"method"`
		Path      string `json:"path"`
		Status    int    `json:"status"`
		Refused   bool   `json:"refused_by_gateway"`
		ErrorCode string `json:"error_code"`
	}
	var got []record
	for line := range strings.Lines(logs.String()) {
		var r record
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("access log line %q: %v", line, err)
		}
		if !strings.Contains(line, `"duration"`) {
			t.Errorf("access log line %s: no duration", line)
		}
		got = append(got, r)
	}
	want := []record{
		{Msg: "http request", Method: "GET", Path: v1Path, Status: 200},
		{Msg: "http request", Method: "PATCH", Path: atlasPath, Status: 400, Refused: true, ErrorCode: "INVALID_QUERY_PARAMETER"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("access log mismatch (-want +got):\n%s", diff)
	}
	if strings.Contains(logs.String(), "VALUE-IN-QUERY") {
		t.Errorf("access log contains a query value:\n%s", logs)
	}
}

func TestMaxBodyBytes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		limit      int64
		body       string
		chunked    bool
		wantStatus int
	}{
		{"under the limit", 64, `{"awsKms": {"enabled": false}}`, false, 200},
		{"over the limit by Content-Length", 16, `{"awsKms": {"enabled": false}}`, false, 413},
		{"over the limit without Content-Length", 16, `{"awsKms": {"enabled": false}}`, true, 413},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := &fakeService{resp: state()}
			h, _ := newGateway(t, f, gateway.WithMaxBodyBytes(tt.limit))
			r := httptest.NewRequestWithContext(t.Context(), http.MethodPatch, v1Path, strings.NewReader(tt.body))
			if tt.chunked {
				r.ContentLength = -1
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tt.wantStatus {
				t.Errorf("PATCH %d bytes with limit %d = %d %s, want %d", len(tt.body), tt.limit, w.Code, w.Body, tt.wantStatus)
			}
			if wantCalls := map[bool]int{true: 1, false: 0}[tt.wantStatus == 200]; f.calls() != wantCalls {
				t.Errorf("the service was called %d times, want %d", f.calls(), wantCalls)
			}
		})
	}
}

// TestEndToEndHTTP drives the gateway over a real HTTP server: bufconn gRPC
// → gateway → httptest.Server.
func TestEndToEndHTTP(t *testing.T) {
	t.Parallel()
	f := &fakeService{resp: state()}
	h, _ := newGateway(t, f)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)

	req, err := http.NewRequestWithContext(t.Context(), http.MethodPatch, srv.URL+atlasPath+"?validateOnly=true",
		strings.NewReader(`{"awsKms": {"enabled": true, "customerMasterKeyID": "030gce02-586d-48d2-a966-05ea954fde0g", "region": "US_EAST_1", "roleId": "66c7a5d8e4b0a1b2c3d4e5f6"}}`))
	if err != nil {
		t.Fatal(err)
	}
	// Like curl -d: a form content type on a JSON body.
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatalf("PATCH = %v", err)
	}
	defer resp.Body.Close()
	var got bytes.Buffer
	_, _ = got.ReadFrom(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("PATCH = %d %s, want 200", resp.StatusCode, got.String())
	}
	if len(f.updates) != 1 || !f.updates[0].GetValidateOnly() || f.updates[0].GetConfig().GetAwsKms().GetRegion() != "US_EAST_1" {
		t.Errorf("the service saw %v, want one validate-only AWS update", f.updates)
	}
}

func TestOpenAPIHandler(t *testing.T) {
	t.Parallel()
	tests := []struct {
		method     string
		wantStatus int
	}{
		{http.MethodGet, 200},
		{http.MethodHead, 200},
		{http.MethodPost, 405},
	}
	for _, tt := range tests {
		t.Run(tt.method, func(t *testing.T) {
			t.Parallel()
			w := httptest.NewRecorder()
			gateway.OpenAPIHandler().ServeHTTP(w, httptest.NewRequestWithContext(t.Context(), tt.method, "/openapi.json", nil))
			if w.Code != tt.wantStatus {
				t.Fatalf("%s /openapi.json = %d, want %d", tt.method, w.Code, tt.wantStatus)
			}
			if tt.method != http.MethodGet {
				return
			}
			if got := w.Header().Get("Content-Type"); got != "application/json" {
				t.Errorf("Content-Type = %q, want application/json", got)
			}
			var doc struct {
				Paths map[string]any `json:"paths"`
			}
			if err := json.Unmarshal(w.Body.Bytes(), &doc); err != nil {
				t.Fatalf("/openapi.json is not JSON: %v", err)
			}
			for _, p := range []string{"/v1/groups/{groupId}/encryptionAtRest", "/api/atlas/v1.0/groups/{groupId}/encryptionAtRest"} {
				if _, ok := doc.Paths[p]; !ok {
					t.Errorf("/openapi.json paths lack %s", p)
				}
			}
		})
	}
}
