package main

import (
	"slices"
	"testing"
	"time"
)

func TestPerInterval(t *testing.T) {
	t.Parallel()
	tests := []struct {
		n              int64
		window, period time.Duration
		want           float64
	}{
		{300, 30 * time.Second, 10 * time.Second, 100},
		{303, 30300 * time.Millisecond, 10 * time.Second, 100},
		{101, 10 * time.Second, 10 * time.Second, 101},
		{5, 0, 10 * time.Second, 0},
	}
	for _, tt := range tests {
		if got := perInterval(tt.n, tt.window, tt.period); got < tt.want-1e-9 || got > tt.want+1e-9 {
			t.Errorf("perInterval(%d, %v, %v) = %v, want %v", tt.n, tt.window, tt.period, got, tt.want)
		}
	}
}

func TestListBudget(t *testing.T) {
	t.Parallel()
	tests := []struct {
		n, conc int
		latency time.Duration
		want    time.Duration
	}{
		{1000, 8, 50 * time.Millisecond, 7500 * time.Millisecond}, // 1.2 × 125 × 50 ms
		{1001, 8, 50 * time.Millisecond, 7560 * time.Millisecond}, // ⌈1001/8⌉ = 126
		{7, 8, 50 * time.Millisecond, 60 * time.Millisecond},
	}
	for _, tt := range tests {
		if got := listBudget(tt.n, tt.conc, tt.latency); got != tt.want {
			t.Errorf("listBudget(%d, %d, %v) = %v, want %v", tt.n, tt.conc, tt.latency, got, tt.want)
		}
	}
}

func TestShortDuration(t *testing.T) {
	t.Parallel()
	for d, want := range map[time.Duration]string{10 * time.Second: "10 s", 50 * time.Millisecond: "50 ms", time.Minute: "60 s"} {
		if got := shortDuration(d); got != want {
			t.Errorf("shortDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestDescribeCalls(t *testing.T) {
	t.Parallel()
	tests := []struct {
		calls map[string]int64
		want  string
	}{
		{map[string]int64{"GET groups": 2, "GET encryptionAtRest": 1000}, "1000 GET encryptionAtRest, 2 GET groups"},
		{map[string]int64{"PATCH encryptionAtRest": 1, "GET encryptionAtRest": 1}, "1 GET encryptionAtRest, 1 PATCH encryptionAtRest"},
		{map[string]int64{"GET groups": 0}, "no Atlas calls"},
		{nil, "no Atlas calls"},
	}
	for _, tt := range tests {
		if got := describeCalls(tt.calls); got != tt.want {
			t.Errorf("describeCalls(%v) = %q, want %q", tt.calls, got, tt.want)
		}
	}
	calls := map[string]int64{callGetEAR: 1000, callGetGroups: 3, "GET clusters": 2, "PATCH encryptionAtRest": 1}
	if got := otherCalls(calls, callGetEAR, callGetGroups); got != 3 {
		t.Errorf("otherCalls(%v, %q, %q) = %d, want 3", calls, callGetEAR, callGetGroups, got)
	}
}

func TestKeyVersionOf(t *testing.T) {
	t.Parallel()
	for _, n := range []int{0, 1, 20, 12345} {
		if got, ok := keyVersionOf(gcpKeyVersion(n)); !ok || got != n {
			t.Errorf("keyVersionOf(gcpKeyVersion(%d)) = %d, %v, want %d, true", n, got, ok, n)
		}
	}
	for _, id := range []string{"", "projects/p/locations/global/keyRings/r/cryptoKeys/k/cryptoKeyVersions/2", gcpKeyVersion(1) + "x", gcpKeyVersion(-1)} {
		if got, ok := keyVersionOf(id); ok {
			t.Errorf("keyVersionOf(%q) = %d, true, want false", id, got)
		}
	}
}

func TestFanoutLatencies(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	returned := []time.Time{at(10), at(1000)}
	received := [][]time.Time{
		{at(5), at(12), at(40)},  // one before the answer
		{at(1001), {}, at(1100)}, // one never arrived
	}
	lat, early, missing := fanoutLatencies(returned, received)
	want := []time.Duration{0, 2 * time.Millisecond, 30 * time.Millisecond, time.Millisecond, 100 * time.Millisecond}
	if !slices.Equal(lat, want) || early != 1 || missing != 1 {
		t.Errorf("fanoutLatencies() = %v, %d, %d, want %v, 1, 1", lat, early, missing, want)
	}
}
