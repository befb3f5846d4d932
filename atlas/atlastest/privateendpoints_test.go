package atlastest_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/encryptiond/encryptiond/atlas"
	"github.com/encryptiond/encryptiond/atlas/atlastest"
)

const endpointsV2 = "/api/atlas/v2/groups/" + group + "/encryptionAtRest/"

// endpointHarness is an emulator whose private endpoints live for a minute
// in INITIATING and DELETING, on a clock the test moves.
func endpointHarness(t *testing.T) (*harness, *atlastest.Clock) {
	t.Helper()
	clk := atlastest.NewClock(time.Unix(1_700_000_000, 0))
	cfg := config()
	cfg.AutoCreateGroups = true
	cfg.Now, cfg.PrivateEndpointDelay = clk.Now, time.Minute
	return newHarness(t, cfg), clk
}

func (r response) endpoint(t *testing.T) atlas.PrivateEndpoint {
	t.Helper()
	var ep atlas.PrivateEndpoint
	if err := json.Unmarshal(r.body, &ep); err != nil {
		t.Fatalf("endpoint body %s: %v", r.body, err)
	}
	return ep
}

func TestPrivateEndpointLifecycles(t *testing.T) {
	t.Parallel()
	h, clk := endpointHarness(t)
	create := func(provider, region string) atlas.PrivateEndpoint {
		t.Helper()
		res := h.api("POST", endpointsV2+provider+"/privateEndpoints", `{"regionName": "`+region+`"}`)
		if res.status != http.StatusAccepted || res.header.Get("Content-Type") != atlastest.MediaTypeV2 {
			t.Fatalf("POST %s %s = %d %s %s, want 202 in the versioned media type", provider, region, res.status, res.header.Get("Content-Type"), res.body)
		}
		return res.endpoint(t)
	}
	status := func(ep atlas.PrivateEndpoint) (string, atlas.PrivateEndpoint) {
		t.Helper()
		res := h.api("GET", endpointsV2+ep.CloudProvider+"/privateEndpoints/"+ep.ID, "")
		if res.status == http.StatusNotFound {
			return "gone", atlas.PrivateEndpoint{}
		}
		got := res.endpoint(t)
		return got.Status, got
	}

	aws := create("AWS", "US_EAST_1")
	azure := create("AZURE", "US_EAST_2")
	failing := create("AZURE", "EUROPE_WEST")
	if aws.Status != "INITIATING" || aws.CloudProvider != "AWS" || aws.RegionName != "US_EAST_1" || len(aws.ID) != 24 {
		t.Errorf("created %+v, want an INITIATING AWS endpoint in US_EAST_1 with an id", aws)
	}
	if err := h.emu.ApprovePrivateEndpoint(group, aws.ID); err == nil {
		t.Errorf("ApprovePrivateEndpoint(AWS endpoint) = nil, want an error: only Azure endpoints wait for approval")
	}
	if err := h.emu.ApprovePrivateEndpoint(group, "0123456789abcdef01234567"); !errors.Is(err, atlastest.ErrNoSuchPrivateEndpoint) {
		t.Errorf("ApprovePrivateEndpoint(unknown) = %v, want ErrNoSuchPrivateEndpoint", err)
	}

	clk.Advance(time.Minute)
	if s, got := status(aws); s != "ACTIVE" || got.PrivateEndpointConnectionName == "" {
		t.Errorf("AWS endpoint after the delay: %s %+v, want ACTIVE with a connection name", s, got)
	}
	if s, got := status(azure); s != "PENDING_ACCEPTANCE" || got.PrivateEndpointConnectionName == "" {
		t.Errorf("Azure endpoint after the delay: %s %+v, want PENDING_ACCEPTANCE with the connection to approve", s, got)
	}
	// Approval and failure through the control routes.
	if res := h.do("POST", "/_emulator/private-endpoints/approve?group="+group+"&id="+azure.ID, nil, ""); res.status != http.StatusOK {
		t.Fatalf("POST /_emulator/private-endpoints/approve = %d %s", res.status, res.body)
	}
	if res := h.do("POST", "/_emulator/private-endpoints/fail?group="+group+"&id="+failing.ID+"&message=vault+refused", nil, ""); res.status != http.StatusOK {
		t.Fatalf("POST /_emulator/private-endpoints/fail = %d %s", res.status, res.body)
	}
	if res := h.do("POST", "/_emulator/private-endpoints/approve?group="+group+"&id=nope", nil, ""); res.status != http.StatusBadRequest {
		t.Errorf("approving an unknown endpoint = %d %s, want 400", res.status, res.body)
	}
	if s, _ := status(azure); s != "ACTIVE" {
		t.Errorf("approved Azure endpoint: %s, want ACTIVE", s)
	}
	if s, got := status(failing); s != "FAILED" || got.ErrorMessage != "vault refused" {
		t.Errorf("failed endpoint: %s %q, want FAILED with its errorMessage", s, got.ErrorMessage)
	}

	res := h.api("DELETE", endpointsV2+"AWS/privateEndpoints/"+aws.ID, "")
	if res.status != http.StatusNoContent || len(res.body) != 0 {
		t.Fatalf("DELETE = %d %q, want 204 without a body", res.status, res.body)
	}
	if s, _ := status(aws); s != "DELETING" {
		t.Errorf("after DELETE: %s, want DELETING", s)
	}
	if err := h.emu.FailPrivateEndpoint(group, aws.ID, "x"); err == nil {
		t.Errorf("FailPrivateEndpoint(DELETING endpoint) = nil, want an error")
	}
	clk.Advance(time.Minute)
	if s, _ := status(aws); s != "gone" {
		t.Errorf("a minute after DELETE: %s, want gone (404)", s)
	}
	res = h.api("DELETE", endpointsV2+"AWS/privateEndpoints/"+aws.ID, "")
	if code, _ := res.apiError(t); res.status != http.StatusNotFound || code != "RESOURCE_NOT_FOUND" {
		t.Errorf("DELETE of a gone endpoint = %d %s, want 404 RESOURCE_NOT_FOUND", res.status, res.body)
	}
	// An endpoint is found under its own provider only.
	if res := h.api("GET", endpointsV2+"AWS/privateEndpoints/"+azure.ID, ""); res.status != http.StatusNotFound {
		t.Errorf("GET of an Azure endpoint under AWS = %d, want 404", res.status)
	}
	if got := h.emu.Calls(); got["POST privateEndpoints"] != 3 || got["DELETE privateEndpoint"] != 2 {
		t.Errorf("Calls() = %v, want 3 creates and 2 deletes counted", got)
	}
}

func TestPrivateEndpointPages(t *testing.T) {
	t.Parallel()
	h, _ := endpointHarness(t)
	regions := []string{"US_EAST_2", "EUROPE_WEST", "UK_SOUTH", "JAPAN_EAST", "US_WEST_2"}
	var ids []string
	for _, r := range regions {
		ids = append(ids, h.api("POST", endpointsV2+"AZURE/privateEndpoints", `{"regionName":"`+r+`"}`).endpoint(t).ID)
	}
	h.api("POST", endpointsV2+"AWS/privateEndpoints", `{"regionName":"US_EAST_1"}`)
	type page struct {
		Links      []atlas.Link            `json:"links"`
		Results    []atlas.PrivateEndpoint `json:"results"`
		TotalCount *int                    `json:"totalCount"`
	}
	get := func(query string) page {
		t.Helper()
		res := h.api("GET", endpointsV2+"AZURE/privateEndpoints"+query, "")
		var p page
		if err := json.Unmarshal(res.body, &p); err != nil || res.status != http.StatusOK {
			t.Fatalf("GET ?%s = %d %s", query, res.status, res.body)
		}
		return p
	}
	rels := func(p page) []string {
		var out []string
		for _, l := range p.Links {
			out = append(out, l.Rel)
		}
		return out
	}
	idsOf := func(p page) []string {
		var out []string
		for _, ep := range p.Results {
			out = append(out, ep.ID)
		}
		return out
	}
	all := get("")
	if diff := cmp.Diff(ids, idsOf(all)); diff != "" || all.TotalCount == nil || *all.TotalCount != 5 {
		t.Errorf("the whole list (-want +got):\n%s (totalCount %v)", diff, all.TotalCount)
	}
	tests := []struct {
		query    string
		wantIDs  []string
		wantRels []string
		count    bool
	}{
		{"?itemsPerPage=2", ids[:2], []string{"self", "next"}, true},
		{"?itemsPerPage=2&pageNum=2", ids[2:4], []string{"self", "previous", "next"}, true},
		{"?itemsPerPage=2&pageNum=3&includeCount=false", ids[4:], []string{"self", "previous"}, false},
		{"?itemsPerPage=2&pageNum=9", nil, []string{"self", "previous"}, true},
	}
	for _, tt := range tests {
		p := get(tt.query)
		if diff := cmp.Diff(tt.wantIDs, idsOf(p)); diff != "" {
			t.Errorf("GET %s results (-want +got):\n%s", tt.query, diff)
		}
		if diff := cmp.Diff(tt.wantRels, rels(p)); diff != "" {
			t.Errorf("GET %s links (-want +got):\n%s", tt.query, diff)
		}
		if (p.TotalCount != nil) != tt.count {
			t.Errorf("GET %s totalCount = %v, want present %v", tt.query, p.TotalCount, tt.count)
		}
	}
	next := get("?itemsPerPage=2").Links[1].Href
	if !strings.HasPrefix(next, h.srv.URL+endpointsV2+"AZURE/privateEndpoints?") || !strings.Contains(next, "pageNum=2") {
		t.Errorf("next link %q, want this host's list with pageNum=2", next)
	}
}

func TestPrivateEndpointErrors(t *testing.T) {
	t.Parallel()
	h, _ := endpointHarness(t)
	tests := []struct {
		method, path, body string
		wantStatus         int
		wantCode           string
	}{
		{"POST", endpointsV2 + "GCP/privateEndpoints", `{"regionName":"US_EAST_1"}`, 400, "INVALID_ENUM_VALUE"},
		{"POST", endpointsV2 + "AWS/privateEndpoints", `{"regionName":"EUROPE_WEST"}`, 400, "INVALID_ENUM_VALUE"},
		{"POST", endpointsV2 + "AZURE/privateEndpoints", `{"regionName":"US_EAST_1"}`, 400, "INVALID_ENUM_VALUE"},
		{"POST", endpointsV2 + "AWS/privateEndpoints", `{}`, 400, "MISSING_ATTRIBUTE"},
		{"POST", endpointsV2 + "AWS/privateEndpoints", `{"regionName":"US_EAST_1","vpc":"x"}`, 400, "INVALID_ATTRIBUTE"},
		{"POST", endpointsV2 + "AWS/privateEndpoints", `{"regionName":1}`, 400, "INVALID_ATTRIBUTE"},
		{"POST", endpointsV2 + "AWS/privateEndpoints", `[`, 400, "INVALID_JSON"},
		{"GET", endpointsV2 + "AWS/privateEndpoints?itemsPerPage=0", "", 400, "INVALID_QUERY_PARAMETER"},
		{"GET", endpointsV2 + "AWS/privateEndpoints?pageNum=x", "", 400, "INVALID_QUERY_PARAMETER"},
		{"GET", endpointsV2 + "AWS/privateEndpoints/xyz", "", 400, "INVALID_ATTRIBUTE"},
		{"GET", endpointsV2 + "AWS/privateEndpoints/0123456789abcdef01234567", "", 404, "RESOURCE_NOT_FOUND"},
		{"PATCH", endpointsV2 + "AWS/privateEndpoints", `{}`, 405, "METHOD_NOT_ALLOWED"},
		// Private endpoints are a v2 resource.
		{"GET", "/api/atlas/v1.0/groups/" + group + "/encryptionAtRest/AWS/privateEndpoints", "", 404, "RESOURCE_NOT_FOUND"},
	}
	for _, tt := range tests {
		res := h.api(tt.method, tt.path, tt.body)
		if code, _ := res.apiError(t); res.status != tt.wantStatus || code != tt.wantCode {
			t.Errorf("%s %s %s = %d %s, want %d %s", tt.method, tt.path, tt.body, res.status, res.body, tt.wantStatus, tt.wantCode)
		}
	}
	// The versioned media type is required, as for every v2 resource.
	res := h.do("GET", endpointsV2+"AWS/privateEndpoints", map[string]string{"Authorization": "Bearer " + h.token, "Accept": "application/json"}, "")
	if res.status != http.StatusNotAcceptable {
		t.Errorf("GET with Accept application/json = %d, want 406", res.status)
	}
}

func TestPrivateEndpointFaults(t *testing.T) {
	t.Parallel()
	h, _ := endpointHarness(t)
	ep := h.api("POST", endpointsV2+"AWS/privateEndpoints", `{"regionName":"US_EAST_1"}`).endpoint(t)
	h.emu.InjectFault(atlastest.Fault{Status: 503, Resource: "privateEndpoint", Method: "GET"})
	if res := h.api("GET", endpointsV2+"AWS/privateEndpoints/"+ep.ID, ""); res.status != 503 {
		t.Errorf("GET with a fault on privateEndpoint = %d, want 503", res.status)
	}
	if res := h.api("GET", endpointsV2+"AWS/privateEndpoints/"+ep.ID, ""); res.status != 200 {
		t.Errorf("GET after the fault = %d, want 200", res.status)
	}
	if got := h.emu.PrivateEndpoints(group, atlastest.CloudProviderAWS); len(got) != 1 || got[0].ID != ep.ID {
		t.Errorf("PrivateEndpoints() = %+v, want the one endpoint", got)
	}
}
