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

func TestSecretSpellings(t *testing.T) {
	t.Parallel()
	sak := `{"type":"service_account","private_key_id":"0123456789abcdef0123","private_key":"-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEF\nshort\n-----END PRIVATE KEY-----\n"}`
	got := atlas.SecretSpellings("", `pa"ss\word-123`, sak, `pa"ss\word-123`)
	want := []string{
		// The key and its escaped spelling, longest first.
		strings.ReplaceAll(strings.ReplaceAll(sak, `\`, `\\`), `"`, `\"`),
		sak,
		// Its private key, escaped and as is.
		`-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEF\nshort\n-----END PRIVATE KEY-----\n`,
		"-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEF\nshort\n-----END PRIVATE KEY-----\n",
		// Its PEM lines of 16 bytes or more ("short" is not one), but not
		// the armor.
		"MIIEvQIBADANBgkqhkiG9w0BAQEF",
		// Its other long string.
		"0123456789abcdef0123",
		// The plain value, escaped and as is, once.
		`pa\"ss\\word-123`,
		`pa"ss\word-123`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("SecretSpellings() mismatch (-want +got):\n%s", diff)
	}
	// "service_account" (15 bytes) is in every key: not a secret.
	if slices.Contains(got, "service_account") {
		t.Error("SecretSpellings() redacts the key's type")
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
