package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/protoadapt"
)

// The ErrorInfo reasons (Atlas's errorCode on the Atlas path) of the
// requests the gateway refuses itself. The domain is the service's own.
const (
	domainService = "encryptiond"

	reasonInvalidJSON           = "INVALID_JSON"            // not one JSON object
	reasonInvalidAttribute      = "INVALID_ATTRIBUTE"       // unknown field, wrong type, two providers
	reasonInvalidQueryParameter = "INVALID_QUERY_PARAMETER" // not allowed, repeated, not true/false
	reasonBodyTooLarge          = "REQUEST_BODY_TOO_LARGE"  // 413
	reasonResourceNotFound      = "RESOURCE_NOT_FOUND"      // 404: no route
	reasonMethodNotAllowed      = "METHOD_NOT_ALLOWED"      // 405
	reasonInvalidPath           = "INVALID_PATH"            // a malformed escape in the path
)

// atlasPrefix starts every path of the Atlas-compatible alias, whose errors
// take Atlas's ApiError shape.
const atlasPrefix = "/api/atlas/v1.0/"

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

func (r *refusal) Error() string { return r.message }

// status is the refusal as the service would have written it: ErrorInfo
// with the HTTP status in its metadata, and BadRequest when fields are named.
func (r *refusal) status() *status.Status {
	c := codes.InvalidArgument
	switch r.httpStatus {
	case http.StatusNotFound:
		c = codes.NotFound
	case http.StatusMethodNotAllowed:
		c = codes.Unimplemented
	}
	details := []protoadapt.MessageV1{&errdetails.ErrorInfo{
		Reason:   r.reason,
		Domain:   domainService,
		Metadata: map[string]string{"httpStatus": strconv.Itoa(r.httpStatus)},
	}}
	if len(r.violations) > 0 {
		br := &errdetails.BadRequest{}
		for _, v := range r.violations {
			br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{Field: v.field, Description: v.description})
		}
		details = append(details, br)
	}
	st, err := status.New(c, r.message).WithDetails(details...)
	if err != nil {
		return status.New(c, r.message)
	}
	return st
}

// requestState is what one request's handlers tell the access log.
type requestState struct {
	refused   *refusal // the gateway refused the request itself
	errorCode string   // the errorCode answered, if any
}

func (s *requestState) refuse(r *refusal) {
	if s != nil && s.refused == nil {
		s.refused = r
	}
}

type stateKey struct{}

func stateFrom(ctx context.Context) *requestState {
	s, _ := ctx.Value(stateKey{}).(*requestState)
	return s
}

// apiError is an error ready to be written in either shape.
type apiError struct {
	st          *status.Status
	httpStatus  int    // on /v1: from the gRPC code, or the refusal's
	atlasStatus int    // on the Atlas path: ErrorInfo's httpStatus, or httpStatus
	reason      string // ErrorInfo.reason, or the gRPC code's name
	parameters  []string
	violations  []violation
	retryAfter  time.Duration
}

// fromStatus reads the service's contract off a status: ErrorInfo (reason,
// metadata.httpStatus), BadRequest and RetryInfo.
func fromStatus(st *status.Status) apiError {
	e := apiError{st: st, httpStatus: runtime.HTTPStatusFromCode(st.Code()), reason: codeName(st.Code())}
	e.atlasStatus = e.httpStatus
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *errdetails.ErrorInfo:
			if d.GetReason() != "" {
				e.reason = d.GetReason()
			}
			if n, err := strconv.Atoi(d.GetMetadata()["httpStatus"]); err == nil && n >= 400 && n <= 599 {
				e.atlasStatus = n
			}
		case *errdetails.BadRequest:
			for _, v := range d.GetFieldViolations() {
				e.violations = append(e.violations, violation{field: v.GetField(), description: v.GetDescription()})
			}
		case *errdetails.RetryInfo:
			e.retryAfter = d.GetRetryDelay().AsDuration()
		}
	}
	return e
}

func fromRefusal(r *refusal) apiError {
	e := fromStatus(r.status())
	e.httpStatus, e.atlasStatus = r.httpStatus, r.httpStatus
	e.parameters = r.parameters
	return e
}

// codeName spells a gRPC code as google.rpc.Code does: INVALID_ARGUMENT.
func codeName(c codes.Code) string { return code.Code(c).String() }

// handleError is the ServeMux's error handler: for a request the gateway
// refused (recorded by the decoder), the refusal; otherwise the status the
// gRPC call returned.
func (h *handler) handleError(ctx context.Context, _ *runtime.ServeMux, _ runtime.Marshaler, w http.ResponseWriter, r *http.Request, err error) {
	st := stateFrom(r.Context())
	if hse, ok := errors.AsType[*runtime.HTTPStatusError](err); ok {
		st.refuse(&refusal{httpStatus: hse.HTTPStatus, reason: reasonInvalidPath, message: "The request path is malformed."})
	}
	method, _ := runtime.RPCMethod(ctx)
	if md, ok := runtime.ServerMetadataFromContext(ctx); ok {
		if ids := md.HeaderMD.Get("x-request-id"); len(ids) > 0 {
			w.Header().Set("X-Request-Id", ids[0])
		}
	}
	if st != nil && st.refused != nil {
		h.writeError(w, r, method, fromRefusal(st.refused), st)
		return
	}
	h.writeError(w, r, method, fromStatus(status.Convert(err)), st)
}

// handleRoutingError is the ServeMux's routing error handler: no route
// matched, which the gateway answers itself.
func (h *handler) handleRoutingError(_ context.Context, _ *runtime.ServeMux, _ runtime.Marshaler, w http.ResponseWriter, r *http.Request, httpStatus int) {
	ref := &refusal{httpStatus: httpStatus}
	switch httpStatus {
	case http.StatusNotFound:
		ref.reason, ref.message = reasonResourceNotFound, "No resource of this API has this path; see /openapi.json."
	case http.StatusMethodNotAllowed:
		ref.reason, ref.message = reasonMethodNotAllowed, fmt.Sprintf("This path does not accept the %s method; see /openapi.json.", r.Method)
	default:
		ref.httpStatus, ref.reason, ref.message = http.StatusBadRequest, reasonInvalidPath, "The request path is malformed."
	}
	st := stateFrom(r.Context())
	st.refuse(ref)
	h.writeError(w, r, "", fromRefusal(ref), st)
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

// atlasError is Atlas's ApiError.
type atlasError struct {
	Error            int               `json:"error"`
	ErrorCode        string            `json:"errorCode"`
	Detail           string            `json:"detail"`
	Reason           string            `json:"reason"`
	Parameters       []string          `json:"parameters"`
	BadRequestDetail *badRequestDetail `json:"badRequestDetail,omitempty"`
}

type badRequestDetail struct {
	Fields []atlasField `json:"fields"`
}

type atlasField struct {
	Field       string `json:"field"`
	Description string `json:"description"`
}

// writeError writes e in the shape the path asks for: Atlas's ApiError on the
// Atlas alias, AIP-193 everywhere else. method is the RPC's full name, if
// known, to map field paths to Atlas's JSON names.
func (h *handler) writeError(w http.ResponseWriter, r *http.Request, method string, e apiError, st *requestState) {
	var (
		httpStatus int
		body       any
	)
	if isAtlasPath(r.URL.Path) {
		httpStatus = e.atlasStatus
		ae := atlasError{
			Error:      httpStatus,
			ErrorCode:  e.reason,
			Detail:     e.st.Message(),
			Reason:     http.StatusText(httpStatus),
			Parameters: append([]string{}, e.parameters...),
		}
		if len(e.violations) > 0 {
			ae.BadRequestDetail = &badRequestDetail{}
			for _, v := range e.violations {
				ae.BadRequestDetail.Fields = append(ae.BadRequestDetail.Fields, atlasField{
					Field:       h.schema.atlasPath(method, v.field),
					Description: v.description,
				})
			}
		}
		body = ae
	} else {
		httpStatus = e.httpStatus
		as := aipStatus{Code: httpStatus, Status: codeName(e.st.Code()), Message: e.st.Message()}
		for _, d := range e.st.Proto().GetDetails() {
			if b, err := protojson.Marshal(d); err == nil {
				as.Details = append(as.Details, b)
			}
		}
		body = aipError{Error: as}
	}
	if st != nil {
		st.errorCode = e.reason
	}
	if (httpStatus == http.StatusTooManyRequests || httpStatus == http.StatusServiceUnavailable) && e.retryAfter > 0 {
		secs := (e.retryAfter + time.Second - 1) / time.Second
		w.Header().Set("Retry-After", strconv.FormatInt(int64(secs), 10))
	}
	b, err := json.Marshal(body)
	if err != nil {
		// Only strings and numbers above: this cannot fail.
		b = []byte(`{"error":{"code":500,"status":"INTERNAL","message":"the error could not be written"}}`)
		httpStatus = http.StatusInternalServerError
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(httpStatus)
	_, _ = w.Write(b)
}

func isAtlasPath(path string) bool {
	return strings.HasPrefix(path, atlasPrefix)
}
