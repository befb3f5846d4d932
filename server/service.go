package server

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/encryptiond/encryptiond/atlas"
	encryptionv1 "github.com/encryptiond/encryptiond/gen/atlas/encryption/v1"
)

// GetEncryptionAtRest returns the project's configuration as Atlas reports it.
//
// Concurrent Gets of one project share one Atlas call (see flights). A Get
// never joins a call that started before a change to the project, made
// through this process, finished: every finished change (of any project)
// starts a new generation of shared calls.
func (s *Server) GetEncryptionAtRest(ctx context.Context, req *encryptionv1.GetEncryptionAtRestRequest) (*encryptionv1.EncryptionAtRest, error) {
	var vs violations
	checkGroupID(&vs, req.GetGroupId())
	if err := vs.err("", nil); err != nil {
		return nil, err
	}
	groupID := req.GetGroupId()
	current, err := s.read(ctx, groupID)
	if err != nil {
		return nil, fromAtlas(ctx, err, groupID, nil, nil)
	}
	return toProto(current), nil
}

// UpdateEncryptionAtRest enables, changes or disables one key provider.
//
// Round trips to Atlas: a disable, and an enable that carries the whole
// document, are one PATCH: whether Atlas accepts them does not depend on
// the current state. A request that the rules can only judge against the
// current state (request.needsState: a partial document, or a provider's
// special rule such as Google Cloud KMS's serviceAccountKey) first reads it:
// two round trips. A change of an Azure field that cannot change while the
// provider has private endpoints (request.needsEndpoints) also lists those:
// three. validate_only always reads the state and never writes; a
// validate-only disable of an enabled provider also reads the clusters, to
// predict Atlas's refusal. A PATCH naming a role that Atlas cannot use yet is sent again
// while the role propagates (lifecycle.go); a disable Atlas refuses costs
// one more GET, of the clusters, to name the ones that block it.
//
// Changes of one project are serialized within the process: the state read,
// the rule check and the PATCH run under the project's lock. The state read
// is always a fresh GET issued under that lock, never a shared or cached
// answer: a Get that started before the previous change finished may predate
// it, and another client of Atlas may have changed the project since this
// process last looked.
func (s *Server) UpdateEncryptionAtRest(ctx context.Context, req *encryptionv1.UpdateEncryptionAtRestRequest) (*encryptionv1.EncryptionAtRest, error) {
	r, err := checkRequest(req)
	if err != nil {
		return nil, err
	}
	unlock, err := s.groups.lock(ctx, r.groupID)
	if err != nil {
		return nil, lockError(ctx, r.groupID)
	}
	l := &lease{unlock: unlock}
	defer l.release()

	if r.needsState() {
		current, err := s.atlas.GetEncryptionAtRest(ctx, r.groupID)
		if err != nil {
			return nil, fromAtlas(ctx, err, r.groupID, r.provider, r.secrets())
		}
		s.observe(r.groupID, current)
		st := &state{config: current}
		if r.needsEndpoints() {
			if st.endpoints, err = s.privateEndpointsOf(ctx, r.groupID, r.provider); err != nil {
				return nil, fromAtlas(ctx, err, r.groupID, r.provider, r.secrets())
			}
		}
		if err := r.checkState(st); err != nil {
			return nil, err
		}
		if r.validateOnly {
			if r.disable {
				if err := s.predictDisable(ctx, r, current); err != nil {
					return nil, err
				}
			}
			return toProto(r.applied(current)), nil
		}
	}

	result, attempts, err := s.send(ctx, r, l)
	record(ctx).Attempts = attempts
	// Whatever came back, the project may have changed: Gets from now on do
	// not share calls that started before.
	s.changes.Add(1)
	if errors.Is(err, atlas.ErrUpdateAppliedUnreadable) {
		// Atlas applied the change but its answer was unreadable: the
		// state after the change is one GET away.
		if result, err = s.atlas.GetEncryptionAtRest(ctx, r.groupID); err != nil {
			err = fmt.Errorf("%w; reading the state afterwards: %w", atlas.ErrUpdateAppliedUnreadable, err)
		}
	}
	if err != nil {
		if attempts > 0 {
			// The change may have landed: the watchers learn from Atlas.
			s.configs.Refresh(r.groupID)
		}
		if pe, ok := errors.AsType[*propagationError](err); ok {
			return nil, pe.status(r.groupID, r.provider, r.secrets())
		}
		if refusal, ok := refusedDisable(err); ok && r.disable {
			return nil, s.blockedDisable(ctx, r, refusal)
		}
		return nil, fromAtlas(ctx, err, r.groupID, r.provider, r.secrets())
	}
	s.observe(r.groupID, result)
	out := toProto(result)
	s.configs.Push(r.groupID, out)
	return out, nil
}

// DescribeUpdate names what an update request asks for, for the audit log:
// the action and the names of the fields it sets, never a value. It works on
// requests that break the rules too.
func DescribeUpdate(req *encryptionv1.UpdateEncryptionAtRestRequest) Mutation {
	m := Mutation{GroupID: req.GetGroupId(), Action: "update"}
	if r := newRequest(req); r.provider != nil {
		m.Provider = r.provider.atlas
		m.Fields = r.fieldNames()
		if enabled, ok := r.enabled(); ok {
			m.Action = "enable"
			if !enabled {
				m.Action = "disable"
			}
		}
	}
	if req.GetValidateOnly() {
		m.Action, m.ValidateOnly = "validate", true
	}
	return m
}

// observe reports each provider's enabled and valid flags to the valid
// observer.
func (s *Server) observe(groupID string, cfg *atlas.EncryptionAtRest) {
	fn := s.opts.observeValid
	if fn == nil || cfg == nil {
		return
	}
	for _, p := range providers {
		if p.wire.document(cfg).IsValid() {
			fn(groupID, p.atlas, p.enabled(cfg), p.valid(cfg))
		}
	}
}

// groups serializes changes per project.
type groups struct {
	mu sync.Mutex
	m  map[string]*group // only projects with a change running or waiting
}

type group struct {
	sem     chan struct{} // holds one token while a change runs
	waiters int           // callers holding or waiting for sem
}

// lock waits until no other change of the project runs, or ctx ends. The
// returned function releases the lock.
func (g *groups) lock(ctx context.Context, groupID string) (unlock func(), err error) {
	g.mu.Lock()
	if g.m == nil {
		g.m = make(map[string]*group)
	}
	e := g.m[groupID]
	if e == nil {
		e = &group{sem: make(chan struct{}, 1)}
		g.m[groupID] = e
	}
	e.waiters++
	g.mu.Unlock()

	release := func() {
		g.mu.Lock()
		e.waiters--
		if e.waiters == 0 {
			delete(g.m, groupID)
		}
		g.mu.Unlock()
	}
	select {
	case e.sem <- struct{}{}:
		return func() { <-e.sem; release() }, nil
	case <-ctx.Done():
		release()
		return nil, ctx.Err()
	}
}
