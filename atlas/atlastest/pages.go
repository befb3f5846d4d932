package atlastest

import (
	"net/http"
	"net/url"
	"strconv"

	"github.com/encryptiond/encryptiond/atlas"
)

// page answers one page of items as Atlas answers every v2 list:
// itemsPerPage (1 to 500, default 100), pageNum (from 1, default 1) and
// includeCount (default true) select it; the answer has links to the page
// itself and to its neighbours, and a page past the end has no results. A
// positive limit answers at most that many items a page, whatever was
// asked (EmulatorConfig.MaxItemsPerPage).
func page[T any](req *apiRequest, items []T, limit int) (int, any) {
	per, aerr := intParam(req.query, "itemsPerPage", atlas.DefaultItemsPerPage, 1, atlas.MaxItemsPerPage)
	if aerr != nil {
		return aerr.Error, aerr
	}
	num, aerr := intParam(req.query, "pageNum", 1, 1, 1<<30)
	if aerr != nil {
		return aerr.Error, aerr
	}
	count := true
	if v := req.query.Get("includeCount"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return http.StatusBadRequest, invalidQueryParameter("includeCount")
		}
		count = b
	}
	asked := per
	if limit > 0 {
		per = min(per, limit)
	}
	out := atlas.Page[T]{Results: []T{}}
	if from := (num - 1) * per; from < len(items) {
		out.Results = items[from:min(from+per, len(items))]
	}
	if count {
		n := len(items)
		out.TotalCount = &n
	}
	link := func(rel string, p int) atlas.Link {
		q := url.Values{"pageNum": {strconv.Itoa(p)}, "itemsPerPage": {strconv.Itoa(asked)}}
		return atlas.Link{Rel: rel, Href: req.base + req.path + "?" + q.Encode()}
	}
	out.Links = append(out.Links, link("self", num))
	if num > 1 {
		out.Links = append(out.Links, link("previous", num-1))
	}
	if num*per < len(items) {
		out.Links = append(out.Links, link("next", num+1))
	}
	return http.StatusOK, out
}

// intParam reads the integer query parameter name: def when absent, Atlas's
// error when it is not a number from lo to hi.
func intParam(q url.Values, name string, def, lo, hi int) (int, *atlas.ErrorBody) {
	v := q.Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, invalidQueryParameter(name)
	}
	return n, nil
}

func invalidQueryParameter(name string) *atlas.ErrorBody {
	return errorBody(http.StatusBadRequest, "INVALID_QUERY_PARAMETER", "Invalid query parameter "+name+" specified.")
}
