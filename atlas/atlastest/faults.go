package atlastest

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Fault makes the emulator misbehave for matching requests, as a network or
// an overloaded Atlas would. Faults apply only to authenticated requests to
// one resource (encryptionAtRest unless Resource says otherwise; never to
// digest challenges or token requests), in the order injected; each
// matching request consumes one use.
//
// Status, Drop and Body answer instead of Atlas. DropAfterApply, Malformed,
// Truncated and HugeBody first process the request normally (a PATCH is
// applied) and then spoil the answer.
type Fault struct {
	// Status answers with this HTTP status and an ApiError body fitting it
	// (429 RATE_LIMITED_TOKEN_BUCKET, 500 UNEXPECTED_ERROR, 503
	// SERVICE_UNAVAILABLE, ...).
	Status int `json:"status,omitempty"`
	// RetryAfter adds a Retry-After header (whole seconds, rounded up).
	RetryAfter time.Duration `json:"retryAfter,omitempty"`
	// ErrorCode, with Status, is the ApiError's errorCode instead of the
	// one that goes with the status: any errorCode Atlas documents, on
	// demand.
	ErrorCode string `json:"errorCode,omitempty"`
	// Body, with Status, replaces the ApiError body verbatim (e.g. a proxy's
	// HTML page).
	Body string `json:"body,omitempty"`
	// Drop closes the connection without answering, before processing.
	Drop bool `json:"drop,omitempty"`
	// DropAfterApply processes the request, then closes the connection
	// without answering.
	DropAfterApply bool `json:"dropAfterApply,omitempty"`
	// Malformed answers 200 with invalid JSON.
	Malformed bool `json:"malformed,omitempty"`
	// Truncated answers 200 and closes the connection halfway through the
	// body it announced.
	Truncated bool `json:"truncated,omitempty"`
	// HugeBody answers 200 with a valid 10 MiB JSON document.
	HugeBody bool `json:"hugeBody,omitempty"`
	// Method limits the fault to requests with this method; "" matches any.
	Method string `json:"method,omitempty"`
	// Resource is the resource whose requests the fault answers, as
	// Emulator.Calls names them ("clusters"); "" is encryptionAtRest.
	Resource string `json:"resource,omitempty"`
	// GroupID limits the fault to requests of this project; "" matches
	// any (and requests that name none, such as the projects list).
	GroupID string `json:"groupId,omitempty"`
	// Times is how many requests the fault affects; 0 means 1.
	Times int `json:"times,omitempty"`
}

type pendingFault struct {
	f    Fault
	left int
}

// InjectFault queues f.
func (e *Emulator) InjectFault(f Fault) {
	n := max(f.Times, 1)
	e.mu.Lock()
	defer e.mu.Unlock()
	e.faults = append(e.faults, &pendingFault{f: f, left: n})
}

// ClearFaults drops all queued faults and disables the fault rate.
func (e *Emulator) ClearFaults() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.faults = nil
	e.faultRate, e.faultCodes = 0, nil
}

// SetFaultRate answers a random fraction rate (0 to 1) of authenticated
// resource requests with one of statuses, chosen at random, for soak tests.
// A rate of 0, or no statuses, disables it.
func (e *Emulator) SetFaultRate(rate float64, statuses ...int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.faultRate = min(max(rate, 0), 1)
	e.faultCodes = append([]int(nil), statuses...)
}

// preempts reports whether f answers instead of processing the request.
func (f *Fault) preempts() bool {
	return f.Drop || !f.DropAfterApply && !f.Malformed && !f.Truncated && !f.HugeBody
}

// serveInstead answers a request that is not processed.
func (f *Fault) serveInstead(w http.ResponseWriter, r *http.Request, v2 bool) {
	if f.Drop {
		hangUp(w, "")
		return
	}
	status := f.Status
	if status == 0 {
		status = http.StatusInternalServerError
	}
	if f.RetryAfter > 0 {
		secs := (f.RetryAfter + time.Second - 1) / time.Second
		w.Header().Set("Retry-After", strconv.FormatInt(int64(secs), 10))
	}
	if f.Body != "" {
		ct := "text/html; charset=utf-8"
		if strings.HasPrefix(strings.TrimSpace(f.Body), "{") {
			ct = MediaTypeJSON
		}
		w.Header().Set("Content-Type", ct)
		w.WriteHeader(status)
		_, _ = w.Write([]byte(f.Body))
		return
	}
	code := f.ErrorCode
	if code == "" {
		code = faultCode(status)
	}
	writeError(w, r, errorBody(status, code, "Injected fault."))
}

// resource is the resource the fault applies to.
func (f *Fault) resource() string {
	if f.Resource == "" {
		return resourceEncryptionAtRest
	}
	return f.Resource
}

// serveAfter spoils the answer to a processed request.
func (f *Fault) serveAfter(w http.ResponseWriter, v2 bool, doc any) {
	switch {
	case f.DropAfterApply:
		hangUp(w, "")
	case f.Malformed:
		w.Header().Set("Content-Type", mediaType(v2))
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(`{"awsKms": {"enabled": tru`))
	case f.Truncated:
		b, _ := json.Marshal(doc)
		head := "HTTP/1.1 200 OK\r\nContent-Type: " + mediaType(v2) +
			"\r\nContent-Length: " + strconv.Itoa(len(b)) + "\r\n\r\n"
		hangUp(w, head+string(b[:len(b)/2]))
	case f.HugeBody:
		w.Header().Set("Content-Type", mediaType(v2))
		w.WriteHeader(http.StatusOK)
		chunk := []byte(strings.Repeat("a", 64<<10))
		_, _ = w.Write([]byte(`{"awsKms":{"customerMasterKeyID":"`))
		for range (10 << 20) / len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
		_, _ = w.Write([]byte(`"}}`))
	}
}

// hangUp writes raw (if any) straight to the connection and closes it, so
// the client sees a dropped connection.
func hangUp(w http.ResponseWriter, raw string) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		// HTTP/2 cannot be hijacked; aborting the handler is net/http's
		// documented way to reset the stream instead.
		panic(http.ErrAbortHandler)
	}
	conn, buf, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	defer conn.Close()
	if raw != "" {
		_, _ = buf.WriteString(raw)
		_ = buf.Flush()
	}
}

// faultCode is the Atlas errorCode an injected status comes with.
func faultCode(status int) string {
	switch status {
	case http.StatusTooManyRequests:
		return "RATE_LIMITED_TOKEN_BUCKET"
	case http.StatusInternalServerError:
		return "UNEXPECTED_ERROR"
	case http.StatusBadGateway:
		return "BAD_GATEWAY"
	case http.StatusServiceUnavailable:
		return "SERVICE_UNAVAILABLE"
	case http.StatusGatewayTimeout:
		return "GATEWAY_TIMEOUT"
	case http.StatusUnauthorized:
		return "UNAUTHORIZED"
	case http.StatusForbidden:
		return "ACCESS_FORBIDDEN"
	case http.StatusNotFound:
		return "RESOURCE_NOT_FOUND"
	case http.StatusConflict:
		return "CONFLICT"
	}
	if status >= 500 {
		return "UNEXPECTED_ERROR"
	}
	return "INVALID_REQUEST"
}
