package main

import (
	"context"
	"strings"

	"github.com/encryptiond/encryptiond/cmd/internal/procs"
)

// sampler reads the daemon's resident set size, Go heap and goroutines.
type sampler struct {
	d *procs.Daemon
}

type sample struct {
	rss        int64 // bytes; 0 if unknown
	heapInuse  int64 // bytes of Go heap spans in use; -1 if unknown
	goroutines int   // -1 if unknown
}

func (s *sampler) take(ctx context.Context) sample {
	m, _ := procs.ReadMemory(s.d.Proc.PID()) // RSS 0 when it cannot be read
	out := sample{rss: m.RSS, heapInuse: -1, goroutines: -1}
	v, err := s.d.Metrics(ctx, "go_goroutines", "go_memstats_heap_inuse_bytes")
	if err != nil {
		return out
	}
	if g, ok := v["go_goroutines"]; ok {
		out.goroutines = int(g)
	}
	if h, ok := v["go_memstats_heap_inuse_bytes"]; ok {
		out.heapInuse = int64(h)
	}
	return out
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
