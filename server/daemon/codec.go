package daemon

import (
	"context"
	"net/http"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/encryptiond/encryptiond/server/failure"
)

// grpc-go decodes a request before any interceptor runs. It answers one it
// cannot decode (invalid UTF-8 in a string field, bytes that are not
// protobuf) with INTERNAL, unseen by the audit log, the rate limit and the
// interceptors; and it decodes one that sets two members of a oneof (two
// providers in one config) by keeping the last, silently dropping the
// other change. requestCodec lets such a request through instead, empty but
// for a mark saying what is wrong with it, and refuseMarked answers it
// INVALID_ARGUMENT after the interceptors have seen it like any call.

// markNumber is the field requestCodec marks a request with: the largest
// field number protobuf allows, which no message of this API uses. Its
// value says what is wrong: markUndecodable, or markOneof followed by
// "path|first|second|member": the proto path of the message holding the
// oneof ("config"), the JSON names of the two members the bytes set, and
// the second's proto name.
const markNumber = protowire.MaxValidNumber

const (
	markUndecodable = "undecodable"
	markOneof       = "oneof|"
)

// requestCodec is grpc-go's proto codec, except that a message that fails
// to decode, or sets two members of a oneof, is reset and marked rather
// than refused or decoded.
type requestCodec struct{ encoding.CodecV2 }

func newRequestCodec() requestCodec {
	return requestCodec{encoding.GetCodecV2("proto")}
}

func (c requestCodec) Unmarshal(data mem.BufferSlice, v any) error {
	m, ok := v.(proto.Message)
	if !ok {
		return c.CodecV2.Unmarshal(data, v)
	}
	// One contiguous view of the request: no copy when it arrived in one
	// buffer, as it usually does.
	buf := data.MaterializeToBuffer(mem.DefaultBufferPool())
	clash := oneofClash(buf.ReadOnlyData(), m.ProtoReflect().Descriptor(), "", 0)
	buf.Free()
	if clash != "" {
		mark(m, markOneof+clash)
		return nil
	}
	if err := c.CodecV2.Unmarshal(data, v); err != nil {
		mark(m, markUndecodable)
	}
	return nil
}

// mark resets m and marks it with what.
func mark(m proto.Message, what string) {
	proto.Reset(m)
	b := protowire.AppendTag(nil, markNumber, protowire.BytesType)
	m.ProtoReflect().SetUnknown(protowire.AppendString(b, what))
}

// markOf returns the mark of msg, or "".
func markOf(msg any) string {
	m, ok := msg.(proto.Message)
	if !ok {
		return ""
	}
	b := m.ProtoReflect().GetUnknown()
	num, typ, n := protowire.ConsumeTag(b)
	if n < 0 || num != markNumber || typ != protowire.BytesType {
		return ""
	}
	v, n2 := protowire.ConsumeBytes(b[n:])
	if n2 < 0 || n+n2 != len(b) {
		return ""
	}
	return string(v)
}

// maxOneofDepth bounds how deep oneofClash looks into nested messages.
const maxOneofDepth = 8

// oneofClash returns "path|first|second|member" (see markNumber) when b, a
// message md on the wire, or one of its message fields, sets two different
// members of a oneof. It returns "" otherwise, and for bytes that are not
// valid protobuf (decoding says so).
func oneofClash(b []byte, md protoreflect.MessageDescriptor, path string, depth int) string {
	var set map[protoreflect.FullName]protoreflect.FieldDescriptor // made at the first oneof member
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return ""
		}
		b = b[n:]
		fd := md.Fields().ByNumber(num)
		val := b
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return ""
		}
		b = b[n:]
		if fd == nil {
			continue
		}
		if od := fd.ContainingOneof(); od != nil && !od.IsSynthetic() {
			if first, ok := set[od.FullName()]; ok && first.Number() != fd.Number() {
				return strings.Join([]string{path, first.JSONName(), fd.JSONName(), string(fd.Name())}, "|")
			}
			if set == nil {
				set = map[protoreflect.FullName]protoreflect.FieldDescriptor{}
			}
			set[od.FullName()] = fd
		}
		if fd.Message() != nil && typ == protowire.BytesType && depth < maxOneofDepth && !fd.IsMap() {
			inner, _ := protowire.ConsumeBytes(val)
			child := string(fd.Name())
			if path != "" {
				child = path + "." + child
			}
			if clash := oneofClash(inner, fd.Message(), child, depth+1); clash != "" {
				return clash
			}
		}
	}
	return ""
}

// refusal is the answer to a marked request. It never quotes the bytes,
// nor protobuf's error, which may.
func refusal(method, what string) error {
	info := failure.Info{Domain: failure.DomainService, HTTPStatus: http.StatusBadRequest}
	if clash, ok := strings.CutPrefix(what, markOneof); ok {
		parts := append(strings.Split(clash, "|"), "", "", "", "")
		path, first, second, member := parts[0], parts[1], parts[2], parts[3]
		info.Reason = failure.ReasonInvalidAttribute
		field := member
		if path != "" {
			field = path + "." + member
		}
		return failure.New(codes.InvalidArgument,
			"Exactly one provider per request is allowed: the request sets "+first+" and "+second+". Send one request per provider.",
			info, failure.BadRequest([]*failure.Violation{{Field: field, Description: second + " cannot be set together with " + first}}))
	}
	info.Reason = failure.ReasonMalformedRequest
	return failure.New(codes.InvalidArgument,
		"the request message of "+method+" could not be decoded: it is not valid protobuf (for example, a string field that is not valid UTF-8); nothing was done", info)
}

// refuseMarked answers a marked unary request INVALID_ARGUMENT.
func refuseMarked(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if what := markOf(req); what != "" {
		return nil, refusal(info.FullMethod, what)
	}
	return handler(ctx, req)
}

// refuseMarkedStream answers a streaming call whose request is marked
// INVALID_ARGUMENT, when its handler receives it.
func refuseMarkedStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	return handler(srv, &checkedStream{ServerStream: ss, method: info.FullMethod})
}

type checkedStream struct {
	grpc.ServerStream
	method string
}

func (s *checkedStream) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	if what := markOf(m); what != "" {
		return refusal(s.method, what)
	}
	return nil
}
