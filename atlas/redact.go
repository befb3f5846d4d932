package atlas

import (
	"cmp"
	"encoding/json"
	"slices"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// minSecretFragment is the shortest string inside a service account key,
// or line of one, that is redacted on its own: shorter ones
// ("service_account") are values any key has, not secrets.
const minSecretFragment = 16

// redacted replaces a secret in what Atlas says.
const redacted = "[redacted]"

// maxUnescapes is how many times Redact decodes JSON escapes: a secret may
// reach it nested four strings deep. A service account key's private key
// is escaped once in the key, again in the request body, again if Atlas's
// detail quotes that body as a string, and once more in an error body the
// client quotes raw because it is not an ApiError. Bounded so that text
// such as "\u005cu005cu005c…", which yields one new escape per round,
// costs a few passes over it, not one per escape.
const maxUnescapes = 4

// Secrets returns the secrets to remove from anything Atlas says
// about a request that carried the secret values: each value and, for a
// value that is a JSON object (a Google Cloud service account key), each
// string inside it and each line of those strings (the private key is PEM,
// a line at a time; not its armor) of at least 16 bytes. Empty values are
// skipped; each secret is listed once, longest first.
//
// They are what the secrets mean, not how they are written: Redact finds
// each one however JSON escapes it, so no escaped spelling is listed.
//
// The client applies them to every error it builds from an answer to a
// PATCH, before it cleans up and shortens the text, so that a secret cut
// off or re-spaced on the way cannot slip through; the service applies
// them again to what it tells its callers.
func Secrets(values ...string) []string {
	var out []string
	add := func(v string) {
		if v != "" && !slices.Contains(out, v) {
			out = append(out, v)
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
	// The key's strings come out of a map: sort for a stable answer.
	slices.SortFunc(out, func(a, b string) int { return cmp.Or(cmp.Compare(len(b), len(a)), strings.Compare(a, b)) })
	return out
}

// Redact returns s with each of secrets (from Secrets) replaced by
// "[redacted]" wherever s says it: as it is, or JSON-escaped in any way,
// in quotes or not, escaped up to four times over.
//
// It looks for each secret in s and in s decoded: every JSON escape (\" \\
// \/ \b \f \n \r \t, and \uXXXX in either case, surrogate pairs included)
// replaced by the character it stands for, then again in that, while
// escapes remain, at most four times. Any other backslash stays as it is.
// Where it finds a secret, it replaces the text of s that spells it,
// escapes and all, and keeps the rest of s as it was. Secrets that overlap
// or touch are replaced by a single "[redacted]".
//
// Every secret is redacted however short: a one-character secret makes the
// text unreadable, never leaks.
func Redact(s string, secrets []string) string {
	var spans []span
	text, from := s, []int(nil)
	var spare []int // the offsets of the round before last, to reuse
	for round := 0; ; round++ {
		spans = appendMatches(spans, text, from, len(s), secrets)
		if round == maxUnescapes {
			break
		}
		next, nextFrom, decoded := unescape(text, from, spare[:0])
		if !decoded {
			break
		}
		spare = from
		text, from = next, nextFrom
	}
	if len(spans) == 0 {
		return s
	}
	slices.SortFunc(spans, func(a, b span) int { return cmp.Compare(a.start, b.start) })
	var b strings.Builder
	kept := 0 // s[:kept] is written
	for i := 0; i < len(spans); {
		start, end := spans[i].start, spans[i].end
		for i++; i < len(spans) && spans[i].start <= end; i++ {
			end = max(end, spans[i].end)
		}
		b.WriteString(s[kept:start])
		b.WriteString(redacted)
		kept = end
	}
	b.WriteString(s[kept:])
	return b.String()
}

// span is the text s[start:end] of Redact's s that spells a secret.
type span struct{ start, end int }

// appendMatches appends to spans each place of the n-byte text s where
// text, s decoded, has one of secrets. from[i] is the offset in s of the
// escape (or byte) that text[i] comes from; nil means text is s.
func appendMatches(spans []span, text string, from []int, n int, secrets []string) []span {
	for _, secret := range secrets {
		if secret == "" {
			continue
		}
		for next := 0; ; {
			i := strings.Index(text[next:], secret)
			if i < 0 {
				break
			}
			i += next
			next = i + len(secret)
			if from == nil {
				spans = append(spans, span{i, next})
				continue
			}
			// The match ends where the escape of its last byte ends:
			// where the first byte of another escape comes from.
			end := next
			for end < len(text) && from[end] == from[next-1] {
				end++
			}
			if end < len(text) {
				spans = append(spans, span{from[i], from[end]})
			} else {
				spans = append(spans, span{from[i], n})
			}
		}
	}
	return spans
}

// unescape returns text with its JSON escapes decoded and, appended to
// buf, the offset in Redact's s of the escape or byte each of its bytes
// comes from, given from for text as appendMatches takes it. ok is false
// when text has no escape to decode.
func unescape(text string, from, buf []int) (decoded string, decodedFrom []int, ok bool) {
	if !strings.Contains(text, `\`) {
		return "", nil, false
	}
	out := make([]byte, 0, len(text))
	decodedFrom = slices.Grow(buf, len(text))
	for i := 0; i < len(text); {
		origin := i
		if from != nil {
			origin = from[i]
		}
		n := len(out)
		var width int
		if text[i] == '\\' {
			out, width = appendEscaped(out, text[i:])
		}
		if width == 0 { // a byte as it is
			out, width = append(out, text[i]), 1
		} else {
			ok = true
		}
		for range len(out) - n {
			decodedFrom = append(decodedFrom, origin)
		}
		i += width
	}
	return string(out), decodedFrom, ok
}

// appendEscaped appends to b what the JSON escape at the start of s stands
// for, and returns its length in s: 0 if s does not start with one. A
// \uXXXX that is half a surrogate pair without its other half stands for
// U+FFFD, as encoding/json has it.
func appendEscaped(b []byte, s string) ([]byte, int) {
	if len(s) < 2 || s[0] != '\\' {
		return b, 0
	}
	switch c := s[1]; c {
	case '"', '\\', '/':
		return append(b, c), 2
	case 'b':
		return append(b, '\b'), 2
	case 'f':
		return append(b, '\f'), 2
	case 'n':
		return append(b, '\n'), 2
	case 'r':
		return append(b, '\r'), 2
	case 't':
		return append(b, '\t'), 2
	case 'u':
		r := hex4(s[2:])
		if r < 0 {
			return b, 0
		}
		if !utf16.IsSurrogate(r) {
			return utf8.AppendRune(b, r), 6
		}
		if len(s) >= 12 && s[6] == '\\' && s[7] == 'u' {
			if pair := utf16.DecodeRune(r, hex4(s[8:])); pair != utf8.RuneError {
				return utf8.AppendRune(b, pair), 12
			}
		}
		return utf8.AppendRune(b, utf8.RuneError), 6
	}
	return b, 0
}

// hex4 is the number the four hexadecimal digits at the start of s spell,
// or -1.
func hex4(s string) rune {
	if len(s) < 4 {
		return -1
	}
	var r rune
	for _, c := range []byte(s[:4]) {
		switch {
		case '0' <= c && c <= '9':
			r = r<<4 | rune(c-'0')
		case 'a' <= c && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case 'A' <= c && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return -1
		}
	}
	return r
}

// sentSecrets returns the Secrets of the write-only values update
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
	return Secrets(values...)
}

// redactJSON returns v, a decoded JSON value, with the secrets redacted
// from every string in it, keys included.
func redactJSON(v any, secrets []string) any {
	switch v := v.(type) {
	case string:
		return Redact(v, secrets)
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = redactJSON(x, secrets)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, x := range v {
			out[Redact(k, secrets)] = redactJSON(x, secrets)
		}
		return out
	default:
		return v
	}
}
