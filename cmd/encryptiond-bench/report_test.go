package main

import (
	"io"
	"strings"
	"testing"
	"time"
)

func TestRatio(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		q         ratio
		want      verdict
		wantText  string
		wantLimit string
	}{
		{"cost under its limit", ratio{num: 0.30, den: 0.25, limit: 1.25}, pass, "1.20×", "≤ 1.25×"},
		{"cost at its limit", ratio{num: 5, den: 4, limit: 1.25}, pass, "1.25×", "≤ 1.25×"},
		{"cost over its limit", ratio{num: 0.367, den: 0.267, limit: 1.25}, fail, "1.37×", "≤ 1.25×"},
		{"a negative cost passes", ratio{num: -0.01, den: 0.2, limit: 2}, pass, "-0.05×", "≤ 2×"},
		{"rate over its floor", ratio{num: 4358, den: 7058, limit: 0.6, atLeast: true, percent: true}, pass, "62%", "≥ 60%"},
		{"rate under its floor", ratio{num: 2707, den: 4900, limit: 0.6, atLeast: true, percent: true}, fail, "55%", "≥ 60%"},
		{"just over its limit: more digits", ratio{num: 1.154, den: 1, limit: 1.15}, fail, "1.154×", "≤ 1.15×"},
		{"just under its floor: more digits", ratio{num: 0.596, den: 1, limit: 0.6, atLeast: true, percent: true}, fail, "59.6%", "≥ 60%"},
		{"a calibration of zero", ratio{num: 0.1, den: 0, limit: 1.25}, notMeasured, "no ratio (the calibration measured 0)", "≤ 1.25×"},
		{"a negative calibration", ratio{num: 0.1, den: -0.02, limit: 1.25}, notMeasured, "no ratio (the calibration measured 0)", "≤ 1.25×"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.q.verdict(); got != tt.want {
				t.Errorf("%+v.verdict() = %v, want %v", tt.q, got, tt.want)
			}
			if got := tt.q.String(); got != tt.wantText {
				t.Errorf("%+v.String() = %q, want %q", tt.q, got, tt.wantText)
			}
			if got := tt.q.limitText(); got != tt.wantLimit {
				t.Errorf("%+v.limitText() = %q, want %q", tt.q, got, tt.wantLimit)
			}
		})
	}
}

func TestFailOnErrors(t *testing.T) {
	t.Parallel()
	clean, failed := loadResult{calls: 10}, loadResult{calls: 10, errors: 1}
	tests := []struct {
		v    verdict
		runs []loadResult
		want verdict
	}{
		{pass, nil, pass},
		{pass, []loadResult{clean, clean}, pass},
		{pass, []loadResult{clean, failed}, fail},
		{fail, []loadResult{failed}, fail},
		{info, []loadResult{failed}, info},
		{notMeasured, []loadResult{failed}, notMeasured},
	}
	for _, tt := range tests {
		if got := failOnErrors(tt.v, tt.runs...); got != tt.want {
			t.Errorf("failOnErrors(%v, %v) = %v, want %v", tt.v, tt.runs, got, tt.want)
		}
	}
}

func TestSummary(t *testing.T) {
	t.Parallel()
	rows := func(vs ...verdict) []row {
		out := make([]row, len(vs))
		for i, v := range vs {
			out[i] = row{verdict: v}
		}
		return out
	}
	tests := []struct {
		name string
		rows []row
		want string
	}{
		{"all met", rows(pass, pass), "2 of 2 targets met."},
		{"information is not counted", rows(pass, info, fail, info), "1 of 2 targets met."},
		{"not measured is not counted, but said", rows(pass, notMeasured, fail), "1 of 2 targets met; 1 not measured."},
		{"nothing judged", rows(info), "0 of 0 targets met."},
	}
	for _, tt := range tests {
		if got := summary(tt.rows); got != tt.want {
			t.Errorf("%s: summary() = %q, want %q", tt.name, got, tt.want)
		}
	}
}

// TestReport builds a table through the same calls the steps make and
// checks how each kind of row is shown and counted.
func TestReport(t *testing.T) {
	t.Parallel()
	b := &bench{cfg: config{duration: 5 * time.Second, daemonCPUs: 1}, log: io.Discard}
	b.add(row{step: stepMemory, what: "RSS idle", limit: "≤ 30 MB", value: "20.7 MB", verdict: judge(true)})
	b.addRatio(stepOverhead, "p50 added, gRPC", "what the reference proxy adds",
		ratio{num: 0.367, den: 0.267, limit: 1.25}, "daemon adds 0.367 ms, the reference proxy 0.267 ms")
	b.addRatio(stepThroughput, "gRPC rate / direct rate", "", ratio{num: 62, den: 100, limit: 0.6, atLeast: true, percent: true},
		"62/s vs 100/s", loadResult{calls: 5, errors: 1})
	b.addInfo(stepThroughput, "ghz vs wrk", "18% (3504/s vs 19116/s)")
	b.add(row{step: stepCurl, what: "REST vs curl", limit: "≤ 0.55×", value: "not measured: curl is not installed", verdict: notMeasured})
	b.note("raw %d", 1)

	got := b.report(time.Date(2026, 11, 27, 9, 37, 0, 0, time.UTC))
	for _, want := range []string{
		"on 2026-11-27 09:37 UTC",
		"| step | target | limit | measured | verdict |\n|---|---|---|---|---|\n",
		"| memory | RSS idle | ≤ 30 MB | 20.7 MB | PASS |\n",
		"| overhead | p50 added, gRPC | ≤ 1.25× what the reference proxy adds | 1.37× (daemon adds 0.367 ms, the reference proxy 0.267 ms) | **FAIL** |\n",
		"| throughput | gRPC rate / direct rate | ≥ 60% | 62% (62/s vs 100/s) | **FAIL** |\n", // 62% ≥ 60%, but the run had an error
		"| throughput | ghz vs wrk | — | 18% (3504/s vs 19116/s) | info |\n",
		"| curl | REST vs curl | ≤ 0.55× | not measured: curl is not installed | not measured |\n",
		"\n1 of 3 targets met; 1 not measured. Rows marked info",
		"- raw 1\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("report() lacks %q; got\n%s", want, got)
		}
	}
	if c, m := strings.Index(got, "| curl |"), strings.Index(got, "| memory |"); c < 0 || m < c {
		t.Errorf("report() shows the memory row (added first) at %d, the curl row at %d; want the rows in the order of the steps", m, c)
	}
	if strings.Contains(strings.ToLower(got), "issue") {
		t.Errorf("report() speaks of an issue; say what is measured:\n%s", got)
	}
}
