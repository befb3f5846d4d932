package main

import (
	"testing"
	"time"

	"github.com/encryptiond/encryptiond/atlas/atlastest"
)

func TestAllocDelta(t *testing.T) {
	t.Parallel()
	before := map[string]float64{"go_memstats_mallocs_total": 1000, "go_memstats_alloc_bytes_total": 10000}
	after := map[string]float64{"go_memstats_mallocs_total": 3000, "go_memstats_alloc_bytes_total": 50000}
	if o, by, err := allocDelta(before, after); o != 2000 || by != 40000 || err != nil {
		t.Errorf("allocDelta() = %v, %v, %v, want 2000, 40000, nil", o, by, err)
	}
	if _, _, err := allocDelta(map[string]float64{"go_memstats_mallocs_total": 1}, after); err == nil {
		t.Error("allocDelta(a counter missing) = nil error, want one")
	}
}

// TestLoadResultAdd checks that two turns of a run add up to the run
// (see alternate).
func TestLoadResultAdd(t *testing.T) {
	t.Parallel()
	ms := func(ns ...int) []time.Duration {
		out := make([]time.Duration, len(ns))
		for i, n := range ns {
			out[i] = time.Duration(n) * time.Millisecond
		}
		return out
	}
	first := loadResult{tool: "gen", calls: 4, errors: 1, cpu: time.Second, emuCPU: 2 * time.Second, lat: ms(50, 10, 30), elapsed: time.Second}
	second := loadResult{tool: "gen", calls: 2, cpu: time.Second, emuCPU: time.Second, lat: ms(20, 40), elapsed: time.Second}
	got := loadResult{}.add(first).add(second)
	want := loadResult{tool: "gen", calls: 6, errors: 1, cpu: 2 * time.Second, emuCPU: 3 * time.Second, elapsed: 2 * time.Second,
		rps: 2.5, p50: 30 * time.Millisecond, p99: 50 * time.Millisecond}
	got.lat = nil
	if got.String() != want.String() || got.cpu != want.cpu || got.emuCPU != want.emuCPU || got.elapsed != want.elapsed {
		t.Errorf("add() = %+v, want %+v", got, want)
	}
	if len(first.lat) != 3 || first.lat[0] != 50*time.Millisecond {
		t.Errorf("add() changed its operand: %v", first.lat)
	}
}

func TestPhaseAdd(t *testing.T) {
	t.Parallel()
	p := phase{EmulatorStats: atlastest.EmulatorStats{Requests: 3, Gets: 2, Patches: 1, Challenges: 1}, daemonCPU: 1, refCPU: 2, emuCPU: 3}
	got := p.add(p)
	want := phase{EmulatorStats: atlastest.EmulatorStats{Requests: 6, Gets: 4, Patches: 2, Challenges: 2}, daemonCPU: 2, refCPU: 4, emuCPU: 6}
	if got != want {
		t.Errorf("add() = %+v, want %+v", got, want)
	}
}
