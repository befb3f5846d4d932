package atlas_test

import (
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/encryptiond/encryptiond/atlas"
	"github.com/encryptiond/encryptiond/atlas/atlastest"
)

// TestExchangeAuth checks what each exchange says of the credentials: a
// digest challenge is not a refusal, a signed request refused is.
func TestExchangeAuth(t *testing.T) {
	t.Parallel()
	const group = "5f4e3d2c1b0a998877665544"
	tests := []struct {
		name string
		opt  atlas.Option
		do   func(*atlastest.Emulator, *atlas.Client) // between the first Get and the second
		want []atlas.AuthResult
	}{
		{"digest", atlas.WithDigest("pub", "priv"), nil,
			[]atlas.AuthResult{atlas.AuthChallenge, atlas.AuthAccepted, atlas.AuthAccepted}},
		{"digest, nonce expired", atlas.WithDigest("pub", "priv"), func(e *atlastest.Emulator, _ *atlas.Client) { e.ExpireNonces() },
			[]atlas.AuthResult{atlas.AuthChallenge, atlas.AuthAccepted, atlas.AuthChallenge, atlas.AuthAccepted}},
		{"digest, wrong key", atlas.WithDigest("pub", "wrong"), nil,
			[]atlas.AuthResult{atlas.AuthChallenge, atlas.AuthRefused, atlas.AuthChallenge, atlas.AuthRefused}},
		{"service account", atlas.WithServiceAccount("id", "secret"), nil,
			[]atlas.AuthResult{atlas.AuthAccepted, atlas.AuthAccepted, atlas.AuthAccepted}},
		{"service account, wrong secret", atlas.WithServiceAccount("id", "wrong"), nil,
			[]atlas.AuthResult{atlas.AuthRefused, atlas.AuthRefused}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			emu, srv := atlastest.NewServer(t, atlastest.EmulatorConfig{PublicKey: "pub", PrivateKey: "priv", ClientID: "id", ClientSecret: "secret", AutoCreateGroups: true})
			var mu sync.Mutex
			var got []atlas.AuthResult
			c, err := atlas.NewClient(atlas.WithBaseURL(srv.URL), tt.opt,
				atlas.WithRetryPolicy(atlas.RetryPolicy{MaxAttempts: 1}),
				atlas.WithObserver(func(e atlas.Exchange) {
					mu.Lock()
					defer mu.Unlock()
					got = append(got, e.Auth)
				}))
			if err != nil {
				t.Fatal(err)
			}
			_, _ = c.GetEncryptionAtRest(t.Context(), group)
			if tt.do != nil {
				tt.do(emu, c)
			}
			_, _ = c.GetEncryptionAtRest(t.Context(), group)
			mu.Lock()
			defer mu.Unlock()
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Auth of each exchange (-want +got):\n%s", diff)
			}
		})
	}
}
