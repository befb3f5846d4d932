package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/encryptiond/encryptiond/atlas"
)

// Every error the service returns is a status built in this file. Each
// carries a google.rpc.ErrorInfo whose reason is an Atlas-style error code
// (Atlas's own errorCode when Atlas caused it) and whose metadata holds the
// group, the provider and the HTTP status Atlas used or would have used, so
// that the REST layer can answer in Atlas's own error shape.

const (
	// DomainAtlas marks errors that Atlas reported.
	DomainAtlas = "cloud.mongodb.com"
	// DomainService marks errors found by this service's own checks.
	DomainService = "encryptiond"

	// ReasonOutcomeUnknown is the ErrorInfo reason of a change that was sent
	// to Atlas without an answer: it may or may not have been applied.
	ReasonOutcomeUnknown = "OUTCOME_UNKNOWN"

	// MetadataOutcome is the ErrorInfo metadata key that says a change
	// Atlas answered with an error may or may not have been applied; its
	// value is then OutcomeUnknown. (A 5xx answer to a PATCH keeps Atlas's
	// errorCode as the reason and carries this key.)
	MetadataOutcome = "outcome"
	// OutcomeUnknown is MetadataOutcome's value for an unknown outcome.
	OutcomeUnknown = "unknown"

	// ReasonAppliedUnreadable is the ErrorInfo reason of a change that Atlas
	// applied (it answered 2xx) whose answer, and the state read after it,
	// could not be read.
	ReasonAppliedUnreadable = "APPLIED_ANSWER_UNREADABLE"
)

// atlasCodes maps the HTTP status of an Atlas error to a gRPC code. Read it
// top to bottom; atlasError handles what it does not list.
//
//	400  INVALID_ARGUMENT     validation, or the KMS provider refused the key or its credentials
//	401  INTERNAL             Atlas rejected this service's own credentials
//	403  PERMISSION_DENIED    this service's Atlas key has no access to the project
//	404  NOT_FOUND            no such project
//	406  INTERNAL             Atlas refused the API version this service speaks
//	409  FAILED_PRECONDITION  e.g. CANNOT_DISABLE_ENCRYPTION_AT_REST: clusters still use the key
//	410  INTERNAL             the API version this service speaks is sunset
//	429  RESOURCE_EXHAUSTED   Atlas's rate limit, after the client's retries, with RetryInfo
//	5xx  UNAVAILABLE          Atlas failed, after the client's retries for reads
var atlasCodes = map[int]codes.Code{
	http.StatusBadRequest:      codes.InvalidArgument,
	http.StatusUnauthorized:    codes.Internal,
	http.StatusForbidden:       codes.PermissionDenied,
	http.StatusNotFound:        codes.NotFound,
	http.StatusNotAcceptable:   codes.Internal,
	http.StatusConflict:        codes.FailedPrecondition,
	http.StatusGone:            codes.Internal,
	http.StatusTooManyRequests: codes.ResourceExhausted,
}

// atlasError turns the failure of an Atlas call made for ctx into a status.
// Secrets of the request are redacted from anything Atlas said.
func atlasError(ctx context.Context, err error, groupID, provider string, secrets []string) error {
	info := func(reason string, httpStatus int) *errdetails.ErrorInfo {
		md := map[string]string{"groupId": groupID}
		if provider != "" {
			md["provider"] = provider
		}
		if httpStatus != 0 {
			md["httpStatus"] = strconv.Itoa(httpStatus)
		}
		return &errdetails.ErrorInfo{Reason: reason, Domain: DomainAtlas, Metadata: md}
	}
	// The caller's own deadline or cancellation comes first: whatever the
	// Atlas call then returned is a consequence of it.
	switch ctxErr := ctx.Err(); {
	case errors.Is(ctxErr, context.DeadlineExceeded):
		if errors.Is(err, atlas.ErrOutcomeUnknown) {
			return withDetails(codes.DeadlineExceeded, "the deadline passed after the change was sent to Atlas: it may or may not have been applied; read the configuration before trying again", info(ReasonOutcomeUnknown, 0))
		}
		return withDetails(codes.DeadlineExceeded, "Atlas did not answer before the caller's deadline", info("DEADLINE_EXCEEDED", http.StatusGatewayTimeout))
	case ctxErr != nil:
		// A gRPC client whose deadline fires first cancels the call, so a
		// change cut off that way must still say that it may have landed.
		if errors.Is(err, atlas.ErrOutcomeUnknown) {
			return withDetails(codes.Canceled, "the caller cancelled the request after the change was sent to Atlas: it may or may not have been applied; read the configuration before trying again", info(ReasonOutcomeUnknown, 0))
		}
		return withDetails(codes.Canceled, "the caller cancelled the request", info("CANCELED", 499))
	}

	if errors.Is(err, atlas.ErrOutcomeUnknown) {
		return withDetails(codes.Unavailable, "the connection to Atlas was lost after the change was sent: it may or may not have been applied; read the configuration before trying again", info(ReasonOutcomeUnknown, http.StatusBadGateway))
	}
	if errors.Is(err, atlas.ErrUpdateAppliedUnreadable) {
		return withDetails(codes.Unavailable, "Atlas applied the change, but neither its answer nor the state read after it could be read; read the configuration again", info(ReasonAppliedUnreadable, http.StatusBadGateway))
	}
	if errors.Is(err, atlas.ErrMalformedResponse) {
		return withDetails(codes.Unavailable, "Atlas answered with a body this service cannot read: "+atlas.Redact(err.Error(), secrets), info("ATLAS_MALFORMED_RESPONSE", http.StatusBadGateway))
	}
	var ae *atlas.Error
	if !errors.As(err, &ae) {
		return withDetails(codes.Unavailable, "cannot reach Atlas: "+atlas.Redact(err.Error(), secrets), info("ATLAS_UNREACHABLE", http.StatusBadGateway))
	}

	code, ok := atlasCodes[ae.HTTPStatus]
	switch {
	case ok:
	case ae.HTTPStatus >= 500:
		code = codes.Unavailable
	default:
		code = codes.Unknown
	}
	errorCode := ae.ErrorCode
	if errorCode == "" {
		errorCode = "HTTP_" + strconv.Itoa(ae.HTTPStatus)
	}
	said := errorCode
	if ae.Detail != "" {
		said += ": " + atlas.Redact(ae.Detail, secrets)
	}
	details := []protoadapt.MessageV1{info(errorCode, ae.HTTPStatus)}
	var msg string
	switch ae.HTTPStatus {
	case http.StatusUnauthorized:
		msg = "Atlas rejected this service's API credentials (" + said + "); the operator must check the MONGODB_ATLAS_* credentials of encryptiond"
	case http.StatusForbidden:
		msg = "this service's Atlas API key has no access to project " + groupID + " (" + said + ")"
	default:
		msg = fmt.Sprintf("Atlas answered %d %s", ae.HTTPStatus, said)
	}
	if ae.Method == http.MethodPatch && ae.HTTPStatus >= 500 {
		// A server error after the body was sent does not say whether the
		// change was applied (a proxy may have timed out on a change that
		// Atlas went on to apply). The client never resends it.
		msg += "; the change may or may not have been applied: read the configuration before trying again"
		details[0].(*errdetails.ErrorInfo).Metadata[MetadataOutcome] = OutcomeUnknown
	}
	if len(ae.Fields) > 0 {
		br := &errdetails.BadRequest{}
		for _, f := range ae.Fields {
			br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{
				Field:       requestPath(f.Field),
				Description: atlas.Redact(f.Description, secrets),
			})
		}
		details = append(details, br)
	}
	if ae.RetryAfter > 0 || ae.HTTPStatus == http.StatusTooManyRequests {
		delay := ae.RetryAfter
		if delay <= 0 {
			delay = time.Second
		}
		details = append(details, &errdetails.RetryInfo{RetryDelay: durationpb.New(delay)})
	}
	return withDetails(code, msg, details...)
}

// ErrorInfo reasons of requests that break the rules, as Atlas names them.
const (
	reasonInvalid = "INVALID_ATTRIBUTE" // a field's value, or the combination of fields
	reasonMissing = "MISSING_ATTRIBUTE" // fields needed to enable a provider
)

// invalidArgument is the status of a request that breaks the rules: nothing
// was sent to Atlas.
func invalidArgument(groupID, provider, reason string, vs violations) error {
	descriptions := make([]string, len(vs))
	for i, v := range vs {
		descriptions[i] = v.Field + ": " + v.Description
	}
	md := map[string]string{"httpStatus": "400"}
	if groupID != "" {
		md["groupId"] = groupID
	}
	if provider != "" {
		md["provider"] = provider
	}
	return withDetails(codes.InvalidArgument,
		reason+": "+strings.Join(descriptions, "; "),
		&errdetails.ErrorInfo{Reason: reason, Domain: DomainService, Metadata: md},
		&errdetails.BadRequest{FieldViolations: vs},
	)
}

// lockError is the status of a caller that gave up waiting for an earlier
// change of the same project to finish. Nothing was sent to Atlas.
func lockError(groupID string, err error) error {
	md := map[string]string{"groupId": groupID}
	if errors.Is(err, context.DeadlineExceeded) {
		md["httpStatus"] = "504"
		return withDetails(codes.DeadlineExceeded, "the deadline passed while an earlier change to this project was still in progress; nothing was sent to Atlas",
			&errdetails.ErrorInfo{Reason: "DEADLINE_EXCEEDED", Domain: DomainService, Metadata: md})
	}
	md["httpStatus"] = "499"
	return withDetails(codes.Canceled, "the caller cancelled the request; nothing was sent to Atlas",
		&errdetails.ErrorInfo{Reason: "CANCELED", Domain: DomainService, Metadata: md})
}

func withDetails(code codes.Code, msg string, details ...protoadapt.MessageV1) error {
	st := status.New(code, msg)
	for _, d := range details {
		if withD, err := st.WithDetails(d); err == nil {
			st = withD
		}
	}
	return st.Err()
}

// requestPath turns an Atlas body path such as "awsKms.region" into the
// request path "config.aws_kms.region". Paths it does not recognise are
// returned as Atlas wrote them.
func requestPath(atlasPath string) string {
	head, rest, _ := strings.Cut(atlasPath, ".")
	for _, p := range []*provider{awsKMS, azureKeyVault, googleCloudKMS} {
		if head != p.atlas {
			continue
		}
		if rest == "" {
			return "config." + string(p.field)
		}
		if fd := p.desc.Fields().ByJSONName(rest); fd != nil {
			return "config." + string(p.field) + "." + string(fd.Name())
		}
	}
	return atlasPath
}
