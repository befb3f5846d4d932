package atlas_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/encryptiond/encryptiond/atlas"
	"github.com/encryptiond/encryptiond/atlas/atlastest"
)

// Two generations of credentials: Atlas accepts one at a time.
var (
	oldCredentials = atlastest.EmulatorConfig{
		PublicKey: "rotating-public-A", PrivateKey: "rotating-private-A",
		ClientID: "mdb_sa_id_rotating", ClientSecret: "mdb_sa_sk_A",
		AutoCreateGroups: true,
	}
	newCredentials = atlastest.EmulatorConfig{
		PublicKey: "rotating-public-B", PrivateKey: "rotating-private-B",
		ClientID: "mdb_sa_id_rotating", ClientSecret: "mdb_sa_sk_B",
		AutoCreateGroups: true,
	}
)

// rotatingAtlas serves the old emulator until rotate, then the new one:
// Atlas after the old credentials were revoked.
type rotatingAtlas struct {
	old, new *atlastest.Emulator
	current  atomic.Pointer[atlastest.Emulator]
	srv      *httptest.Server
}

func newRotatingAtlas(t *testing.T) *rotatingAtlas {
	t.Helper()
	a := &rotatingAtlas{old: atlastest.NewEmulator(oldCredentials), new: atlastest.NewEmulator(newCredentials)}
	a.current.Store(a.old)
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.current.Load().ServeHTTP(w, r)
	}))
	t.Cleanup(a.srv.Close)
	return a
}

func (a *rotatingAtlas) rotate() { a.current.Store(a.new) }

// source is a CredentialSource that answers the pairs it is given in
// turn, the last one repeating, or err; it counts its reads.
type source struct {
	mu    sync.Mutex
	pairs [][2]string
	err   error
	reads int
}

func (s *source) set(pairs ...[2]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pairs = pairs
}

func (s *source) read() (string, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reads++
	if s.err != nil {
		return "", "", s.err
	}
	p := s.pairs[0]
	if len(s.pairs) > 1 {
		s.pairs = s.pairs[1:]
	}
	return p[0], p[1], nil
}

func (s *source) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reads
}

// authModes are the two ways to authenticate from a source, with each
// generation's pair.
var authModes = []struct {
	name     string
	option   func(atlas.CredentialSource) atlas.Option
	old, new [2]string
}{
	{"API key", atlas.WithDigestSource,
		[2]string{oldCredentials.PublicKey, oldCredentials.PrivateKey}, [2]string{newCredentials.PublicKey, newCredentials.PrivateKey}},
	{"service account", atlas.WithServiceAccountSource,
		[2]string{oldCredentials.ClientID, oldCredentials.ClientSecret}, [2]string{newCredentials.ClientID, newCredentials.ClientSecret}},
}

// TestCredentialSourceRotation: the client asks its source again when it
// authenticates anew, so that once Atlas refuses the old credentials the
// same client goes on with the new ones, and asks nothing while they work.
func TestCredentialSourceRotation(t *testing.T) {
	t.Parallel()
	for _, mode := range authModes {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			a := newRotatingAtlas(t)
			src := &source{pairs: [][2]string{mode.old}}
			c := newTestClient(t, a.srv, mode.option(src.read), nil)
			for i := range 3 {
				if _, err := c.GetEncryptionAtRest(t.Context(), groupID); err != nil {
					t.Fatalf("GetEncryptionAtRest() #%d with the old credentials = %v", i, err)
				}
			}
			if got := src.count(); got != 1 {
				t.Errorf("3 calls read the source %d times, want 1 (warm calls reuse what worked)", got)
			}

			a.rotate() // the old credentials are revoked; the source still has them
			_, err := c.GetEncryptionAtRest(t.Context(), groupID)
			var aerr *atlas.Error
			if !errors.As(err, &aerr) || aerr.HTTPStatus != http.StatusUnauthorized {
				t.Fatalf("GetEncryptionAtRest() after Atlas revoked the old credentials = %v, want 401", err)
			}

			src.set(mode.new) // the secret is rotated too
			if _, err := c.GetEncryptionAtRest(t.Context(), groupID); err != nil {
				t.Fatalf("GetEncryptionAtRest() with the new credentials = %v", err)
			}
			if _, err := c.UpdateEncryptionAtRest(t.Context(), groupID, awsRoleConfig()); err != nil {
				t.Fatalf("UpdateEncryptionAtRest() with the new credentials = %v", err)
			}
			if s := a.new.Stats(); s.Gets != 1 || s.Patches != 1 {
				t.Errorf("Atlas with the new credentials processed %d GETs and %d PATCHes, want 1 and 1", s.Gets, s.Patches)
			}
		})
	}
}

// TestCredentialSourceChangesDuringAuthentication: when Atlas refuses
// what the source returned and the source now returns something else (the
// file was rotated in between), the client tries once more with that.
func TestCredentialSourceChangesDuringAuthentication(t *testing.T) {
	t.Parallel()
	for _, mode := range authModes {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			a := newRotatingAtlas(t)
			a.rotate()
			src := &source{pairs: [][2]string{mode.old, mode.new}}
			c := newTestClient(t, a.srv, mode.option(src.read), []atlas.Option{atlas.WithRetryPolicy(atlas.RetryPolicy{MaxAttempts: 1})})
			if _, err := c.UpdateEncryptionAtRest(t.Context(), groupID, awsRoleConfig()); err != nil {
				t.Fatalf("UpdateEncryptionAtRest() = %v, want the second credentials to work", err)
			}
			// API key: a bodyless probe (refused), the PATCH signed with
			// the old key (refused), then with the new one. Service
			// account: a token request with the old secret (refused), one
			// with the new secret, then the PATCH.
			refused := int64(2)
			if mode.name == "service account" {
				refused = 1
			}
			if s := a.new.Stats(); s.Requests != 3 || s.Patches != 1 || s.Unauthorized != refused {
				t.Errorf("emulator Stats() = %+v, want 3 exchanges, 1 PATCH, %d refused", s, refused)
			}
		})
	}
}

// TestCredentialSourceUnchangedNotResent: a refusal is not answered with
// the same credentials again.
func TestCredentialSourceUnchangedNotResent(t *testing.T) {
	t.Parallel()
	for _, mode := range authModes {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			a := newRotatingAtlas(t)
			a.rotate()
			src := &source{pairs: [][2]string{mode.old}}
			c := newTestClient(t, a.srv, mode.option(src.read), []atlas.Option{atlas.WithRetryPolicy(atlas.RetryPolicy{MaxAttempts: 1})})
			_, err := c.GetEncryptionAtRest(t.Context(), groupID)
			var aerr *atlas.Error
			if !errors.As(err, &aerr) || aerr.HTTPStatus != http.StatusUnauthorized {
				t.Fatalf("GetEncryptionAtRest() with revoked credentials = %v, want 401", err)
			}
			// API key: the probe and one signed request. Service account:
			// one token request.
			want := int64(2)
			if mode.name == "service account" {
				want = 1
			}
			if s := a.new.Stats(); s.Requests != want {
				t.Errorf("emulator Stats() = %+v, want %d exchanges", s, want)
			}
		})
	}
}

// TestCredentialSourceError: a source that fails, or answers an empty
// value, fails the call as one never sent, with the source's error.
func TestCredentialSourceError(t *testing.T) {
	t.Parallel()
	for _, mode := range authModes {
		for _, tt := range []struct {
			name string
			src  *source
			want string
		}{
			{"error", &source{err: errors.New("the key file is gone")}, "the key file is gone"},
			{"empty", &source{pairs: [][2]string{{mode.old[0], ""}}}, "empty"},
		} {
			t.Run(mode.name+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				a := newRotatingAtlas(t)
				c := newTestClient(t, a.srv, mode.option(tt.src.read), []atlas.Option{atlas.WithRetryPolicy(atlas.RetryPolicy{MaxAttempts: 1})})
				_, err := c.UpdateEncryptionAtRest(t.Context(), groupID, awsRoleConfig())
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("UpdateEncryptionAtRest() = %v, want an error containing %q", err, tt.want)
				}
				if errors.Is(err, atlas.ErrOutcomeUnknown) {
					t.Errorf("UpdateEncryptionAtRest() = %v, want no ErrOutcomeUnknown: nothing was sent", err)
				}
				if s := a.old.Stats(); s.Patches != 0 {
					t.Errorf("Atlas processed %d PATCHes, want none", s.Patches)
				}
			})
		}
	}
}
