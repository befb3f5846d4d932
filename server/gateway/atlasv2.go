package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/encryptiond/encryptiond/atlas"
	encryptionv1 "github.com/encryptiond/encryptiond/gen/atlas/encryption/v1"
	"github.com/encryptiond/encryptiond/server/failure"
	"github.com/encryptiond/encryptiond/server/paging"
)

// This file serves Atlas's own v2 paths as Atlas serves them, so that an
// Atlas v2 curl call works against encryptiond by changing only the host:
//
//   - Media types (negotiate): a request may send Content-Type
//     application/vnd.atlas.2023-01-01+json or application/json; an answer
//     takes the versioned type when Accept asks for it, and JSON otherwise.
//     An Accept that names only Atlas versions this service does not speak,
//     or a Content-Type naming one, is refused with 406
//     INVALID_VERSION_DATE, as Atlas does.
//   - Status codes (atlasStatuses): the ServeMux's ForwardResponseOption
//     (atlasAnswer) writes Atlas's status for the RPCs where it is not 200:
//     202 for a create, 204 without a body for a delete.
//   - Lists (route.atlasPaging): the route takes Atlas's itemsPerPage,
//     pageNum and includeCount, which the gateway turns into the RPC's
//     page_size and page_token (package paging owns the token), and the
//     ServeMux's ForwardResponseRewriter (rewrite) answers Atlas's page,
//     {"links": […], "results": […], "totalCount": n}, instead of the
//     RPC's message. With envelope=true the page is its own envelope, with
//     a "status" member, as Atlas's lists are.
//   - Errors are Atlas's ApiError, as on every path under /api/atlas/.

// atlasV2Prefix starts Atlas's v2 paths.
const atlasV2Prefix = "/api/atlas/v2/"

// Atlas's media types: the versioned one this service speaks, and the
// prefix of every versioned one.
const (
	mediaTypeV2       = "application/vnd.atlas.2023-01-01+json"
	atlasMediaPrefix  = "application/vnd.atlas."
	mediaTypeJSON     = "application/json"
	paramItemsPerPage = "itemsPerPage"
	paramPageNum      = "pageNum"
	paramIncludeCount = "includeCount"
)

// atlasStatuses are the HTTP statuses with which Atlas answers an RPC's
// success on its v2 paths, where they are not 200, from Atlas's spec:
// createGroupEncryptionAtRestPrivateEndpoint answers 202 Accepted, and
// requestGroupEncryptionAtRestPrivateEndpointDeletion 204 No Content.
var atlasStatuses = map[string]int{
	encryptionv1.EncryptionService_CreatePrivateEndpoint_FullMethodName: http.StatusAccepted,
	encryptionv1.EncryptionService_DeletePrivateEndpoint_FullMethodName: http.StatusNoContent,
}

// bindAtlasV2 marks rt as one of Atlas's v2 paths, with Atlas's status and,
// for an RPC with AIP-158 paging, Atlas's pagination.
func (rt *route) bindAtlasV2(m protoreflect.MethodDescriptor) error {
	rt.atlasV2 = true
	rt.atlasStatus = atlasStatuses[rt.rpc]
	if rt.stream {
		return fmt.Errorf("gateway: %s: Atlas's paths have no streams", m.FullName())
	}
	in := m.Input().Fields()
	size, token := in.ByName("page_size"), in.ByName("page_token")
	if size == nil || token == nil {
		return nil
	}
	out := m.Output().Fields()
	if out.ByName("next_page_token") == nil || out.ByName("total_size") == nil || listField(m.Output()) == nil {
		return fmt.Errorf("gateway: %s: a paged RPC on Atlas's paths needs next_page_token, total_size and one repeated message field in %s", m.FullName(), m.Output().FullName())
	}
	rt.atlasPaging = true
	for _, fd := range []protoreflect.FieldDescriptor{size, token} {
		rt.query = slices.DeleteFunc(rt.query, func(q string) bool { return q == fd.JSONName() })
		delete(rt.queryFields, fd.JSONName())
	}
	rt.query = append(rt.query, paramIncludeCount, paramItemsPerPage, paramPageNum)
	return nil
}

// listField is the one repeated message field of a list response.
func listField(md protoreflect.MessageDescriptor) protoreflect.FieldDescriptor {
	var found protoreflect.FieldDescriptor
	fields := md.Fields()
	for i := range fields.Len() {
		if fd := fields.Get(i); fd.IsList() && fd.Message() != nil {
			if found != nil {
				return nil
			}
			found = fd
		}
	}
	return found
}

// atlasV2Path reports whether p is one of Atlas's v2 paths.
func atlasV2Path(p string) bool { return strings.HasPrefix(p, atlasV2Prefix) }

// negotiate reads the media types of a request on Atlas's v2 paths: it
// reports whether the answer takes the versioned media type, or the
// refusal of a version this service does not speak.
func negotiate(r *http.Request) (versioned bool, ref *refusal) {
	var atlasOnly, other bool
	for _, v := range r.Header.Values("Accept") {
		for part := range strings.SplitSeq(v, ",") {
			mt, _, _ := strings.Cut(part, ";")
			switch mt = strings.ToLower(strings.TrimSpace(mt)); {
			case mt == "":
			case mt == mediaTypeV2:
				versioned = true
			case strings.HasPrefix(mt, atlasMediaPrefix):
				atlasOnly = true
			default: // application/json, */* and the like: JSON it is
				other = true
			}
		}
	}
	notAcceptable := &refusal{
		httpStatus: http.StatusNotAcceptable,
		reason:     failure.ReasonInvalidVersionDate,
		message:    "Invalid accept header or version date: this service speaks " + mediaTypeV2 + " (and " + mediaTypeJSON + ") on /api/atlas/v2.",
	}
	if atlasOnly && !versioned && !other {
		return false, notAcceptable
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err == nil && strings.HasPrefix(mt, atlasMediaPrefix) && mt != mediaTypeV2 {
			return false, notAcceptable
		}
	}
	return versioned, nil
}

// exchange is what the answer to one request needs to know of it: set by
// ServeHTTP and check, carried in the request's context to the ServeMux's
// ForwardResponseOption, ForwardResponseRewriter and stream error handler.
type exchange struct {
	rec       *recorder
	format    format
	versioned bool   // the answer takes Atlas's versioned media type
	rt        *route // the matched route, once check found it
	// On an Atlas paging route: the page asked, whether totalCount is
	// left out, and the request's absolute URL for the links.
	page      paging.Page
	omitCount bool
	self      url.URL
	// selfEnveloped marks an answer that is its own envelope (an Atlas
	// page with "status"): the recorder does not wrap it again.
	selfEnveloped bool
}

type exchangeKey struct{}

func withExchange(ctx context.Context, ex *exchange) context.Context {
	return context.WithValue(ctx, exchangeKey{}, ex)
}

func exchangeFrom(ctx context.Context) *exchange {
	ex, _ := ctx.Value(exchangeKey{}).(*exchange)
	return ex
}

// atlasPageQuery turns Atlas's paging parameters, checked for their kind
// already, into the page they ask for.
func atlasPageQuery(values map[string]string) (page paging.Page, omitCount bool, ref *refusal) {
	page = paging.Page{Number: 1, Size: paging.DefaultSize}
	var bad []violation
	if v, ok := values[paramItemsPerPage]; ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > paging.MaxSize {
			bad = append(bad, violation{paramItemsPerPage, fmt.Sprintf("%q must be 1 to %d", paramItemsPerPage, paging.MaxSize)})
		}
		page.Size = n
	}
	if v, ok := values[paramPageNum]; ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			bad = append(bad, violation{paramPageNum, fmt.Sprintf("%q must be 1 or more", paramPageNum)})
		}
		page.Number = n
	}
	omitCount = values[paramIncludeCount] == "false"
	if len(bad) == 0 {
		return page, omitCount, nil
	}
	ref = &refusal{httpStatus: http.StatusBadRequest, reason: failure.ReasonInvalidQueryParameter, violations: bad}
	var parts []string
	for _, v := range bad {
		ref.parameters = append(ref.parameters, v.field)
		parts = append(parts, v.description)
	}
	ref.message = "Invalid query parameter " + strings.Join(parts, "; ") + "."
	return page, omitCount, ref
}

// atlasAnswer is the ServeMux's ForwardResponseOption: on Atlas's v2
// paths it sets the versioned media type when asked for, and Atlas's
// status where it is not 200.
func (h *handler) atlasAnswer(ctx context.Context, w http.ResponseWriter, _ proto.Message) error {
	ex := exchangeFrom(ctx)
	if ex == nil || ex.rt == nil || !ex.rt.atlasV2 {
		return nil
	}
	if ex.versioned {
		w.Header().Set("Content-Type", mediaTypeV2)
	}
	if s := ex.rt.atlasStatus; s != 0 {
		if s == http.StatusNoContent {
			w.Header().Del("Content-Type")
		}
		w.WriteHeader(s)
	}
	return nil
}

// atlasPage is Atlas's page of a list (PaginatedApiAtlas…View).
type atlasPage struct {
	Links      []atlas.Link      `json:"links"`
	Results    []json.RawMessage `json:"results"`
	TotalCount *int64            `json:"totalCount,omitempty"`
	// Status is the envelope's status, with envelope=true.
	Status *int `json:"status,omitempty"`
}

// rewrite is the ServeMux's ForwardResponseRewriter: on an Atlas paging
// route it answers Atlas's page instead of the RPC's list message.
// Everything else goes as it is.
func (h *handler) rewrite(ctx context.Context, resp proto.Message) (any, error) {
	ex := exchangeFrom(ctx)
	if ex == nil || ex.rt == nil || !ex.rt.atlasPaging || resp == nil {
		return resp, nil
	}
	m := resp.ProtoReflect()
	fields := m.Descriptor().Fields()
	page := atlasPage{Results: []json.RawMessage{}}
	list := m.Get(listField(m.Descriptor())).List()
	for i := range list.Len() {
		b, err := jsonMarshaler{}.Marshal(list.Get(i).Message().Interface())
		if err != nil {
			return nil, err
		}
		page.Results = append(page.Results, b)
	}
	if !ex.omitCount {
		n := m.Get(fields.ByName("total_size")).Int()
		page.TotalCount = &n
	}
	link := func(rel string, p paging.Page) atlas.Link {
		u := ex.self
		q := url.Values{paramPageNum: {strconv.Itoa(p.Number)}, paramItemsPerPage: {strconv.Itoa(p.Size)}}
		if ex.omitCount {
			q.Set(paramIncludeCount, "false")
		}
		u.RawQuery = q.Encode()
		return atlas.Link{Rel: rel, Href: u.String()}
	}
	page.Links = append(page.Links, link("self", ex.page))
	if ex.page.Number > 1 {
		page.Links = append(page.Links, link("previous", paging.Page{Number: ex.page.Number - 1, Size: ex.page.Size}))
	}
	if m.Get(fields.ByName("next_page_token")).String() != "" {
		page.Links = append(page.Links, link("next", ex.page.Next()))
	}
	if ex.format.envelope {
		ok := http.StatusOK
		page.Status, ex.selfEnveloped = &ok, true
	}
	return page, nil
}

// absoluteURL is r's URL as the client sent it: scheme, host and path,
// without the query.
func absoluteURL(r *http.Request) url.URL {
	u := url.URL{Scheme: "http", Host: r.Host, Path: r.URL.Path, RawPath: r.URL.RawPath}
	if r.TLS != nil {
		u.Scheme = "https"
	}
	return u
}
