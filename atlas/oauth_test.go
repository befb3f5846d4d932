package atlas_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/encryptiond/encryptiond/atlas"
	"github.com/encryptiond/encryptiond/atlas/atlastest"
)

func TestServiceAccountTokenCached(t *testing.T) {
	t.Parallel()
	emu, srv := newEmulator(t)
	ex := newExchanges()
	c := newServiceClient(t, srv, atlas.WithObserver(ex.observe))
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			if _, err := c.GetEncryptionAtRest(t.Context(), groupID); err != nil {
				t.Errorf("GetEncryptionAtRest() = %v", err)
			}
		})
	}
	wg.Wait()
	if _, err := c.UpdateEncryptionAtRest(t.Context(), groupID, awsRoleConfig()); err != nil {
		t.Fatalf("UpdateEncryptionAtRest() = %v", err)
	}
	if s := emu.Stats(); s.Tokens != 1 || s.Unauthorized != 0 || s.Requests != 52 {
		t.Errorf("51 calls: emulator Stats() = %+v, want 1 token, 52 exchanges, no 401", s)
	}
	if got := c.Stats().TokenFetches; got != 1 {
		t.Errorf("Stats().TokenFetches = %d, want 1", got)
	}
	posts := 0
	for _, x := range ex.all() {
		if x.Method == "POST" {
			posts++
		}
	}
	if posts != 1 {
		t.Errorf("observed %d token requests, want 1", posts)
	}
}

// TestServiceAccountTokenRenewed: tokens live 2s and are renewed before
// they expire, so Atlas never sees an expired one.
func TestServiceAccountTokenRenewed(t *testing.T) {
	t.Parallel()
	cfg := emulatorConfig()
	cfg.TokenLifetime = 2 * time.Second
	emu, srv := atlastest.NewServer(t, cfg)
	c := newServiceClient(t, srv)
	deadline := time.Now().Add(4500 * time.Millisecond)
	for time.Now().Before(deadline) {
		if _, err := c.GetEncryptionAtRest(t.Context(), groupID); err != nil {
			t.Fatalf("GetEncryptionAtRest() = %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if s := emu.Stats(); s.Tokens < 2 || s.Tokens > 4 || s.Unauthorized != 0 {
		t.Errorf("4.5s of calls with 2s tokens: emulator Stats() = %+v, want 2 to 4 tokens and no 401", s)
	}
}

func TestServiceAccountWrongSecret(t *testing.T) {
	t.Parallel()
	_, srv := newEmulator(t)
	c := newServiceClient(t, srv, atlas.WithServiceAccount(testClientID, "wrong"))
	_, err := c.UpdateEncryptionAtRest(t.Context(), groupID, awsRoleConfig())
	var aerr *atlas.Error
	if !errors.As(err, &aerr) || aerr.HTTPStatus != 401 || aerr.ErrorCode != "invalid_client" {
		t.Fatalf("UpdateEncryptionAtRest(wrong secret) = %v, want 401 invalid_client", err)
	}
	if errors.Is(err, atlas.ErrOutcomeUnknown) {
		t.Errorf("UpdateEncryptionAtRest(wrong secret) = %v, want no ErrOutcomeUnknown: nothing was sent", err)
	}
}
