package daemon

import (
	"context"
	"net/http"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/encryptiond/encryptiond/server/failure"
)

// grpc-go decodes a request before any interceptor runs, and answers one it
// cannot decode (invalid UTF-8 in a string field, bytes that are not
// protobuf) with INTERNAL, unseen by the audit log, the rate limit and the
// metrics the interceptors keep. requestCodec lets such a request through
// instead, empty but for a mark, and refuseUndecodable answers it
// INVALID_ARGUMENT after the interceptors have seen it like any call.

// undecodableMark is the unknown field requestCodec puts in a request it
// could not decode: the largest field number protobuf allows, which no
// message of this API uses.
var undecodableMark = protowire.AppendVarint(protowire.AppendTag(nil, protowire.MaxValidNumber, protowire.VarintType), 1)

// requestCodec is grpc-go's proto codec, except that a message that fails
// to decode is reset and marked rather than refused.
type requestCodec struct{ encoding.CodecV2 }

func newRequestCodec() requestCodec {
	return requestCodec{encoding.GetCodecV2("proto")}
}

func (c requestCodec) Unmarshal(data mem.BufferSlice, v any) error {
	err := c.CodecV2.Unmarshal(data, v)
	m, ok := v.(proto.Message)
	if err == nil || !ok {
		return err
	}
	proto.Reset(m)
	m.ProtoReflect().SetUnknown(undecodableMark)
	return nil
}

// undecodable reports whether requestCodec marked msg.
func undecodable(msg any) bool {
	m, ok := msg.(proto.Message)
	if !ok {
		return false
	}
	unknown := m.ProtoReflect().GetUnknown()
	return len(unknown) >= len(undecodableMark) && string(unknown[len(unknown)-len(undecodableMark):]) == string(undecodableMark)
}

// errUndecodable is the answer to a marked request. It never quotes the
// bytes, nor protobuf's error, which may.
func errUndecodable(method string) error {
	return failure.New(codes.InvalidArgument,
		"the request message of "+method+" could not be decoded: it is not valid protobuf (for example, a string field that is not valid UTF-8); nothing was done",
		failure.Info{Domain: failure.DomainService, Reason: failure.ReasonMalformedRequest, HTTPStatus: http.StatusBadRequest})
}

// refuseUndecodable answers a marked unary request INVALID_ARGUMENT.
func refuseUndecodable(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if undecodable(req) {
		return nil, errUndecodable(info.FullMethod)
	}
	return handler(ctx, req)
}

// refuseUndecodableStream answers a streaming call whose request is marked
// INVALID_ARGUMENT, when its handler receives it.
func refuseUndecodableStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
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
	if undecodable(m) {
		return errUndecodable(s.method)
	}
	return nil
}
