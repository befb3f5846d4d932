package gateway

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// The query parameters the gateway accepts. Everything else is refused:
// grpc-gateway would silently ignore an unknown parameter, and a typo such
// as ?validateonly=true would then apply a change for real.
const (
	paramPretty       = "pretty"
	paramEnvelope     = "envelope"
	paramValidateOnly = "validateOnly"
)

// allowedParams lists the query parameters a request with this method may
// carry: pretty and envelope everywhere, validateOnly on PATCH. The proto
// spelling validate_only is refused (with a hint) so that one request cannot
// say two different things.
func allowedParams(method string) []string {
	if method == http.MethodPatch {
		return []string{paramEnvelope, paramPretty, paramValidateOnly}
	}
	return []string{paramEnvelope, paramPretty}
}

// query is what the gateway took from a request's query string.
type query struct {
	pretty   bool   // indent the JSON answer
	envelope bool   // answer 200 with {"status": …, "content": …}
	forward  string // the query string the ServeMux sees: validateOnly only
}

// parseQuery checks r's query string against the allowlist. pretty and
// envelope are honoured even when something else is refused, so that the
// refusal is written as asked. No value is ever quoted back.
func parseQuery(r *http.Request) (query, *refusal) {
	var q query
	values, perr := url.ParseQuery(r.URL.RawQuery)
	q.pretty, _ = boolParam(values[paramPretty])
	q.envelope, _ = boolParam(values[paramEnvelope])
	if perr != nil {
		return q, &refusal{
			httpStatus: http.StatusBadRequest,
			reason:     reasonInvalidQueryParameter,
			message:    "The query string is malformed: check its escapes (%XX).",
		}
	}

	allowed := allowedParams(r.Method)
	names := make([]string, 0, len(values))
	for name := range values {
		names = append(names, name)
	}
	sort.Strings(names)
	var ref refusal
	for _, name := range names {
		var what string
		switch vals := values[name]; {
		case !slices.Contains(allowed, name):
			what = fmt.Sprintf("is not a query parameter of this route, which accepts only %s", strings.Join(allowed, ", "))
			if s := suggest(name, r.Method); s != "" {
				what += s
			}
		case len(vals) > 1:
			what = "is given more than once"
		default:
			b, ok := boolParam(vals)
			if !ok {
				what = "must be true or false"
				break
			}
			if name == paramValidateOnly {
				q.forward = paramValidateOnly + "=" + strconv.FormatBool(b)
			}
			continue
		}
		short := shorten(name)
		ref.parameters = append(ref.parameters, short)
		ref.violations = append(ref.violations, violation{field: short, description: strconv.Quote(short) + " " + what})
	}
	switch len(ref.violations) {
	case 0:
		return q, nil
	case 1:
		ref.message = "Invalid query parameter " + ref.violations[0].description
	default:
		var parts []string
		for _, v := range ref.violations {
			parts = append(parts, v.description)
		}
		ref.message = "Invalid query parameters: " + strings.Join(parts, "; ")
	}
	if !strings.HasSuffix(ref.message, "?") {
		ref.message += "."
	}
	ref.httpStatus, ref.reason = http.StatusBadRequest, reasonInvalidQueryParameter
	return q, &ref
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

// suggest points a near miss (validateonly, validate_only, Pretty) at the
// parameter meant, or says where validateOnly is accepted.
func suggest(name, method string) string {
	norm := func(s string) string { return strings.ToLower(strings.NewReplacer("_", "", "-", "").Replace(s)) }
	for _, p := range allowedParams(http.MethodPatch) {
		if norm(name) != norm(p) {
			continue
		}
		if p == paramValidateOnly && method != http.MethodPatch {
			return "; validateOnly applies only to PATCH"
		}
		return "; did you mean " + p + "?"
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
