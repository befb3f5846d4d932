package telemetry

import (
	"strings"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// MaxValidProjects bounds how many projects get an
// encryptiond_encryption_at_rest_valid series. The series of a project
// is never deleted (its last `valid` flag is what an operator alerts on),
// so without a bound every project ever seen would cost memory and a
// /metrics line forever. Observations of projects beyond the bound are
// counted in encryptiond_encryption_at_rest_valid_dropped_total instead.
const MaxValidProjects = 10000

// validCollector is encryptiond_encryption_at_rest_valid{group_id,provider}:
// the last `valid` flag per project and provider, for at most
// MaxValidProjects projects.
//
// It keeps a flag per series and makes the metrics only when scraped,
// rather than holding a GaugeVec child per series: a project's three
// children with their label pairs cost about 1.2 KB, its flags here about
// 240 bytes (measured with 4096 projects), and the children were most of
// the daemon's live heap under load. Updating a flag allocates nothing.
type validCollector struct {
	desc    *prometheus.Desc
	dropped prometheus.Counter

	mu       sync.RWMutex // guards projects; the flags themselves are atomic
	projects map[string]*projectValid
}

// projectValid holds one project's flags, by provider in the order seen.
type projectValid struct {
	providers []*providerValid // appended under validCollector.mu
}

type providerValid struct {
	name    string
	enabled atomic.Bool // only enabled providers are exported
	valid   atomic.Bool
}

func newValidCollector() *validCollector {
	return &validCollector{
		desc: prometheus.NewDesc("encryptiond_encryption_at_rest_valid",
			"The last `valid` flag Atlas reported for an enabled key provider of a project: 1 if Atlas can use the key, 0 if not (Atlas then shuts down the clusters that depend on it). Providers that are not enabled have no series.",
			[]string{"group_id", "provider"}, nil),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "encryptiond",
			Name:      "encryption_at_rest_valid_dropped_total",
			Help:      "Observations of a project's `valid` flag not recorded in encryptiond_encryption_at_rest_valid because its limit of projects was reached.",
		}),
		projects: make(map[string]*projectValid),
	}
}

// observe records the state of (groupID, provider), or counts it as
// dropped when the project has no series and there is no room for one. A
// provider that is not enabled has no series: Atlas reports valid=false for
// it, which is no alarm. One that is disabled loses its series.
func (c *validCollector) observe(groupID, provider string, enabled, valid bool) {
	c.mu.RLock()
	p := c.projects[groupID].find(provider)
	c.mu.RUnlock()
	if p == nil {
		if !enabled {
			return
		}
		if p = c.add(groupID, provider); p == nil {
			c.dropped.Inc()
			return
		}
	}
	p.valid.Store(valid)
	p.enabled.Store(enabled)
}

// find returns the flag of provider, or nil; pv may be nil.
func (pv *projectValid) find(provider string) *providerValid {
	if pv == nil {
		return nil
	}
	for _, p := range pv.providers {
		if p.name == provider {
			return p
		}
	}
	return nil
}

// add returns the flag of (groupID, provider), creating it if the project
// has a series or there is room for one more project, and nil otherwise.
func (c *validCollector) add(groupID, provider string) *providerValid {
	c.mu.Lock()
	defer c.mu.Unlock()
	pv := c.projects[groupID]
	if p := pv.find(provider); p != nil {
		return p
	}
	if pv == nil {
		if len(c.projects) >= MaxValidProjects {
			return nil
		}
		pv = &projectValid{}
		c.projects[strings.Clone(groupID)] = pv // kept as long as the process runs
	}
	p := &providerValid{name: strings.Clone(provider)}
	pv.providers = append(pv.providers, p)
	return p
}

func (c *validCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.desc
	c.dropped.Describe(ch)
}

// Collect sends a gauge per series, made from a snapshot of the flags so
// that observations do not wait for the scrape.
func (c *validCollector) Collect(ch chan<- prometheus.Metric) {
	type series struct {
		groupID, provider string
		valid             bool
	}
	c.mu.RLock()
	all := make([]series, 0, len(c.projects)*3)
	for groupID, pv := range c.projects {
		for _, p := range pv.providers {
			if p.enabled.Load() {
				all = append(all, series{groupID, p.name, p.valid.Load()})
			}
		}
	}
	c.mu.RUnlock()
	for _, s := range all {
		v := 0.0
		if s.valid {
			v = 1
		}
		m, err := prometheus.NewConstMetric(c.desc, prometheus.GaugeValue, v, s.groupID, s.provider)
		if err != nil {
			m = prometheus.NewInvalidMetric(c.desc, err)
		}
		ch <- m
	}
	c.dropped.Collect(ch)
}
