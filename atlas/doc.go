// Package atlas is a small client for MongoDB Atlas's Administration API,
// limited to what this service needs: reading and changing a project's
// Encryption at Rest using Customer Key Management (the encryptionAtRest
// resource) and its private endpoints (privateendpoints.go), and reading
// the projects the credentials can see (groups.go) and a project's
// clusters (clusters.go); all but encryptionAtRest are API v2 only.
// It is the only code that talks to Atlas.
//
// # Getting started
//
//	c, err := atlas.NewClient(
//		atlas.WithDigest(publicKey, privateKey), // or WithServiceAccount(clientID, secret)
//	)
//	cfg, err := c.GetEncryptionAtRest(ctx, groupID)
//
//	_, err = c.UpdateEncryptionAtRest(ctx, groupID, &atlas.EncryptionAtRest{
//		AWSKMS: &atlas.AWSKMSConfiguration{Region: ptr("EU_WEST_1")}, // only what changes
//	})
//
// Every field of the wire types is a pointer: a PATCH body carries exactly
// the fields that are set. Enabling a provider needs its whole document;
// once enabled, send only what changes; {Enabled: false} alone disables it.
// Atlas never returns secrets.
//
// # Errors
//
// Every answer from Atlas other than 2xx is an *Error carrying its status,
// errorCode, detail and rejected fields; use errors.As. Other failures wrap
// the cause, so errors.Is(err, context.DeadlineExceeded) works. Two
// sentinels tell what is known about an update that did not come back
// cleanly: ErrOutcomeUnknown (it may or may not have been applied) and
// ErrUpdateAppliedUnreadable (it was applied; the answer was unreadable).
// Error strings never contain request bodies, headers or credentials.
//
// # Authentication
//
// WithDigest signs requests with HTTP Digest and keeps the server's
// challenge: the first call pays for a 401 challenge, later calls cost one
// exchange each, and a nonce Atlas rejects (expired, or its count seen out of
// order under concurrency) is replaced and the request resent once,
// transparently. WithServiceAccount uses OAuth 2.0 client credentials and
// caches the token until shortly before it expires. Stats reports both.
//
// WithDigestSource and WithServiceAccountSource take a CredentialSource
// instead of fixed values: the client asks it again whenever it
// authenticates anew (a digest challenge, a token fetch), so that rotated
// credentials, such as a mounted Kubernetes Secret, are used without a new
// Client.
//
// # Retries
//
// Calls are retried with exponential backoff and jitter within a budget
// (10 s by default) and never past the context's deadline. A call that
// changes something (PATCH, POST, DELETE) is retried only when Atlas
// certainly did not apply it. See RetryPolicy.
//
// # Testing
//
// Package atlastest is an in-memory Atlas with fault injection; use it
// rather than mocks.
package atlas
