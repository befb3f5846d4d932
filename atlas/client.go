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
	digest    *digestTransport // nil unless WithDigest
	bearer    *bearerTransport // nil unless WithServiceAccount
}

// ClientStats counts authentication work a Client has done.
type ClientStats struct {
	// Challenges is the number of 401 digest challenges answered.
	Challenges int64
	// StaleRetries is the number of requests resent because Atlas rejected
	// the cached digest nonce (expired, or its count arrived out of order).
	StaleRetries int64
	// TokenFetches is the number of service-account tokens obtained.
	TokenFetches int64
}

// NewClient returns a Client configured by opts. Exactly one of WithDigest
// and WithServiceAccount must be given; an invalid option or a missing or
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
	case s.digestSet && s.serviceSet:
		return nil, errors.New("atlas: NewClient: WithDigest and WithServiceAccount are mutually exclusive")
	case !s.digestSet && !s.serviceSet:
		return nil, errors.New("atlas: NewClient: no credentials: use WithDigest or WithServiceAccount")
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
	if s.digestSet {
		c.digest = &digestTransport{next: base, host: c.base.Host, username: s.publicKey, password: s.privateKey}
		c.hc.Transport = c.digest
	} else {
		c.bearer = newBearerTransport(base, c.base.String(), c.base.Host, s.clientID, s.secret)
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

// resourceURL returns the encryptionAtRest URL of groupID.
func (c *Client) resourceURL(groupID string) string {
	u := c.base
	u.Path = c.base.Path + "/api/atlas/" + string(c.version) + "/groups/" + groupID + "/encryptionAtRest"
	u.RawPath = c.base.Path + "/api/atlas/" + string(c.version) + "/groups/" + url.PathEscape(groupID) + "/encryptionAtRest"
	return u.String()
}

// do performs one API call with retries; see RetryPolicy for the rules.
// body is nil for GET.
func (c *Client) do(ctx context.Context, method, groupID string, body []byte, secrets []string) (*EncryptionAtRest, error) {
	target := c.resourceURL(groupID)
	start := time.Now()
	for attempt := 1; ; attempt++ {
		out, r := c.attempt(ctx, method, target, body, secrets, attempt)
		if r.err == nil {
			return out, nil
		}
		if !r.retry || attempt >= c.retry.MaxAttempts || ctx.Err() != nil {
			return nil, r.err
		}
		wait := max(r.wait, c.retry.backoff(attempt))
		resume := time.Now().Add(wait)
		if c.retry.MaxElapsed > 0 && resume.Sub(start) > c.retry.MaxElapsed {
			return nil, r.err
		}
		if dl, ok := ctx.Deadline(); ok && !resume.Before(dl) {
			return nil, r.err
		}
		timer := time.NewTimer(wait)
		select {
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			return nil, opError(method, fmt.Errorf("%w (waiting to retry after: %w)", ctx.Err(), r.err))
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
func (c *Client) attempt(ctx context.Context, method, target string, body []byte, secrets []string, n int) (*EncryptionAtRest, outcome) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	reqCtx := withSecrets(withAttempt(ctx, n), secrets)
	if dl, ok := ctx.Deadline(); c.timeout > 0 && (!ok || time.Until(dl) > c.timeout) {
		var cancel context.CancelFunc
		reqCtx, cancel = context.WithTimeout(reqCtx, c.timeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(reqCtx, method, target, rd)
	if err != nil {
		return nil, outcome{err: opError(method, err)}
	}
	req.Header.Set("Accept", c.version.mediaType())
	req.Header.Set("User-Agent", c.userAgent)
	if body != nil {
		req.Header.Set("Content-Type", c.version.mediaType())
	}
	res, err := c.hc.Do(req)
	if err != nil {
		return nil, c.transportFailure(ctx, method, err)
	}
	defer res.Body.Close()
	if res.StatusCode < 200 || res.StatusCode > 299 {
		b, _ := io.ReadAll(io.LimitReader(res.Body, maxErrorBody))
		e := newError(method, res, b, secrets)
		return nil, outcome{err: e, retry: retryableStatus(method, res.StatusCode), wait: e.RetryAfter}
	}
	b, err := io.ReadAll(io.LimitReader(res.Body, maxBody+1))
	cutOff := err != nil // the connection failed mid-body
	switch {
	case cutOff:
		err = fmt.Errorf("reading body: %w", err)
	case len(b) > maxBody:
		err = fmt.Errorf("body exceeds %d bytes", maxBody)
	default:
		var out EncryptionAtRest
		if err = json.Unmarshal(b, &out); err == nil {
			return &out, outcome{}
		}
		err = fmt.Errorf("decoding body: %w", err)
	}
	if method == http.MethodPatch {
		// 2xx: Atlas applied the change. Never resend it.
		return nil, outcome{err: opError(method, fmt.Errorf("%w (%w): %w", ErrUpdateAppliedUnreadable, ErrMalformedResponse, err))}
	}
	// A body cut off in transit is worth another GET; a complete but
	// invalid or oversized one is not.
	return nil, outcome{err: opError(method, fmt.Errorf("%w: %w", ErrMalformedResponse, err)), retry: cutOff && ctx.Err() == nil}
}

// transportFailure classifies an error from http.Client.Do.
func (c *Client) transportFailure(ctx context.Context, method string, err error) outcome {
	// The token endpoint answered with an error: nothing was sent to the
	// resource, so even a PATCH may be retried when the status allows.
	var aerr *Error
	if errors.As(err, &aerr) {
		s := aerr.HTTPStatus
		return outcome{err: aerr, retry: s == http.StatusTooManyRequests || s >= 500, wait: aerr.RetryAfter}
	}
	unsent := provablyUnsent(err)
	if method == http.MethodPatch && !unsent {
		return outcome{err: opError(method, fmt.Errorf("%w: %w", ErrOutcomeUnknown, err))}
	}
	return outcome{err: opError(method, err), retry: ctx.Err() == nil}
}
