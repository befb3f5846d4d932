// Package caller carries the identity of whoever called the service through a
// request's context: the authentication layer puts it there, and the audit
// log and authorization read it.
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
