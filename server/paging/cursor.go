package paging

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
)

// Cursor is a position in a list the service reads across Atlas's pages:
// item Offset (from 0) of Atlas's page Page (from 1, MaxSize items a page).
// A page of the service's own may end anywhere in a page of Atlas's, when
// it filters what Atlas lists.
type Cursor struct {
	Page, Offset int
}

// Signer writes and reads page tokens that carry a Cursor, signed with
// HMAC-SHA-256: a token it did not write, or one changed since, is refused.
// Replicas that share the key accept each other's tokens.
type Signer struct {
	key []byte
}

// signedPrefix versions the format of signed tokens.
const signedPrefix = "c1:"

// macSize is how many bytes of the HMAC a token carries: 128 bits.
const macSize = 16

// NewSigner returns a Signer keyed by key, which must not be empty.
func NewSigner(key []byte) (*Signer, error) {
	if len(key) == 0 {
		return nil, errors.New("paging: NewSigner: empty key")
	}
	return &Signer{key: append([]byte(nil), key...)}, nil
}

func (s *Signer) mac(payload string) []byte {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(payload))
	return m.Sum(nil)[:macSize]
}

// Token returns the token of c.
func (s *Signer) Token(c Cursor) string {
	payload := signedPrefix + strconv.Itoa(c.Page) + ":" + strconv.Itoa(c.Offset)
	return base64.RawURLEncoding.EncodeToString(append([]byte(payload), s.mac(payload)...))
}

// Parse returns the cursor of token. It fails on a token s did not write,
// or one changed since, and on a cursor outside Atlas's bounds.
func (s *Signer) Parse(token string) (Cursor, error) {
	errForeign := errors.New("not a page token of this service, or changed since: pass the nextPageToken of the previous answer as it is")
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(raw) <= macSize {
		return Cursor{}, errForeign
	}
	payload, sum := string(raw[:len(raw)-macSize]), raw[len(raw)-macSize:]
	if !hmac.Equal(sum, s.mac(payload)) {
		return Cursor{}, errForeign
	}
	rest, ok := strings.CutPrefix(payload, signedPrefix)
	if !ok {
		return Cursor{}, errForeign
	}
	page, offset, ok := strings.Cut(rest, ":")
	p, err1 := strconv.Atoi(page)
	o, err2 := strconv.Atoi(offset)
	if !ok || err1 != nil || err2 != nil || p < 1 || o < 0 || o >= MaxSize {
		return Cursor{}, errForeign
	}
	return Cursor{Page: p, Offset: o}, nil
}
