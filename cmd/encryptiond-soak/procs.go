package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
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

	"github.com/encryptiond/encryptiond/atlas/atlastest"
)

// proc is a child process whose output goes to a log file.
type proc struct {
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error // the exit error, once done is closed
}

// startProc starts bin with args, and env added to a minimal environment,
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
	p := &proc{cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// stop sends SIGTERM, waits up to 20 s, then kills. It may be called again.
func (p *proc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// waitLog polls the child's log until match accepts a line, the child
// exits, or timeout passes.
func (p *proc) waitLog(ctx context.Context, timeout time.Duration, match func(line string) (string, bool)) (string, error) {
	deadline := time.Now().Add(timeout)
	for {
		if b, err := os.ReadFile(p.log); err == nil {
			sc := bufio.NewScanner(bytes.NewReader(b))
			sc.Buffer(nil, 1<<20)
			for sc.Scan() {
				if v, ok := match(sc.Text()); ok {
					return v, nil
				}
			}
		}
		select {
		case <-p.done:
			out, _ := os.ReadFile(p.log)
			return "", fmt.Errorf("exited (%v) before it was ready:\n%s", p.err, out)
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("not ready after %v", timeout)
		}
	}
}

// servingAddrs matches the daemon's "serving" log record and returns
// "<grpc addr> <http addr>".
func servingAddrs(line string) (string, bool) {
	var rec struct {
		Msg      string `json:"msg"`
		GRPCAddr string `json:"grpc_addr"`
		HTTPAddr string `json:"http_addr"`
	}
	if json.Unmarshal([]byte(line), &rec) != nil || rec.Msg != "serving" {
		return "", false
	}
	return rec.GRPCAddr + " " + rec.HTTPAddr, true
}

// control drives the emulator's /_emulator/ endpoints.
type control struct {
	base string
	hc   *http.Client
}

func (c *control) do(ctx context.Context, method, path string, into any) error {
	req, err := http.NewRequestWithContext(ctx, method, c.base+"/_emulator/"+path, nil)
	if err != nil {
		return err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, b)
	}
	if into != nil {
		return json.Unmarshal(b, into)
	}
	return nil
}

func (c *control) post(ctx context.Context, path string) error {
	return c.do(ctx, http.MethodPost, path, nil)
}

func (c *control) stats(ctx context.Context) (atlastest.EmulatorStats, error) {
	var st atlastest.EmulatorStats
	err := c.do(ctx, http.MethodGet, "stats", &st)
	return st, err
}

// state is the project's configuration as the emulator holds it.
func (c *control) state(ctx context.Context, groupID string) (map[string]any, error) {
	var st map[string]any
	err := c.do(ctx, http.MethodGet, "state?group="+groupID, &st)
	return st, err
}

// sampler reads the daemon's resident set size and goroutine count.
type sampler struct {
	pid        int
	metricsURL string
	hc         *http.Client
}

type sample struct {
	rss        int64 // bytes; 0 if unknown
	heapInuse  int64 // bytes of Go heap spans in use; -1 if unknown
	goroutines int   // -1 if unknown
}

func (s *sampler) take(ctx context.Context) sample {
	out := sample{rss: rss(s.pid)}
	out.goroutines, out.heapInuse = s.runtimeMetrics(ctx)
	return out
}

// rss returns VmRSS of pid in bytes, from /proc; 0 if it cannot be read.
func rss(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				return 0
			}
			return kb << 10
		}
	}
	return 0
}

// runtimeMetrics reads go_goroutines and go_memstats_heap_inuse_bytes from
// the daemon's /metrics; -1 for what it cannot read.
func (s *sampler) runtimeMetrics(ctx context.Context) (goroutines int, heapInuse int64) {
	goroutines, heapInuse = -1, -1
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.metricsURL, nil)
	if err != nil {
		return
	}
	resp, err := s.hc.Do(req)
	if err != nil {
		return
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(io.LimitReader(resp.Body, 8<<20))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		name, v, ok := strings.Cut(sc.Text(), " ")
		if !ok || name != "go_goroutines" && name != "go_memstats_heap_inuse_bytes" {
			continue
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil {
			continue
		}
		if name == "go_goroutines" {
			goroutines = int(f)
		} else {
			heapInuse = int64(f)
		}
	}
	return
}

// countSecrets counts occurrences of the secrets in out.
func countSecrets(out string, secrets []string) int {
	n := 0
	for _, s := range secrets {
		if s != "" {
			n += strings.Count(out, s)
		}
	}
	return n
}

// countErrorRecords counts the daemon's log records at level ERROR (a
// recovered panic, a failed listener): there should be none.
func countErrorRecords(out string) int {
	n := 0
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var rec struct {
			Level string `json:"level"`
		}
		if json.Unmarshal(sc.Bytes(), &rec) == nil && rec.Level == "ERROR" {
			n++
		}
	}
	return n
}
