// Package monitor is the daemon's -monitor: it watches projects' Encryption
// at Rest configuration without anyone asking, so that the valid gauge
// stays current and a key that stops working is logged when it does.
//
// Each project is watched through the service (server.Server.Watch), so
// the monitor shares one poll per project per interval with every
// WatchEncryptionAtRest caller, and every poll feeds the valid gauge. For
// each enabled provider whose key turns invalid (Atlas's valid: false) it
// logs one WARN record, and one INFO record when the key is valid again:
// one record per transition, naming the project and the provider, never a
// value. A key already invalid when the monitor first reads it counts as a
// transition. A watch that ends (its polls failed -watch-failures times in
// a row, or the project is gone) is logged at WARN and started again after
// an interval.
//
// With every project (Config.All), the list of projects is read again every
// interval: projects that appear are watched, and projects that disappear
// are no longer.
package monitor

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/encryptiond/encryptiond/atlas"
	encryptionv1 "github.com/encryptiond/encryptiond/gen/atlas/encryption/v1"
	"github.com/encryptiond/encryptiond/server/watch"
)

// Config says which projects to monitor.
type Config struct {
	// All monitors every project the credentials can see (-monitor all).
	All bool
	// GroupIDs are the projects to monitor when All is false.
	GroupIDs []string
	// Interval is how long a watch that ended waits before it starts
	// again, and, with All, how often the list of projects is read.
	Interval time.Duration
}

// Watcher is what the monitor needs of the service: *server.Server.
type Watcher interface {
	Watch(ctx context.Context, groupID string, send func(*encryptionv1.EncryptionAtRest) error) error
}

// Lister lists every project the credentials can see: *atlas.Client.
type Lister interface {
	ListAllGroups(ctx context.Context) ([]atlas.Group, error)
}

// Monitor watches projects; see the package documentation.
type Monitor struct {
	cfg   Config
	svc   Watcher
	list  Lister
	log   *slog.Logger
	clock watch.Clock

	mu    sync.Mutex
	state map[key]bool // an enabled provider's key: true while invalid
}

// key is one provider of one project.
type key struct {
	groupID, provider string
}

// New returns a Monitor of cfg's projects that watches through svc, lists
// projects through list (with All) and logs to logger. clock paces its
// waits; nil means the system clock.
func New(cfg Config, svc Watcher, list Lister, logger *slog.Logger, clock watch.Clock) (*Monitor, error) {
	switch {
	case cfg.Interval <= 0:
		return nil, errors.New("monitor: Interval must be positive")
	case !cfg.All && len(cfg.GroupIDs) == 0:
		return nil, errors.New("monitor: no project to monitor")
	case cfg.All && list == nil:
		return nil, errors.New("monitor: All needs a Lister")
	}
	if clock == nil {
		clock = watch.SystemClock()
	}
	return &Monitor{cfg: cfg, svc: svc, list: list, log: logger, clock: clock, state: map[key]bool{}}, nil
}

// Run monitors until ctx ends, and returns once every watch has stopped.
func (m *Monitor) Run(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	running := map[string]context.CancelFunc{}
	defer func() {
		for _, stop := range running {
			stop()
		}
	}()
	start := func(g atlas.Group) {
		wctx, stop := context.WithCancel(ctx)
		running[g.ID] = stop
		wg.Go(func() { m.watch(wctx, g) })
	}
	if !m.cfg.All {
		for _, id := range m.cfg.GroupIDs {
			start(atlas.Group{ID: id})
		}
		<-ctx.Done()
		return
	}
	for {
		groups, err := m.list.ListAllGroups(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			m.log.Warn("monitor: cannot list the projects; trying again after the interval", slog.String("error", err.Error()), slog.Duration("interval", m.cfg.Interval))
		default:
			seen := map[string]bool{}
			for _, g := range groups {
				seen[g.ID] = true
				if running[g.ID] == nil {
					start(g)
				}
			}
			for id, stop := range running {
				if !seen[id] {
					stop()
					delete(running, id)
				}
			}
		}
		if !m.sleep(ctx) {
			return
		}
	}
}

// sleep waits an interval; it reports false when ctx ended first.
func (m *Monitor) sleep(ctx context.Context) bool {
	t := m.clock.NewTimer(m.cfg.Interval)
	defer t.Stop()
	select {
	case <-t.C():
		return true
	case <-ctx.Done():
		return false
	}
}

// watch watches one project until ctx ends, starting again an interval
// after each end of its watch.
func (m *Monitor) watch(ctx context.Context, g atlas.Group) {
	for {
		err := m.svc.Watch(ctx, g.ID, func(cfg *encryptionv1.EncryptionAtRest) error {
			m.observe(g, cfg)
			return nil
		})
		if ctx.Err() != nil {
			return
		}
		m.log.Warn("monitor: the watch of a project ended; watching it again after the interval",
			slog.String("group_id", g.ID), slog.String("error", err.Error()), slog.Duration("interval", m.cfg.Interval))
		if !m.sleep(ctx) {
			return
		}
	}
}

// observe logs the transitions of the keys of cfg, g's configuration.
func (m *Monitor) observe(g atlas.Group, cfg *encryptionv1.EncryptionAtRest) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, p := range providersOf(cfg) {
		k := key{g.ID, p.name}
		invalid := p.enabled && !p.valid
		was := m.state[k]
		switch {
		case !p.enabled:
			delete(m.state, k) // a disabled provider has no key to watch
			continue
		case invalid && !was:
			m.log.Warn("encryption at rest key invalid: Atlas can no longer use the provider's key, and shuts down the processes of the clusters that use it",
				slog.String("group_id", g.ID), slog.String("group_name", g.Name), slog.String("provider", p.name))
		case !invalid && was:
			m.log.Info("encryption at rest key valid again",
				slog.String("group_id", g.ID), slog.String("group_name", g.Name), slog.String("provider", p.name))
		}
		m.state[k] = invalid
	}
}

// providerState is one provider's flags in a configuration.
type providerState struct {
	name           string // Atlas's JSON name: "awsKms"
	enabled, valid bool
}

// providersOf reads every provider's enabled and valid flags from cfg: each
// message field of EncryptionAtRest that has both, so that a provider added
// to the API is monitored without a change here.
func providersOf(cfg *encryptionv1.EncryptionAtRest) []providerState {
	var out []providerState
	m := cfg.ProtoReflect()
	fields := m.Descriptor().Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		if fd.Message() == nil {
			continue
		}
		enabled, valid := fd.Message().Fields().ByName("enabled"), fd.Message().Fields().ByName("valid")
		if enabled == nil || valid == nil || !m.Has(fd) {
			continue
		}
		doc := m.Get(fd).Message()
		out = append(out, providerState{
			name:    fd.JSONName(),
			enabled: flag(doc, enabled),
			valid:   flag(doc, valid),
		})
	}
	return out
}

func flag(m protoreflect.Message, fd protoreflect.FieldDescriptor) bool {
	return m.Has(fd) && m.Get(fd).Bool()
}
