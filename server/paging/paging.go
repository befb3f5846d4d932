// Package paging is the one owner of the page tokens of the service's
// lists (AIP-158's page_token and next_page_token). There are two kinds:
//
//   - Token and Parse: a token stands for one page of Atlas's own
//     pagination, its page number and size (ListPrivateEndpoints). The REST
//     gateway writes one for Atlas's pageNum and itemsPerPage on Atlas's
//     own paths, so that an Atlas list request and a ListPrivateEndpoints
//     request are the same call. Changing one changes only which page of
//     Atlas's is read.
//   - Signer: a token stands for a Cursor, a position inside Atlas's pages,
//     signed (ListEncryptionAtRest, whose pages filter Atlas's by the
//     caller's permissions and so end anywhere in them).
//
// Tokens are opaque to callers: the format may change.
package paging

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"

	"github.com/encryptiond/encryptiond/atlas"
)

// Atlas's bounds of a page.
const (
	// DefaultSize is the page size when a request names none, as Atlas's.
	DefaultSize = atlas.DefaultItemsPerPage
	// MaxSize is the largest page Atlas serves.
	MaxSize = atlas.MaxItemsPerPage
)

// Page is one page of an Atlas list: Number from 1, Size items per page.
type Page struct {
	Number, Size int
}

// Next returns the page after p.
func (p Page) Next() Page { return Page{Number: p.Number + 1, Size: p.Size} }

// prefix versions the format.
const prefix = "p1:"

// Token returns the page token of p.
func Token(p Page) string {
	return base64.RawURLEncoding.EncodeToString([]byte(prefix + strconv.Itoa(p.Number) + ":" + strconv.Itoa(p.Size)))
}

// Parse returns the page a token stands for. It fails on anything Token
// did not write, and on a page outside Atlas's bounds.
func Parse(token string) (Page, error) {
	errMalformed := fmt.Errorf("not a page token of this service: pass the nextPageToken of the previous answer as it is")
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return Page{}, errMalformed
	}
	rest, ok := strings.CutPrefix(string(raw), prefix)
	if !ok {
		return Page{}, errMalformed
	}
	num, size, ok := strings.Cut(rest, ":")
	n, err1 := strconv.Atoi(num)
	s, err2 := strconv.Atoi(size)
	if !ok || err1 != nil || err2 != nil || n < 1 || s < 1 || s > MaxSize {
		return Page{}, errMalformed
	}
	return Page{Number: n, Size: s}, nil
}
