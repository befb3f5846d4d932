package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/encryptiond/encryptiond/atlas"
	"github.com/encryptiond/encryptiond/atlas/atlastest"
	encryptionv1 "github.com/encryptiond/encryptiond/gen/atlas/encryption/v1"
	"github.com/encryptiond/encryptiond/server"
	"github.com/encryptiond/encryptiond/server/watch/watchtest"
)

// The private endpoints end to end, over gRPC and over REST, on the same
// in-memory path as e2e_test.go, with one fake clock for both the
// emulator's lifecycles and the watches' polls: the tests move time, and
// nothing depends on how long anything takes.

// endpointDelay is how long the emulator's endpoints stay INITIATING and
// DELETING.
const endpointDelay = time.Minute

// epoch is when every test's clock starts, and its endpoints are created.
var epoch = time.Unix(1_700_000_000, 0)

// since is how long the test's clock has moved.
func (h *peHarness) since() time.Duration { return h.clock.Now().Sub(epoch) }

type peHarness struct {
	*harness
	clock *watchtest.Clock
}

func newPEHarness(t *testing.T) *peHarness {
	t.Helper()
	clock := watchtest.NewClock(epoch)
	emu, atlasSrv := atlastest.NewServer(t, atlastest.EmulatorConfig{
		PublicKey: "e2e-public", PrivateKey: "e2e-private-key", AutoCreateGroups: true,
		Now: clock.Now, PrivateEndpointDelay: endpointDelay,
	})
	newClient := func() *atlas.Client {
		c, err := atlas.NewClient(atlas.WithBaseURL(atlasSrv.URL), atlas.WithDigest("e2e-public", "e2e-private-key"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.CloseIdleConnections)
		return c
	}
	api, rest := serve(t, server.New(newClient(), server.WithWatchClock(clock)))
	return &peHarness{
		harness: &harness{emu: emu, direct: newClient(), grpc: api, rest: rest},
		clock:   clock,
	}
}

// waitCtx bounds a test's waits, so that a bug fails it rather than hangs
// it.
func waitCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// poll lets the watches' loops, once they wait for their next poll, make
// it: it moves the clock to the earliest timer and waits until every loop
// that polled waits again (or has ended). It returns how far it moved.
func (h *peHarness) poll(t *testing.T) time.Duration {
	t.Helper()
	if err := h.clock.WaitForTimers(waitCtx(t), 1); err != nil {
		t.Fatalf("no watch waits for its next poll: %v", err)
	}
	d, _ := h.clock.NextTimer()
	h.clock.Advance(d)
	return d
}

// settle waits until n loops wait for their next poll.
func (h *peHarness) settle(t *testing.T, n int) {
	t.Helper()
	if err := h.clock.WaitForTimers(waitCtx(t), n); err != nil {
		t.Fatalf("%d loops never waited for their next poll: %v", n, err)
	}
}

func (h *peHarness) polls() int64 { return h.emu.Calls()["GET privateEndpoint"] }

// atlasCalls is the number of requests Atlas answered, of every kind.
func (h *peHarness) atlasCalls() int64 {
	var n int64
	for _, c := range h.emu.Calls() {
		n += c
	}
	return n
}

// createDirect makes an endpoint straight through Atlas.
func (h *peHarness) createDirect(t *testing.T, group, cloud, region string) *atlas.PrivateEndpoint {
	t.Helper()
	ep, err := h.direct.CreatePrivateEndpoint(t.Context(), group, cloud, region)
	if err != nil {
		t.Fatalf("creating %s %s through Atlas: %v", cloud, region, err)
	}
	return ep
}

// watchStream is a watch of a private endpoint in progress.
type watchStream = stream[*encryptionv1.PrivateEndpoint]

// watch starts a watch over the transport named tr.
func (h *peHarness) watch(t *testing.T, ctx context.Context, tr, group, cloud, id string) *watchStream {
	t.Helper()
	w := newStream[*encryptionv1.PrivateEndpoint]()
	if tr == "gRPC" {
		s, err := h.grpc.WatchPrivateEndpoint(ctx, &encryptionv1.WatchPrivateEndpointRequest{
			GroupId: group, CloudProvider: encryptionv1.CloudProvider(encryptionv1.CloudProvider_value[cloud]), EndpointId: id,
		})
		if err != nil {
			t.Fatalf("WatchPrivateEndpoint = %v", err)
		}
		w.receive(s.Recv)
		return w
	}
	w.get(t, ctx, h.rest.Client(), h.rest.URL+"/v1/groups/"+group+"/encryptionAtRest/"+cloud+"/privateEndpoints/"+id+":watch",
		func() *encryptionv1.PrivateEndpoint { return &encryptionv1.PrivateEndpoint{} })
	return w
}

// call makes one unary call over the transport named tr: gRPC with req,
// or REST with method, path (after /v1/groups/<group>/encryptionAtRest/)
// and body. It returns the answer as protojson (or the error), its gRPC
// code and, for REST, the HTTP status.
func (h *peHarness) call(t *testing.T, tr string, req any, method, path, body string) (string, codes.Code, int) {
	t.Helper()
	if tr == "gRPC" {
		var (
			res proto.Message
			err error
		)
		ctx := t.Context()
		switch r := req.(type) {
		case *encryptionv1.CreatePrivateEndpointRequest:
			res, err = h.grpc.CreatePrivateEndpoint(ctx, r)
		case *encryptionv1.DeletePrivateEndpointRequest:
			res, err = h.grpc.DeletePrivateEndpoint(ctx, r)
		case *encryptionv1.GetPrivateEndpointRequest:
			res, err = h.grpc.GetPrivateEndpoint(ctx, r)
		case *encryptionv1.ListPrivateEndpointsRequest:
			res, err = h.grpc.ListPrivateEndpoints(ctx, r)
		case *encryptionv1.UpdateEncryptionAtRestRequest:
			res, err = h.grpc.UpdateEncryptionAtRest(ctx, r)
		default:
			t.Fatalf("call: unknown request %T", req)
		}
		if err != nil {
			return protojson.Format(status.Convert(err).Proto()), status.Code(err), 0
		}
		b, _ := protojson.Marshal(res)
		return string(b), codes.OK, 0
	}
	r, err := http.NewRequestWithContext(t.Context(), method, h.rest.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	r.Header.Set("Content-Type", "application/json")
	res, err := h.rest.Client().Do(r)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode == http.StatusOK {
		return string(b), codes.OK, res.StatusCode
	}
	var e struct {
		Error struct {
			Status string `json:"status"`
		} `json:"error"`
	}
	_ = json.Unmarshal(b, &e)
	code := codes.Unknown
	_ = code.UnmarshalJSON([]byte(`"` + e.Error.Status + `"`))
	return string(b), code, res.StatusCode
}

// create makes an endpoint through encryptiond over tr.
func (h *peHarness) create(t *testing.T, tr, group, cloud, region string) *encryptionv1.PrivateEndpoint {
	t.Helper()
	out, code, _ := h.call(t, tr,
		&encryptionv1.CreatePrivateEndpointRequest{GroupId: group, CloudProvider: encryptionv1.CloudProvider(encryptionv1.CloudProvider_value[cloud]), PrivateEndpoint: &encryptionv1.PrivateEndpoint{RegionName: region}},
		http.MethodPost, "/v1/groups/"+group+"/encryptionAtRest/"+cloud+"/privateEndpoints", `{"regionName": "`+region+`"}`)
	if code != codes.OK {
		t.Fatalf("Create(%s %s) over %s = %v %s", cloud, region, tr, code, out)
	}
	ep := &encryptionv1.PrivateEndpoint{}
	if err := protojson.Unmarshal([]byte(out), ep); err != nil {
		t.Fatalf("Create answered %s: %v", out, err)
	}
	return ep
}

var transportNames = []string{"gRPC", "REST"}

func TestPrivateEndpointLifecycles(t *testing.T) {
	t.Parallel()
	const group = "7a1b2c3d4e5f6a7b8c9d0e1f"
	for _, tr := range transportNames {
		t.Run(tr+"/Azure: create, watch, approve, ACTIVE", func(t *testing.T) {
			t.Parallel()
			h := newPEHarness(t)
			ep := h.create(t, tr, group, "AZURE", "EUROPE_WEST")
			if ep.GetStatus() != encryptionv1.PrivateEndpoint_INITIATING || len(ep.GetId()) != 24 || ep.GetCloudProvider() != encryptionv1.CloudProvider_AZURE {
				t.Fatalf("Create = %v, want an INITIATING Azure endpoint with an id", ep)
			}
			w := h.watch(t, t.Context(), tr, group, "AZURE", ep.GetId())
			if got := w.next(t).GetStatus(); got != encryptionv1.PrivateEndpoint_INITIATING {
				t.Fatalf("first message %v, want the current state, INITIATING", got)
			}
			for h.since() < endpointDelay {
				h.poll(t) // nothing changes until the delay passed
			}
			pending := w.next(t)
			if pending.GetStatus() != encryptionv1.PrivateEndpoint_PENDING_ACCEPTANCE || pending.GetPrivateEndpointConnectionName() == "" {
				t.Fatalf("message %v, want PENDING_ACCEPTANCE with the connection to approve", pending)
			}
			if err := h.emu.ApprovePrivateEndpoint(group, ep.GetId()); err != nil {
				t.Fatal(err)
			}
			h.poll(t)
			if got := w.next(t).GetStatus(); got != encryptionv1.PrivateEndpoint_ACTIVE {
				t.Fatalf("message after approval %v, want ACTIVE", got)
			}
			if err := w.ended(t); err != nil {
				t.Errorf("the watch ended with %v, want OK after ACTIVE", err)
			}
		})

		t.Run(tr+"/AWS reaches ACTIVE", func(t *testing.T) {
			t.Parallel()
			h := newPEHarness(t)
			ep := h.create(t, tr, group, "AWS", "US_EAST_1")
			w := h.watch(t, t.Context(), tr, group, "AWS", ep.GetId())
			seen := []encryptionv1.PrivateEndpoint_Status{w.next(t).GetStatus()}
			for h.since() < endpointDelay {
				h.poll(t) // INITIATING until the delay passed: no message
			}
			seen = append(seen, w.next(t).GetStatus())
			if want := []encryptionv1.PrivateEndpoint_Status{encryptionv1.PrivateEndpoint_INITIATING, encryptionv1.PrivateEndpoint_ACTIVE}; fmt.Sprint(seen) != fmt.Sprint(want) {
				t.Errorf("the watch sent %v, want %v", seen, want)
			}
			if err := w.ended(t); err != nil {
				t.Errorf("the watch ended with %v, want OK", err)
			}
		})

		t.Run(tr+"/FAILED ends the watch with its errorMessage", func(t *testing.T) {
			t.Parallel()
			h := newPEHarness(t)
			ep := h.create(t, tr, group, "AZURE", "UK_SOUTH")
			w := h.watch(t, t.Context(), tr, group, "AZURE", ep.GetId())
			w.next(t)
			if err := h.emu.FailPrivateEndpoint(group, ep.GetId(), "The key vault keys-prod refused the connection."); err != nil {
				t.Fatal(err)
			}
			h.poll(t)
			failed := w.next(t)
			if failed.GetStatus() != encryptionv1.PrivateEndpoint_FAILED || failed.GetErrorMessage() != "The key vault keys-prod refused the connection." {
				t.Errorf("message %v, want FAILED with Atlas's errorMessage", failed)
			}
			if err := w.ended(t); err != nil {
				t.Errorf("the watch ended with %v, want OK after FAILED", err)
			}
		})

		t.Run(tr+"/delete, and the watch ends with DELETED", func(t *testing.T) {
			t.Parallel()
			h := newPEHarness(t)
			ep := h.create(t, tr, group, "AWS", "EU_WEST_1")
			w := h.watch(t, t.Context(), tr, group, "AWS", ep.GetId())
			w.next(t) // INITIATING
			h.poll(t) // still INITIATING: the next poll is 2 s away
			h.settle(t, 1)
			polls := h.polls()
			out, code, _ := h.call(t, tr, &encryptionv1.DeletePrivateEndpointRequest{GroupId: group, CloudProvider: encryptionv1.CloudProvider_AWS, EndpointId: ep.GetId()},
				http.MethodDelete, "/v1/groups/"+group+"/encryptionAtRest/AWS/privateEndpoints/"+ep.GetId(), "")
			if code != codes.OK || !strings.Contains(out, `"DELETING"`) {
				t.Fatalf("Delete = %v %s, want the endpoint DELETING", code, out)
			}
			// The watch hears of the deletion at once: Delete pushed it.
			if got := w.next(t).GetStatus(); got != encryptionv1.PrivateEndpoint_DELETING {
				t.Fatalf("message after Delete %v, want DELETING", got)
			}
			if got := h.polls() - polls; got != 1 {
				t.Errorf("%d GETs of the endpoint between the watch's first poll and the push, want 1: Delete's read back", got)
			}
			// The push made the next poll 1 s away again; once the loop
			// waits for it, let the endpoint be gone in Atlas, and poll.
			if err := h.clock.WaitForTimerIn(waitCtx(t), time.Second); err != nil {
				t.Fatalf("the watch did not poll again 1 s after the push: %v", err)
			}
			h.clock.Advance(endpointDelay)
			last := w.next(t)
			if last.GetStatus() != encryptionv1.PrivateEndpoint_DELETED || last.GetId() != ep.GetId() || last.GetCloudProvider() != encryptionv1.CloudProvider_AWS {
				t.Errorf("last message %v, want DELETED naming the endpoint", last)
			}
			if err := w.ended(t); err != nil {
				t.Errorf("the watch ended with %v, want OK after DELETED", err)
			}
			_, code, _ = h.call(t, tr, &encryptionv1.GetPrivateEndpointRequest{GroupId: group, CloudProvider: encryptionv1.CloudProvider_AWS, EndpointId: ep.GetId()},
				http.MethodGet, "/v1/groups/"+group+"/encryptionAtRest/AWS/privateEndpoints/"+ep.GetId(), "")
			if code != codes.NotFound {
				t.Errorf("Get of the deleted endpoint = %v, want NOT_FOUND", code)
			}
		})

		t.Run(tr+"/a list spanning two pages", func(t *testing.T) {
			t.Parallel()
			h := newPEHarness(t)
			var ids []string
			for _, r := range []string{"US_EAST_1", "US_WEST_2", "EU_WEST_1"} {
				ids = append(ids, h.createDirect(t, group, "AWS", r).ID)
			}
			h.createDirect(t, group, "AZURE", "US_EAST_2") // another provider's
			var got []string
			token := ""
			for page := 1; ; page++ {
				path := "/v1/groups/" + group + "/encryptionAtRest/AWS/privateEndpoints?pageSize=2"
				if token != "" {
					path += "&pageToken=" + token
				}
				out, code, _ := h.call(t, tr, &encryptionv1.ListPrivateEndpointsRequest{GroupId: group, CloudProvider: encryptionv1.CloudProvider_AWS, PageSize: 2, PageToken: token}, http.MethodGet, path, "")
				if code != codes.OK {
					t.Fatalf("List page %d = %v %s", page, code, out)
				}
				res := &encryptionv1.ListPrivateEndpointsResponse{}
				if err := protojson.Unmarshal([]byte(out), res); err != nil {
					t.Fatal(err)
				}
				if res.GetTotalSize() != 3 {
					t.Errorf("page %d: totalSize %d, want 3", page, res.GetTotalSize())
				}
				for _, ep := range res.GetPrivateEndpoints() {
					got = append(got, ep.GetId())
				}
				if token = res.GetNextPageToken(); token == "" {
					if page != 2 {
						t.Errorf("the list ended on page %d, want 2", page)
					}
					break
				}
				if page > 2 {
					t.Fatalf("a page token after page %d of 2", page)
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(ids) {
				t.Errorf("listed %v, want %v in Atlas's order", got, ids)
			}
		})
	}
}

func TestPrivateEndpointRefusalsReachNoAtlas(t *testing.T) {
	t.Parallel()
	const group = "7a1b2c3d4e5f6a7b8c9d0e1f"
	tests := []struct {
		name, cloud, region string
		wantInAnswer        string
	}{
		{"GCP", "GCP", "US_EAST_1", "Atlas offers no private endpoints for Google Cloud KMS"},
		{"an Azure region for AWS", "AWS", "EUROPE_WEST", "private_endpoint.region_name"},
		{"an AWS region for Azure", "AZURE", "AP_SOUTH_1", "private_endpoint.region_name"},
	}
	for _, tr := range transportNames {
		for _, tt := range tests {
			t.Run(tr+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				h := newPEHarness(t)
				out, code, httpStatus := h.call(t, tr,
					&encryptionv1.CreatePrivateEndpointRequest{GroupId: group, CloudProvider: encryptionv1.CloudProvider(encryptionv1.CloudProvider_value[tt.cloud]), PrivateEndpoint: &encryptionv1.PrivateEndpoint{RegionName: tt.region}},
					http.MethodPost, "/v1/groups/"+group+"/encryptionAtRest/"+tt.cloud+"/privateEndpoints", `{"regionName": "`+tt.region+`"}`)
				if code != codes.InvalidArgument || tr == "REST" && httpStatus != http.StatusBadRequest || !strings.Contains(out, tt.wantInAnswer) {
					t.Errorf("Create(%s %s) = %v (HTTP %d) %s, want INVALID_ARGUMENT mentioning %q", tt.cloud, tt.region, code, httpStatus, out, tt.wantInAnswer)
				}
				if n := h.atlasCalls(); n != 0 {
					t.Errorf("the refusal cost %d Atlas calls (%v), want 0", n, h.emu.Calls())
				}
			})
		}
	}
}

func TestAzureKeyVaultStaysWhileEndpointsExist(t *testing.T) {
	t.Parallel()
	const group = "7a1b2c3d4e5f6a7b8c9d0e1f"
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			t.Parallel()
			h := newPEHarness(t)
			h.enable(t, group, azureEnable)
			h.createDirect(t, group, "AZURE", "US_EAST_2")
			h.emu.ResetStats()
			code, httpStatus, seen := tr.update(t, h.harness, group, `{"azureKeyVault": {"keyVaultName": "other-vault", "resourceGroupName": "other-rg"}}`, "")
			if code != codes.InvalidArgument || tr.name == "REST" && httpStatus != http.StatusBadRequest {
				t.Fatalf("moving the key vault = %v (HTTP %d) %s, want INVALID_ARGUMENT", code, httpStatus, seen)
			}
			for _, field := range []string{"config.azure_key_vault.key_vault_name", "config.azure_key_vault.resource_group_name"} {
				if !strings.Contains(seen, field) || !strings.Contains(seen, "cannot change while the project has Azure Key Vault private endpoints") {
					t.Errorf("the refusal %s lacks a field violation of %s", seen, field)
				}
			}
			want := map[string]int64{"GET encryptionAtRest": 1, "GET privateEndpoints": 1}
			if got := h.emu.Calls(); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("Atlas calls %v, want %v: the state, the list, and no PATCH", got, want)
			}
		})
	}
}

// TestFiftyWatchersShareOnePoll watches one endpoint 50 times, half over
// gRPC and half over REST, and counts the emulator's GETs of it: one per
// interval of the backoff, until the endpoint is ACTIVE and every watch
// ends; then none.
func TestFiftyWatchersShareOnePoll(t *testing.T) {
	t.Parallel()
	const group = "7a1b2c3d4e5f6a7b8c9d0e1f"
	h := newPEHarness(t)
	ep := h.create(t, "gRPC", group, "AWS", "US_EAST_1")

	var ws []*watchStream
	for i := range 50 {
		ws = append(ws, h.watch(t, t.Context(), transportNames[i%2], group, "AWS", ep.GetId()))
	}
	for _, w := range ws {
		if got := w.next(t).GetStatus(); got != encryptionv1.PrivateEndpoint_INITIATING {
			t.Fatalf("first message %v, want INITIATING", got)
		}
	}
	h.settle(t, 1)
	if got := h.polls(); got != 1 {
		t.Fatalf("50 watchers joined: %d GETs of the endpoint, want 1", got)
	}
	var waits []time.Duration
	for polls := int64(1); ; {
		waits = append(waits, h.poll(t))
		polls++
		if h.since() >= endpointDelay {
			break // this poll found it ACTIVE
		}
		h.settle(t, 1)
		if got := h.polls(); got != polls {
			t.Fatalf("after %v: %d GETs of the endpoint, want %d: one per interval", waits, got, polls)
		}
	}
	var wg sync.WaitGroup
	for _, w := range ws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if got := w.next(t).GetStatus(); got != encryptionv1.PrivateEndpoint_ACTIVE {
				t.Errorf("last message %v, want ACTIVE", got)
			}
			if err := w.ended(t); err != nil {
				t.Errorf("a watch ended with %v, want OK", err)
			}
		}()
	}
	wg.Wait()
	if want := []time.Duration{1, 2, 4, 8, 16, 30}; fmt.Sprint(waits) != fmt.Sprint(scale(want, time.Second)) {
		t.Errorf("the polls came after %v, want a backoff from 1s to 30s", waits)
	}
	polls := h.polls()
	if want := int64(len(waits) + 1); polls != want {
		t.Errorf("%d GETs of the endpoint in all, want %d", polls, want)
	}
	// Nobody watches now: no poll runs.
	if n := h.clock.Timers(); n != 0 {
		t.Errorf("%d timers pending after every watch ended, want none", n)
	}
	h.clock.Advance(time.Hour)
	if got := h.polls(); got != polls {
		t.Errorf("%d GETs after every watch ended, want none", got-polls)
	}
}

func scale(ds []time.Duration, unit time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d * unit
	}
	return out
}
