package atlas_test

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/encryptiond/encryptiond/atlas"
	"github.com/encryptiond/encryptiond/atlas/atlastest"
)

// endpointEmulator is an emulator whose private endpoints change state on
// a clock the test moves.
func endpointEmulator(t *testing.T) (*atlastest.Emulator, *atlastest.Clock, *atlas.Client) {
	t.Helper()
	clock := atlastest.NewClock(time.Unix(1_700_000_000, 0))
	cfg := emulatorConfig()
	cfg.Now, cfg.PrivateEndpointDelay = clock.Now, time.Minute
	emu, srv := atlastest.NewServer(t, cfg)
	// A v1.0 client: private endpoints exist only in v2, where it calls them.
	return emu, clock, newClient(t, srv, atlas.WithAPIVersion(atlas.APIVersionV1))
}

func TestCreatePrivateEndpointSendsAtlasBody(t *testing.T) {
	t.Parallel()
	emu, _, c := endpointEmulator(t)
	ep, err := c.CreatePrivateEndpoint(t.Context(), groupID, atlas.CloudProviderAzure, "EUROPE_WEST")
	if err != nil {
		t.Fatalf("CreatePrivateEndpoint() = %v", err)
	}
	if ep.Status != atlas.EndpointInitiating || ep.CloudProvider != atlas.CloudProviderAzure || ep.RegionName != "EUROPE_WEST" || ep.ID == "" {
		t.Errorf("CreatePrivateEndpoint() = %+v, want an INITIATING Azure endpoint in EUROPE_WEST", ep)
	}
	reqs := emu.Requests()
	if len(reqs) != 1 {
		t.Fatalf("Atlas received %d requests, want 1", len(reqs))
	}
	r := reqs[0]
	want := atlastest.RecordedRequest{
		Method: "POST", Path: "/api/atlas/v2/groups/" + groupID + "/encryptionAtRest/AZURE/privateEndpoints",
		ContentType: atlastest.MediaTypeV2, Accept: atlastest.MediaTypeV2, Body: []byte(`{"regionName":"EUROPE_WEST"}`),
	}
	if diff := cmp.Diff(want, r); diff != "" {
		t.Errorf("the create request (-want +got):\n%s", diff)
	}
}

func TestPrivateEndpointRoundTrip(t *testing.T) {
	t.Parallel()
	emu, clock, c := endpointEmulator(t)
	ctx := t.Context()
	var created []string
	for _, region := range []string{"US_EAST_1", "EU_WEST_1", "AP_SOUTH_1"} {
		ep, err := c.CreatePrivateEndpoint(ctx, groupID, atlas.CloudProviderAWS, region)
		if err != nil {
			t.Fatalf("CreatePrivateEndpoint(%s) = %v", region, err)
		}
		created = append(created, ep.ID)
	}

	// Two pages of two.
	var listed []string
	opts := atlas.ListOptions{ItemsPerPage: 2}
	for page := 1; ; page++ {
		opts.PageNum = page
		p, err := c.ListPrivateEndpoints(ctx, groupID, atlas.CloudProviderAWS, opts)
		if err != nil {
			t.Fatalf("ListPrivateEndpoints(page %d) = %v", page, err)
		}
		for _, ep := range p.Results {
			listed = append(listed, ep.ID)
		}
		if p.TotalCount == nil || *p.TotalCount != 3 {
			t.Errorf("page %d: TotalCount = %v, want 3", page, p.TotalCount)
		}
		if !p.HasNext(opts) {
			break
		}
		if page > 2 {
			t.Fatalf("HasNext() still true on page %d of 2", page)
		}
	}
	if diff := cmp.Diff(created, listed); diff != "" {
		t.Errorf("listed across pages (-created +listed):\n%s", diff)
	}

	clock.Advance(time.Minute)
	ep, err := c.GetPrivateEndpoint(ctx, groupID, atlas.CloudProviderAWS, created[0])
	if err != nil || ep.Status != atlas.EndpointActive {
		t.Fatalf("GetPrivateEndpoint() = %+v, %v; want ACTIVE", ep, err)
	}
	if err := c.DeletePrivateEndpoint(ctx, groupID, atlas.CloudProviderAWS, created[0]); err != nil {
		t.Fatalf("DeletePrivateEndpoint() = %v", err)
	}
	if ep, err = c.GetPrivateEndpoint(ctx, groupID, atlas.CloudProviderAWS, created[0]); err != nil || ep.Status != atlas.EndpointDeleting {
		t.Errorf("GetPrivateEndpoint() after delete = %+v, %v; want DELETING", ep, err)
	}
	clock.Advance(time.Minute)
	_, err = c.GetPrivateEndpoint(ctx, groupID, atlas.CloudProviderAWS, created[0])
	if !errors.Is(err, &atlas.Error{HTTPStatus: http.StatusNotFound}) {
		t.Errorf("GetPrivateEndpoint() once gone = %v, want a 404 *atlas.Error", err)
	}
	var aerr *atlas.Error
	if errors.As(err, &aerr) && aerr.Resource != "privateEndpoint" {
		t.Errorf("the 404 names the resource %q, want privateEndpoint", aerr.Resource)
	}
	if got := emu.Calls(); got["GET privateEndpoints"] != 2 || got["GET privateEndpoint"] != 3 {
		t.Errorf("Calls() = %v, want 2 list pages and 3 reads", got)
	}
}

func TestPrivateEndpointChangesAreNotResent(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		fault atlastest.Fault
		call  func(c *atlas.Client) error
		calls string
		want  error
	}{
		{"create answered 503", atlastest.Fault{Status: 503, Resource: "privateEndpoints"},
			func(c *atlas.Client) error {
				_, err := c.CreatePrivateEndpoint(t.Context(), groupID, atlas.CloudProviderAWS, "US_EAST_1")
				return err
			}, "POST privateEndpoints", &atlas.Error{HTTPStatus: 503}},
		{"create dropped after it was applied", atlastest.Fault{DropAfterApply: true, Resource: "privateEndpoints"},
			func(c *atlas.Client) error {
				_, err := c.CreatePrivateEndpoint(t.Context(), groupID, atlas.CloudProviderAWS, "US_EAST_1")
				return err
			}, "POST privateEndpoints", atlas.ErrOutcomeUnknown},
		{"create answered with a malformed body", atlastest.Fault{Malformed: true, Resource: "privateEndpoints"},
			func(c *atlas.Client) error {
				_, err := c.CreatePrivateEndpoint(t.Context(), groupID, atlas.CloudProviderAWS, "US_EAST_1")
				return err
			}, "POST privateEndpoints", atlas.ErrUpdateAppliedUnreadable},
		{"delete answered 500", atlastest.Fault{Status: 500, Resource: "privateEndpoint"},
			func(c *atlas.Client) error {
				return c.DeletePrivateEndpoint(t.Context(), groupID, atlas.CloudProviderAWS, "0123456789abcdef01234567")
			}, "DELETE privateEndpoint", &atlas.Error{HTTPStatus: 500}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			emu, _, c := endpointEmulator(t)
			emu.InjectFault(tt.fault)
			if err := tt.call(c); !errors.Is(err, tt.want) {
				t.Errorf("call = %v, want %v", err, tt.want)
			}
			if got := emu.Calls()[tt.calls]; got != 1 {
				t.Errorf("Atlas received %d %s, want exactly 1: a change is never resent", got, tt.calls)
			}
		})
	}
}

func TestGetPrivateEndpointRetriesServerErrors(t *testing.T) {
	t.Parallel()
	emu, _, c := endpointEmulator(t)
	ep, err := c.CreatePrivateEndpoint(t.Context(), groupID, atlas.CloudProviderAWS, "US_EAST_1")
	if err != nil {
		t.Fatal(err)
	}
	emu.InjectFault(atlastest.Fault{Status: 503, Resource: "privateEndpoint", Times: 2})
	if _, err := c.GetPrivateEndpoint(t.Context(), groupID, atlas.CloudProviderAWS, ep.ID); err != nil {
		t.Errorf("GetPrivateEndpoint() after two 503s = %v, want the endpoint", err)
	}
	if got := emu.Calls()["GET privateEndpoint"]; got != 3 {
		t.Errorf("%d GETs, want 3", got)
	}
}
