package atlas

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
)

// This file reads Atlas's paginated lists. Every v2 list takes itemsPerPage
// (at most 500), pageNum (from 1) and includeCount, and answers
// {"links": […], "results": […], "totalCount": N}; a page past the end
// answers 200 with no results.

// Atlas's bounds of a page.
const (
	// MaxItemsPerPage is the most items Atlas answers in one page.
	MaxItemsPerPage = 500
	// DefaultItemsPerPage is the page size Atlas answers when a request
	// names none.
	DefaultItemsPerPage = 100
)

// Page is one page of an Atlas list.
type Page[T any] struct {
	Results []T `json:"results"`
	// TotalCount is the number of items in the whole list; nil when the
	// request asked includeCount=false.
	TotalCount *int `json:"totalCount,omitempty"`
	// Links are Atlas's links to this page and its neighbours.
	Links []Link `json:"links"`
}

// Link is one of Atlas's links (RFC 5988) in a paginated answer: Rel is
// "self", "next" or "previous".
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

// HasNext reports whether Atlas says there is a page after p: a "next"
// link, or a total count beyond the items of the pages up to p.
func (p *Page[T]) HasNext(opts ListOptions) bool {
	if slices.ContainsFunc(p.Links, func(l Link) bool { return l.Rel == "next" }) {
		return true
	}
	if p.TotalCount == nil || len(p.Results) == 0 {
		return false
	}
	page, per := opts.normalized()
	return *p.TotalCount > (page-1)*per+len(p.Results)
}

// ListOptions selects a page of a list, as Atlas's pagination does.
type ListOptions struct {
	// PageNum is the page, from 1. 0 means 1.
	PageNum int
	// ItemsPerPage is the page's size, 1 to 500. 0 means Atlas's default,
	// 100.
	ItemsPerPage int
	// OmitCount asks Atlas not to count the items (includeCount=false).
	OmitCount bool
}

// normalized returns the page number and size Atlas applies.
func (o ListOptions) normalized() (page, per int) {
	page, per = max(o.PageNum, 1), o.ItemsPerPage
	if per <= 0 {
		per = DefaultItemsPerPage
	}
	return page, per
}

func (o ListOptions) query() url.Values {
	q := url.Values{}
	if o.PageNum > 0 {
		q.Set("pageNum", strconv.Itoa(o.PageNum))
	}
	if o.ItemsPerPage > 0 {
		q.Set("itemsPerPage", strconv.Itoa(o.ItemsPerPage))
	}
	if o.OmitCount {
		q.Set("includeCount", "false")
	}
	return q
}
