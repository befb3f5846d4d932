package paging

import (
	"encoding/base64"
	"testing"
)

func TestSignerRoundTrip(t *testing.T) {
	t.Parallel()
	s, err := NewSigner([]byte("key"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []Cursor{{1, 0}, {2, 37}, {1000, MaxSize - 1}} {
		got, err := s.Parse(s.Token(c))
		if err != nil || got != c {
			t.Errorf("Parse(Token(%+v)) = %+v, %v", c, got, err)
		}
	}
}

func TestSignerRefuses(t *testing.T) {
	t.Parallel()
	s, _ := NewSigner([]byte("key"))
	other, _ := NewSigner([]byte("another key"))
	good := s.Token(Cursor{Page: 2, Offset: 5})
	raw, _ := base64.RawURLEncoding.DecodeString(good)
	flipped := append([]byte(nil), raw...)
	flipped[3] ^= 1 // the page number
	tests := map[string]string{
		"empty":                  "",
		"not base64":             "!!!",
		"unsigned page token":    Token(Page{Number: 2, Size: 100}),
		"another key's":          other.Token(Cursor{Page: 2, Offset: 5}),
		"a byte changed":         base64.RawURLEncoding.EncodeToString(flipped),
		"truncated":              good[:len(good)-2],
		"signature only":         base64.RawURLEncoding.EncodeToString(raw[len(raw)-macSize:]),
		"offset outside a page":  s.Token(Cursor{Page: 1, Offset: MaxSize}),
		"page before the first":  s.Token(Cursor{Page: 0, Offset: 0}),
		"negative offset signed": s.Token(Cursor{Page: 1, Offset: -1}),
	}
	for name, token := range tests {
		if c, err := s.Parse(token); err == nil {
			t.Errorf("%s: Parse(%q) = %+v, want an error", name, token, c)
		}
	}
	if _, err := NewSigner(nil); err == nil {
		t.Error("NewSigner(nil) succeeded")
	}
}
