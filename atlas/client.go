package atlas

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync/atomic"
	"time"
)

// maxBody bounds how much of a successful response is read. An
// encryptionAtRest document is about a kilobyte.
const maxBody = 1 << 20

// Client talks to Atlas's Administration API. Create one with NewClient and
// share it: it is safe for concurrent use, and sharing it lets calls reuse
// connections, the digest challenge and the service-account token.
type Client struct {
	base      url.URL
	version   APIVersion
	userAgent string
	retry     RetryPolicy
	hc        *http.Client     // Timeout 0: timeout bounds each attempt instead
	timeout   time.Duration    // the HTTP client's Timeout, 0 for none
	digest    *digestTransport // nil unless WithDigest or WithDigestSource
	bearer    *bearerTransport // nil unless WithServiceAccount or WithServiceAccountSource
	// notBefore is the end, in Unix nanoseconds, of the latest Retry-After
	// Atlas sent with a 429 (NotBefore).
	notBefore atomic.Int64
}

// NotBefore returns the time until which Atlas last asked this client to
// wait: the end of the latest Retry-After of a 429 answer, to any call. It
// is in the past, or zero, when Atlas has not asked. The call that got the
// 429 waits for it before its retry (RetryPolicy); other calls do not.
// Callers that poll Atlas on their own schedule should, so that one 429
// holds back every poll of the host, not only the one that was told.
func (c *Client) NotBefore() time.Time {
	if n := c.notBefore.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}

// holdUntil moves NotBefore to t, unless it is later already.
func (c *Client) holdUntil(t time.Time) {
	n := t.UnixNano()
	for {
		cur := c.notBefore.Load()
		if cur >= n || c.notBefore.CompareAndSwap(cur, n) {
			return
		}
	}
}

// ClientStats counts authentication work a Client has done.
type ClientStats struct {
	// Challenges is the number of 401 digest challenges answered.
	Challenges int64
	// StaleRetries is the number of requests resent because Atlas rejected
	// the cached digest nonce (expired, or its count arrived out of order)
	// or the key signed with it (revoked after a rotation).
	StaleRetries int64
	// TokenFetches is the number of service-account tokens obtained.
	TokenFetches int64
}

// NewClient returns a Client configured by opts. Exactly one auth option
// (WithDigest, WithDigestSource, WithServiceAccount or
// WithServiceAccountSource) must be given; an invalid option or a missing or
// doubled auth mode is an error.
func NewClient(opts ...Option) (*Client, error) {
	s := settings{
		apiVersion: APIVersionV2,
		userAgent:  DefaultUserAgent,
		retry:      DefaultRetryPolicy(),
	}
	for _, o := range opts {
		if o == nil {
			return nil, errors.New("atlas: NewClient: nil Option")
		}
		if err := o.apply(&s); err != nil {
			return nil, err
		}
	}
	switch {
	case s.digest != nil && s.service != nil:
		return nil, errors.New("atlas: NewClient: an API key (WithDigest, WithDigestSource) and a service account (WithServiceAccount, WithServiceAccountSource) are mutually exclusive")
	case s.digest == nil && s.service == nil:
		return nil, errors.New("atlas: NewClient: no credentials: use WithDigest or WithServiceAccount (or their Source forms)")
	}
	if s.baseURL == nil {
		u, _ := url.Parse(DefaultBaseURL)
		s.baseURL = u
	}
	switch {
	case s.h2c && s.httpClient != nil:
		return nil, errors.New("atlas: NewClient: WithUnencryptedHTTP2 configures the default transport; with WithHTTPClient configure that client's transport instead")
	case s.h2c && s.baseURL.Scheme != "http":
		return nil, errors.New("atlas: NewClient: WithUnencryptedHTTP2 needs an http:// base URL; over https HTTP/2 is negotiated anyway")
	case s.httpClient == nil:
		s.httpClient = defaultHTTPClient(s.h2c)
	}
	base := s.httpClient.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	if s.observer != nil {
		base = &exchangeTransport{next: base, observe: s.observer}
	}
	c := &Client{
		base:      *s.baseURL,
		version:   s.apiVersion,
		userAgent: s.userAgent,
		retry:     s.retry,
		hc:        s.httpClient, // already a copy made by the option or by us
		timeout:   s.httpClient.Timeout,
	}
	// http.Client enforces its Timeout with a goroutine, two channels and a
	// timer per request when its transport is not an *http.Transport, as
	// the auth transports are not. attempt applies the same bound through
	// the request's context instead, as http.Client itself does for an
	// *http.Transport.
	c.hc.Timeout = 0
	if s.digest != nil {
		c.digest = &digestTransport{next: base, host: c.base.Host, source: s.digest}
		c.hc.Transport = c.digest
	} else {
		c.bearer = newBearerTransport(base, c.base.String(), c.base.Host, s.service)
		c.hc.Transport = c.bearer
	}
	return c, nil
}

// Stats reports the authentication work done so far.
func (c *Client) Stats() ClientStats {
	var s ClientStats
	if c.digest != nil {
		s.Challenges = c.digest.challenges.Load()
		s.StaleRetries = c.digest.staleRetries.Load()
	}
	if c.bearer != nil {
		s.TokenFetches = c.bearer.fetches.Load()
	}
	return s
}

// CloseIdleConnections closes connections kept open for reuse, e.g. when
// shutting down.
func (c *Client) CloseIdleConnections() { c.hc.CloseIdleConnections() }

// call is one call of the Administration API.
type call struct {
	method string
	// resource names the resource in errors: "encryptionAtRest",
	// "clusters".
	resource string
	// path follows /api/atlas/<version>, its elements escaped:
	// "/groups/<id>/encryptionAtRest".
	path  string
	query url.Values
	body  []byte // nil for none
	// secrets are the Secrets of the write-only values body carries.
	secrets []string
	// v2 marks a resource that only API v2 has: it is called on v2 paths
	// with v2's media type whatever the client's APIVersion.
	v2 bool
	// out receives a 2xx answer's JSON body; nil for none.
	out any
}

// changes reports whether the call asks Atlas to change something: such a
// call is never resent once it may have reached Atlas.
func (c *call) changes() bool { return c.method != http.MethodGet }

// url returns the call's URL.
func (c *Client) url(cl *call) string {
	version := c.version
	if cl.v2 {
		version = APIVersionV2
	}
	u := c.base
	prefix := c.base.Path + "/api/atlas/" + string(version)
	unescaped, err := url.PathUnescape(cl.path)
	if err != nil {
		unescaped = cl.path
	}
	u.Path, u.RawPath = prefix+unescaped, prefix+cl.path
	u.RawQuery = cl.query.Encode()
	return u.String()
}

// mediaType returns the call's Accept (and Content-Type) value.
func (c *Client) mediaType(cl *call) string {
	if cl.v2 {
		return APIVersionV2.mediaType()
	}
	return c.version.mediaType()
}

// do performs one API call with retries; see RetryPolicy for the rules.
func (c *Client) do(ctx context.Context, cl *call) error {
	target := c.url(cl)
	start := time.Now()
	for attempt := 1; ; attempt++ {
		r := c.attempt(ctx, cl, target, attempt)
		if r.err == nil {
			return nil
		}
		if !r.retry || attempt >= c.retry.MaxAttempts || ctx.Err() != nil {
			return r.err
		}
		wait := max(r.wait, c.retry.Backoff(attempt))
		resume := time.Now().Add(wait)
		if c.retry.MaxElapsed > 0 && resume.Sub(start) > c.retry.MaxElapsed {
			return r.err
		}
		if dl, ok := ctx.Deadline(); ok && !resume.Before(dl) {
			return r.err
		}
		timer := time.NewTimer(wait)
		select {
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			return cl.error(fmt.Errorf("%w (waiting to retry after: %w)", ctx.Err(), r.err))
		}
	}
}

// outcome is what one attempt leaves for the retry loop.
type outcome struct {
	err   error
	retry bool          // err may be retried under the policy
	wait  time.Duration // the least time to wait first (Retry-After)
}

// attempt sends one request and interprets the answer. The HTTP client's
// Timeout bounds the whole attempt, reading the body included.
func (c *Client) attempt(ctx context.Context, cl *call, target string, n int) outcome {
	var rd io.Reader
	if cl.body != nil {
		rd = bytes.NewReader(cl.body)
	}
	reqCtx := withSecrets(withAttempt(ctx, n), cl.secrets)
	if dl, ok := ctx.Deadline(); c.timeout > 0 && (!ok || time.Until(dl) > c.timeout) {
		var cancel context.CancelFunc
		reqCtx, cancel = context.WithTimeout(reqCtx, c.timeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(reqCtx, cl.method, target, rd)
	if err != nil {
		return outcome{err: cl.error(err)}
	}
	req.Header.Set("Accept", c.mediaType(cl))
	req.Header.Set("User-Agent", c.userAgent)
	if cl.body != nil {
		req.Header.Set("Content-Type", c.mediaType(cl))
	}
	res, err := c.hc.Do(req)
	if err != nil {
		return c.transportFailure(ctx, cl, err)
	}
	defer res.Body.Close()
	if res.StatusCode < 200 || res.StatusCode > 299 {
		b, _ := io.ReadAll(io.LimitReader(res.Body, maxErrorBody))
		e := newError(cl.method, res, b, cl.secrets)
		e.Resource = cl.resource
		if res.StatusCode == http.StatusTooManyRequests && e.RetryAfter > 0 {
			c.holdUntil(time.Now().Add(e.RetryAfter))
		}
		return outcome{err: e, retry: retryableStatus(cl.changes(), res.StatusCode), wait: e.RetryAfter}
	}
	if cl.out == nil || res.StatusCode == http.StatusNoContent {
		drain(res)
		return outcome{}
	}
	b, err := io.ReadAll(io.LimitReader(res.Body, maxBody+1))
	cutOff := err != nil // the connection failed mid-body
	switch {
	case cutOff:
		err = fmt.Errorf("reading body: %w", err)
	case len(b) > maxBody:
		err = fmt.Errorf("body exceeds %d bytes", maxBody)
	default:
		if err = json.Unmarshal(b, cl.out); err == nil {
			return outcome{}
		}
		err = fmt.Errorf("decoding body: %w", err)
	}
	if cl.changes() {
		// 2xx: Atlas applied the change. Never resend it.
		return outcome{err: cl.error(fmt.Errorf("%w (%w): %w", ErrUpdateAppliedUnreadable, ErrMalformedResponse, err))}
	}
	// A body cut off in transit is worth another GET; a complete but
	// invalid or oversized one is not.
	return outcome{err: cl.error(fmt.Errorf("%w: %w", ErrMalformedResponse, err)), retry: cutOff && ctx.Err() == nil}
}

// transportFailure classifies an error from http.Client.Do.
func (c *Client) transportFailure(ctx context.Context, cl *call, err error) outcome {
	// The token endpoint answered with an error: nothing was sent to the
	// resource, so even a change may be retried when the status allows.
	var aerr *Error
	if errors.As(err, &aerr) {
		s := aerr.HTTPStatus
		return outcome{err: aerr, retry: s == http.StatusTooManyRequests || s >= 500, wait: aerr.RetryAfter}
	}
	if cl.changes() && !provablyUnsent(err) {
		return outcome{err: cl.error(fmt.Errorf("%w: %w", ErrOutcomeUnknown, err))}
	}
	return outcome{err: cl.error(err), retry: ctx.Err() == nil}
}

// error wraps err with the call it belongs to, keeping it inspectable with
// errors.Is and errors.As.
func (cl *call) error(err error) error {
	return fmt.Errorf("atlas: %s %s: %w", cl.method, cl.resource, err)
}

// groupPath is the path of a project: "/groups/<id>", escaped.
func groupPath(groupID string) string { return "/groups/" + url.PathEscape(groupID) }
