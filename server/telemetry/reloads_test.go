package telemetry

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
)

func TestObserveReload(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	m.InitializeReloads("tls")
	m.InitializeReloads("policy")
	m.ObserveReload("policy", nil)
	m.ObserveReload("policy", errors.New("line 3: unknown key"))
	m.ObserveReload("policy", nil)

	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather() = %v", err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "encryptiond_config_reloads_total" {
			continue
		}
		for _, s := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range s.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			got[labels["what"]+"/"+labels["result"]] = s.GetCounter().GetValue()
		}
	}
	want := map[string]float64{"tls/ok": 0, "tls/error": 0, "policy/ok": 2, "policy/error": 1}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("encryptiond_config_reloads_total mismatch (-want +got):\n%s", diff)
	}
}
