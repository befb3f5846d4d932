package atlas

import (
	"cmp"
	"encoding/json"
	"slices"
	"strings"
)

// minSecretFragment is the shortest string inside a service account key,
// or line of one, that is redacted on its own: shorter ones
// ("service_account") are values any key has, not secrets.
const minSecretFragment = 16

// redacted replaces a secret in what Atlas says.
const redacted = "[redacted]"

// SecretSpellings returns the strings to remove from anything Atlas says
// about a request that carried the secret values: each value; its
// JSON-escaped spelling (Atlas may quote a body's string as it was on the
// wire); and, for a value that is a JSON object (a Google Cloud service
// account key), each string inside it and each line of those strings (the
// private key is PEM, a line at a time; not its armor) of at least 16
// bytes, in both spellings. They are ordered longest first, so that replacing them in
// order removes a value whole before any part of it. Empty values are
// skipped.
//
// The client applies them to every error it builds from an answer to a
// PATCH, before it cleans up and shortens the text, so that a secret cut
// off or re-spaced on the way cannot slip through; the service applies
// them again to what it tells its callers.
func SecretSpellings(values ...string) []string {
	var out []string
	add := func(v string) {
		if v == "" || slices.Contains(out, v) {
			return
		}
		out = append(out, v)
		if b, err := json.Marshal(v); err == nil {
			if escaped := string(b[1 : len(b)-1]); escaped != v {
				out = append(out, escaped)
			}
		}
	}
	for _, v := range values {
		add(v)
		var inner map[string]any
		if json.Unmarshal([]byte(v), &inner) != nil {
			continue
		}
		for _, x := range inner {
			s, ok := x.(string)
			if !ok || len(s) < minSecretFragment {
				continue
			}
			add(s)
			for line := range strings.Lines(s) {
				// PEM's armor lines are the same in every key.
				if line = strings.TrimSpace(line); len(line) >= minSecretFragment && !strings.HasPrefix(line, "-----") {
					add(line)
				}
			}
		}
	}
	slices.SortStableFunc(out, func(a, b string) int { return cmp.Compare(len(b), len(a)) })
	return out
}

// Redact replaces every spelling in s by "[redacted]". spellings come from
// SecretSpellings.
func Redact(s string, spellings []string) string {
	for _, secret := range spellings {
		s = strings.ReplaceAll(s, secret, redacted)
	}
	return s
}

// sentSecrets returns the spellings of the write-only values update
// carries.
func sentSecrets(update *EncryptionAtRest) []string {
	var values []string
	if a := update.AWSKMS; a != nil && a.SecretAccessKey != nil {
		values = append(values, *a.SecretAccessKey)
	}
	if a := update.AzureKeyVault; a != nil && a.Secret != nil {
		values = append(values, *a.Secret)
	}
	if g := update.GoogleCloudKMS; g != nil && g.ServiceAccountKey != nil {
		values = append(values, *g.ServiceAccountKey)
	}
	return SecretSpellings(values...)
}

// redactJSON returns v, a decoded JSON value, with the spellings redacted
// from every string in it, keys included.
func redactJSON(v any, spellings []string) any {
	switch v := v.(type) {
	case string:
		return Redact(v, spellings)
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = redactJSON(x, spellings)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, x := range v {
			out[Redact(k, spellings)] = redactJSON(x, spellings)
		}
		return out
	default:
		return v
	}
}
