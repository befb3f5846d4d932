// Package gateway serves EncryptionService over REST: grpc-gateway's
// ServeMux, calling the gRPC server through a client connection, behind a
// handler that makes REST as strict and as safe as gRPC.
//
// Start with New. The daemon dials its own gRPC server through an
// in-process, in-memory connection (grpc.NewClient on
// passthrough:///encryptiond-internal with a bufconn dialer; see package
// daemon), passes the connection to New, and mounts the returned handler on
// its HTTP server; OpenAPIHandler serves the API's
// description beside it at /openapi.json. Because every REST call goes
// through the client connection, every gRPC interceptor (authentication,
// audit, logging, metrics, recovery) runs for REST as it does for gRPC.
//
// # Routes
//
// Two paths per RPC, both from the proto's google.api.http options:
//
//	GET   /v1/groups/{groupId}/encryptionAtRest               (AIP-193 errors)
//	PATCH /v1/groups/{groupId}/encryptionAtRest
//	GET   /api/atlas/v1.0/groups/{groupId}/encryptionAtRest   (Atlas ApiError errors)
//	PATCH /api/atlas/v1.0/groups/{groupId}/encryptionAtRest
//
// A PATCH body is the request's config field, spelled as Atlas spells it
// ({"awsKms": {"customerMasterKeyID": …}}), so an Atlas body works
// unchanged. Answers are protojson with the same spelling; unpopulated
// fields are left out (the service always sets enabled and valid).
//
// # What the gateway refuses itself
//
// grpc-gateway is lenient where this API must not be. The handler refuses,
// before anything reaches gRPC:
//
//   - A query parameter that is not allowed: every route accepts pretty and
//     envelope; PATCH also validateOnly. Anything else is a 400 naming the
//     parameter, because grpc-gateway would ignore it and ?validateonly=true
//     would then change the configuration for real. The proto spelling
//     validate_only is refused too, with a hint, so that one request cannot
//     say two things. A parameter given twice, or with a value other than
//     true or false, is a 400.
//   - A body that is not exactly one JSON object, with only fields of the
//     API (unknown fields are not discarded), each of the right JSON type,
//     and at most one provider: 400. A body larger than the limit
//     (WithMaxBodyBytes, 1 MiB by default): 413.
//   - A path that matches no route (404) or a method the path does not take
//     (405).
//
// Refusal messages are written here, not taken from protojson: protojson
// quotes the offending value, and a value may be a secret. A refusal names
// the field (awsKms.secretAccessKey), the JSON kind it needs and, for
// syntax errors, the line and column; never a value.
//
// # Error shapes
//
// Every error, the service's or the gateway's own, takes the shape of the
// path it answers:
//
//   - /v1/...: AIP-193, {"error": {"code": <HTTP status>, "status":
//     "INVALID_ARGUMENT", "message": …, "details": [<google.rpc details with
//     @type>]}}, with the HTTP status of the gRPC code.
//   - /api/atlas/v1.0/...: Atlas's ApiError, {"error": <HTTP status>,
//     "errorCode": …, "detail": …, "reason": "Conflict", "parameters": […],
//     "badRequestDetail": {"fields": [{"field", "description"}]}}, with the
//     HTTP status Atlas used or would have used, so that an Atlas client's
//     error handling works unchanged.
//
// The service's contract makes the Atlas shape possible: every status it
// returns carries a google.rpc.ErrorInfo whose reason is the errorCode and
// whose metadata.httpStatus is Atlas's status (409 for
// CANNOT_DISABLE_ENCRYPTION_AT_REST, where the gRPC code alone says 400),
// and validation failures carry a google.rpc.BadRequest whose field paths
// are in proto form (config.azure_key_vault.client_id). On the Atlas path
// those become Atlas's JSON paths (azureKeyVault.clientID), read from the
// proto descriptors. Without ErrorInfo the errorCode is the gRPC code's name
// (UNAVAILABLE). A google.rpc.RetryInfo becomes a Retry-After header, in
// whole seconds rounded up, on 429 and 503.
//
// The gateway's own refusals are built the same way (ErrorInfo with domain
// "encryptiond" and one of the reasons INVALID_JSON, INVALID_ATTRIBUTE,
// INVALID_QUERY_PARAMETER, REQUEST_BODY_TOO_LARGE, RESOURCE_NOT_FOUND,
// METHOD_NOT_ALLOWED, INVALID_PATH; BadRequest when fields are named), so
// clients handle both alike.
//
// # pretty and envelope
//
// Both apply to every answer, success or error. pretty=true indents the JSON
// by two spaces (with a final newline); without it the JSON is compact.
// envelope=true answers HTTP 200 with {"status": <HTTP status>, "content":
// <body>}, as Atlas does for clients that cannot read status codes. Neither
// reaches grpc-gateway's query parser: the ServeMux sees only validateOnly.
//
// # Headers
//
// Only X-Request-Id becomes gRPC metadata (x-request-id), besides the
// x-forwarded-host and x-forwarded-for that grpc-gateway adds itself; the
// latter is the client's own X-Forwarded-For entries, if any, followed by
// the connection's remote address, so only its last element is the
// gateway's word. Authorization is removed before the ServeMux, because
// grpc-gateway forwards it whatever the header matcher says and encryptiond
// authenticates callers by mutual TLS; Grpc-Timeout, Te and
// X-Http-Method-Override are removed too. Of the service's response
// metadata only x-request-id reaches the HTTP response; no Grpc-Metadata-*
// headers or trailers are written.
//
// # Access log
//
// The handler writes one record per request, message "http request", to the
// logger of WithLogger: method, path (never the query string), status (the
// answer's own, also under an envelope), duration, bytes, remote_addr,
// refused_by_gateway (true when the request never reached gRPC, which then
// logs nothing of it), error_code when the answer is an error, envelope when
// asked, and request_id when the client sent one. Never a body, a query
// value or a credential header. Requests that do reach gRPC are also logged
// (and audited) by the gRPC interceptors.
//
// Answers are buffered whole before they are written, so that pretty and
// envelope can apply to them; this API's answers are small and nothing
// streams.
package gateway
