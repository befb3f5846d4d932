package atlas

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// maxErrorBody bounds how much of an error response is read. Atlas's error
// documents are a few hundred bytes; anything bigger is not worth holding.
const maxErrorBody = 1 << 20

// maxSnippet bounds how much of a non-JSON error body is quoted in Detail.
const maxSnippet = 128

// maxErrorCode bounds Atlas's errorCode, which ends up in gRPC ErrorInfo
// reasons, messages, logs and metric labels. Atlas's codes are under 64
// bytes.
const maxErrorCode = 128

// Bounds on Atlas's lists in an error. Atlas names a handful of fields and
// parameters; a body that lists thousands (it may be up to maxErrorBody)
// would otherwise be carried whole into gRPC trailers, where proxies with
// small header limits drop the answer, and into messages and logs.
const (
	maxFields           = 32  // entries of Fields kept, in Atlas's order
	maxFieldName        = 256 // bytes of a FieldViolation.Field
	maxFieldDescription = 512 // bytes of a FieldViolation.Description
	maxParameters       = 16  // entries of Parameters kept
	// maxErrorFields is the length of Error's text past which it names no
	// more fields, only how many there are: the text stays under 4 KiB.
	maxErrorFields = 2048
)

// ErrOutcomeUnknown is wrapped by the error of a call that changes something
// (UpdateEncryptionAtRest, CreatePrivateEndpoint, DeletePrivateEndpoint)
// whose request may have reached Atlas without an answer coming back: the
// connection dropped after the request was written, the deadline expired
// while waiting, or the response was cut off before its status line. The
// change may or may not have been applied; read the resource back before
// deciding what to do. Such calls are never retried.
var ErrOutcomeUnknown = errors.New("atlas: outcome unknown: the update may or may not have been applied")

// ErrMalformedResponse is wrapped when Atlas answered 2xx with a body that
// could not be read or decoded (invalid JSON, cut off, or larger than 1 MiB).
var ErrMalformedResponse = errors.New("atlas: malformed response body")

// ErrUpdateAppliedUnreadable is wrapped, together with ErrMalformedResponse,
// when Atlas answered a call that changes something with 2xx but its body
// could not be read. A 2xx status means Atlas applied the change; only the
// resulting state is unknown, so read it back rather than sending the
// change again.
var ErrUpdateAppliedUnreadable = errors.New("atlas: update applied but its response was unreadable")

// Error is an error answer from Atlas: any non-2xx HTTP status. Atlas's
// ApiError document fills the fields; a body that is not an ApiError still
// yields an Error with HTTPStatus set. Use errors.As to get at it:
//
//	var aerr *atlas.Error
//	if errors.As(err, &aerr) && aerr.ErrorCode == "GROUP_NOT_FOUND" { … }
//
// Its Error method never prints request bodies, headers or credentials.
type Error struct {
	// HTTPStatus is the response's status code.
	HTTPStatus int
	// ErrorCode is Atlas's errorCode, e.g. "MISSING_ATTRIBUTE"; empty when
	// the body was not an ApiError. It is sanitized like Detail: control
	// characters removed, cut at 128 bytes.
	ErrorCode string
	// Detail is Atlas's human-readable detail, with the request's secrets
	// redacted (see Secrets), control characters and runs of spaces
	// made single spaces, and cut at 1024 bytes. For a body that is not an
	// ApiError it is a short snippet of that body, treated the same way.
	Detail string
	// Reason is Atlas's reason phrase, e.g. "Bad Request".
	Reason string
	// Parameters are Atlas's error parameters, decoded as JSON values: the
	// first 16, with the request's secrets redacted from their strings.
	Parameters []any
	// Fields lists the request fields Atlas rejected (badRequestDetail.fields):
	// the first 32, each redacted and sanitized like Detail (field names cut
	// at 256 bytes, descriptions at 512).
	Fields []FieldViolation
	// RetryAfter is the Retry-After header of a 429 or 503 answer; 0 if absent.
	RetryAfter time.Duration
	// Method is the HTTP method of the failed call: "GET", "PATCH", "POST"
	// or "DELETE".
	Method string
	// Resource names what the call was about: "encryptionAtRest",
	// "clusters", …
	Resource string
}

// FieldViolation is one rejected request field from Atlas's
// badRequestDetail.fields.
type FieldViolation struct {
	Field       string `json:"field"`
	Description string `json:"description"`
}

// Error formats the error as
// "atlas: PATCH encryptionAtRest: 409 CANNOT_DISABLE_ENCRYPTION_AT_REST: detail",
// followed by the rejected fields in parentheses, as many as fit in about
// 2 KiB, then how many more there are.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("atlas: ")
	if e.Method != "" {
		b.WriteString(e.Method)
		b.WriteString(" ")
	}
	if e.Resource != "" {
		b.WriteString(e.Resource)
		b.WriteString(": ")
	}
	b.WriteString(strconv.Itoa(e.HTTPStatus))
	if e.ErrorCode != "" {
		b.WriteString(" ")
		b.WriteString(e.ErrorCode)
	} else if t := http.StatusText(e.HTTPStatus); t != "" {
		b.WriteString(" ")
		b.WriteString(t)
	}
	if e.Detail != "" {
		b.WriteString(": ")
		b.WriteString(e.Detail)
	}
	for i, f := range e.Fields {
		if i == 0 {
			b.WriteString(" (")
		} else {
			b.WriteString("; ")
		}
		if b.Len() > maxErrorFields {
			fmt.Fprintf(&b, "%d more fields", len(e.Fields)-i)
			b.WriteString(")")
			break
		}
		b.WriteString(f.Field)
		if f.Description != "" {
			b.WriteString(": ")
			b.WriteString(f.Description)
		}
		if i == len(e.Fields)-1 {
			b.WriteString(")")
		}
	}
	return b.String()
}

// Is reports whether target is an *Error whose non-zero HTTPStatus and
// ErrorCode equal e's, so that
// errors.Is(err, &atlas.Error{ErrorCode: "GROUP_NOT_FOUND"}) works.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	if !ok || t == nil {
		return false
	}
	if t.HTTPStatus == 0 && t.ErrorCode == "" {
		return false
	}
	return (t.HTTPStatus == 0 || t.HTTPStatus == e.HTTPStatus) &&
		(t.ErrorCode == "" || t.ErrorCode == e.ErrorCode)
}

// ErrorBody is Atlas's ApiError document, the JSON body of every error
// answer from Atlas. The client decodes it into an *Error; the emulator
// (package atlastest) and the REST gateway's answers on Atlas's own paths
// write it, so all three speak the same shape.
type ErrorBody struct {
	// Error is the HTTP status.
	Error int `json:"error"`
	// ErrorCode is Atlas's machine-readable code, e.g. "MISSING_ATTRIBUTE".
	ErrorCode string `json:"errorCode"`
	// Detail says what went wrong, for people.
	Detail string `json:"detail"`
	// Reason is the HTTP reason phrase, e.g. "Bad Request".
	Reason string `json:"reason"`
	// Parameters are the values the detail's text refers to. Writers send
	// an empty array rather than null.
	Parameters []any `json:"parameters"`
	// BadRequestDetail names the rejected fields of a validation failure.
	BadRequestDetail *BadRequestDetail `json:"badRequestDetail,omitempty"`
}

// BadRequestDetail lists the request fields Atlas rejected.
type BadRequestDetail struct {
	Fields []FieldViolation `json:"fields"`
}

// newError builds an *Error from a non-2xx response whose body (already
// limited to maxErrorBody) is body, answering a request that carried the
// secrets spelled in secrets (see Secrets). Every text Atlas sent is
// redacted before it is sanitized and cut, so that a secret re-spaced or cut
// off on the way is still removed whole.
func newError(method string, res *http.Response, body []byte, secrets []string) *Error {
	e := &Error{
		HTTPStatus: res.StatusCode,
		Method:     method,
		RetryAfter: parseRetryAfter(res.Header.Get("Retry-After")),
	}
	clean := func(s string, limit int) string { return sanitize(Redact(s, secrets), limit) }
	if doc, ok := decodeAPIError(body, secrets); ok {
		e.ErrorCode = doc.ErrorCode
		e.Detail = clean(doc.Detail, 1024)
		e.Reason = clean(doc.Reason, 256)
		for _, p := range doc.Parameters[:min(len(doc.Parameters), maxParameters)] {
			e.Parameters = append(e.Parameters, redactJSON(p, secrets))
		}
		if doc.BadRequestDetail != nil {
			for _, f := range doc.BadRequestDetail.Fields[:min(len(doc.BadRequestDetail.Fields), maxFields)] {
				e.Fields = append(e.Fields, FieldViolation{
					Field:       clean(f.Field, maxFieldName),
					Description: clean(f.Description, maxFieldDescription),
				})
			}
		}
		return e
	}
	// Not an ApiError: a proxy's HTML page, plain text, nothing. Keep a
	// short, printable snippet so the error still says something.
	e.Reason = http.StatusText(res.StatusCode)
	e.Detail = clean(string(body), maxSnippet)
	return e
}

// decodeAPIError decodes body as Atlas's ApiError document, with its
// ErrorCode redacted of secrets (see Secrets) and sanitized:
// printable, on one line, at most about maxErrorCode bytes. ok is false when
// body is not an ApiError (no errorCode).
func decodeAPIError(body []byte, secrets []string) (doc ErrorBody, ok bool) {
	if json.Unmarshal(body, &doc) != nil {
		return ErrorBody{}, false
	}
	doc.ErrorCode = sanitize(Redact(doc.ErrorCode, secrets), maxErrorCode)
	return doc, doc.ErrorCode != ""
}

// parseRetryAfter reads a Retry-After header given in seconds, the only
// form Atlas sends. HTTP dates are accepted too; anything else is ignored.
func parseRetryAfter(v string) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseInt(v, 10, 64); err == nil {
		if s <= 0 {
			return 0
		}
		return time.Duration(min(s, 24*3600)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := time.Until(t); d > 0 {
			return d
		}
	}
	return 0
}

// sanitize makes s safe to print in one line: control characters become
// spaces, runs of whitespace collapse, and it is cut at limit bytes.
func sanitize(s string, limit int) string {
	var b strings.Builder
	space := false
	for _, r := range s {
		if unicode.IsSpace(r) || !unicode.IsPrint(r) {
			space = true
			continue
		}
		if space && b.Len() > 0 {
			b.WriteByte(' ')
		}
		space = false
		if b.Len()+utf8.RuneLen(r) > limit {
			b.WriteString("…")
			break
		}
		b.WriteRune(r)
	}
	return b.String()
}
