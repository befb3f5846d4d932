package atlastest_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/encryptiond/encryptiond/atlas"
	"github.com/encryptiond/encryptiond/atlas/atlastest"
)

// TestSnapshotRestore saves one emulator's projects and restores them into
// another: the second answers as the first did, secrets included, and its
// own snapshot is the same document.
func TestSnapshotRestore(t *testing.T) {
	t.Parallel()
	const other = "0123456789abcdef01234567"
	from := newHarness(t, config())
	from.emu.AddGroup(group)
	for _, body := range []string{awsWhole, azureWhole, gcpWhole} {
		if res := from.api("PATCH", resourceV2, body); res.status != http.StatusOK {
			t.Fatalf("PATCH %s = %d %s", body, res.status, res.body)
		}
	}
	from.emu.SetKeyValid(group, atlastest.ProviderAzure, false)
	from.emu.SetProviderInUse(group, atlastest.ProviderAWS, true)
	from.emu.AddGroup(other) // exists, nothing configured

	snap, err := from.emu.Snapshot()
	if err != nil {
		t.Fatalf("Snapshot() = %v", err)
	}
	if !strings.Contains(string(snap), secretSentinel) || !strings.Contains(string(snap), roleID) {
		t.Errorf("Snapshot() = %s, want the secrets and the roleId it was sent (it is the emulator's own state)", snap)
	}

	to := newHarness(t, config()) // no AutoCreateGroups: only restored projects exist
	if err := to.emu.Restore(snap); err != nil {
		t.Fatalf("Restore(Snapshot()) = %v", err)
	}
	for _, id := range []string{group, other} {
		if diff := cmp.Diff(from.emu.State(id), to.emu.State(id)); diff != "" {
			t.Errorf("State(%s) after Restore mismatch (-before +after):\n%s", id, diff)
		}
		path := "/api/atlas/v1.0/groups/" + id + "/encryptionAtRest"
		if a, b := from.do("GET", path, map[string]string{"Authorization": "Bearer " + from.token}, ""), to.do("GET", path, map[string]string{"Authorization": "Bearer " + to.token}, ""); a.status != b.status || string(a.body) != string(b.body) {
			t.Errorf("GET %s after Restore = %d %s, want %d %s", path, b.status, b.body, a.status, a.body)
		}
	}
	again, err := to.emu.Snapshot()
	if err != nil || string(again) != string(snap) {
		t.Errorf("Snapshot() after Restore = %s, %v, want the document restored:\n%s", again, err, snap)
	}

	// The restored project behaves as the original: a partial update of an
	// enabled provider applies, and the restored cluster blocks a disable.
	if res := to.api("PATCH", resourceV2, `{"awsKms":{"region":"EU_WEST_1"}}`); res.status != http.StatusOK {
		t.Errorf("partial PATCH after Restore = %d %s, want 200", res.status, res.body)
	}
	if res := to.api("PATCH", resourceV2, `{"awsKms":{"enabled":false}}`); res.status != http.StatusConflict {
		t.Errorf("disable of a provider in use after Restore = %d %s, want 409", res.status, res.body)
	}
	// A project the snapshot does not hold does not exist.
	if res := to.api("GET", "/api/atlas/v2/groups/aaaaaaaaaaaaaaaaaaaaaaaa/encryptionAtRest", ""); res.status != http.StatusNotFound {
		t.Errorf("GET of a project not restored = %d, want 404", res.status)
	}
}

// TestRestoreReplaces checks that Restore forgets projects the snapshot
// does not hold, and that an empty emulator's snapshot restores to empty.
func TestRestoreReplaces(t *testing.T) {
	t.Parallel()
	empty, err := atlastest.NewEmulator(config()).Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	emu := atlastest.NewEmulator(config())
	if err := emu.Configure(group, atlas.EncryptionAtRest{GoogleCloudKMS: &atlas.GoogleCloudKMS{
		Enabled: ptr(true), KeyVersionResourceID: ptr("projects/p/locations/l/keyRings/r/cryptoKeys/k/cryptoKeyVersions/1"), RoleID: ptr(roleID),
	}}); err != nil {
		t.Fatal(err)
	}
	if err := emu.Restore(empty); err != nil {
		t.Fatalf("Restore(empty) = %v", err)
	}
	if got := emu.State(group); *got.GoogleCloudKMS.Enabled {
		t.Errorf("State(%s) after Restore(empty) = %+v, want nothing enabled", group, got.GoogleCloudKMS)
	}
}

func TestRestoreRefuses(t *testing.T) {
	t.Parallel()
	awsDoc := `{"enabled": true, "customerMasterKeyID": "k", "region": "US_EAST_1", "roleId": "` + roleID + `"}`
	tests := []struct {
		name, doc, want string
	}{
		{"not JSON", `{"version": 1,`, "unexpected EOF"},
		{"two documents", `{"version": 1, "groups": {}} {}`, "more than one JSON document"},
		{"another version", `{"version": 2, "groups": {}}`, "version 2, want 1"},
		{"an unknown field", `{"version": 1, "groups": {}, "nonces": {}}`, "unknown field"},
		{"an unknown field in a project", `{"version": 1, "groups": {"` + group + `": {"exists": true, "owner": "x"}}}`, "unknown field"},
		{"a malformed project id", `{"version": 1, "groups": {"G1": {"exists": true}}}`, "project G1: the id is not 24 hexadecimal characters"},
		{"a null project", `{"version": 1, "groups": {"` + group + `": null}}`, "null"},
		{"a disabled configuration", `{"version": 1, "groups": {"` + group + `": {"awsKms": {"enabled": false}}}}`, "awsKms: a stored configuration has enabled: true"},
		{"an incomplete configuration", `{"version": 1, "groups": {"` + group + `": {"awsKms": {"enabled": true, "region": "US_EAST_1"}}}}`, "MISSING_ATTRIBUTE"},
		{"a region Atlas does not have", `{"version": 1, "groups": {"` + group + `": {"awsKms": {"enabled": true, "customerMasterKeyID": "k", "region": "MOON_1", "roleId": "` + roleID + `"}}}}`, "INVALID_ENUM_VALUE"},
		{"an unknown provider marked invalid", `{"version": 1, "groups": {"` + group + `": {"awsKms": ` + awsDoc + `, "invalidKeys": ["oracle"]}}}`, `unknown provider "oracle"`},
		{"a cluster without a name", `{"version": 1, "groups": {"` + group + `": {"clusters": [{"stateName": "IDLE"}]}}}`, "a cluster without a name"},
		{"an endpoint of GCP", `{"version": 1, "groups": {"` + group + `": {"privateEndpoints": [{"id": "` + roleID + `", "cloudProvider": "GCP", "regionName": "US_EAST_1", "status": "ACTIVE"}]}}}`, `privateEndpoints[0]: cloudProvider "GCP"`},
		{"an AWS endpoint waiting for approval", `{"version": 1, "groups": {"` + group + `": {"privateEndpoints": [{"id": "` + roleID + `", "cloudProvider": "AWS", "regionName": "US_EAST_1", "status": "PENDING_ACCEPTANCE"}]}}}`, "only Azure endpoints wait for approval"},
		{"an endpoint without a status", `{"version": 1, "groups": {"` + group + `": {"privateEndpoints": [{"id": "` + roleID + `", "cloudProvider": "AWS", "regionName": "US_EAST_1"}]}}}`, `status ""`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			emu := atlastest.NewEmulator(config())
			emu.AddGroup(group)
			err := emu.Restore([]byte(tt.doc))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Restore(%s) = %v, want an error containing %q", tt.doc, err, tt.want)
			}
			// Nothing changed: the project still exists, unconfigured.
			if snap, _ := emu.Snapshot(); !strings.Contains(string(snap), group) {
				t.Errorf("after a refused Restore the snapshot is %s, want the project still there", snap)
			}
		})
	}
}

// TestSnapshotIsJSON pins the shape a -state file has, for a reader who
// opens one.
func TestSnapshotIsJSON(t *testing.T) {
	t.Parallel()
	emu := atlastest.NewEmulator(config())
	emu.SetCluster(group, atlastest.Cluster{Name: "c1", EncryptionAtRestProvider: "AWS"})
	snap, err := emu.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(snap, &doc); err != nil {
		t.Fatalf("Snapshot() = %s, not JSON: %v", snap, err)
	}
	want := map[string]any{"version": float64(1), "groups": map[string]any{group: map[string]any{
		"exists":   false,
		"clusters": []any{map[string]any{"name": "c1", "stateName": "IDLE", "encryptionAtRestProvider": "AWS"}},
	}}}
	if diff := cmp.Diff(want, doc); diff != "" {
		t.Errorf("Snapshot() mismatch (-want +got):\n%s", diff)
	}
}

// TestSnapshotKeepsEndpointsAndNames restores a project's name and its
// private endpoints, each with the status it had: an Azure endpoint
// approved before the restart is still ACTIVE after it, a failed one still
// FAILED with its message, a pending one still waits for its approval.
func TestSnapshotKeepsEndpointsAndNames(t *testing.T) {
	t.Parallel()
	clock := atlastest.NewClock(time.Unix(1_800_000_000, 0))
	cfg := config()
	cfg.Now = clock.Now
	from := newHarness(t, cfg)
	from.emu.AddProject(group, "payments")
	create := func(provider, region string) string {
		t.Helper()
		res := from.api("POST", "/api/atlas/v2/groups/"+group+"/encryptionAtRest/"+provider+"/privateEndpoints", `{"regionName":"`+region+`"}`)
		var ep atlas.PrivateEndpoint
		if res.status != http.StatusAccepted || json.Unmarshal(res.body, &ep) != nil {
			t.Fatalf("POST %s private endpoint = %d %s", provider, res.status, res.body)
		}
		return ep.ID
	}
	aws := create(atlastest.CloudProviderAWS, "US_EAST_1")
	approved := create(atlastest.CloudProviderAzure, "US_EAST_2")
	pending := create(atlastest.CloudProviderAzure, "EUROPE_WEST")
	failed := create(atlastest.CloudProviderAzure, "UK_SOUTH")
	clock.Advance(atlastest.DefaultPrivateEndpointDelay)
	if err := from.emu.ApprovePrivateEndpoint(group, approved); err != nil {
		t.Fatal(err)
	}
	if err := from.emu.FailPrivateEndpoint(group, failed, "the key vault refused the connection"); err != nil {
		t.Fatal(err)
	}
	snap, err := from.emu.Snapshot()
	if err != nil {
		t.Fatal(err)
	}

	to := atlastest.NewEmulator(config()) // its own clock: statuses do not depend on it
	if err := to.Restore(snap); err != nil {
		t.Fatalf("Restore(Snapshot()) = %v", err)
	}
	for _, provider := range []string{atlastest.CloudProviderAWS, atlastest.CloudProviderAzure} {
		if diff := cmp.Diff(from.emu.PrivateEndpoints(group, provider), to.PrivateEndpoints(group, provider)); diff != "" {
			t.Errorf("PrivateEndpoints(%s) after Restore mismatch (-before +after):\n%s", provider, diff)
		}
	}
	statuses := map[string]string{}
	for _, provider := range []string{atlastest.CloudProviderAWS, atlastest.CloudProviderAzure} {
		for _, ep := range to.PrivateEndpoints(group, provider) {
			statuses[ep.ID] = ep.Status
		}
	}
	want := map[string]string{aws: atlas.EndpointActive, approved: atlas.EndpointActive, pending: atlas.EndpointPendingAcceptance, failed: atlas.EndpointFailed}
	if diff := cmp.Diff(want, statuses); diff != "" {
		t.Errorf("statuses after Restore mismatch (-want +got):\n%s", diff)
	}
	if again, err := to.Snapshot(); err != nil || string(again) != string(snap) {
		t.Errorf("Snapshot() after Restore = %s, %v, want the document restored:\n%s", again, err, snap)
	}
	if !strings.Contains(string(snap), `"name": "payments"`) {
		t.Errorf("Snapshot() = %s, want the project's name", snap)
	}
}
