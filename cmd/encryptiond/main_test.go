package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/encryptiond/encryptiond/atlas/atlastest"
	"github.com/encryptiond/encryptiond/server/daemon"
)

// TestRunRefusesMissingCredentials checks the error without building the
// binary; TestBinary checks the exit status of the real one.
func TestRunRefusesMissingCredentials(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		env  map[string]string
	}{
		{"none", nil},
		{"half a pair", map[string]string{daemon.EnvPublicKey: "pub"}},
		{"both pairs", map[string]string{
			daemon.EnvPublicKey: "pub", daemon.EnvPrivateKey: "priv",
			daemon.EnvClientID: "id", daemon.EnvClientSecret: "sec",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			err := run(t.Context(), nil, func(k string) string { return tt.env[k] }, nil, &stdout, &stderr)
			if err == nil || exitCode(err) == 0 {
				t.Fatalf("run() = %v, want an error with a non-zero exit code", err)
			}
			for _, v := range []string{daemon.EnvPublicKey, daemon.EnvPrivateKey, daemon.EnvClientID, daemon.EnvClientSecret} {
				if tt.name == "half a pair" && (v == daemon.EnvClientID || v == daemon.EnvClientSecret) {
					continue
				}
				if !strings.Contains(err.Error(), v) {
					t.Errorf("run() = %q, want it to name %s", err, v)
				}
			}
		})
	}
}

// TestRunRefusesCredentialFileErrors: a variable set together with its
// _FILE form, or a _FILE that cannot be read, is a usage error (exit 2)
// naming the variables.
func TestRunRefusesCredentialFileErrors(t *testing.T) {
	t.Parallel()
	absent := filepath.Join(t.TempDir(), "absent")
	tests := []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"a variable and its _FILE form", map[string]string{daemon.EnvClientID: "id", daemon.EnvClientSecret: "s3cr3t", daemon.EnvClientSecretFile: absent},
			[]string{daemon.EnvClientSecret, daemon.EnvClientSecretFile}},
		{"a file that cannot be read", map[string]string{daemon.EnvClientID: "id", daemon.EnvClientSecretFile: absent},
			[]string{daemon.EnvClientSecretFile, absent}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			err := run(t.Context(), nil, func(k string) string { return tt.env[k] }, nil, &stdout, &stderr)
			if err == nil || exitCode(err) != 2 {
				t.Fatalf("run() = %v, want an error with exit code 2", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("run() = %q, want it to name %s", err, w)
				}
			}
		})
	}
}

func TestRunHelp(t *testing.T) {
	t.Parallel()
	var stdout, stderr bytes.Buffer
	if err := run(t.Context(), []string{"-help"}, func(string) string { return "" }, nil, &stdout, &stderr); err != nil {
		t.Fatalf("run(-help) = %v, want nil", err)
	}
	if !strings.Contains(stdout.String(), "-tls-client-ca") || !strings.Contains(stdout.String(), daemon.EnvClientSecretFile) ||
		!strings.Contains(stdout.String(), "SIGHUP") {
		t.Errorf("run(-help) printed %q, want the usage", stdout.String())
	}
}

// Secret values sent in requests; none may appear in the daemon's output.
const (
	awsSecret   = "e2e-aws-secret-wJalrXUtnFEMI/K7MDENG"
	azureSecret = "e2e-azure-secret-Qx8Q~abcdefghijklmnop"
	gcpSecret   = `{"type": "service_account", "private_key": "e2e-gcp-secret-MIIEvQ"}`
)

const e2eGroup = "6a1b2c3d4e5f6a7b8c9d0e1f"

// binaries are the programs the test builds once.
type binaries struct{ encryptiond, grpcurlBin string }

func buildBinaries(t *testing.T) binaries {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	dir := t.TempDir()
	b := binaries{encryptiond: filepath.Join(dir, "encryptiond"), grpcurlBin: filepath.Join(dir, "grpcurl")}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"-C", root, "build", "-o", b.encryptiond, "./cmd/encryptiond"},
		{"-C", filepath.Join(root, "tools"), "build", "-o", b.grpcurlBin, "github.com/fullstorydev/grpcurl/cmd/grpcurl"},
	} {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
		out, err := exec.CommandContext(ctx, goBin, append(args[:0:0], args...)...).CombinedOutput()
		cancel()
		if err != nil {
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	return b
}

// syncBuffer collects a process's output.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// proc is a running encryptiond.
type proc struct {
	cmd              *exec.Cmd
	stdout, stderr   *syncBuffer
	grpcAddr, httpAD string
	done             chan error
}

// start runs encryptiond with args and env and waits for its "serving" log
// record.
func start(t *testing.T, bin string, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(bin, args...), stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan error, 1)}
	p.cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, env...)
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting encryptiond: %v", err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			p.cmd.Process.Kill()
			<-p.done
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		for _, rec := range logRecords(t, p.stderr.String()) {
			if rec["msg"] == "serving" {
				p.grpcAddr, _ = rec["grpc_addr"].(string)
				p.httpAD, _ = rec["http_addr"].(string)
				return p
			}
		}
		select {
		case err := <-p.done:
			t.Fatalf("encryptiond exited before serving: %v\nstderr:\n%s", err, p.stderr)
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatalf("encryptiond not serving after 30 s; stderr:\n%s", p.stderr)
	return nil
}

// stop sends SIGTERM and returns the exit error (nil for status 0).
func (p *proc) stop(t *testing.T) error {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	select {
	case err := <-p.done:
		return err
	case <-time.After(30 * time.Second):
		t.Fatalf("encryptiond still running 30 s after SIGTERM")
		return nil
	}
}

func logRecords(t *testing.T, s string) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var rec map[string]any
		if json.Unmarshal(sc.Bytes(), &rec) == nil {
			out = append(out, rec)
		}
	}
	return out
}

func auditRecords(t *testing.T, s string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, r := range logRecords(t, s) {
		if r["audit"] == true {
			out = append(out, r)
		}
	}
	return out
}

// grpcurl runs grpcurl against the daemon; it returns stdout and stderr.
func (b binaries) grpcurl(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, b.grpcurlBin, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

// call runs a grpcurl command that must succeed and decodes its JSON answer.
func (b binaries) call(t *testing.T, p *proc, method, request string) map[string]any {
	t.Helper()
	out, errOut, err := b.grpcurl(t, "-plaintext", "-d", request, p.grpcAddr, "atlas.encryption.v1.EncryptionService/"+method)
	if err != nil {
		t.Fatalf("grpcurl %s %s: %v\n%s", method, request, err, errOut)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("grpcurl %s: answer %q is not JSON: %v", method, out, err)
	}
	return m
}

// rest sends an HTTP request and returns the status and body.
func rest(t *testing.T, method, url, body string) (int, string) {
	t.Helper()
	return restOK(t, &http.Client{Timeout: 30 * time.Second}, method, url, body)
}

// restOK is restDo for a request that must reach the server: a transport
// failure fails the test.
func restOK(t *testing.T, c *http.Client, method, url, body string) (int, string) {
	t.Helper()
	code, b := restDo(t, c, method, url, body)
	if code == 0 {
		t.Fatalf("%s %s: %s", method, url, b)
	}
	return code, b
}

func decode(t *testing.T, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatalf("%q is not a JSON object: %v", s, err)
	}
	return m
}

// field reads a nested value: field(m, "awsKms", "enabled").
func field(m map[string]any, path ...string) any {
	var v any = m
	for _, p := range path {
		obj, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = obj[p]
	}
	return v
}

// exercise drives a running daemon through the API over gRPC and REST and
// checks the audit log: one record per mutation that reached the service.
func exercise(t *testing.T, b binaries, p *proc) {
	base := "http://" + p.httpAD
	v1 := base + "/v1/groups/" + e2eGroup + "/encryptionAtRest"
	atlasPath := base + "/api/atlas/v1.0/groups/" + e2eGroup + "/encryptionAtRest"
	req := func(config string) string { return `{"groupId": "` + e2eGroup + `", "config": ` + config + `}` }
	audited := len(auditRecords(t, p.stderr.String()))
	type mutation struct{ action, code string }
	var want []mutation

	t.Run("reflection lists the service and health", func(t *testing.T) {
		out, errOut, err := b.grpcurl(t, "-plaintext", p.grpcAddr, "list")
		if err != nil {
			t.Fatalf("grpcurl list: %v\n%s", err, errOut)
		}
		for _, s := range []string{"atlas.encryption.v1.EncryptionService", "grpc.health.v1.Health"} {
			if !strings.Contains(out, s) {
				t.Errorf("grpcurl list = %q, want %s", out, s)
			}
		}
		out, errOut, err = b.grpcurl(t, "-plaintext", p.grpcAddr, "describe", "atlas.encryption.v1.AwsKms")
		if err != nil || !strings.Contains(out, "// The IAM access key id") {
			t.Errorf("grpcurl describe AwsKms = %v %s\n%s, want the field comments", err, errOut, out)
		}
		out, errOut, err = b.grpcurl(t, "-plaintext", "-d", `{"service": "atlas.encryption.v1.EncryptionService"}`, p.grpcAddr, "grpc.health.v1.Health/Check")
		if err != nil || !strings.Contains(out, "SERVING") {
			t.Errorf("grpcurl Health/Check = %v %s\n%s, want SERVING", err, errOut, out)
		}
	})

	t.Run("get", func(t *testing.T) {
		got := b.call(t, p, "GetEncryptionAtRest", `{"groupId": "`+e2eGroup+`"}`)
		for _, prov := range []string{"awsKms", "azureKeyVault", "googleCloudKms"} {
			if field(got, prov, "enabled") != false || field(got, prov, "valid") != false {
				t.Errorf("Get: %s = %v, want enabled and valid false", prov, got[prov])
			}
		}
	})

	t.Run("full enable of each provider", func(t *testing.T) {
		got := b.call(t, p, "UpdateEncryptionAtRest", req(`{"awsKms": {"enabled": true, "accessKeyID": "AKIAIOSFODNN7EXAMPLE", "secretAccessKey": "`+awsSecret+`", "customerMasterKeyID": "030gce02-586d-48d2-a966-05ea954fde0g", "region": "US_EAST_1"}}`))
		if field(got, "awsKms", "enabled") != true || field(got, "awsKms", "region") != "US_EAST_1" {
			t.Errorf("enable AWS over gRPC = %v", got)
		}
		want = append(want, mutation{"enable", "OK"})

		code, body := rest(t, "PATCH", v1, `{"azureKeyVault": {"enabled": true, "azureEnvironment": "AZURE", "clientID": "b6a2a7a0-2f9e-4a4c-9b0e-1c2d3e4f5a6b", "tenantID": "c7b3b8b1-3a0f-4b5d-8c1f-2d3e4f5a6b7c", "secret": "`+azureSecret+`", "subscriptionID": "d8c4c9c2-4b1a-4c6e-9d2a-3e4f5a6b7c8d", "resourceGroupName": "rg", "keyVaultName": "vault", "keyIdentifier": "https://vault.vault.azure.net/keys/key/d891821e3d364e9eb88fbd3d11807b86"}}`)
		if code != http.StatusOK || field(decode(t, body), "azureKeyVault", "enabled") != true {
			t.Errorf("enable Azure over REST = %d %s, want 200 and enabled", code, body)
		}
		want = append(want, mutation{"enable", "OK"})

		gcp, _ := json.Marshal(gcpSecret)
		code, body = rest(t, "PATCH", atlasPath, `{"googleCloudKms": {"enabled": true, "keyVersionResourceID": "projects/p/locations/global/keyRings/r/cryptoKeys/k/cryptoKeyVersions/1", "serviceAccountKey": `+string(gcp)+`}}`)
		if code != http.StatusOK || field(decode(t, body), "googleCloudKms", "enabled") != true {
			t.Errorf("enable Google Cloud KMS over REST (Atlas path) = %d %s, want 200 and enabled", code, body)
		}
		want = append(want, mutation{"enable", "OK"})
	})

	t.Run("partial update", func(t *testing.T) {
		code, body := rest(t, "PATCH", v1, `{"awsKms": {"region": "US_WEST_2"}}`)
		got := decode(t, body)
		if code != http.StatusOK || field(got, "awsKms", "region") != "US_WEST_2" || field(got, "awsKms", "customerMasterKeyID") != "030gce02-586d-48d2-a966-05ea954fde0g" {
			t.Errorf("partial update = %d %s, want 200 with the new region and the old key", code, body)
		}
		want = append(want, mutation{"update", "OK"})
	})

	t.Run("disable", func(t *testing.T) {
		got := b.call(t, p, "UpdateEncryptionAtRest", req(`{"googleCloudKms": {"enabled": false}}`))
		if field(got, "googleCloudKms", "enabled") != false {
			t.Errorf("disable = %v, want googleCloudKms disabled", got)
		}
		want = append(want, mutation{"disable", "OK"})
	})

	t.Run("refused partial enable", func(t *testing.T) {
		partial := `{"googleCloudKms": {"enabled": true, "roleId": "64b6e34b3d91647abb20e7b9"}}`
		code, body := rest(t, "PATCH", v1, partial)
		if code != http.StatusBadRequest || !strings.Contains(body, "keyVersionResourceID") {
			t.Errorf("REST partial enable = %d %s, want 400 naming keyVersionResourceID", code, body)
		}
		want = append(want, mutation{"enable", "InvalidArgument"})
		_, errOut, err := b.grpcurl(t, "-plaintext", "-d", req(partial), p.grpcAddr, "atlas.encryption.v1.EncryptionService/UpdateEncryptionAtRest")
		if err == nil || !strings.Contains(errOut, "InvalidArgument") {
			t.Errorf("gRPC partial enable = %v %s, want InvalidArgument", err, errOut)
		}
		want = append(want, mutation{"enable", "InvalidArgument"})
	})

	t.Run("validateOnly", func(t *testing.T) {
		code, body := rest(t, "PATCH", v1+"?validateOnly=true", `{"googleCloudKms": {"enabled": true, "keyVersionResourceID": "projects/p/locations/global/keyRings/r/cryptoKeys/k/cryptoKeyVersions/2", "roleId": "64b6e34b3d91647abb20e7b9"}}`)
		if code != http.StatusOK || field(decode(t, body), "googleCloudKms", "enabled") != true {
			t.Errorf("validate-only enable = %d %s, want 200 showing the result", code, body)
		}
		want = append(want, mutation{"validate", "OK"})
		_, body = rest(t, "GET", v1, "")
		if field(decode(t, body), "googleCloudKms", "enabled") != false {
			t.Errorf("after validateOnly, GET = %s, want googleCloudKms still disabled", body)
		}
	})

	t.Run("a body the gateway refuses is not audited", func(t *testing.T) {
		code, body := rest(t, "PATCH", v1, `{"awsKms": {"region": "US_EAST_2"}, "azureKeyVault": {"keyVaultName": "v"}}`)
		if code != http.StatusBadRequest {
			t.Errorf("two providers in one body = %d %s, want 400", code, body)
		}
	})

	t.Run("pretty and envelope", func(t *testing.T) {
		code, body := rest(t, "GET", v1+"?pretty=true", "")
		if code != http.StatusOK || !strings.Contains(body, "\n  \"awsKms\": {\n") {
			t.Errorf("GET ?pretty=true = %d %q, want indented JSON", code, body)
		}
		code, body = rest(t, "GET", v1+"?envelope=true", "")
		env := decode(t, body)
		if code != http.StatusOK || env["status"] != float64(200) || field(env, "content", "awsKms", "enabled") != true {
			t.Errorf("GET ?envelope=true = %d %s, want 200 {status: 200, content: {...}}", code, body)
		}
		code, body = rest(t, "PATCH", v1+"?envelope=true&pretty=true", `{"googleCloudKms": {"enabled": true}}`)
		env = decode(t, body)
		if code != http.StatusOK || env["status"] != float64(400) || !strings.Contains(body, "\n  ") {
			t.Errorf("refused PATCH ?envelope=true&pretty=true = %d %s, want 200 {status: 400, ...} indented", code, body)
		}
		want = append(want, mutation{"enable", "InvalidArgument"})
	})

	t.Run("one audit record per mutation", func(t *testing.T) {
		// The daemon's stderr reaches the buffer through a pipe: wait for
		// the records, then a little longer for any extra one.
		var got []map[string]any
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			got = auditRecords(t, p.stderr.String())[audited:]
			if len(got) >= len(want) || time.Now().After(deadline) {
				break
			}
		}
		time.Sleep(200 * time.Millisecond)
		got = auditRecords(t, p.stderr.String())[audited:]
		if len(got) != len(want) {
			t.Fatalf("%d audit records, want %d:\n%v", len(got), len(want), got)
		}
		for i, w := range want {
			r := got[i]
			if r["action"] != w.action || r["code"] != w.code || r["group_id"] != e2eGroup || r["caller"] != "anonymous" {
				t.Errorf("audit record %d = %v, want action %s, code %s", i, r, w.action, w.code)
			}
		}
	})
}

// exercisePrivateEndpoints takes one AWS private endpoint through its life
// with grpcurl: create, watch to ACTIVE, list, delete, watch to DELETED.
// The emulator's endpoints change state after a few seconds of real time;
// a watch that starts late sees the last state at once, so the round does
// not depend on how long anything takes.
func exercisePrivateEndpoints(t *testing.T, b binaries, p *proc) {
	t.Helper()
	const svc = "atlas.encryption.v1.EncryptionService/"
	target := `"groupId": "` + e2eGroup + `", "cloudProvider": "AWS"`
	audited := len(auditRecords(t, p.stderr.String()))
	// watch runs a watch to its end and returns the statuses it streamed.
	watch := func(t *testing.T, id string) []string {
		t.Helper()
		out, errOut, err := b.grpcurl(t, "-plaintext", "-d", `{`+target+`, "endpointId": "`+id+`"}`, p.grpcAddr, svc+"WatchPrivateEndpoint")
		if err != nil {
			t.Fatalf("grpcurl WatchPrivateEndpoint: %v\n%s%s", err, out, errOut)
		}
		var statuses []string
		dec := json.NewDecoder(strings.NewReader(out))
		for dec.More() {
			var m map[string]any
			if err := dec.Decode(&m); err != nil {
				t.Fatalf("watch output %q: %v", out, err)
			}
			if m["id"] != id {
				t.Errorf("watch message %v, want endpoint %s", m, id)
			}
			statuses = append(statuses, m["status"].(string))
		}
		return statuses
	}
	var id string
	t.Run("private endpoint: create", func(t *testing.T) {
		got := b.call(t, p, "CreatePrivateEndpoint", `{`+target+`, "privateEndpoint": {"regionName": "US_EAST_1"}}`)
		id, _ = got["id"].(string)
		if len(id) != 24 || got["status"] != "INITIATING" || got["cloudProvider"] != "AWS" {
			t.Fatalf("CreatePrivateEndpoint = %v, want an INITIATING AWS endpoint", got)
		}
	})
	if id == "" {
		return
	}
	t.Run("private endpoint: watch to ACTIVE", func(t *testing.T) {
		if got := watch(t, id); len(got) == 0 || got[len(got)-1] != "ACTIVE" {
			t.Errorf("the watch streamed %v, want it to end with ACTIVE", got)
		}
	})
	t.Run("private endpoint: list", func(t *testing.T) {
		got := b.call(t, p, "ListPrivateEndpoints", `{`+target+`}`)
		eps, _ := got["privateEndpoints"].([]any)
		if len(eps) != 1 || field(eps[0].(map[string]any), "id") != id || field(eps[0].(map[string]any), "status") != "ACTIVE" {
			t.Errorf("ListPrivateEndpoints = %v, want the one ACTIVE endpoint", got)
		}
	})
	t.Run("private endpoint: delete, watch to DELETED", func(t *testing.T) {
		got := b.call(t, p, "DeletePrivateEndpoint", `{`+target+`, "endpointId": "`+id+`"}`)
		if s := got["status"]; s != "DELETING" && s != "DELETED" {
			t.Errorf("DeletePrivateEndpoint = %v, want it DELETING", got)
		}
		if got := watch(t, id); len(got) == 0 || got[len(got)-1] != "DELETED" {
			t.Errorf("the watch streamed %v, want it to end with DELETED", got)
		}
	})
	t.Run("private endpoint: create and delete are audited", func(t *testing.T) {
		var got []string
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			got = got[:0]
			for _, r := range auditRecords(t, p.stderr.String())[audited:] {
				got = append(got, fmt.Sprint(r["action"], " ", r["code"], " ", r["endpoint_id"]))
			}
			if len(got) >= 2 || time.Now().After(deadline) {
				break
			}
		}
		want := []string{"create_private_endpoint OK " + id, "delete_private_endpoint OK " + id}
		if strings.Join(got, "; ") != strings.Join(want, "; ") {
			t.Errorf("audit records %q, want %q", got, want)
		}
	})
}

// checkNoSecrets fails if the daemon's output holds any of the secrets.
func checkNoSecrets(t *testing.T, p *proc, secrets ...string) {
	t.Helper()
	out := p.stdout.String() + p.stderr.String()
	for _, s := range append(secrets, awsSecret, azureSecret, "e2e-gcp-secret") {
		if strings.Contains(out, s) {
			t.Errorf("the daemon's output shows the secret %q", s)
		}
	}
}

func TestBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the real binary; skipped with -short")
	}
	t.Parallel()
	b := buildBinaries(t)

	t.Run("missing credentials", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, b.encryptiond)
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), daemon.EnvPrivateKey + "=half-a-s3cr3t"}
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() == 0 {
			t.Fatalf("encryptiond without credentials: %v, want a non-zero exit", err)
		}
		if !strings.Contains(string(out), daemon.EnvPublicKey) || !strings.Contains(string(out), daemon.EnvPrivateKey) {
			t.Errorf("encryptiond without credentials printed %q, want the variables named", out)
		}
		if strings.Contains(string(out), "half-a-s3cr3t") {
			t.Errorf("encryptiond printed a secret: %q", out)
		}
	})

	t.Run("dev", func(t *testing.T) {
		t.Parallel()
		p := start(t, b.encryptiond, nil, "-dev", "-grpc-addr", "127.0.0.1:0", "-http-addr", "127.0.0.1:0")
		if out := p.stdout.String(); !strings.Contains(out, "EMULATOR") {
			t.Errorf("-dev banner = %q, want it to say it runs against the emulator", out)
		}
		exercise(t, b, p)
		exercisePrivateEndpoints(t, b, p)
		exerciseWatch(t, b, p)
		exerciseList(t, p)
		t.Run("banner commands work verbatim", func(t *testing.T) {
			runBannerCommands(t, b, p)
		})
		t.Run("the lifecycle recipe", func(t *testing.T) {
			runLifecycleRecipe(t, b, p)
		})
		if err := p.stop(t); err != nil {
			t.Errorf("exit after SIGTERM = %v, want status 0\nstderr:\n%s", err, p.stderr)
		}
		checkNoSecrets(t, p)
	})

	t.Run("emulator", func(t *testing.T) {
		t.Parallel()
		const clientID, clientSecret = "mdb_sa_id_e2e", "mdb_sa_sk_e2e-client-s3cr3t"
		emu, srv := atlastest.NewServer(t, atlastest.EmulatorConfig{ClientID: clientID, ClientSecret: clientSecret, AutoCreateGroups: true, PrivateEndpointDelay: time.Second})
		p := start(t, b.encryptiond,
			[]string{daemon.EnvClientID + "=" + clientID, daemon.EnvClientSecret + "=" + clientSecret, daemon.EnvBaseURL + "=" + srv.URL, "GOMAXPROCS=1"},
			"-grpc-addr", "127.0.0.1:0", "-http-addr", "127.0.0.1:0", "-log-level", "debug",
		)
		for _, rec := range logRecords(t, p.stderr.String()) {
			if rec["msg"] == "serving" && rec["gomaxprocs"] != float64(1) {
				t.Errorf("serving record: gomaxprocs = %v, want 1 (the process runs with GOMAXPROCS=1)", rec["gomaxprocs"])
			}
		}
		exercise(t, b, p)
		exercisePrivateEndpoints(t, b, p)
		exerciseWatch(t, b, p)
		if st := emu.Stats(); st.Patches == 0 || st.Tokens == 0 {
			t.Errorf("emulator stats = %+v, want patches and a token: the daemon did not use the test's emulator", st)
		}
		if err := p.stop(t); err != nil {
			t.Errorf("exit after SIGTERM = %v, want status 0\nstderr:\n%s", err, p.stderr)
		}
		if !strings.Contains(p.stderr.String(), `"msg":"stopped"`) {
			t.Errorf("no stopped record after SIGTERM:\n%s", p.stderr)
		}
		checkNoSecrets(t, p, clientSecret)
	})
}

// runBannerCommands runs the commands the -dev banner prints, with the
// built grpcurl standing in for `go tool -modfile=tools/go.mod grpcurl`,
// and curl if it is installed.
func runBannerCommands(t *testing.T, b binaries, p *proc) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh to run the banner's commands")
	}
	_, curlErr := exec.LookPath("curl")
	n := 0
	for _, line := range strings.Split(p.stdout.String(), "\n") {
		switch {
		case strings.HasPrefix(line, "go tool -modfile=tools/go.mod grpcurl "):
			line = b.grpcurlBin + strings.TrimPrefix(line, "go tool -modfile=tools/go.mod grpcurl")
		case strings.HasPrefix(line, "curl ") && curlErr == nil:
		default:
			continue
		}
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		out, err := exec.CommandContext(ctx, sh, "-c", line).CombinedOutput()
		cancel()
		if err != nil || !strings.Contains(string(out), `"awsKms"`) {
			t.Errorf("banner command %q = %v\n%s", line, err, out)
		}
		n++
	}
	if n < 4 {
		t.Errorf("ran %d banner commands, want at least 4 (Get, enable, partial update, disable)", n)
	}
}

// runLifecycleRecipe makes the calls of README's "Trying the lifecycle in
// -dev": a disable that clusters block, named; an enable whose role
// propagates, sent again until Atlas can use it.
func runLifecycleRecipe(t *testing.T, b binaries, p *proc) {
	code, body := rest(t, "PATCH", "http://"+p.httpAD+"/v1/groups/"+daemon.DevBlockedGroupID+"/encryptionAtRest", `{"awsKms": {"enabled": false}}`)
	if code != http.StatusBadRequest || !strings.Contains(body, "FAILED_PRECONDITION") || !strings.Contains(body, "clusters/orders-prod") ||
		!strings.Contains(body, "clusters/payments-prod") || strings.Contains(body, "analytics") {
		t.Errorf("blocked disable = %d %s, want FAILED_PRECONDITION naming orders-prod and payments-prod only", code, body)
	}
	start := time.Now()
	got := b.call(t, p, "UpdateEncryptionAtRest", `{"groupId": "`+daemon.SampleGroupID+`", "config": {"awsKms": {"enabled": true, "customerMasterKeyID": "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab", "region": "US_EAST_1", "roleId": "`+daemon.DevPropagatingRoleID+`"}}}`)
	if field(got, "awsKms", "enabled") != true {
		t.Errorf("enable with a propagating role = %v, want AWS KMS enabled", got)
	}
	if took := time.Since(start); took < daemon.DevPropagation/2 {
		t.Errorf("enable with a propagating role answered in %v, want after the role propagated", took)
	}
	// The last enable audited in the sample project is this one.
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		recs := auditRecords(t, p.stderr.String())
		for i := len(recs) - 1; i >= 0; i-- {
			if r := recs[i]; r["action"] == "enable" && r["group_id"] == daemon.SampleGroupID {
				if a, _ := r["attempts"].(float64); a >= 2 {
					return
				}
				break
			}
		}
	}
	t.Errorf("no audit record of the enable with attempts above 1:\n%s", p.stderr)
}
