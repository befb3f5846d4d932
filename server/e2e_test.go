package server_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/encryptiond/encryptiond/atlas"
	"github.com/encryptiond/encryptiond/atlas/atlastest"
	encryptionv1 "github.com/encryptiond/encryptiond/gen/atlas/encryption/v1"
	"github.com/encryptiond/encryptiond/server"
	"github.com/encryptiond/encryptiond/server/failure"
	"github.com/encryptiond/encryptiond/server/gateway"
)

// The end-to-end path in memory: a gRPC server on bufconn, the REST gateway
// dialing it through a client connection, an httptest server in front of the
// gateway, and the Atlas emulator as Atlas. Every rule is checked over gRPC
// and over REST, with the exact PATCH bodies the emulator received.

const (
	e2eRole = "5f3b1c2d3e4f5a6b7c8d9e0f"
	// The v1.0 documentation's example, secret replaced by a sentinel.
	contractExample = `{"awsKms": {"enabled": true, "accessKeyID": "AKIAIOSFODNN7EXAMPLE", "secretAccessKey": "e2e-aws-SENTINEL", "customerMasterKeyID": "030gce02-586d-48d2-a966-05ea954fde0g", "region": "US_EAST_1"}}`
	azureEnable     = `{"azureKeyVault": {"enabled": true, "azureEnvironment": "AZURE", "clientID": "f0e1d2c3-b4a5-4968-8776-a5b4c3d2e1f0", "tenantID": "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d", "secret": "e2e-azure-SENTINEL", "subscriptionID": "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d", "resourceGroupName": "rg", "keyVaultName": "vault", "keyIdentifier": "https://vault.vault.azure.net/keys/key/d891821e3d364e9eb88fbd3d11807b86"}}`
	gcpEnable       = `{"googleCloudKms": {"enabled": true, "keyVersionResourceID": "projects/p/locations/global/keyRings/r/cryptoKeys/k/cryptoKeyVersions/1", "serviceAccountKey": "{\"type\": \"service_account\", \"private_key\": \"e2e-gcp-SENTINEL\"}"}}`
)

var e2eSecrets = []string{"e2e-aws-SENTINEL", "e2e-azure-SENTINEL", "e2e-gcp-SENTINEL"}

type harness struct {
	emu    *atlastest.Emulator
	direct *atlas.Client // talks to the emulator without encryptiond, to set up state
	grpc   encryptionv1.EncryptionServiceClient
	rest   *httptest.Server
}

func newHarness(t testing.TB) *harness {
	t.Helper()
	return newHarnessWith(t, atlastest.EmulatorConfig{})
}

// newHarnessWith is newHarness with an emulator configured by cfg, whose
// credentials and AutoCreateGroups it sets.
func newHarnessWith(t testing.TB, cfg atlastest.EmulatorConfig) *harness {
	t.Helper()
	cfg.PublicKey, cfg.PrivateKey, cfg.AutoCreateGroups = "e2e-public", "e2e-private-key", true
	emu, atlasSrv := atlastest.NewServer(t, cfg)
	client, err := atlas.NewClient(atlas.WithBaseURL(atlasSrv.URL), atlas.WithDigest("e2e-public", "e2e-private-key"))
	if err != nil {
		t.Fatal(err)
	}
	direct, err := atlas.NewClient(atlas.WithBaseURL(atlasSrv.URL), atlas.WithDigest("e2e-public", "e2e-private-key"))
	if err != nil {
		t.Fatal(err)
	}

	api, rest := serve(t, server.New(client))
	return &harness{emu: emu, direct: direct, grpc: api, rest: rest}
}

// serve serves svc on the in-memory path: a gRPC server (with opts) on
// bufconn, the REST gateway dialing it, and an httptest server in front of
// the gateway. It returns a gRPC client and the REST server.
func serve(t testing.TB, svc encryptionv1.EncryptionServiceServer, opts ...grpc.ServerOption) (encryptionv1.EncryptionServiceClient, *httptest.Server) {
	t.Helper()
	lis := bufconn.Listen(1 << 20)
	gs := grpc.NewServer(opts...)
	encryptionv1.RegisterEncryptionServiceServer(gs, svc)
	go gs.Serve(lis) //nolint:errcheck // Serve returns when Stop is called.
	t.Cleanup(gs.Stop)

	conn, err := grpc.NewClient("passthrough:///bufconn",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	h, err := gateway.New(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	rest := httptest.NewServer(h)
	t.Cleanup(rest.Close)
	return encryptionv1.NewEncryptionServiceClient(conn), rest
}

// patches returns the bodies of the PATCH requests the emulator received.
func (h *harness) patches() []string {
	var out []string
	for _, r := range h.emu.Requests() {
		if r.Method == http.MethodPatch {
			out = append(out, string(r.Body))
		}
	}
	return out
}

// enable sets up a provider straight through Atlas, then forgets the
// requests it took.
func (h *harness) enable(t *testing.T, group, body string) {
	t.Helper()
	var update atlas.EncryptionAtRest
	if err := json.Unmarshal([]byte(body), &update); err != nil {
		t.Fatal(err)
	}
	if _, err := h.direct.UpdateEncryptionAtRest(t.Context(), group, &update); err != nil {
		t.Fatalf("setting up %s: %v", body, err)
	}
	h.emu.ResetRecords()
}

// call sends an update over one transport and returns the gRPC code, the
// HTTP status (REST only) and everything the caller saw, for secret scans.
type transport struct {
	name   string
	update func(t *testing.T, h *harness, group, body, query string) (codes.Code, int, string)
}

var transports = []transport{
	{"gRPC", func(t *testing.T, h *harness, group, body, query string) (codes.Code, int, string) {
		cfg := &encryptionv1.ProviderConfig{}
		if err := protojson.Unmarshal([]byte(body), cfg); err != nil {
			t.Fatalf("protojson.Unmarshal(%s) = %v", body, err)
		}
		req := &encryptionv1.UpdateEncryptionAtRestRequest{GroupId: group, Config: cfg, ValidateOnly: query == "validateOnly=true"}
		res, err := h.grpc.UpdateEncryptionAtRest(t.Context(), req)
		seen := protojson.Format(res)
		if err != nil {
			seen = protojson.Format(status.Convert(err).Proto())
		}
		return status.Code(err), 0, seen
	}},
	{"REST", func(t *testing.T, h *harness, group, body, query string) (codes.Code, int, string) {
		url := h.rest.URL + "/v1/groups/" + group + "/encryptionAtRest"
		if query != "" {
			url += "?" + query
		}
		code, httpStatus, seen := restPatch(t, url, body)
		return code, httpStatus, seen
	}},
}

// restPatch sends a PATCH and reads the gRPC code from an AIP-193 error body.
func restPatch(t *testing.T, url, body string) (codes.Code, int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPatch, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode == http.StatusOK {
		return codes.OK, res.StatusCode, string(b)
	}
	var e struct {
		Error struct {
			Status string `json:"status"`
		} `json:"error"`
	}
	_ = json.Unmarshal(b, &e)
	code := codes.Unknown
	_ = code.UnmarshalJSON([]byte(`"` + e.Error.Status + `"`))
	return code, res.StatusCode, string(b)
}

func TestEndToEndRules(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		group       string
		setup       string // enabled through Atlas first
		inUse       string // provider marked as used by clusters
		body, query string
		wantCode    codes.Code
		wantHTTP    int
		wantPatches []string
		wantInBody  string // appears in what the caller saw
	}{
		{name: "rule 1: malformed group id", group: "NOT-A-GROUP", body: contractExample, wantCode: codes.InvalidArgument, wantHTTP: 400, wantInBody: "group_id"},
		{name: "rule 2: no provider", body: `{}`, wantCode: codes.InvalidArgument, wantHTTP: 400, wantInBody: "exactly one provider"},
		{name: "rule 3: disable sends enabled=false alone", setup: contractExample, body: `{"awsKms": {"enabled": false}}`, wantCode: codes.OK, wantHTTP: 200, wantPatches: []string{`{"awsKms":{"enabled":false}}`}},
		{name: "rule 3: disable with another field", setup: contractExample, body: `{"awsKms": {"enabled": false, "region": "EU_WEST_1"}}`, wantCode: codes.InvalidArgument, wantHTTP: 400, wantInBody: "must be the only field set"},
		{name: "rule 4: enable AWS with the whole document", body: contractExample, wantCode: codes.OK, wantHTTP: 200,
			wantPatches: []string{`{"awsKms":{"enabled":true,"accessKeyID":"AKIAIOSFODNN7EXAMPLE","secretAccessKey":"e2e-aws-SENTINEL","customerMasterKeyID":"030gce02-586d-48d2-a966-05ea954fde0g","region":"US_EAST_1"}}`}},
		{name: "rule 4: enable Azure", body: azureEnable, wantCode: codes.OK, wantHTTP: 200,
			wantPatches: []string{`{"azureKeyVault":{"enabled":true,"azureEnvironment":"AZURE","clientID":"f0e1d2c3-b4a5-4968-8776-a5b4c3d2e1f0","keyIdentifier":"https://vault.vault.azure.net/keys/key/d891821e3d364e9eb88fbd3d11807b86","keyVaultName":"vault","resourceGroupName":"rg","secret":"e2e-azure-SENTINEL","subscriptionID":"1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d","tenantID":"0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"}}`}},
		{name: "rule 4: enable GCP", body: gcpEnable, wantCode: codes.OK, wantHTTP: 200,
			wantPatches: []string{`{"googleCloudKms":{"enabled":true,"keyVersionResourceID":"projects/p/locations/global/keyRings/r/cryptoKeys/k/cryptoKeyVersions/1","serviceAccountKey":"{\"type\": \"service_account\", \"private_key\": \"e2e-gcp-SENTINEL\"}"}}`}},
		{name: "rule 4: partial enable refused, field by field", body: `{"awsKms": {"region": "EU_WEST_1"}}`, wantCode: codes.InvalidArgument, wantHTTP: 400, wantInBody: "config.aws_kms.customer_master_key_id"},
		{name: "rule 5: partial update of an enabled provider", setup: contractExample, body: `{"awsKms": {"region": "EU_WEST_1"}}`, wantCode: codes.OK, wantHTTP: 200, wantPatches: []string{`{"awsKms":{"region":"EU_WEST_1"}}`}, wantInBody: "EU_WEST_1"},
		{name: "rule 5: empty provider document", setup: contractExample, body: `{"awsKms": {}}`, wantCode: codes.InvalidArgument, wantHTTP: 400},
		{name: "rule 6: region not in Atlas's list", body: strings.Replace(contractExample, "US_EAST_1", "MOON_1", 1), wantCode: codes.InvalidArgument, wantHTTP: 400, wantInBody: "config.aws_kms.region"},
		{name: "rule 6: Azure client id not a UUID", setup: azureEnable, body: `{"azureKeyVault": {"clientID": "nope"}}`, wantCode: codes.InvalidArgument, wantHTTP: 400, wantInBody: "clientID"},
		{name: "rule 7: role mixed with static credentials", body: `{"googleCloudKms": {"enabled": true, "keyVersionResourceID": "projects/p/locations/l/keyRings/r/cryptoKeys/k/cryptoKeyVersions/1", "roleId": "` + e2eRole + `", "serviceAccountKey": "{}"}}`, wantCode: codes.InvalidArgument, wantHTTP: 400, wantInBody: "config.google_cloud_kms.role_id"},
		{name: "rule 8: validateOnly sends no PATCH", body: contractExample, query: "validateOnly=true", wantCode: codes.OK, wantHTTP: 200, wantInBody: "030gce02-586d-48d2-a966-05ea954fde0g"},
		{name: "Atlas 409: provider still used by clusters", setup: contractExample, inUse: "awsKms", body: `{"awsKms": {"enabled": false}}`, wantCode: codes.FailedPrecondition, wantHTTP: 400,
			wantPatches: []string{`{"awsKms":{"enabled":false}}`}, wantInBody: "CANNOT_DISABLE_ENCRYPTION_AT_REST"},
	}
	for _, tr := range transports {
		for _, tt := range tests {
			t.Run(tr.name+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				h := newHarness(t)
				group := tt.group
				if group == "" {
					group = "32b6e34b3d91647abb20e7b8"
				}
				if tt.setup != "" {
					h.enable(t, group, tt.setup)
				}
				if tt.inUse != "" {
					h.emu.SetProviderInUse(group, tt.inUse, true)
				}
				code, httpStatus, seen := tr.update(t, h, group, tt.body, tt.query)
				if code != tt.wantCode {
					t.Errorf("Update(%s) = %v (%s), want %v", tt.body, code, seen, tt.wantCode)
				}
				if tr.name == "REST" && httpStatus != tt.wantHTTP {
					t.Errorf("PATCH %s = HTTP %d, want %d", tt.body, httpStatus, tt.wantHTTP)
				}
				if diff := cmp.Diff(tt.wantPatches, h.patches()); diff != "" {
					t.Errorf("Update(%s): PATCH bodies Atlas received (-want +got):\n%s", tt.body, diff)
				}
				if tt.wantInBody != "" && !strings.Contains(seen, tt.wantInBody) {
					t.Errorf("Update(%s) answered %s, want it to mention %q", tt.body, seen, tt.wantInBody)
				}
				for _, s := range e2eSecrets {
					if strings.Contains(seen, s) {
						t.Errorf("Update(%s) answered %s, which contains the secret %q", tt.body, seen, s)
					}
				}
			})
		}
	}
}

func TestEndToEndREST(t *testing.T) {
	t.Parallel()
	const group = "5e2211c17a3e5a48f5497de3"

	t.Run("two providers in one body", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		body := `{"awsKms": {"enabled": false}, "azureKeyVault": {"enabled": false}}`
		code, httpStatus, seen := restPatch(t, h.rest.URL+"/v1/groups/"+group+"/encryptionAtRest", body)
		if code != codes.InvalidArgument || httpStatus != 400 || !strings.Contains(seen, "one provider") {
			t.Errorf("PATCH %s = %d %s, want 400 saying one provider per request", body, httpStatus, seen)
		}
		if len(h.emu.Requests()) != 0 {
			t.Errorf("PATCH %s reached Atlas: %v", body, h.emu.Requests())
		}
	})

	t.Run("typo in validateOnly changes nothing", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		_, httpStatus, seen := restPatch(t, h.rest.URL+"/v1/groups/"+group+"/encryptionAtRest?validateonly=true", contractExample)
		if httpStatus != 400 || !strings.Contains(seen, "validateonly") {
			t.Errorf("PATCH ?validateonly=true = %d %s, want 400 naming the parameter", httpStatus, seen)
		}
		if len(h.emu.Requests()) != 0 {
			t.Errorf("PATCH ?validateonly=true reached Atlas: %v", h.emu.Requests())
		}
	})

	t.Run("unknown field", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		_, httpStatus, seen := restPatch(t, h.rest.URL+"/v1/groups/"+group+"/encryptionAtRest", `{"awsKms": {"customerMasterKey": "x"}}`)
		if httpStatus != 400 || !strings.Contains(seen, "customerMasterKey") {
			t.Errorf("PATCH with an unknown field = %d %s, want 400 naming it", httpStatus, seen)
		}
	})

	t.Run("the Atlas path takes Atlas's own example and answers Atlas's errors", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		url := h.rest.URL + "/api/atlas/v1.0/groups/" + group + "/encryptionAtRest"
		code, httpStatus, seen := restPatch(t, url, contractExample)
		if code != codes.OK || httpStatus != 200 {
			t.Fatalf("PATCH %s %s = %d %s, want 200", url, contractExample, httpStatus, seen)
		}
		var want, got map[string]any
		_ = json.Unmarshal([]byte(contractExample), &want)
		if p := h.patches(); len(p) != 1 || json.Unmarshal([]byte(p[0]), &got) != nil || !cmp.Equal(want, got) {
			t.Errorf("Atlas received %v, want exactly %s", h.patches(), contractExample)
		}

		h.emu.SetProviderInUse(group, "awsKms", true)
		_, httpStatus, seen = restPatch(t, url, `{"awsKms": {"enabled": false}}`)
		var apiErr struct {
			Error     int    `json:"error"`
			ErrorCode string `json:"errorCode"`
		}
		if err := json.Unmarshal([]byte(seen), &apiErr); err != nil || httpStatus != 409 || apiErr.Error != 409 || apiErr.ErrorCode != "CANNOT_DISABLE_ENCRYPTION_AT_REST" {
			t.Errorf("disable in use on the Atlas path = %d %s, want Atlas's 409 CANNOT_DISABLE_ENCRYPTION_AT_REST", httpStatus, seen)
		}

		_, httpStatus, seen = restPatch(t, url, `{"awsKms": {"region": "nowhere"}}`)
		var badReq struct {
			ErrorCode        string `json:"errorCode"`
			BadRequestDetail struct {
				Fields []struct{ Field string } `json:"fields"`
			} `json:"badRequestDetail"`
		}
		if err := json.Unmarshal([]byte(seen), &badReq); err != nil || httpStatus != 400 || len(badReq.BadRequestDetail.Fields) != 1 || badReq.BadRequestDetail.Fields[0].Field != "awsKms.region" {
			t.Errorf("bad region on the Atlas path = %d %s, want 400 with badRequestDetail naming awsKms.region", httpStatus, seen)
		}
	})

	t.Run("Get on both paths", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		h.enable(t, group, contractExample)
		for _, path := range []string{"/v1/groups/", "/api/atlas/v1.0/groups/"} {
			res, err := http.Get(h.rest.URL + path + group + "/encryptionAtRest")
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			var doc struct {
				AWSKMS         map[string]any `json:"awsKms"`
				AzureKeyVault  map[string]any `json:"azureKeyVault"`
				GoogleCloudKMS map[string]any `json:"googleCloudKms"`
			}
			if err := json.Unmarshal(b, &doc); err != nil || res.StatusCode != 200 {
				t.Fatalf("GET %s = %d %s", path, res.StatusCode, b)
			}
			if doc.AWSKMS["enabled"] != true || doc.AWSKMS["region"] != "US_EAST_1" || doc.AzureKeyVault["enabled"] != false || doc.GoogleCloudKMS["valid"] != false {
				t.Errorf("GET %s = %s, want AWS enabled in US_EAST_1 and the other two disabled", path, b)
			}
			if strings.Contains(string(b), "secretAccessKey") || strings.Contains(string(b), "e2e-aws-SENTINEL") {
				t.Errorf("GET %s = %s, which carries a secret", path, b)
			}
		}
	})
}

func TestEndToEndGRPCErrorDetails(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	const group = "6a1b2c3d4e5f6a7b8c9d0e1f"
	h.enable(t, group, gcpEnable)
	h.emu.SetProviderInUse(group, "googleCloudKms", true)
	_, err := h.grpc.UpdateEncryptionAtRest(t.Context(), &encryptionv1.UpdateEncryptionAtRestRequest{
		GroupId: group,
		Config:  &encryptionv1.ProviderConfig{Provider: &encryptionv1.ProviderConfig_GoogleCloudKms{GoogleCloudKms: &encryptionv1.GoogleCloudKms{Enabled: new(bool)}}},
	})
	st := status.Convert(err)
	if st.Code() != codes.FailedPrecondition || !strings.Contains(st.Message(), "CANNOT_DISABLE_ENCRYPTION_AT_REST") {
		t.Fatalf("disable in use = %v, want FAILED_PRECONDITION naming CANNOT_DISABLE_ENCRYPTION_AT_REST", err)
	}
	var info *errdetails.ErrorInfo
	for _, d := range st.Details() {
		if i, ok := d.(*errdetails.ErrorInfo); ok {
			info = i
		}
	}
	// Since every Atlas errorCode has a remedy, it travels in the metadata.
	want := &errdetails.ErrorInfo{Reason: "CANNOT_DISABLE_ENCRYPTION_AT_REST", Domain: "cloud.mongodb.com", Metadata: map[string]string{"groupId": group, "provider": "googleCloudKms", "httpStatus": "409",
		"remedy": failure.AtlasCodes["CANNOT_DISABLE_ENCRYPTION_AT_REST"].Remedy}}
	if info == nil || info.Reason != want.Reason || info.Domain != want.Domain || !cmp.Equal(info.Metadata, want.Metadata) {
		t.Errorf("ErrorInfo = %v, want %v", info, want)
	}
}
