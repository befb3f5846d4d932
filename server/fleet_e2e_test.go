package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/encryptiond/encryptiond/atlas"
	"github.com/encryptiond/encryptiond/atlas/atlastest"
	encryptionv1 "github.com/encryptiond/encryptiond/gen/atlas/encryption/v1"
	"github.com/encryptiond/encryptiond/server"
	"github.com/encryptiond/encryptiond/server/authz"
	"github.com/encryptiond/encryptiond/server/caller"
	"github.com/encryptiond/encryptiond/server/monitor"
	"github.com/encryptiond/encryptiond/server/watch/watchtest"
)

// The fleet end to end (WatchEncryptionAtRest, ListEncryptionAtRest and the
// monitor), over gRPC and REST on the in-memory path of e2e_test.go, with
// the emulator as Atlas and a fake clock for the watches' polls: the tests
// move time, and nothing depends on how long anything takes. The Atlas
// client makes one attempt per call, so that one failed poll is one
// failed GET.

// watchInterval is the harness's -watch-interval.
const watchInterval = 10 * time.Second

// identityHeader carries a test caller's gRPC identity, as mutual TLS
// would.
const identityHeader = "x-test-identity"

type fleetHarness struct {
	*harness
	clock *watchtest.Clock
	svc   *server.Server
}

// newFleetHarness starts the service with the emulator configured by cfg;
// with a policy, callers are authenticated by identityHeader and
// authorized by it.
func newFleetHarness(t *testing.T, cfg atlastest.EmulatorConfig, policy string) *fleetHarness {
	t.Helper()
	cfg.PublicKey, cfg.PrivateKey = "e2e-public", "e2e-private-key"
	emu, atlasSrv := atlastest.NewServer(t, cfg)
	newClient := func() *atlas.Client {
		c, err := atlas.NewClient(atlas.WithBaseURL(atlasSrv.URL), atlas.WithDigest("e2e-public", "e2e-private-key"),
			atlas.WithRetryPolicy(atlas.RetryPolicy{MaxAttempts: 1}))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.CloseIdleConnections)
		return c
	}
	clock := watchtest.NewClock(epoch)
	svc := server.New(newClient(), server.WithWatchClock(clock), server.WithWatchInterval(watchInterval), server.WithConcurrency(3))
	var opts []grpc.ServerOption
	if policy != "" {
		p, err := authz.ParsePolicy([]byte(policy))
		if err != nil {
			t.Fatal(err)
		}
		az, err := authz.NewInterceptor(authz.Config{Authenticate: true, Policy: p})
		if err != nil {
			t.Fatal(err)
		}
		identity := func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
			md, _ := metadata.FromIncomingContext(ctx)
			if ids := md.Get(identityHeader); len(ids) == 1 {
				ctx = caller.NewContext(ctx, ids[0])
			}
			return handler(ctx, req)
		}
		opts = append(opts, grpc.ChainUnaryInterceptor(identity, az.Intercept))
	}
	api, rest := serve(t, svc, opts...)
	return &fleetHarness{
		harness: &harness{emu: emu, direct: newClient(), grpc: api, rest: rest},
		clock:   clock,
		svc:     svc,
	}
}

// gets is how many GETs of encryptionAtRest Atlas answered.
func (h *fleetHarness) gets() int64 { return h.emu.Calls()["GET encryptionAtRest"] }

// settle waits until n loops wait for their next poll.
func (h *fleetHarness) settle(t *testing.T, n int) {
	t.Helper()
	if err := h.clock.WaitForTimers(waitCtx(t), n); err != nil {
		t.Fatalf("%d loops never waited for their next poll: %v", n, err)
	}
}

// advance moves the clock by d once a loop waits, and returns at once.
func (h *fleetHarness) advance(t *testing.T, d time.Duration) {
	t.Helper()
	h.settle(t, 1)
	h.clock.Advance(d)
}

// configStream is a watch of a project's configuration in progress.
type configStream = stream[*encryptionv1.EncryptionAtRest]

// watchConfig starts a watch of group over the transport named tr.
func (h *fleetHarness) watchConfig(t *testing.T, ctx context.Context, tr, group string) *configStream {
	t.Helper()
	w := newStream[*encryptionv1.EncryptionAtRest]()
	if tr == "gRPC" {
		s, err := h.grpc.WatchEncryptionAtRest(ctx, &encryptionv1.WatchEncryptionAtRestRequest{GroupId: group})
		if err != nil {
			t.Fatalf("WatchEncryptionAtRest = %v", err)
		}
		w.receive(s.Recv)
		return w
	}
	w.get(t, ctx, h.rest.Client(), h.rest.URL+"/v1/groups/"+group+"/encryptionAtRest:watch",
		func() *encryptionv1.EncryptionAtRest { return &encryptionv1.EncryptionAtRest{} })
	return w
}

var fleetTransports = []string{"gRPC", "REST"}

// gcpVersion enables Google Cloud KMS with key version n.
func gcpVersion(n int) string {
	return fmt.Sprintf(`{"googleCloudKms": {"enabled": true, "keyVersionResourceID": "projects/p/locations/global/keyRings/r/cryptoKeys/k/cryptoKeyVersions/%d", "roleId": "%s"}}`, n, e2eRole)
}

func TestWatchSeesValidFlipWithinOneInterval(t *testing.T) {
	t.Parallel()
	for _, tr := range fleetTransports {
		t.Run(tr, func(t *testing.T) {
			t.Parallel()
			h := newFleetHarness(t, atlastest.EmulatorConfig{AutoCreateGroups: true}, "")
			const group = "6a1b2c3d4e5f6a7b8c9d0e1f"
			h.enable(t, group, gcpVersion(1))
			w := h.watchConfig(t, waitCtx(t), tr, group)
			if got := w.next(t); !got.GetGoogleCloudKms().GetValid() {
				t.Fatalf("first message = %v, want googleCloudKms valid", got)
			}
			h.settle(t, 1)
			h.emu.SetKeyValid(group, atlastest.ProviderGCP, false)
			h.clock.Advance(watchInterval)
			got := w.next(t)
			if !got.GetGoogleCloudKms().GetEnabled() || got.GetGoogleCloudKms().GetValid() {
				t.Errorf("message after the key turned invalid = %v, want googleCloudKms enabled, valid false", got)
			}
			if moved := h.clock.Now().Sub(epoch); moved > watchInterval {
				t.Errorf("the flip reached the watch after %v, want within one interval (%v)", moved, watchInterval)
			}
			h.settle(t, 1)
			w.quiet(t, "after the flip")
		})
	}
}

func TestWatchSeesUpdateThroughTheServiceAtOnce(t *testing.T) {
	t.Parallel()
	for _, tr := range fleetTransports {
		t.Run(tr, func(t *testing.T) {
			t.Parallel()
			h := newFleetHarness(t, atlastest.EmulatorConfig{AutoCreateGroups: true}, "")
			const group = "6b1b2c3d4e5f6a7b8c9d0e1f"
			h.enable(t, group, gcpVersion(1))
			w := h.watchConfig(t, waitCtx(t), tr, group)
			w.next(t)
			h.settle(t, 1)
			before := h.gets()
			// The update goes through the other transport, as another client's would.
			if tr == "gRPC" {
				res, err := http.NewRequestWithContext(t.Context(), http.MethodPatch, h.rest.URL+"/v1/groups/"+group+"/encryptionAtRest", strings.NewReader(`{"googleCloudKms": {"keyVersionResourceID": "projects/p/locations/global/keyRings/r/cryptoKeys/k/cryptoKeyVersions/2"}}`))
				if err != nil {
					t.Fatal(err)
				}
				res.Header.Set("Content-Type", "application/json")
				resp, err := h.rest.Client().Do(res)
				if err != nil || resp.StatusCode != http.StatusOK {
					t.Fatalf("REST PATCH = %v %v", resp, err)
				}
				resp.Body.Close()
			} else {
				_, err := h.grpc.UpdateEncryptionAtRest(t.Context(), &encryptionv1.UpdateEncryptionAtRestRequest{GroupId: group, Config: &encryptionv1.ProviderConfig{
					Provider: &encryptionv1.ProviderConfig_GoogleCloudKms{GoogleCloudKms: &encryptionv1.GoogleCloudKms{
						KeyVersionResourceId: proto.String("projects/p/locations/global/keyRings/r/cryptoKeys/k/cryptoKeyVersions/2"),
					}},
				}})
				if err != nil {
					t.Fatalf("UpdateEncryptionAtRest = %v", err)
				}
			}
			got := w.next(t) // the clock has not moved
			if v := got.GetGoogleCloudKms().GetKeyVersionResourceId(); !strings.HasSuffix(v, "/2") {
				t.Errorf("message after the update = %v, want key version 2", got)
			}
			if h.clock.Now() != epoch {
				t.Errorf("the clock moved %v: the update should reach the watch without a poll", h.clock.Now().Sub(epoch))
			}
			// The update read the state (a partial update) but the watch
			// did not poll for it.
			if polls := h.gets() - before; polls > 1 {
				t.Errorf("%d GETs between the update and its message, want at most the update's own", polls)
			}
		})
	}
}

func TestFiftyWatchersShareOnePollPerInterval(t *testing.T) {
	t.Parallel()
	h := newFleetHarness(t, atlastest.EmulatorConfig{AutoCreateGroups: true}, "")
	const group = "6c1b2c3d4e5f6a7b8c9d0e1f"
	h.enable(t, group, gcpVersion(1))
	h.emu.ResetStats()
	ctx := waitCtx(t)
	var ws []*configStream
	for i := range 50 {
		ws = append(ws, h.watchConfig(t, ctx, fleetTransports[i%2], group))
	}
	for _, w := range ws {
		w.next(t)
	}
	h.settle(t, 1)
	if got := h.gets(); got != 1 {
		t.Fatalf("50 watchers (25 gRPC, 25 REST) joined: %d GETs, want 1", got)
	}
	for i := int64(2); i <= 4; i++ {
		h.clock.Advance(watchInterval)
		h.settle(t, 1)
		if got := h.gets(); got != i {
			t.Errorf("after %d intervals: %d GETs, want %d", i-1, got, i)
		}
	}
}

func TestRetryAfterHoldsBackEveryPoller(t *testing.T) {
	t.Parallel()
	h := newFleetHarness(t, atlastest.EmulatorConfig{AutoCreateGroups: true}, "")
	const a, b = "6d1b2c3d4e5f6a7b8c9d0e1f", "6d2b2c3d4e5f6a7b8c9d0e1f"
	ctx := waitCtx(t)
	wa := h.watchConfig(t, ctx, "gRPC", a)
	wa.next(t)
	h.settle(t, 1)

	const retryAfter = time.Minute
	h.emu.InjectFault(atlastest.Fault{Method: http.MethodGet, Status: http.StatusTooManyRequests, RetryAfter: retryAfter, GroupID: a})
	h.clock.Advance(watchInterval) // a's poll gets the 429
	h.settle(t, 1)
	gets := h.gets()
	// b's watch starts now: its first poll, and a's retry, wait for the
	// end of Atlas's Retry-After.
	wb := h.watchConfig(t, ctx, "REST", b)
	h.settle(t, 2)
	for moved := time.Duration(0); moved < retryAfter-2*time.Second; moved += time.Second {
		h.clock.Advance(time.Second)
		h.settle(t, 2)
		if got := h.gets(); got != gets {
			t.Fatalf("%v after a 429 with Retry-After: %v: %d GETs, want %d (none)", moved+time.Second, retryAfter, got, gets)
		}
	}
	wb.quiet(t, "before the end of Retry-After")
	h.clock.Advance(3 * time.Second)
	wb.next(t) // its first poll, once Atlas allows it
	h.settle(t, 2)
	if got := h.gets(); got != gets+2 {
		t.Errorf("after the Retry-After: %d GETs, want %d (a's and b's)", got, gets+2)
	}
	wa.quiet(t, "a's configuration did not change")
}

func TestWatchSurvivesFourFailedPollsAndEndsAfterFive(t *testing.T) {
	t.Parallel()
	for _, tr := range fleetTransports {
		t.Run(tr, func(t *testing.T) {
			t.Parallel()
			h := newFleetHarness(t, atlastest.EmulatorConfig{AutoCreateGroups: true}, "")
			const group = "6e1b2c3d4e5f6a7b8c9d0e1f"
			w := h.watchConfig(t, waitCtx(t), tr, group)
			w.next(t)
			h.emu.InjectFault(atlastest.Fault{Method: http.MethodGet, Status: http.StatusServiceUnavailable, Times: 4})
			for range 5 { // 4 failures, then a success
				h.advance(t, watchInterval)
			}
			h.settle(t, 1)
			w.quiet(t, "after 4 failed polls and a good one")

			h.emu.InjectFault(atlastest.Fault{Method: http.MethodGet, Status: http.StatusServiceUnavailable, Times: 5})
			for range 5 {
				h.advance(t, watchInterval)
			}
			err := w.ended(t)
			if tr == "gRPC" {
				if status.Code(err) != codes.Unavailable {
					t.Errorf("the watch after 5 failed polls in a row ended with %v, want UNAVAILABLE", err)
				}
			} else if e, ok := errors.AsType[*errREST](err); !ok || e.code != http.StatusServiceUnavailable {
				t.Errorf("the REST watch after 5 failed polls in a row ended with %v, want a 503 error line", err)
			}
			if got := h.gets(); got != 11 {
				t.Errorf("%d GETs, want 11: the first, 4 failed, 1 good, 5 failed", got)
			}
		})
	}
}

// listREST lists a page over REST with the query q.
func (h *fleetHarness) listREST(t *testing.T, q string) (int, *encryptionv1.ListEncryptionAtRestResponse, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, h.rest.URL+"/v1/groups/-/encryptionAtRest?"+q, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := h.rest.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	out := &encryptionv1.ListEncryptionAtRestResponse{}
	if res.StatusCode == http.StatusOK {
		if err := protojson.Unmarshal(body, out); err != nil {
			t.Fatalf("list body %s: %v", body, err)
		}
	}
	return res.StatusCode, out, string(body)
}

// fleetProjects adds n listed projects, named p0…, and returns their ids.
func fleetProjects(emu *atlastest.Emulator, prefix string, n int) []string {
	var ids []string
	for i := range n {
		id := fmt.Sprintf("%s%08x", prefix, i)
		emu.AddProject(id, fmt.Sprintf("p%d", i))
		ids = append(ids, id)
	}
	return ids
}

func TestListAcrossPagesWithAProjectFailing(t *testing.T) {
	t.Parallel()
	// Atlas answers 2 projects a page, whatever is asked: the service
	// reads several of Atlas's pages for one of its own.
	h := newFleetHarness(t, atlastest.EmulatorConfig{MaxItemsPerPage: 2}, "")
	ids := fleetProjects(h.emu, "7a1b2c3d4e5f6a7b", 6)
	h.enable(t, ids[0], gcpVersion(1))
	h.emu.InjectFault(atlastest.Fault{Method: http.MethodGet, Status: http.StatusInternalServerError, GroupID: ids[3], Times: 2}) // once per transport

	for _, tr := range fleetTransports {
		var got []string
		token, pages := "", 0
		for {
			var page *encryptionv1.ListEncryptionAtRestResponse
			if tr == "gRPC" {
				var err error
				page, err = h.grpc.ListEncryptionAtRest(t.Context(), &encryptionv1.ListEncryptionAtRestRequest{PageSize: 2, PageToken: token})
				if err != nil {
					t.Fatalf("%s: ListEncryptionAtRest page %d = %v", tr, pages+1, err)
				}
			} else {
				code, p, body := h.listREST(t, "pageSize=2&pageToken="+token)
				if code != http.StatusOK {
					t.Fatalf("%s: list page %d = %d %s", tr, pages+1, code, body)
				}
				page = p
			}
			pages++
			for _, p := range page.GetProjects() {
				switch {
				case p.GetGroupId() == ids[3]:
					if codes.Code(p.GetError().GetCode()) == codes.OK || p.GetEncryptionAtRest() != nil {
						t.Errorf("%s: the failing project = %v, want its error and no configuration", tr, p)
					}
				case p.GetError() != nil:
					t.Errorf("%s: project %s has error %v", tr, p.GetGroupId(), p.GetError())
				case p.GetGroupId() == ids[0] && !p.GetEncryptionAtRest().GetGoogleCloudKms().GetEnabled():
					t.Errorf("%s: project 0 = %v, want googleCloudKms enabled", tr, p)
				}
				got = append(got, p.GetGroupId()+"="+p.GetGroupName())
			}
			if token = page.GetNextPageToken(); token == "" {
				break
			}
		}
		var want []string
		for i, id := range ids {
			want = append(want, fmt.Sprintf("%s=p%d", id, i))
		}
		if !slices.Equal(got, want) || pages != 3 {
			t.Errorf("%s: listed %v in %d pages, want %v in 3", tr, got, pages, want)
		}
	}
	// Each page read the one page of Atlas's list it needed, no more.
	if got := h.emu.Calls()["GET groups"]; got != 6 {
		t.Errorf("two listings of 3 pages read Atlas's project list %d times, want 6", got)
	}
}

func TestListRefusesATamperedPageToken(t *testing.T) {
	t.Parallel()
	h := newFleetHarness(t, atlastest.EmulatorConfig{}, "")
	fleetProjects(h.emu, "7b1b2c3d4e5f6a7b", 3)
	first, err := h.grpc.ListEncryptionAtRest(t.Context(), &encryptionv1.ListEncryptionAtRestRequest{PageSize: 1})
	if err != nil || first.GetNextPageToken() == "" {
		t.Fatalf("first page = %v, %v; want a next page token", first, err)
	}
	token := first.GetNextPageToken()
	swap := map[byte]byte{'A': 'B'}
	c := token[3] // a byte of the position the token carries
	if swap[c] == 0 {
		swap[c] = 'A'
	}
	tampered := token[:3] + string(swap[c]) + token[4:]
	before := h.emu.Stats().Requests
	_, err = h.grpc.ListEncryptionAtRest(t.Context(), &encryptionv1.ListEncryptionAtRestRequest{PageSize: 1, PageToken: tampered})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), "page_token") {
		t.Errorf("a tampered page token = %v, want INVALID_ARGUMENT naming page_token", err)
	}
	if code, _, body := h.listREST(t, "pageToken="+tampered); code != http.StatusBadRequest || !strings.Contains(body, "page_token") {
		t.Errorf("REST: a tampered page token = %d %s, want 400 naming page_token", code, body)
	}
	if got := h.emu.Stats().Requests; got != before {
		t.Errorf("a refused token cost %d Atlas requests, want none", got-before)
	}
	if _, err := h.grpc.ListEncryptionAtRest(t.Context(), &encryptionv1.ListEncryptionAtRestRequest{PageSize: 1, PageToken: token}); err != nil {
		t.Errorf("the untampered token = %v", err)
	}
}

func TestListShowsOnlyWhatTheCallerMayRead(t *testing.T) {
	t.Parallel()
	const policy = `
callers:
  - identity: spiffe://example.org/auditor
    read: ["*"]
  - identity: spiffe://example.org/team-a
    read: ["7c1b2c3d4e5f6a7b00000001", "7c1b2c3d4e5f6a7b00000004"]
  - identity: spiffe://example.org/writer
    write: ["7c1b2c3d4e5f6a7b00000002"]
  - identity: spiffe://example.org/nobody
    read: []
`
	h := newFleetHarness(t, atlastest.EmulatorConfig{MaxItemsPerPage: 2}, policy)
	fleetProjects(h.emu, "7c1b2c3d4e5f6a7b", 6)
	tests := []struct {
		id   string
		want []string // by name
	}{
		{"spiffe://example.org/auditor", []string{"p0", "p1", "p2", "p3", "p4", "p5"}},
		{"spiffe://example.org/team-a", []string{"p1", "p4"}},
		{"spiffe://example.org/writer", []string{"p2"}}, // a writer may read what it may change
		{"spiffe://example.org/nobody", nil},
	}
	for _, tt := range tests {
		// Over gRPC: REST carries identities under mutual TLS only, which
		// the daemon's TestFleetUnderMutualTLS covers.
		var got []string
		token := ""
		for {
			ctx := metadata.AppendToOutgoingContext(t.Context(), identityHeader, tt.id)
			page, err := h.grpc.ListEncryptionAtRest(ctx, &encryptionv1.ListEncryptionAtRestRequest{PageSize: 1, PageToken: token})
			if err != nil {
				t.Fatalf("as %s: %v", tt.id, err)
			}
			for _, p := range page.GetProjects() {
				got = append(got, p.GetGroupName())
			}
			if token = page.GetNextPageToken(); token == "" {
				break
			}
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("%s lists %v, want %v", tt.id, got, tt.want)
		}
	}
	// An unauthenticated caller is refused, as for a Get.
	if _, err := h.grpc.ListEncryptionAtRest(t.Context(), &encryptionv1.ListEncryptionAtRestRequest{}); status.Code(err) != codes.Unauthenticated {
		t.Errorf("ListEncryptionAtRest without an identity = %v, want UNAUTHENTICATED", err)
	}
}

// logSink collects JSON log records; it is safe for concurrent writes.
type logSink struct {
	mu    sync.Mutex
	lines []map[string]any
}

func (s *logSink) Write(p []byte) (int, error) {
	var m map[string]any
	if err := json.Unmarshal(p, &m); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lines = append(s.lines, m)
	return len(p), nil
}

// transitions returns the monitor's records about keys, as "LEVEL group
// provider".
func (s *logSink) transitions() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, m := range s.lines {
		if msg, _ := m["msg"].(string); strings.HasPrefix(msg, "encryption at rest key") {
			out = append(out, fmt.Sprintf("%s %s %s", m["level"], m["group_name"], m["provider"]))
		}
	}
	return out
}

func TestMonitorLogsOncePerTransition(t *testing.T) {
	t.Parallel()
	h := newFleetHarness(t, atlastest.EmulatorConfig{}, "")
	ids := fleetProjects(h.emu, "7d1b2c3d4e5f6a7b", 3)
	h.enable(t, ids[0], gcpVersion(1))
	h.enable(t, ids[1], gcpVersion(1))
	h.emu.SetKeyValid(ids[1], atlastest.ProviderGCP, false) // invalid from the start
	sink := &logSink{}
	m, err := monitor.New(monitor.Config{All: true, Interval: watchInterval}, h.svc, h.direct, slog.New(slog.NewJSONHandler(sink, nil)), h.clock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { m.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	// The lister's loop and one poll loop per project wait.
	h.settle(t, 4)
	want := []string{"WARN p1 googleCloudKms"}
	check := func(when string) {
		t.Helper()
		if got := h.monitorLines(t, sink, len(want)); !slices.Equal(got, want) {
			t.Errorf("%s: transitions logged %q, want %q", when, got, want)
		}
	}
	check("at start")

	h.emu.SetKeyValid(ids[0], atlastest.ProviderGCP, false)
	h.clock.Advance(watchInterval)
	want = append(want, "WARN p0 googleCloudKms")
	check("p0's key turned invalid")
	for range 3 { // no change: nothing more
		h.settle(t, 4)
		h.clock.Advance(watchInterval)
	}
	h.settle(t, 4)
	check("three quiet intervals")

	h.emu.SetKeyValid(ids[1], atlastest.ProviderGCP, true)
	h.clock.Advance(watchInterval)
	want = append(want, "INFO p1 googleCloudKms")
	check("p1's key valid again")
	h.settle(t, 4)
	h.clock.Advance(watchInterval)
	h.settle(t, 4)
	check("one more interval")
}

// monitorLines waits until the sink holds at least n transitions (or a
// while passes) and returns them.
func (h *fleetHarness) monitorLines(t *testing.T, sink *logSink, n int) []string {
	t.Helper()
	ctx := waitCtx(t)
	for {
		got := sink.transitions()
		if len(got) >= n {
			// Let any further record in flight arrive before it is judged.
			h.settle(t, 4)
			return sink.transitions()
		}
		select {
		case <-ctx.Done():
			return got
		case <-time.After(time.Millisecond):
		}
	}
}
