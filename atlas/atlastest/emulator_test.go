package atlastest_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/icholy/digest"
	"go.uber.org/goleak"

	"github.com/encryptiond/encryptiond/atlas"
	"github.com/encryptiond/encryptiond/atlas/atlastest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const (
	pub, priv      = "pub", "priv"
	clientID       = "client-id"
	clientSecret   = "client-secret"
	group          = "5f4e3d2c1b0a998877665544"
	roleID         = "32b6e34b3d91647abb20e7b8"
	resourceV2     = "/api/atlas/v2/groups/" + group + "/encryptionAtRest"
	resourceV1     = "/api/atlas/v1.0/groups/" + group + "/encryptionAtRest"
	secretSentinel = "SECRET-VALUE-7f3a"
)

func config() atlastest.EmulatorConfig {
	return atlastest.EmulatorConfig{PublicKey: pub, PrivateKey: priv, ClientID: clientID, ClientSecret: clientSecret}
}

// response is a raw answer from the emulator.
type response struct {
	status int
	header http.Header
	body   []byte
}

// apiError decodes an ApiError body.
func (r response) apiError(t *testing.T) (code string, fields []atlas.FieldViolation) {
	t.Helper()
	var doc struct {
		Error            int    `json:"error"`
		ErrorCode        string `json:"errorCode"`
		BadRequestDetail *struct {
			Fields []atlas.FieldViolation `json:"fields"`
		} `json:"badRequestDetail"`
	}
	if err := json.Unmarshal(r.body, &doc); err != nil {
		t.Fatalf("error body %s: %v", r.body, err)
	}
	if doc.Error != r.status {
		t.Errorf("ApiError.error = %d, want %d", doc.Error, r.status)
	}
	if doc.BadRequestDetail != nil {
		fields = doc.BadRequestDetail.Fields
	}
	return doc.ErrorCode, fields
}

// harness sends raw requests to an emulator with a bearer token.
type harness struct {
	t     *testing.T
	emu   *atlastest.Emulator
	srv   *httptest.Server
	token string
}

func newHarness(t *testing.T, cfg atlastest.EmulatorConfig) *harness {
	t.Helper()
	emu, srv := atlastest.NewServer(t, cfg)
	h := &harness{t: t, emu: emu, srv: srv}
	res := h.do("POST", "/api/oauth/token", map[string]string{
		"Authorization": "Basic " + basic(clientID, clientSecret),
		"Content-Type":  "application/x-www-form-urlencoded",
	}, "grant_type=client_credentials")
	var tok struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
		ExpiresIn   int    `json:"expires_in"`
	}
	if err := json.Unmarshal(res.body, &tok); err != nil || tok.TokenType != "Bearer" || tok.ExpiresIn <= 0 {
		t.Fatalf("token response %d %s: %v", res.status, res.body, err)
	}
	h.token = tok.AccessToken
	return h
}

func basic(user, pass string) string {
	r, _ := http.NewRequest("GET", "/", nil)
	r.SetBasicAuth(user, pass)
	return strings.TrimPrefix(r.Header.Get("Authorization"), "Basic ")
}

func (h *harness) do(method, path string, headers map[string]string, body string) response {
	h.t.Helper()
	req, err := http.NewRequestWithContext(h.t.Context(), method, h.srv.URL+path, strings.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	res, err := h.srv.Client().Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return response{res.StatusCode, res.Header, b}
}

// api sends an authenticated v2 request.
func (h *harness) api(method, path, body string) response {
	h.t.Helper()
	return h.do(method, path, map[string]string{
		"Authorization": "Bearer " + h.token,
		"Accept":        atlastest.MediaTypeV2,
		"Content-Type":  atlastest.MediaTypeV2,
	}, body)
}

const (
	awsWhole   = `{"awsKms":{"enabled":true,"customerMasterKeyID":"030gce02-586d-48d2-a966-05ea954fde0g","region":"US_EAST_1","roleId":"` + roleID + `"}}`
	azureWhole = `{"azureKeyVault":{"enabled":true,"azureEnvironment":"AZURE","subscriptionID":"a0a1a2a3-b0b1-4c0c-8d0d-e0e1e2e3e4e5","resourceGroupName":"rg","keyVaultName":"kv","keyIdentifier":"https://kv.vault.azure.net/keys/k/1","clientID":"f0f1f2f3-a0a1-4b0b-9c0c-d0d1d2d3d4d5","tenantID":"e0e1e2e3-a0a1-4b0b-ac0c-d0d1d2d3d4d5","secret":"` + secretSentinel + `"}}`
	gcpWhole   = `{"googleCloudKms":{"enabled":true,"keyVersionResourceID":"projects/p/locations/l/keyRings/r/cryptoKeys/k/cryptoKeyVersions/1","serviceAccountKey":"{\"private_key\":\"` + secretSentinel + `\"}"}}`
)

// TestRules walks one project through Atlas's update rules; each step
// depends on the state the previous ones left.
func TestRules(t *testing.T) {
	t.Parallel()
	cfg := config()
	cfg.AutoCreateGroups = true
	h := newHarness(t, cfg)
	h.emu.SetProviderInUse(group, atlastest.ProviderAzure, true)
	steps := []struct {
		name       string
		body       string
		wantStatus int
		wantCode   string
		wantFields []string
		check      func(t *testing.T, got atlas.EncryptionAtRest)
	}{
		{name: "invalid JSON", body: `{"awsKms":`, wantStatus: 400, wantCode: "INVALID_JSON"},
		{name: "not an object", body: `[1]`, wantStatus: 400, wantCode: "INVALID_JSON"},
		{name: "unknown top-level field", body: `{"bogus":"` + secretSentinel + `"}`, wantStatus: 400, wantCode: "INVALID_ATTRIBUTE", wantFields: []string{"bogus"}},
		{name: "unknown provider field", body: `{"awsKms":{"enabled":true,"kmsKey":"x"}}`, wantStatus: 400, wantCode: "INVALID_ATTRIBUTE", wantFields: []string{"awsKms.kmsKey"}},
		{name: "wrong type", body: `{"awsKms":{"enabled":"yes"}}`, wantStatus: 400, wantCode: "INVALID_ATTRIBUTE", wantFields: []string{"awsKms.enabled"}},
		{name: "provider not an object", body: `{"awsKms":true}`, wantStatus: 400, wantCode: "INVALID_ATTRIBUTE", wantFields: []string{"awsKms"}},
		{name: "bad region", body: `{"awsKms":{"region":"MARS_1"}}`, wantStatus: 400, wantCode: "INVALID_ENUM_VALUE", wantFields: []string{"awsKms.region"}},
		{name: "bad azure environment", body: `{"azureKeyVault":{"azureEnvironment":"AZURE_GERMANY"}}`, wantStatus: 400, wantCode: "INVALID_ENUM_VALUE", wantFields: []string{"azureKeyVault.azureEnvironment"}},
		{name: "bad roleId", body: `{"awsKms":{"roleId":"XYZ"}}`, wantStatus: 400, wantCode: "INVALID_ATTRIBUTE", wantFields: []string{"awsKms.roleId"}},
		{name: "short accessKeyID", body: `{"awsKms":{"accessKeyID":"short"}}`, wantStatus: 400, wantCode: "INVALID_ATTRIBUTE", wantFields: []string{"awsKms.accessKeyID"}},
		{name: "bad azure uuid", body: `{"azureKeyVault":{"tenantID":"nope"}}`, wantStatus: 400, wantCode: "INVALID_ATTRIBUTE", wantFields: []string{"azureKeyVault.tenantID"}},
		{name: "bad key identifier", body: `{"azureKeyVault":{"keyIdentifier":"kv/k"}}`, wantStatus: 400, wantCode: "AZURE_KEY_VAULT_KEY_IDENTIFIER_INVALID_FORMAT", wantFields: []string{"azureKeyVault.keyIdentifier"}},
		{name: "bad gcp key version", body: `{"googleCloudKms":{"keyVersionResourceID":"k1"}}`, wantStatus: 400, wantCode: "INVALID_ATTRIBUTE", wantFields: []string{"googleCloudKms.keyVersionResourceID"}},
		{name: "enable AWS partially", body: `{"awsKms":{"enabled":true,"region":"US_EAST_1"}}`, wantStatus: 400, wantCode: "MISSING_ATTRIBUTE",
			wantFields: []string{"awsKms.customerMasterKeyID", "awsKms.roleId"}},
		{name: "AWS change before enabling", body: `{"awsKms":{"region":"US_EAST_1"}}`, wantStatus: 400, wantCode: "MISSING_ATTRIBUTE",
			wantFields: []string{"awsKms.enabled", "awsKms.customerMasterKeyID", "awsKms.roleId"}},
		{name: "AWS static creds half", body: `{"awsKms":{"enabled":true,"region":"US_EAST_1","customerMasterKeyID":"k","accessKeyID":"AKIAIOSFODNN7EXAMPLE"}}`,
			wantStatus: 400, wantCode: "MISSING_ATTRIBUTE", wantFields: []string{"awsKms.secretAccessKey"}},
		{name: "azure missing auth", body: `{"azureKeyVault":{"enabled":true,"azureEnvironment":"AZURE","subscriptionID":"a0a1a2a3-b0b1-4c0c-8d0d-e0e1e2e3e4e5","resourceGroupName":"rg","keyVaultName":"kv","keyIdentifier":"https://kv.vault.azure.net/keys/k/1"}}`,
			wantStatus: 400, wantCode: "MISSING_ATTRIBUTE", wantFields: []string{"azureKeyVault.roleId"}},
		{name: "gcp missing auth", body: `{"googleCloudKms":{"enabled":true,"keyVersionResourceID":"projects/p/locations/l/keyRings/r/cryptoKeys/k/cryptoKeyVersions/1"}}`,
			wantStatus: 400, wantCode: "MISSING_ATTRIBUTE", wantFields: []string{"googleCloudKms.serviceAccountKey"}},
		{name: "empty provider docs change nothing", body: `{"awsKms":{},"azureKeyVault":{},"googleCloudKms":{}}`, wantStatus: 200,
			check: func(t *testing.T, got atlas.EncryptionAtRest) {
				if *got.AWSKMS.Enabled || *got.AzureKeyVault.Enabled || *got.GoogleCloudKMS.Enabled {
					t.Errorf("after {} docs: %+v, want all disabled", got)
				}
			}},
		{name: "disable unconfigured", body: `{"awsKms":{"enabled":false}}`, wantStatus: 200},
		{name: "enable AWS whole", body: awsWhole, wantStatus: 200, check: func(t *testing.T, got atlas.EncryptionAtRest) {
			want := &atlas.AWSKMSConfiguration{Enabled: ptr(true), CustomerMasterKeyID: ptr("030gce02-586d-48d2-a966-05ea954fde0g"),
				Region: ptr("US_EAST_1"), RequirePrivateNetworking: ptr(false), Valid: ptr(true)}
			if diff := cmp.Diff(want, got.AWSKMS); diff != "" {
				t.Errorf("awsKms mismatch (-want +got):\n%s", diff)
			}
		}},
		{name: "AWS partial change merged", body: `{"awsKms":{"region":"EU_WEST_1"}}`, wantStatus: 200, check: func(t *testing.T, got atlas.EncryptionAtRest) {
			if *got.AWSKMS.Region != "EU_WEST_1" || *got.AWSKMS.CustomerMasterKeyID != "030gce02-586d-48d2-a966-05ea954fde0g" {
				t.Errorf("after merge awsKms = %+v, want new region and old key", got.AWSKMS)
			}
		}},
		{name: "AWS switch to static creds half", body: `{"awsKms":{"accessKeyID":"AKIAIOSFODNN7EXAMPLE"}}`, wantStatus: 400, wantCode: "MISSING_ATTRIBUTE", wantFields: []string{"awsKms.secretAccessKey"}},
		{name: "disable with extra fields", body: `{"awsKms":{"enabled":false,"region":"EU_WEST_1"}}`, wantStatus: 400, wantCode: "INVALID_ATTRIBUTE", wantFields: []string{"awsKms.enabled"}},
		{name: "enable azure whole", body: azureWhole, wantStatus: 200, check: func(t *testing.T, got atlas.EncryptionAtRest) {
			if !*got.AzureKeyVault.Enabled || got.AzureKeyVault.Secret != nil || *got.AzureKeyVault.KeyVaultName != "kv" {
				t.Errorf("azureKeyVault = %+v, want enabled, no secret", got.AzureKeyVault)
			}
		}},
		{name: "disable azure in use", body: `{"azureKeyVault":{"enabled":false}}`, wantStatus: 409, wantCode: "CANNOT_DISABLE_ENCRYPTION_AT_REST"},
		{name: "all or nothing: AWS change not applied on 409", body: `{"awsKms":{"region":"US_WEST_2"},"azureKeyVault":{"enabled":false}}`, wantStatus: 409, wantCode: "CANNOT_DISABLE_ENCRYPTION_AT_REST",
			check: func(t *testing.T, got atlas.EncryptionAtRest) {
				if *got.AWSKMS.Region != "EU_WEST_1" {
					t.Errorf("awsKms.region = %s after a refused PATCH, want EU_WEST_1", *got.AWSKMS.Region)
				}
			}},
		{name: "enable gcp with key", body: gcpWhole, wantStatus: 200},
		{name: "gcp to roleId", body: `{"googleCloudKms":{"roleId":"` + roleID + `"}}`, wantStatus: 200, check: func(t *testing.T, got atlas.EncryptionAtRest) {
			if got.GoogleCloudKMS.RoleID == nil || *got.GoogleCloudKMS.RoleID != roleID || got.GoogleCloudKMS.ServiceAccountKey != nil {
				t.Errorf("googleCloudKms = %+v, want roleId returned and no key", got.GoogleCloudKMS)
			}
		}},
		{name: "gcp key refused once roleId set", body: `{"googleCloudKms":{"serviceAccountKey":"{}"}}`, wantStatus: 400, wantCode: "INVALID_ATTRIBUTE", wantFields: []string{"googleCloudKms.serviceAccountKey"}},
		{name: "search nodes", body: `{"enabledForSearchNodes":true}`, wantStatus: 200, check: func(t *testing.T, got atlas.EncryptionAtRest) {
			if !*got.EnabledForSearchNodes {
				t.Errorf("enabledForSearchNodes = false, want true")
			}
		}},
		{name: "disable AWS", body: `{"awsKms":{"enabled":false}}`, wantStatus: 200, check: func(t *testing.T, got atlas.EncryptionAtRest) {
			want := &atlas.AWSKMSConfiguration{Enabled: ptr(false), Valid: ptr(false)}
			if diff := cmp.Diff(want, got.AWSKMS); diff != "" {
				t.Errorf("awsKms after disable mismatch (-want +got):\n%s", diff)
			}
		}},
		{name: "AWS change after disable needs whole doc", body: `{"awsKms":{"region":"EU_WEST_1"}}`, wantStatus: 400, wantCode: "MISSING_ATTRIBUTE",
			wantFields: []string{"awsKms.enabled", "awsKms.customerMasterKeyID", "awsKms.roleId"}},
	}
	for _, s := range steps { // sequential: the state carries over
		res := h.api("PATCH", resourceV2, s.body)
		if res.status != s.wantStatus {
			t.Fatalf("%s: PATCH(%s) = %d %s, want %d", s.name, s.body, res.status, res.body, s.wantStatus)
		}
		if strings.Contains(string(res.body), secretSentinel) {
			t.Errorf("%s: PATCH() answer %s echoes a secret", s.name, res.body)
		}
		if s.wantStatus != 200 {
			code, fields := res.apiError(t)
			var names []string
			for _, f := range fields {
				names = append(names, f.Field)
			}
			if code != s.wantCode || !cmp.Equal(names, s.wantFields) {
				t.Errorf("%s: PATCH(%s) = %s %v, want %s %v", s.name, s.body, code, names, s.wantCode, s.wantFields)
			}
			if s.check != nil {
				s.check(t, h.emu.State(group))
			}
			continue
		}
		if ct := res.header.Get("Content-Type"); ct != atlastest.MediaTypeV2 {
			t.Errorf("%s: Content-Type = %q, want %q", s.name, ct, atlastest.MediaTypeV2)
		}
		var got atlas.EncryptionAtRest
		if err := json.Unmarshal(res.body, &got); err != nil {
			t.Fatalf("%s: PATCH() body %s: %v", s.name, res.body, err)
		}
		if got.AWSKMS == nil || got.AzureKeyVault == nil || got.GoogleCloudKMS == nil || got.EnabledForSearchNodes == nil {
			t.Errorf("%s: PATCH() = %s, want all three providers and enabledForSearchNodes", s.name, res.body)
		}
		if got.AWSKMS.RoleID != nil {
			t.Errorf("%s: PATCH() returned awsKms.roleId, want it write-only in v2", s.name)
		}
		if diff := cmp.Diff(h.emu.State(group), got); diff != "" {
			t.Errorf("%s: State() differs from the PATCH answer (-state +answer):\n%s", s.name, diff)
		}
		if s.check != nil {
			s.check(t, got)
		}
	}
	// v1.0 returns the AWS roleId once configured; GET answers like PATCH.
	h.api("PATCH", resourceV2, awsWhole)
	res := h.do("GET", resourceV1, map[string]string{"Authorization": "Bearer " + h.token}, "")
	var v1 atlas.EncryptionAtRest
	if err := json.Unmarshal(res.body, &v1); err != nil || res.status != 200 || v1.AWSKMS.RoleID == nil {
		t.Errorf("GET v1.0 = %d %s, want 200 with awsKms.roleId", res.status, res.body)
	}
	if ct := res.header.Get("Content-Type"); ct != atlastest.MediaTypeJSON {
		t.Errorf("GET v1.0 Content-Type = %q, want %q", ct, atlastest.MediaTypeJSON)
	}
}

func TestKeyValid(t *testing.T) {
	t.Parallel()
	cfg := config()
	cfg.AutoCreateGroups = true
	h := newHarness(t, cfg)
	h.api("PATCH", resourceV2, awsWhole)
	h.emu.SetKeyValid(group, atlastest.ProviderAWS, false)
	if got := h.emu.State(group); *got.AWSKMS.Valid || !*got.AWSKMS.Enabled {
		t.Errorf("State() after SetKeyValid(false) = %+v, want enabled and not valid", got.AWSKMS)
	}
	h.emu.SetKeyValid(group, atlastest.ProviderAWS, true)
	if got := h.emu.State(group); !*got.AWSKMS.Valid {
		t.Errorf("State() after SetKeyValid(true) = %+v, want valid", got.AWSKMS)
	}
}

func TestResourceErrors(t *testing.T) {
	t.Parallel()
	h := newHarness(t, config()) // AutoCreateGroups off
	h.emu.AddGroup(group)
	bearer := "Bearer "
	tests := []struct {
		name       string
		method     string
		path       string
		headers    map[string]string
		wantStatus int
		wantCode   string
	}{
		{"no Accept", "GET", resourceV2, map[string]string{}, 406, "INVALID_VERSION_DATE"},
		{"wildcard Accept", "GET", resourceV2, map[string]string{"Accept": "*/*"}, 406, "INVALID_VERSION_DATE"},
		{"unknown version", "GET", resourceV2, map[string]string{"Accept": "application/vnd.atlas.2099-01-01+json"}, 406, "INVALID_VERSION_DATE"},
		{"versioned Accept with charset", "GET", resourceV2, map[string]string{"Accept": "application/vnd.atlas.2023-01-01+json; charset=utf-8"}, 200, ""},
		{"v1.0 without Accept", "GET", resourceV1, map[string]string{}, 200, ""},
		{"unknown group", "GET", "/api/atlas/v2/groups/0123456789abcdef01234567/encryptionAtRest", map[string]string{"Accept": atlastest.MediaTypeV2}, 404, "GROUP_NOT_FOUND"},
		{"malformed group", "GET", "/api/atlas/v2/groups/XYZ/encryptionAtRest", map[string]string{"Accept": atlastest.MediaTypeV2}, 400, "INVALID_ATTRIBUTE"},
		{"unknown path", "GET", "/api/atlas/v2/groups/" + group + "/databaseUsers", map[string]string{"Accept": atlastest.MediaTypeV2}, 404, "RESOURCE_NOT_FOUND"},
		{"method not allowed", "DELETE", resourceV2, map[string]string{"Accept": atlastest.MediaTypeV2}, 405, "METHOD_NOT_ALLOWED"},
		{"bad bearer token", "GET", resourceV2, map[string]string{"Accept": atlastest.MediaTypeV2, "Authorization": "Bearer nope"}, 401, "UNAUTHORIZED"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			headers := map[string]string{"Authorization": bearer + h.token}
			for k, v := range tt.headers {
				headers[k] = v
			}
			res := h.do(tt.method, tt.path, headers, "")
			if res.status != tt.wantStatus {
				t.Fatalf("%s %s = %d %s, want %d", tt.method, tt.path, res.status, res.body, tt.wantStatus)
			}
			if tt.wantCode == "" {
				return
			}
			if code, _ := res.apiError(t); code != tt.wantCode {
				t.Errorf("%s %s errorCode = %s, want %s", tt.method, tt.path, code, tt.wantCode)
			}
			if ct := res.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("%s %s Content-Type = %q, want application/json", tt.method, tt.path, ct)
			}
		})
	}
}

func TestPrettyAndEnvelope(t *testing.T) {
	t.Parallel()
	cfg := config()
	cfg.AutoCreateGroups = true
	h := newHarness(t, cfg)
	res := h.api("GET", resourceV2+"?pretty=true", "")
	if !strings.Contains(string(res.body), "\n  \"awsKms\"") {
		t.Errorf("GET ?pretty=true = %s, want indented JSON", res.body)
	}
	res = h.api("PATCH", resourceV2+"?envelope=true", `{"bogus":1}`)
	var env struct {
		Status  int `json:"status"`
		Content struct {
			ErrorCode string `json:"errorCode"`
		} `json:"content"`
	}
	if err := json.Unmarshal(res.body, &env); err != nil || res.status != 200 || env.Status != 400 || env.Content.ErrorCode != "INVALID_ATTRIBUTE" {
		t.Errorf("PATCH ?envelope=true = %d %s, want 200 wrapping the 400", res.status, res.body)
	}
}

func TestDigestChallenge(t *testing.T) {
	t.Parallel()
	h := newHarness(t, config())
	res := h.do("GET", resourceV2, map[string]string{"Accept": atlastest.MediaTypeV2}, "")
	if res.status != 401 {
		t.Fatalf("GET without credentials = %d, want 401", res.status)
	}
	chal := res.header.Get("WWW-Authenticate")
	c, err := digest.ParseChallenge(chal)
	if err != nil || c.Realm != "MMS Public API" || c.Algorithm != "MD5" || !c.SupportsQOP("auth") || c.Stale || c.Nonce == "" {
		t.Errorf("WWW-Authenticate = %q (%+v, %v), want Atlas's challenge", chal, c, err)
	}
	if !strings.HasPrefix(chal, `Digest realm="MMS Public API", domain="", nonce="`) || !strings.HasSuffix(chal, `", algorithm=MD5, qop="auth", stale=false`) {
		t.Errorf("WWW-Authenticate = %q, want Atlas's exact layout", chal)
	}
	if code, _ := res.apiError(t); code != "UNAUTHORIZED" {
		t.Errorf("401 errorCode = %q, want UNAUTHORIZED", code)
	}
}

// TestIndependentDigestClient uses icholy/digest's own Transport, a
// stateless-per-host client like curl --digest, against the emulator.
func TestIndependentDigestClient(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		user, pass string
		wantStatus int
	}{
		{"right keys", pub, priv, 200},
		{"wrong private key", pub, "nope", 401},
		{"wrong public key", "nope", priv, 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := config()
			cfg.AutoCreateGroups = true
			emu, srv := atlastest.NewServer(t, cfg)
			hc := &http.Client{Transport: &digest.Transport{Username: tt.user, Password: tt.pass, Transport: srv.Client().Transport}}
			req, _ := http.NewRequestWithContext(t.Context(), "GET", srv.URL+resourceV2, nil)
			req.Header.Set("Accept", atlastest.MediaTypeV2)
			res, err := hc.Do(req)
			if err != nil {
				t.Fatalf("GET: %v", err)
			}
			res.Body.Close()
			if res.StatusCode != tt.wantStatus {
				t.Errorf("GET with %s = %d, want %d", tt.name, res.StatusCode, tt.wantStatus)
			}
			if s := emu.Stats(); s.Challenges != 2 && tt.wantStatus == 401 || s.Challenges != 1 && tt.wantStatus == 200 {
				t.Errorf("Stats() = %+v, want %d challenges", s, map[int]int{200: 1, 401: 2}[tt.wantStatus])
			}
			srv.Client().CloseIdleConnections()
		})
	}
}

func TestTokenEndpoint(t *testing.T) {
	t.Parallel()
	cfg := config()
	cfg.TokenLifetime = 1500 * time.Millisecond
	h := newHarness(t, cfg)
	tests := []struct {
		name       string
		method     string
		auth       string
		body       string
		wantStatus int
		wantError  string
	}{
		{"wrong secret", "POST", basic(clientID, "nope"), "grant_type=client_credentials", 401, "invalid_client"},
		{"no auth", "POST", "", "grant_type=client_credentials", 401, "invalid_client"},
		{"wrong grant", "POST", basic(clientID, clientSecret), "grant_type=password", 400, "unsupported_grant_type"},
		{"GET", "GET", basic(clientID, clientSecret), "", 405, "invalid_request"},
		{"ok", "POST", basic(clientID, clientSecret), "grant_type=client_credentials", 200, ""},
	}
	for _, tt := range tests {
		headers := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
		if tt.auth != "" {
			headers["Authorization"] = "Basic " + tt.auth
		}
		res := h.do(tt.method, "/api/oauth/token", headers, tt.body)
		var doc struct {
			Error     string `json:"error"`
			ExpiresIn int    `json:"expires_in"`
		}
		_ = json.Unmarshal(res.body, &doc)
		if res.status != tt.wantStatus || doc.Error != tt.wantError {
			t.Errorf("%s: token = %d %s, want %d %q", tt.name, res.status, res.body, tt.wantStatus, tt.wantError)
		}
		if tt.wantStatus == 200 && doc.ExpiresIn != 1 {
			t.Errorf("%s: expires_in = %d, want 1 (1.5s truncated)", tt.name, doc.ExpiresIn)
		}
	}
}

func TestTokenLimit(t *testing.T) {
	t.Parallel()
	h := newHarness(t, config()) // one token issued
	headers := map[string]string{"Authorization": "Basic " + basic(clientID, clientSecret), "Content-Type": "application/x-www-form-urlencoded"}
	for range 99 {
		if res := h.do("POST", "/api/oauth/token", headers, "grant_type=client_credentials"); res.status != 200 {
			t.Fatalf("token = %d, want 200 below the limit", res.status)
		}
	}
	if res := h.do("POST", "/api/oauth/token", headers, "grant_type=client_credentials"); res.status != 403 {
		t.Errorf("101st token = %d %s, want 403", res.status, res.body)
	}
}

func TestInjectedStatusFaults(t *testing.T) {
	t.Parallel()
	cfg := config()
	cfg.AutoCreateGroups = true
	h := newHarness(t, cfg)
	h.emu.InjectFault(atlastest.Fault{Status: 429, RetryAfter: 1500 * time.Millisecond, Method: "PATCH", Times: 2})
	h.emu.InjectFault(atlastest.Fault{Status: 502, Body: "<html>bad gateway</html>"})
	tests := []struct {
		method, body     string
		wantStatus       int
		wantRetryAfter   string
		wantBodyContains string
	}{
		{"GET", "", 502, "", "<html>"},
		{"GET", "", 200, "", "awsKms"},
		{"PATCH", `{"enabledForSearchNodes":true}`, 429, "2", "RATE_LIMITED_TOKEN_BUCKET"},
		{"PATCH", `{"enabledForSearchNodes":true}`, 429, "2", "RATE_LIMITED_TOKEN_BUCKET"},
		{"PATCH", `{"enabledForSearchNodes":true}`, 200, "", "awsKms"},
	}
	for i, tt := range tests {
		res := h.api(tt.method, resourceV2, tt.body)
		if res.status != tt.wantStatus || res.header.Get("Retry-After") != tt.wantRetryAfter || !strings.Contains(string(res.body), tt.wantBodyContains) {
			t.Errorf("#%d %s = %d Retry-After %q %s, want %d %q containing %q", i, tt.method, res.status,
				res.header.Get("Retry-After"), res.body, tt.wantStatus, tt.wantRetryAfter, tt.wantBodyContains)
		}
	}
	if s := h.emu.Stats(); s.Faults != 3 {
		t.Errorf("Stats().Faults = %d, want 3", s.Faults)
	}
}

func TestFaultRate(t *testing.T) {
	t.Parallel()
	cfg := config()
	cfg.AutoCreateGroups = true
	h := newHarness(t, cfg)
	h.emu.SetFaultRate(1, 503)
	if res := h.api("GET", resourceV2, ""); res.status != 503 {
		t.Errorf("GET at fault rate 1 = %d, want 503", res.status)
	}
	h.emu.SetFaultRate(0)
	if res := h.api("GET", resourceV2, ""); res.status != 200 {
		t.Errorf("GET at fault rate 0 = %d, want 200", res.status)
	}
}

func TestLatency(t *testing.T) {
	t.Parallel()
	cfg := config()
	cfg.AutoCreateGroups = true
	h := newHarness(t, cfg)
	h.emu.SetLatency(100 * time.Millisecond)
	start := time.Now()
	h.api("GET", resourceV2, "")
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Errorf("GET with 100ms latency took %v, want at least 100ms", d)
	}
}

func TestControlEndpoints(t *testing.T) {
	t.Parallel()
	h := newHarness(t, config())
	post := func(path, body string) response {
		return h.do("POST", path, map[string]string{"Content-Type": "application/json"}, body)
	}
	steps := []struct {
		method, path, body string
		wantStatus         int
	}{
		{"POST", "/_emulator/groups?id=" + group, "", 200},
		{"POST", "/_emulator/faults", `{"status":429,"retryAfter":"2s","method":"GET"}`, 200},
		{"POST", "/_emulator/faults", `{"bogus":1}`, 400},
		{"POST", "/_emulator/latency?d=1ms", "", 200},
		{"POST", "/_emulator/latency?d=fast", "", 400},
		{"POST", "/_emulator/fault-rate?rate=0&statuses=500,503", "", 200},
		{"POST", "/_emulator/fault-rate?rate=2", "", 400},
		{"POST", "/_emulator/expire-nonces", "", 200},
		{"POST", "/_emulator/key-valid?group=" + group + "&provider=awsKms&valid=false", "", 200},
		{"POST", "/_emulator/provider-in-use?group=" + group + "&provider=gcp&inUse=true", "", 400},
		{"GET", "/_emulator/state?group=" + group, "", 200},
		{"GET", "/_emulator/nope", "", 404},
	}
	for _, s := range steps {
		var res response
		if s.method == "POST" {
			res = post(s.path, s.body)
		} else {
			res = h.do(s.method, s.path, nil, "")
		}
		if res.status != s.wantStatus {
			t.Errorf("%s %s = %d %s, want %d", s.method, s.path, res.status, res.body, s.wantStatus)
		}
	}
	res := h.api("GET", resourceV2, "")
	if res.status != 429 || res.header.Get("Retry-After") != "2" {
		t.Errorf("GET after POST /_emulator/faults = %d Retry-After %q, want 429 and 2", res.status, res.header.Get("Retry-After"))
	}
	res = h.do("GET", "/_emulator/stats", nil, "")
	var stats atlastest.EmulatorStats
	if err := json.Unmarshal(res.body, &stats); err != nil || stats.Gets != 1 || stats.Faults != 1 || stats.Tokens != 1 {
		t.Errorf("GET /_emulator/stats = %s, want 1 get, 1 fault, 1 token", res.body)
	}
	res = h.do("GET", "/_emulator/requests", nil, "")
	var reqs []atlastest.RecordedRequest
	if err := json.Unmarshal(res.body, &reqs); err != nil || len(reqs) != 1 || reqs[0].Accept != atlastest.MediaTypeV2 {
		t.Errorf("GET /_emulator/requests = %s, want the one GET", res.body)
	}
	post("/_emulator/reset-stats", "")
	if s := h.emu.Stats(); s != (atlastest.EmulatorStats{}) || len(h.emu.Requests()) != 0 {
		t.Errorf("after reset-stats Stats() = %+v, want zero", s)
	}
	q := url.Values{"group": {group}}
	res = h.do("GET", "/_emulator/state?"+q.Encode(), nil, "")
	var st atlas.EncryptionAtRest
	if err := json.Unmarshal(res.body, &st); err != nil || st.AWSKMS == nil {
		t.Errorf("GET /_emulator/state = %s, want a configuration", res.body)
	}
}

func ptr[T any](v T) *T { return &v }

// TestRequestsBounded checks that only the last MaxRecordedRequests
// requests are kept, oldest first.
func TestRequestsBounded(t *testing.T) {
	t.Parallel()
	cfg := config()
	cfg.AutoCreateGroups = true
	h := newHarness(t, cfg)
	const extra = 5
	for i := range atlastest.MaxRecordedRequests + extra {
		h.api("GET", resourceV2+"?n="+strconv.Itoa(i), "")
	}
	got := h.emu.Requests()
	if len(got) != atlastest.MaxRecordedRequests {
		t.Fatalf("len(Requests()) = %d, want %d", len(got), atlastest.MaxRecordedRequests)
	}
	for i, r := range got {
		if want := "n=" + strconv.Itoa(i+extra); r.Query != want {
			t.Fatalf("Requests()[%d].Query = %q, want %q", i, r.Query, want)
		}
	}
	h.emu.ResetRecords()
	h.api("GET", resourceV2+"?n=after", "")
	if got := h.emu.Requests(); len(got) != 1 || got[0].Query != "n=after" {
		t.Errorf("Requests() after ResetRecords and one GET = %+v, want that GET", got)
	}
}

// TestEmbedded checks DisableRecording and DisableControl: nothing is
// recorded, and the control endpoints are not there.
func TestEmbedded(t *testing.T) {
	t.Parallel()
	cfg := config()
	cfg.AutoCreateGroups = true
	cfg.DisableRecording = true
	cfg.DisableControl = true
	h := newHarness(t, cfg)
	if res := h.api("PATCH", resourceV2, awsWhole); res.status != http.StatusOK {
		t.Fatalf("PATCH = %d %s, want 200", res.status, res.body)
	}
	if got := h.emu.Requests(); len(got) != 0 {
		t.Errorf("Requests() = %+v, want none with DisableRecording", got)
	}
	for _, path := range []string{"/_emulator/requests", "/_emulator/stats", "/_emulator/state?group=" + group} {
		res := h.do("GET", path, nil, "")
		if res.status != http.StatusNotFound || strings.Contains(string(res.body), "roleId") {
			t.Errorf("GET %s = %d %s, want 404", path, res.status, res.body)
		}
	}
	res := h.do("POST", "/_emulator/faults", nil, `{"status":500}`)
	if res.status != http.StatusNotFound {
		t.Errorf("POST /_emulator/faults = %d %s, want 404", res.status, res.body)
	}
	if res := h.api("GET", resourceV2, ""); res.status != http.StatusOK {
		t.Errorf("GET after POST /_emulator/faults = %d, want 200: no fault was injected", res.status)
	}
}
