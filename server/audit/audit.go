// Package audit writes the audit log of encryptiond: exactly one record for
// every call that changes a project (UpdateEncryptionAtRest,
// CreatePrivateEndpoint, DeletePrivateEndpoint) that reaches the service,
// whether it was applied, validated only, refused or failed. A record names
// who asked (caller identity), what for (group, provider, action, the names
// of the fields set, the private endpoint concerned) and what came of it
// (status code and outcome); it never holds a field's value, so it never
// holds a secret.
//
// A change whose caller was answered OUTCOME_UNKNOWN before Atlas answered
// (the caller left, or shutdown cut the call) gets a second record when
// Atlas's answer comes: "late": true, with the outcome it had.
//
// Install UnaryServerInterceptor outside authorization, so that refusals are
// audited too, and inside identity, so that the caller is known.
package audit

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/encryptiond/encryptiond/atlas"
	encryptionv1 "github.com/encryptiond/encryptiond/gen/atlas/encryption/v1"
	"github.com/encryptiond/encryptiond/server"
	"github.com/encryptiond/encryptiond/server/caller"
	"github.com/encryptiond/encryptiond/server/failure"
)

// Outcomes of an audited mutation.
const (
	// OutcomeApplied: Atlas accepted the change.
	OutcomeApplied = "applied"
	// OutcomeValidated: a validate-only request passed every check; nothing
	// was changed.
	OutcomeValidated = "validated"
	// OutcomeRefused: the request was refused (bad input, rules, permission,
	// authentication); nothing was changed.
	OutcomeRefused = "refused"
	// OutcomeFailed: the change failed before it reached Atlas, or Atlas
	// refused it; nothing was changed.
	OutcomeFailed = "failed"
	// OutcomeUnknown: the change was sent to Atlas, which did not say
	// whether it applied it (no answer, or a 5xx answer); it may or may not
	// have been applied.
	OutcomeUnknown = "unknown"
)

// mutations are the methods that change a project, each with how its call
// is described: from its request, and from its answer (nil on failure).
var mutations = map[string]func(req, resp any) server.Mutation{
	encryptionv1.EncryptionService_UpdateEncryptionAtRest_FullMethodName: func(req, _ any) server.Mutation {
		r, _ := req.(*encryptionv1.UpdateEncryptionAtRestRequest)
		return server.DescribeUpdate(r)
	},
	encryptionv1.EncryptionService_CreatePrivateEndpoint_FullMethodName: func(req, resp any) server.Mutation {
		r, _ := req.(*encryptionv1.CreatePrivateEndpointRequest)
		m := server.DescribeCreatePrivateEndpoint(r)
		if ep, ok := resp.(*encryptionv1.PrivateEndpoint); ok {
			m.EndpointID = ep.GetId() // the new endpoint's
		}
		return m
	},
	encryptionv1.EncryptionService_DeletePrivateEndpoint_FullMethodName: func(req, _ any) server.Mutation {
		r, _ := req.(*encryptionv1.DeletePrivateEndpointRequest)
		return server.DescribeDeletePrivateEndpoint(r)
	},
}

// UnaryServerInterceptor returns an interceptor that writes one audit record
// per call that changes a project to logger, and passes every other call
// through untouched. Records are at level INFO with "audit": true, message
// "audit", and the attributes caller, group_id, provider, action, fields,
// code, outcome, attempts (how many times the change was sent to Atlas: 0
// when it was not, more than 1 when it was sent again while its role
// propagated), and endpoint_id for a private endpoint; the record's time is
// the time of the answer. A change answered before Atlas answered it gets a
// second record then (WriteLate).
func UnaryServerInterceptor(logger *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		describe, ok := mutations[info.FullMethod]
		if !ok {
			return handler(ctx, req)
		}
		start := time.Now()
		identity := caller.FromContext(ctx)
		rec := &server.Record{Late: func(err error) {
			WriteLate(context.WithoutCancel(ctx), logger, identity, describe(req, nil), err, time.Since(start))
		}}
		resp, err := handler(server.NewRecordContext(ctx, rec), req)
		m := describe(req, resp)
		m.Attempts = rec.Attempts
		Write(ctx, logger, identity, m, err, time.Since(start))
		return resp, err
	}
}

// Write writes the audit record of mutation m requested by identity that
// ended with err (nil on success). UnaryServerInterceptor calls it.
func Write(ctx context.Context, logger *slog.Logger, identity string, m server.Mutation, err error, took time.Duration) {
	attrs := append([]slog.Attr{slog.Bool("audit", true)}, subject(identity, m)...)
	attrs = append(attrs,
		slog.String("code", status.Code(err).String()),
		slog.String("outcome", Outcome(m, err)),
		slog.Int("attempts", m.Attempts),
		slog.Duration("duration", took),
	)
	if m.EndpointID != "" {
		attrs = append(attrs, slog.String("endpoint_id", m.EndpointID))
	}
	logger.LogAttrs(ctx, slog.LevelInfo, "audit", attrs...)
}

// WriteLate writes the second record of mutation m, whose caller was
// answered OUTCOME_UNKNOWN before Atlas answered the change: the record
// has "late": true and the outcome Atlas's answer err gives it (applied
// for nil), took counts from the call's start, and it has no code (the
// caller's answer had one).
func WriteLate(ctx context.Context, logger *slog.Logger, identity string, m server.Mutation, err error, took time.Duration) {
	attrs := append([]slog.Attr{slog.Bool("audit", true), slog.Bool("late", true)}, subject(identity, m)...)
	attrs = append(attrs,
		slog.String("outcome", LateOutcome(err)),
		slog.Duration("duration", took),
	)
	logger.LogAttrs(ctx, slog.LevelInfo, "audit", attrs...)
}

// subject is what every record says of who asked for what: names, never a
// value.
func subject(identity string, m server.Mutation) []slog.Attr {
	fields := m.Fields
	if fields == nil {
		fields = []string{}
	}
	return []slog.Attr{
		slog.String("caller", identity),
		slog.String("group_id", m.GroupID),
		slog.String("provider", m.Provider),
		slog.String("action", m.Action),
		slog.Any("fields", fields),
	}
}

// LateOutcome classifies Atlas's answer err to a change whose caller had
// already gone: applied, failed (Atlas refused it: nothing changed) or
// unknown (no answer, still).
func LateOutcome(err error) string {
	var ae *atlas.Error
	switch {
	case err == nil, errors.Is(err, atlas.ErrUpdateAppliedUnreadable):
		return OutcomeApplied
	case errors.Is(err, atlas.ErrOutcomeUnknown):
		return OutcomeUnknown
	case errors.As(err, &ae) && ae.HTTPStatus < 500:
		return OutcomeFailed
	}
	return OutcomeUnknown
}

// Outcome classifies how mutation m ended with err.
func Outcome(m server.Mutation, err error) string {
	if err == nil {
		if m.ValidateOnly || m.Action == "validate" {
			return OutcomeValidated
		}
		return OutcomeApplied
	}
	st := status.Convert(err)
	switch info := failure.Parse(st).Info; {
	case info.Outcome == failure.OutcomeUnknown, info.Reason == failure.ReasonOutcomeUnknown:
		return OutcomeUnknown
	case info.Reason == failure.ReasonAppliedUnreadable:
		return OutcomeApplied
	}
	switch st.Code() {
	case codes.InvalidArgument, codes.FailedPrecondition, codes.OutOfRange, codes.NotFound,
		codes.AlreadyExists, codes.PermissionDenied, codes.Unauthenticated, codes.ResourceExhausted:
		return OutcomeRefused
	}
	return OutcomeFailed
}
