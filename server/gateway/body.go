package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"regexp"
	"sort"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// jsonMarshaler is the gateway's only marshaler. It writes protojson with
// Atlas's field spelling (the proto json_name) and leaves unpopulated fields
// out, and it reads request bodies strictly: an unknown field, a value of the
// wrong type, two members of a oneof or anything that is not one JSON object
// is refused with a message of its own that names the field but never
// quotes a value, because protojson's messages do quote values and a value
// may be a secret.
type jsonMarshaler struct {
	// bodyFields maps a body message to the request field that holds it
	// (ProviderConfig → "config"), so that a refusal can name the field by
	// its path in the request, as the service does.
	bodyFields map[protoreflect.FullName]string
}

var _ runtime.Marshaler = (*jsonMarshaler)(nil)

// ContentType is application/json for every message.
func (*jsonMarshaler) ContentType(any) string { return "application/json" }

// Marshal writes v as protojson, or as encoding/json if it is not a message.
func (*jsonMarshaler) Marshal(v any) ([]byte, error) {
	if m, ok := v.(proto.Message); ok {
		return protojson.Marshal(m)
	}
	return json.Marshal(v)
}

// Unmarshal reads data into v as NewDecoder does.
func (m *jsonMarshaler) Unmarshal(data []byte, v any) error {
	if r := m.decode(data, v); r != nil {
		return r
	}
	return nil
}

// NewEncoder returns an Encoder that writes what Marshal writes.
func (m *jsonMarshaler) NewEncoder(w io.Writer) runtime.Encoder {
	return runtime.EncoderFunc(func(v any) error {
		b, err := m.Marshal(v)
		if err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	})
}

// NewDecoder returns a Decoder that reads all of r, which must hold exactly
// one JSON object. When r is a request body installed by the gateway's
// handler, a refusal is also recorded for the error handler, which then
// answers with the refusal's HTTP status and shape; the generated code only
// passes on the error's text.
func (m *jsonMarshaler) NewDecoder(r io.Reader) runtime.Decoder {
	return runtime.DecoderFunc(func(v any) error {
		body, _ := r.(*requestBody)
		data, err := io.ReadAll(r)
		var ref *refusal
		switch {
		case err != nil:
			ref = unreadableBody(err)
		default:
			ref = m.decode(data, v)
		}
		if ref == nil {
			return nil
		}
		if body != nil {
			body.state.refuse(ref)
		}
		return ref
	})
}

// requestBody is the body the gateway's handler passes to the ServeMux: the
// client's body behind http.MaxBytesReader, and the request's state, where
// the decoder records a refusal.
type requestBody struct {
	io.ReadCloser
	state *requestState
}

// unreadableBody is the refusal of a body that could not be read: too large,
// or cut off by the client.
func unreadableBody(err error) *refusal {
	if mbe, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return bodyTooLarge(mbe.Limit)
	}
	return &refusal{
		httpStatus: http.StatusBadRequest,
		reason:     reasonInvalidJSON,
		message:    "The request body could not be read to its end.",
	}
}

// bodyTooLarge is the refusal of a body larger than limit bytes.
func bodyTooLarge(limit int64) *refusal {
	return &refusal{
		httpStatus: http.StatusRequestEntityTooLarge,
		reason:     reasonBodyTooLarge,
		message:    fmt.Sprintf("The request body is larger than the limit of %d bytes.", limit),
	}
}

// decode unmarshals data into v, a proto.Message or a pointer to a nil
// message pointer as the generated code passes it, and explains a failure.
// protojson decides what is accepted; diagnose only explains its refusal.
func (m *jsonMarshaler) decode(data []byte, v any) *refusal {
	msg, ok := target(v)
	if !ok {
		// Not a message: nothing in this API decodes one from a body.
		return &refusal{httpStatus: http.StatusBadRequest, reason: reasonInvalidJSON, message: "The request body cannot be read for this route."}
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return &refusal{
			httpStatus: http.StatusBadRequest,
			reason:     reasonInvalidJSON,
			message:    `The request body is empty: send a JSON object, e.g. {"awsKms": {"enabled": false}}.`,
		}
	}
	err := protojson.Unmarshal(data, msg)
	if err == nil {
		return nil
	}
	md := msg.ProtoReflect().Descriptor()
	return diagnose(data, md, m.bodyFields[md.FullName()], err)
}

// target finds the message that v points to, allocating it if v is a
// pointer to a nil message pointer (what the generated code passes for a
// body field: &protoReq.Config).
func target(v any) (proto.Message, bool) {
	if m, ok := v.(proto.Message); ok {
		return m, true
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() || rv.Elem().Kind() != reflect.Pointer {
		return nil, false
	}
	p := rv.Elem()
	if p.IsNil() {
		p.Set(reflect.New(p.Type().Elem()))
	}
	m, ok := p.Interface().(proto.Message)
	return m, ok
}

// diagnose explains why protojson refused data as md. It never quotes a value
// from data: it names fields (the keys of the object) and JSON kinds, and
// positions of syntax errors. prefix is the request field holding the body
// ("config"), for the proto paths of field violations.
func diagnose(data []byte, md protoreflect.MessageDescriptor, prefix string, perr error) *refusal {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return invalidJSON(data, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return &refusal{
			httpStatus: http.StatusBadRequest,
			reason:     reasonInvalidJSON,
			message:    "The request body must hold one JSON object and nothing after it.",
		}
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return &refusal{
			httpStatus: http.StatusBadRequest,
			reason:     reasonInvalidJSON,
			message:    fmt.Sprintf("The request body must be a JSON object, not %s.", jsonKind(v)),
		}
	}
	var w walker
	w.walk(obj, md, "", prefix)
	if len(w.problems) > 0 {
		return w.refusal()
	}
	return fromProtojsonError(perr)
}

// invalidJSON is the refusal of a body that is not JSON, with the position
// of the syntax error when encoding/json reports one.
func invalidJSON(data []byte, err error) *refusal {
	msg := "The request body is not valid JSON"
	if se, ok := errors.AsType[*json.SyntaxError](err); ok {
		line, col := position(data, se.Offset)
		msg += fmt.Sprintf(": syntax error at line %d, column %d", line, col)
	} else if errors.Is(err, io.ErrUnexpectedEOF) {
		msg += ": it ends too early"
	}
	return &refusal{httpStatus: http.StatusBadRequest, reason: reasonInvalidJSON, message: msg + "."}
}

// position turns a byte offset into a 1-based line and column.
func position(data []byte, offset int64) (line, col int) {
	if offset > int64(len(data)) {
		offset = int64(len(data))
	}
	before := data[:offset]
	line = 1 + bytes.Count(before, []byte("\n"))
	col = int(offset) - bytes.LastIndexByte(before, '\n') - 1
	return line, max(col, 1)
}

// jsonKind names the JSON kind of a value decoded by encoding/json, never
// the value.
func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case json.Number:
		return "a number"
	case string:
		return "a string"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return "a value of an unknown kind"
}

// problem is one thing wrong with a body, found by walker.
type problem struct {
	protoPath string // config.aws_kms.secret_access_key
	jsonPath  string // awsKms.secretAccessKey
	what      string // "is not a field of this API"
	oneof     bool   // a second member of a oneof
}

// walker checks a decoded JSON object against a message descriptor with the
// rules protojson applies, to say which field broke them.
type walker struct {
	problems []problem
}

func join(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}

func (w *walker) walk(obj map[string]any, md protoreflect.MessageDescriptor, jsonPrefix, protoPrefix string) {
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	fields := md.Fields()
	seen := map[protoreflect.FieldNumber]bool{}
	oneofs := map[protoreflect.FullName]string{}
	for _, k := range keys {
		fd := fields.ByJSONName(k)
		if fd == nil {
			fd = fields.ByTextName(k)
		}
		if fd == nil {
			// The key is the caller's, of any length: cut it, as query
			// parameter names are.
			w.problems = append(w.problems, problem{
				protoPath: join(protoPrefix, shorten(k)),
				jsonPath:  join(jsonPrefix, shorten(k)),
				what:      "is not a field of this API",
			})
			continue
		}
		jp, pp := join(jsonPrefix, fd.JSONName()), join(protoPrefix, string(fd.Name()))
		if seen[fd.Number()] {
			w.problems = append(w.problems, problem{protoPath: pp, jsonPath: jp, what: "is given more than once"})
			continue
		}
		seen[fd.Number()] = true
		v := obj[k]
		if v == nil {
			continue // protojson treats null as not set
		}
		if od := fd.ContainingOneof(); od != nil && !od.IsSynthetic() {
			if first, ok := oneofs[od.FullName()]; ok {
				w.problems = append(w.problems, problem{
					protoPath: pp,
					jsonPath:  jp,
					what:      "cannot be set together with " + first,
					oneof:     true,
				})
				continue
			}
			oneofs[od.FullName()] = jp
		}
		if fd.IsList() || fd.IsMap() {
			continue // none in this API; protojson's own check applies
		}
		if want, ok := kindMismatch(fd, v); ok {
			w.problems = append(w.problems, problem{protoPath: pp, jsonPath: jp, what: "must be " + want + ", not " + jsonKind(v)})
			continue
		}
		if sub, ok := v.(map[string]any); ok && fd.Message() != nil && !wellKnown(fd.Message()) {
			w.walk(sub, fd.Message(), jp, pp)
		}
	}
}

// wellKnown reports whether md has a special JSON form (wrappers, Struct,
// Timestamp…), which the walker leaves to protojson.
func wellKnown(md protoreflect.MessageDescriptor) bool {
	return md.ParentFile().Package() == "google.protobuf"
}

// kindMismatch reports the JSON kind fd needs when v is not of it.
func kindMismatch(fd protoreflect.FieldDescriptor, v any) (want string, bad bool) {
	is := func(ok bool, kind string) (string, bool) { return kind, !ok }
	switch fd.Kind() {
	case protoreflect.MessageKind, protoreflect.GroupKind:
		if wellKnown(fd.Message()) {
			return "", false
		}
		_, ok := v.(map[string]any)
		return is(ok, "a JSON object")
	case protoreflect.BoolKind:
		_, ok := v.(bool)
		return is(ok, "true or false")
	case protoreflect.StringKind, protoreflect.BytesKind:
		_, ok := v.(string)
		return is(ok, "a JSON string")
	case protoreflect.EnumKind:
		switch v.(type) {
		case string, json.Number:
			return "", false
		}
		return "a JSON string", true
	default: // numbers: protojson also takes them quoted
		switch v.(type) {
		case string, json.Number:
			return "", false
		}
		return "a JSON number", true
	}
}

// refusal summarises the walker's problems in one refusal. Two providers in
// one body get the message the issue asks for; everything else is Atlas's
// "Invalid attribute … specified".
func (w *walker) refusal() *refusal {
	r := &refusal{httpStatus: http.StatusBadRequest, reason: reasonInvalidAttribute}
	var parts []string
	for _, p := range w.problems {
		r.violations = append(r.violations, violation{field: p.protoPath, description: p.jsonPath + " " + p.what})
		r.parameters = append(r.parameters, p.jsonPath)
		if p.oneof {
			r.message = fmt.Sprintf("Exactly one provider per request is allowed: the body sets %s and %s. Send one request per provider.",
				strings.TrimPrefix(p.what, "cannot be set together with "), p.jsonPath)
			continue
		}
		parts = append(parts, p.jsonPath+" "+p.what)
	}
	switch {
	case r.message != "" && len(parts) > 0:
		r.message += " Also: " + strings.Join(parts, "; ") + "."
	case r.message != "":
	case len(w.problems) == 1:
		r.message = fmt.Sprintf("Invalid attribute %s specified: it %s.", w.problems[0].jsonPath, w.problems[0].what)
	default:
		r.message = "Invalid attributes specified: " + strings.Join(parts, "; ") + "."
	}
	return r
}

// protojsonField finds the field name in the messages protojson writes for
// the refusals the walker cannot see (a key given twice). Only the name is
// kept: these messages go on to quote the value.
var protojsonField = regexp.MustCompile(`(?:unknown field|duplicate field|invalid value for \w+ field|error parsing) "?([A-Za-z_][A-Za-z0-9_]*)"?`)

// fromProtojsonError is the refusal of a body the walker found nothing wrong
// with: it names the field if protojson's message does, and says nothing else
// of what protojson said. protojson names only the last path element, so no
// field violation is made up from it.
func fromProtojsonError(err error) *refusal {
	r := &refusal{httpStatus: http.StatusBadRequest, reason: reasonInvalidJSON}
	if m := protojsonField.FindStringSubmatch(err.Error()); m != nil {
		name := shorten(m[1])
		r.reason = reasonInvalidAttribute
		r.message = fmt.Sprintf("Invalid attribute %s specified: check its name, its type, and that it appears once.", name)
		r.parameters = []string{name}
		return r
	}
	r.message = "The request body does not match this API's JSON schema (see /openapi.json)."
	return r
}
