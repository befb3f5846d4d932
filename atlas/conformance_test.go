package atlas_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/google/go-cmp/cmp"

	"github.com/encryptiond/encryptiond/atlas"
	"github.com/encryptiond/encryptiond/atlas/atlastest"
)

// The conformance test checks both sides against Atlas's own OpenAPI
// schema: every request body the client sends, and every response the
// emulator gives, including errors and challenges.

const specEnv = "ATLAS_OPENAPI_SPEC"

// loadSpec loads Atlas's OpenAPI excerpt from $ATLAS_OPENAPI_SPEC or from
// ../shared/atlas/encryption-at-rest.openapi.json beside the module root,
// and skips the test if neither exists.
func loadSpec(t *testing.T) *openapi3.T {
	t.Helper()
	path := os.Getenv(specEnv)
	if path == "" {
		root, err := moduleRoot()
		if err != nil {
			t.Skipf("conformance: cannot find the module root (%v) and %s is not set", err, specEnv)
		}
		path = filepath.Join(root, "..", "shared", "atlas", "encryption-at-rest.openapi.json")
	}
	if _, err := os.Stat(path); err != nil {
		t.Skipf("conformance: Atlas OpenAPI spec not found at %s (set %s to its path): %v", path, specEnv, err)
	}
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromFile(path)
	if err != nil {
		t.Fatalf("loading %s: %v", path, err)
	}
	if err := doc.Validate(loader.Context); err != nil {
		t.Fatalf("validating %s: %v", path, err)
	}
	return doc
}

// moduleRoot walks up from the working directory to the directory with go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above %s", dir)
		}
		dir = parent
	}
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
	// The spec has only the v2 path; v1.0 uses the same schemas with
	// application/json.
	v1 := strings.Contains(x.path, "/v1.0/")
	op, err := findOperation(doc, x.method, strings.Replace(x.path, "/v1.0/", "/v2/", 1))
	if err != nil {
		t.Errorf("%s: %v", name, err)
		return
	}
	if x.fromClient && len(x.reqBody) > 0 {
		media := op.RequestBody.Value.Content.Get(atlastest.MediaTypeV2)
		if !v1 && x.reqContentType != atlastest.MediaTypeV2 {
			t.Errorf("%s: request Content-Type %q, want %q", name, x.reqContentType, atlastest.MediaTypeV2)
		}
		schema := media.Schema.Value
		if own := endpointRequestSchema(doc, x.path); own != nil {
			schema = own
		}
		validate(t, name+" request", schema, x.reqBody, openapi3.VisitAsRequest())
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
		validate(t, name+" response", media.Schema.Value, x.resBody, openapi3.VisitAsResponse())
		return
	}
	if ct != "application/json" {
		t.Errorf("%s: error Content-Type %q, want application/json", name, x.resContentType)
	}
	schema := doc.Components.Schemas["ApiError"].Value
	if r := op.Responses.Status(x.status); r != nil {
		schema = r.Value.Content.Get("application/json").Schema.Value
	}
	validate(t, name+" response", schema, x.resBody, openapi3.VisitAsResponse())
	var body struct {
		Error int `json:"error"`
	}
	if _ = json.Unmarshal(x.resBody, &body); body.Error != x.status {
		t.Errorf("%s: ApiError.error = %d, want %d", name, body.Error, x.status)
	}
}

func validate(t *testing.T, name string, schema *openapi3.Schema, body []byte, opts ...openapi3.SchemaValidationOption) {
	t.Helper()
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Errorf("%s: body is not JSON: %v", name, err)
		return
	}
	opts = append(opts, openapi3.MultiErrors(), openapi3.EnableFormatValidation())
	if err := schema.VisitJSON(v, opts...); err != nil {
		t.Errorf("%s: does not conform to the spec: %v\nbody: %s", name, err, body)
	}
}

// findOperation returns the spec's operation for method on path, whose
// segments match the template's literally or fill its {variables}.
func findOperation(doc *openapi3.T, method, path string) (*openapi3.Operation, error) {
	segs := strings.Split(strings.Trim(path, "/"), "/")
	for tmpl, item := range doc.Paths.Map() {
		want := strings.Split(strings.Trim(tmpl, "/"), "/")
		if len(want) != len(segs) {
			continue
		}
		match := true
		for i, w := range want {
			if !strings.HasPrefix(w, "{") && w != segs[i] {
				match = false
				break
			}
		}
		if match {
			if op := item.GetOperation(method); op != nil {
				return op, nil
			}
			return nil, fmt.Errorf("the spec has no %s operation on %s", method, tmpl)
		}
	}
	return nil, fmt.Errorf("no path of the spec matches %s", path)
}

// correctSpec fixes two defects of Atlas's schema of private endpoints,
// which otherwise no document could satisfy:
//
//   - regionName is typed as an object whose oneOf lists two string enums
//     (Azure's regions and AWS's). A region is a string, and names such as
//     US_EAST_2 are in both lists, so oneOf can never hold for them. Each
//     provider's schema gets its own list; the union schema, either.
//   - EARPrivateEndpoint is a oneOf with the discriminator cloudProvider,
//     which is read-only: a create body, {"regionName": …}, never has it.
//     endpointRequestSchema validates a create body against the schema of
//     the provider its path names instead.
func correctSpec(t *testing.T, doc *openapi3.T) {
	t.Helper()
	union := doc.Components.Schemas["EARPrivateEndpoint"].Value
	regions := union.Properties["regionName"].Value
	byTitle := map[string]*openapi3.SchemaRef{}
	for _, r := range regions.OneOf {
		byTitle[r.Value.Title] = r
	}
	aws, azure := byTitle["AWS Regions"], byTitle["Azure Regions"]
	if aws == nil || azure == nil {
		t.Fatalf("correctSpec: EARPrivateEndpoint.regionName has no AWS Regions and Azure Regions (titles %v)", byTitle)
	}
	doc.Components.Schemas["AWSKMSEARPrivateEndpoint"].Value.Properties["regionName"] = aws
	doc.Components.Schemas["AzureKeyVaultEARPrivateEndpoint"].Value.Properties["regionName"] = azure
	union.Properties["regionName"] = &openapi3.SchemaRef{Value: &openapi3.Schema{AnyOf: regions.OneOf}}
}

// endpointRequestSchema returns, for a path of private endpoints, the
// schema of the provider the path names (see correctSpec); nil otherwise.
func endpointRequestSchema(doc *openapi3.T, path string) *openapi3.Schema {
	switch {
	case strings.Contains(path, "/encryptionAtRest/AWS/privateEndpoints"):
		return doc.Components.Schemas["AWSKMSEARPrivateEndpoint"].Value
	case strings.Contains(path, "/encryptionAtRest/AZURE/privateEndpoints"):
		return doc.Components.Schemas["AzureKeyVaultEARPrivateEndpoint"].Value
	}
	return nil
}

// TestRegionListsAreAtlas checks the region lists against the spec's enums:
// AWSRegions is both awsKms.region's and an AWS private endpoint's, and
// AzureRegions an Azure private endpoint's.
func TestRegionListsAreAtlas(t *testing.T) {
	t.Parallel()
	doc := loadSpec(t)
	schemas := doc.Components.Schemas
	enum := func(s *openapi3.Schema) []string {
		var out []string
		for _, v := range s.Enum {
			out = append(out, v.(string))
		}
		return out
	}
	byTitle := map[string][]string{}
	for _, r := range schemas["EARPrivateEndpoint"].Value.Properties["regionName"].Value.OneOf {
		byTitle[r.Value.Title] = enum(r.Value)
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
	correctSpec(t, doc)
	clock := &testClock{now: time.Unix(1_700_000_000, 0)}
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

// testClock is a clock that moves only when told to.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}
