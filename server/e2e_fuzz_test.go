package server_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// FuzzRESTUpdate sends arbitrary PATCH bodies and query strings through the
// whole REST path (gateway marshaler, service rules, Atlas client) to the
// emulator. Invariants: the service never answers 5xx to what a caller sent
// (the emulator does not fail here), and a refused request never produced a
// PATCH to Atlas.
// fuzzClient bounds every call, so that a request the service never
// answers fails the fuzz run with its input instead of hanging it.
var fuzzClient = &http.Client{Timeout: 5 * time.Second}

func FuzzRESTUpdate(f *testing.F) {
	for _, body := range []string{contractExample, azureEnable, gcpEnable, `{"awsKms": {"enabled": false}}`, `{"awsKms": {"region": "EU_WEST_1"}}`,
		`{}`, `[]`, `{"awsKms": {"secretAccessKey": 1}}`, `{"awsKms": {}, "azureKeyVault": {}}`, `{"googleCloudKms": {"serviceAccountKey": "{\"a\":1}", "roleId": "5f3b1c2d3e4f5a6b7c8d9e0f"}}`, `not json`} {
		f.Add(body, "")
		f.Add(body, "validateOnly=true")
	}
	f.Add(contractExample, "validateonly=true")
	f.Add(contractExample, "pretty=true&envelope=true")

	h := newHarness(f)
	f.Fuzz(func(t *testing.T, body, query string) {
		h.emu.ResetRecords()
		url := h.rest.URL + "/v1/groups/32b6e34b3d91647abb20e7b8/encryptionAtRest"
		if query != "" {
			url += "?" + query
		}
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPatch, url, strings.NewReader(body))
		if err != nil {
			return // not a URL a client could send
		}
		res, err := fuzzClient.Do(req)
		if err != nil {
			t.Fatalf("PATCH %q ?%s: %v", body, query, err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		status := res.StatusCode
		if strings.Contains(query, "envelope") && status == http.StatusOK && strings.HasPrefix(string(b), `{"status":`) {
			return // an envelope hides the status; the other runs cover it
		}
		if status >= 500 {
			t.Fatalf("PATCH %q ?%s = %d %s: a caller's input must never cause a 5xx", body, query, status, b)
		}
		if status >= 400 && len(h.patches()) > 0 {
			t.Fatalf("PATCH %q ?%s = %d, yet Atlas received %v", body, query, status, h.patches())
		}
	})
}
