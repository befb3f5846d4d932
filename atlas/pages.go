package atlas

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
)

// This file reads Atlas's paginated lists. Every v2 list takes itemsPerPage
// (at most 500), pageNum (from 1) and includeCount, and answers
// {"links": […], "results": […], "totalCount": N}; a page past the end
// answers 200 with no results.

// MaxItemsPerPage is the most items Atlas answers in one page.
const MaxItemsPerPage = 500

// Page is one page of an Atlas list.
type Page[T any] struct {
	Results []T `json:"results"`
	// TotalCount is the number of items in the whole list; nil when the
	// request asked includeCount=false.
	TotalCount *int   `json:"totalCount,omitempty"`
	Links      []Link `json:"links"`
}

// Link is an Atlas hypermedia link.
type Link struct {
	Href string `json:"href"`
	Rel  string `json:"rel"`
}

// maxPages bounds how many pages listAll reads before it gives up on a list
// that does not end: 100,000 items at 500 a page.
const maxPages = 200

// listAll reads every page of the list at path (resource names it in
// errors), asking MaxItemsPerPage at a time, until it has the total Atlas
// reports, or a page is empty.
func listAll[T any](ctx context.Context, c *Client, resource, path string) ([]T, error) {
	var all []T
	for page := 1; ; page++ {
		if page > maxPages {
			return nil, fmt.Errorf("atlas: GET %s: more than %d pages of %d", resource, maxPages, MaxItemsPerPage)
		}
		var p Page[T]
		q := url.Values{"itemsPerPage": {strconv.Itoa(MaxItemsPerPage)}, "pageNum": {strconv.Itoa(page)}}
		if err := c.do(ctx, &call{method: http.MethodGet, resource: resource, path: path, query: q, v2: true, out: &p}); err != nil {
			return nil, err
		}
		all = append(all, p.Results...)
		// The total says when the list ends; without it, a short page does.
		// (Atlas may answer fewer items than asked before the end.)
		switch {
		case len(p.Results) == 0,
			p.TotalCount != nil && len(all) >= *p.TotalCount,
			p.TotalCount == nil && len(p.Results) < MaxItemsPerPage:
			return all, nil
		}
	}
}
