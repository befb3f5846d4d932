package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
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
func (s *Server) send(ctx context.Context, r *request) (*atlas.EncryptionAtRest, int, error) {
	body := r.patch()
	start := time.Now()
	for attempt := 1; ; attempt++ {
		sent := time.Now()
		result, err := s.atlas.UpdateEncryptionAtRest(ctx, r.groupID, body)
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
	said := ae.ErrorCode
	if ae.Detail != "" {
		said += ": " + atlas.Redact(ae.Detail, secrets)
	}
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
	said := refusal.ErrorCode
	if refusal.Detail != "" {
		said += ": " + atlas.Redact(refusal.Detail, r.secrets())
	}
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
