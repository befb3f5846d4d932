package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/textproto"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"

	encryptionv1 "github.com/encryptiond/encryptiond/gen/atlas/encryption/v1"
)

// DefaultMaxBodyBytes is the request body limit when WithMaxBodyBytes is not
// given: 1 MiB, far above any real body of this API.
const DefaultMaxBodyBytes int64 = 1 << 20

// Option configures the handler New returns.
type Option func(*options)

type options struct {
	logger       *slog.Logger
	maxBodyBytes int64
}

// WithLogger sets the logger of the HTTP access log: one record, "http
// request", per request. The default discards the records; nil restores it.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) { o.logger = l }
}

// WithMaxBodyBytes sets the largest request body accepted, in bytes; a
// larger one is refused with 413. The default is DefaultMaxBodyBytes. New
// refuses a limit that is not positive.
func WithMaxBodyBytes(n int64) Option {
	return func(o *options) { o.maxBodyBytes = n }
}

// New returns the REST handler of EncryptionService: grpc-gateway's ServeMux
// calling the service through conn, wrapped in the checks, formats and error
// shapes described in the package documentation. conn should be a client
// connection to this process's own gRPC server, so that every gRPC
// interceptor runs for REST calls as well; the caller keeps ownership of
// conn and closes it after the handler's last use. ctx is only used while
// registering.
func New(ctx context.Context, conn *grpc.ClientConn, opts ...Option) (http.Handler, error) {
	if conn == nil {
		return nil, errors.New("gateway: New needs a gRPC client connection")
	}
	o := options{maxBodyBytes: DefaultMaxBodyBytes}
	for _, opt := range opts {
		opt(&o)
	}
	if o.logger == nil {
		o.logger = slog.New(slog.DiscardHandler)
	}
	if o.maxBodyBytes <= 0 {
		return nil, fmt.Errorf("gateway: WithMaxBodyBytes(%d): the limit must be positive", o.maxBodyBytes)
	}
	sch, err := newSchema(encryptionv1.File_atlas_encryption_v1_encryption_proto.Services().ByName("EncryptionService"))
	if err != nil {
		return nil, err
	}
	h := &handler{log: o.logger, maxBodyBytes: o.maxBodyBytes, schema: sch}
	m := &jsonMarshaler{bodyFields: sch.bodyFields}
	h.mux = runtime.NewServeMux(
		runtime.WithMarshalerOption(runtime.MIMEWildcard, m),
		runtime.WithMarshalerOption("application/json", m),
		runtime.WithErrorHandler(h.handleError),
		runtime.WithRoutingErrorHandler(h.handleRoutingError),
		runtime.WithIncomingHeaderMatcher(incomingHeader),
		runtime.WithOutgoingHeaderMatcher(outgoingHeader),
		runtime.WithOutgoingTrailerMatcher(func(string) (string, bool) { return "", false }),
		// Both would let a POST form stand in for a PATCH, with form values
		// that bypass the query allowlist.
		runtime.WithDisablePathLengthFallback(),
		runtime.WithDisableHTTPMethodOverride(),
	)
	if err := encryptionv1.RegisterEncryptionServiceHandler(ctx, h.mux, conn); err != nil {
		return nil, fmt.Errorf("gateway: registering EncryptionService: %w", err)
	}
	return h, nil
}

// incomingHeader forwards X-Request-Id, and no other header, as gRPC
// metadata. (grpc-gateway adds x-forwarded-for and x-forwarded-host itself,
// and would add authorization: the handler removes that header first.)
func incomingHeader(key string) (string, bool) {
	if key == "X-Request-Id" {
		return "x-request-id", true
	}
	return "", false
}

// outgoingHeader lets the service's x-request-id header metadata through to
// the HTTP response, and nothing else.
func outgoingHeader(key string) (string, bool) {
	if textproto.CanonicalMIMEHeaderKey(key) == "X-Request-Id" {
		return "X-Request-Id", true
	}
	return "", false
}

// droppedHeaders never reach the ServeMux: Authorization (grpc-gateway
// forwards it whatever the header matcher says; encryptiond authenticates
// callers by mutual TLS, and a credential should go no further than it must),
// Grpc-Timeout (grpc-gateway quotes a bad value back), Te (trailers are
// not forwarded) and X-Http-Method-Override (it would let a POST stand in
// for a PATCH; the ServeMux is also told to ignore it).
var droppedHeaders = []string{"Authorization", "Grpc-Timeout", "Te", "X-Http-Method-Override"}

// handler is the http.Handler New returns.
type handler struct {
	mux          *runtime.ServeMux
	log          *slog.Logger
	maxBodyBytes int64
	schema       *schema
}

// ServeHTTP checks the query string and body size, passes the request to the
// ServeMux, then writes the buffered answer as pretty and envelope ask, and
// logs one access record.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	st := &requestState{}
	buf := &bufferedResponse{header: http.Header{}}

	q, ref := parseQuery(r)
	if ref == nil && r.ContentLength > h.maxBodyBytes {
		ref = bodyTooLarge(h.maxBodyBytes)
	}
	if ref != nil {
		st.refuse(ref)
		h.writeError(buf, r, "", fromRefusal(ref), st)
	} else {
		h.mux.ServeHTTP(buf, h.prepare(w, r, st, q))
	}
	code, n := buf.flush(w, q)

	attrs := []slog.Attr{
		slog.String("method", r.Method),
		slog.String("path", r.URL.Path),
		slog.Int("status", code),
		slog.Duration("duration", time.Since(start)),
		slog.Int("bytes", n),
		slog.Bool("refused_by_gateway", st.refused != nil),
		slog.String("remote_addr", r.RemoteAddr),
	}
	if st.errorCode != "" {
		attrs = append(attrs, slog.String("error_code", st.errorCode))
	}
	if q.envelope {
		attrs = append(attrs, slog.Bool("envelope", true))
	}
	if id := r.Header.Get("X-Request-Id"); id != "" {
		attrs = append(attrs, slog.String("request_id", shorten(id)))
	}
	h.log.LogAttrs(r.Context(), slog.LevelInfo, "http request", attrs...)
}

// prepare returns the request the ServeMux sees: a copy of r carrying st,
// without pretty and envelope in its query, without droppedHeaders, and with
// a body that stops at the size limit.
func (h *handler) prepare(w http.ResponseWriter, r *http.Request, st *requestState, q query) *http.Request {
	r2 := r.Clone(context.WithValue(r.Context(), stateKey{}, st))
	r2.URL.RawQuery = q.forward
	for _, k := range droppedHeaders {
		r2.Header.Del(k)
	}
	body := r.Body
	if body == nil {
		body = http.NoBody
	}
	r2.Body = &requestBody{ReadCloser: http.MaxBytesReader(w, body, h.maxBodyBytes), state: st}
	return r2
}

// bufferedResponse holds the ServeMux's answer, so that pretty and envelope
// can apply to every answer, success or error, whoever wrote it. Answers of
// this API are small; nothing streams.
type bufferedResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (b *bufferedResponse) Header() http.Header { return b.header }

func (b *bufferedResponse) WriteHeader(code int) {
	if b.status == 0 {
		b.status = code
	}
}

func (b *bufferedResponse) Write(p []byte) (int, error) {
	if b.status == 0 {
		b.status = http.StatusOK
	}
	return b.body.Write(p)
}

// flush writes the buffered answer to w: in an envelope if asked, indented
// if asked, compact otherwise. It returns the answer's own status (not 200
// of an envelope) and the number of body bytes written.
func (b *bufferedResponse) flush(w http.ResponseWriter, q query) (int, int) {
	code := b.status
	if code == 0 {
		code = http.StatusOK
	}
	wire, body := code, b.body.Bytes()
	if q.envelope {
		content := json.RawMessage(body)
		if !json.Valid(body) {
			content = json.RawMessage("null")
		}
		env, err := json.Marshal(struct {
			Status  int             `json:"status"`
			Content json.RawMessage `json:"content"`
		}{code, content})
		if err == nil {
			wire, body = http.StatusOK, env
		}
	}
	var out bytes.Buffer
	var err error
	if q.pretty {
		err = json.Indent(&out, body, "", "  ")
		out.WriteByte('\n')
	} else {
		// protojson varies its whitespace on purpose; compact output is
		// stable.
		err = json.Compact(&out, body)
	}
	if err == nil {
		body = out.Bytes()
	}

	hdr := w.Header()
	for k, v := range b.header {
		switch k {
		case "Content-Length", "Transfer-Encoding", "Trailer":
			continue
		}
		hdr[k] = v
	}
	if len(body) > 0 && hdr.Get("Content-Type") == "" {
		hdr.Set("Content-Type", "application/json")
	}
	hdr.Set("Content-Length", fmt.Sprint(len(body)))
	w.WriteHeader(wire)
	n, _ := w.Write(body)
	return code, n
}
