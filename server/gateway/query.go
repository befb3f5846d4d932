package gateway

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/encryptiond/encryptiond/server/failure"
	"github.com/encryptiond/encryptiond/server/paging"
)

// The query parameters every route takes, as Atlas's do. Everything else a
// route takes is a field of its request (route.query); anything more is
// refused: grpc-gateway would silently ignore an unknown parameter, and a
// typo such as ?validateonly=true would then apply a change for real.
const (
	paramPretty   = "pretty"
	paramEnvelope = "envelope"
)

// format is how the answer is written, from pretty and envelope.
type format struct {
	pretty   bool // indent the JSON answer
	envelope bool // answer 200 with {"status": …, "content": …}
}

// formatOf reads pretty and envelope off r's query, leniently: they are
// honoured even when the query is otherwise refused, so that the refusal is
// written as asked.
func formatOf(r *http.Request) format {
	values, _ := url.ParseQuery(r.URL.RawQuery)
	var f format
	f.pretty, _ = boolParam(values[paramPretty])
	f.envelope, _ = boolParam(values[paramEnvelope])
	return f
}

// checkedQuery is a query that checkQuery let through.
type checkedQuery struct {
	// forward is the query grpc-gateway sees: rt's own parameters only,
	// Atlas's paging parameters turned into the RPC's.
	forward string
	// page and omitCount are what Atlas's paging parameters asked, on a
	// route that takes them.
	page      paging.Page
	omitCount bool
}

// checkQuery checks r's query string against the parameters rt takes. It
// returns the query grpc-gateway should see, or the refusal. No value is
// ever quoted back.
func (rs *routes) checkQuery(r *http.Request, rt *route) (checkedQuery, *refusal) {
	values, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return checkedQuery{}, &refusal{
			httpStatus: http.StatusBadRequest,
			reason:     failure.ReasonInvalidQueryParameter,
			message:    "The query string is malformed: check its escapes (%XX).",
		}
	}
	allowed := rt.allowed
	names := make([]string, 0, len(values))
	for name := range values {
		names = append(names, name)
	}
	slices.Sort(names)
	keep := url.Values{}
	atlasPaging := map[string]string{}
	var bad refusal
	for _, name := range names {
		var what string
		switch vals := values[name]; {
		case rt.stream && (name == paramPretty || name == paramEnvelope):
			what = "does not apply to a stream, which is newline-delimited JSON, one message per line"
		case !slices.Contains(allowed, name) && len(allowed) == 0:
			what = "is not a query parameter of this route, which takes none"
		case !slices.Contains(allowed, name):
			what = fmt.Sprintf("is not a query parameter of this route, which accepts only %s", strings.Join(allowed, ", ")) + rs.hint(rt, name, allowed)
		case len(vals) > 1:
			what = "is given more than once"
		default:
			if what = kindProblem(rt.queryKind(name), vals[0]); what != "" {
				break
			}
			if rt.queryFields[name] != nil {
				keep.Set(name, vals[0])
			} else if rt.atlasPaging && name != paramPretty && name != paramEnvelope {
				atlasPaging[name] = vals[0]
			}
			continue
		}
		short := shorten(name)
		bad.parameters = append(bad.parameters, short)
		bad.violations = append(bad.violations, violation{field: short, description: strconv.Quote(short) + " " + what})
	}
	switch len(bad.violations) {
	case 0:
		checked := checkedQuery{}
		if rt.atlasPaging {
			var ref *refusal
			if checked.page, checked.omitCount, ref = atlasPageQuery(atlasPaging); ref != nil {
				return checkedQuery{}, ref
			}
			keep.Set("pageSize", strconv.Itoa(checked.page.Size))
			keep.Set("pageToken", paging.Token(checked.page))
		}
		checked.forward = keep.Encode()
		return checked, nil
	case 1:
		bad.message = "Invalid query parameter " + bad.violations[0].description
	default:
		var parts []string
		for _, v := range bad.violations {
			parts = append(parts, v.description)
		}
		bad.message = "Invalid query parameters: " + strings.Join(parts, "; ")
	}
	if !strings.HasSuffix(bad.message, "?") {
		bad.message += "."
	}
	bad.httpStatus, bad.reason = http.StatusBadRequest, failure.ReasonInvalidQueryParameter
	return checkedQuery{}, &bad
}

// queryKind is the kind of value the query parameter name takes on rt: its
// field's, a whole number for Atlas's itemsPerPage and pageNum, true or
// false for the others (pretty, envelope, includeCount).
func (rt *route) queryKind(name string) protoreflect.Kind {
	if fd := rt.queryFields[name]; fd != nil {
		return fd.Kind()
	}
	if name == paramItemsPerPage || name == paramPageNum {
		return protoreflect.Int32Kind
	}
	return protoreflect.BoolKind
}

// kindProblem says what is wrong with a query value of kind, or "".
func kindProblem(kind protoreflect.Kind, v string) string {
	switch kind {
	case protoreflect.BoolKind:
		if _, ok := boolParam([]string{v}); !ok {
			return "must be true or false"
		}
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		if _, err := strconv.ParseInt(v, 10, 32); err != nil {
			return "must be a whole number"
		}
	}
	return ""
}

// boolParam reads a parameter given once as exactly true or false.
func boolParam(vals []string) (value, ok bool) {
	if len(vals) != 1 {
		return false, false
	}
	switch vals[0] {
	case "true":
		return true, true
	case "false":
		return false, true
	}
	return false, false
}

// hint points a near miss (validateonly, validate_only) at the parameter
// meant, or says which methods of the same path take it.
func (rs *routes) hint(rt *route, name string, allowed []string) string {
	if p, ok := failure.Suggest(name, allowed); ok {
		return "; did you mean " + p + "?"
	}
	for _, o := range rs.all {
		if o.pattern != rt.pattern || o == rt {
			continue
		}
		if p, ok := failure.Suggest(name, o.query); ok || slices.Contains(o.query, name) {
			if !ok {
				p = name
			}
			return "; " + p + " applies only to " + strings.Join(rs.elsewhere(rt, p), " and ")
		}
	}
	return ""
}

// shorten cuts a query parameter name or a JSON key to 64 bytes for a
// message: names are the caller's words, never values, but need not be long.
func shorten(name string) string {
	const limit = 64
	if len(name) > limit {
		return strings.ToValidUTF8(name[:limit], "") + "…"
	}
	return name
}
