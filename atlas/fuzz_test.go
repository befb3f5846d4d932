package atlas

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// fuzzSecret is the secretAccessKey of FuzzDecodeResponse's PATCHes.
const fuzzSecret = "fuzz-SECRET/access+key=0123456789"

// FuzzDecodeResponse has Atlas answer with an arbitrary status, Retry-After
// and body, and checks how the client decodes it. Invariants: no panic; a
// call returns a result or an error, never both or neither; an error string
// is bounded and never carries the credentials, and no part of an *Error
// carries the PATCH's secret, however Atlas quotes it; a 2xx PATCH whose body
// cannot be read is reported as applied-but-unreadable, never as a failure
// that could be retried.
func FuzzDecodeResponse(f *testing.F) {
	f.Add(200, "", `{"awsKms": {"enabled": true, "valid": true, "region": "US_EAST_1"}, "enabledForSearchNodes": false}`, false)
	f.Add(200, "", `{"awsKms": {"enabled": tru`, true)
	f.Add(400, "", `{"error": 400, "errorCode": "INVALID_ATTRIBUTE", "detail": "Invalid attribute region specified.", "reason": "Bad Request", "parameters": ["region"], "badRequestDetail": {"fields": [{"field": "awsKms.region", "description": "bad"}]}}`, true)
	f.Add(409, "", `{"error": 409, "errorCode": "CANNOT_DISABLE_ENCRYPTION_AT_REST"}`, true)
	f.Add(429, "7", `{"error": 429, "errorCode": "RATE_LIMITED_TOKEN_BUCKET"}`, false)
	f.Add(503, "Wed, 21 Oct 2026 07:28:00 GMT", `<html>upstream unavailable</html>`, false)
	f.Add(502, "", "", true)
	f.Add(200, "", `null`, false)
	f.Add(204, "", ``, true)
	// An answer that quotes the PATCH's secret back everywhere it could.
	f.Add(400, "", `{"error": 400, "errorCode": "X_`+fuzzSecret+`", "detail": "`+strings.Repeat("d", 1020)+fuzzSecret+`", "reason": "`+fuzzSecret+`", "parameters": ["`+fuzzSecret+`", {"`+fuzzSecret+`": "`+fuzzSecret+`"}], "badRequestDetail": {"fields": [{"field": "`+fuzzSecret+`", "description": "a\t`+fuzzSecret+`"}]}}`, true)
	f.Add(502, "", `<html>`+fuzzSecret+`</html>`, true)

	type answer struct {
		status     int
		retryAfter string
		body       string
	}
	var current atomic.Pointer[answer]
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a := current.Load()
		if a.retryAfter != "" {
			w.Header().Set("Retry-After", a.retryAfter)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(a.status)
		_, _ = w.Write([]byte(a.body))
	}))
	f.Cleanup(srv.Close)
	const privateKey = "fuzz-private-key-SENTINEL"
	client, err := NewClient(WithBaseURL(srv.URL), WithDigest("fuzz-public", privateKey),
		WithRetryPolicy(RetryPolicy{MaxAttempts: 1, InitialBackoff: time.Millisecond, MaxBackoff: time.Millisecond, MaxElapsed: time.Millisecond}))
	if err != nil {
		f.Fatal(err)
	}

	f.Fuzz(func(t *testing.T, status int, retryAfter, body string, patch bool) {
		// A 401 is the auth layer's; a header value with control bytes is
		// not one a server can send.
		if status < 200 || status > 599 || status == http.StatusUnauthorized || strings.IndexFunc(retryAfter, func(r rune) bool { return r < ' ' || r > '~' }) >= 0 {
			return
		}
		current.Store(&answer{status: status, retryAfter: retryAfter, body: body})
		var res *EncryptionAtRest
		var err error
		if patch {
			off, secret := false, fuzzSecret
			res, err = client.UpdateEncryptionAtRest(t.Context(), "32b6e34b3d91647abb20e7b8", &EncryptionAtRest{AWSKMS: &AWSKMSConfiguration{Enabled: &off, SecretAccessKey: &secret}})
		} else {
			res, err = client.GetEncryptionAtRest(t.Context(), "32b6e34b3d91647abb20e7b8")
		}
		if (res == nil) == (err == nil) {
			t.Fatalf("status %d body %q: result %v and error %v, want exactly one", status, body, res, err)
		}
		if err == nil {
			return
		}
		msg := err.Error()
		if strings.Contains(msg, privateKey) || len(msg) > 4096 {
			t.Fatalf("status %d: error %q carries the credentials or is unbounded (%d bytes)", status, msg, len(msg))
		}
		var ae *Error
		if status >= 300 && !errors.As(err, &ae) {
			t.Fatalf("status %d: error %v is not an *atlas.Error", status, err)
		}
		if ae != nil && patch { // a GET sends no secret
			all := fmt.Sprint(msg, ae.ErrorCode, ae.Detail, ae.Reason, ae.Parameters, ae.Fields)
			if strings.Contains(all, fuzzSecret) {
				t.Fatalf("status %d body %q: the error quotes the PATCH's secret: %q", status, body, all)
			}
		}
		if patch && status >= 200 && status < 300 && !errors.Is(err, ErrUpdateAppliedUnreadable) {
			t.Fatalf("PATCH answered %d %q: error %v, want ErrUpdateAppliedUnreadable", status, body, err)
		}
	})
}
