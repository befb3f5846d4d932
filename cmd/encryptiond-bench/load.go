package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/icholy/digest"

	"github.com/encryptiond/encryptiond/cmd/internal/report"
)

// loadResult is what one bounded load run measured, whatever tool ran it.
type loadResult struct {
	tool     string
	calls    int64
	errors   int64
	rps      float64
	p50, p99 time.Duration
	// cpu is the CPU time (user and system) the load tool itself used:
	// the child process's for ghz and wrk, the driver's own for its Go
	// generators. On a small machine it is CPU the daemon did not get.
	cpu time.Duration
	// emuCPU is the CPU time the emulator used during the run, when the
	// driver measured it.
	emuCPU time.Duration
	// lat and elapsed are the successful calls' latencies and the run's
	// length, kept by the Go generator so that runs in turns add up.
	lat     []time.Duration
	elapsed time.Duration
}

// add returns the results of r and o, two turns of one Go generator run
// (see alternate), as one run.
func (r loadResult) add(o loadResult) loadResult {
	r.tool = o.tool
	r.calls, r.errors = r.calls+o.calls, r.errors+o.errors
	r.cpu, r.emuCPU, r.elapsed = r.cpu+o.cpu, r.emuCPU+o.emuCPU, r.elapsed+o.elapsed
	r.lat = slices.Concat(r.lat, o.lat)
	r.p50, r.p99 = report.Percentile(r.lat, 50), report.Percentile(r.lat, 99)
	r.rps = 0
	if r.elapsed > 0 {
		r.rps = float64(len(r.lat)) / r.elapsed.Seconds()
	}
	return r
}

func (r loadResult) String() string {
	s := fmt.Sprintf("%s: %d calls, %d errors, %.0f/s, p50 %s, p99 %s", r.tool, r.calls, r.errors, r.rps, ms(r.p50), ms(r.p99))
	if r.cpu > 0 && r.calls > 0 {
		s += fmt.Sprintf(", its own CPU %.0f µs per call", float64(r.cpu.Microseconds())/float64(r.calls))
	}
	return s
}

const getMethod = "atlas.encryption.v1.EncryptionService/GetEncryptionAtRest"

// writeGHZPool writes the requests that make ghz cycle through the project
// pool (see loadGroup), as the driver's own generators do, into dir: a JSON
// array, which ghz sends round robin. A fixed array rather than a template
// of .RequestNumber: ghz parses each element once and reuses the message,
// where a template costs it a template execution and a JSON parse per call,
// CPU the daemon would not get on a small machine.
func writeGHZPool(dir string) (string, error) {
	reqs := make([]map[string]string, loadPool)
	for i := range reqs {
		reqs[i] = map[string]string{"group_id": loadGroup(int64(i))}
	}
	data, err := json.Marshal(reqs)
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "ghz-pool.json")
	return path, os.WriteFile(path, data, 0o644)
}

// runGHZ runs ghz against the daemon's gRPC address for dur (or n calls
// when n > 0) with conc workers over conns connections, sending the
// requests in the file dataPath.
func runGHZ(ctx context.Context, bin, addr, dataPath string, conc, conns, n int, dur time.Duration) (loadResult, error) {
	args := []string{
		"--insecure", "--call", getMethod, "-D", dataPath,
		"--disable-template-functions", "--disable-template-data",
		"-c", strconv.Itoa(conc), "--connections", strconv.Itoa(conns),
		"--timeout", "20s", "-O", "json",
	}
	if n > 0 {
		args = append(args, "-n", strconv.Itoa(n))
	} else {
		// ghz cancels the calls still running when -z ends; --cpus is left
		// at its default (all cores), as a real client would be.
		args = append(args, "-z", dur.String())
	}
	args = append(args, addr)
	runCtx, cancel := context.WithTimeout(ctx, max(dur, 10*time.Second)+60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(runCtx, bin, args...)
	out, err := cmd.Output()
	if err != nil {
		return loadResult{}, fmt.Errorf("ghz: %w: %s", err, stderrOf(err))
	}
	var rep struct {
		Count               int64            `json:"count"`
		Rps                 float64          `json:"rps"`
		ErrorDist           map[string]int64 `json:"errorDistribution"`
		StatusCodeDist      map[string]int64 `json:"statusCodeDistribution"`
		LatencyDistribution []struct {
			Percentage int           `json:"percentage"`
			Latency    time.Duration `json:"latency"`
		} `json:"latencyDistribution"`
	}
	if err := json.Unmarshal(out, &rep); err != nil {
		return loadResult{}, fmt.Errorf("ghz output: %w", err)
	}
	r := loadResult{tool: "ghz", calls: rep.Count, rps: rep.Rps, cpu: childCPU(cmd)}
	for code, c := range rep.StatusCodeDist {
		// Calls cut by the end of -z are not failures of the daemon.
		if code != "OK" && !(n == 0 && (code == "Canceled" || code == "DeadlineExceeded" || code == "Unavailable")) {
			r.errors += c
		}
	}
	for _, l := range rep.LatencyDistribution {
		switch l.Percentage {
		case 50:
			r.p50 = l.Latency
		case 99:
			r.p99 = l.Latency
		}
	}
	return r, nil
}

func stderrOf(err error) string {
	if ee, ok := err.(*exec.ExitError); ok {
		return strings.TrimSpace(string(ee.Stderr))
	}
	return ""
}

// wrkScript cycles REST requests through the project pool (see
// loadGroup); setup numbers the threads so that theirs interleave.
const wrkScript = `
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
local counter = 0
request = function()
  counter = counter + 1
  return wrk.format("GET", string.format("/v1/groups/%s%016x/encryptionAtRest", prefix, (counter * 2 + tid) % pool))
end
`

// runWRK runs wrk for dur with conc connections. With pool set, requests
// cycle through the project pool under target; otherwise target is
// requested as is, with the given headers.
func runWRK(ctx context.Context, dir, target string, headers []string, conc int, dur time.Duration, pool bool) (loadResult, error) {
	args := []string{"-t", "2", "-c", strconv.Itoa(conc), "-d", fmt.Sprintf("%ds", int(dur.Seconds())), "--latency", "--timeout", "20s"}
	for _, h := range headers {
		args = append(args, "-H", h)
	}
	if pool {
		script := filepath.Join(dir, "pool.lua")
		vars := fmt.Sprintf("prefix = \"%08x\"\npool = %d\n", pfxLoad, loadPool)
		if err := os.WriteFile(script, []byte(vars+wrkScript), 0o644); err != nil {
			return loadResult{}, err
		}
		args = append(args, "-s", script)
	}
	args = append(args, target)
	runCtx, cancel := context.WithTimeout(ctx, dur+60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(runCtx, "wrk", args...)
	out, err := cmd.Output()
	if err != nil {
		return loadResult{}, fmt.Errorf("wrk: %w: %s", err, stderrOf(err))
	}
	r, err := parseWRK(string(out))
	r.cpu = childCPU(cmd)
	return r, err
}

// childCPU is the CPU time an exited child used.
func childCPU(cmd *exec.Cmd) time.Duration {
	if cmd.ProcessState == nil {
		return 0
	}
	return cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
}

// selfCPU is the CPU time this process has used so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

var (
	wrkRPS     = regexp.MustCompile(`Requests/sec:\s+([\d.]+)`)
	wrkCount   = regexp.MustCompile(`(\d+) requests in`)
	wrkPct     = regexp.MustCompile(`(?m)^\s+(50|99)(?:\.000)?%\s+([\d.]+)(us|ms|s)\s*$`)
	wrkNon2xx  = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
	wrkSockErr = regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
)

func parseWRK(out string) (loadResult, error) {
	r := loadResult{tool: "wrk"}
	m := wrkRPS.FindStringSubmatch(out)
	c := wrkCount.FindStringSubmatch(out)
	if m == nil || c == nil {
		return r, fmt.Errorf("wrk output not understood:\n%s", out)
	}
	r.rps, _ = strconv.ParseFloat(m[1], 64)
	r.calls, _ = strconv.ParseInt(c[1], 10, 64)
	for _, p := range wrkPct.FindAllStringSubmatch(out, -1) {
		v, _ := strconv.ParseFloat(p[2], 64)
		unit := map[string]time.Duration{"us": time.Microsecond, "ms": time.Millisecond, "s": time.Second}[p[3]]
		d := time.Duration(v * float64(unit))
		if p[1] == "50" {
			r.p50 = d
		} else {
			r.p99 = d
		}
	}
	if e := wrkNon2xx.FindStringSubmatch(out); e != nil {
		n, _ := strconv.ParseInt(e[1], 10, 64)
		r.errors += n
	}
	if e := wrkSockErr.FindStringSubmatch(out); e != nil {
		for _, s := range e[1:] {
			n, _ := strconv.ParseInt(s, 10, 64)
			r.errors += n
		}
	}
	return r, nil
}

// curlTimes runs curl n times in a row and returns each call's
// time_total; a status other than 200 is an error.
func curlTimes(ctx context.Context, n int, args ...string) ([]time.Duration, error) {
	var out []time.Duration
	for range n {
		a := append([]string{"-s", "-o", "/dev/null", "-w", "%{http_code} %{time_total}", "--max-time", "10"}, args...)
		b, err := exec.CommandContext(ctx, "curl", a...).Output()
		if err != nil {
			return nil, fmt.Errorf("curl: %w: %s", err, stderrOf(err))
		}
		code, secs, _ := strings.Cut(string(b), " ")
		if code != "200" {
			return nil, fmt.Errorf("curl %v: HTTP %s", args, code)
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(secs), 64)
		if err != nil {
			return nil, fmt.Errorf("curl time_total %q: %w", secs, err)
		}
		out = append(out, time.Duration(f*float64(time.Second)))
	}
	return out, nil
}

// goLoad runs call from conc goroutines for dur (the Go load generator,
// for the direct client and as a stand-in for wrk). i numbers the calls.
func goLoad(ctx context.Context, tool string, conc int, dur time.Duration, call func(ctx context.Context, i int64) error) loadResult {
	var next, errs atomic.Int64
	lats := make([][]time.Duration, conc)
	runCtx, cancel := context.WithTimeout(ctx, dur)
	defer cancel()
	start, cpu0 := time.Now(), selfCPU()
	var wg sync.WaitGroup
	for w := range conc {
		wg.Go(func() {
			for runCtx.Err() == nil {
				i := next.Add(1)
				t := time.Now()
				// A call in flight when the run ends still completes
				// (with the parent context), so none is cut.
				if err := call(ctx, i); err != nil {
					errs.Add(1)
					continue
				}
				lats[w] = append(lats[w], time.Since(t))
			}
		})
	}
	wg.Wait()
	all := slices.Concat(lats...)
	// The raw counts and latencies: alternate adds the turns up, and
	// loadResult.add works out the percentiles and the rate once, for all.
	return loadResult{
		tool: tool, calls: int64(len(all)) + errs.Load(), errors: errs.Load(),
		cpu: selfCPU() - cpu0, lat: all, elapsed: time.Since(start),
	}
}

// digestHeader answers the emulator's challenge for one GET of target
// once, so that wrk can replay the signed request: the emulator's nonces do
// not expire and it does not insist on increasing nonce counts by default,
// so every replay costs it one exchange, as a warm digest client's call.
func digestHeader(ctx context.Context, target, accept, user, pass string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Accept", accept)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	res.Body.Close()
	chal, err := digest.FindChallenge(res.Header)
	if err != nil {
		return "", fmt.Errorf("emulator challenge: %w", err)
	}
	cred, err := digest.Digest(chal, digest.Options{Method: http.MethodGet, URI: req.URL.RequestURI(), Count: 1, Username: user, Password: pass})
	if err != nil {
		return "", err
	}
	return "Authorization: " + cred.String(), nil
}

func ms(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 2, 64) + " ms"
}

// msFine is ms with microseconds, for differences near a limit.
func msFine(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 3, 64) + " ms"
}
