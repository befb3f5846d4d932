package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/protoadapt"

	"github.com/encryptiond/encryptiond/atlas"
	"github.com/encryptiond/encryptiond/server/failure"
)

// This file maps the failures of Atlas calls to statuses; package failure
// names the vocabulary and builds them. The rules' refusals are built in
// rules.go (violations.err).

// atlasCodes maps the HTTP status of an Atlas error to a gRPC code, for
// the errorCodes failure.AtlasCodes does not know. Read it top to bottom;
// fromAtlas handles what it does not list.
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

// fromAtlas turns the failure of an Atlas call made for ctx, about provider
// p of groupID (p may be nil), into a status. Secrets of the request are
// redacted from anything Atlas said.
func fromAtlas(ctx context.Context, err error, groupID string, p *provider, secrets []string) error {
	info := failure.Info{Domain: failure.DomainAtlas, GroupID: groupID}
	if p != nil {
		info.Provider = p.atlas
	}
	with := func(reason string, httpStatus int) failure.Info {
		i := info
		i.Reason, i.HTTPStatus = reason, httpStatus
		return i
	}
	// The caller's own deadline or cancellation, or the daemon's shutdown,
	// comes first: whatever the Atlas call then returned is a consequence
	// of it.
	switch ctxErr := ctx.Err(); {
	case errors.Is(context.Cause(ctx), ErrStopping):
		return stoppingError(err, info)
	case errors.Is(ctxErr, context.DeadlineExceeded):
		if errors.Is(err, atlas.ErrOutcomeUnknown) {
			return failure.New(codes.DeadlineExceeded, "the deadline passed after the change was sent to Atlas: it may or may not have been applied; read the configuration before trying again", with(failure.ReasonOutcomeUnknown, 0))
		}
		return failure.New(codes.DeadlineExceeded, "Atlas did not answer before the caller's deadline", with(failure.ReasonDeadlineExceeded, http.StatusGatewayTimeout))
	case ctxErr != nil:
		// A gRPC client whose deadline fires first cancels the call, so a
		// change cut off that way must still say that it may have landed.
		if errors.Is(err, atlas.ErrOutcomeUnknown) {
			return failure.New(codes.Canceled, "the caller cancelled the request after the change was sent to Atlas: it may or may not have been applied; read the configuration before trying again", with(failure.ReasonOutcomeUnknown, 0))
		}
		return failure.New(codes.Canceled, "the caller cancelled the request", with(failure.ReasonCanceled, 499))
	}

	if errors.Is(err, atlas.ErrOutcomeUnknown) {
		return failure.New(codes.Unavailable, "the connection to Atlas was lost after the change was sent: it may or may not have been applied; read the configuration before trying again", with(failure.ReasonOutcomeUnknown, http.StatusBadGateway))
	}
	if errors.Is(err, atlas.ErrUpdateAppliedUnreadable) {
		return failure.New(codes.Unavailable, "Atlas applied the change, but neither its answer nor the state read after it could be read; read the configuration again", with(failure.ReasonAppliedUnreadable, http.StatusBadGateway))
	}
	if errors.Is(err, atlas.ErrMalformedResponse) {
		return failure.New(codes.Unavailable, "Atlas answered with a body this service cannot read: "+atlas.Redact(err.Error(), secrets), with(failure.ReasonMalformedResponse, http.StatusBadGateway))
	}
	var ae *atlas.Error
	if !errors.As(err, &ae) {
		return failure.New(codes.Unavailable, "cannot reach Atlas: "+atlas.Redact(err.Error(), secrets), with(failure.ReasonUnreachable, http.StatusBadGateway))
	}

	// Atlas's errorCode decides, when failure.AtlasCodes knows it; its
	// HTTP status otherwise.
	known, byCode := failure.AtlasCodes[ae.ErrorCode]
	code, ok := atlasCodes[ae.HTTPStatus]
	switch {
	case byCode:
		code = known.Code
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
	said := atlasSaid(errorCode, ae.Detail, secrets)
	info = with(errorCode, ae.HTTPStatus)
	var msg string
	switch ae.HTTPStatus {
	case http.StatusUnauthorized:
		msg = "Atlas rejected this service's API credentials (" + said + "); the operator must check the MONGODB_ATLAS_* credentials of encryptiond"
	case http.StatusForbidden:
		msg = "this service's Atlas API key has no access to project " + groupID + " (" + said + ")"
	default:
		msg = fmt.Sprintf("Atlas answered %d %s", ae.HTTPStatus, said)
	}
	if ae.Method != http.MethodGet && ae.HTTPStatus >= 500 {
		// A server error after the body was sent does not say whether the
		// change was applied (a proxy may have timed out on a change that
		// Atlas went on to apply). The client never resends it.
		msg += "; the change may or may not have been applied: read the configuration before trying again"
		info.Outcome = failure.OutcomeUnknown
	}
	if byCode {
		msg += ". To fix: " + known.Remedy
		info.Remedy = known.Remedy
	}
	var details []protoadapt.MessageV1
	if len(ae.Fields) > 0 {
		vs := make([]*failure.Violation, len(ae.Fields))
		for i, f := range ae.Fields {
			vs[i] = &failure.Violation{Field: requestPath(f.Field), Description: atlas.Redact(f.Description, secrets)}
		}
		details = append(details, failure.BadRequest(vs))
	}
	if ae.RetryAfter > 0 || ae.HTTPStatus == http.StatusTooManyRequests {
		delay := ae.RetryAfter
		if delay <= 0 {
			delay = time.Second
		}
		details = append(details, failure.RetryInfo(delay))
	}
	return failure.New(code, msg, info, details...)
}

// atlasSaid is what Atlas said, for a message: its errorCode and its
// detail, the secrets of the request redacted from the detail.
func atlasSaid(errorCode, detail string, secrets []string) string {
	if detail == "" {
		return errorCode
	}
	return errorCode + ": " + atlas.Redact(detail, secrets)
}

// ErrStopping is the cause with which the daemon ends the contexts of the
// calls still in flight when its shutdown timeout passes. The service then
// answers them UNAVAILABLE, saying what is known of a change.
var ErrStopping = errors.New("encryptiond is shutting down")

// stoppingError is the status of a call cut by the daemon's shutdown, after
// the Atlas call failed with err.
func stoppingError(err error, info failure.Info) error {
	info.HTTPStatus = http.StatusServiceUnavailable
	if errors.Is(err, atlas.ErrOutcomeUnknown) {
		info.Domain, info.Reason = failure.DomainService, failure.ReasonOutcomeUnknown
		return failure.New(codes.Unavailable, "encryptiond shut down while the change was in flight to Atlas: it may or may not have been applied; read the configuration before trying again", info)
	}
	info.Domain, info.Reason = failure.DomainService, failure.ReasonShuttingDown
	return failure.New(codes.Unavailable, "encryptiond shut down before Atlas answered; nothing was changed: try again", info)
}

// lockError is the status of a call that stopped waiting for an earlier
// change of the same project to finish. Nothing was sent to Atlas.
func lockError(ctx context.Context, groupID string) error {
	code, reason, httpStatus := ended(ctx)
	info := failure.Info{Domain: failure.DomainService, GroupID: groupID, Reason: reason, HTTPStatus: httpStatus}
	msg := map[codes.Code]string{
		codes.Unavailable:      "encryptiond shut down before Atlas answered; nothing was changed: try again",
		codes.DeadlineExceeded: "the deadline passed while an earlier change to this project was still in progress; nothing was sent to Atlas",
		codes.Canceled:         "the caller cancelled the request; nothing was sent to Atlas",
	}[code]
	return failure.New(code, msg, info)
}

// ended says how ctx ended: the daemon's shutdown (UNAVAILABLE), the
// caller's deadline (DEADLINE_EXCEEDED) or its cancel (CANCELED), with the
// reason and HTTP status that go with each.
func ended(ctx context.Context) (code codes.Code, reason string, httpStatus int) {
	switch {
	case errors.Is(context.Cause(ctx), ErrStopping):
		return codes.Unavailable, failure.ReasonShuttingDown, http.StatusServiceUnavailable
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return codes.DeadlineExceeded, failure.ReasonDeadlineExceeded, http.StatusGatewayTimeout
	}
	return codes.Canceled, failure.ReasonCanceled, 499
}

// requestPath turns an Atlas body path such as "awsKms.region" into the
// request path "config.aws_kms.region". Paths it does not recognise are
// returned as Atlas wrote them.
func requestPath(atlasPath string) string {
	head, rest, _ := strings.Cut(atlasPath, ".")
	p := providerByAtlasName(head)
	switch {
	case p == nil:
		return atlasPath
	case rest == "":
		return "config." + string(p.field)
	}
	if fd := p.request.Fields().ByJSONName(rest); fd != nil {
		return "config." + string(p.field) + "." + string(fd.Name())
	}
	return atlasPath
}
