package atlas

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"syscall"
	"time"
)

// RetryPolicy bounds how a call is retried. What is retried depends on the
// method, because a change must never be applied twice:
//
//   - GET: 429 (waiting at least Retry-After), 500, 502, 503, 504,
//     connection errors and cut-off response bodies.
//   - PATCH, POST, DELETE: 429, and failures where the request provably
//     never reached Atlas (the connection could not be established). Never
//     a 5xx, a timeout or a dropped connection after the request was sent.
//
// Waits grow exponentially from InitialBackoff to MaxBackoff with jitter.
// A call stops retrying when MaxAttempts is reached, when the next wait would
// end past MaxElapsed since the call started, or past the context's deadline;
// it then returns the last failure right away rather than sleeping into the
// deadline. A Retry-After longer than what is left is such a case: the 429
// *Error comes back with RetryAfter set.
type RetryPolicy struct {
	// MaxAttempts is the number of tries including the first; 1 disables
	// retries. Must be at least 1.
	MaxAttempts int
	// InitialBackoff is the wait before the first retry, before jitter.
	InitialBackoff time.Duration
	// MaxBackoff caps one wait, before jitter; 0 means no cap. A longer
	// Retry-After still wins.
	MaxBackoff time.Duration
	// MaxElapsed bounds the time a call spends, counted from its start, after
	// which no retry is started; 0 leaves only the context to bound it.
	MaxElapsed time.Duration
}

// DefaultRetryPolicy returns the policy used without WithRetryPolicy:
// 6 attempts, backoff from 200 ms doubling up to 3 s, and no retry started
// after 10 s, so a caller facing a down Atlas hears about it within about
// 10 s rather than at its own deadline.
func DefaultRetryPolicy() RetryPolicy {
	return RetryPolicy{
		MaxAttempts:    6,
		InitialBackoff: 200 * time.Millisecond,
		MaxBackoff:     3 * time.Second,
		MaxElapsed:     10 * time.Second,
	}
}

func (p RetryPolicy) validate() error {
	switch {
	case p.MaxAttempts < 1:
		return fmt.Errorf("atlas: RetryPolicy.MaxAttempts = %d, want at least 1", p.MaxAttempts)
	case p.InitialBackoff < 0 || p.MaxBackoff < 0 || p.MaxElapsed < 0:
		return errors.New("atlas: RetryPolicy durations must not be negative")
	case p.MaxBackoff > 0 && p.InitialBackoff > p.MaxBackoff:
		return fmt.Errorf("atlas: RetryPolicy.InitialBackoff %v exceeds MaxBackoff %v", p.InitialBackoff, p.MaxBackoff)
	}
	return nil
}

// Backoff returns the wait before retry number n (1 for the first retry):
// "equal jitter", half the exponential step fixed and half random, so waits
// never collapse to zero yet concurrent callers spread out. (The loop
// around it is the caller's: the rules about what may be retried, and
// Retry-After, are not a backoff library's business, so this one function
// is all a library would replace.)
func (p RetryPolicy) Backoff(n int) time.Duration {
	d := p.InitialBackoff
	for i := 1; i < n && (p.MaxBackoff == 0 || d < p.MaxBackoff); i++ {
		if d > time.Hour {
			break
		}
		d *= 2
	}
	if p.MaxBackoff > 0 {
		d = min(d, p.MaxBackoff)
	}
	if d <= 0 {
		return 0
	}
	half := d / 2
	return half + rand.N(d-half+1)
}

// retryableStatus reports whether a response status may be retried, for a
// call that changes something (changes) or only reads: a change may have
// been applied despite a 5xx, so only its 429 is retried.
func retryableStatus(changes bool, status int) bool {
	switch status {
	case http.StatusTooManyRequests:
		return true
	case http.StatusInternalServerError, http.StatusBadGateway,
		http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return !changes
	}
	return false
}

// unsentError marks a transport failure that happened before the request
// could have been acted on: Atlas never saw it, or saw it unauthenticated.
type unsentError struct{ err error }

func (e *unsentError) Error() string { return e.err.Error() }
func (e *unsentError) Unwrap() error { return e.err }

// provablyUnsent reports whether err shows that the request never reached
// Atlas in a form it could apply: a failed dial (refused, unreachable, DNS)
// or a failure the auth layer marked as happening before the signed request.
func provablyUnsent(err error) bool {
	var u *unsentError
	if errors.As(err, &u) {
		return true
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	var dns *net.DNSError
	return errors.As(err, &dns) || errors.Is(err, syscall.ECONNREFUSED)
}
