package procs

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/encryptiond/encryptiond/atlas"
	"github.com/encryptiond/encryptiond/atlas/atlastest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// startShell starts /bin/sh -c script as a child named "sh".
func startShell(t *testing.T, h Harness, script string) *Proc {
	t.Helper()
	h.Dir = t.TempDir()
	p, err := h.start("sh", "/bin/sh", []string{"-c", script}, []string{"GREETING=hello"})
	if err != nil {
		t.Fatalf("start(sh) = %v", err)
	}
	t.Cleanup(p.Stop)
	return p
}

func readyAt(line string) (string, bool) { return strings.CutPrefix(line, "ready at ") }

func TestWaitLogAndStop(t *testing.T) {
	t.Parallel()
	p := startShell(t, Harness{}, `echo "$GREETING"; echo "ready at $HOME"; exec sleep 60`)
	got, err := p.waitLog(t.Context(), 10*time.Second, readyAt)
	if err != nil {
		t.Fatalf("waitLog() = %v", err)
	}
	if want := os.Getenv("HOME"); got != want {
		t.Errorf("waitLog() = %q, want %q (HOME passed on)", got, want)
	}
	if err := p.Err(); err != nil {
		t.Errorf("Err() before Stop = %v, want nil", err)
	}
	p.Stop()
	var exit *exec.ExitError
	if err := p.Err(); !errors.As(err, &exit) || !strings.Contains(err.Error(), "terminated") {
		t.Errorf("Err() after Stop = %v, want terminated by SIGTERM", err)
	}
	p.Stop() // a second Stop returns at once
	if b, err := os.ReadFile(p.LogPath()); err != nil || !strings.HasPrefix(string(b), "hello\n") {
		t.Errorf("log = %q, %v; want the child's output, env passed on", b, err)
	}
}

func TestLogPerChild(t *testing.T) {
	t.Parallel()
	h := Harness{Dir: t.TempDir()}
	var paths []string
	for _, greeting := range []string{"one", "two"} {
		p, err := h.start("sh", "/bin/sh", []string{"-c", "echo " + greeting}, nil)
		if err != nil {
			t.Fatalf("start(sh) = %v", err)
		}
		<-p.current().done // echo exits by itself
		paths = append(paths, p.LogPath())
	}
	want := []string{h.Dir + "/sh.log", h.Dir + "/sh-2.log"}
	if !slices.Equal(paths, want) {
		t.Fatalf("LogPath() of two children named sh = %q, want %q", paths, want)
	}
	for i, greeting := range []string{"one\n", "two\n"} {
		if b, err := os.ReadFile(paths[i]); err != nil || string(b) != greeting {
			t.Errorf("%s = %q, %v, want %q (its own child's output only)", paths[i], b, err, greeting)
		}
	}
}

func TestWaitLogFails(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		script  string
		timeout time.Duration
		want    string
	}{
		{"exits first", `echo boom; exit 3`, 10 * time.Second, "sh exited (exit status 3) before it was ready"},
		{"never ready", `exec sleep 60`, 200 * time.Millisecond, "sh not ready after 200ms"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := startShell(t, Harness{}, tt.script)
			_, err := p.waitLog(t.Context(), tt.timeout, readyAt)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("waitLog() = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestErrorRecords(t *testing.T) {
	t.Parallel()
	p := startShell(t, Harness{}, `echo '{"level":"INFO","msg":"a"}'; echo '{"level":"ERROR","msg":"b"}'; echo 'not JSON "level":"ERROR"'; echo '{"level":"ERROR","msg":"c"}'`)
	<-p.current().done
	if n, err := p.ErrorRecords(); n != 2 || err != nil {
		t.Errorf("ErrorRecords() = %d, %v, want 2 (JSON records only), nil", n, err)
	}
}

func TestStopKillsAfterGrace(t *testing.T) {
	t.Parallel()
	p := startShell(t, Harness{StopGrace: 200 * time.Millisecond}, `trap "" TERM; echo "ready at x"; while :; do sleep 1; done`)
	if _, err := p.waitLog(t.Context(), 10*time.Second, readyAt); err != nil {
		t.Fatalf("waitLog() = %v", err)
	}
	start := time.Now()
	p.Stop()
	if err := p.Err(); err == nil || !strings.Contains(err.Error(), "killed") {
		t.Errorf("Err() after Stop = %v, want killed", err)
	}
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Errorf("Stop() took %v, want at least the 200ms grace", d)
	}
}

func TestServingAddrs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, line         string
		wantGRPC, wantHTTP string
		wantOK             bool
	}{
		{"serving", `{"level":"INFO","msg":"serving","grpc_addr":"127.0.0.1:1","http_addr":"127.0.0.1:2"}`, "127.0.0.1:1", "127.0.0.1:2", true},
		{"another record", `{"level":"INFO","msg":"starting","grpc_addr":"127.0.0.1:1"}`, "", "", false},
		{"no gRPC address", `{"msg":"serving"}`, "", "", false},
		{"not JSON", `serving 127.0.0.1:1`, "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g, h, ok := servingAddrs(tt.line)
			if g != tt.wantGRPC || h != tt.wantHTTP || ok != tt.wantOK {
				t.Errorf("servingAddrs(%q) = %q, %q, %v, want %q, %q, %v", tt.line, g, h, ok, tt.wantGRPC, tt.wantHTTP, tt.wantOK)
			}
		})
	}
}

func TestReadMemory(t *testing.T) {
	t.Parallel()
	m, err := ReadMemory(os.Getpid())
	if err != nil || m.RSS <= 0 || m.HWM < m.RSS {
		t.Errorf("ReadMemory(self) = %+v, %v, want RSS > 0 and HWM ≥ RSS", m, err)
	}
	if _, err := ReadMemory(-1); err == nil {
		t.Error("ReadMemory(-1) = nil error, want one")
	}
}

// TestEmulatorControl drives an in-memory emulator's control endpoints,
// which cmd/atlas-emulator serves the same way.
func TestEmulatorControl(t *testing.T) {
	t.Parallel()
	const group = "5f3b1c2d3e4f5a6b7c8d9e0f"
	emu, srv := atlastest.NewServer(t, atlastest.EmulatorConfig{PublicKey: "pub", PrivateKey: "priv", AutoCreateGroups: true})
	e := &Emulator{URL: srv.URL, hc: srv.Client()}
	ctx := t.Context()

	// An unsigned request: one exchange, answered with a digest challenge.
	res, err := srv.Client().Get(srv.URL + "/api/atlas/v2/groups/" + group + "/encryptionAtRest")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if got, err := e.Stats(ctx); err != nil || got != emu.Stats() || got.Requests != 1 || got.Challenges != 1 {
		t.Errorf("Stats() = %+v, %v, want one request and one challenge, as the emulator says (%+v)", got, err, emu.Stats())
	}
	if err := e.ResetStats(ctx); err != nil || emu.Stats() != (atlastest.EmulatorStats{}) {
		t.Errorf("ResetStats() = %v, emulator stats %+v, want nil and zero", err, emu.Stats())
	}
	if err := e.AddProject(ctx, group, "a project & more"); err != nil {
		t.Errorf("AddProject() = %v", err)
	}
	signed, err := atlas.NewClient(atlas.WithBaseURL(srv.URL), atlas.WithDigest("pub", "priv"))
	if err != nil {
		t.Fatal(err)
	}
	groups, err := signed.ListGroups(ctx, atlas.ListOptions{PageNum: 1, ItemsPerPage: 10})
	if err != nil || len(groups.Results) != 1 || groups.Results[0].ID != group || groups.Results[0].Name != "a project & more" {
		t.Errorf("after AddProject, ListGroups() = %+v, %v, want the project with its name", groups, err)
	}
	if got, err := e.Calls(ctx); err != nil || got["GET groups"] != 1 || len(got) != 1 {
		t.Errorf("Calls() = %v, %v, want one GET groups", got, err)
	}
	st, err := e.State(ctx, group)
	if _, ok := st["awsKms"]; err != nil || !ok {
		t.Errorf("State(%s) = %v, %v, want a document with awsKms", group, st, err)
	}
	for _, call := range []struct {
		name string
		f    func() error
	}{
		{"SetLatency(0)", func() error { return e.SetLatency(ctx, 0) }},
		{"SetFaultRate(0.05, [500 503 429])", func() error { return e.SetFaultRate(ctx, 0.05, []int{500, 503, 429}) }},
		{"SetFaultRate(0, nil)", func() error { return e.SetFaultRate(ctx, 0, nil) }},
		{"InjectFault(drop a PATCH)", func() error {
			return e.InjectFault(ctx, atlastest.Fault{Drop: true, Method: http.MethodPatch, Times: 2})
		}},
		{"InjectFault(429, Retry-After 2s)", func() error {
			return e.InjectFault(ctx, atlastest.Fault{Status: http.StatusTooManyRequests, RetryAfter: 2 * time.Second})
		}},
		{"ClearFaults()", func() error { return e.ClearFaults(ctx) }},
	} {
		if err := call.f(); err != nil {
			t.Errorf("%s = %v, want nil", call.name, err)
		}
	}
	if err := e.SetFaultRate(ctx, 2, nil); err == nil || !strings.Contains(err.Error(), "400") {
		t.Errorf("SetFaultRate(2) = %v, want the emulator's 400", err)
	}
}

func TestStart(t *testing.T) {
	t.Parallel()
	bin := t.TempDir()
	script := "#!/bin/sh\necho \"ready at $GREETING $1\"\nexec sleep 60\n"
	if err := os.WriteFile(bin+"/helper", []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	h := Harness{Bin: bin, Dir: t.TempDir(), Ready: 10 * time.Second}
	p, got, err := h.Start(t.Context(), "helper", []string{"arg"}, []string{"GREETING=hello"}, readyAt)
	if err != nil {
		t.Fatalf("Start() = %v", err)
	}
	defer p.Stop()
	if got != "hello arg" {
		t.Errorf("Start() = %q, want %q (args and env passed on)", got, "hello arg")
	}

	// A child that exits before it is ready is an error, and is stopped.
	if err := os.WriteFile(bin+"/quitter", []byte("#!/bin/sh\necho bye\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, _, err := h.Start(t.Context(), "quitter", nil, nil, readyAt); err == nil || !strings.Contains(err.Error(), "bye") {
		t.Errorf("Start(quitter) = %v, want an error quoting its output", err)
	}
}

// TestStartDaemon starts a stand-in for encryptiond that announces itself
// as the daemon does and echoes its flags and credentials.
func TestStartDaemon(t *testing.T) {
	t.Parallel()
	bin := t.TempDir()
	script := `#!/bin/sh
echo "args: $*"
echo "key: $MONGODB_ATLAS_PUBLIC_API_KEY GOGC=$GOGC"
echo '{"level":"INFO","msg":"serving","grpc_addr":"127.0.0.1:1","http_addr":"127.0.0.1:2"}'
exec sleep 60
`
	if err := os.WriteFile(bin+"/encryptiond", []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	h := Harness{Bin: bin, Dir: t.TempDir(), Ready: 10 * time.Second, DaemonEnv: []string{"GOGC=200"}}
	emu := &Emulator{URL: "http://127.0.0.1:3", PublicKey: "pub", PrivateKey: "priv"}
	d, err := h.StartDaemon(t.Context(), emu, "-atlas-h2c")
	if err != nil {
		t.Fatalf("StartDaemon() = %v", err)
	}
	defer d.Stop()
	if d.GRPCAddr != "127.0.0.1:1" || d.HTTPAddr != "127.0.0.1:2" || d.Conn == nil || d.Client == nil {
		t.Errorf("StartDaemon() = %+v, want the announced addresses and a client", d)
	}
	if got := d.Conn.Target(); got != d.GRPCAddr {
		t.Errorf("Conn.Target() = %q, want %q", got, d.GRPCAddr)
	}
	b, err := os.ReadFile(d.Proc.LogPath())
	for _, want := range []string{"args: -grpc-addr 127.0.0.1:0 -http-addr 127.0.0.1:0 -atlas-base-url http://127.0.0.1:3 -atlas-h2c\n", "key: pub GOGC=200\n"} {
		if err != nil || !strings.Contains(string(b), want) {
			t.Errorf("log = %q, %v; want it to hold %q", b, err, want)
		}
	}
	d.Stop()
	if d.Proc.Err() == nil {
		t.Error("Proc.Err() after Stop = nil, want terminated")
	}
	d.Stop() // a second Stop returns at once
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	names := []string{"go_goroutines", "go_memstats_mallocs_total", "go_memstats_heap_inuse_bytes"}
	tests := []struct {
		name, page string
		want       map[string]float64 // nil: an error
	}{
		{
			"unlabelled series read, others skipped",
			"# HELP go_goroutines Number of goroutines.\n# TYPE go_goroutines gauge\ngo_goroutines 31\n" +
				"go_memstats_mallocs_total 1.5e+06\ngo_gc_duration_seconds{quantile=\"0.5\"} 0.001\nother 2\n",
			map[string]float64{"go_goroutines": 31, "go_memstats_mallocs_total": 1.5e6},
		},
		{"a value that is not a number", "go_goroutines many\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/metrics" {
					http.NotFound(w, r)
					return
				}
				fmt.Fprint(w, tt.page)
			}))
			defer srv.Close()
			d := &Daemon{HTTPAddr: srv.Listener.Addr().String(), hc: srv.Client()}
			got, err := d.Metrics(t.Context(), names...)
			if tt.want == nil {
				if err == nil {
					t.Errorf("Metrics() = %v, nil error, want an error", got)
				}
				return
			}
			if err != nil || fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("Metrics() = %v, %v, want %v", got, err, tt.want)
			}
		})
	}
}

func TestRandomHex(t *testing.T) {
	t.Parallel()
	a, b := RandomHex(12), RandomHex(12)
	if len(a) != 24 || strings.Trim(a, "0123456789abcdef") != "" || a == b {
		t.Errorf("RandomHex(12) = %q, then %q; want 24 hex digits, different each time", a, b)
	}
}

// writeScript writes an executable shell script named name into dir.
func writeScript(t *testing.T, dir, name, script string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"+script), 0o755); err != nil {
		t.Fatal(err)
	}
}

// TestRestart restarts a child: a new incarnation with its own log and
// pid, the same environment, new arguments; the logs of both are kept.
func TestRestart(t *testing.T) {
	t.Parallel()
	h := Harness{Bin: t.TempDir(), Dir: t.TempDir(), Ready: 10 * time.Second}
	writeScript(t, h.Bin, "helper", `echo '{"level":"ERROR","msg":"one per run"}'; echo "ready at $GREETING $1"; exec sleep 60`)
	p, got, err := h.Start(t.Context(), "helper", []string{"first"}, []string{"GREETING=hello"}, readyAt)
	if err != nil {
		t.Fatalf("Start() = %v", err)
	}
	defer p.Stop()
	firstPID := p.PID()
	got, err = p.Restart(t.Context(), []string{"second"}, readyAt)
	if err != nil || got != "hello second" {
		t.Fatalf("Restart(second) = %q, %v, want %q (new args, same environment)", got, err, "hello second")
	}
	if p.PID() == firstPID {
		t.Errorf("PID() after Restart = %d, the first incarnation's", firstPID)
	}
	if err := p.Err(); err != nil {
		t.Errorf("Err() of the running second incarnation = %v, want nil", err)
	}
	want := []string{filepath.Join(h.Dir, "helper.log"), filepath.Join(h.Dir, "helper-2.log")}
	if got := p.LogPaths(); !slices.Equal(got, want) {
		t.Errorf("LogPaths() = %q, want %q", got, want)
	}
	if p.LogPath() != want[1] {
		t.Errorf("LogPath() = %q, want the current incarnation's %q", p.LogPath(), want[1])
	}
	if n, err := p.ErrorRecords(); n != 2 || err != nil {
		t.Errorf("ErrorRecords() = %d, %v, want 2: one in each incarnation's log", n, err)
	}
	p.Stop()
	if err := p.Err(); err == nil {
		t.Error("Err() after Stop = nil, want terminated")
	}
}

// TestRestartRetries restarts a child whose second run exits at once, as
// one that lost its port would: Restart starts it again.
func TestRestartRetries(t *testing.T) {
	t.Parallel()
	h := Harness{Bin: t.TempDir(), Dir: t.TempDir(), Ready: 10 * time.Second}
	writeScript(t, h.Bin, "helper", `n=$(cat "$0.count" 2>/dev/null || echo 0); n=$((n+1)); echo $n > "$0.count"
if [ $n -eq 2 ]; then echo "listen tcp: bind: address already in use"; exit 1; fi
echo "ready at run $n"; exec sleep 60`)
	p, _, err := h.Start(t.Context(), "helper", nil, nil, readyAt)
	if err != nil {
		t.Fatalf("Start() = %v", err)
	}
	defer p.Stop()
	if got, err := p.Restart(t.Context(), nil, readyAt); err != nil || got != "run 3" {
		t.Errorf("Restart() = %q, %v, want ready at the third run", got, err)
	}
	if n := len(p.LogPaths()); n != 3 {
		t.Errorf("LogPaths() has %d logs, want 3 (one per run, the failed one included)", n)
	}

	// A child that never comes up fails after three attempts, quoting it.
	writeScript(t, h.Bin, "quitter", `echo "address already in use"; exit 1`)
	q := startShell(t, h, `echo "ready at once"; exec sleep 60`)
	q.bin = filepath.Join(h.Bin, "quitter")
	if _, err := q.Restart(t.Context(), nil, readyAt); err == nil || !strings.Contains(err.Error(), "address already in use") {
		t.Errorf("Restart(quitter) = %v, want its output quoted", err)
	}
	if n := len(q.LogPaths()); n != 1+restartAttempts {
		t.Errorf("Restart(quitter) made %d logs, want the first run's and %d attempts", n, restartAttempts)
	}
}

// TestDaemonRestart restarts a stand-in for encryptiond that announces the
// addresses it is given (fixed ones for port 0): the restart asks for the
// same addresses, flags and credentials.
func TestDaemonRestart(t *testing.T) {
	t.Parallel()
	h := Harness{Bin: t.TempDir(), Dir: t.TempDir(), Ready: 10 * time.Second}
	// With MOVE set, the second run serves REST elsewhere.
	writeScript(t, h.Bin, "encryptiond", `g=$2 r=$4
[ "$g" = 127.0.0.1:0 ] && g=127.0.0.1:1
[ "$r" = 127.0.0.1:0 ] && r=127.0.0.1:2
[ -n "$MOVE" ] && [ -e "$MOVE" ] && r=127.0.0.1:3
[ -n "$MOVE" ] && touch "$MOVE"
echo "args: $* key: $MONGODB_ATLAS_PRIVATE_API_KEY"
echo '{"level":"INFO","msg":"serving","grpc_addr":"'$g'","http_addr":"'$r'"}'
exec sleep 60
`)
	emu := &Emulator{URL: "http://127.0.0.1:3", PublicKey: "pub", PrivateKey: "priv"}
	d, err := h.StartDaemon(t.Context(), emu, "-shutdown-timeout", "1s")
	if err != nil {
		t.Fatalf("StartDaemon() = %v", err)
	}
	defer d.Stop()
	d.Proc.Stop() // down for a while, as a chaos run has it
	if err := d.Restart(t.Context()); err != nil {
		t.Fatalf("Restart() = %v", err)
	}
	if d.GRPCAddr != "127.0.0.1:1" || d.HTTPAddr != "127.0.0.1:2" || d.Conn.Target() != "127.0.0.1:1" {
		t.Errorf("after Restart: %s, %s, client of %s; want the same addresses and client", d.GRPCAddr, d.HTTPAddr, d.Conn.Target())
	}
	b, err := os.ReadFile(d.Proc.LogPath())
	if want := "args: -grpc-addr 127.0.0.1:1 -http-addr 127.0.0.1:2 -atlas-base-url http://127.0.0.1:3 -shutdown-timeout 1s key: priv\n"; err != nil || !strings.HasPrefix(string(b), want) {
		t.Errorf("restarted daemon's log = %q, %v; want it to start with %q", b, err, want)
	}

	// A daemon that comes back elsewhere is an error: its clients would
	// not find it.
	h.DaemonEnv = []string{"MOVE=" + filepath.Join(t.TempDir(), "moved")}
	d2, err := h.StartDaemon(t.Context(), emu)
	if err != nil {
		t.Fatalf("StartDaemon() = %v", err)
	}
	defer d2.Stop()
	if err := d2.Restart(t.Context()); err == nil || !strings.Contains(err.Error(), "want 127.0.0.1:1 127.0.0.1:2") {
		t.Errorf("Restart() of a daemon that moved = %v, want an error naming the addresses", err)
	}
}

// TestEmulatorRestartKeepsState runs the real cmd/atlas-emulator with
// -state, configures a project through the Atlas client, restarts it: it
// listens on the same address, under the same credentials, with the
// project as it was.
func TestEmulatorRestartKeepsState(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs cmd/atlas-emulator; skipped with -short")
	}
	t.Parallel()
	const group = "5f3b1c2d3e4f5a6b7c8d9e0f"
	h := Harness{Bin: buildEmulator(t), Dir: t.TempDir(), Ready: 20 * time.Second}
	state := filepath.Join(t.TempDir(), "state.json")
	emu, err := h.StartEmulator(t.Context(), "-state", state)
	if err != nil {
		t.Fatalf("StartEmulator() = %v", err)
	}
	defer emu.Proc.Stop()
	c, err := atlas.NewClient(atlas.WithBaseURL(emu.URL), atlas.WithDigest(emu.PublicKey, emu.PrivateKey))
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseIdleConnections()
	key := "projects/p/locations/l/keyRings/r/cryptoKeys/k/cryptoKeyVersions/7"
	if _, err := c.UpdateEncryptionAtRest(t.Context(), group, &atlas.EncryptionAtRest{GoogleCloudKMS: &atlas.GoogleCloudKMS{
		Enabled: ptr(true), KeyVersionResourceID: ptr(key), RoleID: ptr("64b6e34b3d91647abb20e7b9"),
	}}); err != nil {
		t.Fatalf("UpdateEncryptionAtRest() = %v", err)
	}
	url := emu.URL
	if err := emu.Restart(t.Context()); err != nil {
		t.Fatalf("Restart() = %v", err)
	}
	if emu.URL != url {
		t.Errorf("URL after Restart = %s, want %s", emu.URL, url)
	}
	if err := emu.Proc.Err(); err != nil {
		t.Errorf("Err() of the restarted emulator = %v, want it running", err)
	}
	got, err := c.GetEncryptionAtRest(t.Context(), group) // challenged again: nonces are not kept
	if err != nil || got.GoogleCloudKMS == nil || got.GoogleCloudKMS.KeyVersionResourceID == nil || *got.GoogleCloudKMS.KeyVersionResourceID != key {
		t.Errorf("GetEncryptionAtRest() after Restart = %+v, %v, want googleCloudKms with %s", got, err, key)
	}
	if st, err := emu.State(t.Context(), group); err != nil || st["googleCloudKms"].(map[string]any)["enabled"] != true {
		t.Errorf("State() after Restart = %v, %v, want googleCloudKms enabled", st, err)
	}
	// The first incarnation wrote the state as it stopped, cleanly.
	if b, err := os.ReadFile(emu.Proc.LogPaths()[0]); err != nil || !strings.Contains(string(b), "atlas-emulator wrote 1 projects to "+state) {
		t.Errorf("first emulator's log = %q, %v; want the state written", b, err)
	}
}

// buildEmulator builds cmd/atlas-emulator into a new directory and
// returns the directory.
func buildEmulator(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	root, err := filepath.Abs("../../..")
	if err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, goBin, "-C", root, "build", "-o", bin, "./cmd/atlas-emulator").CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/atlas-emulator: %v\n%s", err, out)
	}
	return bin
}

func ptr[T any](v T) *T { return &v }
