package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/protoadapt"

	"github.com/encryptiond/encryptiond/atlas"
	"github.com/encryptiond/encryptiond/server/failure"
)

// atlasPrefix starts every path of the Atlas-compatible alias, whose errors
// take Atlas's ApiError shape.
const atlasPrefix = "/api/atlas/"

// refusal is a request the gateway refuses itself: nothing reaches gRPC.
// Its message is written here and never quotes a value from the request.
type refusal struct {
	httpStatus int
	reason     string
	message    string
	parameters []string    // Atlas's parameters: names of fields or query parameters
	violations []violation // field paths in proto form, as the service writes them
}

// violation is one google.rpc.BadRequest field violation.
type violation struct {
	field       string
	description string
}

// status is the refusal as the service would have written it: ErrorInfo
// with the HTTP status in its metadata, and BadRequest when fields are named.
func (r *refusal) status() *status.Status {
	c := codes.InvalidArgument
	switch r.httpStatus {
	case http.StatusNotFound:
		c = codes.NotFound
	case http.StatusMethodNotAllowed:
		c = codes.Unimplemented
	case http.StatusNotAcceptable:
		c = codes.FailedPrecondition
	}
	var details []protoadapt.MessageV1
	if len(r.violations) > 0 {
		vs := make([]*failure.Violation, len(r.violations))
		for i, v := range r.violations {
			vs[i] = &failure.Violation{Field: v.field, Description: v.description}
		}
		details = append(details, failure.BadRequest(vs))
	}
	return failure.Status(c, r.message, failure.Info{Domain: failure.DomainService, Reason: r.reason, HTTPStatus: r.httpStatus}, details...)
}

// errorAnswer is an error ready to be written in either shape.
type errorAnswer struct {
	st          *status.Status
	httpStatus  int    // on /v1: from the gRPC code, or the refusal's
	atlasStatus int    // on the Atlas path: ErrorInfo's httpStatus, or httpStatus
	reason      string // ErrorInfo.reason, or the gRPC code's name
	parameters  []string
	violations  []violation
	retryAfter  time.Duration
}

// fromStatus reads the service's contract off a status (failure.Parse).
func fromStatus(st *status.Status) errorAnswer {
	p := failure.Parse(st)
	e := errorAnswer{st: st, httpStatus: runtime.HTTPStatusFromCode(st.Code()), reason: p.Info.Reason, retryAfter: p.RetryAfter}
	if e.reason == "" {
		e.reason = codeName(st.Code())
	}
	e.atlasStatus = e.httpStatus
	if p.Info.HTTPStatus != 0 {
		e.atlasStatus = p.Info.HTTPStatus
	}
	for _, v := range p.Violations {
		e.violations = append(e.violations, violation{field: v.GetField(), description: v.GetDescription()})
	}
	return e
}

func fromRefusal(r *refusal) errorAnswer {
	e := fromStatus(r.status())
	e.httpStatus, e.atlasStatus = r.httpStatus, r.httpStatus
	e.parameters = r.parameters
	return e
}

// codeName spells a gRPC code as google.rpc.Code does: INVALID_ARGUMENT.
func codeName(c codes.Code) string { return code.Code(c).String() }

// handleError is the ServeMux's error handler: the status the gRPC call
// returned, or a path grpc-gateway could not parse.
func (h *handler) handleError(ctx context.Context, _ *runtime.ServeMux, _ runtime.Marshaler, w http.ResponseWriter, r *http.Request, err error) {
	if md, ok := runtime.ServerMetadataFromContext(ctx); ok {
		if ids := md.HeaderMD.Get("x-request-id"); len(ids) > 0 {
			w.Header().Set("X-Request-Id", ids[0])
		}
	}
	method, _ := runtime.RPCMethod(ctx)
	rt := h.routes.byRPC(method)
	if _, ok := errors.AsType[*runtime.HTTPStatusError](err); ok {
		h.refuse(w, r, rt, &refusal{httpStatus: http.StatusBadRequest, reason: failure.ReasonInvalidPath, message: "The request path is malformed."})
		return
	}
	h.writeError(w, r, rt, fromStatus(status.Convert(err)))
}

// handleRoutingError is the ServeMux's routing error handler: no route
// matched, which the gateway answers itself.
func (h *handler) handleRoutingError(_ context.Context, _ *runtime.ServeMux, _ runtime.Marshaler, w http.ResponseWriter, r *http.Request, httpStatus int) {
	ref := &refusal{httpStatus: httpStatus}
	switch httpStatus {
	case http.StatusNotFound:
		ref.reason, ref.message = failure.ReasonResourceNotFound, "No resource of this API has this path; see /openapi.json."
	case http.StatusMethodNotAllowed:
		ref.reason, ref.message = failure.ReasonMethodNotAllowed, fmt.Sprintf("This path does not accept the %s method; see /openapi.json.", r.Method)
	default:
		ref.httpStatus, ref.reason, ref.message = http.StatusBadRequest, failure.ReasonInvalidPath, "The request path is malformed."
	}
	h.refuse(w, r, nil, ref)
}

// refuse writes the gateway's own refusal and marks the request as
// refused for the access log.
func (h *handler) refuse(w http.ResponseWriter, r *http.Request, rt *route, ref *refusal) {
	if rec, ok := w.(*recorder); ok {
		rec.refused = true
	}
	h.writeError(w, r, rt, fromRefusal(ref))
}

// aipError is AIP-193's HTTP error body.
type aipError struct {
	Error aipStatus `json:"error"`
}

type aipStatus struct {
	Code    int               `json:"code"`
	Status  string            `json:"status"`
	Message string            `json:"message"`
	Details []json.RawMessage `json:"details,omitempty"`
}

// writeError writes e in the shape the path asks for: Atlas's ApiError on
// Atlas's own paths, AIP-193 everywhere else. rt is the route, if known, to
// map field paths to Atlas's JSON names.
func (h *handler) writeError(w http.ResponseWriter, r *http.Request, rt *route, e errorAnswer) {
	var (
		httpStatus int
		body       any
	)
	if strings.HasPrefix(path.Clean(r.URL.Path), atlasPrefix) {
		httpStatus = e.atlasStatus
		ae := atlas.ErrorBody{
			Error:      httpStatus,
			ErrorCode:  e.reason,
			Detail:     e.st.Message(),
			Reason:     http.StatusText(httpStatus),
			Parameters: []any{},
		}
		for _, p := range e.parameters {
			ae.Parameters = append(ae.Parameters, p)
		}
		if len(e.violations) > 0 {
			if rt == nil {
				rt = h.routes.fallback()
			}
			ae.BadRequestDetail = &atlas.BadRequestDetail{}
			for _, v := range e.violations {
				ae.BadRequestDetail.Fields = append(ae.BadRequestDetail.Fields, atlas.FieldViolation{
					Field:       rt.atlasPath(v.field),
					Description: v.description,
				})
			}
		}
		body = ae
	} else {
		httpStatus = e.httpStatus
		aip := aipBody(e.st)
		aip.Error.Code = httpStatus // a refusal's own, such as 413
		body = aip
	}
	if rec, ok := w.(*recorder); ok {
		rec.errorCode = e.reason
	}
	if (httpStatus == http.StatusTooManyRequests || httpStatus == http.StatusServiceUnavailable) && e.retryAfter > 0 {
		secs := (e.retryAfter + time.Second - 1) / time.Second
		w.Header().Set("Retry-After", strconv.FormatInt(int64(secs), 10))
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(httpStatus)
	_, _ = w.Write(encodeJSON(body))
}

// aipBody is st as AIP-193's HTTP error body, with the HTTP status of its
// code.
func aipBody(st *status.Status) aipError {
	as := aipStatus{Code: runtime.HTTPStatusFromCode(st.Code()), Status: codeName(st.Code()), Message: st.Message()}
	for _, d := range st.Proto().GetDetails() {
		if b, err := protojson.Marshal(d); err == nil {
			as.Details = append(as.Details, b)
		}
	}
	return aipError{Error: as}
}

// encodeJSON writes an error body as JSON that people read: "<vault>", not
// "\u003cvault\u003e".
func encodeJSON(body any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(body); err != nil {
		// Only strings, numbers and JSON from protojson: this cannot fail.
		return []byte(`{"error":{"code":500,"status":"INTERNAL","message":"the error could not be written"}}`)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}
