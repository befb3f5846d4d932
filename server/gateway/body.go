package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/encryptiond/encryptiond/server/failure"
)

// jsonMarshaler is the ServeMux's only marshaler: protojson with Atlas's
// field spelling (the proto json_name), unpopulated fields left out, and
// compact output. Its decoder is strict (no unknown fields), and its errors
// never carry protojson's text, which quotes values: by the time it runs,
// checkBody has already refused every body it would refuse, each with a
// message of its own.
type jsonMarshaler struct{}

var _ runtime.Marshaler = jsonMarshaler{}

// ContentType is application/json for every message.
func (jsonMarshaler) ContentType(any) string { return "application/json" }

// Marshal writes v as compact protojson (protojson varies its whitespace on
// purpose; compact output is stable), a stream's chunk as stream.go says,
// or anything else as encoding/json.
func (jsonMarshaler) Marshal(v any) ([]byte, error) {
	m, ok := v.(proto.Message)
	if !ok {
		if b, chunk, err := marshalChunk(v); chunk {
			return b, err
		}
		return json.Marshal(v)
	}
	b, err := protojson.Marshal(m)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	if err := json.Compact(&out, b); err != nil {
		return b, nil
	}
	return out.Bytes(), nil
}

// errUndecodable is the decoder's only error. checkBody refuses what
// protojson would, so it does not happen.
var errUndecodable = errors.New("The request body does not match this API's JSON schema (see /openapi.json).")

// Unmarshal decodes data into v strictly.
func (jsonMarshaler) Unmarshal(data []byte, v any) error {
	m, ok := target(v)
	if !ok || protojson.Unmarshal(data, m) != nil {
		return errUndecodable
	}
	return nil
}

// NewDecoder returns a Decoder that reads all of r and decodes it as
// Unmarshal does.
func (j jsonMarshaler) NewDecoder(r io.Reader) runtime.Decoder {
	return runtime.DecoderFunc(func(v any) error {
		data, err := io.ReadAll(r)
		if err != nil {
			return errUndecodable
		}
		return j.Unmarshal(data, v)
	})
}

// NewEncoder returns an Encoder that writes what Marshal writes.
func (j jsonMarshaler) NewEncoder(w io.Writer) runtime.Encoder {
	return runtime.EncoderFunc(func(v any) error {
		b, err := j.Marshal(v)
		if err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	})
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

// bodyTooLarge is the refusal of a body larger than limit bytes.
func bodyTooLarge(limit int64) *refusal {
	return &refusal{
		httpStatus: http.StatusRequestEntityTooLarge,
		reason:     failure.ReasonBodyTooLarge,
		message:    fmt.Sprintf("The request body is larger than the limit of %d bytes.", limit),
	}
}

// readBody reads a request body up to limit bytes.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, *refusal) {
	if r.Body == nil {
		return nil, nil
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if mbe, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return nil, bodyTooLarge(mbe.Limit)
	}
	if err != nil {
		return nil, &refusal{
			httpStatus: http.StatusBadRequest,
			reason:     failure.ReasonInvalidJSON,
			message:    "The request body could not be read to its end.",
		}
	}
	return data, nil
}

// checkBody refuses data unless it is one JSON object that protojson
// decodes into md, strictly. It explains a refusal without ever quoting a
// value from data: it names fields (the keys of the object, by their path)
// and JSON kinds, and positions of syntax errors. prefix is the request
// field holding the body ("config"), for the proto paths of field
// violations.
func checkBody(data []byte, md protoreflect.MessageDescriptor, prefix string) *refusal {
	if len(bytes.TrimSpace(data)) == 0 {
		return &refusal{
			httpStatus: http.StatusBadRequest,
			reason:     failure.ReasonInvalidJSON,
			message:    `The request body is empty: send a JSON object, e.g. {"awsKms": {"enabled": false}}.`,
		}
	}
	// Syntax first, and that the body is one object.
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return invalidJSON(data, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return &refusal{
			httpStatus: http.StatusBadRequest,
			reason:     failure.ReasonInvalidJSON,
			message:    "The request body must hold one JSON object and nothing after it.",
		}
	}
	if _, ok := v.(map[string]any); !ok {
		return &refusal{
			httpStatus: http.StatusBadRequest,
			reason:     failure.ReasonInvalidJSON,
			message:    fmt.Sprintf("The request body must be a JSON object, not %s.", jsonKind(v)),
		}
	}
	// Then every key against the descriptors, in the body's order.
	var w walker
	dec = json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	_, _ = dec.Token() // {
	w.object(dec, md, "", prefix)
	if len(w.problems) > 0 {
		return w.refusal()
	}
	// Last, protojson itself, whose rules the walker mirrors. Its text
	// quotes values, so a refusal here says nothing of it.
	if err := protojson.Unmarshal(data, dynamicpb.NewMessage(md)); err != nil {
		return &refusal{httpStatus: http.StatusBadRequest, reason: failure.ReasonInvalidJSON, message: errUndecodable.Error()}
	}
	return nil
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
	return &refusal{httpStatus: http.StatusBadRequest, reason: failure.ReasonInvalidJSON, message: msg + "."}
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

// walker checks the keys of a JSON object, token by token, against a
// message descriptor with the rules protojson applies, to say which field
// broke them. Reading tokens rather than a decoded map lets it see a key
// given twice.
type walker struct {
	problems []problem
}

func join(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}

// object walks the members of an object whose '{' dec has just read, up to
// and including its '}'. The input is known to be valid JSON.
func (w *walker) object(dec *json.Decoder, md protoreflect.MessageDescriptor, jsonPrefix, protoPrefix string) {
	fields := md.Fields()
	seen := map[protoreflect.FieldNumber]bool{}
	oneofs := map[protoreflect.FullName]string{}
	for dec.More() {
		tok, _ := dec.Token()
		key, _ := tok.(string)
		fd := fields.ByJSONName(key)
		if fd == nil {
			fd = fields.ByTextName(key)
		}
		if fd == nil {
			// The key is the caller's, of any length: cut it, as query
			// parameter names are.
			what := "is not a field of this API"
			if meant, ok := failure.Suggest(key, jsonNames(md)); ok {
				what += "; did you mean " + meant + "?"
			}
			w.add(join(protoPrefix, shorten(key)), join(jsonPrefix, shorten(key)), what, false)
			skip(dec)
			continue
		}
		jp, pp := join(jsonPrefix, fd.JSONName()), join(protoPrefix, string(fd.Name()))
		if seen[fd.Number()] {
			w.add(pp, jp, "is given more than once", false)
			skip(dec)
			continue
		}
		seen[fd.Number()] = true
		tok, _ = dec.Token()
		if tok == nil {
			continue // protojson treats null as not set
		}
		if od := fd.ContainingOneof(); od != nil && !od.IsSynthetic() {
			if first, ok := oneofs[od.FullName()]; ok {
				w.add(pp, jp, "cannot be set together with "+first, true)
				skipRest(dec, tok)
				continue
			}
			oneofs[od.FullName()] = jp
		}
		if want, bad := kindMismatch(fd, tok); bad {
			w.add(pp, jp, "must be "+want+", not "+tokenKind(tok), false)
			skipRest(dec, tok)
			continue
		}
		if tok == json.Delim('{') && fd.Message() != nil && !wellKnown(fd.Message()) && !fd.IsMap() {
			w.object(dec, fd.Message(), jp, pp)
			continue
		}
		skipRest(dec, tok) // a list, a map or a well-known type: protojson's own check applies
	}
	_, _ = dec.Token() // }
}

// jsonNames are the JSON names of md's fields.
func jsonNames(md protoreflect.MessageDescriptor) []string {
	names := make([]string, md.Fields().Len())
	for i := range names {
		names[i] = md.Fields().Get(i).JSONName()
	}
	return names
}

func (w *walker) add(protoPath, jsonPath, what string, oneof bool) {
	w.problems = append(w.problems, problem{protoPath: protoPath, jsonPath: jsonPath, what: what, oneof: oneof})
}

// skip reads the next value whole.
func skip(dec *json.Decoder) {
	tok, _ := dec.Token()
	skipRest(dec, tok)
}

// skipRest reads the rest of a value whose first token is tok.
func skipRest(dec *json.Decoder, tok json.Token) {
	if d, ok := tok.(json.Delim); ok && (d == '{' || d == '[') {
		for depth := 1; depth > 0; {
			t, err := dec.Token()
			if err != nil {
				return
			}
			switch t {
			case json.Delim('{'), json.Delim('['):
				depth++
			case json.Delim('}'), json.Delim(']'):
				depth--
			}
		}
	}
}

// tokenKind names the JSON kind of a value from its first token.
func tokenKind(tok json.Token) string {
	switch tok {
	case json.Delim('{'):
		return "an object"
	case json.Delim('['):
		return "an array"
	}
	return jsonKind(tok)
}

// wellKnown reports whether md has a special JSON form (wrappers, Struct,
// Timestamp…), which the walker leaves to protojson.
func wellKnown(md protoreflect.MessageDescriptor) bool {
	return md.ParentFile().Package() == "google.protobuf"
}

// kindMismatch reports the JSON kind fd needs when the value starting with
// tok is not of it.
func kindMismatch(fd protoreflect.FieldDescriptor, tok json.Token) (want string, bad bool) {
	is := func(ok bool, kind string) (string, bool) { return kind, !ok }
	if fd.IsList() {
		return is(tok == json.Delim('['), "a JSON array")
	}
	if fd.IsMap() {
		return is(tok == json.Delim('{'), "a JSON object")
	}
	switch fd.Kind() {
	case protoreflect.MessageKind, protoreflect.GroupKind:
		if wellKnown(fd.Message()) {
			return "", false
		}
		return is(tok == json.Delim('{'), "a JSON object")
	case protoreflect.BoolKind:
		_, ok := tok.(bool)
		return is(ok, "true or false")
	case protoreflect.StringKind, protoreflect.BytesKind:
		_, ok := tok.(string)
		return is(ok, "a JSON string")
	case protoreflect.EnumKind:
		switch tok.(type) {
		case string, json.Number:
			return "", false
		}
		return "a JSON string", true
	default: // numbers: protojson also takes them quoted
		switch tok.(type) {
		case string, json.Number:
			return "", false
		}
		return "a JSON number", true
	}
}

// refusal summarises the walker's problems in one refusal. Two members of
// a oneof (two providers in one body) get a message of their own;
// everything else is Atlas's "Invalid attribute … specified".
func (w *walker) refusal() *refusal {
	r := &refusal{httpStatus: http.StatusBadRequest, reason: failure.ReasonInvalidAttribute}
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
		r.message += " Also: " + sentence(strings.Join(parts, "; "))
	case r.message != "":
	case len(w.problems) == 1:
		r.message = sentence(fmt.Sprintf("Invalid attribute %s specified: it %s", w.problems[0].jsonPath, w.problems[0].what))
	default:
		r.message = sentence("Invalid attributes specified: " + strings.Join(parts, "; "))
	}
	return r
}

// sentence ends s with a full stop, unless it ends with a question.
func sentence(s string) string {
	if strings.HasSuffix(s, "?") {
		return s
	}
	return s + "."
}
