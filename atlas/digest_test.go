package atlas_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/encryptiond/encryptiond/atlas"
	"github.com/encryptiond/encryptiond/atlas/atlastest"
)

// TestChallengeReuse: once warm, a call costs one exchange; an expired nonce
// costs one extra challenge, absorbed transparently.
func TestChallengeReuse(t *testing.T) {
	t.Parallel()
	emu, srv := newEmulator(t)
	c := newClient(t, srv)
	for i := range 100 {
		if _, err := c.GetEncryptionAtRest(t.Context(), groupID); err != nil {
			t.Fatalf("GetEncryptionAtRest() #%d = %v", i, err)
		}
	}
	s := emu.Stats()
	if s.Requests > 101 || s.Challenges != 1 {
		t.Errorf("100 GetEncryptionAtRest() cost %d exchanges and %d challenges, want <= 101 and 1", s.Requests, s.Challenges)
	}
	if cs := c.Stats(); cs.Challenges != 1 || cs.StaleRetries != 0 {
		t.Errorf("Stats() = %+v, want 1 challenge and no stale retries", cs)
	}

	emu.ExpireNonces()
	if _, err := c.UpdateEncryptionAtRest(t.Context(), groupID, &atlas.EncryptionAtRest{EnabledForSearchNodes: ptr(true)}); err != nil {
		t.Fatalf("UpdateEncryptionAtRest() after ExpireNonces = %v", err)
	}
	s2 := emu.Stats()
	if got := s2.Challenges - s.Challenges; got != 1 {
		t.Errorf("call after ExpireNonces cost %d challenges, want 1", got)
	}
	if got := s2.Requests - s.Requests; got != 2 {
		t.Errorf("call after ExpireNonces cost %d exchanges, want 2", got)
	}
	if cs := c.Stats(); cs.Challenges != 2 || cs.StaleRetries != 1 {
		t.Errorf("Stats() = %+v, want 2 challenges and 1 stale retry", cs)
	}
	if got := emu.Stats().Patches; got != 1 {
		t.Errorf("Atlas processed %d PATCH requests, want 1 (the stale one is refused before)", got)
	}
}

// TestColdPatchProbesWithoutBody: the first, unauthenticated request of a
// PATCH carries no body, so the body is sent once, signed.
func TestColdPatchProbesWithoutBody(t *testing.T) {
	t.Parallel()
	emu, srv := newEmulator(t)
	c := newClient(t, srv)
	if _, err := c.UpdateEncryptionAtRest(t.Context(), groupID, awsRoleConfig()); err != nil {
		t.Fatalf("UpdateEncryptionAtRest() = %v", err)
	}
	if s := emu.Stats(); s.Requests != 2 || s.Challenges != 1 || s.Patches != 1 {
		t.Errorf("cold UpdateEncryptionAtRest() = %+v, want 2 exchanges, 1 challenge, 1 signed PATCH", s)
	}
}

func TestNonceLifetime(t *testing.T) {
	t.Parallel()
	cfg := emulatorConfig()
	// Long enough that a resend under a fresh nonce arrives in time on a
	// busy machine running -race; a shorter lifetime made this flaky.
	cfg.NonceLifetime = time.Second
	emu, srv := atlastest.NewServer(t, cfg)
	c := newClient(t, srv)
	for i := range 3 {
		if _, err := c.GetEncryptionAtRest(t.Context(), groupID); err != nil {
			t.Fatalf("GetEncryptionAtRest() #%d = %v", i, err)
		}
		time.Sleep(1200 * time.Millisecond)
	}
	if s := emu.Stats(); s.StaleNonces != 2 {
		t.Errorf("emulator Stats() = %+v, want 2 stale nonces", s)
	}
	if cs := c.Stats(); cs.StaleRetries != 2 {
		t.Errorf("Stats() = %+v, want 2 stale retries", cs)
	}
}

// TestConcurrentStrictNonceCount: nonce counts reach a strict server out of
// order; every rejected request is absorbed by one resend under a fresh nonce.
func TestConcurrentStrictNonceCount(t *testing.T) {
	t.Parallel()
	cfg := emulatorConfig()
	cfg.StrictNonceCount = true
	emu, srv := atlastest.NewServer(t, cfg)
	c := newClient(t, srv, atlas.WithRetryPolicy(atlas.RetryPolicy{MaxAttempts: 1}))
	if _, err := c.GetEncryptionAtRest(t.Context(), groupID); err != nil {
		t.Fatalf("warm-up GetEncryptionAtRest() = %v", err)
	}
	const n = 200
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			var err error
			if i%4 == 0 {
				_, err = c.UpdateEncryptionAtRest(t.Context(), groupID, &atlas.EncryptionAtRest{EnabledForSearchNodes: ptr(i%8 == 0)})
			} else {
				_, err = c.GetEncryptionAtRest(t.Context(), groupID)
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("concurrent call = %v, want success", err)
		}
	}
	cs, es := c.Stats(), emu.Stats()
	t.Logf("%d concurrent calls: client %+v; emulator %+v", n, cs, es)
	if es.Requests > 2*n+1 {
		t.Errorf("%d concurrent calls cost %d exchanges, want at most %d", n, es.Requests, 2*n+1)
	}
	if cs.StaleRetries != es.StaleNonces {
		t.Errorf("client counted %d stale retries, emulator %d stale nonces, want equal", cs.StaleRetries, es.StaleNonces)
	}
}

func TestWrongKeys(t *testing.T) {
	t.Parallel()
	emu, srv := newEmulator(t)
	c := newClient(t, srv, atlas.WithDigest(testPublicKey, "wrong-private-key"))
	_, err := c.GetEncryptionAtRest(t.Context(), groupID)
	var aerr *atlas.Error
	if !errors.As(err, &aerr) || aerr.HTTPStatus != 401 || aerr.ErrorCode == "" {
		t.Fatalf("GetEncryptionAtRest(wrong key) = %v, want a 401 *atlas.Error", err)
	}
	if s := emu.Stats(); s.Requests != 2 {
		t.Errorf("GetEncryptionAtRest(wrong key) cost %d exchanges, want 2 (no retry of a 401)", s.Requests)
	}
}

// TestTwoEmulatorsOneHost: icholy/digest's own Transport caches challenges
// by host name without port; two clients for two emulators on 127.0.0.1
// must not mix their nonces.
func TestTwoEmulatorsOneHost(t *testing.T) {
	t.Parallel()
	emu1, srv1 := newEmulator(t)
	emu2, srv2 := newEmulator(t)
	c1, c2 := newClient(t, srv1), newClient(t, srv2)
	for i := range 10 {
		for _, c := range []*atlas.Client{c1, c2} {
			if _, err := c.GetEncryptionAtRest(t.Context(), groupID); err != nil {
				t.Fatalf("GetEncryptionAtRest() #%d = %v", i, err)
			}
		}
	}
	for i, emu := range []*atlastest.Emulator{emu1, emu2} {
		if s := emu.Stats(); s.Challenges != 1 || s.StaleNonces != 0 {
			t.Errorf("emulator %d Stats() = %+v, want 1 challenge and no stale nonces", i+1, s)
		}
	}
}
