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
// through the client connection, every gRPC stats handler (identity,
// logging, metrics) and interceptor (authorization, audit, recovery) runs
// for REST as it does for gRPC.
//
// # Routes
//
// Every route comes from the proto's google.api.http options: this
// service's own under /v1 (AIP-193 errors), and Atlas's own paths under
// /api/atlas/v1.0 and /api/atlas/v2 (Atlas's ApiError errors):
//
//	GET, PATCH  /v1/groups/{groupId}/encryptionAtRest
//	GET, POST   /v1/groups/{groupId}/encryptionAtRest/{cloudProvider}/privateEndpoints
//	GET, DELETE /v1/groups/{groupId}/encryptionAtRest/{cloudProvider}/privateEndpoints/{endpointId}
//	GET         /v1/groups/{groupId}/encryptionAtRest/{cloudProvider}/privateEndpoints/{endpointId}:watch   (a stream)
//	GET, PATCH  /api/atlas/v1.0/groups/{groupId}/encryptionAtRest
//	GET, PATCH  /api/atlas/v2/groups/{groupId}/encryptionAtRest
//	GET, POST   /api/atlas/v2/groups/{groupId}/encryptionAtRest/{cloudProvider}/privateEndpoints
//	GET, DELETE /api/atlas/v2/groups/{groupId}/encryptionAtRest/{cloudProvider}/privateEndpoints/{endpointId}
//
// A PATCH body is the request's config field, spelled as Atlas spells it
// ({"awsKms": {"customerMasterKeyID": …}}), and a POST body the new private
// endpoint ({"regionName": "US_EAST_1"}), so an Atlas body works
// unchanged. Answers are protojson with the same spelling; unpopulated
// fields are left out (the service always sets enabled and valid). Enum
// path variables ({cloudProvider}) take the enum's value names, as Atlas
// spells them: AWS, AZURE.
//
// # Atlas's v2 paths
//
// On /api/atlas/v2 the gateway answers as Atlas does (atlasv2.go), so that
// Atlas's documented curl calls work against encryptiond by changing only
// the host: Content-Type application/vnd.atlas.2023-01-01+json or
// application/json; the versioned media type in the answer when Accept asks
// for it; 406 INVALID_VERSION_DATE when Accept (or Content-Type) names only
// an Atlas version this service does not speak; 202 for a create and 204,
// without a body, for a delete; a list as Atlas's page, {"links": […],
// "results": […], "totalCount": n}, paged with itemsPerPage, pageNum and
// includeCount. Everything is done on grpc-gateway's terms: the route table
// knows which bindings are Atlas's v2 ones (from their path) and which of
// them page (their RPC has AIP-158's page_size and page_token); a
// ForwardResponseOption writes the status and media type, a
// ForwardResponseRewriter the page, and check the query translation.
//
// # Streams
//
// A server-streaming RPC (the :watch route) is answered as grpc-gateway
// answers one: newline-delimited JSON, one {"result": <message>} per line,
// flushed as it comes, and, if the stream fails, a last {"error": …} line
// in AIP-193's shape (stream.go). An error before the first message gets
// its own HTTP status, so it reads as the same error of a unary call. The
// HTTP server's read and write deadlines are lifted for a stream, which
// lasts as long as the client, its deadline and the service let it.
//
// # How a request flows
//
//  1. handler.ServeHTTP removes the headers that must not reach gRPC,
//     refuses a body whose Content-Length is over the limit (413), and
//     hands the request to grpc-gateway's ServeMux through a recorder: the
//     ResponseWriter that notes the status, size, errorCode and whether the
//     gateway refused the request itself, for the one access-log record
//     ServeHTTP writes at the end. On Atlas's v2 paths it first negotiates
//     the media types: a version this service does not speak is refused
//     (406); whether the answer takes the versioned media type is noted in
//     the request's exchange, which carries what the answer needs to know
//     to the steps below.
//  2. The ServeMux routes. A path that matches no route, or a method the
//     path does not take, goes to handleRoutingError: 404 or 405.
//  3. The ServeMux's middleware, handler.check, runs with the matched route
//     (runtime.HTTPPattern). It refuses an enum path variable not spelled
//     as a value name, a query parameter the route does not take (on a
//     stream, pretty and envelope too), and reads the body (at most the
//     limit) and refuses it unless it is exactly the route's body message
//     (checkBody). It then hands on the request with only the route's own
//     query parameters (Atlas's itemsPerPage and pageNum turned into the
//     RPC's pageSize and pageToken) and the body it checked; for a stream
//     it lifts the HTTP server's deadlines.
//  4. grpc-gateway's generated handler decodes the request with
//     jsonMarshaler and calls the gRPC server through the client
//     connection. A unary answer passes atlasAnswer (Atlas's status and
//     media type on its v2 paths) and rewrite (Atlas's page for a list on
//     its v2 paths) and is written as protojson; a stream's messages are
//     written and flushed one line each; on error handleError (before an
//     answer) or streamError (during a stream) writes the status in the
//     shape of the path.
//  5. With pretty or envelope, the recorder held the answer; ServeHTTP
//     indents it or wraps it, whoever wrote it (an Atlas page is its own
//     envelope: it gains a "status"). Without them nothing is held: the
//     answer goes straight to the client, flushed when the handler flushes.
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
// Both apply to every answer, success or error, but a stream's. pretty=true
// indents the JSON by two spaces (with a final newline); without it the
// JSON is compact. envelope=true answers HTTP 200 with {"status": <HTTP
// status>, "content": <body>}, as Atlas does for clients that cannot read
// status codes; an Atlas page is its own envelope, as Atlas's lists are:
// it gains "status". A 204 has no body, so its content is null. Neither
// reaches grpc-gateway's query parser: the route's handler sees only the
// route's own parameters. On a stream both are refused: a stream is one
// JSON document per line, and neither applies to it.
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
// (and audited) by the gRPC server's stats handlers and interceptors.
//
// Only an answer that pretty or envelope rewrites is held in memory before
// it is written. A stream's access record is written when it ends.
package gateway
