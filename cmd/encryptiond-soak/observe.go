package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/encryptiond/encryptiond/cmd/internal/procs"
)

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
	m, _ := procs.ReadMemory(s.pid) // RSS 0 when it cannot be read
	out := sample{rss: m.RSS}
	out.goroutines, out.heapInuse = s.runtimeMetrics(ctx)
	return out
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
