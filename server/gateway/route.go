package gateway

import (
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"

	"google.golang.org/genproto/googleapis/api/annotations"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/encryptiond/encryptiond/server/failure"
)

// route is one REST binding of an RPC, read from its google.api.http
// option: what the gateway needs to check a request before grpc-gateway
// decodes it, and to speak of its fields in errors.
type route struct {
	rpc     string // full method name, /pkg.Service/Method
	method  string // HTTP method
	pattern string // path template, variables written {name=*} as grpc-gateway's runtime.Pattern prints them
	input   protoreflect.MessageDescriptor
	// body is the request field the HTTP body fills ("config"), "*" for
	// the whole request, or "" when the route takes no body.
	body string
	// query are the query parameters the route takes besides pretty and
	// envelope, by JSON name: the request's fields that are neither in the
	// path nor the body, as grpc-gateway would fill them; on a route with
	// Atlas's pagination (atlasPaging), Atlas's parameters instead of
	// pageSize and pageToken.
	query []string
	// queryFields are the fields of query, by JSON name; Atlas's paging
	// parameters have none.
	queryFields map[string]protoreflect.FieldDescriptor
	// pathFields are the request fields the path fills, by variable name.
	pathFields map[string]protoreflect.FieldDescriptor
	// allowed are the query parameters the route takes, pretty and
	// envelope included but on a stream, sorted: query and the format
	// parameters, as checkQuery accepts them.
	allowed []string
	// enumPaths are the path variables that are enums, sorted: the ones
	// checkPath checks.
	enumPaths []string
	// stream marks a server-streaming RPC: its answer is newline-delimited
	// JSON, written as it comes.
	stream bool
	// atlasV2 marks a route on Atlas's own v2 paths (/api/atlas/v2/): its
	// media type is Atlas's versioned one, and its answers take Atlas's
	// status codes and list shape (atlasv2.go).
	atlasV2 bool
	// atlasPaging marks an Atlas v2 route of an RPC with AIP-158 paging:
	// the route takes Atlas's itemsPerPage, pageNum and includeCount, and
	// answers Atlas's page ({results, totalCount, links}).
	atlasPaging bool
	// atlasStatus is the HTTP status Atlas answers the route's success
	// with, when it is not 200 (atlasStatuses); 0 otherwise.
	atlasStatus int
}

// bodyMessage is the message the HTTP body decodes into, or nil.
func (rt *route) bodyMessage() protoreflect.MessageDescriptor {
	switch rt.body {
	case "":
		return nil
	case "*":
		return rt.input
	}
	return rt.input.Fields().ByName(protoreflect.Name(rt.body)).Message()
}

// routes are every binding of a service, read once from its descriptors so
// that no route, body or parameter is a hand-kept list.
type routes struct {
	all []*route
}

// pathVariable matches a variable of a google.api.http path template.
var pathVariable = regexp.MustCompile(`\{([a-z_.]+)\}`)

func newRoutes(sd protoreflect.ServiceDescriptor) (*routes, error) {
	rs := &routes{}
	methods := sd.Methods()
	for i := range methods.Len() {
		m := methods.Get(i)
		rule, _ := proto.GetExtension(m.Options(), annotations.E_Http).(*annotations.HttpRule)
		if rule == nil {
			continue
		}
		for _, b := range append([]*annotations.HttpRule{rule}, rule.GetAdditionalBindings()...) {
			rt, err := newRoute(sd, m, b)
			if err != nil {
				return nil, err
			}
			rs.all = append(rs.all, rt)
		}
	}
	return rs, nil
}

func newRoute(sd protoreflect.ServiceDescriptor, m protoreflect.MethodDescriptor, b *annotations.HttpRule) (*route, error) {
	rt := &route{
		rpc: fmt.Sprintf("/%s/%s", sd.FullName(), m.Name()), input: m.Input(), body: b.GetBody(),
		queryFields: map[string]protoreflect.FieldDescriptor{}, pathFields: map[string]protoreflect.FieldDescriptor{},
		stream: m.IsStreamingServer(),
	}
	if m.IsStreamingClient() {
		return nil, fmt.Errorf("gateway: %s: client-streaming RPCs have no REST binding here", m.FullName())
	}
	var template string
	switch p := b.GetPattern().(type) {
	case *annotations.HttpRule_Get:
		rt.method, template = http.MethodGet, p.Get
	case *annotations.HttpRule_Put:
		rt.method, template = http.MethodPut, p.Put
	case *annotations.HttpRule_Post:
		rt.method, template = http.MethodPost, p.Post
	case *annotations.HttpRule_Delete:
		rt.method, template = http.MethodDelete, p.Delete
	case *annotations.HttpRule_Patch:
		rt.method, template = http.MethodPatch, p.Patch
	default:
		return nil, fmt.Errorf("gateway: %s: unsupported HTTP binding %v", m.FullName(), b)
	}
	rt.pattern = pathVariable.ReplaceAllString(template, "{$1=*}")
	if rt.body != "" && rt.body != "*" {
		if fd := m.Input().Fields().ByName(protoreflect.Name(rt.body)); fd == nil || fd.Message() == nil {
			return nil, fmt.Errorf("gateway: %s: body %q is not a message field of %s", m.FullName(), rt.body, m.Input().FullName())
		}
	}
	var inPath []string
	for _, v := range pathVariable.FindAllStringSubmatch(template, -1) {
		inPath = append(inPath, v[1])
		if fd := m.Input().Fields().ByName(protoreflect.Name(v[1])); fd != nil {
			rt.pathFields[v[1]] = fd
		}
	}
	if rt.body != "*" {
		fields := m.Input().Fields()
		for i := range fields.Len() {
			fd := fields.Get(i)
			if name := string(fd.Name()); name != rt.body && !slices.Contains(inPath, name) {
				rt.query = append(rt.query, fd.JSONName())
				rt.queryFields[fd.JSONName()] = fd
			}
		}
	}
	if strings.HasPrefix(template, atlasV2Prefix) {
		if err := rt.bindAtlasV2(m); err != nil {
			return nil, err
		}
	}
	rt.allowed = slices.Clone(rt.query)
	if !rt.stream {
		rt.allowed = append(rt.allowed, paramEnvelope, paramPretty)
	}
	slices.Sort(rt.allowed)
	for name, fd := range rt.pathFields {
		if fd.Kind() == protoreflect.EnumKind {
			rt.enumPaths = append(rt.enumPaths, name)
		}
	}
	slices.Sort(rt.enumPaths)
	return rt, nil
}

// match returns the route grpc-gateway matched: by HTTP method and the
// pattern it reports (runtime.HTTPPattern).
func (rs *routes) match(method, pattern string) *route {
	for _, rt := range rs.all {
		if rt.method == method && rt.pattern == pattern {
			return rt
		}
	}
	return nil
}

// byRPC returns the first route of an RPC, or nil.
func (rs *routes) byRPC(rpc string) *route {
	for _, rt := range rs.all {
		if rt.rpc == rpc {
			return rt
		}
	}
	return nil
}

// elsewhere returns the methods of the other routes with rt's path that
// take the query parameter name, for a refusal's hint.
func (rs *routes) elsewhere(rt *route, name string) []string {
	var methods []string
	for _, o := range rs.all {
		if o != rt && o.pattern == rt.pattern && slices.Contains(o.query, name) {
			methods = append(methods, o.method)
		}
	}
	return methods
}

// atlasPath turns a field path of rt's request in proto form, as the
// service's BadRequest carries it, into the path of the field in the Atlas
// body: the body field is dropped and every name becomes its JSON name
// (config.azure_key_vault.client_id → azureKeyVault.clientID). Names it does
// not know (an unknown field a caller sent) are kept as they are.
func (rt *route) atlasPath(path string) string {
	parts := strings.Split(path, ".")
	md := rt.input
	if rt.body != "" && rt.body != "*" && parts[0] == rt.body {
		md = rt.bodyMessage()
		parts = parts[1:]
		if len(parts) == 0 {
			return path
		}
	}
	out := make([]string, 0, len(parts))
	for i, p := range parts {
		name, index := p, ""
		if j := strings.IndexByte(p, '['); j >= 0 {
			name, index = p[:j], p[j:]
		}
		var fd protoreflect.FieldDescriptor
		if md != nil {
			fields := md.Fields()
			if fd = fields.ByName(protoreflect.Name(name)); fd == nil {
				if fd = fields.ByJSONName(name); fd == nil {
					fd = fields.ByTextName(name)
				}
			}
		}
		if fd == nil {
			out = append(out, parts[i:]...)
			break
		}
		out = append(out, fd.JSONName()+index)
		md = fd.Message()
	}
	return strings.Join(out, ".")
}

// fallback is the route whose field names a refusal uses when it cannot
// tell the request's: the first that takes a body.
func (rs *routes) fallback() *route {
	for _, rt := range rs.all {
		if rt.body != "" {
			return rt
		}
	}
	return rs.all[0]
}

// checkPath refuses a path whose enum variables (cloudProvider) are not
// spelled as the enum's value names, the way Atlas spells them: not as
// numbers, not as the zero value, which means none.
func checkPath(rt *route, pathParams map[string]string) *refusal {
	var bad []violation
	for _, name := range rt.enumPaths {
		fd := rt.pathFields[name]
		values := fd.Enum().Values()
		if v := values.ByName(protoreflect.Name(pathParams[name])); v != nil && v.Number() != 0 {
			continue
		}
		var spelled []string
		for i := range values.Len() {
			if v := values.Get(i); v.Number() != 0 {
				spelled = append(spelled, string(v.Name()))
			}
		}
		bad = append(bad, violation{field: name, description: fd.JSONName() + " must be one of " + strings.Join(spelled, ", ")})
	}
	if len(bad) == 0 {
		return nil
	}
	ref := &refusal{httpStatus: http.StatusBadRequest, reason: failure.ReasonInvalidAttribute, violations: bad}
	var parts []string
	for _, v := range bad {
		ref.parameters = append(ref.parameters, rt.atlasPath(v.field))
		parts = append(parts, v.description)
	}
	ref.message = "Invalid attribute in the path: " + strings.Join(parts, "; ") + "."
	return ref
}
