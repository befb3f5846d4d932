package atlas_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/encryptiond/encryptiond/atlas"
	"github.com/encryptiond/encryptiond/atlas/atlastest"
)

const (
	testPublicKey    = "test-public-key"
	testPrivateKey   = "test-private-key"
	testClientID     = "mdb_sa_id_test"
	testClientSecret = "mdb_sa_sk_test"
	groupID          = "5f4e3d2c1b0a998877665544"
	roleID           = "32b6e34b3d91647abb20e7b8"
)

func ptr[T any](v T) *T { return &v }

// fastRetries keeps retry tests quick while still exercising backoff.
var fastRetries = atlas.RetryPolicy{MaxAttempts: 4, InitialBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, MaxElapsed: 5 * time.Second}

// emulatorConfig is the configuration most tests use.
func emulatorConfig() atlastest.EmulatorConfig {
	return atlastest.EmulatorConfig{
		PublicKey:        testPublicKey,
		PrivateKey:       testPrivateKey,
		ClientID:         testClientID,
		ClientSecret:     testClientSecret,
		AutoCreateGroups: true,
	}
}

// newEmulator starts an emulator with emulatorConfig.
func newEmulator(t testing.TB) (*atlastest.Emulator, *httptest.Server) {
	t.Helper()
	return atlastest.NewServer(t, emulatorConfig())
}

// newClient returns a digest client for srv with fast retries; opts come last
// and so win.
func newClient(t testing.TB, srv *httptest.Server, opts ...atlas.Option) *atlas.Client {
	t.Helper()
	return newTestClient(t, srv, atlas.WithDigest(testPublicKey, testPrivateKey), opts)
}

// newServiceClient returns a service-account client for srv.
func newServiceClient(t testing.TB, srv *httptest.Server, opts ...atlas.Option) *atlas.Client {
	t.Helper()
	return newTestClient(t, srv, atlas.WithServiceAccount(testClientID, testClientSecret), opts)
}

// newTestClient returns a client for srv with auth and fast retries, then
// opts, which come last and so win.
func newTestClient(t testing.TB, srv *httptest.Server, auth atlas.Option, opts []atlas.Option) *atlas.Client {
	t.Helper()
	all := append([]atlas.Option{
		atlas.WithBaseURL(srv.URL),
		auth,
		atlas.WithRetryPolicy(fastRetries),
		atlas.WithHTTPClient(srv.Client()),
	}, opts...)
	c, err := atlas.NewClient(all...)
	if err != nil {
		t.Fatalf("NewClient() = %v", err)
	}
	t.Cleanup(c.CloseIdleConnections)
	return c
}

// awsRoleConfig is a whole AWS document using a Cloud Provider Access role.
func awsRoleConfig() *atlas.EncryptionAtRest {
	return &atlas.EncryptionAtRest{AWSKMS: &atlas.AWSKMSConfiguration{
		Enabled:             ptr(true),
		CustomerMasterKeyID: ptr("arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"),
		Region:              ptr("EU_WEST_1"),
		RoleID:              ptr(roleID),
	}}
}

// exchanges collects observed exchanges.
type exchanges struct {
	ch chan atlas.Exchange
}

func newExchanges() *exchanges { return &exchanges{ch: make(chan atlas.Exchange, 10000)} }

func (e *exchanges) observe(x atlas.Exchange) { e.ch <- x }

func (e *exchanges) all() []atlas.Exchange {
	var out []atlas.Exchange
	for {
		select {
		case x := <-e.ch:
			out = append(out, x)
		default:
			return out
		}
	}
}

// statusServer is a bare-bones Atlas for status-path tests: it challenges
// requests without an Authorization header (accepting any signature) and
// answers signed ones with the next of handlers, the last one repeating.
// It returns the number of signed requests seen so far.
func statusServer(t testing.TB, handlers ...http.HandlerFunc) (*httptest.Server, func() int64) {
	t.Helper()
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") == "" {
			w.Header().Set("WWW-Authenticate", `Digest realm="MMS Public API", domain="", nonce="n1", algorithm=MD5, qop="auth", stale=false`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		n := calls.Add(1)
		handlers[min(int(n)-1, len(handlers)-1)](w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, calls.Load
}

// apiErrorHandler answers with an Atlas ApiError.
func apiErrorHandler(status int, code string, header ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		fmt.Fprintf(w, `{"error":%d,"errorCode":%q,"detail":"something about %s","reason":%q,"parameters":[]}`,
			status, code, code, http.StatusText(status))
	}
}

// okHandler answers 200 with an empty configuration.
func okHandler(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/vnd.atlas.2023-01-01+json")
	fmt.Fprint(w, `{"awsKms":{"enabled":false,"valid":false},"enabledForSearchNodes":false}`)
}
