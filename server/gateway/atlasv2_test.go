package gateway_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"

	encryptionv1 "github.com/encryptiond/encryptiond/gen/atlas/encryption/v1"
	"github.com/encryptiond/encryptiond/server/paging"
)

const (
	mediaTypeV2 = "application/vnd.atlas.2023-01-01+json"
	v2Path      = "/api/atlas/v2/groups/" + groupID + "/encryptionAtRest"
	v2Endpoints = v2Path + "/AZURE/privateEndpoints"
)

// answer is a raw HTTP answer.
type answer struct {
	status int
	header http.Header
	body   string
}

// do sends a request to srv the way Atlas's documentation's curl examples
// do: headers as given, body as given.
func do(t *testing.T, srv *httptest.Server, method, path, body string, header ...string) answer {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, srv.URL+path, r)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return answer{res.StatusCode, res.Header, string(b)}
}

func endpointServer(t *testing.T) (*endpointService, *httptest.Server) {
	t.Helper()
	f := newEndpointService()
	h, _ := newGateway(t, f)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return f, srv
}

// apiErrorOf decodes an Atlas ApiError.
func apiErrorOf(t *testing.T, a answer) (code string, fields []string) {
	t.Helper()
	var e struct {
		Error            int    `json:"error"`
		ErrorCode        string `json:"errorCode"`
		Reason           string `json:"reason"`
		BadRequestDetail *struct {
			Fields []struct{ Field string } `json:"fields"`
		} `json:"badRequestDetail"`
	}
	if err := json.Unmarshal([]byte(a.body), &e); err != nil || e.Error != a.status || e.Reason == "" {
		t.Fatalf("answer %d %s is not Atlas's ApiError for its status: %v", a.status, a.body, err)
	}
	if e.BadRequestDetail != nil {
		for _, f := range e.BadRequestDetail.Fields {
			fields = append(fields, f.Field)
		}
	}
	return e.ErrorCode, fields
}

func TestAtlasV2MediaTypes(t *testing.T) {
	t.Parallel()
	_, srv := endpointServer(t)
	tests := []struct {
		name, method, path, body string
		header                   []string
		wantStatus               int
		wantType                 string
	}{
		{"GET asking for the version", "GET", v2Path, "", []string{"Accept", mediaTypeV2}, 200, mediaTypeV2},
		{"GET without Accept", "GET", v2Path, "", nil, 200, "application/json"},
		{"GET asking for JSON", "GET", v2Path, "", []string{"Accept", "application/json"}, 200, "application/json"},
		{"GET with a list and a quality", "GET", v2Path, "", []string{"Accept", "application/vnd.atlas.2099-01-01+json, application/vnd.atlas.2023-01-01+json;q=0.5"}, 200, mediaTypeV2},
		{"GET, another version or JSON", "GET", v2Path, "", []string{"Accept", "application/vnd.atlas.2099-01-01+json, */*"}, 200, "application/json"},
		{"GET, only another version", "GET", v2Path, "", []string{"Accept", "application/vnd.atlas.2099-01-01+json"}, 406, "application/json"},
		{"PATCH in the versioned type", "PATCH", v2Path, `{"awsKms": {"region": "US_WEST_2"}}`, []string{"Accept", mediaTypeV2, "Content-Type", mediaTypeV2}, 200, mediaTypeV2},
		{"PATCH in JSON", "PATCH", v2Path, `{"awsKms": {"region": "US_WEST_2"}}`, []string{"Accept", mediaTypeV2, "Content-Type", "application/json"}, 200, mediaTypeV2},
		{"PATCH in another version", "PATCH", v2Path, `{"awsKms": {"region": "US_WEST_2"}}`, []string{"Accept", mediaTypeV2, "Content-Type", "application/vnd.atlas.2099-01-01+json"}, 406, "application/json"},
		{"the v1.0 alias ignores versions", "GET", atlasPath, "", []string{"Accept", "application/vnd.atlas.2099-01-01+json"}, 200, "application/json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := do(t, srv, tt.method, tt.path, tt.body, tt.header...)
			if a.status != tt.wantStatus || a.header.Get("Content-Type") != tt.wantType {
				t.Errorf("%s %s = %d %s %s, want %d %s", tt.method, tt.path, a.status, a.header.Get("Content-Type"), a.body, tt.wantStatus, tt.wantType)
			}
			if tt.wantStatus == http.StatusNotAcceptable {
				if code, _ := apiErrorOf(t, a); code != "INVALID_VERSION_DATE" {
					t.Errorf("errorCode = %s, want INVALID_VERSION_DATE", code)
				}
			}
		})
	}
}

func TestAtlasV2Statuses(t *testing.T) {
	t.Parallel()
	f, srv := endpointServer(t)
	accept := []string{"Accept", mediaTypeV2, "Content-Type", "application/json"}

	a := do(t, srv, "POST", v2Endpoints, `{"regionName": "EUROPE_WEST"}`, accept...)
	if a.status != http.StatusAccepted || a.header.Get("Content-Type") != mediaTypeV2 {
		t.Errorf("POST on Atlas's path = %d %s, want 202 in the versioned type", a.status, a.header.Get("Content-Type"))
	}
	var ep map[string]any
	if err := json.Unmarshal([]byte(a.body), &ep); err != nil || ep["id"] != endpointID || ep["cloudProvider"] != "AZURE" || ep["status"] != "INITIATING" {
		t.Errorf("POST answered %s, want the endpoint in Atlas's spelling", a.body)
	}
	if a := do(t, srv, "POST", "/v1/groups/"+groupID+"/encryptionAtRest/AZURE/privateEndpoints", `{"regionName": "EUROPE_WEST"}`); a.status != http.StatusOK {
		t.Errorf("POST on /v1 = %d, want 200: /v1 is this service's API", a.status)
	}

	a = do(t, srv, "DELETE", v2Endpoints+"/"+endpointID, "", accept...)
	if a.status != http.StatusNoContent || a.body != "" || a.header.Get("Content-Type") != "" {
		t.Errorf("DELETE on Atlas's path = %d %q %q, want 204 without a body", a.status, a.header.Get("Content-Type"), a.body)
	}
	a = do(t, srv, "DELETE", v2Endpoints+"/"+endpointID+"?envelope=true", "", accept...)
	if a.status != http.StatusOK || a.body != `{"status":204,"content":null}` {
		t.Errorf("DELETE ?envelope=true = %d %s, want 200 {status: 204, content: null}", a.status, a.body)
	}
	if a := do(t, srv, "DELETE", "/v1/groups/"+groupID+"/encryptionAtRest/AZURE/privateEndpoints/"+endpointID, ""); a.status != http.StatusOK || !strings.Contains(a.body, endpointID) {
		t.Errorf("DELETE on /v1 = %d %s, want 200 with the endpoint", a.status, a.body)
	}

	want := []proto.Message{
		&encryptionv1.CreatePrivateEndpointRequest{GroupId: groupID, CloudProvider: encryptionv1.CloudProvider_AZURE, PrivateEndpoint: &encryptionv1.PrivateEndpoint{RegionName: "EUROPE_WEST"}},
		&encryptionv1.CreatePrivateEndpointRequest{GroupId: groupID, CloudProvider: encryptionv1.CloudProvider_AZURE, PrivateEndpoint: &encryptionv1.PrivateEndpoint{RegionName: "EUROPE_WEST"}},
		&encryptionv1.DeletePrivateEndpointRequest{GroupId: groupID, CloudProvider: encryptionv1.CloudProvider_AZURE, EndpointId: endpointID},
		&encryptionv1.DeletePrivateEndpointRequest{GroupId: groupID, CloudProvider: encryptionv1.CloudProvider_AZURE, EndpointId: endpointID},
		&encryptionv1.DeletePrivateEndpointRequest{GroupId: groupID, CloudProvider: encryptionv1.CloudProvider_AZURE, EndpointId: endpointID},
	}
	if diff := cmp.Diff(want, f.seen(), protocmp.Transform()); diff != "" {
		t.Errorf("requests the service saw (-want +got):\n%s", diff)
	}
}

func TestAtlasV2List(t *testing.T) {
	t.Parallel()
	f, srv := endpointServer(t)
	f.list = &encryptionv1.ListPrivateEndpointsResponse{
		PrivateEndpoints: []*encryptionv1.PrivateEndpoint{
			{Id: "aaaaaaaaaaaaaaaaaaaaaaaa", CloudProvider: encryptionv1.CloudProvider_AZURE, RegionName: "US_EAST_2", Status: encryptionv1.PrivateEndpoint_ACTIVE},
			{Id: "bbbbbbbbbbbbbbbbbbbbbbbb", CloudProvider: encryptionv1.CloudProvider_AZURE, RegionName: "EUROPE_WEST", Status: encryptionv1.PrivateEndpoint_PENDING_ACCEPTANCE, PrivateEndpointConnectionName: "pe-1"},
		},
		NextPageToken: "more",
		TotalSize:     5,
	}
	a := do(t, srv, "GET", v2Endpoints+"?itemsPerPage=2&pageNum=2&pretty=true", "", "Accept", mediaTypeV2)
	if a.status != http.StatusOK || a.header.Get("Content-Type") != mediaTypeV2 {
		t.Fatalf("GET the list = %d %s %s", a.status, a.header.Get("Content-Type"), a.body)
	}
	self := srv.URL + v2Endpoints
	want := `{
  "links": [
    {"rel": "self", "href": "` + self + `?itemsPerPage=2&pageNum=2"},
    {"rel": "previous", "href": "` + self + `?itemsPerPage=2&pageNum=1"},
    {"rel": "next", "href": "` + self + `?itemsPerPage=2&pageNum=3"}
  ],
  "results": [
    {"id": "aaaaaaaaaaaaaaaaaaaaaaaa", "cloudProvider": "AZURE", "regionName": "US_EAST_2", "status": "ACTIVE"},
    {"id": "bbbbbbbbbbbbbbbbbbbbbbbb", "cloudProvider": "AZURE", "regionName": "EUROPE_WEST", "status": "PENDING_ACCEPTANCE", "privateEndpointConnectionName": "pe-1"}
  ],
  "totalCount": 5
}`
	if diff := cmp.Diff(decodeString(t, want), decodeString(t, a.body)); diff != "" {
		t.Errorf("Atlas's page (-want +got):\n%s", diff)
	}
	if !strings.Contains(a.body, "\n  \"links\": [") {
		t.Errorf("pretty=true answered %q, want indented JSON", a.body)
	}
	wantReq := &encryptionv1.ListPrivateEndpointsRequest{GroupId: groupID, CloudProvider: encryptionv1.CloudProvider_AZURE, PageSize: 2, PageToken: paging.Token(paging.Page{Number: 2, Size: 2})}
	if diff := cmp.Diff([]proto.Message{wantReq}, f.seen(), protocmp.Transform()); diff != "" {
		t.Errorf("the RPC request (-want +got):\n%s", diff)
	}

	// includeCount=false leaves totalCount out; the last page has no next.
	f.list.NextPageToken = ""
	a = do(t, srv, "GET", v2Endpoints+"?includeCount=false", "", "Accept", mediaTypeV2)
	var page map[string]any
	if err := json.Unmarshal([]byte(a.body), &page); err != nil || page["totalCount"] != nil || len(page["links"].([]any)) != 1 {
		t.Errorf("GET ?includeCount=false = %s, want no totalCount and only a self link", a.body)
	}
	// Atlas's lists are their own envelope.
	a = do(t, srv, "GET", v2Endpoints+"?envelope=true", "", "Accept", mediaTypeV2)
	if err := json.Unmarshal([]byte(a.body), &page); err != nil || a.status != 200 || page["status"] != float64(200) || page["results"] == nil || page["content"] != nil {
		t.Errorf("GET ?envelope=true = %d %s, want the page with status 200 in it", a.status, a.body)
	}
	// /v1 keeps the RPC's own shape.
	a = do(t, srv, "GET", "/v1/groups/"+groupID+"/encryptionAtRest/AZURE/privateEndpoints?pageSize=2", "")
	if err := json.Unmarshal([]byte(a.body), &page); err != nil || page["privateEndpoints"] == nil || page["totalSize"] != float64(5) {
		t.Errorf("GET on /v1 = %s, want privateEndpoints and totalSize", a.body)
	}
}

func TestAtlasV2Refusals(t *testing.T) {
	t.Parallel()
	f, srv := endpointServer(t)
	tests := []struct {
		name, method, path string
		wantFields         []string
	}{
		{"itemsPerPage out of range", "GET", v2Endpoints + "?itemsPerPage=501", []string{"itemsPerPage"}},
		{"pageNum zero", "GET", v2Endpoints + "?pageNum=0", []string{"pageNum"}},
		{"pageNum not a number", "GET", v2Endpoints + "?pageNum=two", []string{"pageNum"}},
		{"the RPC's paging is not Atlas's", "GET", v2Endpoints + "?pageSize=2", []string{"pageSize"}},
		{"lowercase provider", "GET", "/api/atlas/v2/groups/" + groupID + "/encryptionAtRest/azure/privateEndpoints", []string{"cloudProvider"}},
		{"provider as a number", "GET", "/api/atlas/v2/groups/" + groupID + "/encryptionAtRest/2/privateEndpoints", []string{"cloudProvider"}},
		{"no provider", "GET", "/v1/groups/" + groupID + "/encryptionAtRest/CLOUD_PROVIDER_UNSPECIFIED/privateEndpoints/" + endpointID, []string{"cloud_provider"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := do(t, srv, tt.method, tt.path, "", "Accept", mediaTypeV2)
			if a.status != http.StatusBadRequest {
				t.Fatalf("%s %s = %d %s, want 400", tt.method, tt.path, a.status, a.body)
			}
			if strings.HasPrefix(tt.path, "/api/atlas/") {
				if _, fields := apiErrorOf(t, a); !cmp.Equal(fields, tt.wantFields) {
					t.Errorf("ApiError fields = %v, want %v", fields, tt.wantFields)
				}
			} else if !strings.Contains(a.body, `"field":"`+tt.wantFields[0]+`"`) {
				t.Errorf("AIP-193 body %s, want a violation of %s", a.body, tt.wantFields[0])
			}
		})
	}
	// GCP is spelled right: the service refuses it, with its reason.
	f.err = status.Error(codes.InvalidArgument, "cloud_provider: Atlas offers no private endpoints for Google Cloud KMS")
	a := do(t, srv, "GET", "/api/atlas/v2/groups/"+groupID+"/encryptionAtRest/GCP/privateEndpoints", "", "Accept", mediaTypeV2)
	if a.status != http.StatusBadRequest || !strings.Contains(a.body, "Google Cloud KMS") || len(f.seen()) != 1 {
		t.Errorf("GET …/GCP/privateEndpoints = %d %s, want the service's refusal", a.status, a.body)
	}
}

func decodeString(t *testing.T, s string) any {
	t.Helper()
	return decode(t, []byte(s))
}
