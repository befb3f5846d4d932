package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/encryptiond/encryptiond/atlas"
	"github.com/encryptiond/encryptiond/server/failure"
)

// This file is what happens around a PATCH, as Atlas's users meet it:
//
//   - A Cloud Provider Access role that was just authorized takes minutes
//     to propagate; until then Atlas refuses a PATCH that names it. send
//     sends such a PATCH again, with backoff, within the caller's deadline
//     and -atlas-role-propagation-timeout.
//   - Atlas refuses to disable a provider that clusters use, without
//     saying which. blockedDisable reads the clusters and names them;
//     predictDisable does the same for a validate-only disable.
//   - Atlas may apply a PATCH whose client has gone. patch lets a PATCH
//     run to its answer when its caller leaves, and keeps the project's
//     lock until then, so that a later change is never overtaken by it.

// propagationCodes are Atlas's answers while a role propagates.
var propagationCodes = []string{"CANNOT_ASSUME_ROLE", "CLOUD_PROVIDER_ACCESS_ROLE_NOT_AUTHORIZED", "INVALID_AWS_CREDENTIALS"}

// propagationBackoff paces a PATCH sent again while its role propagates:
// waits of 1–2 s, then doubling, up to 7.5–15 s (equal jitter).
var propagationBackoff = atlas.RetryPolicy{MaxAttempts: 1, InitialBackoff: 2 * time.Second, MaxBackoff: 15 * time.Second}

// DefaultRolePropagationTimeout is how long a PATCH is sent again while its
// role propagates, unless WithRolePropagationTimeout says otherwise: as
// long as the Terraform provider waits.
const DefaultRolePropagationTimeout = 3 * time.Minute

// answerMargin is kept free before the caller's deadline to write the
// answer after the last attempt.
const answerMargin = 100 * time.Millisecond

// propagating reports whether err is Atlas refusing a role that may still
// be propagating: one of propagationCodes, with whatever 4xx.
func propagating(err error) bool {
	var ae *atlas.Error
	return errors.As(err, &ae) && ae.HTTPStatus >= 400 && ae.HTTPStatus < 500 && slices.Contains(propagationCodes, ae.ErrorCode)
}

// send sends r's PATCH and returns Atlas's answer and how many times the
// PATCH was sent. A PATCH that names a role (roleId) is sent again while
// Atlas answers that the role cannot be used yet: re-sending the same
// complete document is safe. It stops when the next attempt could not end
// before ctx's deadline, or the role propagation timeout has passed since
// the first attempt, and returns a *propagationError. Static credentials
// are never retried: there these codes mean what they say.
func (s *Server) send(ctx context.Context, r *request, l *lease) (*atlas.EncryptionAtRest, int, error) {
	body := r.patch()
	start := time.Now()
	for attempt := 1; ; attempt++ {
		sent := time.Now()
		result, err := s.patch(ctx, r, body, l)
		if err == nil || !r.has("role_id") || !propagating(err) {
			return result, attempt, err
		}
		took := time.Since(sent)
		wait := propagationBackoff.Backoff(attempt)
		next := time.Now().Add(wait)
		gaveUp := &propagationError{err: err, attempts: attempt, since: time.Since(start)}
		if next.Sub(start) > s.opts.rolePropagationTimeout {
			return nil, attempt, gaveUp
		}
		// The next attempt must have time to end, and its answer to be
		// written, before the caller's deadline.
		if dl, ok := ctx.Deadline(); ok && next.Add(2*took+answerMargin).After(dl) {
			return nil, attempt, gaveUp
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, attempt, err
		}
		if fn := s.opts.observeRetry; fn != nil {
			fn(r.provider.atlas)
		}
	}
}

// sendLimit bounds a PATCH whose caller has gone: by then Atlas has
// answered, or the PATCH has failed (the Atlas client bounds each attempt
// with its HTTP client's Timeout, 30 s by default).
const sendLimit = time.Minute

// patch sends body, one PATCH of r's project, to Atlas and returns Atlas's
// answer. The PATCH runs on a context of its own, not the caller's: Atlas
// may apply a request whose client has gone, so once the PATCH has started
// it goes on to its answer, within sendLimit, whatever the caller does.
// When the caller leaves first (its deadline, a cancel, the shutdown's cut)
// patch returns at once an error wrapping atlas.ErrOutcomeUnknown and the
// context's cause, and the lease l on the project's lock passes to the
// PATCH: the lock is released when Atlas answers, and the call's
// Record.Late hears the answer. Without this, the next change of the
// project could be applied and reported applied, then be overwritten by
// this one landing late.
func (s *Server) patch(ctx context.Context, r *request, body *atlas.EncryptionAtRest, l *lease) (*atlas.EncryptionAtRest, error) {
	type answer struct {
		config *atlas.EncryptionAtRest
		err    error
	}
	var (
		mu   sync.Mutex
		gone bool // the caller has left; guarded by mu
		done = make(chan answer, 1)
		late = record(ctx).Late
	)
	sendCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), sendLimit)
	s.sending.add()
	go func() {
		defer s.sending.done()
		defer cancel()
		config, err := s.atlas.UpdateEncryptionAtRest(sendCtx, r.groupID, body)
		mu.Lock()
		defer mu.Unlock()
		if !gone {
			done <- answer{config, err}
			return
		}
		l.unlock()
		if late != nil {
			late(err)
		}
	}()
	select {
	case a := <-done:
		return a.config, a.err
	case <-ctx.Done():
	}
	mu.Lock()
	defer mu.Unlock()
	select {
	case a := <-done: // the answer came with the caller's leaving
		return a.config, a.err
	default:
	}
	gone, l.kept = true, true
	return nil, fmt.Errorf("atlas: PATCH encryptionAtRest: %w: the caller left first: %w", atlas.ErrOutcomeUnknown, context.Cause(ctx))
}

// lease is a change's hold on its project's lock.
type lease struct {
	unlock func()
	kept   bool // a PATCH still in flight releases the lock (patch)
}

// release releases the lock, unless a PATCH in flight keeps it.
func (l *lease) release() {
	if !l.kept {
		l.unlock()
	}
}

// inflight counts the PATCHes in flight, so that shutdown can wait for
// their answers (Server.WaitForAtlas).
type inflight struct {
	mu   sync.Mutex
	n    int
	idle chan struct{} // closed when n drops to 0
}

func (c *inflight) add() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == 0 {
		c.idle = make(chan struct{})
	}
	c.n++
}

func (c *inflight) done() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n--; c.n == 0 {
		close(c.idle)
	}
}

// WaitForAtlas waits until every PATCH sent to Atlas has its answer, those
// whose callers have gone included, or ctx ends; it returns how many are
// still unanswered. The daemon calls it at shutdown, once no call runs, so
// that a change it has already answered OUTCOME_UNKNOWN is not cut off
// mid-flight on top of it.
func (s *Server) WaitForAtlas(ctx context.Context) int {
	c := &s.sending
	c.mu.Lock()
	if c.n == 0 {
		c.mu.Unlock()
		return 0
	}
	idle := c.idle
	c.mu.Unlock()
	select {
	case <-idle:
		return 0
	case <-ctx.Done():
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.n
	}
}

// propagationError is a PATCH given up while its role may still be
// propagating.
type propagationError struct {
	err      error // Atlas's last answer
	attempts int
	since    time.Duration // from the first attempt to giving up
}

func (e *propagationError) Error() string {
	return fmt.Sprintf("%v (after %d attempts)", e.err, e.attempts)
}

func (e *propagationError) Unwrap() error { return e.err }

// propagationRetry is the RetryInfo of a propagationError: a role usually
// propagates within minutes.
const propagationRetry = time.Minute

// status is the answer to a PATCH given up on: FAILED_PRECONDITION with
// Atlas's last errorCode, its status (for Atlas's own paths), the number of
// attempts and a RetryInfo.
func (e *propagationError) status(groupID string, p *provider, secrets []string) error {
	var ae *atlas.Error
	errors.As(e.err, &ae)
	said := atlasSaid(ae.ErrorCode, ae.Detail, secrets)
	remedy := failure.AtlasCodes["CANNOT_ASSUME_ROLE"].Remedy
	msg := fmt.Sprintf("Atlas could not use %s's Cloud Provider Access role (roleId) in %d attempts over %v (%s). To fix: %s",
		p.title, e.attempts, e.since.Round(time.Second), said, remedy)
	info := failure.Info{Domain: failure.DomainAtlas, Reason: ae.ErrorCode, HTTPStatus: ae.HTTPStatus, GroupID: groupID,
		Provider: p.atlas, Remedy: remedy, Attempts: e.attempts}
	return failure.New(codes.FailedPrecondition, msg, info, failure.RetryInfo(propagationRetry))
}

// maxNamed is how many clusters a refusal's message names; its
// PreconditionFailure names them all.
const maxNamed = 10

// refusedDisable reports whether err is Atlas refusing a disable because
// clusters use the provider (409).
func refusedDisable(err error) (*atlas.Error, bool) {
	var ae *atlas.Error
	return ae, errors.As(err, &ae) && ae.HTTPStatus == http.StatusConflict
}

// blockedDisable answers Atlas's 409 to r, a disable, with the clusters
// that use the provider, read after the refusal: FAILED_PRECONDITION with a
// PreconditionFailure naming each. If they cannot be read, the answer is
// Atlas's refusal as it was, saying so.
func (s *Server) blockedDisable(ctx context.Context, r *request, refusal *atlas.Error) error {
	clusters, err := s.atlas.ListClusters(ctx, r.groupID)
	if err != nil {
		why := status.Convert(fromAtlas(ctx, err, r.groupID, r.provider, r.secrets())).Message()
		return failure.WithNote(fromAtlas(ctx, refusal, r.groupID, r.provider, r.secrets()),
			"; the clusters that use "+r.provider.title+" could not be listed: "+why)
	}
	users := usersOf(clusters, r.provider)
	info := failure.Info{Domain: failure.DomainAtlas, Reason: refusal.ErrorCode, HTTPStatus: refusal.HTTPStatus, GroupID: r.groupID, Provider: r.provider.atlas}
	said := atlasSaid(refusal.ErrorCode, refusal.Detail, r.secrets())
	return inUse(codes.FailedPrecondition, fmt.Sprintf("Atlas refused to disable %s (%d %s)", r.provider.title, refusal.HTTPStatus, said), info, r.provider, users)
}

// predictDisable refuses a validate-only disable that Atlas would refuse
// because clusters use the provider, after reading them.
func (s *Server) predictDisable(ctx context.Context, r *request, current *atlas.EncryptionAtRest) error {
	if !r.provider.enabled(current) {
		return nil // nothing to disable: Atlas accepts it
	}
	clusters, err := s.atlas.ListClusters(ctx, r.groupID)
	if err != nil {
		return fromAtlas(ctx, err, r.groupID, r.provider, nil)
	}
	users := usersOf(clusters, r.provider)
	if len(users) == 0 {
		return nil
	}
	info := failure.Info{Domain: failure.DomainService, Reason: "CANNOT_DISABLE_ENCRYPTION_AT_REST", HTTPStatus: http.StatusConflict, GroupID: r.groupID, Provider: r.provider.atlas}
	return inUse(codes.FailedPrecondition, "Atlas would refuse to disable "+r.provider.title+"; nothing was sent", info, r.provider, users)
}

// usersOf returns the clusters that use provider p.
func usersOf(clusters []atlas.Cluster, p *provider) []atlas.Cluster {
	var users []atlas.Cluster
	for _, c := range clusters {
		if c.EncryptionAtRestProvider == p.cloud.String() {
			users = append(users, c)
		}
	}
	return users
}

// inUse is the status of a disable that the users of provider p block:
// the message names up to maxNamed of them, a PreconditionFailure every
// one.
func inUse(code codes.Code, lead string, info failure.Info, p *provider, users []atlas.Cluster) error {
	info.Remedy = failure.AtlasCodes["CANNOT_DISABLE_ENCRYPTION_AT_REST"].Remedy
	var msg strings.Builder
	msg.WriteString(lead)
	names := make([]string, 0, min(len(users), maxNamed))
	vs := make([]*failure.PreconditionViolation, 0, len(users))
	for i, c := range users {
		if i < maxNamed {
			names = append(names, c.Name)
		}
		vs = append(vs, &failure.PreconditionViolation{
			Type:        failure.ViolationProviderInUse,
			Subject:     "clusters/" + c.Name,
			Description: "cluster " + c.Name + " uses " + p.title + ": set its encryptionAtRestProvider to NONE or terminate it first",
		})
	}
	switch {
	case len(users) == 0:
		msg.WriteString(": no cluster reports using it now (search nodes follow enabledForSearchNodes); try again once the clusters' changes have finished")
	case len(users) == 1:
		fmt.Fprintf(&msg, ": cluster %s uses it", names[0])
	default:
		fmt.Fprintf(&msg, ": %d clusters use it: %s", len(users), strings.Join(names, ", "))
		if more := len(users) - len(names); more > 0 {
			fmt.Fprintf(&msg, " and %d more", more)
		}
	}
	msg.WriteString(". To fix: " + info.Remedy)
	if len(vs) == 0 {
		return failure.New(code, msg.String(), info)
	}
	return failure.New(code, msg.String(), info, failure.PreconditionFailure(vs))
}
