package failure

import (
	"testing"
	"unicode/utf8"
)

func TestTruncate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		s    string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"exactly", 7, "exactly"},
		{"abcdef", 3, "abc…"},
		{"aé", 2, "a…"},         // é is 2 bytes: not cut in half
		{"€€", 4, "€…"},         // € is 3 bytes
		{"€€", 2, "…"},          // nothing whole fits
		{"a\xffb", 2, "a\xff…"}, // invalid bytes are kept as they are
	}
	for _, tt := range tests {
		got := Truncate(tt.s, tt.n)
		if got != tt.want {
			t.Errorf("Truncate(%q, %d) = %q, want %q", tt.s, tt.n, got, tt.want)
		}
		if utf8.ValidString(tt.s) && !utf8.ValidString(got) {
			t.Errorf("Truncate(%q, %d) = %q, which is not valid UTF-8", tt.s, tt.n, got)
		}
	}
}
