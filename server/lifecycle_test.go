package server_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/encryptiond/encryptiond/atlas/atlastest"
	encryptionv1 "github.com/encryptiond/encryptiond/gen/atlas/encryption/v1"
	"github.com/encryptiond/encryptiond/server/failure"
)

// The lifecycle around a PATCH, through the same paths a user takes (gRPC,
// and REST through the gateway): a role still propagating, a disable that
// clusters block, and Atlas's errorCodes with their remedies.

// roleEnable enables AWS KMS with role.
func roleEnable(role string) string {
	return `{"awsKms": {"enabled": true, "customerMasterKeyID": "arn:aws:kms:us-east-1:123456789012:key/lifecycle", "region": "US_EAST_1", "roleId": "` + role + `"}}`
}

// answer is what a caller saw of one update.
type answer struct {
	code    codes.Code
	status  int    // REST only
	reason  string // ErrorInfo reason, or Atlas's errorCode on the alias
	info    failure.Info
	message string
	body    string
	took    time.Duration
}

// updateGRPC sends an update over gRPC with the deadline.
func (h *harness) updateGRPC(t *testing.T, group, body string, validateOnly bool, deadline time.Duration) answer {
	t.Helper()
	cfg := &encryptionv1.ProviderConfig{}
	if err := protojson.Unmarshal([]byte(body), cfg); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), deadline)
	defer cancel()
	start := time.Now()
	_, err := h.grpc.UpdateEncryptionAtRest(ctx, &encryptionv1.UpdateEncryptionAtRestRequest{GroupId: group, Config: cfg, ValidateOnly: validateOnly})
	st := status.Convert(err)
	p := failure.Parse(st)
	b, _ := protojson.Marshal(st.Proto())
	return answer{code: st.Code(), reason: p.Info.Reason, info: p.Info, message: st.Message(), body: string(b), took: time.Since(start)}
}

// updateREST sends an update as a PATCH to path with the deadline in
// Grpc-Timeout; path is "/v1" or "/api/atlas/v1.0".
func (h *harness) updateREST(t *testing.T, path, group, body string, validateOnly bool, deadline time.Duration) answer {
	t.Helper()
	url := h.rest.URL + path + "/groups/" + group + "/encryptionAtRest"
	if validateOnly {
		url += "?validateOnly=true"
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPatch, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Grpc-Timeout", strconv.FormatInt(deadline.Milliseconds(), 10)+"m")
	start := time.Now()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	a := answer{status: res.StatusCode, body: string(b), took: time.Since(start)}
	var aip struct {
		Error struct {
			Status  string `json:"status"`
			Message string `json:"message"`
			Details []struct {
				Reason   string            `json:"reason"`
				Metadata map[string]string `json:"metadata"`
			} `json:"details"`
		} `json:"error"`
	}
	var atlasShape struct {
		ErrorCode string `json:"errorCode"`
		Detail    string `json:"detail"`
	}
	switch {
	case res.StatusCode == http.StatusOK:
		a.code = codes.OK
	case json.Unmarshal(b, &aip) == nil && aip.Error.Status != "":
		_ = a.code.UnmarshalJSON([]byte(`"` + aip.Error.Status + `"`))
		a.message = aip.Error.Message
		for _, d := range aip.Error.Details {
			if d.Reason != "" {
				a.reason = d.Reason
				a.info = failure.Info{Reason: d.Reason, Remedy: d.Metadata[failure.KeyRemedy]}
				a.info.Attempts, _ = strconv.Atoi(d.Metadata[failure.KeyAttempts])
			}
		}
	case json.Unmarshal(b, &atlasShape) == nil:
		a.reason, a.message = atlasShape.ErrorCode, atlasShape.Detail
	}
	return a
}

// patchCount returns the PATCHes the emulator counted.
func (h *harness) patchCount() int64 { return h.emu.Calls()["PATCH encryptionAtRest"] }

// viaBoth runs f once over gRPC and once over REST (/v1).
func viaBoth(t *testing.T, f func(t *testing.T, send func(h *harness, group, body string, validateOnly bool, deadline time.Duration) answer)) {
	t.Run("gRPC", func(t *testing.T) {
		t.Parallel()
		f(t, func(h *harness, group, body string, validateOnly bool, deadline time.Duration) answer {
			return h.updateGRPC(t, group, body, validateOnly, deadline)
		})
	})
	t.Run("REST", func(t *testing.T) {
		t.Parallel()
		f(t, func(h *harness, group, body string, validateOnly bool, deadline time.Duration) answer {
			return h.updateREST(t, "/v1", group, body, validateOnly, deadline)
		})
	})
}

func TestRolePropagation(t *testing.T) {
	t.Parallel()
	t.Run("a role usable after 3 s: the enable succeeds after several PATCHes", func(t *testing.T) {
		t.Parallel()
		viaBoth(t, func(t *testing.T, send func(*harness, string, string, bool, time.Duration) answer) {
			h := newHarness(t)
			const role = "7a6b5c4d3e2f1a0b9c8d7e6f"
			h.emu.RoleUsableAfter(role, 3*time.Second)
			a := send(h, "1a2b3c4d5e6f7a8b9c0d1e2f", roleEnable(role), false, 15*time.Second)
			if a.code != codes.OK {
				t.Fatalf("enable with a propagating role = %v %s, want OK", a.code, a.body)
			}
			if n := h.patchCount(); n < 2 {
				t.Errorf("the enable took %d PATCHes, want more than 1", n)
			}
		})
	})
	t.Run("a 2 s deadline: FAILED_PRECONDITION before it, with the attempts", func(t *testing.T) {
		t.Parallel()
		viaBoth(t, func(t *testing.T, send func(*harness, string, string, bool, time.Duration) answer) {
			h := newHarness(t)
			const role = "7a6b5c4d3e2f1a0b9c8d7e60"
			h.emu.RoleUsableAfter(role, time.Hour)
			a := send(h, "1a2b3c4d5e6f7a8b9c0d1e30", roleEnable(role), false, 2*time.Second)
			if a.code != codes.FailedPrecondition || a.reason != "CANNOT_ASSUME_ROLE" || a.info.Attempts < 1 {
				t.Errorf("enable with a role that stays unusable = %v %s (attempts %d), want FAILED_PRECONDITION CANNOT_ASSUME_ROLE with attempts", a.code, a.reason, a.info.Attempts)
			}
			if a.took >= 2*time.Second {
				t.Errorf("the answer took %v, want it before the 2 s deadline", a.took)
			}
			if !strings.Contains(a.message, "propagating") || a.info.Remedy == "" {
				t.Errorf("message %q, remedy %q: want them to say the role may still be propagating", a.message, a.info.Remedy)
			}
			if n := h.patchCount(); int(n) != a.info.Attempts {
				t.Errorf("the emulator saw %d PATCHes, the answer says %d attempts", n, a.info.Attempts)
			}
		})
	})
	t.Run("Atlas's own path answers in Atlas's shape", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		const role = "7a6b5c4d3e2f1a0b9c8d7e61"
		h.emu.RoleUsableAfter(role, time.Hour)
		a := h.updateREST(t, "/api/atlas/v1.0", "1a2b3c4d5e6f7a8b9c0d1e31", roleEnable(role), false, 2*time.Second)
		if a.status != http.StatusBadRequest || a.reason != "CANNOT_ASSUME_ROLE" {
			t.Errorf("PATCH /api/atlas/v1.0 = %d %s, want Atlas's 400 CANNOT_ASSUME_ROLE", a.status, a.body)
		}
	})
	t.Run("static credentials are not retried", func(t *testing.T) {
		t.Parallel()
		viaBoth(t, func(t *testing.T, send func(*harness, string, string, bool, time.Duration) answer) {
			h := newHarness(t)
			h.emu.InjectFault(atlastest.Fault{Status: 400, ErrorCode: "INVALID_AWS_CREDENTIALS", Method: http.MethodPatch, Times: 5})
			a := send(h, "1a2b3c4d5e6f7a8b9c0d1e32", contractExample, false, 15*time.Second)
			if a.code != codes.InvalidArgument || a.reason != "INVALID_AWS_CREDENTIALS" {
				t.Errorf("enable with refused static credentials = %v %s, want INVALID_ARGUMENT INVALID_AWS_CREDENTIALS", a.code, a.body)
			}
			if n := h.patchCount(); n != 1 {
				t.Errorf("static credentials: %d PATCHes, want 1", n)
			}
		})
	})
	t.Run("a role refused as INVALID_AWS_CREDENTIALS is sent again", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		h.emu.InjectFault(atlastest.Fault{Status: 400, ErrorCode: "INVALID_AWS_CREDENTIALS", Method: http.MethodPatch, Times: 1})
		a := h.updateGRPC(t, "1a2b3c4d5e6f7a8b9c0d1e33", roleEnable("7a6b5c4d3e2f1a0b9c8d7e62"), false, 15*time.Second)
		if a.code != codes.OK || h.patchCount() != 2 {
			t.Errorf("enable with a role refused once = %v %s after %d PATCHes, want OK after 2", a.code, a.body, h.patchCount())
		}
	})
	t.Run("validate-only never sends a PATCH", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		const role = "7a6b5c4d3e2f1a0b9c8d7e63"
		h.emu.RoleUsableAfter(role, time.Hour)
		a := h.updateGRPC(t, "1a2b3c4d5e6f7a8b9c0d1e34", roleEnable(role), true, 15*time.Second)
		if a.code != codes.OK || h.patchCount() != 0 {
			t.Errorf("validate-only enable = %v after %d PATCHes, want OK after none", a.code, h.patchCount())
		}
	})
}

func TestBlockedDisable(t *testing.T) {
	t.Parallel()
	const group = "2b3c4d5e6f7a8b9c0d1e2f3a"
	setup := func(t *testing.T) *harness {
		// One cluster a page, so that naming both users takes two pages.
		h := newHarnessWith(t, atlastest.EmulatorConfig{MaxItemsPerPage: 1})
		h.enable(t, group, contractExample)
		h.emu.SetCluster(group, atlastest.Cluster{Name: "orders", EncryptionAtRestProvider: "AWS"})
		h.emu.SetCluster(group, atlastest.Cluster{Name: "reports", EncryptionAtRestProvider: "AZURE"})
		h.emu.SetCluster(group, atlastest.Cluster{Name: "billing", EncryptionAtRestProvider: "AWS"})
		h.emu.ResetStats()
		return h
	}
	const disable = `{"awsKms": {"enabled": false}}`
	check := func(t *testing.T, a answer) {
		t.Helper()
		if a.code != codes.FailedPrecondition || a.reason != "CANNOT_DISABLE_ENCRYPTION_AT_REST" {
			t.Errorf("blocked disable = %v %s, want FAILED_PRECONDITION CANNOT_DISABLE_ENCRYPTION_AT_REST", a.code, a.body)
		}
		for _, name := range []string{"orders", "billing"} {
			if !strings.Contains(a.message, name) || !strings.Contains(a.body, "clusters/"+name) {
				t.Errorf("blocked disable %s does not name cluster %s in its message and its PreconditionFailure", a.body, name)
			}
		}
		if strings.Contains(a.body, "reports") {
			t.Errorf("blocked disable %s names the cluster that uses Azure", a.body)
		}
		if !strings.Contains(a.body, failure.ViolationProviderInUse) {
			t.Errorf("blocked disable %s: no %s violation", a.body, failure.ViolationProviderInUse)
		}
	}
	t.Run("the refusal names the clusters", func(t *testing.T) {
		t.Parallel()
		viaBoth(t, func(t *testing.T, send func(*harness, string, string, bool, time.Duration) answer) {
			h := setup(t)
			check(t, send(h, group, disable, false, 15*time.Second))
			if calls := h.emu.Calls(); calls["PATCH encryptionAtRest"] != 1 || calls["GET clusters"] != 3 {
				t.Errorf("Atlas calls = %v, want 1 PATCH and 3 pages of one cluster each", calls)
			}
		})
	})
	t.Run("validate-only predicts it", func(t *testing.T) {
		t.Parallel()
		viaBoth(t, func(t *testing.T, send func(*harness, string, string, bool, time.Duration) answer) {
			h := setup(t)
			check(t, send(h, group, disable, true, 15*time.Second))
			if n := h.patchCount(); n != 0 {
				t.Errorf("validate-only disable sent %d PATCHes, want 0", n)
			}
		})
	})
	t.Run("Atlas's own path: 409 naming the clusters", func(t *testing.T) {
		t.Parallel()
		h := setup(t)
		a := h.updateREST(t, "/api/atlas/v1.0", group, disable, false, 15*time.Second)
		if a.status != http.StatusConflict || a.reason != "CANNOT_DISABLE_ENCRYPTION_AT_REST" || !strings.Contains(a.message, "orders") || !strings.Contains(a.message, "billing") {
			t.Errorf("PATCH /api/atlas/v1.0 = %d %s, want 409 CANNOT_DISABLE_ENCRYPTION_AT_REST naming orders and billing", a.status, a.body)
		}
	})
	t.Run("when the clusters cannot be read, Atlas's refusal stands", func(t *testing.T) {
		t.Parallel()
		h := setup(t)
		h.emu.InjectFault(atlastest.Fault{Status: 403, ErrorCode: "ACCESS_FORBIDDEN", Resource: "clusters"})
		a := h.updateGRPC(t, group, disable, false, 15*time.Second)
		if a.code != codes.FailedPrecondition || a.reason != "CANNOT_DISABLE_ENCRYPTION_AT_REST" || !strings.Contains(a.message, "could not be listed") {
			t.Errorf("blocked disable without the clusters = %v %s, want the 409 saying the clusters could not be listed", a.code, a.body)
		}
	})
	t.Run("a disable that succeeds is one exchange", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		h.enable(t, group, contractExample)
		h.warm(t)
		a := h.updateGRPC(t, group, disable, false, 15*time.Second)
		if s := h.emu.Stats(); a.code != codes.OK || s.Requests != 1 {
			t.Errorf("disable = %v after %d Atlas exchanges, want OK after 1", a.code, s.Requests)
		}
	})
}

// TestChangeGivenUpIsNotOvertaken is a change whose caller leaves while
// Atlas is slow: the caller's call ends at its deadline, but the PATCH goes
// on, and the next change of the project waits for its answer.
// So the next change, reported applied, is what Atlas shows, and stays so:
// the first cannot land on top of it.
func TestChangeGivenUpIsNotOvertaken(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	const group = "6a7b8c9d0e1f2a3b4c5d6e70"
	key := func(n int) string {
		return `{"googleCloudKms": {"enabled": true, "keyVersionResourceID": "projects/p/locations/global/keyRings/r/cryptoKeys/k/cryptoKeyVersions/` + strconv.Itoa(n) + `", "roleId": "` + e2eRole + `"}}`
	}
	update := func(ctx context.Context, n int) error {
		var cfg encryptionv1.ProviderConfig
		if err := protojson.Unmarshal([]byte(key(n)), &cfg); err != nil {
			t.Fatal(err)
		}
		_, err := h.grpc.UpdateEncryptionAtRest(ctx, &encryptionv1.UpdateEncryptionAtRestRequest{GroupId: group, Config: &cfg})
		return err
	}
	version := func() string {
		v := h.emu.State(group).GoogleCloudKMS.KeyVersionResourceID
		if v == nil {
			return ""
		}
		return (*v)[strings.LastIndex(*v, "/")+1:]
	}
	if err := update(t.Context(), 0); err != nil {
		t.Fatal(err)
	}

	const latency = time.Second
	h.emu.SetLatency(latency)
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	err := update(ctx, 1)
	cancel()
	if status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("change 1 with a deadline shorter than Atlas = %v, want DeadlineExceeded", err)
	}
	h.emu.SetLatency(0)
	if err := update(t.Context(), 2); err != nil {
		t.Fatalf("change 2 = %v", err)
	}
	if got := version(); got != "2" {
		t.Errorf("Atlas's key version after change 2 answered = %s, want 2", got)
	}
	time.Sleep(latency) // long enough for change 1 to land, if it could
	if got := version(); got != "2" {
		t.Errorf("Atlas's key version %v after change 2 = %s, want 2: change 1 landed after it", latency, got)
	}
	var sent []string
	for _, r := range h.emu.Requests() {
		if r.Method == http.MethodPatch {
			sent = append(sent, string(r.Body))
		}
	}
	if len(sent) != 3 || !strings.Contains(sent[1], "cryptoKeyVersions/1") || !strings.Contains(sent[2], "cryptoKeyVersions/2") {
		t.Errorf("PATCHes Atlas received = %q, want changes 0, 1 and 2 in that order (change 1 runs to its answer)", sent)
	}
}
