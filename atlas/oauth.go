package atlas

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// bearerTransport authenticates as an Atlas service account: it fetches an
// access token with the OAuth 2.0 client-credentials flow, caches it, and
// fetches a new one shortly before it expires (Atlas tokens cannot be
// refreshed, and at most 100 may be live per service account).
//
// It calls clientcredentials.Config.Token itself instead of using
// oauth2.ReuseTokenSource, because a TokenSource fetches with the context it
// was created with: a token fetch would ignore the caller's deadline and
// cancellation. Here each fetch runs under the context of the call that
// needs it, one fetch at a time.
//
// The client id and secret come from a CredentialSource, read at each
// fetch, so that a rotated secret is used for the next token.
type bearerTransport struct {
	next     http.RoundTripper // for resource requests
	host     string            // host:port of the base URL; only it gets the token
	tokenURL string
	source   CredentialSource
	client   *http.Client // for token requests

	fetching chan struct{} // holds one token while a fetch is under way

	mu      sync.Mutex
	token   *oauth2.Token
	renewAt time.Time

	fetches atomic.Int64
}

func newBearerTransport(next http.RoundTripper, base, host string, source CredentialSource) *bearerTransport {
	return &bearerTransport{
		next:     next,
		host:     host,
		tokenURL: base + tokenPath,
		source:   source,
		client:   &http.Client{Transport: next},
		fetching: make(chan struct{}, 1),
	}
}

func (t *bearerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Host != t.host {
		return t.next.RoundTrip(req)
	}
	getBody, err := replayable(req)
	if err != nil {
		return nil, &unsentError{err}
	}
	tok, err := t.current(req.Context(), req.Method, nil)
	if err != nil {
		return nil, &unsentError{err}
	}
	res, err := t.send(req, getBody, tok)
	if err != nil || res.StatusCode != http.StatusUnauthorized {
		return res, err
	}
	// Atlas refused the token (revoked, or expired early): fetch a new one
	// and resend once. A 401 on the resend is the caller's answer.
	drain(res)
	tok, err = t.current(req.Context(), req.Method, tok)
	if err != nil {
		return nil, &unsentError{err}
	}
	return t.send(req, getBody, tok)
}

func (t *bearerTransport) send(req *http.Request, getBody bodyFunc, tok *oauth2.Token) (*http.Response, error) {
	c, err := cloneWithBody(req, getBody)
	if err != nil {
		return nil, &unsentError{err}
	}
	c.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	return t.next.RoundTrip(c)
}

// current returns a token that is not due for renewal, fetching one if
// needed. A cached token equal to refused is treated as expired.
func (t *bearerTransport) current(ctx context.Context, method string, refused *oauth2.Token) (*oauth2.Token, error) {
	if tok := t.cachedToken(refused); tok != nil {
		return tok, nil
	}
	select {
	case t.fetching <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-t.fetching }()
	// Another call may have fetched while this one waited.
	if tok := t.cachedToken(refused); tok != nil {
		return tok, nil
	}
	start := time.Now()
	tok, err := t.fetch(ctx)
	if err != nil {
		return nil, tokenError(method, err)
	}
	t.fetches.Add(1)
	life := time.Hour // Atlas always sends expires_in; be safe if not
	if !tok.Expiry.IsZero() {
		life = tok.Expiry.Sub(start)
	}
	t.mu.Lock()
	t.token = tok
	// Renew a tenth of the lifetime early, at most a minute: 6 minutes
	// before the end of Atlas's one-hour tokens would waste tokens.
	t.renewAt = start.Add(life - min(time.Minute, life/10))
	t.mu.Unlock()
	return tok, nil
}

// fetch obtains a token with the client id and secret the source returns
// now. If Atlas refuses them (401) and the source has meanwhile returned
// different ones (a rotation caught half way), it asks once more with those.
func (t *bearerTransport) fetch(ctx context.Context) (*oauth2.Token, error) {
	ctx = context.WithValue(ctx, oauth2.HTTPClient, t.client)
	id, secret, err := t.source.credentials("service account")
	if err != nil {
		return nil, err
	}
	tok, err := t.config(id, secret).Token(ctx)
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.Response == nil || re.Response.StatusCode != http.StatusUnauthorized {
		return tok, err
	}
	nextID, nextSecret, rerr := t.source.credentials("service account")
	if rerr != nil || nextID == id && nextSecret == secret {
		return nil, err
	}
	return t.config(nextID, nextSecret).Token(ctx)
}

// config is the client-credentials configuration for id and secret.
func (t *bearerTransport) config(id, secret string) *clientcredentials.Config {
	return &clientcredentials.Config{
		ClientID:     id,
		ClientSecret: secret,
		TokenURL:     t.tokenURL,
		AuthStyle:    oauth2.AuthStyleInHeader,
	}
}

func (t *bearerTransport) cachedToken(refused *oauth2.Token) *oauth2.Token {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.token == nil || !time.Now().Before(t.renewAt) {
		return nil
	}
	if refused != nil && t.token.AccessToken == refused.AccessToken {
		t.token = nil
		return nil
	}
	return t.token
}

// tokenError turns a failed token request into an *Error when the token
// endpoint answered, so that callers handle one error type.
func tokenError(method string, err error) error {
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.Response == nil {
		return err
	}
	e := &Error{
		HTTPStatus: re.Response.StatusCode,
		ErrorCode:  sanitize(re.ErrorCode, maxErrorCode),
		Detail:     "service account token request failed",
		Reason:     http.StatusText(re.Response.StatusCode),
		RetryAfter: parseRetryAfter(re.Response.Header.Get("Retry-After")),
		Method:     method,
	}
	if d := sanitize(re.ErrorDescription, 256); d != "" {
		e.Detail += ": " + d
	}
	return e
}

func (t *bearerTransport) CloseIdleConnections() { closeIdle(t.next) }
