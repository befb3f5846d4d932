package daemon

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestNoRedirects: a path that is not in canonical form gets a JSON error
// in the shape of the route it stands for, is logged, and changes nothing;
// never a redirect, which a client following it would obey by sending its
// change again.
func TestNoRedirects(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, Config{Dev: true, LogFormat: "json"})
	client := &http.Client{
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	const body = `{"awsKms": {"enabled": false}}`
	tests := []struct {
		path  string
		atlas bool // Atlas's ApiError shape, else AIP-193
	}{
		{"/v1/groups//" + testGroup + "/encryptionAtRest", false},
		{"//v1/groups/" + testGroup + "/encryptionAtRest", false},
		{"/./v1/groups/" + testGroup + "/encryptionAtRest", false},
		{"/v1/x/../groups/" + testGroup + "/encryptionAtRest", false},
		{"/api/atlas/v1.0/groups//" + testGroup + "/encryptionAtRest", true},
		{"//api/atlas/v1.0/groups/" + testGroup + "/encryptionAtRest", true},
		{"/api/atlas/v1.0/x/../groups/" + testGroup + "/encryptionAtRest", true},
		{"//openapi.json", false},
		{"/./openapi.json", false},
	}
	for _, tt := range tests {
		for _, method := range []string{http.MethodGet, http.MethodPatch} {
			req, err := http.NewRequestWithContext(t.Context(), method, d.url(""), strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			req.URL.Path = tt.path
			resp, err := client.Do(req)
			if err != nil {
				t.Fatalf("%s %s: %v", method, tt.path, err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
				t.Errorf("%s %s = %d (Location %q), want 400 and no redirect", method, tt.path, resp.StatusCode, resp.Header.Get("Location"))
			}
			var shape map[string]any
			if err := json.Unmarshal(b, &shape); err != nil {
				t.Errorf("%s %s body %q is not JSON", method, tt.path, b)
				continue
			}
			if got := shape["errorCode"]; tt.atlas && got != "INVALID_PATH" {
				t.Errorf("%s %s = %s, want Atlas's ApiError with errorCode INVALID_PATH", method, tt.path, b)
			}
			if _, ok := shape["error"].(map[string]any); !tt.atlas && !ok {
				t.Errorf("%s %s = %s, want an AIP-193 error", method, tt.path, b)
			}
		}
	}
	var logged int
	for _, rec := range d.log.records(t) {
		if rec["msg"] == "http request" && rec["status"] == float64(http.StatusBadRequest) && rec["refused_by_gateway"] == true {
			logged++
		}
	}
	if logged != 2*len(tests) {
		t.Errorf("%d access-log records of refused paths, want %d", logged, 2*len(tests))
	}
	if recs := d.log.auditRecords(t); len(recs) != 0 {
		t.Errorf("audit records %v: a refused path reached the service", recs)
	}
}
