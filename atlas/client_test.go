package atlas_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/encryptiond/encryptiond/atlas"
	"github.com/encryptiond/encryptiond/atlas/atlastest"
)

func TestNewClientOptions(t *testing.T) {
	t.Parallel()
	digest := atlas.WithDigest("pub", "priv")
	tests := []struct {
		name    string
		opts    []atlas.Option
		wantErr string
	}{
		{"digest", []atlas.Option{digest}, ""},
		{"service account", []atlas.Option{atlas.WithServiceAccount("id", "secret")}, ""},
		{"all options", []atlas.Option{digest, atlas.WithBaseURL("http://127.0.0.1:8090/prefix/"),
			atlas.WithAPIVersion(atlas.APIVersionV1), atlas.WithUserAgent("x/1"), atlas.WithHTTPClient(&http.Client{}),
			atlas.WithRetryPolicy(atlas.RetryPolicy{MaxAttempts: 1}), atlas.WithObserver(func(atlas.Exchange) {})}, ""},
		{"no auth", nil, "no credentials"},
		{"both auth modes", []atlas.Option{digest, atlas.WithServiceAccount("id", "secret")}, "mutually exclusive"},
		{"empty private key", []atlas.Option{atlas.WithDigest("pub", "")}, "must not be empty"},
		{"empty client secret", []atlas.Option{atlas.WithServiceAccount("id", "")}, "must not be empty"},
		{"digest source", []atlas.Option{atlas.WithDigestSource(func() (string, string, error) { return "pub", "priv", nil })}, ""},
		{"service account source", []atlas.Option{atlas.WithServiceAccountSource(func() (string, string, error) { return "id", "secret", nil })}, ""},
		{"nil digest source", []atlas.Option{atlas.WithDigestSource(nil)}, "nil source"},
		{"nil service account source", []atlas.Option{atlas.WithServiceAccountSource(nil)}, "nil source"},
		{"digest and service account source", []atlas.Option{digest, atlas.WithServiceAccountSource(func() (string, string, error) { return "id", "secret", nil })}, "mutually exclusive"},
		{"relative base URL", []atlas.Option{digest, atlas.WithBaseURL("cloud.mongodb.com")}, "absolute"},
		{"base URL with user", []atlas.Option{digest, atlas.WithBaseURL("https://u:p@cloud.mongodb.com")}, "user info"},
		{"unknown API version", []atlas.Option{digest, atlas.WithAPIVersion("v3")}, "want"},
		{"nil HTTP client", []atlas.Option{digest, atlas.WithHTTPClient(nil)}, "nil client"},
		{"user agent with newline", []atlas.Option{digest, atlas.WithUserAgent("a\r\nb")}, "single line"},
		{"zero attempts", []atlas.Option{digest, atlas.WithRetryPolicy(atlas.RetryPolicy{})}, "MaxAttempts"},
		{"negative backoff", []atlas.Option{digest, atlas.WithRetryPolicy(atlas.RetryPolicy{MaxAttempts: 2, InitialBackoff: -1})}, "negative"},
		{"initial above max", []atlas.Option{digest, atlas.WithRetryPolicy(atlas.RetryPolicy{MaxAttempts: 2, InitialBackoff: 2 * time.Second, MaxBackoff: time.Second})}, "exceeds"},
		{"nil observer", []atlas.Option{digest, atlas.WithObserver(nil)}, "nil function"},
		{"nil option", []atlas.Option{digest, nil}, "nil Option"},
		{"h2c", []atlas.Option{digest, atlas.WithBaseURL("http://127.0.0.1:8090"), atlas.WithUnencryptedHTTP2()}, ""},
		{"h2c to https", []atlas.Option{digest, atlas.WithUnencryptedHTTP2()}, "needs an http:// base URL"},
		{"h2c with HTTP client", []atlas.Option{digest, atlas.WithBaseURL("http://127.0.0.1:8090"), atlas.WithUnencryptedHTTP2(), atlas.WithHTTPClient(&http.Client{})}, "WithHTTPClient"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := atlas.NewClient(tt.opts...)
			if got := errString(err); tt.wantErr == "" && err != nil || !strings.Contains(got, tt.wantErr) {
				t.Errorf("NewClient(%s) = %v, want error containing %q", tt.name, err, tt.wantErr)
			}
		})
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestDefaultRetryPolicy(t *testing.T) {
	t.Parallel()
	p := atlas.DefaultRetryPolicy()
	if p.MaxElapsed != 10*time.Second || p.MaxAttempts < 2 {
		t.Errorf("DefaultRetryPolicy() = %+v, want MaxElapsed 10s and retries", p)
	}
}

func TestWithHTTPClientDoesNotModifyCaller(t *testing.T) {
	t.Parallel()
	hc := &http.Client{Timeout: time.Second}
	if _, err := atlas.NewClient(atlas.WithDigest("a", "b"), atlas.WithHTTPClient(hc)); err != nil {
		t.Fatalf("NewClient() = %v", err)
	}
	if hc.Transport != nil {
		t.Errorf("WithHTTPClient(hc): hc.Transport = %T, want unchanged nil", hc.Transport)
	}
}

func TestErrorString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err  *atlas.Error
		want string
	}{
		{&atlas.Error{HTTPStatus: 409, ErrorCode: "CANNOT_DISABLE_ENCRYPTION_AT_REST", Detail: "in use", Method: "PATCH", Resource: "encryptionAtRest"},
			"atlas: PATCH encryptionAtRest: 409 CANNOT_DISABLE_ENCRYPTION_AT_REST: in use"},
		{&atlas.Error{HTTPStatus: 502, Method: "GET", Resource: "encryptionAtRest"}, "atlas: GET encryptionAtRest: 502 Bad Gateway"},
		{&atlas.Error{HTTPStatus: 400, ErrorCode: "MISSING_ATTRIBUTE", Detail: "d", Method: "PATCH", Resource: "encryptionAtRest",
			Fields: []atlas.FieldViolation{{Field: "awsKms.region", Description: "required"}, {Field: "awsKms.roleId"}}},
			"atlas: PATCH encryptionAtRest: 400 MISSING_ATTRIBUTE: d (awsKms.region: required; awsKms.roleId)"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
}

func TestErrorIs(t *testing.T) {
	t.Parallel()
	err := error(&atlas.Error{HTTPStatus: 404, ErrorCode: "GROUP_NOT_FOUND"})
	tests := []struct {
		target error
		want   bool
	}{
		{&atlas.Error{ErrorCode: "GROUP_NOT_FOUND"}, true},
		{&atlas.Error{HTTPStatus: 404}, true},
		{&atlas.Error{HTTPStatus: 404, ErrorCode: "RESOURCE_NOT_FOUND"}, false},
		{&atlas.Error{}, false},
		{atlas.ErrOutcomeUnknown, false},
	}
	for _, tt := range tests {
		if got := errors.Is(err, tt.target); got != tt.want {
			t.Errorf("errors.Is(%v, %v) = %v, want %v", err, tt.target, got, tt.want)
		}
	}
}

// TestStatusPaths checks that each error status becomes an *Error with
// Atlas's fields, and how often each is tried.
func TestStatusPaths(t *testing.T) {
	t.Parallel()
	fieldsBody := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(400)
		_, _ = w.Write([]byte(`{"error":400,"errorCode":"MISSING_ATTRIBUTE","detail":"The required attribute awsKms.region was not specified.","reason":"Bad Request","parameters":[{"name":"region"}],"badRequestDetail":{"fields":[{"field":"awsKms.region","description":"required"}]}}`))
	}
	htmlBody := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(502)
		_, _ = w.Write([]byte("<html>\n<body>Bad gateway" + strings.Repeat(" lots of text", 10000) + "</body></html>"))
	}
	tests := []struct {
		name      string
		method    string
		handler   http.HandlerFunc
		want      *atlas.Error
		wantCalls int64
	}{
		{"400 with fields", "PATCH", fieldsBody, &atlas.Error{HTTPStatus: 400, ErrorCode: "MISSING_ATTRIBUTE",
			Detail: "The required attribute awsKms.region was not specified.", Reason: "Bad Request",
			Parameters: []any{map[string]any{"name": "region"}},
			Fields:     []atlas.FieldViolation{{Field: "awsKms.region", Description: "required"}}, Method: "PATCH", Resource: "encryptionAtRest"}, 1},
		{"401", "GET", apiErrorHandler(401, "UNAUTHORIZED"), &atlas.Error{HTTPStatus: 401, ErrorCode: "UNAUTHORIZED"}, 1},
		{"403", "GET", apiErrorHandler(403, "IP_ADDRESS_NOT_ON_WHITELIST"), &atlas.Error{HTTPStatus: 403, ErrorCode: "IP_ADDRESS_NOT_ON_WHITELIST"}, 1},
		{"404", "GET", apiErrorHandler(404, "GROUP_NOT_FOUND"), &atlas.Error{HTTPStatus: 404, ErrorCode: "GROUP_NOT_FOUND"}, 1},
		{"409", "PATCH", apiErrorHandler(409, "CANNOT_DISABLE_ENCRYPTION_AT_REST"), &atlas.Error{HTTPStatus: 409, ErrorCode: "CANNOT_DISABLE_ENCRYPTION_AT_REST"}, 1},
		{"429 GET retried", "GET", apiErrorHandler(429, "RATE_LIMITED_TOKEN_BUCKET"), &atlas.Error{HTTPStatus: 429, ErrorCode: "RATE_LIMITED_TOKEN_BUCKET"}, 4},
		{"429 PATCH retried", "PATCH", apiErrorHandler(429, "RATE_LIMITED_TOKEN_BUCKET"), &atlas.Error{HTTPStatus: 429, ErrorCode: "RATE_LIMITED_TOKEN_BUCKET"}, 4},
		{"500 GET retried", "GET", apiErrorHandler(500, "UNEXPECTED_ERROR"), &atlas.Error{HTTPStatus: 500, ErrorCode: "UNEXPECTED_ERROR"}, 4},
		{"500 PATCH not retried", "PATCH", apiErrorHandler(500, "UNEXPECTED_ERROR"), &atlas.Error{HTTPStatus: 500, ErrorCode: "UNEXPECTED_ERROR"}, 1},
		{"503 PATCH not retried", "PATCH", apiErrorHandler(503, "SERVICE_UNAVAILABLE"), &atlas.Error{HTTPStatus: 503, ErrorCode: "SERVICE_UNAVAILABLE"}, 1},
		{"502 HTML GET retried", "GET", htmlBody, &atlas.Error{HTTPStatus: 502}, 4},
		{"504 GET retried", "GET", apiErrorHandler(504, "GATEWAY_TIMEOUT"), &atlas.Error{HTTPStatus: 504, ErrorCode: "GATEWAY_TIMEOUT"}, 4},
		{"501 not retried", "GET", apiErrorHandler(501, "NOT_IMPLEMENTED"), &atlas.Error{HTTPStatus: 501, ErrorCode: "NOT_IMPLEMENTED"}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv, calls := statusServer(t, tt.handler)
			c := newClient(t, srv)
			err := call(t.Context(), c, tt.method)
			var got *atlas.Error
			if !errors.As(err, &got) {
				t.Fatalf("%s() = %v, want *atlas.Error", tt.method, err)
			}
			if got.HTTPStatus != tt.want.HTTPStatus || got.ErrorCode != tt.want.ErrorCode || got.Method != tt.method {
				t.Errorf("%s() = %+v, want status %d code %q method %s", tt.method, got, tt.want.HTTPStatus, tt.want.ErrorCode, tt.method)
			}
			if tt.want.Fields != nil || tt.want.Parameters != nil {
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("%s() error mismatch (-want +got):\n%s", tt.method, diff)
				}
			}
			if len(got.Error()) > 400 {
				t.Errorf("%s() error string is %d bytes, want a short one", tt.method, len(got.Error()))
			}
			if n := calls(); n != tt.wantCalls {
				t.Errorf("%s() made %d signed requests, want %d", tt.method, n, tt.wantCalls)
			}
		})
	}
}

// TestErrorCodeSanitized checks that a hostile errorCode (huge, with
// control characters) is cut and made printable, in the *Error and in the
// observed exchange alike.
func TestErrorCodeSanitized(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		errorCode string // spliced into the JSON body: escapes are JSON's
		want      string
	}{
		{"10 KB", strings.Repeat("A", 10<<10), strings.Repeat("A", 128) + "…"},
		{"control characters", `BAD\r\nlevel=ERROR\u0000\u001b[31mCODE\t`, "BAD level=ERROR [31mCODE"},
		{"only control characters", `\n\u0000`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv, _ := statusServer(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusBadRequest)
				fmt.Fprintf(w, `{"error":400,"errorCode":"%s","detail":"d","reason":"Bad Request"}`, tt.errorCode)
			})
			ex := newExchanges()
			c := newClient(t, srv, atlas.WithObserver(ex.observe))
			err := call(t.Context(), c, http.MethodGet)
			var got *atlas.Error
			if !errors.As(err, &got) {
				t.Fatalf("GET() = %v, want *atlas.Error", err)
			}
			if got.ErrorCode != tt.want {
				t.Errorf("GET() ErrorCode = %q, want %q", got.ErrorCode, tt.want)
			}
			if len(got.Error()) > 400 || strings.ContainsAny(got.Error(), "\r\n\x00\x1b") {
				t.Errorf("GET() error string = %q, want short and printable", got.Error())
			}
			var observed []string
			for _, x := range ex.all() {
				if x.Status == http.StatusBadRequest {
					observed = append(observed, x.ErrorCode)
				}
			}
			if len(observed) != 1 || observed[0] != tt.want {
				t.Errorf("observed error codes = %q, want [%q]", observed, tt.want)
			}
		})
	}
}

// call performs a GET or a small PATCH.
func call(ctx context.Context, c *atlas.Client, method string) error {
	if method == http.MethodGet {
		_, err := c.GetEncryptionAtRest(ctx, groupID)
		return err
	}
	_, err := c.UpdateEncryptionAtRest(ctx, groupID, &atlas.EncryptionAtRest{EnabledForSearchNodes: ptr(true)})
	return err
}

func TestRetryThenSuccess(t *testing.T) {
	t.Parallel()
	for _, method := range []string{"GET", "PATCH"} {
		t.Run(method, func(t *testing.T) {
			t.Parallel()
			srv, calls := statusServer(t, apiErrorHandler(429, "RATE_LIMITED_TOKEN_BUCKET"), okHandler)
			ex := newExchanges()
			c := newClient(t, srv, atlas.WithObserver(ex.observe))
			if err := call(t.Context(), c, method); err != nil {
				t.Fatalf("%s() = %v, want success after a retry", method, err)
			}
			if n := calls(); n != 2 {
				t.Errorf("%s() made %d signed requests, want 2", method, n)
			}
			var attempts []int
			for _, x := range ex.all() {
				attempts = append(attempts, x.Attempt)
			}
			// challenge, 429 (attempt 1), then the retry (attempt 2).
			if diff := cmp.Diff([]int{1, 1, 2}, attempts); diff != "" {
				t.Errorf("observed attempts mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRetryAfterHonoured(t *testing.T) {
	t.Parallel()
	srv, _ := statusServer(t, apiErrorHandler(429, "RATE_LIMITED_TOKEN_BUCKET", "Retry-After", "1"), okHandler)
	c := newClient(t, srv)
	start := time.Now()
	if _, err := c.GetEncryptionAtRest(t.Context(), groupID); err != nil {
		t.Fatalf("GetEncryptionAtRest() = %v, want success", err)
	}
	if d := time.Since(start); d < time.Second {
		t.Errorf("GetEncryptionAtRest() retried after %v, want at least Retry-After 1s", d)
	}
}

func TestRetryAfterBeyondDeadline(t *testing.T) {
	t.Parallel()
	srv, calls := statusServer(t, apiErrorHandler(429, "RATE_LIMITED_TOKEN_BUCKET", "Retry-After", "30"))
	c := newClient(t, srv)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	start := time.Now()
	_, err := c.GetEncryptionAtRest(ctx, groupID)
	var aerr *atlas.Error
	if !errors.As(err, &aerr) || aerr.HTTPStatus != 429 || aerr.RetryAfter != 30*time.Second {
		t.Fatalf("GetEncryptionAtRest() = %v, want the 429 with RetryAfter 30s", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("GetEncryptionAtRest() took %v, want an immediate return", d)
	}
	if n := calls(); n != 1 {
		t.Errorf("GetEncryptionAtRest() made %d signed requests, want 1", n)
	}
}

func TestMaxElapsedBudget(t *testing.T) {
	t.Parallel()
	srv, _ := statusServer(t, apiErrorHandler(503, "SERVICE_UNAVAILABLE"))
	c := newClient(t, srv, atlas.WithRetryPolicy(atlas.RetryPolicy{
		MaxAttempts: 1000, InitialBackoff: 20 * time.Millisecond, MaxBackoff: 50 * time.Millisecond, MaxElapsed: 300 * time.Millisecond,
	}))
	start := time.Now()
	_, err := c.GetEncryptionAtRest(t.Context(), groupID)
	if !errors.Is(err, &atlas.Error{HTTPStatus: 503}) {
		t.Fatalf("GetEncryptionAtRest() = %v, want the 503", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("GetEncryptionAtRest() took %v, want about MaxElapsed 300ms", d)
	}
}

func TestDeadlineHonoured(t *testing.T) {
	t.Parallel()
	block := make(chan struct{})
	srv, _ := statusServer(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-block:
		case <-r.Context().Done():
		}
	})
	defer close(block)
	c := newClient(t, srv)
	for _, method := range []string{"GET", "PATCH"} {
		ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
		start := time.Now()
		err := call(ctx, c, method)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s() = %v, want context.DeadlineExceeded", method, err)
		}
		if got := errors.Is(err, atlas.ErrOutcomeUnknown); got != (method == "PATCH") {
			t.Errorf("%s(): errors.Is(%v, ErrOutcomeUnknown) = %v, want %v", method, err, got, method == "PATCH")
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("%s() took %v, want about the 200ms deadline", method, d)
		}
	}
}

func TestCanceledWhileWaiting(t *testing.T) {
	t.Parallel()
	srv, _ := statusServer(t, apiErrorHandler(503, "SERVICE_UNAVAILABLE"))
	c := newClient(t, srv, atlas.WithRetryPolicy(atlas.RetryPolicy{MaxAttempts: 5, InitialBackoff: time.Minute}))
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(100*time.Millisecond, cancel)
	_, err := c.GetEncryptionAtRest(ctx, groupID)
	if !errors.Is(err, context.Canceled) || !errors.Is(err, &atlas.Error{HTTPStatus: 503}) {
		t.Errorf("GetEncryptionAtRest() = %v, want context.Canceled and the 503", err)
	}
}

// TestConnectionRefused: nothing listens, so nothing was sent: both methods
// retry, and a PATCH is not reported as of unknown outcome.
func TestConnectionRefused(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	for _, method := range []string{"GET", "PATCH"} {
		ex := newExchanges()
		c, err := atlas.NewClient(atlas.WithBaseURL("http://"+addr), atlas.WithDigest("a", "b"),
			atlas.WithRetryPolicy(fastRetries), atlas.WithObserver(ex.observe))
		if err != nil {
			t.Fatal(err)
		}
		err = call(t.Context(), c, method)
		if err == nil || errors.Is(err, atlas.ErrOutcomeUnknown) {
			t.Errorf("%s() = %v, want a connection error without ErrOutcomeUnknown", method, err)
		}
		if n := len(ex.all()); n != fastRetries.MaxAttempts {
			t.Errorf("%s() made %d exchanges, want %d (retried)", method, n, fastRetries.MaxAttempts)
		}
		if s := err.Error(); strings.Contains(s, "\"b\"") {
			t.Errorf("%s() error %q mentions the private key", method, s)
		}
	}
}

func TestUserAgentAndAccept(t *testing.T) {
	t.Parallel()
	tests := []struct {
		version atlas.APIVersion
		path    string
		media   string
	}{
		{atlas.APIVersionV2, "/base/api/atlas/v2/groups/" + groupID + "/encryptionAtRest", "application/vnd.atlas.2023-01-01+json"},
		{atlas.APIVersionV1, "/base/api/atlas/v1.0/groups/" + groupID + "/encryptionAtRest", "application/json"},
	}
	for _, tt := range tests {
		type seen struct{ path, accept, contentType, ua string }
		got := make(chan seen, 10)
		srv, _ := statusServer(t, func(w http.ResponseWriter, r *http.Request) {
			got <- seen{r.URL.Path, r.Header.Get("Accept"), r.Header.Get("Content-Type"), r.Header.Get("User-Agent")}
			okHandler(w, r)
		})
		c := newClient(t, srv, atlas.WithBaseURL(srv.URL+"/base"), atlas.WithAPIVersion(tt.version))
		if err := call(t.Context(), c, "PATCH"); err != nil {
			t.Fatalf("PATCH(%s) = %v", tt.version, err)
		}
		s := <-got
		want := seen{tt.path, tt.media, tt.media, atlas.DefaultUserAgent}
		if s != want {
			t.Errorf("PATCH(%s) sent %+v, want %+v", tt.version, s, want)
		}
	}
}

// TestHTTPClientTimeout: the HTTP client's Timeout bounds each attempt,
// waiting for the headers and reading the body alike, and a timed-out GET
// is retried.
func TestHTTPClientTimeout(t *testing.T) {
	t.Parallel()
	stall := func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}
	stallBody := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/vnd.atlas.2023-01-01+json")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(`{"awsKms":`))
		w.(http.Flusher).Flush()
		stall(w, r)
	}
	tests := []struct {
		name    string
		handler http.HandlerFunc
	}{
		{"headers", stall},
		{"body", stallBody},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv, calls := statusServer(t, tt.handler)
			hc := srv.Client()
			// The timeout covers a whole attempt, the digest challenge
			// included; it leaves room for a busy machine running -race.
			hc.Timeout = 500 * time.Millisecond
			c := newClient(t, srv, atlas.WithHTTPClient(hc), atlas.WithRetryPolicy(atlas.RetryPolicy{MaxAttempts: 2}))
			start := time.Now()
			_, err := c.GetEncryptionAtRest(t.Context(), groupID)
			if took := time.Since(start); err == nil || took > 4*time.Second {
				t.Fatalf("GetEncryptionAtRest() = %v after %v, want an error within about 1s (two attempts of 500ms)", err, took)
			}
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("GetEncryptionAtRest() = %v, want context.DeadlineExceeded", err)
			}
			if got := calls(); got != 2 {
				t.Errorf("GetEncryptionAtRest() made %d signed attempts, want 2 (one retry)", got)
			}
		})
	}
}

// TestUnencryptedHTTP2: with WithUnencryptedHTTP2 every exchange, the digest
// challenge included, is HTTP/2 over plain TCP, and concurrent calls share
// one connection.
func TestUnencryptedHTTP2(t *testing.T) {
	t.Parallel()
	emu := atlastest.NewEmulator(emulatorConfig())
	var http1, http2 atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor == 2 {
			http2.Add(1)
		} else {
			http1.Add(1)
		}
		emu.ServeHTTP(w, r)
	}))
	srv.Config.Protocols = new(http.Protocols)
	srv.Config.Protocols.SetHTTP1(true)
	srv.Config.Protocols.SetUnencryptedHTTP2(true)
	var conns atomic.Int64
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)

	c, err := atlas.NewClient(atlas.WithBaseURL(srv.URL), atlas.WithDigest(testPublicKey, testPrivateKey), atlas.WithUnencryptedHTTP2())
	if err != nil {
		t.Fatalf("NewClient() = %v", err)
	}
	t.Cleanup(c.CloseIdleConnections)
	if _, err := c.GetEncryptionAtRest(t.Context(), groupID); err != nil {
		t.Fatalf("GetEncryptionAtRest() = %v", err)
	}
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if _, err := c.GetEncryptionAtRest(t.Context(), groupID); err != nil {
				t.Errorf("GetEncryptionAtRest() = %v", err)
			}
		})
	}
	wg.Wait()
	if got1, got2 := http1.Load(), http2.Load(); got1 != 0 || got2 != 22 {
		t.Errorf("exchanges: %d HTTP/1.1, %d HTTP/2; want 0 and 22 (a challenge and 21 calls)", got1, got2)
	}
	if got := conns.Load(); got != 1 {
		t.Errorf("connections = %d, want 1", got)
	}
}

// TestNotBefore checks that a 429's Retry-After becomes the client's
// NotBefore, and that a shorter one later does not move it back.
func TestNotBefore(t *testing.T) {
	t.Parallel()
	emu, srv := atlastest.NewServer(t, atlastest.EmulatorConfig{PublicKey: "p", PrivateKey: "k", AutoCreateGroups: true})
	c, err := atlas.NewClient(atlas.WithBaseURL(srv.URL), atlas.WithDigest("p", "k"), atlas.WithRetryPolicy(atlas.RetryPolicy{MaxAttempts: 1}))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.NotBefore(); !got.IsZero() {
		t.Fatalf("NotBefore() of a new client = %v, want zero", got)
	}
	const group = "5f1a2b3c4d5e6f7a8b9c0d1e"
	emu.InjectFault(atlastest.Fault{Method: http.MethodGet, Status: http.StatusTooManyRequests, RetryAfter: 30 * time.Second})
	before := time.Now()
	if _, err := c.GetEncryptionAtRest(t.Context(), group); err == nil {
		t.Fatal("GET with an injected 429 succeeded")
	}
	first := c.NotBefore()
	if first.Before(before.Add(29*time.Second)) || first.After(time.Now().Add(31*time.Second)) {
		t.Errorf("NotBefore() after a 429 with Retry-After: 30 = %v, want about 30 s after %v", first, before)
	}
	emu.InjectFault(atlastest.Fault{Method: http.MethodGet, Status: http.StatusTooManyRequests, RetryAfter: time.Second})
	_, _ = c.GetEncryptionAtRest(t.Context(), group)
	if got := c.NotBefore(); !got.Equal(first) {
		t.Errorf("NotBefore() after a shorter Retry-After = %v, want %v kept", got, first)
	}
}
