package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/encryptiond/encryptiond/cmd/internal/procs"
)

// daemonArgs are the flags the driver adds to the daemon's, for the
// features this build of bin has.
func daemonArgs(ctx context.Context, bin string) []string {
	var args []string
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
	return args
}

// sampleRSS records the largest VmRSS of pid seen every 50 ms until ctx ends.
func sampleRSS(ctx context.Context, pid int) <-chan int64 {
	out := make(chan int64, 1)
	go func() {
		var peak int64
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			if m, err := procs.ReadMemory(pid); err == nil {
				peak = max(peak, m.RSS)
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

// mallocs reads the daemon's cumulative heap allocation counters from
// /metrics (the Go collector's go_memstats_*).
func mallocs(ctx context.Context, d *procs.Daemon) (objects, bytes float64, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+d.HTTPAddr+"/metrics", nil)
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
