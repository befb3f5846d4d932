package gateway

import (
	"context"
	"net/http"
	"time"

	"google.golang.org/genproto/googleapis/rpc/status"
	grpcstatus "google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/encryptiond/encryptiond/server/failure"
)

// This file serves server-streaming RPCs over REST as grpc-gateway does:
// newline-delimited JSON, one {"result": <message>} per line, flushed as it
// comes, and, when the stream ends with an error, a last line
// {"error": …} in AIP-193's shape (the body of any error on /v1). An error
// before the first message is answered with its HTTP status, so that it
// reads exactly as the same error of a unary call (plus the newline).
//
// A stream outlives the HTTP server's read and write timeouts, which bound
// a request and its answer: check lifts both deadlines for a streaming
// route, and the stream ends with the client, its deadline or the service.
// pretty and envelope, which rewrite one answer whole, are refused on a
// stream.

// marshalChunk renders grpc-gateway's stream chunks, {"result": message}
// and {"error": status}; chunk is false for anything else.
func marshalChunk(v any) (b []byte, chunk bool, err error) {
	switch v := v.(type) {
	case map[string]any: // {"result": message}
		m, ok := v["result"].(proto.Message)
		if !ok || len(v) != 1 {
			return nil, false, nil
		}
		b, err := jsonMarshaler{}.Marshal(m)
		if err != nil {
			return nil, true, err
		}
		return append(append([]byte(`{"result":`), b...), '}'), true, nil
	case map[string]proto.Message: // {"error": google.rpc.Status}
		st, ok := v["error"].(*status.Status)
		if !ok || len(v) != 1 {
			return nil, false, nil
		}
		return encodeJSON(aipBody(grpcstatus.FromProto(st))), true, nil
	}
	return nil, false, nil
}

// streamError is the ServeMux's stream error handler: it notes the
// error's reason for the access log and passes the status on.
func (h *handler) streamError(ctx context.Context, err error) *grpcstatus.Status {
	st := grpcstatus.Convert(err)
	if ex := exchangeFrom(ctx); ex != nil && ex.rec != nil {
		reason := failure.Parse(st).Info.Reason
		if reason == "" {
			reason = codeName(st.Code())
		}
		ex.rec.errorCode = reason
	}
	return st
}

// liftDeadlines lets a stream outlast the HTTP server's read and write
// timeouts. It is best effort: a writer that cannot change its deadlines
// keeps them.
func liftDeadlines(w http.ResponseWriter) {
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Time{})
}
