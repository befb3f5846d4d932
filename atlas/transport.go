package atlas

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/icholy/digest"
)

// The Client's HTTP stack, outermost first:
//
//	http.Client (redirects; its Timeout is applied per attempt by Client.attempt)
//	└─ digestTransport or bearerTransport  (auth; may make several exchanges)
//	   └─ exchangeTransport                (reports each exchange to the observer)
//	      └─ the base transport            (WithHTTPClient's, or a tuned default)
//
// Auth sits above the observer so that digest challenges, stale-nonce
// resends and token requests are each reported as one exchange.

// attemptKey carries a call's attempt number down to exchangeTransport.
// secretsKey carries the Secrets of a PATCH's write-only values, so
// that the errorCode it observes is redacted too.
type (
	attemptKey struct{}
	secretsKey struct{}
)

func withAttempt(ctx context.Context, n int) context.Context {
	return context.WithValue(ctx, attemptKey{}, n)
}

func attemptFrom(ctx context.Context) int {
	n, _ := ctx.Value(attemptKey{}).(int)
	return n
}

func withSecrets(ctx context.Context, secrets []string) context.Context {
	if len(secrets) == 0 {
		return ctx
	}
	return context.WithValue(ctx, secretsKey{}, secrets)
}

func secretsFrom(ctx context.Context) []string {
	s, _ := ctx.Value(secretsKey{}).([]string)
	return s
}

// exchangeTransport reports every exchange to observe. For error statuses
// it buffers the (bounded) body to pick out Atlas's errorCode, as newError
// does, and hands the buffered copy on.
type exchangeTransport struct {
	next    http.RoundTripper
	observe func(Exchange)
}

func (t *exchangeTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	start := time.Now()
	res, err := t.next.RoundTrip(req)
	ex := Exchange{Method: req.Method, Attempt: attemptFrom(req.Context())}
	if err != nil {
		ex.Err = err
	} else {
		ex.Status = res.StatusCode
		if res.StatusCode >= 400 {
			body, _ := io.ReadAll(io.LimitReader(res.Body, maxErrorBody))
			_ = res.Body.Close()
			res.Body = io.NopCloser(bytes.NewReader(body))
			if doc, ok := decodeAPIError(body, secretsFrom(req.Context())); ok {
				ex.ErrorCode = doc.ErrorCode
			}
		}
	}
	ex.Duration = time.Since(start)
	ex.Auth = authOf(req, res)
	t.observe(ex)
	return res, err
}

// tokenPath is the service-account token endpoint's path.
const tokenPath = "/api/oauth/token"

// authOf tells what an exchange says of the client's credentials.
func authOf(req *http.Request, res *http.Response) AuthResult {
	if res == nil {
		return AuthNone
	}
	scheme, _, _ := strings.Cut(req.Header.Get("Authorization"), " ")
	unauthorized := res.StatusCode == http.StatusUnauthorized
	switch {
	case strings.HasSuffix(req.URL.Path, tokenPath):
		// The service account's own credentials are judged here.
		if unauthorized || res.StatusCode == http.StatusBadRequest {
			return AuthRefused
		}
		return AuthAccepted
	case scheme == "Bearer":
		// A refused token is fetched anew: that says nothing yet.
		if unauthorized {
			return AuthNone
		}
		return AuthAccepted
	case unauthorized:
		chal, err := digest.FindChallenge(res.Header)
		if err != nil {
			return AuthNone
		}
		if scheme == "" || chal.Stale {
			return AuthChallenge // answered by signing, or signing anew
		}
		return AuthRefused
	case scheme == "Digest":
		return AuthAccepted
	}
	return AuthNone
}

func (t *exchangeTransport) CloseIdleConnections() { closeIdle(t.next) }

// closeIdle closes rt's idle connections if it can.
func closeIdle(rt http.RoundTripper) {
	if c, ok := rt.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// drain discards a little of a response body we are done with, so that its
// connection can be reused, and closes it.
func drain(res *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
	_ = res.Body.Close()
}

// bodyFunc produces a fresh copy of a request body, like http.Request.GetBody.
type bodyFunc = func() (io.ReadCloser, error)

// replayable returns a function that produces a fresh copy of req's body
// for each resend. It uses req.GetBody when set and otherwise buffers the
// body once. It always closes req.Body, as a RoundTripper must.
func replayable(req *http.Request) (bodyFunc, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return func() (io.ReadCloser, error) { return http.NoBody, nil }, nil
	}
	if req.GetBody != nil {
		_ = req.Body.Close()
		return req.GetBody, nil
	}
	b, err := io.ReadAll(req.Body)
	_ = req.Body.Close()
	if err != nil {
		return nil, err
	}
	return func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }, nil
}

// cloneWithBody clones req for one send, with a fresh body from getBody.
func cloneWithBody(req *http.Request, getBody bodyFunc) (*http.Request, error) {
	c := req.Clone(req.Context())
	body, err := getBody()
	if err != nil {
		return nil, err
	}
	c.Body = body
	c.GetBody = getBody
	return c, nil
}
