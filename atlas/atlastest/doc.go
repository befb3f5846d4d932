// Package atlastest is an in-memory MongoDB Atlas for tests, benchmarks and
// local runs: it serves Atlas's encryptionAtRest resource and the
// authentication in front of it, applies Atlas's update rules, and can be
// made to misbehave on purpose.
//
// Start with NewServer in a test:
//
//	emu, srv := atlastest.NewServer(t, atlastest.EmulatorConfig{
//		PublicKey: "pub", PrivateKey: "priv", AutoCreateGroups: true,
//	})
//	c, err := atlas.NewClient(atlas.WithBaseURL(srv.URL), atlas.WithDigest("pub", "priv"))
//
// or run cmd/atlas-emulator for a separate process.
//
// # What it serves
//
//   - GET and PATCH /api/atlas/v2/groups/{groupId}/encryptionAtRest, which
//     require Accept: application/vnd.atlas.2023-01-01+json (406 otherwise),
//     and the same under /api/atlas/v1.0 with application/json. AWS roleId
//     is write-only in v2 and returned in v1.0.
//   - GET and POST (202) /api/atlas/v2/groups/{groupId}/encryptionAtRest/{AWS|AZURE}/privateEndpoints,
//     GET and DELETE (204) …/privateEndpoints/{endpointId}: private
//     endpoints for encryption at rest, paginated (itemsPerPage, pageNum,
//     includeCount, links), with Atlas's lifecycle on EmulatorConfig.Now:
//     INITIATING for PrivateEndpointDelay, then ACTIVE (AWS) or
//     PENDING_ACCEPTANCE until approved (Azure); FAILED on request;
//     DELETING for PrivateEndpointDelay after a DELETE, then 404. See
//     privateendpoints.go.
//   - The query parameters pretty=true (indented JSON) and envelope=true
//     (200 with {"status": <status>, "content": <body>}).
//   - HTTP Digest with the configured API key: realm "MMS Public API", MD5,
//     qop=auth, a real 401 challenge with WWW-Authenticate, 401 stale=true
//     for a correctly signed request with an expired or unknown nonce (and,
//     with StrictNonceCount, a nonce count that did not increase).
//   - POST /api/oauth/token: client credentials with HTTP Basic
//     clientId:clientSecret and grant_type=client_credentials, answering
//     {access_token, token_type "Bearer", expires_in}; at most 100 live
//     tokens (403 beyond). Bearer tokens are accepted on the resource.
//
// Responses always carry all three provider documents (enabled and valid
// false when not configured) and enabledForSearchNodes; never a secret.
// Errors are Atlas's ApiError JSON with badRequestDetail.fields for
// validation failures. The update rules are documented in rules.go.
//
// # Test hooks
//
// In Go: AddGroup, AddProject, Configure, SetLatency, InjectFault,
// SetFaultRate, ClearFaults, ExpireNonces, SetKeyValid, SetProviderInUse,
// RoleUsableAfter, Stats, Calls, ResetStats, Requests, ResetRecords, State,
// ApprovePrivateEndpoint, FailPrivateEndpoint, PrivateEndpoints, and
// Snapshot and Restore (the projects' state, for cmd/atlas-emulator
// -state). EmulatorConfig.Now moves role propagation and the private
// endpoints' lifecycles on a clock the test controls, such as a Clock.
//
// Requests returns the last MaxRecordedRequests authenticated requests to
// the resource, bodies (and so any secrets in them) included.
//
// Over HTTP, unauthenticated and not counted in Stats, for an emulator in
// another process (anyone who can reach the emulator can use them, and
// GET /_emulator/requests hands out the recorded bodies; a program that
// embeds the emulator turns them off with EmulatorConfig.DisableControl, and
// recording with DisableRecording):
//
//	GET    /_emulator/stats                          EmulatorStats as JSON
//	GET    /_emulator/calls                          Calls as JSON
//	POST   /_emulator/reset-stats                    zero counters, forget requests
//	GET    /_emulator/requests                       recorded requests as JSON
//	POST   /_emulator/faults                         body: a Fault as JSON, retryAfter as "2s"
//	DELETE /_emulator/faults                         drop faults and the fault rate
//	POST   /_emulator/latency?d=100ms                latency per exchange
//	POST   /_emulator/fault-rate?rate=0.05&statuses=500,503
//	POST   /_emulator/expire-nonces                  make every nonce stale
//	POST   /_emulator/groups?id=<24 hex>&name=<name> create a project
//	POST   /_emulator/key-valid?group=<id>&provider=awsKms&valid=false
//	POST   /_emulator/provider-in-use?group=<id>&provider=awsKms&inUse=true
//	GET    /_emulator/state?group=<id>               what a v2 GET would answer
//	POST   /_emulator/private-endpoints/approve?group=<id>&id=<endpoint id>
//	POST   /_emulator/private-endpoints/fail?group=<id>&id=<endpoint id>&message=<errorMessage>
//
// For example:
//
//	curl -X POST localhost:8090/_emulator/faults -d '{"status":429,"retryAfter":"2s","times":3}'
package atlastest
