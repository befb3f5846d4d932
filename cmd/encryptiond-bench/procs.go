package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// proc is a child process whose output goes to a log file.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error
}

// startProc starts bin with args and env added to a minimal environment,
// writing its stdout and stderr to dir/name.log.
func startProc(dir, name, bin string, args, env []string) (*proc, error) {
	logPath := filepath.Join(dir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, env...)
	// If the driver dies without cleaning up, the kernel stops the child.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	return p, nil
}

// pid is the child's process id.
func (p *proc) pid() int { return p.cmd.Process.Pid }

// stop sends SIGTERM, waits up to 5 s, then kills.
func (p *proc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// waitLog polls the child's log until match returns ok for a line, the child
// exits, or the timeout passes.
func (p *proc) waitLog(ctx context.Context, timeout time.Duration, match func(line string) (string, bool)) (string, error) {
	deadline := time.Now().Add(timeout)
	for {
		if v, ok := scanLog(p.log, match); ok {
			return v, nil
		}
		select {
		case <-p.done:
			return "", fmt.Errorf("%s exited (%v); see %s:\n%s", p.name, p.err, p.log, tail(p.log, 2048))
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("%s not ready after %v; see %s", p.name, timeout, p.log)
		}
	}
}

func scanLog(path string, match func(string) (string, bool)) (string, bool) {
	f, err := os.Open(path)
	if err != nil {
		return "", false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := match(sc.Text()); ok {
			return v, true
		}
	}
	return "", false
}

func tail(path string, n int64) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	if int64(len(b)) > n {
		b = b[int64(len(b))-n:]
	}
	return string(b)
}

// memory is what /proc/PID/status says about a process's memory, in bytes.
type memory struct{ rss, hwm int64 }

func readMemory(pid int) (memory, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return memory{}, err
	}
	var m memory
	for line := range strings.SplitSeq(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			continue
		}
		switch k {
		case "VmRSS":
			m.rss = kb << 10
		case "VmHWM":
			m.hwm = kb << 10
		}
	}
	if m.rss == 0 {
		return m, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
	}
	return m, nil
}

// sampleRSS records the largest VmRSS of pid seen every 50 ms until ctx ends.
func sampleRSS(ctx context.Context, pid int) <-chan int64 {
	out := make(chan int64, 1)
	go func() {
		var peak int64
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			if m, err := readMemory(pid); err == nil {
				peak = max(peak, m.rss)
			}
			select {
			case <-ctx.Done():
				out <- peak
				return
			case <-t.C:
			}
		}
	}()
	return out
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// emulator drives a cmd/atlas-emulator process through its control
// endpoints.
type emulator struct {
	proc       *proc
	url        string // base URL of the Atlas API
	public     string
	private    string
	controlCli *http.Client
}

// emuStats mirrors atlastest.EmulatorStats (only the counters used here).
type emuStats struct {
	Requests   int64 `json:"requests"`
	Challenges int64 `json:"challenges"`
	Gets       int64 `json:"gets"`
	Patches    int64 `json:"patches"`
	Faults     int64 `json:"faults"`
}

func startEmulator(ctx context.Context, dir, bin string) (*emulator, error) {
	pub, priv := "bench-"+randomHex(4), randomHex(16)
	p, err := startProc(dir, "atlas-emulator", bin, []string{
		"-addr", "127.0.0.1:0", "-public-key", pub, "-private-key", priv, "-auto-create-groups=true",
	}, nil)
	if err != nil {
		return nil, err
	}
	url, err := p.waitLog(ctx, 10*time.Second, func(line string) (string, bool) {
		return strings.CutPrefix(line, "atlas-emulator listening on ")
	})
	if err != nil {
		p.stop()
		return nil, err
	}
	return &emulator{proc: p, url: url, public: pub, private: priv, controlCli: &http.Client{Timeout: 10 * time.Second}}, nil
}

func (e *emulator) control(ctx context.Context, method, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, e.url+"/_emulator/"+path, nil)
	if err != nil {
		return err
	}
	res, err := e.controlCli.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("emulator %s %s: %s: %s", method, path, res.Status, b)
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

// reset zeroes the counters and forgets recorded requests (which the
// emulator otherwise keeps for every call).
func (e *emulator) reset(ctx context.Context) error {
	return e.control(ctx, http.MethodPost, "reset-stats", nil)
}

func (e *emulator) stats(ctx context.Context) (emuStats, error) {
	var s emuStats
	err := e.control(ctx, http.MethodGet, "stats", &s)
	return s, err
}

func (e *emulator) setLatency(ctx context.Context, d time.Duration) error {
	return e.control(ctx, http.MethodPost, "latency?d="+d.String(), nil)
}

// counted runs f between a reset and a read of the emulator's counters.
func (e *emulator) counted(ctx context.Context, f func() error) (emuStats, error) {
	if err := e.reset(ctx); err != nil {
		return emuStats{}, err
	}
	if err := f(); err != nil {
		return emuStats{}, err
	}
	return e.stats(ctx)
}

// daemon is a running cmd/encryptiond.
type daemon struct {
	proc     *proc
	grpcAddr string
	httpAddr string
}

func startDaemon(ctx context.Context, dir, bin string, emu *emulator) (*daemon, error) {
	args := []string{"-grpc-addr", "127.0.0.1:0", "-http-addr", "127.0.0.1:0", "-atlas-base-url", emu.url}
	// A per-caller rate limit would throttle the load generators, which
	// are one caller: switch it off if this build has one.
	help, _ := exec.CommandContext(ctx, bin, "-help").CombinedOutput()
	if strings.Contains(string(help), "-rate-limit") {
		args = append(args, "-rate-limit", "0")
	}
	// Atlas speaks HTTP/2 (over HTTPS), so concurrent calls share a few
	// connections; the emulator serves HTTP/2 without TLS, and -atlas-h2c
	// makes the daemon use it, so that the load runs have Atlas's shape
	// rather than one HTTP/1.1 connection per call in flight.
	if strings.Contains(string(help), "-atlas-h2c") {
		args = append(args, "-atlas-h2c")
	}
	p, err := startProc(dir, "encryptiond", bin, args, []string{
		"MONGODB_ATLAS_PUBLIC_API_KEY=" + emu.public,
		"MONGODB_ATLAS_PRIVATE_API_KEY=" + emu.private,
	})
	if err != nil {
		return nil, err
	}
	var addrs struct {
		Msg      string `json:"msg"`
		GRPCAddr string `json:"grpc_addr"`
		HTTPAddr string `json:"http_addr"`
	}
	_, err = p.waitLog(ctx, 20*time.Second, func(line string) (string, bool) {
		if json.Unmarshal([]byte(line), &addrs) != nil || addrs.Msg != "serving" || addrs.GRPCAddr == "" {
			return "", false
		}
		return "", true
	})
	if err != nil {
		p.stop()
		return nil, err
	}
	return &daemon{proc: p, grpcAddr: addrs.GRPCAddr, httpAddr: addrs.HTTPAddr}, nil
}

// mallocs reads the daemon's cumulative heap allocation counters from
// /metrics (the Go collector's go_memstats_*).
func (d *daemon) mallocs(ctx context.Context) (objects, bytes float64, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+d.httpAddr+"/metrics", nil)
	if err != nil {
		return 0, 0, err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	found := 0
	for sc.Scan() {
		name, v, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		switch name {
		case "go_memstats_mallocs_total":
			objects, err = strconv.ParseFloat(v, 64)
			found++
		case "go_memstats_alloc_bytes_total":
			bytes, err = strconv.ParseFloat(v, 64)
			found++
		}
		if err != nil {
			return 0, 0, err
		}
	}
	if found != 2 {
		return 0, 0, errors.New("/metrics has no go_memstats_mallocs_total or go_memstats_alloc_bytes_total")
	}
	return objects, bytes, sc.Err()
}

// cpuTime returns the user plus system CPU time pid has used, from
// /proc/PID/stat (clock ticks of 10 ms, USER_HZ on Linux).
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name, in parentheses, may hold spaces: count from its end.
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond, nil
}
