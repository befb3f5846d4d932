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
// Every route comes from the proto's google.api.http options; today two
// paths per RPC:
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
// # How a request flows
//
//  1. handler.ServeHTTP removes the headers that must not reach gRPC,
//     refuses a body whose Content-Length is over the limit (413), and
//     hands the request to grpc-gateway's ServeMux through a recorder: the
//     ResponseWriter that notes the status, size, errorCode and whether the
//     gateway refused the request itself, for the one access-log record
//     ServeHTTP writes at the end.
//  2. The ServeMux routes. A path that matches no route, or a method the
//     path does not take, goes to handleRoutingError: 404 or 405.
//  3. The ServeMux's middleware, handler.check, runs with the matched route
//     (runtime.HTTPPattern). It refuses a query parameter the route does
//     not take, and reads the body (at most the limit) and refuses it
//     unless it is exactly the route's body message (checkBody). It then
//     hands on the request with only the route's own query parameters and
//     the body it checked.
//  4. grpc-gateway's generated handler decodes the request with
//     jsonMarshaler and calls the gRPC server through the client
//     connection; the answer is protojson, or on error handleError, which
//     writes the status in the shape of the path.
//  5. With pretty or envelope, the recorder held the answer; ServeHTTP
//     indents it or wraps it, whoever wrote it. Without them nothing is
//     held: the answer goes straight to the client.
//
// # What the gateway refuses itself
//
// grpc-gateway is lenient where this API must not be. The gateway refuses,
// before anything reaches gRPC:
//
//   - A query parameter the route does not take. Every route takes pretty
//     and envelope; a route also takes the fields of its request that are
//     neither in its path nor its body (validateOnly on PATCH), read from
//     the descriptors. Anything else is a 400 naming the parameter, because
//     grpc-gateway would ignore it and ?validateonly=true would then change
//     the configuration for real; a near miss gets a hint. A parameter
//     given twice, or with a value of the wrong kind (not true or false), is
//     a 400.
//   - A body that is not exactly one JSON object, with only fields of the
//     API (unknown fields are not discarded), each given once and of the
//     right JSON type, and at most one provider: 400. A body larger than the
//     limit (WithMaxBodyBytes, 1 MiB by default): 413.
//   - A path that matches no route (404) or a method the path does not take
//     (405).
//
// Refusal messages are written here, never taken from protojson: protojson
// quotes the offending value, and a value may be a secret, and its text is
// unstable on purpose. checkBody reads the body token by token against the
// descriptors, so that it can name the field at fault by its path
// (awsKms.secretAccessKey), the JSON kind it needs and, for syntax errors,
// the line and column; never a value. Should protojson still refuse a body
// checkBody passed, the refusal is a generic one.
//
// # Error shapes
//
// Every error, the service's or the gateway's own, takes the shape of the
// path it answers:
//
//   - /v1/...: AIP-193, {"error": {"code": <HTTP status>, "status":
//     "INVALID_ARGUMENT", "message": …, "details": [<google.rpc details with
//     @type>]}}, with the HTTP status of the gRPC code.
//   - /api/atlas/...: Atlas's ApiError (atlas.ErrorBody), {"error": <HTTP status>,
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
// The gateway's own refusals are built the same way, with package failure
// (ErrorInfo with domain "encryptiond" and one of the reasons INVALID_JSON,
// INVALID_ATTRIBUTE, INVALID_QUERY_PARAMETER, REQUEST_BODY_TOO_LARGE,
// RESOURCE_NOT_FOUND, METHOD_NOT_ALLOWED, INVALID_PATH; BadRequest when
// fields are named), so clients handle both alike. Error text is not
// HTML-escaped: a message reads "<vault>", not "\u003cvault\u003e".
//
// # pretty and envelope
//
// Both apply to every answer, success or error. pretty=true indents the JSON
// by two spaces (with a final newline); without it the JSON is compact.
// envelope=true answers HTTP 200 with {"status": <HTTP status>, "content":
// <body>}, as Atlas does for clients that cannot read status codes. Neither
// reaches grpc-gateway's query parser: the route's handler sees only the
// route's own parameters.
//
// # Headers
//
// Only X-Request-Id becomes gRPC metadata (x-request-id), besides the
// x-forwarded-host and x-forwarded-for that grpc-gateway adds itself; the
// latter is the client's own X-Forwarded-For entries, if any, followed by
// the connection's remote address, so only its last element is the
// gateway's word. Authorization is removed before the ServeMux, because
// grpc-gateway forwards it whatever the header matcher says and encryptiond
// authenticates callers by mutual TLS; Te and X-Http-Method-Override are
// removed too. Grpc-Timeout (e.g. "10S") sets a REST call's deadline, as
// grpc-gateway has it; a malformed one is refused with 400 INVALID_HEADER
// rather than quoted back. Of the service's response
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
// Only an answer that pretty or envelope rewrites is held in memory before
// it is written.
package gateway
