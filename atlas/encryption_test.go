package atlas_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/encryptiond/encryptiond/atlas"
	"github.com/encryptiond/encryptiond/atlas/atlastest"
)

func TestGetEncryptionAtRest(t *testing.T) {
	t.Parallel()
	_, srv := newEmulator(t)
	c := newClient(t, srv)
	got, err := c.GetEncryptionAtRest(t.Context(), groupID)
	if err != nil {
		t.Fatalf("GetEncryptionAtRest(%s) = %v", groupID, err)
	}
	off := &atlas.EncryptionAtRest{
		AWSKMS:                &atlas.AWSKMSConfiguration{Enabled: ptr(false), Valid: ptr(false)},
		AzureKeyVault:         &atlas.AzureKeyVault{Enabled: ptr(false), Valid: ptr(false)},
		GoogleCloudKMS:        &atlas.GoogleCloudKMS{Enabled: ptr(false), Valid: ptr(false)},
		EnabledForSearchNodes: ptr(false),
	}
	if diff := cmp.Diff(off, got); diff != "" {
		t.Errorf("GetEncryptionAtRest(%s) mismatch (-want +got):\n%s", groupID, diff)
	}
}

// TestUpdateSendsExactlyCallerFields compares the raw bodies Atlas received
// with what the caller set: no zero values, no {} for untouched providers.
func TestUpdateSendsExactlyCallerFields(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		update *atlas.EncryptionAtRest
		want   string
	}{
		{"enable AWS with role", awsRoleConfig(),
			`{"awsKms":{"enabled":true,"customerMasterKeyID":"arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab","region":"EU_WEST_1","roleId":"32b6e34b3d91647abb20e7b8"}}`},
		{"change region only", &atlas.EncryptionAtRest{AWSKMS: &atlas.AWSKMSConfiguration{Region: ptr("US_EAST_1")}},
			`{"awsKms":{"region":"US_EAST_1"}}`},
		{"false is sent", &atlas.EncryptionAtRest{AWSKMS: &atlas.AWSKMSConfiguration{RequirePrivateNetworking: ptr(false)}},
			`{"awsKms":{"requirePrivateNetworking":false}}`},
		{"search nodes only", &atlas.EncryptionAtRest{EnabledForSearchNodes: ptr(true)},
			`{"enabledForSearchNodes":true}`},
		{"disable", &atlas.EncryptionAtRest{AWSKMS: &atlas.AWSKMSConfiguration{Enabled: ptr(false)}},
			`{"awsKms":{"enabled":false}}`},
	}
	emu, srv := newEmulator(t)
	c := newClient(t, srv)
	for _, tt := range tests { // in order: each builds on the previous state
		before, _ := json.Marshal(tt.update)
		emu.ResetRecords()
		if _, err := c.UpdateEncryptionAtRest(t.Context(), groupID, tt.update); err != nil {
			t.Fatalf("%s: UpdateEncryptionAtRest() = %v", tt.name, err)
		}
		reqs := emu.Requests()
		if len(reqs) != 1 {
			t.Fatalf("%s: Atlas received %d requests, want 1", tt.name, len(reqs))
		}
		if got := string(reqs[0].Body); got != tt.want {
			t.Errorf("%s: UpdateEncryptionAtRest() sent %s, want %s", tt.name, got, tt.want)
		}
		if got := reqs[0].ContentType; got != "application/vnd.atlas.2023-01-01+json" {
			t.Errorf("%s: Content-Type = %q, want the versioned media type", tt.name, got)
		}
		if after, _ := json.Marshal(tt.update); string(after) != string(before) {
			t.Errorf("%s: UpdateEncryptionAtRest() modified its argument: %s, was %s", tt.name, after, before)
		}
	}
}

func TestUpdateLifecycle(t *testing.T) {
	t.Parallel()
	emu, srv := newEmulator(t)
	c := newClient(t, srv)
	ctx := t.Context()

	got, err := c.UpdateEncryptionAtRest(ctx, groupID, awsRoleConfig())
	if err != nil {
		t.Fatalf("UpdateEncryptionAtRest(enable) = %v", err)
	}
	want := &atlas.AWSKMSConfiguration{
		Enabled:                  ptr(true),
		CustomerMasterKeyID:      awsRoleConfig().AWSKMS.CustomerMasterKeyID,
		Region:                   ptr("EU_WEST_1"),
		RequirePrivateNetworking: ptr(false),
		Valid:                    ptr(true),
	}
	if diff := cmp.Diff(want, got.AWSKMS); diff != "" {
		t.Errorf("UpdateEncryptionAtRest(enable) awsKms mismatch (-want +got):\n%s", diff)
	}

	emu.SetKeyValid(groupID, atlastest.ProviderAWS, false)
	got, err = c.GetEncryptionAtRest(ctx, groupID)
	if err != nil || *got.AWSKMS.Valid {
		t.Errorf("GetEncryptionAtRest() after SetKeyValid(false) = %+v, %v, want valid false", got.AWSKMS, err)
	}

	emu.SetProviderInUse(groupID, atlastest.ProviderAWS, true)
	disable := &atlas.EncryptionAtRest{AWSKMS: &atlas.AWSKMSConfiguration{Enabled: ptr(false)}}
	_, err = c.UpdateEncryptionAtRest(ctx, groupID, disable)
	if !errors.Is(err, &atlas.Error{HTTPStatus: http.StatusConflict, ErrorCode: "CANNOT_DISABLE_ENCRYPTION_AT_REST"}) {
		t.Errorf("UpdateEncryptionAtRest(disable in use) = %v, want 409 CANNOT_DISABLE_ENCRYPTION_AT_REST", err)
	}

	emu.SetProviderInUse(groupID, atlastest.ProviderAWS, false)
	got, err = c.UpdateEncryptionAtRest(ctx, groupID, disable)
	if err != nil || *got.AWSKMS.Enabled || got.AWSKMS.Region != nil {
		t.Errorf("UpdateEncryptionAtRest(disable) = %+v, %v, want enabled false and no config", got.AWSKMS, err)
	}
}

func TestUpdateValidationError(t *testing.T) {
	t.Parallel()
	_, srv := newEmulator(t)
	c := newClient(t, srv)
	_, err := c.UpdateEncryptionAtRest(t.Context(), groupID, &atlas.EncryptionAtRest{
		AWSKMS: &atlas.AWSKMSConfiguration{Enabled: ptr(true), SecretAccessKey: ptr("TOP-SECRET-VALUE")},
	})
	var aerr *atlas.Error
	if !errors.As(err, &aerr) || aerr.ErrorCode != "MISSING_ATTRIBUTE" || len(aerr.Fields) == 0 {
		t.Fatalf("UpdateEncryptionAtRest(partial) = %v, want MISSING_ATTRIBUTE with fields", err)
	}
	if s := err.Error(); containsAny(s, "TOP-SECRET-VALUE", testPrivateKey, "Digest ") {
		t.Errorf("UpdateEncryptionAtRest() error %q leaks a secret or header", s)
	}
}

func TestGroupNotFound(t *testing.T) {
	t.Parallel()
	cfg := emulatorConfig()
	cfg.AutoCreateGroups = false
	emu, srv := atlastest.NewServer(t, cfg)
	emu.AddGroup(groupID)
	c := newClient(t, srv)
	if _, err := c.GetEncryptionAtRest(t.Context(), groupID); err != nil {
		t.Errorf("GetEncryptionAtRest(known) = %v, want success", err)
	}
	other := "0123456789abcdef01234567"
	if _, err := c.GetEncryptionAtRest(t.Context(), other); !errors.Is(err, &atlas.Error{HTTPStatus: 404, ErrorCode: "GROUP_NOT_FOUND"}) {
		t.Errorf("GetEncryptionAtRest(unknown) = %v, want 404 GROUP_NOT_FOUND", err)
	}
	if _, err := c.GetEncryptionAtRest(t.Context(), "../../oops"); !errors.Is(err, &atlas.Error{HTTPStatus: 400}) && !errors.Is(err, &atlas.Error{HTTPStatus: 404}) {
		t.Errorf("GetEncryptionAtRest(malformed) = %v, want a 400 or 404", err)
	}
}

// TestFaults drives the client through the emulator's faults.
func TestFaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		method      string
		fault       atlastest.Fault
		wantErr     []error // each must match with errors.Is; none means success
		wantPatches int64   // PATCH requests Atlas processed
		applied     bool    // the PATCH's change is visible afterwards
	}{
		{name: "GET drop retried", method: "GET", fault: atlastest.Fault{Drop: true}},
		{name: "GET truncated retried", method: "GET", fault: atlastest.Fault{Truncated: true}},
		{name: "GET 503 retried", method: "GET", fault: atlastest.Fault{Status: 503, Times: 2}},
		{name: "GET malformed", method: "GET", fault: atlastest.Fault{Malformed: true}, wantErr: []error{atlas.ErrMalformedResponse}},
		{name: "GET huge body", method: "GET", fault: atlastest.Fault{HugeBody: true}, wantErr: []error{atlas.ErrMalformedResponse}},
		{name: "PATCH drop after apply", method: "PATCH", fault: atlastest.Fault{DropAfterApply: true},
			wantErr: []error{atlas.ErrOutcomeUnknown}, wantPatches: 1, applied: true},
		{name: "PATCH drop before apply", method: "PATCH", fault: atlastest.Fault{Drop: true},
			wantErr: []error{atlas.ErrOutcomeUnknown}, wantPatches: 1},
		{name: "PATCH 500 not retried", method: "PATCH", fault: atlastest.Fault{Status: 500},
			wantErr: []error{&atlas.Error{HTTPStatus: 500}}, wantPatches: 1},
		{name: "PATCH 429 retried", method: "PATCH", fault: atlastest.Fault{Status: 429},
			wantPatches: 2, applied: true},
		{name: "PATCH malformed", method: "PATCH", fault: atlastest.Fault{Malformed: true},
			wantErr: []error{atlas.ErrUpdateAppliedUnreadable, atlas.ErrMalformedResponse}, wantPatches: 1, applied: true},
		{name: "PATCH truncated", method: "PATCH", fault: atlastest.Fault{Truncated: true},
			wantErr: []error{atlas.ErrUpdateAppliedUnreadable}, wantPatches: 1, applied: true},
		{name: "PATCH huge body", method: "PATCH", fault: atlastest.Fault{HugeBody: true},
			wantErr: []error{atlas.ErrUpdateAppliedUnreadable}, wantPatches: 1, applied: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			emu, srv := newEmulator(t)
			c := newClient(t, srv)
			emu.InjectFault(tt.fault)
			var err error
			if tt.method == "GET" {
				_, err = c.GetEncryptionAtRest(t.Context(), groupID)
			} else {
				_, err = c.UpdateEncryptionAtRest(t.Context(), groupID, &atlas.EncryptionAtRest{EnabledForSearchNodes: ptr(true)})
			}
			if len(tt.wantErr) == 0 && err != nil {
				t.Errorf("%s() = %v, want success", tt.method, err)
			}
			for _, want := range tt.wantErr {
				if !errors.Is(err, want) {
					t.Errorf("%s() = %v, want errors.Is %v", tt.method, err, want)
				}
			}
			if tt.method != "PATCH" {
				return
			}
			if got := emu.Stats().Patches; got != tt.wantPatches {
				t.Errorf("Atlas processed %d PATCH requests, want %d", got, tt.wantPatches)
			}
			if got := *emu.State(groupID).EnabledForSearchNodes; got != tt.applied {
				t.Errorf("after %s: enabledForSearchNodes = %v, want %v", tt.name, got, tt.applied)
			}
		})
	}
}

func TestAPIVersionV1(t *testing.T) {
	t.Parallel()
	_, srv := newEmulator(t)
	c := newClient(t, srv, atlas.WithAPIVersion(atlas.APIVersionV1))
	got, err := c.UpdateEncryptionAtRest(t.Context(), groupID, awsRoleConfig())
	if err != nil {
		t.Fatalf("UpdateEncryptionAtRest(v1.0) = %v", err)
	}
	if got.AWSKMS.RoleID == nil || *got.AWSKMS.RoleID != roleID {
		t.Errorf("UpdateEncryptionAtRest(v1.0) roleId = %v, want %s (returned in v1.0)", got.AWSKMS.RoleID, roleID)
	}
}

func containsAny(s string, subs ...string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}
