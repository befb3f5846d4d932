package atlas

import (
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/icholy/digest"
)

// digestTransport signs requests with HTTP Digest (RFC 7616) and reuses the
// server's challenge across requests, so that once warm a call costs one
// HTTP exchange instead of the two that curl --digest and the official Atlas
// SDK spend.
//
// The digest computation, challenge parsing and header formatting are
// github.com/icholy/digest's (Digest, FindChallenge, Credentials.String).
// Its own digest.Transport also reuses challenges, and is goroutine-safe,
// but three of its behaviours do not fit, so this type replaces only its
// ~60-line RoundTrip loop:
//
//  1. It keys its cache by host name without the port, so one Transport
//     shared by two emulators on 127.0.0.1 would mix their nonces. Here the
//     cache holds one challenge, for the one host a Client talks to, and
//     requests to any other host (a redirect) are passed on unsigned.
//  2. After a rejected cached nonce it stores the new challenge in the shared
//     cache and signs its resend from that cache. Under concurrency the nonce
//     count (nc) reaches the server out of order; a server that insists on
//     increasing counts rejects most of a burst, and every rejected request
//     then competes again on the newest nonce: a burst of 200 calls fails.
//     Here a rejected request resends under the fresh nonce from its own
//     401 with nc=1, which no other request has used, so one resend always
//     suffices; the fresh challenge replaces the cached one only if that is
//     still the one that failed.
//  3. It exposes no counters. Here challenges answered and stale resends are
//     counted for Client.Stats.
//
// Cold requests with a body are first sent bodyless (like digest.Transport's
// Probe option), so a PATCH body is never put on the wire unauthenticated.
//
// The key comes from a CredentialSource, read whenever a challenge is
// answered (see answer) and cached with the challenge it worked with, so
// that a rotated key is picked up at the next challenge and a warm call
// costs no read.
type digestTransport struct {
	next   http.RoundTripper
	host   string // host:port of the base URL; only it is signed
	source CredentialSource

	mu   sync.Mutex
	chal *digest.Challenge // the cached challenge, nil when cold
	nc   int               // last nonce count used with chal
	key  apiKey            // the key that worked with chal

	challenges   atomic.Int64 // 401 challenges answered
	staleRetries atomic.Int64 // resends after a rejected cached nonce
}

// apiKey is a programmatic API key.
type apiKey struct{ public, private string }

func (t *digestTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Host != t.host {
		return t.next.RoundTrip(req)
	}
	hasBody := req.Body != nil && req.Body != http.NoBody
	getBody, err := replayable(req)
	if err != nil {
		return nil, &unsentError{err}
	}
	if chal, nc, key := t.cached(); chal != nil {
		return t.warm(req, getBody, chal, nc, key)
	}
	return t.cold(req, getBody, hasBody)
}

// warm sends req signed with the cached challenge and key and, if the
// server refuses it with a new challenge (the nonce expired, or the key was
// revoked), answers that challenge.
func (t *digestTransport) warm(req *http.Request, getBody bodyFunc, chal *digest.Challenge, nc int, key apiKey) (*http.Response, error) {
	res, err := t.send(req, getBody, chal, nc, key)
	if err != nil || res.StatusCode != http.StatusUnauthorized {
		return res, err
	}
	fresh, ferr := digest.FindChallenge(res.Header)
	if ferr != nil {
		return res, nil // a 401 without a usable challenge: the caller's answer
	}
	drain(res)
	t.challenges.Add(1)
	t.staleRetries.Add(1)
	return t.answer(req, getBody, fresh, chal)
}

// cold obtains a challenge with a bodyless copy of req, then answers it.
func (t *digestTransport) cold(req *http.Request, getBody bodyFunc, hasBody bool) (*http.Response, error) {
	probe := req.Clone(req.Context())
	probe.Body, probe.GetBody, probe.ContentLength = http.NoBody, nil, 0
	res, err := t.next.RoundTrip(probe)
	if err != nil {
		// An unauthenticated request cannot have changed anything.
		return nil, &unsentError{err}
	}
	if res.StatusCode != http.StatusUnauthorized {
		if !hasBody {
			return res, nil // no auth asked for, and the probe was the request
		}
		drain(res)
		c, err := cloneWithBody(req, getBody)
		if err != nil {
			return nil, &unsentError{err}
		}
		return t.next.RoundTrip(c)
	}
	chal, ferr := digest.FindChallenge(res.Header)
	if ferr != nil {
		return res, nil
	}
	drain(res)
	t.challenges.Add(1)
	return t.answer(req, getBody, chal, nil)
}

// answer sends req under fresh, a challenge that no other request has
// used, with the key the source returns now. If Atlas refuses that key
// with another challenge and the source has meanwhile returned a different
// key (a rotation caught half way), it answers once more with that one.
// failed is the cached challenge that Atlas refused, if any.
func (t *digestTransport) answer(req *http.Request, getBody bodyFunc, fresh, failed *digest.Challenge) (*http.Response, error) {
	key, err := t.read()
	if err != nil {
		return nil, &unsentError{err}
	}
	res, err := t.resend(req, getBody, fresh, failed, key)
	if err != nil || res.StatusCode != http.StatusUnauthorized {
		return res, err
	}
	next, err := t.read()
	if err != nil || next == key {
		return res, nil // the same key again would be refused again
	}
	again, ferr := digest.FindChallenge(res.Header)
	if ferr != nil {
		return res, nil
	}
	drain(res)
	t.challenges.Add(1)
	return t.resend(req, getBody, again, failed, next)
}

// read returns the key the source returns now.
func (t *digestTransport) read() (apiKey, error) {
	public, private, err := t.source.credentials("API key")
	return apiKey{public, private}, err
}

// resend sends req under a fresh challenge that no other request has used,
// with nc=1, and caches the challenge and key if they worked and the cache
// is still empty or still holds failed.
func (t *digestTransport) resend(req *http.Request, getBody bodyFunc, fresh, failed *digest.Challenge, key apiKey) (*http.Response, error) {
	res, err := t.send(req, getBody, fresh, 1, key)
	if err == nil && res.StatusCode != http.StatusUnauthorized {
		t.mu.Lock()
		if t.chal == nil || t.chal == failed {
			t.chal, t.nc, t.key = fresh, 1, key
		}
		t.mu.Unlock()
	}
	return res, err
}

// cached returns the cached challenge, the next nonce count for it and the
// key that worked with it.
func (t *digestTransport) cached() (*digest.Challenge, int, apiKey) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.chal == nil {
		return nil, 0, apiKey{}
	}
	if t.nc >= 0x7fffffff {
		t.chal, t.nc = nil, 0 // nc is 8 hex digits; start over with a new nonce
		return nil, 0, apiKey{}
	}
	t.nc++
	return t.chal, t.nc, t.key
}

// send signs a copy of req with chal, nonce count nc and key, and sends it.
func (t *digestTransport) send(req *http.Request, getBody bodyFunc, chal *digest.Challenge, nc int, key apiKey) (*http.Response, error) {
	cred, err := digest.Digest(chal, digest.Options{
		Method:   req.Method,
		URI:      req.URL.RequestURI(),
		GetBody:  getBody,
		Count:    nc,
		Username: key.public,
		Password: key.private,
	})
	if err != nil {
		return nil, &unsentError{err}
	}
	c, err := cloneWithBody(req, getBody)
	if err != nil {
		return nil, &unsentError{err}
	}
	c.Header.Set("Authorization", cred.String())
	return t.next.RoundTrip(c)
}

func (t *digestTransport) CloseIdleConnections() { closeIdle(t.next) }
