package atlas_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/encryptiond/encryptiond/atlas"
)

// The ways a JSON encoder may write a string's content (without its quotes),
// for tests that have Atlas quote a secret back. Only the tests know them:
// Redact knows what the escapes mean, not who writes which.
var (
	// jsonSpellings are the spellings that must never survive redaction.
	jsonSpellings = []spelling{
		{"raw", func(s string) string { return s }},
		// encoding/json: also <, >, & and U+2028/9, in lower-case hex.
		{"Go", goSpelling},
		// Jackson's defaults (what Atlas, in Java, writes): only ", \ and
		// control characters, in upper-case hex; / and non-ASCII as they are.
		{"Jackson", func(s string) string { return escapeJSON(s, "%04X", func(rune) bool { return false }) }},
		// Python's json.dumps(ensure_ascii=True): everything outside
		// printable ASCII, beyond the BMP as surrogate pairs.
		{"Python", func(s string) string { return escapeJSON(s, "%04x", func(r rune) bool { return r > '~' }) }},
		// PHP's json_encode: non-ASCII as Python does, and / as \/.
		{"PHP", func(s string) string {
			return strings.ReplaceAll(escapeJSON(s, "%04x", func(r rune) bool { return r > 0x7f }), "/", `\/`)
		}},
	}
	// placements are the spellings FuzzRedactSpellings puts into Atlas's
	// answers: jsonSpellings and two that no encoder uses by default but
	// that mean the same.
	placements = append(jsonSpellings[:len(jsonSpellings):len(jsonSpellings)],
		// Every character as \uXXXX.
		spelling{"escaped", func(s string) string { return escapeJSON(s, "%04X", func(rune) bool { return true }) }},
		// Escaped twice: a request body, with the secret in it, quoted in a
		// string.
		spelling{"Go twice", func(s string) string { return goSpelling(goSpelling(s)) }},
	)
)

type spelling struct {
	name  string
	spell func(string) string
}

// goSpelling is s as encoding/json writes it inside a string.
func goSpelling(s string) string {
	b, err := json.Marshal(s)
	if err != nil {
		panic(err) // a string always marshals
	}
	return string(b[1 : len(b)-1])
}

// escapeJSON writes s as the content of a JSON string: every rune for which
// also holds as a \u escape (beyond the BMP a surrogate pair), its hex
// digits written with hexVerb; of the others, " \ \b \t \n \f \r escaped
// in short and other control characters as \u escapes.
func escapeJSON(s, hexVerb string, also func(rune) bool) string {
	var b strings.Builder
	u := func(r rune) { fmt.Fprintf(&b, `\u`+hexVerb, r) }
	short := map[rune]string{'"': `\"`, '\\': `\\`, '\b': `\b`, '\t': `\t`, '\n': `\n`, '\f': `\f`, '\r': `\r`}
	for _, r := range s {
		switch e, ok := short[r]; {
		case also(r) || r < 0x20 && !ok:
			if r1, r2 := utf16.EncodeRune(r); r1 != '\uFFFD' {
				u(r1)
				u(r2)
			} else {
				u(r)
			}
		case ok:
			b.WriteString(e)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// FuzzRedactSpellings: for any secret a PATCH
// carries, spelled any of the ways placements list inside any of Atlas's
// error fields, no part of the resulting *Error (Error(), ErrorCode, Detail,
// Reason, Fields, Parameters) nor the errorCode the observer sees contains
// the secret or any of its jsonSpellings. Atlas answers through a real
// HTTP server and the client's whole error path.
//
// A secret that the same answer yields without it (the client's own words,
// "[redacted]" itself, Atlas's words around the secret) cannot be told
// apart from a leak, so such secrets are skipped; text is checked between
// "[redacted]" marks, so that a mark and its neighbour never spell one.
func FuzzRedactSpellings(f *testing.F) {
	// The issue's reproduction: < and ", quoted as Java writes them.
	f.Add(`wJalrXUtnFEMI<K7MDENG"bPxRfiCYEXAMPLEKEY`, uint8(2), uint8(0), uint16(0), false)
	for i := range placements {
		for _, plain := range []bool{false, true} {
			f.Add("Zx8~Q2/v\\<kT3>&\"é€😀\u2028\x01\x7f", uint8(i), uint8(i), uint16(i*170), plain)
		}
	}
	// A service account key, across the 1024 bytes of Detail.
	sak := `{"type":"service_account","private_key_id":"3f8a9c2e7d6b5a4f1e0d","private_key":"-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEF<\"/\nAASCBKcwggSjAgEAAoIBAQC7\n-----END PRIVATE KEY-----\n","client_email":"atlas@x.iam.gserviceaccount.com"}`
	f.Add(sak, uint8(2), uint8(2), uint16(900), false)
	f.Add(sak, uint8(6), uint8(2), uint16(40), true)
	// A secret of one character, not one that Atlas's or the client's words have.
	f.Add("Q", uint8(3), uint8(1), uint16(0), false)

	var body atomic.Pointer[[]byte]
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write(*body.Load())
	}))
	f.Cleanup(srv.Close)
	var (
		mu       sync.Mutex
		observed []string
	)
	client, err := atlas.NewClient(atlas.WithBaseURL(srv.URL), atlas.WithDigest("fuzz-public", "fuzz-private"),
		atlas.WithHTTPClient(srv.Client()),
		atlas.WithRetryPolicy(atlas.RetryPolicy{MaxAttempts: 1, InitialBackoff: time.Millisecond, MaxBackoff: time.Millisecond, MaxElapsed: time.Millisecond}),
		atlas.WithObserver(func(x atlas.Exchange) { mu.Lock(); observed = append(observed, x.ErrorCode); mu.Unlock() }))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(client.CloseIdleConnections)

	// texts has Atlas answer an update with b, and returns every text the
	// client makes of the answer.
	texts := func(t *testing.T, b []byte, update *atlas.EncryptionAtRest) []string {
		body.Store(&b)
		mu.Lock()
		observed = nil
		mu.Unlock()
		_, err := client.UpdateEncryptionAtRest(t.Context(), "32b6e34b3d91647abb20e7b8", update)
		var ae *atlas.Error
		if !errors.As(err, &ae) {
			t.Fatalf("UpdateEncryptionAtRest() = %v, want an *atlas.Error", err)
		}
		out := []string{err.Error(), ae.ErrorCode, ae.Detail, ae.Reason}
		for _, fv := range ae.Fields {
			out = append(out, fv.Field, fv.Description)
		}
		for _, p := range ae.Parameters {
			out = appendStrings(out, p)
		}
		mu.Lock()
		defer mu.Unlock()
		return append(out, observed...)
	}

	f.Fuzz(func(t *testing.T, secret string, placement, provider uint8, filler uint16, plain bool) {
		secret = strings.ToValidUTF8(secret, "\uFFFD") // a proto string is UTF-8
		if secret == "" || len(secret) > 256 {
			return
		}
		place := placements[int(placement)%len(placements)]
		got := texts(t, errorBody(place.spell(secret), int(filler)%1100, plain), sending(secret, provider))
		without := texts(t, errorBody("[redacted]", int(filler)%1100, plain), &atlas.EncryptionAtRest{EnabledForSearchNodes: ptr(true)})

		forbidden := []string{place.spell(secret)}
		for _, s := range jsonSpellings {
			forbidden = append(forbidden, s.spell(secret))
		}
		for _, text := range without {
			for _, s := range forbidden {
				if strings.Contains(text, s) {
					return // the answer says it without the secret
				}
			}
		}
		for _, text := range got {
			for _, piece := range strings.Split(text, "[redacted]") {
				for _, s := range forbidden {
					if strings.Contains(piece, s) {
						t.Fatalf("Atlas quoted secret %q spelled %s: UpdateEncryptionAtRest() leaks it as %q in %q",
							secret, place.name, s, text)
					}
				}
			}
		}
	})
}

// errorBody is an answer of Atlas's that quotes quoted everywhere it can:
// in every field of an ApiError document, after filler bytes in detail (so
// that it crosses the 1024 bytes kept), or, if plain, in a document without
// an errorCode, which the client quotes raw.
func errorBody(quoted string, filler int, plain bool) []byte {
	doc := map[string]any{
		"error":     400,
		"errorCode": "INVALID_ATTRIBUTE_" + quoted,
		"detail":    strings.Repeat("x", filler) + `Invalid value "` + quoted + `" for the key; body {"secret": "` + quoted + `"}`,
		"reason":    "Bad Request " + quoted,
		"parameters": []any{
			quoted,
			map[string]any{quoted: "value " + quoted},
			[]any{7, `"` + quoted + `"`},
		},
		"badRequestDetail": map[string]any{"fields": []any{
			map[string]any{"field": "awsKms." + quoted, "description": `Invalid value "` + quoted + `"`},
		}},
	}
	if plain {
		delete(doc, "errorCode")
	}
	b, err := json.Marshal(doc)
	if err != nil {
		panic(err)
	}
	return b
}

// sending is an update that sends secret as one provider's write-only value.
func sending(secret string, provider uint8) *atlas.EncryptionAtRest {
	switch provider % 3 {
	case 0:
		return &atlas.EncryptionAtRest{AWSKMS: &atlas.AWSKMSConfiguration{SecretAccessKey: &secret}}
	case 1:
		return &atlas.EncryptionAtRest{AzureKeyVault: &atlas.AzureKeyVault{Secret: &secret}}
	default:
		return &atlas.EncryptionAtRest{GoogleCloudKMS: &atlas.GoogleCloudKMS{ServiceAccountKey: &secret}}
	}
}

// appendStrings appends every string in v, a decoded JSON value, keys
// included.
func appendStrings(out []string, v any) []string {
	switch v := v.(type) {
	case string:
		out = append(out, v)
	case []any:
		for _, x := range v {
			out = appendStrings(out, x)
		}
	case map[string]any:
		for k, x := range v {
			out = appendStrings(append(out, k), x)
		}
	}
	return out
}
