package server_test

import (
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/encryptiond/encryptiond/atlas/atlasspec"
)

// TestAtlasV2PathsAsAtlasDocumentsThem sends the requests of Atlas's
// documentation for encryptionAtRest and its private endpoints, as its v2
// curl examples send them (the host changed, digest auth dropped), to
// encryptiond's REST server in front of the emulator, and holds every
// answer to Atlas's own schema: status code, media type and body.
func TestAtlasV2PathsAsAtlasDocumentsThem(t *testing.T) {
	t.Parallel()
	const group = "7a1b2c3d4e5f6a7b8c9d0e1f"
	doc := atlasspec.Load(t)
	h := newPEHarness(t)
	base := "/api/atlas/v2/groups/" + group + "/encryptionAtRest"
	// curl --header "Accept: application/vnd.atlas.2023-01-01+json" [--header "Content-Type: application/json"] -X … "https://cloud.mongodb.com/api/atlas/v2/…?pretty=true"
	curl := func(method, path, body string, header ...string) (int, http.Header, []byte) {
		t.Helper()
		var r io.Reader
		if body != "" {
			r = strings.NewReader(body)
		}
		req, err := http.NewRequestWithContext(t.Context(), method, h.rest.URL+path, r)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Accept", atlasspec.MediaTypeV2)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		res, err := h.rest.Client().Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, res.Header, b
	}
	conforms := func(method, path string, status int, header http.Header, body []byte) {
		t.Helper()
		name := method + " " + path
		op, err := atlasspec.Operation(doc, method, strings.SplitN(path, "?", 2)[0])
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		ct, _, _ := mime.ParseMediaType(header.Get("Content-Type"))
		if status >= 300 {
			var apiErr struct {
				Error int `json:"error"`
			}
			if err := json.Unmarshal(body, &apiErr); err != nil || apiErr.Error != status || ct != "application/json" {
				t.Errorf("%s = %d %s %s, want Atlas's ApiError for its status, in application/json", name, status, ct, body)
			}
			if err := atlasspec.Validate(doc.Components.Schemas["ApiError"].Value, body, false); err != nil {
				t.Errorf("%s: %v", name, err)
			}
			return
		}
		res := op.Responses.Status(status)
		if res == nil {
			t.Errorf("%s = %d, a status Atlas does not document for it", name, status)
			return
		}
		media := res.Value.Content.Get(atlasspec.MediaTypeV2)
		if media.Schema == nil {
			if len(body) != 0 {
				t.Errorf("%s = %d with a body %s, want none", name, status, body)
			}
			return
		}
		if ct != atlasspec.MediaTypeV2 {
			t.Errorf("%s: Content-Type %q, want %s", name, header.Get("Content-Type"), atlasspec.MediaTypeV2)
		}
		if err := atlasspec.Validate(media.Schema.Value, body, false); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	step := func(method, path, body string, wantStatus int, header ...string) []byte {
		t.Helper()
		status, hdr, b := curl(method, path, body, header...)
		if status != wantStatus {
			t.Fatalf("%s %s = %d %s, want %d", method, path, status, b, wantStatus)
		}
		conforms(method, path, status, hdr, b)
		return b
	}

	step("GET", base+"?pretty=true", "", http.StatusOK)
	step("PATCH", base+"?pretty=true", `{"awsKms": {"enabled": true, "customerMasterKeyID": "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab", "region": "US_EAST_1", "roleId": "64b6e34b3d91647abb20e7b9"}}`, http.StatusOK)
	step("PATCH", base, `{"awsKms": {"region": "MOON_1"}}`, http.StatusBadRequest)

	var created struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(step("POST", base+"/AWS/privateEndpoints?pretty=true", `{"regionName": "US_EAST_1"}`, http.StatusAccepted), &created)
	var azure struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(step("POST", base+"/AZURE/privateEndpoints", `{"regionName": "US_EAST_2"}`, http.StatusAccepted,
		"Content-Type", atlasspec.MediaTypeV2), &azure)
	step("POST", base+"/AZURE/privateEndpoints", `{"regionName": "US_EAST_1"}`, http.StatusBadRequest)
	step("POST", base+"/GCP/privateEndpoints", `{"regionName": "US_EAST_1"}`, http.StatusBadRequest)

	h.createDirect(t, group, "AWS", "EU_WEST_1")
	page := step("GET", base+"/AWS/privateEndpoints?pretty=true&itemsPerPage=1&pageNum=2", "", http.StatusOK)
	var list struct {
		Results    []map[string]any `json:"results"`
		TotalCount int              `json:"totalCount"`
		Links      []struct{ Rel string }
	}
	if err := json.Unmarshal(page, &list); err != nil || len(list.Results) != 1 || list.TotalCount != 2 || len(list.Links) != 2 {
		t.Errorf("page 2 of 1 = %s, want one result of 2, with self and previous links", page)
	}
	step("GET", base+"/AWS/privateEndpoints?includeCount=false", "", http.StatusOK)
	step("GET", base+"/AWS/privateEndpoints?itemsPerPage=0", "", http.StatusBadRequest)
	step("GET", base+"/AWS/privateEndpoints/"+created.ID+"?pretty=true", "", http.StatusOK)
	h.clock.Advance(endpointDelay)
	step("GET", base+"/AZURE/privateEndpoints/"+azure.ID, "", http.StatusOK) // PENDING_ACCEPTANCE
	step("DELETE", base+"/AWS/privateEndpoints/"+created.ID, "", http.StatusNoContent)
	step("GET", base+"/AWS/privateEndpoints/"+created.ID, "", http.StatusOK) // DELETING
	h.clock.Advance(time.Hour)
	step("GET", base+"/AWS/privateEndpoints/"+created.ID, "", http.StatusNotFound)
	step("DELETE", base+"/AWS/privateEndpoints/"+created.ID, "", http.StatusNotFound)

	// A version this service does not speak.
	step("GET", base, "", http.StatusNotAcceptable, "Accept", "application/vnd.atlas.2099-01-01+json")
	step("GET", base+"/AWS/privateEndpoints", "", http.StatusNotAcceptable, "Accept", "application/vnd.atlas.2024-05-30+json")
}
