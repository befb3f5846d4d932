// Package failure is encryptiond's error vocabulary: the one place that
// names the ErrorInfo domains, reasons and metadata keys of the errors the
// service returns, builds a gRPC status from them (New), and reads them
// back (Parse).
//
// Every error encryptiond returns, over gRPC or REST, is a status with a
// google.rpc.ErrorInfo:
//
//   - domain: DomainAtlas when Atlas said it, DomainService when this
//     service's own checks did;
//   - reason: Atlas's errorCode (INVALID_ATTRIBUTE, GROUP_NOT_FOUND, …) or
//     one of the Reason constants below, so that both read alike;
//   - metadata: KeyGroupID, KeyProvider, KeyHTTPStatus (the HTTP status
//     Atlas used or would have used: the REST gateway answers with it on
//     Atlas's own paths) and, for a change whose fate is unknown,
//     KeyOutcome = OutcomeUnknown.
//
// A refused request also carries a google.rpc.BadRequest whose field paths
// are in proto form (config.aws_kms.region), and a retryable one a
// google.rpc.RetryInfo. Messages are written to be shown to callers and
// logged: they name fields, never values.
//
// Start with New and Info; the server, authz, gateway and telemetry
// packages build every status through them, and the gateway and the audit
// log read statuses back with Parse.
package failure

import (
	"strconv"
	"time"
	"unicode/utf8"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"
	"google.golang.org/protobuf/types/known/durationpb"
)

// The ErrorInfo domains.
const (
	// DomainAtlas marks errors that Atlas reported.
	DomainAtlas = "cloud.mongodb.com"
	// DomainService marks errors found by this service itself.
	DomainService = "encryptiond"
)

// The ErrorInfo metadata keys.
const (
	// KeyGroupID is the Atlas project the call was about.
	KeyGroupID = "groupId"
	// KeyProvider is Atlas's name of the key provider: "awsKms",
	// "azureKeyVault" or "googleCloudKms".
	KeyProvider = "provider"
	// KeyHTTPStatus is the HTTP status Atlas used, or would have used for
	// the same refusal, in decimal.
	KeyHTTPStatus = "httpStatus"
	// KeyOutcome says what is known of a change that failed; its only value
	// is OutcomeUnknown.
	KeyOutcome = "outcome"
	// KeyRemedy says what to do about Atlas's errorCode (AtlasCodes).
	KeyRemedy = "remedy"
	// KeyAttempts is how many times a change was sent to Atlas, when it was
	// sent more than once (IAM propagation).
	KeyAttempts = "attempts"
)

// OutcomeUnknown is KeyOutcome's value for a change that was sent to Atlas
// without a clear answer: it may or may not have been applied.
const OutcomeUnknown = "unknown"

// Reasons this service gives itself. Atlas's own errorCodes are reasons
// too, passed on as Atlas wrote them.
const (
	// ReasonInvalidAttribute: a request field's value, or a combination of
	// fields, breaks a rule (Atlas's own code for the same refusal).
	ReasonInvalidAttribute = "INVALID_ATTRIBUTE"
	// ReasonMissingAttribute: fields needed to enable a provider are
	// missing (Atlas's own code).
	ReasonMissingAttribute = "MISSING_ATTRIBUTE"
	// ReasonInvalidJSON: a REST body that is not one JSON object.
	ReasonInvalidJSON = "INVALID_JSON"
	// ReasonInvalidQueryParameter: a REST query parameter that is not
	// allowed, given twice, or not true/false.
	ReasonInvalidQueryParameter = "INVALID_QUERY_PARAMETER"
	// ReasonBodyTooLarge: a REST body over the limit (413).
	ReasonBodyTooLarge = "REQUEST_BODY_TOO_LARGE"
	// ReasonResourceNotFound: no REST route has the path (404).
	ReasonResourceNotFound = "RESOURCE_NOT_FOUND"
	// ReasonMethodNotAllowed: the path does not take the method (405).
	ReasonMethodNotAllowed = "METHOD_NOT_ALLOWED"
	// ReasonInvalidPath: a REST path that cannot be parsed.
	ReasonInvalidPath = "INVALID_PATH"
	// ReasonInvalidHeader: a REST header with a malformed value.
	ReasonInvalidHeader = "INVALID_HEADER"
	// ReasonInvalidVersionDate: a request on Atlas's v2 paths whose Accept
	// or Content-Type names only Atlas API versions this service does not
	// speak (406; Atlas's own code).
	ReasonInvalidVersionDate = "INVALID_VERSION_DATE"
	// ReasonMalformedRequest: a gRPC request message that is not valid
	// protobuf.
	ReasonMalformedRequest = "MALFORMED_REQUEST"
	// ReasonUnknownMethod: a gRPC method that no service of the server has.
	ReasonUnknownMethod = "UNKNOWN_METHOD"

	// ReasonUnauthenticated: no valid client certificate under mutual TLS.
	ReasonUnauthenticated = "UNAUTHENTICATED"
	// ReasonPermissionDenied: the authorization policy refuses the call.
	ReasonPermissionDenied = "PERMISSION_DENIED"
	// ReasonRateLimited: the caller's rate limit.
	ReasonRateLimited = "RATE_LIMITED"

	// ReasonDeadlineExceeded: the caller's deadline passed.
	ReasonDeadlineExceeded = "DEADLINE_EXCEEDED"
	// ReasonCanceled: the caller cancelled the call.
	ReasonCanceled = "CANCELED"
	// ReasonOutcomeUnknown: a change was sent to Atlas without an answer; it
	// may or may not have been applied.
	ReasonOutcomeUnknown = "OUTCOME_UNKNOWN"
	// ReasonAppliedUnreadable: Atlas applied a change (it answered 2xx), but
	// neither its answer nor the state read after it could be read.
	ReasonAppliedUnreadable = "APPLIED_ANSWER_UNREADABLE"
	// ReasonMalformedResponse: Atlas answered with a body that cannot be
	// read.
	ReasonMalformedResponse = "ATLAS_MALFORMED_RESPONSE"
	// ReasonUnreachable: Atlas could not be reached.
	ReasonUnreachable = "ATLAS_UNREACHABLE"
	// ReasonShuttingDown: the service stopped before the call could finish;
	// nothing was changed. (A change that was already sent is
	// ReasonOutcomeUnknown instead.)
	ReasonShuttingDown = "SHUTTING_DOWN"
	// ReasonInternal: a fault of this service (a panic), never detailed.
	ReasonInternal = "INTERNAL"
)

// Info is the google.rpc.ErrorInfo of an error, field by field.
type Info struct {
	// Domain is DomainAtlas or DomainService.
	Domain string
	// Reason is Atlas's errorCode or one of the Reason constants.
	Reason string
	// HTTPStatus is the HTTP status Atlas used or would have used; 0 for
	// none.
	HTTPStatus int
	// GroupID is the project the call was about, if known.
	GroupID string
	// Provider is Atlas's name of the key provider, if one is concerned.
	Provider string
	// Outcome is OutcomeUnknown for a change that may or may not have been
	// applied; "" otherwise.
	Outcome string
	// Remedy says what to do (AtlasCodes); "" for none.
	Remedy string
	// Attempts is how many times the change was sent to Atlas; 0 when not
	// told.
	Attempts int
}

// maxMetadataValue bounds a caller-supplied metadata value (a malformed
// group id can be of any length).
const maxMetadataValue = 128

// errorInfo returns info as a google.rpc.ErrorInfo.
func (info Info) errorInfo() *errdetails.ErrorInfo {
	md := make(map[string]string, 6)
	if info.GroupID != "" {
		md[KeyGroupID] = Truncate(info.GroupID, maxMetadataValue)
	}
	if info.Provider != "" {
		md[KeyProvider] = info.Provider
	}
	if info.HTTPStatus != 0 {
		md[KeyHTTPStatus] = strconv.Itoa(info.HTTPStatus)
	}
	if info.Outcome != "" {
		md[KeyOutcome] = info.Outcome
	}
	if info.Remedy != "" {
		md[KeyRemedy] = info.Remedy
	}
	if info.Attempts > 0 {
		md[KeyAttempts] = strconv.Itoa(info.Attempts)
	}
	return &errdetails.ErrorInfo{Reason: info.Reason, Domain: info.Domain, Metadata: md}
}

// New returns a status error with code and msg, info as its ErrorInfo, and
// further details (BadRequest, RetryInfo, …) after it.
func New(code codes.Code, msg string, info Info, details ...protoadapt.MessageV1) error {
	return Status(code, msg, info, details...).Err()
}

// Status is New's status, for callers that need the *status.Status.
func Status(code codes.Code, msg string, info Info, details ...protoadapt.MessageV1) *status.Status {
	st := status.New(code, msg)
	all := make([]protoadapt.MessageV1, 0, 1+len(details))
	all = append(all, info.errorInfo())
	all = append(all, details...)
	// WithDetails fails only on a detail that cannot be marshalled, which
	// none of the google.rpc detail messages are.
	if withDetails, err := st.WithDetails(all...); err == nil {
		return withDetails
	}
	return st
}

// Violation is one google.rpc.BadRequest field violation.
type Violation = errdetails.BadRequest_FieldViolation

// BadRequest returns a google.rpc.BadRequest with the violations.
func BadRequest(vs []*Violation) *errdetails.BadRequest {
	return &errdetails.BadRequest{FieldViolations: vs}
}

// RetryInfo returns a google.rpc.RetryInfo asking to wait d.
func RetryInfo(d time.Duration) *errdetails.RetryInfo {
	return &errdetails.RetryInfo{RetryDelay: durationpb.New(d)}
}

// Parsed is what Parse reads off a status.
type Parsed struct {
	// Info is the status's ErrorInfo. HTTPStatus is 0 when the metadata
	// has no valid 4xx or 5xx status; Reason is "" without an ErrorInfo.
	Info Info
	// Violations are the BadRequest's field violations, if any.
	Violations []*Violation
	// RetryAfter is the RetryInfo's delay, 0 without one.
	RetryAfter time.Duration
	// Preconditions are the PreconditionFailure's violations, if any.
	Preconditions []*PreconditionViolation
}

// Parse reads the vocabulary off st: its ErrorInfo, BadRequest and
// RetryInfo.
func Parse(st *status.Status) Parsed {
	var p Parsed
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *errdetails.ErrorInfo:
			md := d.GetMetadata()
			p.Info = Info{
				Domain:   d.GetDomain(),
				Reason:   d.GetReason(),
				GroupID:  md[KeyGroupID],
				Provider: md[KeyProvider],
				Outcome:  md[KeyOutcome],
				Remedy:   md[KeyRemedy],
			}
			p.Info.Attempts, _ = strconv.Atoi(md[KeyAttempts])
			if n, err := strconv.Atoi(md[KeyHTTPStatus]); err == nil && n >= 400 && n <= 599 {
				p.Info.HTTPStatus = n
			}
		case *errdetails.BadRequest:
			p.Violations = append(p.Violations, d.GetFieldViolations()...)
		case *errdetails.RetryInfo:
			p.RetryAfter = d.GetRetryDelay().AsDuration()
		case *errdetails.PreconditionFailure:
			p.Preconditions = append(p.Preconditions, d.GetViolations()...)
		}
	}
	return p
}

// Truncate cuts s to at most n bytes without splitting a character, then
// adds "…": for a caller-supplied string repeated in a status detail or a
// log record, which must stay short and valid UTF-8.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// ViolationProviderInUse is the PreconditionFailure violation type of a
// cluster that uses the key provider a disable would remove.
const ViolationProviderInUse = "ENCRYPTION_AT_REST_PROVIDER_IN_USE"

// PreconditionViolation is one google.rpc.PreconditionFailure violation.
type PreconditionViolation = errdetails.PreconditionFailure_Violation

// PreconditionFailure returns a google.rpc.PreconditionFailure with the
// violations.
func PreconditionFailure(vs []*PreconditionViolation) *errdetails.PreconditionFailure {
	return &errdetails.PreconditionFailure{Violations: vs}
}

// WithNote returns err, a status error, with note appended to its message
// and its details kept.
func WithNote(err error, note string) error {
	p := status.Convert(err).Proto()
	p.Message += note
	return status.FromProto(p).Err()
}
