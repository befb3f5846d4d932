package atlas

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"time"
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
	t.observe(ex)
	return res, err
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
