package atlas_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/encryptiond/encryptiond/atlas"
)

// A service account key as Google issues it: JSON, pretty-printed, whose
// private key is PEM with newlines.
var testPrivateKeyPEM = "-----BEGIN PRIVATE KEY-----\n" +
	strings.Repeat("MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7Qx9Jk2mZr4Tq\n", 12) +
	"-----END PRIVATE KEY-----\n"

func testServiceAccountKey(t *testing.T) string {
	t.Helper()
	b, err := json.MarshalIndent(map[string]string{
		"type":           "service_account",
		"project_id":     "encryptiond-test",
		"private_key_id": "3f8a9c2e7d6b5a4f1e0d9c8b7a6f5e4d3c2b1a09",
		"private_key":    testPrivateKeyPEM,
		"client_email":   "atlas@encryptiond-test.iam.gserviceaccount.com",
	}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestErrorNeverCarriesSentSecrets checks that an error answer that quotes
// the secrets of the PATCH back, whole, in pieces, JSON-escaped or not, cut
// off at the length limits, with its newlines, never puts any of them into
// the *Error: not into Detail, Reason, Fields, Parameters or Error().
func TestErrorNeverCarriesSentSecrets(t *testing.T) {
	t.Parallel()
	const awsSecret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	const azureSecret = "Zx8~Q2.v-Hn4sW9pL0kT3yB6mC1dE5fG7hJ"
	sak := testServiceAccountKey(t)
	escaped := func(s string) string { b, _ := json.Marshal(s); return string(b[1 : len(b)-1]) }

	// Atlas's document, built as JSON so that raw newlines arrive as real
	// newlines in the decoded strings.
	filler := strings.Repeat("x", 1000) // puts the quoted key across the 1024-byte Detail limit
	doc := map[string]any{
		"error":     400,
		"errorCode": "INVALID_" + awsSecret,
		"reason":    "Bad Request " + azureSecret,
		"detail":    filler + " key " + sak + " and " + awsSecret,
		"parameters": []any{
			azureSecret,
			map[string]any{"value": awsSecret, "key": escaped(sak)},
		},
		"badRequestDetail": map[string]any{"fields": []any{
			map[string]any{"field": "awsKms.secretAccessKey", "description": "bad value " + awsSecret},
			map[string]any{"field": "googleCloudKms.serviceAccountKey", "description": strings.Repeat("y", 500) + testPrivateKeyPEM},
			map[string]any{"field": "azureKeyVault.secret", "description": "escaped " + escaped(sak)},
		}},
	}
	body, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	srv, _ := statusServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write(body)
	})
	ex := newExchanges()
	c := newClient(t, srv, atlas.WithObserver(ex.observe))
	_, err = c.UpdateEncryptionAtRest(t.Context(), groupID, &atlas.EncryptionAtRest{
		AWSKMS:         &atlas.AWSKMSConfiguration{SecretAccessKey: ptr(awsSecret)},
		AzureKeyVault:  &atlas.AzureKeyVault{Secret: ptr(azureSecret)},
		GoogleCloudKMS: &atlas.GoogleCloudKMS{ServiceAccountKey: ptr(sak)},
	})
	var aerr *atlas.Error
	if !errors.As(err, &aerr) {
		t.Fatalf("UpdateEncryptionAtRest() = %v, want *atlas.Error", err)
	}
	texts := map[string]string{
		"Error()": err.Error(),
		"Code":    aerr.ErrorCode,
		"Detail":  aerr.Detail,
		"Reason":  aerr.Reason,
		"Params":  fmt.Sprint(aerr.Parameters),
	}
	for i, x := range ex.all() {
		texts[fmt.Sprintf("observed exchange %d", i)] = x.ErrorCode
	}
	for i, f := range aerr.Fields {
		texts[fmt.Sprintf("Fields[%d]", i)] = f.Field + " " + f.Description
	}
	// Any 12 characters in a row of a secret's non-space text is a leak.
	var pieces []string
	for _, secret := range []string{awsSecret, azureSecret, testPrivateKeyPEM} {
		for _, word := range strings.Fields(secret) {
			for i := 0; i+12 <= len(word); i++ {
				if w := word[i : i+12]; !strings.Contains(w, "-----") && !strings.HasPrefix(w, "PRIVATE") {
					pieces = append(pieces, w)
				}
			}
		}
	}
	for name, text := range texts {
		for _, p := range pieces {
			if strings.Contains(text, p) {
				t.Errorf("%s quotes a secret (%q): %.200q…", name, p, text)
				break
			}
		}
	}
	if !strings.Contains(aerr.Detail, "[redacted]") || len(aerr.Fields) != 3 {
		t.Errorf("Detail = %.100q…, Fields = %d; want the redaction marked and every field kept", aerr.Detail, len(aerr.Fields))
	}
}

func TestSecrets(t *testing.T) {
	t.Parallel()
	sak := `{"type":"service_account","private_key_id":"0123456789abcdef0123","private_key":"-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEF\nshort\n-----END PRIVATE KEY-----\n"}`
	got := atlas.Secrets("", `pa"ss\word-123`, sak, `pa"ss\word-123`)
	// What the values mean, not how JSON may spell them: Redact decodes.
	want := []string{
		sak,
		// Its private key.
		"-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEF\nshort\n-----END PRIVATE KEY-----\n",
		// Its PEM lines of 16 bytes or more ("short" is not one), but not
		// the armor.
		"MIIEvQIBADANBgkqhkiG9w0BAQEF",
		// Its other long string.
		"0123456789abcdef0123",
		// The plain value, once.
		`pa"ss\word-123`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Secrets() mismatch (-want +got):\n%s", diff)
	}
	// "service_account" (15 bytes) is in every key: not a secret.
	if slices.Contains(got, "service_account") {
		t.Error("Secrets() redacts the key's type")
	}
	if r := atlas.Redact(`quoted pa"ss\word-123 and pa\"ss\\word-123`, got); r != "quoted [redacted] and [redacted]" {
		t.Errorf("Redact() = %q", r)
	}
}

// TestErrorListsBounded checks that an error body listing hundreds of
// fields and parameters (as many as fit in the 1 MiB read of an error
// body), with long and multi-line strings, becomes an *Error of bounded
// size.
func TestErrorListsBounded(t *testing.T) {
	t.Parallel()
	var fields, params []any
	for i := range 200 {
		fields = append(fields, map[string]any{"field": fmt.Sprintf("awsKms.f%d\n", i) + strings.Repeat("f", 1000), "description": strings.Repeat("d\t", 1000)})
		params = append(params, i)
	}
	body, err := json.Marshal(map[string]any{"error": 400, "errorCode": "INVALID_ATTRIBUTE", "parameters": params, "badRequestDetail": map[string]any{"fields": fields}})
	if err != nil || len(body) > 1<<20 {
		t.Fatalf("body: %d bytes, %v; want it under the 1 MiB the client reads", len(body), err)
	}
	srv, _ := statusServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write(body)
	})
	_, err = newClient(t, srv).UpdateEncryptionAtRest(t.Context(), groupID, &atlas.EncryptionAtRest{EnabledForSearchNodes: ptr(true)})
	var aerr *atlas.Error
	if !errors.As(err, &aerr) {
		t.Fatalf("UpdateEncryptionAtRest() = %v, want *atlas.Error", err)
	}
	if len(aerr.Fields) != 32 || len(aerr.Parameters) != 16 {
		t.Fatalf("Fields = %d, Parameters = %d; want the first 32 and 16", len(aerr.Fields), len(aerr.Parameters))
	}
	if f := aerr.Fields[31]; !strings.HasPrefix(f.Field, "awsKms.f31 ") || len(f.Field) > 260 || len(f.Description) > 516 || strings.ContainsAny(f.Field+f.Description, "\n\t") {
		t.Errorf("Fields[31] = %.60q… (%d and %d bytes), want it sanitized and cut at 256 and 512", f.Field, len(f.Field), len(f.Description))
	}
	if msg := err.Error(); len(msg) > 4096 || !strings.HasSuffix(msg, " more fields)") {
		t.Errorf("Error() is %d bytes, ending %q; want under 4 KiB, counting the fields it leaves out", len(msg), msg[max(0, len(msg)-40):])
	}
}

// TestRedactFindsEscapedSecrets: Atlas may quote a secret
// back JSON-escaped the way Java writes it (", not <), and Redact must find
// it by what the escapes mean, however they are written, in quotes or not,
// escaped once or twice; and replace exactly the text that spells it.
func TestRedactFindsEscapedSecrets(t *testing.T) {
	t.Parallel()
	const (
		secret = `wJalrXUtnFEMI<K7MDENG"bPxRfiCYEXAMPLEKEY` // with < and ", which Java escapes
		other  = "Zx8~Q2/v\\Hn4é€😀\u2028kT3\x01yB6&"
		quoted = "wJalrXUtnFEMI<K7MDENG\\\"bPxRfiCYEXAMPLEKEY" // as Jackson writes it
	)
	// A private key nested four strings deep: escaped in the key, in the
	// request body, where Atlas's detail quotes (part of) that body as a
	// string, and in the error body around the detail.
	const pk = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEF\nshort\n-----END PRIVATE KEY-----\n"
	sak := `{"private_key":"` + goSpelling(pk) + `","client_email":"atlas@p.iam.gserviceaccount.com"}`
	sakPart := sak[:strings.Index(sak, `,"client_email"`)] // no whole key to find
	errorBody := `{"detail":"` + goSpelling(`Invalid body "`+goSpelling(`{"googleCloudKms":{"serviceAccountKey":"`+goSpelling(sakPart))+`…"`) + `"}`

	secrets := atlas.Secrets(secret, other, `lit\n\u0041eral`, sak)
	type test struct{ name, text, want string }
	tests := []test{
		{"a private key four strings deep", errorBody, strings.Replace(errorBody, goSpelling(goSpelling(goSpelling(goSpelling(pk)))), "[redacted]", 1)},
		{"as Java quotes it", `Invalid value "` + quoted + `" for secretAccessKey`, `Invalid value "[redacted]" for secretAccessKey`},
		{"outside quotes", `secret=` + quoted + `, region=US_EAST_1`, `secret=[redacted], region=US_EAST_1`},
		{"upper- and lower-case hex", `key wJalrXUtnFEMI\u003CK7MDENG\u0022bPxRfiCY\u0045XAMPLEKEY.`, `key [redacted].`},
		{"a request body quoted in a string", `body {\"awsKms\":{\"secretAccessKey\":\"wJalrXUtnFEMI\\u003cK7MDENG\\\"bPxRfiCYEXAMPLEKEY\"}}`, `body {\"awsKms\":{\"secretAccessKey\":\"[redacted]\"}}`},
		{"the service's message (its second line)", `Atlas answered 400 INVALID_ATTRIBUTE: Invalid value "` + quoted + `"; the change may or may not have been applied`, `Atlas answered 400 INVALID_ATTRIBUTE: Invalid value "[redacted]"; the change may or may not have been applied`},
		{"next to each other", quoted + secret + `\u0077JalrXUtnFEMI<K7MDENG"bPxRfiCYEXAMPLEKEY`, `[redacted]`},
		{"a secret that has backslashes as is", `lit\n\u0041eral and lit\\n\\u0041eral`, `[redacted] and [redacted]`},
		{"escapes that mean no secret are kept", `C:\new\path \q \u12 \uD800 \\u003c wJalrXUtnFEMI<K7MDENG\"bPxRfiCYEXAMPLEKE`, `C:\new\path \q \u12 \uD800 \\u003c wJalrXUtnFEMI<K7MDENG\"bPxRfiCYEXAMPLEKE`},
	}
	for _, s := range placements {
		for _, v := range []string{secret, other} {
			tests = append(tests, test{s.name + " " + v[:4], `Invalid value "` + s.spell(v) + `"`, `Invalid value "[redacted]"`})
		}
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := atlas.Redact(tt.text, secrets); got != tt.want {
				t.Errorf("Redact(%q) = %q, want %q", tt.text, got, tt.want)
			}
		})
	}
	// A value that is not UTF-8 (the client takes any Go string) can end
	// inside a character an escape stands for: the whole escape goes.
	if got := atlas.Redact(`key abc\u00e9!`, []string{"abc\xc3"}); got != "key [redacted]!" {
		t.Errorf("Redact(%q) = %q, want %q", `key abc\u00e9!`, got, "key [redacted]!")
	}
}

// BenchmarkRedact measures Redact on an answer Atlas may send to a PATCH
// that carried a service account key, and on 1 MiB bodies (the most an
// error body is read) made to decode slowly.
func BenchmarkRedact(b *testing.B) {
	key, err := json.Marshal(map[string]string{"type": "service_account", "private_key_id": "3f8a9c2e7d6b5a4f1e0d9c8b7a6f5e4d3c2b1a09", "private_key": testPrivateKeyPEM, "client_email": "atlas@encryptiond-test.iam.gserviceaccount.com"})
	if err != nil {
		b.Fatal(err)
	}
	secrets := atlas.Secrets("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", string(key))
	tests := []struct{ name, text string }{
		{"detail", `Invalid Google Cloud service account key {"type": "service_account", "private_key": "` + goSpelling(testPrivateKeyPEM)[:200] + `…"}: parse error at line 1`},
		{"1MiB of escapes", `\u005c` + strings.Repeat("u005c", 1<<20/5)},
		{"1MiB of backslashes", strings.Repeat(`\`, 1<<20)},
		{"1MiB of secrets", strings.Repeat(goSpelling(string(key)), 1<<20/len(goSpelling(string(key))))},
	}
	for _, tt := range tests {
		b.Run(tt.name, func(b *testing.B) {
			b.SetBytes(int64(len(tt.text)))
			b.ReportAllocs()
			for b.Loop() {
				atlas.Redact(tt.text, secrets)
			}
		})
	}
}
