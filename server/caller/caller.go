// Package caller carries the identity of whoever called the service through a
// request's context: the authentication layer puts it there, and the audit
// log and authorization read it. For a REST call it also carries the HTTP
// client's address, which the call log reads.
package caller

import "context"

// Anonymous is the identity of a caller that presented no credentials, as
// when mutual TLS is off.
const Anonymous = "anonymous"

type contextKey struct{}

// NewContext returns a copy of ctx that carries identity.
func NewContext(ctx context.Context, identity string) context.Context {
	return context.WithValue(ctx, contextKey{}, identity)
}

// FromContext returns the identity carried by ctx, or Anonymous.
func FromContext(ctx context.Context) string {
	if id, ok := ctx.Value(contextKey{}).(string); ok && id != "" {
		return id
	}
	return Anonymous
}

type forwardedKey struct{}

// NewForwardedContext returns a copy of ctx that carries addr: the network
// address of the HTTP client on whose behalf this process's own REST
// gateway made the call, as the gateway's HTTP server saw it. Only code that
// knows the call came from that gateway should set it.
func NewForwardedContext(ctx context.Context, addr string) context.Context {
	return context.WithValue(ctx, forwardedKey{}, addr)
}

// ForwardedFor returns the address NewForwardedContext put in ctx, or ""
// for a call that did not come through the REST gateway.
func ForwardedFor(ctx context.Context) string {
	addr, _ := ctx.Value(forwardedKey{}).(string)
	return addr
}
