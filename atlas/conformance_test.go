package atlas_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/google/go-cmp/cmp"

	"github.com/encryptiond/encryptiond/atlas"
	"github.com/encryptiond/encryptiond/atlas/atlasspec"
	"github.com/encryptiond/encryptiond/atlas/atlastest"
)

// The conformance test checks both sides against Atlas's own OpenAPI
// schema: every request body the client sends, and every response the
// emulator gives, including errors and challenges.

// loadSpec loads Atlas's OpenAPI excerpt, corrected (see atlasspec).
func loadSpec(t *testing.T) *openapi3.T {
	t.Helper()
	return atlasspec.Load(t)
}

// exchange is one recorded request and its response.
type exchange struct {
	method, path, reqContentType, resContentType string
	status                                       int
	reqBody, resBody                             []byte
	fromClient                                   bool
}

// recorder is an http.RoundTripper that records exchanges.
type recorder struct {
	next       http.RoundTripper
	fromClient bool
	mu         sync.Mutex
	log        []exchange
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	var reqBody []byte
	if req.Body != nil {
		reqBody, _ = io.ReadAll(req.Body)
		req.Body.Close()
		req.Body = io.NopCloser(bytes.NewReader(reqBody))
	}
	res, err := r.next.RoundTrip(req)
	if err != nil {
		return res, err
	}
	resBody, _ := io.ReadAll(res.Body)
	res.Body.Close()
	res.Body = io.NopCloser(bytes.NewReader(resBody))
	r.mu.Lock()
	r.log = append(r.log, exchange{
		method: req.Method, path: req.URL.Path, status: res.StatusCode,
		reqContentType: req.Header.Get("Content-Type"), resContentType: res.Header.Get("Content-Type"),
		reqBody: reqBody, resBody: resBody, fromClient: r.fromClient,
	})
	r.mu.Unlock()
	return res, nil
}

func TestConformance(t *testing.T) {
	t.Parallel()
	doc := loadSpec(t)
	emu, srv := newEmulator(t)
	emu.SetProviderInUse(groupID, atlastest.ProviderGCP, true)
	rec := &recorder{next: srv.Client().Transport, fromClient: true}
	c := newClient(t, srv, atlas.WithHTTPClient(&http.Client{Transport: rec}), atlas.WithRetryPolicy(atlas.RetryPolicy{MaxAttempts: 1}))
	ctx := t.Context()

	// Everything the client can be asked to send, valid or not.
	updates := []*atlas.EncryptionAtRest{
		awsRoleConfig(),
		{AWSKMS: &atlas.AWSKMSConfiguration{Region: ptr("US_EAST_1"), RequirePrivateNetworking: ptr(true)}},
		{AWSKMS: &atlas.AWSKMSConfiguration{AccessKeyID: ptr("AKIAIOSFODNN7EXAMPLE"), SecretAccessKey: ptr("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")}},
		{AzureKeyVault: &atlas.AzureKeyVault{
			Enabled: ptr(true), AzureEnvironment: ptr("AZURE"),
			SubscriptionID: ptr("a0a1a2a3-b0b1-4c0c-8d0d-e0e1e2e3e4e5"), ResourceGroupName: ptr("rg"), KeyVaultName: ptr("vault"),
			KeyIdentifier: ptr("https://vault.vault.azure.net/keys/key/d891821e3d364e9eb88fbd3d11807b86"),
			ClientID:      ptr("f0f1f2f3-a0a1-4b0b-9c0c-d0d1d2d3d4d5"), TenantID: ptr("e0e1e2e3-a0a1-4b0b-ac0c-d0d1d2d3d4d5"), Secret: ptr("azure-secret"),
		}},
		{AzureKeyVault: &atlas.AzureKeyVault{RoleID: ptr(roleID)}},
		{GoogleCloudKMS: &atlas.GoogleCloudKMS{Enabled: ptr(true),
			KeyVersionResourceID: ptr("projects/p/locations/l/keyRings/r/cryptoKeys/k/cryptoKeyVersions/1"),
			ServiceAccountKey:    ptr(`{"type":"service_account"}`)}},
		{GoogleCloudKMS: &atlas.GoogleCloudKMS{RoleID: ptr(roleID)}},
		{GoogleCloudKMS: &atlas.GoogleCloudKMS{Enabled: ptr(false)}},                                  // 409: in use
		{GoogleCloudKMS: &atlas.GoogleCloudKMS{ServiceAccountKey: ptr(`{"type":"service_account"}`)}}, // 400: roleId set
		{AWSKMS: &atlas.AWSKMSConfiguration{Enabled: ptr(false)}},
		{AWSKMS: &atlas.AWSKMSConfiguration{Enabled: ptr(true)}}, // 400 MISSING_ATTRIBUTE
		{EnabledForSearchNodes: ptr(true)},
	}
	for _, u := range updates {
		_, _ = c.UpdateEncryptionAtRest(ctx, groupID, u)
		_, _ = c.GetEncryptionAtRest(ctx, groupID)
	}
	_, _ = c.GetEncryptionAtRest(ctx, "0123456789abcdef01234567"[:23]+"x") // 400
	v1 := newClient(t, srv, atlas.WithHTTPClient(&http.Client{Transport: rec}), atlas.WithAPIVersion(atlas.APIVersionV1))
	_, _ = v1.GetEncryptionAtRest(ctx, groupID)

	// Responses only the emulator can be made to give: raw requests.
	raw := &recorder{next: srv.Client().Transport}
	token := serviceToken(t, srv.URL, raw)
	rawRequests := []struct {
		method, path, accept, body string
	}{
		{"GET", "/api/atlas/v2/groups/" + groupID + "/encryptionAtRest", "", ""},                                      // 406
		{"GET", "/api/atlas/v2/groups/" + groupID + "/encryptionAtRest", "application/vnd.atlas.2099-01-01+json", ""}, // 406
		{"PATCH", "/api/atlas/v2/groups/" + groupID + "/encryptionAtRest", atlastest.MediaTypeV2, `{"awsKms":{"bogus":1}}`},
		{"PATCH", "/api/atlas/v2/groups/" + groupID + "/encryptionAtRest", atlastest.MediaTypeV2, `{"awsKms":{"region":"MARS_NORTH_1"}}`},
		{"PATCH", "/api/atlas/v2/groups/" + groupID + "/encryptionAtRest", atlastest.MediaTypeV2, `{"azureKeyVault":{"azureEnvironment":"AZURE_GERMANY"}}`},
		{"GET", "/api/atlas/v2/groups/" + groupID + "/encryptionAtRest?envelope=true", atlastest.MediaTypeV2, ""},
		{"PATCH", "/api/atlas/v2/groups/" + groupID + "/encryptionAtRest", atlastest.MediaTypeV2, `{"bogus":1}`},
		{"PATCH", "/api/atlas/v2/groups/" + groupID + "/encryptionAtRest", atlastest.MediaTypeV2, `{"awsKms":`},
		{"PATCH", "/api/atlas/v2/groups/" + groupID + "/encryptionAtRest", atlastest.MediaTypeV2, `{"awsKms":{"enabled":"yes"}}`},
		{"GET", "/api/atlas/v2/groups/" + groupID + "/encryptionAtRest?pretty=true", atlastest.MediaTypeV2, ""},
	}
	for _, r := range rawRequests {
		req, _ := http.NewRequestWithContext(ctx, r.method, srv.URL+r.path, strings.NewReader(r.body))
		req.Header.Set("Authorization", "Bearer "+token)
		if r.accept != "" {
			req.Header.Set("Accept", r.accept)
		}
		res, err := (&http.Client{Transport: raw}).Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", r.method, r.path, err)
		}
		res.Body.Close()
	}

	log := append(rec.log, raw.log...)
	statuses := map[int]int{}
	for _, x := range log {
		if x.path == "/api/oauth/token" {
			continue
		}
		statuses[x.status]++
		checkExchange(t, doc, x)
	}
	for _, s := range []int{200, 400, 401, 406, 409} {
		if statuses[s] == 0 {
			t.Errorf("conformance run produced no %d response, want at least one (got %v)", s, statuses)
		}
	}
}

// serviceToken fetches an access token from the emulator.
func serviceToken(t *testing.T, base string, rt http.RoundTripper) string {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), "POST", base+"/api/oauth/token", strings.NewReader("grant_type=client_credentials"))
	req.SetBasicAuth(testClientID, testClientSecret)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	res, err := (&http.Client{Transport: rt}).Do(req)
	if err != nil {
		t.Fatalf("token request: %v", err)
	}
	defer res.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(res.Body).Decode(&tok); err != nil || tok.AccessToken == "" {
		t.Fatalf("token response: %v", err)
	}
	return tok.AccessToken
}

// checkExchange validates x's request body (if the client sent it) and its
// response against the operation in doc.
func checkExchange(t *testing.T, doc *openapi3.T, x exchange) {
	t.Helper()
	name := fmt.Sprintf("%s %s -> %d", x.method, x.path, x.status)
	v1 := strings.Contains(x.path, "/v1.0/")
	op, err := atlasspec.Operation(doc, x.method, x.path)
	if err != nil {
		t.Errorf("%s: %v", name, err)
		return
	}
	if x.fromClient && len(x.reqBody) > 0 {
		if !v1 && x.reqContentType != atlastest.MediaTypeV2 {
			t.Errorf("%s: request Content-Type %q, want %q", name, x.reqContentType, atlastest.MediaTypeV2)
		}
		validate(t, name+" request", atlasspec.RequestSchema(doc, op, x.path), x.reqBody, true)
	}
	ct, _, _ := mime.ParseMediaType(x.resContentType)
	if x.status >= 200 && x.status < 300 {
		res := op.Responses.Status(x.status)
		if res == nil {
			t.Errorf("%s: the spec documents no %d answer for this operation", name, x.status)
			return
		}
		media := res.Value.Content.Get(atlastest.MediaTypeV2)
		if media == nil || media.Schema == nil {
			if len(x.resBody) > 0 {
				t.Errorf("%s: body %q, want none", name, x.resBody)
			}
			return
		}
		want := atlastest.MediaTypeV2
		if v1 {
			want = atlastest.MediaTypeJSON
		}
		if ct != want {
			t.Errorf("%s: response Content-Type %q, want %q", name, x.resContentType, want)
		}
		validate(t, name+" response", media.Schema.Value, x.resBody, false)
		return
	}
	if ct != "application/json" {
		t.Errorf("%s: error Content-Type %q, want application/json", name, x.resContentType)
	}
	schema := doc.Components.Schemas["ApiError"].Value
	if r := op.Responses.Status(x.status); r != nil {
		schema = r.Value.Content.Get("application/json").Schema.Value
	}
	validate(t, name+" response", schema, x.resBody, false)
	var body struct {
		Error int `json:"error"`
	}
	if _ = json.Unmarshal(x.resBody, &body); body.Error != x.status {
		t.Errorf("%s: ApiError.error = %d, want %d", name, body.Error, x.status)
	}
}

func validate(t *testing.T, name string, schema *openapi3.Schema, body []byte, request bool) {
	t.Helper()
	if err := atlasspec.Validate(schema, body, request); err != nil {
		t.Errorf("%s: %v", name, err)
	}
}

// TestRegionListsAreAtlas checks the region lists against the spec's enums:
// AWSRegions is both awsKms.region's and an AWS private endpoint's, and
// AzureRegions an Azure private endpoint's.
func TestRegionListsAreAtlas(t *testing.T) {
	t.Parallel()
	doc := loadSpec(t)
	schemas := doc.Components.Schemas
	enum := atlasspec.Enum
	byTitle := map[string][]string{}
	for title, r := range atlasspec.RegionLists(doc) {
		byTitle[title] = enum(r.Value)
	}
	tests := []struct {
		name      string
		got, want []string
	}{
		{"AWSRegions vs AWSKMSConfiguration.region", atlas.AWSRegions(), enum(schemas["AWSKMSConfiguration"].Value.Properties["region"].Value)},
		{"AWSRegions vs EARPrivateEndpoint's AWS Regions", atlas.AWSRegions(), byTitle["AWS Regions"]},
		{"AzureRegions vs EARPrivateEndpoint's Azure Regions", atlas.AzureRegions(), byTitle["Azure Regions"]},
	}
	for _, tt := range tests {
		if len(tt.want) == 0 {
			t.Errorf("%s: the spec has no such list", tt.name)
		}
		if diff := cmp.Diff(tt.want, tt.got); diff != "" {
			t.Errorf("%s (-spec +ours):\n%s", tt.name, diff)
		}
	}
}

// TestConformancePrivateEndpoints checks every request the client sends to
// private endpoints, and every answer the emulator gives them, through each
// step of their lifecycle, against the spec (as correctSpec corrects it).
func TestConformancePrivateEndpoints(t *testing.T) {
	t.Parallel()
	doc := loadSpec(t)
	clock := atlastest.NewClock(time.Unix(1_700_000_000, 0))
	cfg := emulatorConfig()
	cfg.Now, cfg.PrivateEndpointDelay = clock.Now, time.Minute
	emu, srv := atlastest.NewServer(t, cfg)
	rec := &recorder{next: srv.Client().Transport, fromClient: true}
	c := newClient(t, srv, atlas.WithHTTPClient(&http.Client{Transport: rec}), atlas.WithRetryPolicy(atlas.RetryPolicy{MaxAttempts: 1}),
		atlas.WithAPIVersion(atlas.APIVersionV1)) // private endpoints are v2 whatever the client's version
	ctx := t.Context()

	awsEP, err := c.CreatePrivateEndpoint(ctx, groupID, atlas.CloudProviderAWS, "US_EAST_1")
	if err != nil {
		t.Fatalf("CreatePrivateEndpoint(AWS) = %v", err)
	}
	var azure []*atlas.PrivateEndpoint
	for _, region := range []string{"US_EAST_2", "EUROPE_WEST", "US_WEST_2"} {
		ep, err := c.CreatePrivateEndpoint(ctx, groupID, atlas.CloudProviderAzure, region)
		if err != nil {
			t.Fatalf("CreatePrivateEndpoint(AZURE, %s) = %v", region, err)
		}
		azure = append(azure, ep)
	}
	// Requests Atlas refuses: only their answers must conform.
	invalid := &recorder{next: srv.Client().Transport}
	bad := newClient(t, srv, atlas.WithHTTPClient(&http.Client{Transport: invalid}), atlas.WithRetryPolicy(atlas.RetryPolicy{MaxAttempts: 1}))
	_, _ = bad.CreatePrivateEndpoint(ctx, groupID, atlas.CloudProviderAWS, "EUROPE_WEST") // 400: an Azure region
	_, _ = bad.CreatePrivateEndpoint(ctx, groupID, "GCP", "US_EAST_1")                    // 400
	list := func() {
		for _, o := range []atlas.ListOptions{{}, {ItemsPerPage: 2}, {ItemsPerPage: 2, PageNum: 2}, {ItemsPerPage: 2, PageNum: 3, OmitCount: true}} {
			_, _ = c.ListPrivateEndpoints(ctx, groupID, atlas.CloudProviderAzure, o)
		}
		_, _ = c.ListPrivateEndpoints(ctx, groupID, atlas.CloudProviderAWS, atlas.ListOptions{})
		_, _ = c.GetPrivateEndpoint(ctx, groupID, atlas.CloudProviderAWS, awsEP.ID)
		for _, ep := range azure {
			_, _ = c.GetPrivateEndpoint(ctx, groupID, atlas.CloudProviderAzure, ep.ID)
		}
	}
	list() // INITIATING
	clock.Advance(time.Minute)
	if err := emu.ApprovePrivateEndpoint(groupID, azure[0].ID); err != nil {
		t.Fatal(err)
	}
	if err := emu.FailPrivateEndpoint(groupID, azure[1].ID, "The key vault refused the connection."); err != nil {
		t.Fatal(err)
	}
	list() // ACTIVE, PENDING_ACCEPTANCE, FAILED
	if err := c.DeletePrivateEndpoint(ctx, groupID, atlas.CloudProviderAWS, awsEP.ID); err != nil {
		t.Fatalf("DeletePrivateEndpoint = %v", err)
	}
	list() // DELETING
	clock.Advance(time.Minute)
	list()                                                                                                        // gone: 404
	_, _ = bad.ListPrivateEndpoints(ctx, groupID, atlas.CloudProviderAzure, atlas.ListOptions{ItemsPerPage: 501}) // 400

	statuses := map[int]int{}
	seen := map[string]bool{}
	for _, x := range append(rec.log, invalid.log...) {
		statuses[x.status]++
		checkExchange(t, doc, x)
		var ep atlas.PrivateEndpoint
		if json.Unmarshal(x.resBody, &ep) == nil && ep.Status != "" {
			seen[ep.Status] = true
		}
	}
	for _, s := range []int{200, 202, 204, 400, 404} {
		if statuses[s] == 0 {
			t.Errorf("conformance run produced no %d response, want at least one (got %v)", s, statuses)
		}
	}
	for _, s := range []string{atlas.EndpointInitiating, atlas.EndpointPendingAcceptance, atlas.EndpointActive, atlas.EndpointFailed, atlas.EndpointDeleting} {
		if !seen[s] {
			t.Errorf("conformance run read no endpoint in status %s (saw %v)", s, seen)
		}
	}
}
