package paging

import "testing"

func TestTokenRoundTrip(t *testing.T) {
	t.Parallel()
	for _, p := range []Page{{1, 1}, {2, 100}, {1 << 20, MaxSize}} {
		got, err := Parse(Token(p))
		if err != nil || got != p {
			t.Errorf("Parse(Token(%v)) = %v, %v; want %v", p, got, err, p)
		}
	}
}

func TestParseRefusesOtherTokens(t *testing.T) {
	t.Parallel()
	for _, token := range []string{"", "2", "not base64!", Token(Page{0, 10}), Token(Page{1, 0}), Token(Page{1, MaxSize + 1}), "cDE6MQ"} {
		if p, err := Parse(token); err == nil {
			t.Errorf("Parse(%q) = %v, want an error", token, p)
		}
	}
}
