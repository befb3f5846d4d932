package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/textproto"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"

	encryptionv1 "github.com/encryptiond/encryptiond/gen/atlas/encryption/v1"
	"github.com/encryptiond/encryptiond/server/failure"
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
// calling the service through conn, with the checks, formats and error
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
	rs, err := newRoutes(encryptionv1.File_atlas_encryption_v1_encryption_proto.Services().ByName("EncryptionService"))
	if err != nil {
		return nil, err
	}
	h := &handler{log: o.logger, maxBodyBytes: o.maxBodyBytes, routes: rs}
	m := jsonMarshaler{}
	h.mux = runtime.NewServeMux(
		runtime.WithMarshalerOption(runtime.MIMEWildcard, m),
		runtime.WithMarshalerOption("application/json", m),
		runtime.WithErrorHandler(h.handleError),
		runtime.WithStreamErrorHandler(h.streamError),
		runtime.WithRoutingErrorHandler(h.handleRoutingError),
		runtime.WithMiddlewares(h.check),
		// Atlas's status codes, media type and list shape on its v2 paths
		// (atlasv2.go).
		runtime.WithForwardResponseOption(h.atlasAnswer),
		runtime.WithForwardResponseRewriter(h.rewrite),
		runtime.WithIncomingHeaderMatcher(incomingHeader),
		runtime.WithOutgoingHeaderMatcher(outgoingHeader),
		runtime.WithOutgoingTrailerMatcher(func(string) (string, bool) { return "", false }),
		// Both would let a POST form stand in for a PATCH, with form values
		// that bypass the query check.
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
// Te (trailers are not forwarded) and X-Http-Method-Override (it would let a
// POST stand in for a PATCH; the ServeMux is also told to ignore it).
// Grpc-Timeout, the REST caller's deadline, does reach it, once
// validTimeout has checked it: grpc-gateway would quote a bad value back.
var droppedHeaders = []string{"Authorization", "Te", "X-Http-Method-Override"}

// grpcTimeout is gRPC's timeout header value: at most 8 digits and a unit.
var grpcTimeout = regexp.MustCompile(`^[0-9]{1,8}[HMSmun]$`)

// validTimeout reports whether the Grpc-Timeout header, if any, is given
// once and well formed.
func validTimeout(values []string) bool {
	return len(values) == 0 || len(values) == 1 && grpcTimeout.MatchString(values[0])
}

// canonical reports whether p is an absolute path without empty, . or ..
// segments (a final slash aside): what net/http's ServeMux would otherwise
// answer with a redirect to the cleaned path, which a client following
// redirects would obey by sending a change again.
func canonical(p string) bool {
	if p == "" || p[0] != '/' {
		return false
	}
	clean := path.Clean(p)
	if strings.HasSuffix(p, "/") && clean != "/" {
		clean += "/"
	}
	return clean == p
}

// withoutDroppedHeaders returns r, or a copy of it without droppedHeaders
// if it has any: a handler does not change the request it is given.
func withoutDroppedHeaders(r *http.Request) *http.Request {
	for _, k := range droppedHeaders {
		if _, ok := r.Header[k]; ok {
			c := r.WithContext(r.Context())
			c.Header = r.Header.Clone()
			for _, k := range droppedHeaders {
				c.Header.Del(k)
			}
			return c
		}
	}
	return r
}

// handler is the http.Handler New returns.
type handler struct {
	mux          *runtime.ServeMux
	log          *slog.Logger
	maxBodyBytes int64
	routes       *routes
}

// ServeHTTP passes the request to the ServeMux through a recorder for the
// access log, which buffers the answer only when pretty or envelope asks
// for it to be rewritten, and logs one access record.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	f := formatOf(r)
	rec := &recorder{ResponseWriter: w}
	if f.pretty || f.envelope {
		rec.buf = &bytes.Buffer{}
	}
	ex := &exchange{rec: rec, format: f}
	rec.ex = ex
	var notAcceptable *refusal
	if atlasV2Path(r.URL.Path) {
		ex.versioned, notAcceptable = negotiate(r)
	}
	switch {
	case !canonical(r.URL.Path):
		h.refuse(rec, r, nil, &refusal{httpStatus: http.StatusBadRequest, reason: failure.ReasonInvalidPath,
			message: "The request path is not in canonical form: it has an empty, . or .. segment. Nothing was done; see /openapi.json for the paths."})
	case notAcceptable != nil:
		h.refuse(rec, r, nil, notAcceptable)
	case r.ContentLength > h.maxBodyBytes:
		h.refuse(rec, r, nil, bodyTooLarge(h.maxBodyBytes))
	case !validTimeout(r.Header.Values("Grpc-Timeout")):
		h.refuse(rec, r, nil, &refusal{httpStatus: http.StatusBadRequest, reason: failure.ReasonInvalidHeader,
			message: "The Grpc-Timeout header must be given once, as 1 to 8 digits and a unit (H, M, S, m, u or n), e.g. 10S for ten seconds."})
	default:
		h.mux.ServeHTTP(rec, withoutDroppedHeaders(r.WithContext(withExchange(r.Context(), ex))))
	}
	if rec.buf != nil {
		rec.flush(f)
	}

	attrs := []slog.Attr{
		slog.String("method", r.Method),
		slog.String("path", r.URL.Path),
		slog.Int("status", rec.statusCode()),
		slog.Duration("duration", time.Since(start)),
		slog.Int("bytes", rec.bytes),
		slog.Bool("refused_by_gateway", rec.refused),
		slog.String("remote_addr", r.RemoteAddr),
	}
	if rec.errorCode != "" {
		attrs = append(attrs, slog.String("error_code", rec.errorCode))
	}
	if f.envelope {
		attrs = append(attrs, slog.Bool("envelope", true))
	}
	if id := r.Header.Get("X-Request-Id"); id != "" {
		attrs = append(attrs, slog.String("request_id", shorten(id)))
	}
	h.log.LogAttrs(r.Context(), slog.LevelInfo, "http request", attrs...)
}

// check is the ServeMux's middleware: it runs once grpc-gateway has matched
// a route, before the route's handler decodes anything. It refuses a query
// parameter the route does not take and a body that is not exactly the
// route's message, and hands on a request whose query holds only the
// route's own parameters and whose body is the bytes it checked.
func (h *handler) check(next runtime.HandlerFunc) runtime.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request, pathParams map[string]string) {
		pat, _ := runtime.HTTPPattern(r.Context())
		rt := h.routes.match(r.Method, pat.String())
		if rt == nil {
			// Every route comes from the same descriptors: this is a bug.
			h.refuse(w, r, nil, &refusal{httpStatus: http.StatusNotFound, reason: failure.ReasonResourceNotFound, message: "No resource of this API has this path; see /openapi.json."})
			return
		}
		if ref := checkPath(rt, pathParams); ref != nil {
			h.refuse(w, r, rt, ref)
			return
		}
		query, ref := h.routes.checkQuery(r, rt)
		if ref != nil {
			h.refuse(w, r, rt, ref)
			return
		}
		if ex := exchangeFrom(r.Context()); ex != nil {
			ex.rt, ex.page, ex.omitCount, ex.self = rt, query.page, query.omitCount, absoluteURL(r)
		}
		if rt.stream {
			liftDeadlines(w)
		}
		checked := r.WithContext(r.Context())
		u := *r.URL
		u.RawQuery = query.forward
		checked.URL = &u
		if md := rt.bodyMessage(); md != nil {
			data, ref := readBody(w, r, h.maxBodyBytes)
			if ref == nil {
				ref = checkBody(data, md, rt.body)
			}
			if ref != nil {
				h.refuse(w, r, rt, ref)
				return
			}
			checked.Body = io.NopCloser(bytes.NewReader(data))
		}
		next(w, checked, pathParams)
	}
}

// recorder is the ResponseWriter the ServeMux writes to. It notes what the
// access log reports, and with pretty or envelope it holds the answer in
// buf for flush to rewrite; otherwise it writes straight through.
type recorder struct {
	http.ResponseWriter
	buf       *bytes.Buffer // nil: write through
	status    int
	bytes     int
	refused   bool      // the gateway refused the request itself
	errorCode string    // the errorCode answered, if any
	ex        *exchange // what the answer needs to know of the request
}

func (rec *recorder) WriteHeader(code int) {
	if rec.status != 0 {
		return
	}
	rec.status = code
	if rec.buf == nil {
		rec.ResponseWriter.WriteHeader(code)
	}
}

func (rec *recorder) Write(p []byte) (int, error) {
	if rec.status == 0 {
		rec.WriteHeader(http.StatusOK)
	}
	if s := rec.status; s == http.StatusNoContent || s == http.StatusNotModified {
		return 0, http.ErrBodyNotAllowed // as net/http, also while holding the answer
	}
	if rec.buf != nil {
		return rec.buf.Write(p)
	}
	n, err := rec.ResponseWriter.Write(p)
	rec.bytes += n
	return n, err
}

// FlushError sends what was written so far to the client, as a stream's
// every message needs; an answer held for pretty or envelope is sent when
// whole, by flush.
func (rec *recorder) FlushError() error {
	if rec.buf != nil {
		return nil
	}
	if rec.status == 0 {
		rec.WriteHeader(http.StatusOK)
	}
	return http.NewResponseController(rec.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach the connection's writer, for
// what the recorder does not do itself (deadlines).
func (rec *recorder) Unwrap() http.ResponseWriter { return rec.ResponseWriter }

// statusCode is the answer's own status (not 200 of an envelope).
func (rec *recorder) statusCode() int {
	if rec.status == 0 {
		return http.StatusOK
	}
	return rec.status
}

// flush writes the buffered answer: in an envelope if asked, indented if
// asked.
func (rec *recorder) flush(f format) {
	code := rec.statusCode()
	wire, body := code, rec.buf.Bytes()
	if f.envelope && (rec.ex == nil || !rec.ex.selfEnveloped) {
		content := json.RawMessage(body)
		if !json.Valid(body) {
			content = json.RawMessage("null")
		}
		var env bytes.Buffer
		enc := json.NewEncoder(&env)
		enc.SetEscapeHTML(false) // "<vault>", as without the envelope
		if enc.Encode(struct {
			Status  int             `json:"status"`
			Content json.RawMessage `json:"content"`
		}{code, content}) == nil {
			wire, body = http.StatusOK, bytes.TrimSuffix(env.Bytes(), []byte("\n"))
		}
	}
	if f.pretty {
		var out bytes.Buffer
		if json.Indent(&out, body, "", "  ") == nil {
			out.WriteByte('\n')
			body = out.Bytes()
		}
	}
	hdr := rec.ResponseWriter.Header()
	hdr.Del("Transfer-Encoding")
	hdr.Del("Trailer")
	if len(body) > 0 && hdr.Get("Content-Type") == "" {
		hdr.Set("Content-Type", "application/json")
	}
	hdr.Set("Content-Length", strconv.Itoa(len(body)))
	rec.ResponseWriter.WriteHeader(wire)
	n, _ := rec.ResponseWriter.Write(body)
	rec.bytes = n
}
