package atlastest

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	mrand "math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/icholy/digest"

	"github.com/encryptiond/encryptiond/atlas"
)

// Realm is the digest realm Atlas uses.
const Realm = "MMS Public API"

// The media types the emulator speaks.
const (
	MediaTypeV2   = "application/vnd.atlas.2023-01-01+json"
	MediaTypeJSON = "application/json"
)

// Provider names, as used by SetKeyValid and SetProviderInUse: the JSON
// names of the provider documents.
const (
	ProviderAWS   = "awsKms"
	ProviderAzure = "azureKeyVault"
	ProviderGCP   = "googleCloudKms"
)

// maxRequestBody bounds a PATCH body the emulator reads.
const maxRequestBody = 1 << 20

// maxTokens is Atlas's limit of live access tokens per service account.
const maxTokens = 100

// MaxRecordedRequests is how many requests the emulator remembers for
// Requests: the most recent ones, so that a long run does not hold every
// request body it ever received.
const MaxRecordedRequests = 1000

// EmulatorConfig configures an Emulator. The zero value accepts no
// credentials at all; set a key pair, a service account, or both.
type EmulatorConfig struct {
	// PublicKey and PrivateKey are the programmatic API key accepted with
	// HTTP Digest. Digest auth is refused when PublicKey is empty.
	PublicKey, PrivateKey string
	// ClientID and ClientSecret are the service account accepted at
	// POST /api/oauth/token. The token endpoint refuses everything when
	// ClientID is empty.
	ClientID, ClientSecret string
	// AutoCreateGroups makes every well-formed group id exist; otherwise only
	// ids given to AddGroup do, and others get 404 GROUP_NOT_FOUND.
	AutoCreateGroups bool
	// NonceLifetime is how long an issued digest nonce stays valid; a request
	// with an older nonce gets 401 with stale=true. 0 means nonces never
	// expire (ExpireNonces still expires them).
	NonceLifetime time.Duration
	// StrictNonceCount refuses, with 401 stale=true, a request whose nonce
	// count (nc) is not greater than every count already seen with its nonce,
	// as a server strict about replays would.
	StrictNonceCount bool
	// TokenLifetime is the lifetime of issued access tokens, announced as
	// expires_in (whole seconds, at least 1). 0 means one hour, as Atlas.
	TokenLifetime time.Duration
	// DisableRecording stops the emulator from recording requests: Requests
	// then always returns nothing. Recorded requests include their bodies,
	// which may carry secrets; a program that embeds the emulator rather
	// than a test that inspects it should set this. Default false: the last
	// MaxRecordedRequests requests are recorded.
	DisableRecording bool
	// MaxItemsPerPage caps the items of a page of a list below Atlas's 500,
	// so that a test can see pagination with a few items. 0 means 500.
	MaxItemsPerPage int
	// Now is the emulator's clock: the delays of RoleUsableAfter and the
	// lifecycles of private endpoints (see PrivateEndpointDelay) run on it;
	// tests pass a fake clock's Now to move them without waiting. Digest
	// nonces and access tokens keep wall-clock time. Default: time.Now.
	Now func() time.Time
	// PrivateEndpointDelay is how long a new private endpoint stays
	// INITIATING, and a deleted one DELETING, on the Now clock. Default 0:
	// DefaultPrivateEndpointDelay.
	PrivateEndpointDelay time.Duration
	// DisableControl stops the emulator from serving the unauthenticated
	// /_emulator/ control endpoints: they answer 404 like any unknown path.
	// A program that embeds the emulator should set this, so that no other
	// local process can reconfigure it or read what it recorded. Default
	// false: the control endpoints are served.
	DisableControl bool
}

// Emulator is an in-memory MongoDB Atlas serving the encryptionAtRest
// resource and its authentication. It is an http.Handler; see the package
// documentation for what it serves. It is safe for concurrent use.
type Emulator struct {
	cfg EmulatorConfig

	mu         sync.Mutex
	groups     map[string]*group
	pe         privateEndpointStore
	nonces     map[string]*nonceState
	tokens     map[string]time.Time // access token → expiry
	faults     []*pendingFault
	faultRate  float64
	faultCodes []int
	latency    time.Duration
	stats      EmulatorStats
	calls      map[string]int64 // see Calls
	roles      map[string]*pendingRole
	// records is a ring of the last MaxRecordedRequests requests; once it
	// is full, next is the index of the oldest, the one overwritten next.
	records []RecordedRequest
	next    int
}

// nonceState is what the emulator remembers about an issued nonce.
type nonceState struct {
	issued time.Time
	maxNC  int
}

// EmulatorStats counts what the emulator has seen since it started or since
// ResetStats. Control-endpoint requests are not counted.
type EmulatorStats struct {
	// Requests is every HTTP exchange: token, resource and unknown paths.
	Requests int64 `json:"requests"`
	// Challenges is the number of 401 answers carrying a digest challenge.
	Challenges int64 `json:"challenges"`
	// StaleNonces is how many of those had stale=true: a correctly signed
	// request with an expired, unknown or (StrictNonceCount) reordered nonce.
	StaleNonces int64 `json:"staleNonces"`
	// Unauthorized is the number of 401 answers to wrong credentials,
	// digest or bearer, and to requests without any.
	Unauthorized int64 `json:"unauthorized"`
	// Gets and Patches count authenticated requests to the encryptionAtRest
	// resource.
	Gets    int64 `json:"gets"`
	Patches int64 `json:"patches"`
	// Tokens is the number of access tokens issued.
	Tokens int64 `json:"tokens"`
	// Faults is the number of requests answered by an injected fault.
	Faults int64 `json:"faults"`
}

// RecordedRequest is an authenticated request to the encryptionAtRest
// resource, as the emulator received it.
type RecordedRequest struct {
	Method      string `json:"method"`
	Path        string `json:"path"`
	Query       string `json:"query"`
	ContentType string `json:"contentType"`
	Accept      string `json:"accept"`
	Body        []byte `json:"body"`
}

// NewEmulator returns an Emulator with no groups, no faults and no latency.
func NewEmulator(cfg EmulatorConfig) *Emulator {
	return &Emulator{
		cfg:    cfg,
		groups: map[string]*group{},
		nonces: map[string]*nonceState{},
		tokens: map[string]time.Time{},
		calls:  map[string]int64{},
		roles:  map[string]*pendingRole{},
		pe:     privateEndpointStore{byGroup: map[string][]*endpointState{}},
	}
}

// TB is the part of testing.TB that NewServer uses. It is declared here so
// that this package does not link the testing package into binaries that
// embed the emulator (encryptiond -dev).
type TB interface {
	Helper()
	Cleanup(func())
}

// NewServer starts an Emulator on an httptest.Server bound to 127.0.0.1 and
// closes it when the test ends. t is usually a *testing.T.
func NewServer(t TB, cfg EmulatorConfig) (*Emulator, *httptest.Server) {
	t.Helper()
	e := NewEmulator(cfg)
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	return e, srv
}

// AddGroup makes the project id exist.
func (e *Emulator) AddGroup(id string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.groupLocked(id, true).exists = true
}

// SetLatency delays every later exchange (except control requests) by d.
func (e *Emulator) SetLatency(d time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.latency = max(d, 0)
}

// ExpireNonces makes every digest nonce issued so far stale: the next signed
// request gets 401 with stale=true and a fresh challenge.
func (e *Emulator) ExpireNonces() {
	e.mu.Lock()
	defer e.mu.Unlock()
	clear(e.nonces)
}

// SetKeyValid marks the key of provider (ProviderAWS, ProviderAzure or
// ProviderGCP) in groupID as working or not; it shows as the provider's
// "valid" flag while the provider is enabled. Keys are valid by default.
// Unknown provider names are ignored.
func (e *Emulator) SetKeyValid(groupID, provider string, valid bool) {
	if !knownProvider(provider) {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.groupLocked(groupID, true).invalid[provider] = !valid
}

// Configure applies update to groupID as a PATCH would, under the same
// rules, creating the project if need be; for tests and -dev to start from
// a configured project. It returns Atlas's refusal as an error, if any.
func (e *Emulator) Configure(groupID string, update atlas.EncryptionAtRest) error {
	body, err := json.Marshal(update)
	if err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	g := e.groupLocked(groupID, true)
	g.exists = true
	if aerr := g.patch(body, e.roleUsableLocked); aerr != nil {
		return fmt.Errorf("atlastest: Configure: %d %s: %s", aerr.Error, aerr.ErrorCode, aerr.Detail)
	}
	return nil
}

// Plus returns the counters of s and o together, for a run that adds up
// the counters of several emulators or intervals.
func (s EmulatorStats) Plus(o EmulatorStats) EmulatorStats {
	s.Requests += o.Requests
	s.Challenges += o.Challenges
	s.StaleNonces += o.StaleNonces
	s.Unauthorized += o.Unauthorized
	s.Gets += o.Gets
	s.Patches += o.Patches
	s.Tokens += o.Tokens
	s.Faults += o.Faults
	return s
}

// Stats returns the counters.
func (e *Emulator) Stats() EmulatorStats {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.stats
	s.Gets, s.Patches = e.calls["GET "+resourceEncryptionAtRest], e.calls["PATCH "+resourceEncryptionAtRest]
	return s
}

// Calls counts the authenticated requests to every resource since the
// emulator started or since ResetStats, by method and resource: "GET
// encryptionAtRest", "GET clusters", …. The map is the caller's.
func (e *Emulator) Calls() map[string]int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return maps.Clone(e.calls)
}

// ResetStats zeroes the counters and forgets the recorded requests.
func (e *Emulator) ResetStats() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.stats = EmulatorStats{}
	clear(e.calls)
	e.records, e.next = nil, 0
}

// Requests returns the recorded requests, oldest first: the last
// MaxRecordedRequests authenticated requests to the resource, bodies
// included, since the emulator started or since ResetStats or ResetRecords.
// It returns nothing when EmulatorConfig.DisableRecording is set.
func (e *Emulator) Requests() []RecordedRequest {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]RecordedRequest, len(e.records))
	for i := range out {
		r := e.records[(e.next+i)%len(e.records)]
		r.Body = append([]byte(nil), r.Body...)
		out[i] = r
	}
	return out
}

// ResetRecords forgets the recorded requests.
func (e *Emulator) ResetRecords() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.records, e.next = nil, 0
}

// recordLocked remembers r, dropping the oldest record when
// MaxRecordedRequests are already kept.
func (e *Emulator) recordLocked(r RecordedRequest) {
	if e.cfg.DisableRecording {
		return
	}
	if len(e.records) < MaxRecordedRequests {
		e.records = append(e.records, r)
		return
	}
	e.records[e.next] = r
	e.next = (e.next + 1) % MaxRecordedRequests
}

// State returns what a v2 GET of groupID would answer, whether or not the
// group exists.
func (e *Emulator) State(groupID string) atlas.EncryptionAtRest {
	e.mu.Lock()
	defer e.mu.Unlock()
	if g := e.groups[groupID]; g != nil {
		return g.view(true)
	}
	return newGroup().view(true)
}

// groupLocked returns the group, creating it if create is set.
func (e *Emulator) groupLocked(id string, create bool) *group {
	g := e.groups[id]
	if g == nil && create {
		g = newGroup()
		e.groups[id] = g
	}
	return g
}

// ServeHTTP serves the Atlas API and, unless EmulatorConfig.DisableControl
// is set, the control endpoints.
func (e *Emulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !e.cfg.DisableControl && strings.HasPrefix(r.URL.Path, controlPrefix) {
		e.serveControl(w, r)
		return
	}
	e.mu.Lock()
	e.stats.Requests++
	latency := e.latency
	e.mu.Unlock()
	if latency > 0 {
		t := time.NewTimer(latency)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	if r.URL.Path == "/api/oauth/token" {
		e.serveToken(w, r)
		return
	}
	rt, req, ok := matchRoute(r)
	if !ok {
		writeError(w, r, errorBody(http.StatusNotFound, "RESOURCE_NOT_FOUND", "Cannot find resource "+sanitizePath(r.URL.Path)+"."))
		return
	}
	e.serveAPI(w, r, rt, req)
}

// apiRequest is an authenticated request to one of the routes.
type apiRequest struct {
	method string
	v2     bool              // the path is under /api/atlas/v2
	params map[string]string // the path's variables: groupId, …
	query  url.Values
	body   []byte
	base   string // scheme and host the request was sent to, for links
	path   string // the request's path, for links
}

// route is one Atlas resource the emulator serves.
type route struct {
	// name is the resource, for Calls and Fault.Resource:
	// "encryptionAtRest".
	name string
	// pattern is the path after /api/atlas/{version}/, a segment each;
	// "{name}" captures the segment as params[name].
	pattern []string
	// v2Only routes answer 404 under /api/atlas/v1.0.
	v2Only bool
	// serve answers the request with an HTTP status and a document to
	// write as JSON: an *atlas.ErrorBody for an error, nil for no body.
	serve func(e *Emulator, req *apiRequest) (int, any)
}

// resourceEncryptionAtRest is the encryptionAtRest resource's name in
// Calls, Fault.Resource and EmulatorStats.
const resourceEncryptionAtRest = "encryptionAtRest"

// routes are the resources the emulator serves, besides the token endpoint
// and the control endpoints.
var routes = []route{
	{name: resourceEncryptionAtRest, pattern: []string{"groups", "{groupId}", "encryptionAtRest"}, serve: (*Emulator).serveEncryptionAtRest},
	{name: "clusters", pattern: []string{"groups", "{groupId}", "clusters"}, v2Only: true, serve: (*Emulator).serveClusters},
	{name: "groups", pattern: []string{"groups"}, v2Only: true, serve: (*Emulator).serveGroups},
	{name: "privateEndpoints", pattern: []string{"groups", "{groupId}", "encryptionAtRest", "{cloudProvider}", "privateEndpoints"}, v2Only: true, serve: (*Emulator).servePrivateEndpoints},
	{name: "privateEndpoint", pattern: []string{"groups", "{groupId}", "encryptionAtRest", "{cloudProvider}", "privateEndpoints", "{endpointId}"}, v2Only: true, serve: (*Emulator).servePrivateEndpoint},
}

// matchRoute finds the route of /api/atlas/{v2|v1.0}/….
func matchRoute(r *http.Request) (*route, *apiRequest, bool) {
	rest, ok := strings.CutPrefix(r.URL.Path, "/api/atlas/")
	if !ok {
		return nil, nil, false
	}
	segs := strings.Split(rest, "/")
	req := &apiRequest{method: r.Method, query: r.URL.Query(), base: "http://" + r.Host, path: r.URL.Path}
	if r.TLS != nil {
		req.base = "https://" + r.Host
	}
	switch segs[0] {
	case "v2":
		req.v2 = true
	case "v1.0":
	default:
		return nil, nil, false
	}
	segs = segs[1:]
	for i := range routes {
		rt := &routes[i]
		if len(rt.pattern) != len(segs) || rt.v2Only && !req.v2 {
			continue
		}
		if !slices.EqualFunc(rt.pattern, segs, func(p, seg string) bool { return strings.HasPrefix(p, "{") || p == seg }) {
			continue
		}
		req.params = map[string]string{}
		for j, p := range rt.pattern {
			if name, ok := strings.CutPrefix(p, "{"); ok {
				req.params[strings.TrimSuffix(name, "}")] = segs[j]
			}
		}
		return rt, req, true
	}
	return nil, nil, false
}

// serveAPI authenticates a request to rt, checks its media type, records
// it, counts it, and answers it: with an injected fault, or as Atlas would.
func (e *Emulator) serveAPI(w http.ResponseWriter, r *http.Request, rt *route, req *apiRequest) {
	if !e.authenticate(w, r, req.v2) {
		return
	}
	if req.v2 && !acceptsV2(r.Header.Values("Accept")) {
		writeError(w, r, errorBody(http.StatusNotAcceptable, "INVALID_VERSION_DATE", "Invalid accept header or version date: this resource requires Accept: "+MediaTypeV2+"."))
		return
	}
	if r.Body != nil {
		b, err := io.ReadAll(io.LimitReader(r.Body, maxRequestBody+1))
		if err != nil {
			return // the client went away
		}
		req.body = b
	}
	e.mu.Lock()
	e.recordLocked(RecordedRequest{
		Method:      r.Method,
		Path:        r.URL.Path,
		Query:       r.URL.RawQuery,
		ContentType: r.Header.Get("Content-Type"),
		Accept:      r.Header.Get("Accept"),
		Body:        req.body,
	})
	e.calls[r.Method+" "+rt.name]++
	f := e.takeFaultLocked(r.Method, rt.name, req.params["groupId"])
	e.mu.Unlock()

	if f != nil && f.preempts() {
		f.serveInstead(w, r, req.v2)
		return
	}
	status, doc := rt.serve(e, req)
	if f != nil {
		f.serveAfter(w, req.v2, doc)
		return
	}
	if aerr, ok := doc.(*atlas.ErrorBody); ok {
		writeError(w, r, aerr)
		return
	}
	if doc == nil {
		w.WriteHeader(status)
		return
	}
	writeJSON(w, r, status, mediaType(req.v2), doc)
}

// serveEncryptionAtRest applies one request to a project's encryptionAtRest.
func (e *Emulator) serveEncryptionAtRest(req *apiRequest) (int, any) {
	e.mu.Lock()
	defer e.mu.Unlock()
	g, aerr := e.existingGroupLocked(req.params["groupId"])
	if aerr != nil {
		return aerr.Error, aerr
	}
	switch req.method {
	case http.MethodGet:
		return http.StatusOK, g.view(req.v2)
	case http.MethodPatch:
		if len(req.body) > maxRequestBody {
			return http.StatusBadRequest, errorBody(http.StatusBadRequest, "INVALID_JSON", "Received JSON is too large.")
		}
		if aerr := g.patch(req.body, e.roleUsableLocked); aerr != nil {
			return aerr.Error, aerr
		}
		return http.StatusOK, g.view(req.v2)
	}
	return methodNotAllowed(req.method)
}

// existingGroupLocked returns the project groupID, or the error Atlas
// answers when the id is malformed or names no project. e.mu must be held.
func (e *Emulator) existingGroupLocked(groupID string) (*group, *atlas.ErrorBody) {
	if !hex24Pattern.MatchString(groupID) {
		return nil, errorBody(http.StatusBadRequest, "INVALID_ATTRIBUTE", "Invalid attribute groupId specified.", atlas.FieldViolation{Field: "groupId", Description: "must be 24 hexadecimal characters"})
	}
	g := e.groupLocked(groupID, e.cfg.AutoCreateGroups)
	if g != nil && e.cfg.AutoCreateGroups {
		g.exists = true
	}
	if g == nil || !g.exists {
		return nil, errorBody(http.StatusNotFound, "GROUP_NOT_FOUND", "No group with ID "+groupID+" exists.")
	}
	return g, nil
}

func methodNotAllowed(method string) (int, *atlas.ErrorBody) {
	return http.StatusMethodNotAllowed, errorBody(http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED", "Method "+method+" is not allowed on this resource.")
}

// acceptsV2 reports whether the Accept header values name the versioned
// media type. */* and unknown version dates do not.
func acceptsV2(values []string) bool {
	for _, v := range values {
		for part := range strings.SplitSeq(v, ",") {
			mt, _, _ := strings.Cut(part, ";")
			if strings.EqualFold(strings.TrimSpace(mt), MediaTypeV2) {
				return true
			}
		}
	}
	return false
}

func mediaType(v2 bool) string {
	if v2 {
		return MediaTypeV2
	}
	return MediaTypeJSON
}

// authenticate checks digest or bearer credentials. On failure it has
// written the 401 and returns false.
func (e *Emulator) authenticate(w http.ResponseWriter, r *http.Request, v2 bool) bool {
	h := r.Header.Get("Authorization")
	if token, ok := strings.CutPrefix(h, "Bearer "); ok {
		e.mu.Lock()
		exp, found := e.tokens[token]
		valid := found && time.Now().Before(exp)
		if !valid {
			e.stats.Unauthorized++
		}
		e.mu.Unlock()
		if !valid {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			writeError(w, r, errorBody(http.StatusUnauthorized, "UNAUTHORIZED", "You are not authorized for this resource."))
		}
		return valid
	}
	verdict := verdictBad
	if digest.IsDigest(h) {
		if cred, err := digest.ParseCredentials(h); err == nil {
			verdict = e.checkDigest(r, cred)
		}
	}
	if verdict == verdictOK {
		return true
	}
	stale := verdict == verdictStale
	e.mu.Lock()
	nonce := e.issueNonceLocked()
	e.stats.Challenges++
	if stale {
		e.stats.StaleNonces++
	} else {
		e.stats.Unauthorized++
	}
	e.mu.Unlock()
	w.Header().Set("WWW-Authenticate", `Digest realm="`+Realm+`", domain="", nonce="`+nonce+
		`", algorithm=MD5, qop="auth", stale=`+strconv.FormatBool(stale))
	writeError(w, r, errorBody(http.StatusUnauthorized, "UNAUTHORIZED", "You are not authorized for this resource."))
	return false
}

type verdict int

const (
	verdictBad   verdict = iota // wrong or missing credentials
	verdictStale                // correctly signed, but the nonce is not acceptable
	verdictOK
)

// checkDigest verifies digest credentials (RFC 7616, MD5, qop=auth) with
// github.com/icholy/digest's own computation, then judges the nonce.
func (e *Emulator) checkDigest(r *http.Request, cred *digest.Credentials) verdict {
	if e.cfg.PublicKey == "" || cred.Username != e.cfg.PublicKey || cred.Realm != Realm ||
		cred.QOP != "auth" || cred.Cnonce == "" || cred.Nc <= 0 || cred.URI != r.URL.RequestURI() ||
		(cred.Algorithm != "" && !strings.EqualFold(cred.Algorithm, "MD5")) {
		return verdictBad
	}
	want, err := digest.Digest(
		&digest.Challenge{Realm: Realm, Nonce: cred.Nonce, Algorithm: "MD5", QOP: []string{"auth"}},
		digest.Options{Method: r.Method, URI: cred.URI, Count: cred.Nc, Cnonce: cred.Cnonce,
			Username: e.cfg.PublicKey, Password: e.cfg.PrivateKey})
	if err != nil || subtle.ConstantTimeCompare([]byte(want.Response), []byte(cred.Response)) != 1 {
		return verdictBad
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	n := e.nonces[cred.Nonce]
	switch {
	case n == nil:
		return verdictStale // never issued, or expired by ExpireNonces
	case e.cfg.NonceLifetime > 0 && time.Since(n.issued) > e.cfg.NonceLifetime:
		delete(e.nonces, cred.Nonce)
		return verdictStale
	case e.cfg.StrictNonceCount && cred.Nc <= n.maxNC:
		return verdictStale
	}
	n.maxNC = max(n.maxNC, cred.Nc)
	return verdictOK
}

// issueNonceLocked creates and remembers a new nonce.
func (e *Emulator) issueNonceLocked() string {
	if len(e.nonces) >= 1<<16 {
		e.pruneNoncesLocked()
	}
	nonce := randomToken(24)
	e.nonces[nonce] = &nonceState{issued: time.Now()}
	return nonce
}

// pruneNoncesLocked bounds the nonce table in long runs: it drops expired
// nonces, and all of them if that is not enough (clients then re-challenge).
func (e *Emulator) pruneNoncesLocked() {
	if e.cfg.NonceLifetime > 0 {
		for k, n := range e.nonces {
			if time.Since(n.issued) > e.cfg.NonceLifetime {
				delete(e.nonces, k)
			}
		}
	}
	if len(e.nonces) >= 1<<16 {
		clear(e.nonces)
	}
}

// serveToken is Atlas's OAuth 2.0 token endpoint for service accounts
// (client credentials, client authenticated with HTTP Basic).
func (e *Emulator) serveToken(w http.ResponseWriter, r *http.Request) {
	oauthError := func(status int, code, desc string) {
		w.Header().Set("Content-Type", MediaTypeJSON)
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		oauthError(http.StatusMethodNotAllowed, "invalid_request", "use POST")
		return
	}
	id, secret, ok := r.BasicAuth()
	if !ok || e.cfg.ClientID == "" ||
		subtle.ConstantTimeCompare([]byte(id), []byte(e.cfg.ClientID)) != 1 ||
		subtle.ConstantTimeCompare([]byte(secret), []byte(e.cfg.ClientSecret)) != 1 {
		e.mu.Lock()
		e.stats.Unauthorized++
		e.mu.Unlock()
		w.Header().Set("WWW-Authenticate", `Basic realm="oauth"`)
		oauthError(http.StatusUnauthorized, "invalid_client", "client authentication failed")
		return
	}
	if err := r.ParseForm(); err != nil || r.PostForm.Get("grant_type") != "client_credentials" {
		oauthError(http.StatusBadRequest, "unsupported_grant_type", "grant_type must be client_credentials")
		return
	}
	life := e.cfg.TokenLifetime
	if life <= 0 {
		life = time.Hour
	}
	life = max(life.Truncate(time.Second), time.Second)
	now := time.Now()
	e.mu.Lock()
	for k, exp := range e.tokens {
		if !now.Before(exp) {
			delete(e.tokens, k)
		}
	}
	if len(e.tokens) >= maxTokens {
		e.mu.Unlock()
		oauthError(http.StatusForbidden, "access_denied", "too many active tokens for this service account")
		return
	}
	token := randomToken(32)
	e.tokens[token] = now.Add(life)
	e.stats.Tokens++
	e.mu.Unlock()
	w.Header().Set("Content-Type", MediaTypeJSON)
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"access_token": token,
		"token_type":   "Bearer",
		"expires_in":   int64(life / time.Second),
	})
}

// randomToken returns n random bytes, hex-encoded.
func randomToken(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b)
}

// takeFaultLocked returns the fault that answers the next request with
// method to resource of project groupID ("" for none), consuming one use of
// it, or nil. The fault rate applies to encryptionAtRest only.
func (e *Emulator) takeFaultLocked(method, resource, groupID string) *Fault {
	for i, p := range e.faults {
		if p.f.Method != "" && !strings.EqualFold(p.f.Method, method) || p.f.resource() != resource ||
			p.f.GroupID != "" && p.f.GroupID != groupID {
			continue
		}
		p.left--
		if p.left <= 0 {
			e.faults = append(e.faults[:i], e.faults[i+1:]...)
		}
		e.stats.Faults++
		f := p.f
		return &f
	}
	if resource == resourceEncryptionAtRest && e.faultRate > 0 && len(e.faultCodes) > 0 && mrand.Float64() < e.faultRate {
		e.stats.Faults++
		return &Fault{Status: e.faultCodes[mrand.IntN(len(e.faultCodes))]}
	}
	return nil
}

// sanitizePath keeps error details short and printable.
func sanitizePath(p string) string {
	if len(p) > 100 {
		p = p[:100] + "…"
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, p)
}
