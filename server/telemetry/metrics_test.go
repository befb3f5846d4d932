package telemetry

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/encryptiond/encryptiond/atlas"
)

// gather returns the values of the valid gauge by "group_id/provider" and
// the dropped counter.
func gather(t *testing.T, reg *prometheus.Registry) (valid map[string]float64, dropped float64) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather() = %v", err)
	}
	valid = map[string]float64{}
	for _, mf := range mfs {
		switch mf.GetName() {
		case "encryptiond_encryption_at_rest_valid":
			for _, m := range mf.GetMetric() {
				labels := map[string]string{}
				for _, l := range m.GetLabel() {
					labels[l.GetName()] = l.GetValue()
				}
				valid[labels["group_id"]+"/"+labels["provider"]] = m.GetGauge().GetValue()
			}
		case "encryptiond_encryption_at_rest_valid_dropped_total":
			dropped = mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	return valid, dropped
}

func TestObserveValid(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		group, provider string
		enabled, valid  bool
	}{
		{"g1", "awsKms", true, true},
		{"g1", "azureKeyVault", true, false},
		{"g1", "googleCloudKms", false, false}, // not enabled: no series
		{"g2", "awsKms", true, false},
		{"g1", "awsKms", true, false}, // the last flag wins
		{"g2", "awsKms", true, true},
		{"g3", "awsKms", true, true},
		{"g3", "awsKms", false, false}, // disabled: the series goes
	}
	for _, s := range steps {
		m.ObserveValid(s.group, s.provider, s.enabled, s.valid)
	}
	valid, dropped := gather(t, reg)
	want := map[string]float64{"g1/awsKms": 0, "g1/azureKeyVault": 0, "g2/awsKms": 1}
	if fmt.Sprint(valid) != fmt.Sprint(want) || dropped != 0 {
		t.Errorf("after ObserveValid: valid = %v, dropped = %v, want %v, 0", valid, dropped, want)
	}
}

func TestObserveValidBounded(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	group := func(i int) string { return fmt.Sprintf("%024x", i) }
	for i := range MaxValidProjects {
		m.ObserveValid(group(i), "awsKms", true, false)
	}
	// Beyond the bound: a new project is dropped, every time it is seen.
	m.ObserveValid(group(MaxValidProjects), "awsKms", true, true)
	m.ObserveValid(group(MaxValidProjects), "googleCloudKms", true, true)
	// Projects that have a series stay correct, a new provider included.
	m.ObserveValid(group(0), "awsKms", true, true)
	m.ObserveValid(group(1), "azureKeyVault", true, true)

	valid, dropped := gather(t, reg)
	if got, want := len(valid), MaxValidProjects+1; got != want {
		t.Errorf("series = %d, want %d", got, want)
	}
	if dropped != 2 {
		t.Errorf("dropped = %v, want 2", dropped)
	}
	for key, want := range map[string]float64{
		group(0) + "/awsKms":        1,
		group(1) + "/awsKms":        0,
		group(1) + "/azureKeyVault": 1,
	} {
		if got, ok := valid[key]; !ok || got != want {
			t.Errorf("valid[%s] = %v (present %v), want %v", key, got, ok, want)
		}
	}
	if _, ok := valid[group(MaxValidProjects)+"/awsKms"]; ok {
		t.Errorf("valid[%s] present, want dropped", group(MaxValidProjects))
	}
}

func BenchmarkObserveValid(b *testing.B) {
	for _, projects := range []int{1, 4096} {
		b.Run(fmt.Sprintf("%d-projects", projects), func(b *testing.B) {
			m, err := NewMetrics(prometheus.NewRegistry())
			if err != nil {
				b.Fatal(err)
			}
			groups := make([]string, projects)
			for i := range groups {
				groups[i] = fmt.Sprintf("%024x", i)
				m.ObserveValid(groups[i], "awsKms", true, true)
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				m.ObserveValid(groups[i%projects], "awsKms", true, i%2 == 0)
				i++
			}
		})
	}
}

func TestObserveAtlas(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range []atlas.Exchange{
		{Method: "GET", Status: 200, Duration: time.Millisecond},
		{Method: "GET", Status: 200, Duration: time.Millisecond},
		{Method: "GET", Status: 401},
		{Method: "PATCH", Status: 409, ErrorCode: "CANNOT_DISABLE_ENCRYPTION_AT_REST"},
		{Method: "GET", Status: 0},
	} {
		m.ObserveAtlas(e)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather() = %v", err)
	}
	calls, latency := map[string]float64{}, map[string]uint64{}
	for _, mf := range mfs {
		for _, metric := range mf.GetMetric() {
			l := map[string]string{}
			for _, p := range metric.GetLabel() {
				l[p.GetName()] = p.GetValue()
			}
			switch mf.GetName() {
			case "encryptiond_atlas_requests_total":
				calls[strings.TrimSpace(l["method"]+" "+l["status"]+" "+l["error_code"])] = metric.GetCounter().GetValue()
			case "encryptiond_atlas_request_duration_seconds":
				latency[l["method"]] = metric.GetHistogram().GetSampleCount()
			}
		}
	}
	wantCalls := map[string]float64{"GET 200": 2, "GET 401": 1, "PATCH 409 CANNOT_DISABLE_ENCRYPTION_AT_REST": 1, "GET 0": 1}
	if fmt.Sprint(calls) != fmt.Sprint(wantCalls) {
		t.Errorf("atlas_requests_total = %v, want %v", calls, wantCalls)
	}
	if want := map[string]uint64{"GET": 4, "PATCH": 1}; fmt.Sprint(latency) != fmt.Sprint(want) {
		t.Errorf("atlas_request_duration_seconds counts = %v, want %v", latency, want)
	}
}

// TestObserveValidConcurrent observes from many goroutines while /metrics
// is scraped; run with -race.
func TestObserveValidConcurrent(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 200 {
				m.ObserveValid(fmt.Sprintf("%024x", i%50), []string{"awsKms", "azureKeyVault", "googleCloudKms"}[(i+w)%3], true, i%2 == 0)
			}
		})
	}
	wg.Go(func() {
		for range 20 {
			if _, err := reg.Gather(); err != nil {
				t.Errorf("Gather() = %v", err)
			}
		}
	})
	wg.Wait()
	if valid, dropped := gather(t, reg); len(valid) != 150 || dropped != 0 {
		t.Errorf("after concurrent ObserveValid: %d series, %v dropped; want 150, 0", len(valid), dropped)
	}
}
