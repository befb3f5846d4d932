package main

import (
	"context"
	"encoding/json"
	"os/exec"
	"slices"
	"testing"
	"time"

	"github.com/encryptiond/encryptiond/server/daemon"
)

// exerciseWatch watches a project with grpcurl while a REST update changes
// it: the watch streams the configuration, then the change, at once.
func exerciseWatch(t *testing.T, b binaries, p *proc) {
	t.Run("grpcurl watch while REST updates", func(t *testing.T) {
		const group = "7e6d5c4b3a29180706f5e4d3"
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, b.grpcurlBin, "-plaintext", "-d", `{"groupId": "`+group+`"}`, p.grpcAddr, "atlas.encryption.v1.EncryptionService/WatchEncryptionAtRest")
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { cancel(); _ = cmd.Wait() }()
		dec := json.NewDecoder(out) // grpcurl prints one JSON object per message
		next := func() map[string]any {
			t.Helper()
			var m map[string]any
			if err := dec.Decode(&m); err != nil {
				t.Fatalf("the watch's next message: %v", err)
			}
			return m
		}
		enabled := func(m map[string]any) bool {
			gcp, _ := m["googleCloudKms"].(map[string]any)
			return gcp["enabled"] == true
		}
		if first := next(); enabled(first) {
			t.Fatalf("first message %v, want googleCloudKms disabled", first)
		}
		code, body := rest(t, "PATCH", "http://"+p.httpAD+"/v1/groups/"+group+"/encryptionAtRest",
			`{"googleCloudKms": {"enabled": true, "keyVersionResourceID": "projects/p/locations/global/keyRings/r/cryptoKeys/k/cryptoKeyVersions/1", "roleId": "64b6e34b3d91647abb20e7b9"}}`)
		if code != 200 {
			t.Fatalf("REST PATCH = %d %s", code, body)
		}
		if m := next(); !enabled(m) {
			t.Errorf("message after the REST update = %v, want googleCloudKms enabled", m)
		}
	})
}

// exerciseList lists every project of -dev over REST.
func exerciseList(t *testing.T, p *proc) {
	t.Run("REST list of every project", func(t *testing.T) {
		code, body := rest(t, "GET", "http://"+p.httpAD+"/v1/groups/-/encryptionAtRest?pageSize=3", "")
		var page struct {
			Projects []struct {
				GroupID          string         `json:"groupId"`
				EncryptionAtRest map[string]any `json:"encryptionAtRest"`
			} `json:"projects"`
			NextPageToken string `json:"nextPageToken"`
		}
		if code != 200 || json.Unmarshal([]byte(body), &page) != nil {
			t.Fatalf("GET /v1/groups/-/encryptionAtRest = %d %s", code, body)
		}
		var ids []string
		for _, p := range page.Projects {
			ids = append(ids, p.GroupID)
		}
		if !slices.Contains(ids, daemon.DevBlockedGroupID) || page.NextPageToken == "" {
			t.Errorf("first page of 3 = %s, want the -dev projects and a next page token", body)
		}
	})
}
