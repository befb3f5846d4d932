package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/encryptiond/encryptiond/atlas/atlastest"
	encryptionv1 "github.com/encryptiond/encryptiond/gen/atlas/encryption/v1"
	"github.com/encryptiond/encryptiond/server/daemon"
)

// TestShutdown drives the real binary through SIGTERM with one change in
// flight on each listener, against an emulator slower than the call: both
// listeners stop taking new connections at once, and the calls in flight
// either finish or, past -shutdown-timeout, are answered that their outcome
// is unknown; then their PATCHes run on to Atlas's answers, which the
// process waits for and audits (late records) before it exits.
func TestShutdown(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the real binary; skipped with -short")
	}
	t.Parallel()
	bin := buildEncryptiond(t)
	tests := []struct {
		name     string
		timeout  string        // -shutdown-timeout
		latency  time.Duration // every Atlas exchange
		wantGRPC codes.Code    // the in-flight gRPC change
		wantREST int           // the in-flight REST change
		outcome  string        // both audit records
		late     string        // both late audit records; "" for none
	}{
		{name: "in-flight calls finish", timeout: "10s", latency: 2 * time.Second, wantGRPC: codes.OK, wantREST: http.StatusOK, outcome: "applied"},
		{name: "in-flight calls cut at the timeout", timeout: "1s", latency: 4 * time.Second, wantGRPC: codes.Unavailable, wantREST: http.StatusServiceUnavailable, outcome: "unknown", late: "applied"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			emu, srv := atlastest.NewServer(t, atlastest.EmulatorConfig{PublicKey: faultPublicKey, PrivateKey: faultPrivateKey, AutoCreateGroups: true})
			p := start(t, bin,
				[]string{daemon.EnvPublicKey + "=" + faultPublicKey, daemon.EnvPrivateKey + "=" + faultPrivateKey},
				"-grpc-addr", "127.0.0.1:0", "-http-addr", "127.0.0.1:0", "-atlas-base-url", srv.URL, "-shutdown-timeout", tt.timeout,
			)
			conn, err := grpc.NewClient(p.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			api := encryptionv1.NewEncryptionServiceClient(conn)
			// Warm up: the digest challenge is cached and both connections open.
			if _, err := api.GetEncryptionAtRest(t.Context(), &encryptionv1.GetEncryptionAtRestRequest{GroupId: faultGroup}); err != nil {
				t.Fatalf("warm-up Get = %v", err)
			}
			restClient := &http.Client{Timeout: 30 * time.Second}
			if code, body := restDo(t, restClient, "GET", "http://"+p.httpAD+"/v1/groups/"+faultGroup+"/encryptionAtRest", ""); code != http.StatusOK {
				t.Fatalf("warm-up REST Get = %d %s", code, body)
			}
			emu.SetLatency(tt.latency)
			emu.ResetStats()

			var wg sync.WaitGroup
			var grpcErr error
			var restCode int
			var restBody string
			wg.Go(func() {
				req := awsEnableRequest()
				_, grpcErr = api.UpdateEncryptionAtRest(t.Context(), req)
			})
			wg.Go(func() {
				other := strings.Replace(awsEnableJSON, "US_EAST_1", "EU_WEST_1", 1)
				restCode, restBody = restDo(t, restClient, "PATCH", "http://"+p.httpAD+"/v1/groups/6b5a4f3e2d1c0b9a8f7e6d5c/encryptionAtRest", other)
			})
			// Both changes are at Atlas, waiting for its answer.
			for deadline := time.Now().Add(10 * time.Second); emu.Stats().Requests < 2; time.Sleep(10 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("the two changes did not reach Atlas: %+v", emu.Stats())
				}
			}
			sigterm := time.Now()
			if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			time.Sleep(300 * time.Millisecond)

			// Both doors are closed to newcomers.
			fresh, err := grpc.NewClient(p.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				t.Fatal(err)
			}
			defer fresh.Close()
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
			_, err = encryptionv1.NewEncryptionServiceClient(fresh).UpdateEncryptionAtRest(ctx, &encryptionv1.UpdateEncryptionAtRestRequest{
				GroupId: "7c6b5a4f3e2d1c0b9a8f7e6d", Config: &encryptionv1.ProviderConfig{Provider: &encryptionv1.ProviderConfig_AwsKms{AwsKms: &encryptionv1.AwsKms{Enabled: proto.Bool(false)}}},
			})
			cancel()
			if status.Code(err) != codes.Unavailable {
				t.Errorf("a new gRPC connection after SIGTERM: Update = %v, want UNAVAILABLE (refused)", err)
			}
			freshREST := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
			if resp, err := freshREST.Get("http://" + p.httpAD + "/healthz"); err == nil {
				resp.Body.Close()
				t.Errorf("a new REST connection after SIGTERM: GET /healthz = %d, want the connection refused", resp.StatusCode)
			}

			wg.Wait()
			if got := status.Code(grpcErr); got != tt.wantGRPC {
				t.Errorf("in-flight gRPC Update = %v, want %v", grpcErr, tt.wantGRPC)
			}
			if restCode != tt.wantREST {
				t.Errorf("in-flight REST PATCH = %d %s, want %d", restCode, restBody, tt.wantREST)
			}
			if tt.outcome == "unknown" {
				if r := reason(status.Convert(grpcErr)); r != "OUTCOME_UNKNOWN" || !strings.Contains(status.Convert(grpcErr).Message(), "may or may not have been applied") {
					t.Errorf("in-flight gRPC Update = %v (reason %q), want the unknown-outcome answer", grpcErr, r)
				}
				var body struct {
					Error struct {
						Message string `json:"message"`
						Details []struct {
							Reason string `json:"reason"`
						} `json:"details"`
					} `json:"error"`
				}
				if err := json.Unmarshal([]byte(restBody), &body); err != nil || len(body.Error.Details) == 0 ||
					body.Error.Details[0].Reason != "OUTCOME_UNKNOWN" || !strings.Contains(body.Error.Message, "may or may not have been applied") {
					t.Errorf("in-flight REST PATCH = %s, want the unknown-outcome answer in AIP-193 shape", restBody)
				}
			}
			if err := p.stop(t); err != nil {
				t.Errorf("exit after SIGTERM = %v, want status 0\nstderr:\n%s", err, p.stderr)
			}
			if took := time.Since(sigterm); took > 10*time.Second {
				t.Errorf("the daemon took %v to stop", took)
			}
			var outcomes, late []string
			for _, r := range auditRecords(t, p.stderr.String()) {
				if r["late"] == true {
					late = append(late, r["outcome"].(string))
				} else {
					outcomes = append(outcomes, r["outcome"].(string))
				}
			}
			if len(outcomes) != 2 || outcomes[0] != tt.outcome || outcomes[1] != tt.outcome {
				t.Errorf("audit outcomes = %v, want two %q", outcomes, tt.outcome)
			}
			if want := map[bool]int{true: 2}[tt.late != ""]; len(late) != want || want > 0 && (late[0] != tt.late || late[1] != tt.late) {
				t.Errorf("late audit outcomes = %v, want %d %q", late, want, tt.late)
			}
			// Whatever the callers heard, both changes reached Atlas before
			// the process exited: none was cut off mid-flight.
			for _, g := range []string{faultGroup, "6b5a4f3e2d1c0b9a8f7e6d5c"} {
				if aws := emu.State(g).AWSKMS; aws == nil || aws.Enabled == nil || !*aws.Enabled {
					t.Errorf("Atlas's state of %s after the daemon exited: AWS KMS not enabled", g)
				}
			}
			if strings.Contains(p.stderr.String(), faultAWSSecret) {
				t.Errorf("the daemon's log shows the secret")
			}
		})
	}
}

// restDo sends one HTTP request with c and returns the status and body; a
// transport failure is status 0.
func restDo(t *testing.T, c *http.Client, method, url, body string) (int, string) {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
