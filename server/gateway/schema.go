package gateway

import (
	"fmt"
	"strings"

	"google.golang.org/genproto/googleapis/api/annotations"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// route is what the gateway needs to know about one RPC to speak of its
// fields: its request message and the request field the HTTP body fills.
type route struct {
	input protoreflect.MessageDescriptor
	body  string // "config"; "" when the route takes no body
}

// schema is read once from the service's descriptors and google.api.http
// options, so that field names are never a hand-kept list.
type schema struct {
	routes map[string]route // by full method name, /pkg.Service/Method
	// fallback is the first route with a body, used for refusals made
	// before routing (bad query parameters).
	fallback route
	// bodyFields maps a body message to the request field that holds it.
	bodyFields map[protoreflect.FullName]string
}

func newSchema(sd protoreflect.ServiceDescriptor) (*schema, error) {
	s := &schema{routes: map[string]route{}, bodyFields: map[protoreflect.FullName]string{}}
	methods := sd.Methods()
	for i := range methods.Len() {
		m := methods.Get(i)
		rt := route{input: m.Input()}
		rule, _ := proto.GetExtension(m.Options(), annotations.E_Http).(*annotations.HttpRule)
		if b := rule.GetBody(); b != "" && b != "*" {
			fd := m.Input().Fields().ByName(protoreflect.Name(b))
			if fd == nil || fd.Message() == nil {
				return nil, fmt.Errorf("gateway: %s: body %q is not a message field of %s", m.FullName(), b, m.Input().FullName())
			}
			rt.body = b
			s.bodyFields[fd.Message().FullName()] = b
			if s.fallback.input == nil {
				s.fallback = rt
			}
		}
		s.routes[fmt.Sprintf("/%s/%s", sd.FullName(), m.Name())] = rt
	}
	if s.fallback.input == nil && methods.Len() > 0 {
		s.fallback = route{input: methods.Get(0).Input()}
	}
	return s, nil
}

// atlasPath turns a field path of the request in proto form, as the
// service's BadRequest carries it, into the path of the field in the Atlas
// body: the body field is dropped and every name becomes its JSON name
// (config.azure_key_vault.client_id → azureKeyVault.clientID). Names it does
// not know (an unknown field a caller sent) are kept as they are.
func (s *schema) atlasPath(method, path string) string {
	rt, ok := s.routes[method]
	if !ok {
		rt = s.fallback
	}
	parts := strings.Split(path, ".")
	md := rt.input
	if rt.body != "" && parts[0] == rt.body {
		md = md.Fields().ByName(protoreflect.Name(rt.body)).Message()
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
