package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/encryptiond/encryptiond/cmd/internal/procs"
)

// startPeakRSS samples the RSS of pid (see sampleRSS) until the function
// it returns is first called, which returns the peak; later calls return
// it again.
func startPeakRSS(ctx context.Context, pid int) func() int64 {
	ctx, cancel := context.WithCancel(ctx)
	peak := sampleRSS(ctx, pid)
	return sync.OnceValue(func() int64 {
		cancel()
		return <-peak
	})
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

// allocMetrics are the daemon's cumulative heap allocation counters in
// /metrics (the Go collector's), read before and after a load run.
var allocMetrics = []string{"go_memstats_mallocs_total", "go_memstats_alloc_bytes_total"}

// allocDelta is the heap objects and bytes the daemon allocated between two
// readings of allocMetrics.
func allocDelta(before, after map[string]float64) (objects, bytes float64, err error) {
	for _, name := range allocMetrics {
		_, ok0 := before[name]
		_, ok1 := after[name]
		if !ok0 || !ok1 {
			return 0, 0, fmt.Errorf("the daemon's /metrics has no %s", name)
		}
	}
	return after[allocMetrics[0]] - before[allocMetrics[0]], after[allocMetrics[1]] - before[allocMetrics[1]], nil
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
