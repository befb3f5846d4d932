package server_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"

	"github.com/encryptiond/encryptiond/atlas"
	"github.com/encryptiond/encryptiond/atlas/atlastest"
	encryptionv1 "github.com/encryptiond/encryptiond/gen/atlas/encryption/v1"
	"github.com/encryptiond/encryptiond/server"
)

// Round trips to Atlas are most of the service's latency: these tests
// count them at the emulator, which sees every HTTP exchange, digest
// challenges included. They are exact counts, not timings; `make bench`
// measures the same through the real binaries.

const (
	tripsGroup    = "0123456789abcdef01234567"
	tripsWarmup   = "fedcba9876543210fedcba98"
	awsRoleEnable = `{"awsKms": {"enabled": true, "customerMasterKeyID": "arn:aws:kms:us-east-1:123456789012:key/trips", "region": "US_EAST_1", "roleId": "` + e2eRole + `"}}`
)

// warm makes the server's Atlas client answer its digest challenge, on a
// project the test does not use, then zeroes the emulator's counters.
func (h *harness) warm(t *testing.T) {
	t.Helper()
	if _, err := h.grpc.GetEncryptionAtRest(t.Context(), &encryptionv1.GetEncryptionAtRestRequest{GroupId: tripsWarmup}); err != nil {
		t.Fatalf("warm-up Get = %v", err)
	}
	h.emu.ResetStats()
}

func TestRoundTripsPerCall(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		setup string // enabled through Atlas first
		body  string // an update; empty for a Get
		query string
		rest  bool
		// The most exchanges the call may cost, and how many PATCHes.
		maxExchanges, wantPatches int64
	}{
		{name: "Get over gRPC", maxExchanges: 1},
		{name: "Get over REST", rest: true, maxExchanges: 1},
		{name: "enable with the whole document", body: awsRoleEnable, maxExchanges: 1, wantPatches: 1},
		{name: "partial update reads, then patches", setup: awsRoleEnable, body: `{"awsKms": {"region": "EU_WEST_1"}}`, maxExchanges: 2, wantPatches: 1},
		{name: "partial update over REST", setup: awsRoleEnable, body: `{"awsKms": {"region": "EU_WEST_1"}}`, rest: true, maxExchanges: 2, wantPatches: 1},
		{name: "disable", setup: awsRoleEnable, body: `{"awsKms": {"enabled": false}}`, maxExchanges: 2, wantPatches: 1},
		{name: "disable over REST", setup: awsRoleEnable, body: `{"awsKms": {"enabled": false}}`, rest: true, maxExchanges: 2, wantPatches: 1},
		{name: "validateOnly reads only", setup: awsRoleEnable, body: `{"awsKms": {"region": "EU_WEST_1"}}`, query: "validateOnly=true", maxExchanges: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			if tt.setup != "" {
				h.enable(t, tripsGroup, tt.setup)
			}
			h.warm(t)

			switch {
			case tt.body == "" && tt.rest:
				res, err := http.Get(h.rest.URL + "/v1/groups/" + tripsGroup + "/encryptionAtRest")
				if err != nil {
					t.Fatal(err)
				}
				res.Body.Close()
				if res.StatusCode != http.StatusOK {
					t.Fatalf("REST Get = %s, want 200", res.Status)
				}
			case tt.body == "":
				if _, err := h.grpc.GetEncryptionAtRest(t.Context(), &encryptionv1.GetEncryptionAtRestRequest{GroupId: tripsGroup}); err != nil {
					t.Fatalf("Get = %v", err)
				}
			default:
				tr := transports[0]
				if tt.rest {
					tr = transports[1]
				}
				if code, _, seen := tr.update(t, h, tripsGroup, tt.body, tt.query); code != codes.OK {
					t.Fatalf("Update(%s) = %v (%s), want OK", tt.body, code, seen)
				}
			}

			s := h.emu.Stats()
			if s.Requests > tt.maxExchanges {
				t.Errorf("Atlas exchanges = %d (%d GET, %d PATCH, %d challenges), want at most %d", s.Requests, s.Gets, s.Patches, s.Challenges, tt.maxExchanges)
			}
			if s.Patches != tt.wantPatches {
				t.Errorf("PATCHes = %d, want %d", s.Patches, tt.wantPatches)
			}
			if s.Challenges != 0 {
				t.Errorf("digest challenges with a warm client = %d, want 0", s.Challenges)
			}
		})
	}
}

// TestDigestChallengesPerThousandCalls: the one challenge a cold client
// needs is reused for every later call, concurrent ones included.
func TestDigestChallengesPerThousandCalls(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.emu.ResetStats() // the cold client's challenge counts
	const calls, workers = 1000, 8
	groups := []string{tripsGroup, tripsWarmup, "00000000000000000000abcd", "ffffffffffffffffffff0000"}
	var wg sync.WaitGroup
	errs := make(chan error, calls)
	// One call first: with concurrent cold calls each would answer its own
	// challenge, which is allowed but not steady state.
	if _, err := h.grpc.GetEncryptionAtRest(t.Context(), &encryptionv1.GetEncryptionAtRestRequest{GroupId: groups[0]}); err != nil {
		t.Fatalf("Get = %v", err)
	}
	for w := range workers {
		wg.Go(func() {
			for i := w; i < calls-1; i += workers {
				_, err := h.grpc.GetEncryptionAtRest(t.Context(), &encryptionv1.GetEncryptionAtRestRequest{GroupId: groups[i%len(groups)]})
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("Get = %v", err)
		}
	}
	if s := h.emu.Stats(); s.Challenges > 1 {
		t.Errorf("digest challenges in %d calls = %d (%d exchanges), want at most 1", calls, s.Challenges, s.Requests)
	}
}

// TestCoalescedGets: concurrent Gets of one project during one slow Atlas
// exchange share it. The latency is far longer than it takes to start
// every caller, so the counts do not depend on scheduling.
func TestCoalescedGets(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		calls, groups int
		maxExchanges  int64
	}{
		{name: "40 Gets of one project", calls: 40, groups: 1, maxExchanges: 3},
		{name: "1000 Gets over 100 projects", calls: 1000, groups: 100, maxExchanges: 100 + 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// Atlas answers nothing while gate is shut, so that every call
			// is in the service before the first answer, however slowly
			// a loaded machine starts them.
			gate := make(chan struct{})
			var shut atomic.Bool
			emu := atlastest.NewEmulator(atlastest.EmulatorConfig{PublicKey: "e2e-public", PrivateKey: "e2e-private-key", AutoCreateGroups: true})
			atlasSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if shut.Load() {
					<-gate
				}
				emu.ServeHTTP(w, r)
			}))
			t.Cleanup(atlasSrv.Close)
			client, err := atlas.NewClient(atlas.WithBaseURL(atlasSrv.URL), atlas.WithDigest("e2e-public", "e2e-private-key"))
			if err != nil {
				t.Fatal(err)
			}
			var arrived atomic.Int64
			count := func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
				arrived.Add(1)
				return handler(ctx, req)
			}
			api, _ := serve(t, server.New(client), grpc.UnaryInterceptor(count))
			if _, err := api.GetEncryptionAtRest(t.Context(), &encryptionv1.GetEncryptionAtRestRequest{GroupId: tripsWarmup}); err != nil {
				t.Fatalf("warm-up Get = %v", err) // the digest challenge, answered
			}
			emu.ResetStats()
			arrived.Store(0)
			shut.Store(true)

			errs := make(chan error, tt.calls)
			var wg sync.WaitGroup
			for i := range tt.calls {
				wg.Go(func() {
					group := fmt.Sprintf("%024x", i%tt.groups)
					_, err := api.GetEncryptionAtRest(t.Context(), &encryptionv1.GetEncryptionAtRestRequest{GroupId: group})
					errs <- err
				})
			}
			for deadline := time.Now().Add(30 * time.Second); arrived.Load() < int64(tt.calls); time.Sleep(time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("%d of %d calls reached the service", arrived.Load(), tt.calls)
				}
			}
			time.Sleep(50 * time.Millisecond) // from the interceptor to the shared read
			close(gate)
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatalf("Get = %v", err)
				}
			}
			if s := emu.Stats(); s.Requests > tt.maxExchanges || s.Gets < int64(tt.groups) {
				t.Errorf("%d concurrent Gets over %d projects cost %d Atlas exchanges (%d GET), want %d to %d",
					tt.calls, tt.groups, s.Requests, s.Gets, tt.groups, tt.maxExchanges)
			}
		})
	}
}
