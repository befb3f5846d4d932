package main

import (
	"cmp"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/encryptiond/encryptiond/atlas/atlastest"
	encryptionv1 "github.com/encryptiond/encryptiond/gen/atlas/encryption/v1"
	"github.com/encryptiond/encryptiond/server/daemon"
)

// The fault matrix drives the real encryptiond binary against an emulator
// that misbehaves in one way per case, and checks what a caller sees: the
// documented code (server/errors.go, docs/FAULTS.md's fault table) within the
// caller's deadline, a daemon still SERVING afterwards, the audit record of
// a change, how many PATCHes reached Atlas, and no secret anywhere.

const (
	faultPublicKey  = "fault-matrix-public-key"
	faultPrivateKey = "fault-matrix-private-s3cr3t"
	faultGroup      = "5e4d3c2b1a0f9e8d7c6b5a49"
	faultAWSSecret  = "fault-matrix-aws-secret-Wq8Zr5Tt"

	// faultRetryBudget is the daemon's -atlas-retry-max-elapsed: long
	// enough to honour a Retry-After of 1 s, short enough for the matrix.
	faultRetryBudget = 2 * time.Second
	// callDeadline is the deadline of every call but the latency cases.
	callDeadline = 5 * time.Second
)

// buildEncryptiond builds the daemon binary alone (TestBinary also builds
// grpcurl, which the matrix does not need).
func buildEncryptiond(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "encryptiond")
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, goBin, "-C", root, "build", "-o", bin, "./cmd/encryptiond").CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/encryptiond: %v\n%s", err, out)
	}
	return bin
}

// faultEnv is what a matrix case runs against.
type faultEnv struct {
	emu  *atlastest.Emulator
	p    *proc
	conn *grpc.ClientConn
	api  encryptionv1.EncryptionServiceClient
}

// startFaultEnv starts an emulator and a daemon using it. privateKey is the
// key the daemon is given; baseURL, if not empty, replaces the emulator's.
func startFaultEnv(t *testing.T, bin, privateKey, baseURL string) *faultEnv {
	t.Helper()
	emu, srv := atlastest.NewServer(t, atlastest.EmulatorConfig{
		PublicKey: faultPublicKey, PrivateKey: faultPrivateKey, AutoCreateGroups: true,
	})
	if baseURL == "" {
		baseURL = srv.URL
	}
	p := start(t, bin,
		[]string{daemon.EnvPublicKey + "=" + faultPublicKey, daemon.EnvPrivateKey + "=" + privateKey},
		"-grpc-addr", "127.0.0.1:0", "-http-addr", "127.0.0.1:0", "-atlas-base-url", baseURL,
		"-atlas-retry-max-elapsed", faultRetryBudget.String(), "-shutdown-timeout", "2s",
	)
	conn, err := grpc.NewClient(p.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("grpc.NewClient: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	return &faultEnv{emu: emu, p: p, conn: conn, api: encryptionv1.NewEncryptionServiceClient(conn)}
}

// awsEnableRequest is a whole AWS KMS document: one PATCH, no GET first.
func awsEnableRequest() *encryptionv1.UpdateEncryptionAtRestRequest {
	return &encryptionv1.UpdateEncryptionAtRestRequest{
		GroupId: faultGroup,
		Config: &encryptionv1.ProviderConfig{Provider: &encryptionv1.ProviderConfig_AwsKms{AwsKms: &encryptionv1.AwsKms{
			Enabled:             proto.Bool(true),
			CustomerMasterKeyId: proto.String("arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"),
			Region:              proto.String("US_EAST_1"),
			AccessKeyId:         proto.String("AKIAIOSFODNN7EXAMPLE"),
			SecretAccessKey:     proto.String(faultAWSSecret),
		}}},
	}
}

// awsEnableJSON is awsEnableRequest's config as a REST body.
const awsEnableJSON = `{"awsKms": {"enabled": true, "customerMasterKeyID": "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab", "region": "US_EAST_1", "accessKeyID": "AKIAIOSFODNN7EXAMPLE", "secretAccessKey": "` + faultAWSSecret + `"}}`

// callResult is what a caller saw.
type callResult struct {
	st      *status.Status
	elapsed time.Duration
	out     string // the answer or the error, as text, to scan for secrets
}

func (e *faultEnv) get(t *testing.T, deadline time.Duration) callResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), deadline)
	defer cancel()
	start := time.Now()
	resp, err := e.api.GetEncryptionAtRest(ctx, &encryptionv1.GetEncryptionAtRestRequest{GroupId: faultGroup})
	return callResult{st: status.Convert(err), elapsed: time.Since(start), out: textOf(resp, err)}
}

func (e *faultEnv) update(t *testing.T, deadline time.Duration) callResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), deadline)
	defer cancel()
	start := time.Now()
	resp, err := e.api.UpdateEncryptionAtRest(ctx, awsEnableRequest())
	return callResult{st: status.Convert(err), elapsed: time.Since(start), out: textOf(resp, err)}
}

func textOf(resp proto.Message, err error) string {
	if err != nil {
		b, _ := json.Marshal(status.Convert(err).Proto())
		return string(b)
	}
	b, _ := json.Marshal(resp)
	return string(b)
}

// reason returns the ErrorInfo reason of st, "" if none.
func reason(st *status.Status) string {
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info.GetReason()
		}
	}
	return ""
}

// retryDelay returns the RetryInfo delay of st, 0 if none.
func retryDelay(st *status.Status) time.Duration {
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			return ri.GetRetryDelay().AsDuration()
		}
	}
	return 0
}

// checkServing fails unless the daemon's health is SERVING and /readyz 200.
func (e *faultEnv) checkServing(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	resp, err := healthpb.NewHealthClient(e.conn).Check(ctx, &healthpb.HealthCheckRequest{Service: encryptionv1.EncryptionService_ServiceDesc.ServiceName})
	if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("Health/Check after the fault = %v, %v, want SERVING", resp, err)
	}
	if code, body := rest(t, "GET", "http://"+e.p.httpAD+"/readyz", ""); code != http.StatusOK {
		t.Errorf("GET /readyz after the fault = %d %q, want 200", code, body)
	}
}

// lastAudit waits for the daemon's audit records to include n records and
// returns the last one.
func (e *faultEnv) lastAudit(t *testing.T, n int) map[string]any {
	t.Helper()
	var recs []map[string]any
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if recs = auditRecords(t, e.p.stderr.String()); len(recs) >= n {
			break
		}
	}
	if len(recs) != n {
		t.Fatalf("%d audit records, want %d:\n%v", len(recs), n, recs)
	}
	return recs[n-1]
}

// checkNoFaultSecrets fails if any output holds a secret of the matrix.
func (e *faultEnv) checkNoFaultSecrets(t *testing.T, answers ...string) {
	t.Helper()
	out := strings.Join(append(answers, e.p.stdout.String(), e.p.stderr.String()), "\n")
	for _, s := range []string{faultPrivateKey, faultAWSSecret, "wrong-private-s3cr3t"} {
		if strings.Contains(out, s) {
			t.Errorf("a secret (%q) appears in the daemon's output or answers", s)
		}
	}
}

func TestAtlasFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the real binary; skipped with -short")
	}
	t.Parallel()
	bin := buildEncryptiond(t)

	// refused is an address nothing listens on.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "http://" + l.Addr().String()
	l.Close()

	type call int
	const (
		get call = iota
		update
	)
	tests := []struct {
		name       string
		privateKey string                      // the daemon's; default faultPrivateKey
		baseURL    string                      // default the emulator's
		warm       bool                        // one Get first, so that the digest challenge is cached
		fault      func(*atlastest.Emulator)   // injected after warming up
		call       call                        //
		deadline   time.Duration               // default callDeadline
		wantCode   codes.Code                  //
		wantReason string                      // ErrorInfo reason; "" = any
		wantMsg    string                      // substring of the message
		wantRetry  time.Duration               // least RetryInfo delay; 0 = not checked
		minElapsed time.Duration               // e.g. a Retry-After honoured
		patches    int                         // authenticated PATCHes Atlas saw; -1 = not checked
		outcome    string                      // the audit outcome of an update
		check      func(*testing.T, *faultEnv) // more checks
	}{
		// 5xx: reads are retried until the budget runs out, changes never.
		{name: "500 get", fault: persistent(atlastest.Fault{Status: 500, Method: "GET"}), call: get,
			wantCode: codes.Unavailable, wantReason: "UNEXPECTED_ERROR", wantMsg: "Atlas answered 500", patches: 0,
			check: gotAtLeast(2, 0)},
		{name: "502 get", fault: persistent(atlastest.Fault{Status: 502, Method: "GET"}), call: get,
			wantCode: codes.Unavailable, wantReason: "BAD_GATEWAY", wantMsg: "Atlas answered 502", patches: 0},
		{name: "503 get", fault: persistent(atlastest.Fault{Status: 503, Method: "GET"}), call: get,
			wantCode: codes.Unavailable, wantReason: "SERVICE_UNAVAILABLE", wantMsg: "Atlas answered 503", patches: 0},
		{name: "504 get", fault: persistent(atlastest.Fault{Status: 504, Method: "GET"}), call: get,
			wantCode: codes.Unavailable, wantReason: "GATEWAY_TIMEOUT", wantMsg: "Atlas answered 504", patches: 0},
		{name: "one 503 on a read is retried", fault: once(atlastest.Fault{Status: 503, Method: "GET"}), call: get,
			wantCode: codes.OK, patches: 0},
		{name: "500 update", fault: once(atlastest.Fault{Status: 500, Method: "PATCH"}), call: update,
			wantCode: codes.Unavailable, wantReason: "UNEXPECTED_ERROR", wantMsg: "may or may not have been applied", patches: 1, outcome: "unknown"},
		{name: "502 update", fault: persistent(atlastest.Fault{Status: 502, Method: "PATCH"}), call: update,
			wantCode: codes.Unavailable, wantReason: "BAD_GATEWAY", patches: 1, outcome: "unknown"},
		{name: "503 update", fault: persistent(atlastest.Fault{Status: 503, Method: "PATCH"}), call: update,
			wantCode: codes.Unavailable, wantReason: "SERVICE_UNAVAILABLE", patches: 1, outcome: "unknown"},
		{name: "504 update", fault: persistent(atlastest.Fault{Status: 504, Method: "PATCH"}), call: update,
			wantCode: codes.Unavailable, wantReason: "GATEWAY_TIMEOUT", patches: 1, outcome: "unknown"},

		// 429: retried for reads and changes (Atlas applied nothing).
		{name: "429 without Retry-After get", fault: persistent(atlastest.Fault{Status: 429}), call: get,
			wantCode: codes.ResourceExhausted, wantReason: "RATE_LIMITED_TOKEN_BUCKET", wantRetry: time.Second, patches: 0,
			check: gotAtLeast(2, 0)},
		{name: "429 without Retry-After update", fault: persistent(atlastest.Fault{Status: 429}), call: update,
			wantCode: codes.ResourceExhausted, wantReason: "RATE_LIMITED_TOKEN_BUCKET", wantRetry: time.Second, patches: -1, outcome: "refused",
			check: gotAtLeast(0, 2)},
		{name: "429 with a long Retry-After is not slept into the deadline", fault: persistent(atlastest.Fault{Status: 429, RetryAfter: 30 * time.Second}), call: get,
			wantCode: codes.ResourceExhausted, wantReason: "RATE_LIMITED_TOKEN_BUCKET", wantRetry: 30 * time.Second, patches: 0,
			check: func(t *testing.T, e *faultEnv) {
				if st := e.emu.Stats(); st.Gets != 1 {
					t.Errorf("emulator saw %d GETs, want 1: a 30 s Retry-After does not fit the budget", st.Gets)
				}
			}},
		{name: "429 with Retry-After 1s on a read is honoured", fault: once(atlastest.Fault{Status: 429, RetryAfter: time.Second}), call: get,
			wantCode: codes.OK, minElapsed: time.Second, patches: 0},
		{name: "429 with Retry-After 1s on a change is honoured", fault: once(atlastest.Fault{Status: 429, RetryAfter: time.Second, Method: "PATCH"}), call: update,
			wantCode: codes.OK, minElapsed: time.Second, patches: 2, outcome: "applied"},

		// The caller's deadline.
		{name: "latency beyond the deadline get", warm: true, fault: func(e *atlastest.Emulator) { e.SetLatency(4 * time.Second) }, call: get,
			deadline: 1500 * time.Millisecond, wantCode: codes.DeadlineExceeded, patches: 0},
		{name: "latency beyond the deadline update", warm: true, fault: func(e *atlastest.Emulator) { e.SetLatency(4 * time.Second) }, call: update,
			deadline: 1500 * time.Millisecond, wantCode: codes.DeadlineExceeded, patches: -1, outcome: "unknown"},

		// Lost connections.
		{name: "dropped connection get", fault: persistent(atlastest.Fault{Drop: true, Method: "GET"}), call: get,
			wantCode: codes.Unavailable, wantReason: "ATLAS_UNREACHABLE", wantMsg: "cannot reach Atlas", patches: 0,
			check: gotAtLeast(2, 0)},
		{name: "dropped connection update", warm: true, fault: once(atlastest.Fault{Drop: true, Method: "PATCH"}), call: update,
			wantCode: codes.Unavailable, wantReason: "OUTCOME_UNKNOWN", wantMsg: "may or may not have been applied", patches: 1, outcome: "unknown"},
		{name: "connection lost after the change was applied", warm: true, fault: once(atlastest.Fault{DropAfterApply: true, Method: "PATCH"}), call: update,
			wantCode: codes.Unavailable, wantReason: "OUTCOME_UNKNOWN", wantMsg: "may or may not have been applied", patches: 1, outcome: "unknown",
			check: func(t *testing.T, e *faultEnv) {
				if st := e.emu.State(faultGroup); st.AWSKMS == nil || st.AWSKMS.Enabled == nil || !*st.AWSKMS.Enabled {
					t.Errorf("emulator state = %+v, want AWS KMS enabled: the fault applies the change", st.AWSKMS)
				}
			}},

		// Answers that cannot be read.
		{name: "truncated JSON get", fault: persistent(atlastest.Fault{Truncated: true, Method: "GET"}), call: get,
			wantCode: codes.Unavailable, wantReason: "ATLAS_MALFORMED_RESPONSE", patches: 0,
			check: gotAtLeast(2, 0)},
		{name: "malformed JSON get", fault: persistent(atlastest.Fault{Malformed: true, Method: "GET"}), call: get,
			wantCode: codes.Unavailable, wantReason: "ATLAS_MALFORMED_RESPONSE", patches: 0,
			check: gotAtLeast(1, 0)},
		{name: "10 MiB body get", fault: persistent(atlastest.Fault{HugeBody: true, Method: "GET"}), call: get,
			wantCode: codes.Unavailable, wantReason: "ATLAS_MALFORMED_RESPONSE", patches: 0},
		{name: "truncated JSON update is read back", fault: once(atlastest.Fault{Truncated: true, Method: "PATCH"}), call: update,
			wantCode: codes.OK, patches: 1, outcome: "applied"},
		{name: "malformed JSON update is read back", fault: once(atlastest.Fault{Malformed: true, Method: "PATCH"}), call: update,
			wantCode: codes.OK, patches: 1, outcome: "applied"},
		{name: "10 MiB body update is read back", fault: once(atlastest.Fault{HugeBody: true, Method: "PATCH"}), call: update,
			wantCode: codes.OK, patches: 1, outcome: "applied"},

		// Authentication.
		{name: "expired nonce get", warm: true, fault: (*atlastest.Emulator).ExpireNonces, call: get,
			wantCode: codes.OK, patches: 0, check: staleNonceSeen},
		{name: "expired nonce update", warm: true, fault: (*atlastest.Emulator).ExpireNonces, call: update,
			wantCode: codes.OK, patches: 1, outcome: "applied", check: staleNonceSeen},
		{name: "wrong credentials get", privateKey: "wrong-private-s3cr3t", call: get,
			wantCode: codes.Internal, wantReason: "UNAUTHORIZED", wantMsg: "Atlas rejected this service's API credentials", patches: 0},
		{name: "wrong credentials update", privateKey: "wrong-private-s3cr3t", call: update,
			wantCode: codes.Internal, wantReason: "UNAUTHORIZED", wantMsg: "MONGODB_ATLAS_* credentials", patches: 0, outcome: "failed"},

		// Nothing listens.
		{name: "refused connection get", baseURL: refused, call: get,
			wantCode: codes.Unavailable, wantReason: "ATLAS_UNREACHABLE", wantMsg: "cannot reach Atlas", patches: 0},
		{name: "refused connection update", baseURL: refused, call: update,
			wantCode: codes.Unavailable, wantReason: "ATLAS_UNREACHABLE", wantMsg: "cannot reach Atlas", patches: 0, outcome: "failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			key := cmp.Or(tt.privateKey, faultPrivateKey)
			e := startFaultEnv(t, bin, key, tt.baseURL)
			audits := 0
			if tt.warm {
				if r := e.get(t, callDeadline); r.st.Code() != codes.OK {
					t.Fatalf("warm-up Get = %v, want OK", r.st)
				}
			}
			if tt.fault != nil {
				tt.fault(e.emu)
			}
			e.emu.ResetStats()

			deadline := cmp.Or(tt.deadline, callDeadline)
			var r callResult
			if tt.call == get {
				r = e.get(t, deadline)
			} else {
				r = e.update(t, deadline)
				audits++
			}
			if r.st.Code() != tt.wantCode {
				t.Errorf("code = %v (%q), want %v", r.st.Code(), r.st.Message(), tt.wantCode)
			}
			if tt.wantReason != "" && reason(r.st) != tt.wantReason {
				t.Errorf("ErrorInfo reason = %q (%v), want %q", reason(r.st), r.st, tt.wantReason)
			}
			if !strings.Contains(r.st.Message(), tt.wantMsg) {
				t.Errorf("message = %q, want it to contain %q", r.st.Message(), tt.wantMsg)
			}
			if tt.wantRetry > 0 && retryDelay(r.st) < tt.wantRetry {
				t.Errorf("RetryInfo delay = %v, want at least %v", retryDelay(r.st), tt.wantRetry)
			}
			// The answer comes within the caller's deadline: from the
			// daemon, not from the client giving up.
			limit := deadline
			if tt.wantCode == codes.DeadlineExceeded {
				limit = deadline + 500*time.Millisecond
			}
			if r.elapsed >= limit || r.elapsed < tt.minElapsed {
				t.Errorf("answered after %v, want between %v and %v", r.elapsed, tt.minElapsed, limit)
			}
			if tt.patches >= 0 {
				if st := e.emu.Stats(); st.Patches != int64(tt.patches) {
					t.Errorf("emulator saw %d authenticated PATCHes, want %d", st.Patches, tt.patches)
				}
			}
			if tt.check != nil {
				tt.check(t, e)
			}
			if tt.outcome != "" {
				rec := e.lastAudit(t, audits)
				code := rec["code"]
				if tt.wantCode == codes.DeadlineExceeded && code == codes.Canceled.String() {
					// The client's deadline fired first and cancelled the
					// call: the daemon saw a cancellation.
					code = tt.wantCode.String()
				}
				if rec["outcome"] != tt.outcome || code != r.st.Code().String() || rec["action"] != "enable" {
					t.Errorf("audit record = %v, want action enable, code %v, outcome %s", rec, r.st.Code(), tt.outcome)
				}
			}
			// Let the faults go before checking that the daemon is fine.
			e.emu.ClearFaults()
			e.emu.SetLatency(0)
			e.checkServing(t)
			if err := e.p.stop(t); err != nil {
				t.Errorf("exit after SIGTERM = %v, want status 0", err)
			}
			e.checkNoFaultSecrets(t, r.out)
		})
	}

	t.Run("REST", func(t *testing.T) {
		t.Parallel()
		tests := []struct {
			name       string
			privateKey string
			refused    bool // Atlas's base URL is a closed port
			fault      atlastest.Fault
			method     string
			path       string // "v1" or "atlas"
			wantStatus int
			wantInBody string
			wantHeader [2]string // a header and its value
		}{
			{name: "503 get", fault: atlastest.Fault{Status: 503, Method: "GET", Times: 100}, method: "GET", path: "v1",
				wantStatus: 503, wantInBody: `"UNAVAILABLE"`},
			{name: "503 get on the Atlas path", fault: atlastest.Fault{Status: 503, Method: "GET", Times: 100}, method: "GET", path: "atlas",
				wantStatus: 503, wantInBody: `"SERVICE_UNAVAILABLE"`},
			{name: "429 get", fault: atlastest.Fault{Status: 429, RetryAfter: 30 * time.Second, Times: 100}, method: "GET", path: "v1",
				wantStatus: 429, wantInBody: `"RESOURCE_EXHAUSTED"`, wantHeader: [2]string{"Retry-After", "30"}},
			{name: "429 without Retry-After get", fault: atlastest.Fault{Status: 429, Times: 100}, method: "GET", path: "v1",
				wantStatus: 429, wantInBody: `"RATE_LIMITED_TOKEN_BUCKET"`, wantHeader: [2]string{"Retry-After", "1"}},
			{name: "malformed JSON get on the Atlas path", fault: atlastest.Fault{Malformed: true, Method: "GET", Times: 100}, method: "GET", path: "atlas",
				wantStatus: 502, wantInBody: `"ATLAS_MALFORMED_RESPONSE"`},
			{name: "refused connection", refused: true, method: "GET", path: "v1",
				wantStatus: 503, wantInBody: "cannot reach Atlas"},
			{name: "refused connection on the Atlas path", refused: true, method: "GET", path: "atlas",
				wantStatus: 502, wantInBody: `"ATLAS_UNREACHABLE"`},
			{name: "connection lost after the change", fault: atlastest.Fault{DropAfterApply: true, Method: "PATCH"}, method: "PATCH", path: "v1",
				wantStatus: 503, wantInBody: "may or may not have been applied"},
			{name: "connection lost after the change on the Atlas path", fault: atlastest.Fault{DropAfterApply: true, Method: "PATCH"}, method: "PATCH", path: "atlas",
				wantStatus: 502, wantInBody: `"OUTCOME_UNKNOWN"`},
			{name: "wrong credentials", privateKey: "wrong-private-s3cr3t", method: "GET", path: "v1",
				wantStatus: 500, wantInBody: "Atlas rejected this service's API credentials"},
			{name: "wrong credentials on the Atlas path", privateKey: "wrong-private-s3cr3t", method: "GET", path: "atlas",
				wantStatus: 401, wantInBody: `"UNAUTHORIZED"`},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				base := ""
				if tt.refused {
					base = refused
				}
				e := startFaultEnv(t, bin, cmp.Or(tt.privateKey, faultPrivateKey), base)
				if tt.fault != (atlastest.Fault{}) {
					e.emu.InjectFault(tt.fault)
				}
				url := "http://" + e.p.httpAD + "/v1/groups/" + faultGroup + "/encryptionAtRest"
				if tt.path == "atlas" {
					url = "http://" + e.p.httpAD + "/api/atlas/v1.0/groups/" + faultGroup + "/encryptionAtRest"
				}
				body := ""
				if tt.method == "PATCH" {
					body = awsEnableJSON
				}
				ctx, cancel := context.WithTimeout(t.Context(), callDeadline)
				defer cancel()
				req, err := http.NewRequestWithContext(ctx, tt.method, url, strings.NewReader(body))
				if err != nil {
					t.Fatal(err)
				}
				req.Header.Set("Content-Type", "application/json")
				start := time.Now()
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatalf("%s %s: %v", tt.method, url, err)
				}
				b := new(strings.Builder)
				_, err = io.Copy(b, resp.Body)
				resp.Body.Close()
				if err != nil {
					t.Fatalf("reading the answer: %v", err)
				}
				if elapsed := time.Since(start); elapsed >= callDeadline {
					t.Errorf("answered after %v, want within %v", elapsed, callDeadline)
				}
				if resp.StatusCode != tt.wantStatus || !strings.Contains(b.String(), tt.wantInBody) {
					t.Errorf("%s %s = %d %s, want %d containing %s", tt.method, tt.path, resp.StatusCode, b, tt.wantStatus, tt.wantInBody)
				}
				if h := tt.wantHeader; h[0] != "" && resp.Header.Get(h[0]) != h[1] {
					t.Errorf("%s header = %q, want %q", h[0], resp.Header.Get(h[0]), h[1])
				}
				if tt.method == "PATCH" {
					if st := e.emu.Stats(); st.Patches != 1 {
						t.Errorf("emulator saw %d authenticated PATCHes, want 1", st.Patches)
					}
					if rec := e.lastAudit(t, 1); rec["outcome"] != "unknown" {
						t.Errorf("audit record = %v, want outcome unknown", rec)
					}
				}
				e.emu.ClearFaults()
				e.checkServing(t)
				e.checkNoFaultSecrets(t, b.String())
			})
		}
	})
}

// persistent injects f for every matching request of the case.
func persistent(f atlastest.Fault) func(*atlastest.Emulator) {
	f.Times = 1000
	return func(e *atlastest.Emulator) { e.InjectFault(f) }
}

// once injects f for the next matching request.
func once(f atlastest.Fault) func(*atlastest.Emulator) {
	f.Times = 1
	return func(e *atlastest.Emulator) { e.InjectFault(f) }
}

// gotAtLeast checks that Atlas saw at least gets GETs and patches PATCHes:
// the retries happened.
func gotAtLeast(gets, patches int64) func(*testing.T, *faultEnv) {
	return func(t *testing.T, e *faultEnv) {
		if st := e.emu.Stats(); st.Gets < gets || st.Patches < patches {
			t.Errorf("emulator saw %d GETs and %d PATCHes, want at least %d and %d", st.Gets, st.Patches, gets, patches)
		}
	}
}

func staleNonceSeen(t *testing.T, e *faultEnv) {
	if st := e.emu.Stats(); st.StaleNonces == 0 {
		t.Errorf("emulator stats = %+v, want a stale nonce answered", st)
	}
}
