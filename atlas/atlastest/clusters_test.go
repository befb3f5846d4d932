package atlastest_test

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/encryptiond/encryptiond/atlas"
	"github.com/encryptiond/encryptiond/atlas/atlastest"
)

func TestClustersArePagedAndBlockADisable(t *testing.T) {
	t.Parallel()
	cfg := config()
	cfg.AutoCreateGroups, cfg.MaxItemsPerPage = true, 2
	emu, srv := atlastest.NewServer(t, cfg)
	c, err := atlas.NewClient(atlas.WithBaseURL(srv.URL), atlas.WithDigest(pub, priv))
	if err != nil {
		t.Fatal(err)
	}
	want := []atlas.Cluster{
		{Name: "a", StateName: "IDLE", EncryptionAtRestProvider: "AWS"},
		{Name: "b", StateName: "UPDATING", EncryptionAtRestProvider: "NONE"},
		{Name: "c", StateName: "IDLE", EncryptionAtRestProvider: "GCP"},
	}
	for _, cl := range want {
		emu.SetCluster(group, cl)
	}
	got, err := c.ListClusters(t.Context(), group)
	if err != nil {
		t.Fatalf("ListClusters() = %v", err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ListClusters() mismatch (-want +got):\n%s", diff)
	}
	if n := emu.Calls()["GET clusters"]; n != 2 {
		t.Errorf("ListClusters() read %d pages, want 2 of at most 2", n)
	}

	// A cluster using AWS blocks disabling AWS, until it is removed.
	enable := &atlas.EncryptionAtRest{AWSKMS: &atlas.AWSKMSConfiguration{Enabled: ptr(true), CustomerMasterKeyID: ptr("k"), Region: ptr("US_EAST_1"), RoleID: ptr(roleID)}}
	if _, err := c.UpdateEncryptionAtRest(t.Context(), group, enable); err != nil {
		t.Fatal(err)
	}
	disable := &atlas.EncryptionAtRest{AWSKMS: &atlas.AWSKMSConfiguration{Enabled: ptr(false)}}
	if _, err := c.UpdateEncryptionAtRest(t.Context(), group, disable); !errors.Is(err, &atlas.Error{HTTPStatus: http.StatusConflict, ErrorCode: "CANNOT_DISABLE_ENCRYPTION_AT_REST"}) {
		t.Errorf("disable while cluster a uses AWS = %v, want 409 CANNOT_DISABLE_ENCRYPTION_AT_REST", err)
	}
	emu.RemoveCluster(group, "a")
	if _, err := c.UpdateEncryptionAtRest(t.Context(), group, disable); err != nil {
		t.Errorf("disable once no cluster uses AWS = %v, want nil", err)
	}
}

func TestRoleUsableAfter(t *testing.T) {
	t.Parallel()
	clock := atlastest.NewClock(time.Unix(1_800_000_000, 0))
	cfg := config()
	cfg.AutoCreateGroups, cfg.Now = true, clock.Now
	emu, srv := atlastest.NewServer(t, cfg)
	c, err := atlas.NewClient(atlas.WithBaseURL(srv.URL), atlas.WithDigest(pub, priv))
	if err != nil {
		t.Fatal(err)
	}
	emu.RoleUsableAfter(roleID, 30*time.Second)
	enable := &atlas.EncryptionAtRest{GoogleCloudKMS: &atlas.GoogleCloudKMS{Enabled: ptr(true), KeyVersionResourceID: ptr("projects/p/locations/l/keyRings/r/cryptoKeys/k/cryptoKeyVersions/1"), RoleID: ptr(roleID)}}
	cannot := &atlas.Error{HTTPStatus: http.StatusBadRequest, ErrorCode: "CANNOT_ASSUME_ROLE"}
	if _, err := c.UpdateEncryptionAtRest(t.Context(), group, enable); !errors.Is(err, cannot) {
		t.Fatalf("PATCH at first use = %v, want 400 CANNOT_ASSUME_ROLE", err)
	}
	clock.Advance(29 * time.Second)
	if _, err := c.UpdateEncryptionAtRest(t.Context(), group, enable); !errors.Is(err, cannot) {
		t.Fatalf("PATCH 29 s later = %v, want 400 CANNOT_ASSUME_ROLE", err)
	}
	if got := emu.State(group).GoogleCloudKMS.Enabled; *got {
		t.Fatalf("a refused PATCH enabled Google Cloud KMS")
	}
	clock.Advance(time.Second)
	if _, err := c.UpdateEncryptionAtRest(t.Context(), group, enable); err != nil {
		t.Fatalf("PATCH 30 s after first use = %v, want nil", err)
	}
	// Roles never named are usable at once.
	other := &atlas.EncryptionAtRest{AWSKMS: &atlas.AWSKMSConfiguration{Enabled: ptr(true), CustomerMasterKeyID: ptr("k"), Region: ptr("US_EAST_1"), RoleID: ptr("0123456789abcdef01234567")}}
	if _, err := c.UpdateEncryptionAtRest(t.Context(), group, other); err != nil {
		t.Errorf("PATCH with another role = %v, want nil", err)
	}
}

func TestGroupsList(t *testing.T) {
	t.Parallel()
	cfg := config()
	cfg.MaxItemsPerPage = 2
	emu, srv := atlastest.NewServer(t, cfg)
	c, err := atlas.NewClient(atlas.WithBaseURL(srv.URL), atlas.WithDigest(pub, priv))
	if err != nil {
		t.Fatal(err)
	}
	ids := []string{"000000000000000000000003", "000000000000000000000001", "000000000000000000000002"}
	for i, id := range ids {
		emu.AddProject(id, []string{"c", "a", "b"}[i])
	}
	all, err := c.ListAllGroups(t.Context())
	if err != nil {
		t.Fatalf("ListAllGroups() = %v", err)
	}
	var got []string
	for _, g := range all {
		got = append(got, g.ID+" "+g.Name)
	}
	want := []string{"000000000000000000000001 a", "000000000000000000000002 b", "000000000000000000000003 c"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ListAllGroups() mismatch (-want +got):\n%s", diff)
	}
	p, err := c.ListGroups(t.Context(), atlas.ListOptions{PageNum: 2, ItemsPerPage: 2})
	if err != nil || len(p.Results) != 1 || p.TotalCount == nil || *p.TotalCount != 3 {
		t.Errorf("ListGroups(page 2 of 2) = %+v, %v; want one result of 3", p, err)
	}
}
