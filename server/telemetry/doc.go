// Package telemetry makes encryptiond observable: a gRPC stats handler
// (Calls) that logs every call and keeps the grpc_server_* metrics, panic
// recovery interceptors (UnaryRecovery, StreamRecovery), an HTTP access log
// (AccessLog), and the metrics an operator alerts on (NewMetrics): the last
// `valid` flag Atlas reported per project and provider, and every exchange
// with Atlas by method, status and errorCode.
//
// The call log and the gRPC metrics are a stats.Handler rather than
// interceptors because grpc-go ends some calls before any interceptor runs
// (a message over the size limit, an unknown method); the daemon makes
// those few reach its interceptors too where it can (an undecodable
// request), but the log and the metrics never depend on it. The logging is
// its own rather than go-grpc-middleware's logging interceptor for the same
// reason, and because it writes one record from an array on the stack.
//
// Nothing here ever logs a request or response message: those can carry
// secrets (secretAccessKey, secret, serviceAccountKey).
package telemetry
