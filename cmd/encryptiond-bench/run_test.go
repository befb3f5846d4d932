package main

import (
	"encoding/json"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseFlags(t *testing.T) {
	t.Parallel()
	c, err := parseFlags([]string{"-steps", "overhead, memory", "-daemon-cpus", "0", "-daemon-args", "-log-level debug", "-daemon-env", "GOGC=200 GODEBUG=x=1"}, io.Discard)
	if err != nil {
		t.Fatalf("parseFlags() = %v", err)
	}
	if len(c.steps) != 2 || !c.runs(stepOverhead) || !c.runs(stepMemory) || c.runs(stepThroughput) {
		t.Errorf("steps = %v, want overhead and memory", c.steps)
	}
	if c.daemonCPUs != 0 || c.cpuEnv() != nil {
		t.Errorf("daemonCPUs = %d, cpuEnv() = %v; want 0 and none", c.daemonCPUs, c.cpuEnv())
	}
	if !slices.Equal(c.daemonArgs, []string{"-log-level", "debug"}) || !slices.Equal(c.daemonEnv, []string{"GOGC=200", "GODEBUG=x=1"}) {
		t.Errorf("daemonArgs = %q, daemonEnv = %q", c.daemonArgs, c.daemonEnv)
	}

	c, err = parseFlags(nil, io.Discard)
	if err != nil {
		t.Fatalf("parseFlags(nil) = %v", err)
	}
	if c.steps != nil || !c.runs(stepCallers) || !slices.Equal(c.cpuEnv(), []string{"GOMAXPROCS=1"}) {
		t.Errorf("defaults: steps = %v, cpuEnv() = %v; want every step, GOMAXPROCS=1", c.steps, c.cpuEnv())
	}

	c, err = parseFlags([]string{"-steps", "watch,fanout,list"}, io.Discard)
	if err != nil || !c.runs(stepWatch) || !c.runs(stepFanout) || !c.runs(stepList) || c.runs(stepMemory) {
		t.Errorf("parseFlags(-steps watch,fanout,list) = %v, %v; want the three fleet steps only", c.steps, err)
	}

	for _, bad := range [][]string{{"-steps", "4"}, {"-steps", "overhead,x"}, {"-daemon-cpus", "-1"}, {"-duration", "10ms"}, {"extra"}} {
		if _, err := parseFlags(bad, io.Discard); err == nil {
			t.Errorf("parseFlags(%q) = nil error", bad)
		}
	}
}

func TestCPUCeiling(t *testing.T) {
	t.Parallel()
	cores := float64(runtime.NumCPU())
	// 1000 calls that cost the tool 100 ms and the emulator 100 ms: 200 µs
	// a call, so every core gives 5000 calls/s.
	r := loadResult{calls: 1000, cpu: 100 * time.Millisecond, emuCPU: 100 * time.Millisecond}
	if got, want := cpuCeiling(r), 5000*cores; got < want*0.999 || got > want*1.001 {
		t.Errorf("cpuCeiling() = %.1f, want %.1f", got, want)
	}
	for _, unmeasured := range []loadResult{{cpu: time.Second, emuCPU: time.Second}, {calls: 1, emuCPU: time.Second}, {calls: 1, cpu: time.Second}} {
		if got := cpuCeiling(unmeasured); got != 0 {
			t.Errorf("cpuCeiling(%+v) = %v, want 0", unmeasured, got)
		}
	}
}

func TestWriteGHZPool(t *testing.T) {
	t.Parallel()
	path, err := writeGHZPool(t.TempDir())
	if err != nil {
		t.Fatalf("writeGHZPool() = %v", err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), "{{") {
		t.Error("the pool has template actions: ghz would execute them per call")
	}
	var reqs []map[string]string
	if err := json.Unmarshal(data, &reqs); err != nil {
		t.Fatalf("pool is not a JSON array of requests: %v", err)
	}
	if len(reqs) != loadPool {
		t.Fatalf("pool has %d requests, want %d", len(reqs), loadPool)
	}
	// ghz sends element RequestNumber % len: the same projects, in the
	// same order, as the driver's own generators.
	for _, i := range []int{0, 1, loadPool - 1} {
		if got, want := reqs[i]["group_id"], loadGroup(int64(i)); got != want {
			t.Errorf("request %d: group_id %q, want %q", i, got, want)
		}
	}
}
