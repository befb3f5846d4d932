package atlas

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Version is this client's version, sent in the default User-Agent.
const Version = "0.1.0"

// DefaultBaseURL is Atlas's Administration API host.
const DefaultBaseURL = "https://cloud.mongodb.com"

// DefaultUserAgent is the User-Agent sent unless WithUserAgent says otherwise.
const DefaultUserAgent = "encryptiond/" + Version

// APIVersion selects the Administration API generation.
type APIVersion string

const (
	// APIVersionV2 is the current, versioned API: paths under /api/atlas/v2
	// and the media type application/vnd.atlas.2023-01-01+json.
	APIVersionV2 APIVersion = "v2"
	// APIVersionV1 is the deprecated legacy API: paths under /api/atlas/v1.0
	// and the media type application/json.
	APIVersionV1 APIVersion = "v1.0"
)

// mediaTypeV2 is the versioned media type of the encryptionAtRest resource.
const mediaTypeV2 = "application/vnd.atlas.2023-01-01+json"

// mediaType returns the Accept (and request body Content-Type) value for v.
func (v APIVersion) mediaType() string {
	if v == APIVersionV1 {
		return "application/json"
	}
	return mediaTypeV2
}

// An Option configures a Client. Options validate and copy their input;
// NewClient reports the first invalid one.
type Option interface {
	apply(*settings) error
}

type optionFunc func(*settings) error

func (f optionFunc) apply(s *settings) error { return f(s) }

// settings collects the options before NewClient builds a Client.
type settings struct {
	baseURL    *url.URL
	apiVersion APIVersion
	userAgent  string
	httpClient *http.Client
	retry      RetryPolicy
	observer   func(Exchange)
	h2c        bool

	// digest and service return the credentials of the auth mode chosen;
	// at most one is set.
	digest, service CredentialSource
}

// A CredentialSource returns a pair of credentials: an API key's public
// and private key for WithDigestSource, a service account's client id and
// secret for WithServiceAccountSource. The Client calls it whenever it
// authenticates anew, so that it may return rotated credentials; it must
// be safe for concurrent use and should be quick (reading a small file is).
// An error, or an empty value, fails the call as one never sent (Atlas saw
// at most an unauthenticated request), and the error is wrapped in the
// call's, so it must not contain a secret.
type CredentialSource func() (id, secret string, err error)

// staticCredentials is the source of credentials that never change.
func staticCredentials(id, secret string) CredentialSource {
	return func() (string, string, error) { return id, secret, nil }
}

// credentials calls source and refuses an empty value. what names the
// pair in the error: "API key", "service account".
func (source CredentialSource) credentials(what string) (id, secret string, err error) {
	id, secret, err = source()
	switch {
	case err != nil:
		return "", "", fmt.Errorf("atlas: reading the %s: %w", what, err)
	case id == "" || secret == "":
		return "", "", fmt.Errorf("atlas: the %s source returned an empty value", what)
	}
	return id, secret, nil
}

// WithBaseURL sets the Atlas host, e.g. an emulator's "http://127.0.0.1:8090".
// A path prefix is kept. Default: DefaultBaseURL ("https://cloud.mongodb.com").
func WithBaseURL(base string) Option {
	return optionFunc(func(s *settings) error {
		u, err := url.Parse(base)
		if err != nil {
			return fmt.Errorf("atlas: WithBaseURL: %w", err)
		}
		if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
			return fmt.Errorf("atlas: WithBaseURL(%q): want an absolute http or https URL", base)
		}
		if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
			return fmt.Errorf("atlas: WithBaseURL: want no user info, query or fragment")
		}
		u.Path = strings.TrimRight(u.Path, "/")
		u.RawPath = ""
		s.baseURL = u
		return nil
	})
}

// WithAPIVersion selects the API generation. Default: APIVersionV2, which
// sends Accept (and, with a request body, Content-Type)
// application/vnd.atlas.2023-01-01+json; APIVersionV1 uses application/json.
func WithAPIVersion(v APIVersion) Option {
	return optionFunc(func(s *settings) error {
		if v != APIVersionV2 && v != APIVersionV1 {
			return fmt.Errorf("atlas: WithAPIVersion(%q): want %q or %q", v, APIVersionV2, APIVersionV1)
		}
		s.apiVersion = v
		return nil
	})
}

// WithDigest authenticates with a programmatic API key over HTTP Digest
// (realm "MMS Public API", MD5, qop=auth). The server's challenge is reused
// across calls, so a warm call costs one HTTP exchange. Exactly one of the
// four auth options (WithDigest, WithDigestSource, WithServiceAccount,
// WithServiceAccountSource) must be given.
func WithDigest(publicKey, privateKey string) Option {
	return optionFunc(func(s *settings) error {
		if publicKey == "" || privateKey == "" {
			return errors.New("atlas: WithDigest: public and private key must not be empty")
		}
		s.digest = staticCredentials(publicKey, privateKey)
		return nil
	})
}

// WithDigestSource authenticates like WithDigest with the API key that
// source returns (public key, private key) when the client answers a
// digest challenge: on the first call, when Atlas replaces an expired
// nonce, and when Atlas refuses the key. A refused request is resent once
// under the key source returns then, and once more if Atlas refuses that
// one too and source has meanwhile changed its answer. So a rotated key
// (a file a Kubernetes Secret mounts, say) is picked up at the next
// challenge, without a new Client; calls go on with the key in use until
// Atlas refuses it or its nonce expires. Default: none; exactly one of the
// four auth options must be given.
func WithDigestSource(source CredentialSource) Option {
	return optionFunc(func(s *settings) error {
		if source == nil {
			return errors.New("atlas: WithDigestSource: nil source")
		}
		s.digest = source
		return nil
	})
}

// WithServiceAccount authenticates as an Atlas service account with the
// OAuth 2.0 client-credentials flow at {base}/api/oauth/token. The access
// token is cached and renewed shortly before it expires (Atlas allows at most
// 100 live tokens per service account). Exactly one of the four auth
// options (WithDigest, WithDigestSource, WithServiceAccount,
// WithServiceAccountSource) must be given.
func WithServiceAccount(clientID, clientSecret string) Option {
	return optionFunc(func(s *settings) error {
		if clientID == "" || clientSecret == "" {
			return errors.New("atlas: WithServiceAccount: client id and secret must not be empty")
		}
		s.service = staticCredentials(clientID, clientSecret)
		return nil
	})
}

// WithServiceAccountSource authenticates like WithServiceAccount with the
// client id and secret that source returns whenever the client fetches a
// token: on the first call, shortly before the token expires, and when
// Atlas refuses the token. A token request refused with 401 is sent once
// more if source has meanwhile changed its answer. So a rotated secret (a
// file a Kubernetes Secret mounts, say) is picked up at the next token
// fetch, without a new Client. Default: none; exactly one of the four
// auth options must be given.
func WithServiceAccountSource(source CredentialSource) Option {
	return optionFunc(func(s *settings) error {
		if source == nil {
			return errors.New("atlas: WithServiceAccountSource: nil source")
		}
		s.service = source
		return nil
	})
}

// WithHTTPClient sets the HTTP client whose Transport, Timeout, Jar and
// CheckRedirect the Client builds on; the Client wraps a copy and never
// modifies c. Timeout bounds each attempt of a call (see RetryPolicy), from
// sending the request to reading the body, as http.Client bounds a request. Default: a client with a 30 s timeout and a transport tuned
// for hundreds of concurrent calls to one host (256 idle connections).
func WithHTTPClient(c *http.Client) Option {
	return optionFunc(func(s *settings) error {
		if c == nil {
			return errors.New("atlas: WithHTTPClient: nil client")
		}
		cp := *c
		s.httpClient = &cp
		return nil
	})
}

// WithUnencryptedHTTP2 makes the default transport speak HTTP/2 without
// TLS (h2c, with prior knowledge) to an http:// base URL, so that
// concurrent calls share a few connections, as they do with Atlas itself:
// Atlas is HTTPS, where HTTP/2 is negotiated without this option. The
// server must accept h2c (cmd/atlas-emulator does); one that speaks only
// HTTP/1.1 fails every call. NewClient refuses it with an https:// base
// URL or with WithHTTPClient (configure that client's transport instead).
// Default: off, HTTP/1.1 to an http:// base URL.
func WithUnencryptedHTTP2() Option {
	return optionFunc(func(s *settings) error {
		s.h2c = true
		return nil
	})
}

// WithUserAgent sets the User-Agent header. Default: DefaultUserAgent
// ("encryptiond/<Version>").
func WithUserAgent(ua string) Option {
	return optionFunc(func(s *settings) error {
		if ua == "" || strings.ContainsAny(ua, "\r\n") {
			return fmt.Errorf("atlas: WithUserAgent(%q): want a non-empty single line", ua)
		}
		s.userAgent = ua
		return nil
	})
}

// WithRetryPolicy sets how failed calls are retried. Default:
// DefaultRetryPolicy(). See RetryPolicy for what is retried.
func WithRetryPolicy(p RetryPolicy) Option {
	return optionFunc(func(s *settings) error {
		if err := p.validate(); err != nil {
			return err
		}
		s.retry = p
		return nil
	})
}

// WithObserver registers a function called once per HTTP exchange,
// including digest challenges, token requests and retries, for example to
// record metrics. It runs on the calling goroutine and must be safe for
// concurrent use and quick. Default: none.
func WithObserver(f func(Exchange)) Option {
	return optionFunc(func(s *settings) error {
		if f == nil {
			return errors.New("atlas: WithObserver: nil function")
		}
		s.observer = f
		return nil
	})
}

// Exchange describes one HTTP exchange with Atlas, as reported to the
// WithObserver function.
type Exchange struct {
	// Method is the HTTP method: "GET", "PATCH", "POST" (a private endpoint, or a token request) or "DELETE".
	Method string
	// Status is the HTTP status code, 0 if no response arrived.
	Status int
	// ErrorCode is Atlas's errorCode from an error body, if any.
	ErrorCode string
	// Duration is the time from sending the request to reading the response
	// headers (and, for errors, the bounded error body).
	Duration time.Duration
	// Attempt numbers the tries of one call, from 1. A digest challenge and
	// the request that answers it share an attempt.
	Attempt int
	// Err is the transport error when no response arrived.
	Err error
	// Auth is what the exchange says of the client's credentials.
	Auth AuthResult
}

// AuthResult is what an exchange says of the client's credentials.
type AuthResult string

const (
	// AuthNone: the exchange says nothing of them (no answer, a request to
	// another host, a service-account token Atlas refused, which the
	// client renews).
	AuthNone AuthResult = ""
	// AuthChallenge: a 401 digest challenge the client answers by signing
	// (its first request, or a nonce Atlas no longer accepts). Normal, not
	// a refusal.
	AuthChallenge AuthResult = "challenge"
	// AuthAccepted: Atlas accepted the credentials (any answer to a signed
	// request other than 401, or a token issued).
	AuthAccepted AuthResult = "accepted"
	// AuthRefused: Atlas refused the credentials: a signed request answered
	// 401 without a fresh nonce, or the service account refused at the
	// token endpoint.
	AuthRefused AuthResult = "refused"
)

// defaultHTTPClient returns the client used without WithHTTPClient; with
// h2c its transport speaks only HTTP/2 without TLS.
func defaultHTTPClient(h2c bool) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 256
	t.MaxIdleConnsPerHost = 256
	t.IdleConnTimeout = 90 * time.Second
	t.TLSHandshakeTimeout = 10 * time.Second
	t.ResponseHeaderTimeout = 30 * time.Second
	t.ForceAttemptHTTP2 = true
	if h2c {
		t.Protocols = new(http.Protocols)
		t.Protocols.SetUnencryptedHTTP2(true)
	}
	return &http.Client{Transport: t, Timeout: 30 * time.Second}
}
