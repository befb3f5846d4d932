// Package telemetry makes encryptiond observable: gRPC interceptors for
// structured logging (UnaryLogging, StreamLogging), panic recovery
// (UnaryRecovery, StreamRecovery) and Prometheus metrics (NewMetrics, then
// Metrics.UnaryServerInterceptor and Metrics.StreamServerInterceptor), an
// HTTP access log (AccessLog), and the metrics an operator alerts on: the
// last `valid` flag Atlas reported per project and provider, and every
// exchange with Atlas by method, status and errorCode.
//
// Nothing here ever logs a request or response message: those can carry
// secrets (secretAccessKey, secret, serviceAccountKey).
package telemetry
