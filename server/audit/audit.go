// Package audit writes the audit log of encryptiond: exactly one record for
// every UpdateEncryptionAtRest call that reaches the service, whether it was
// applied, validated only, refused or failed. A record names who asked
// (caller identity), what for (group, provider, action, the names of the
// fields set) and what came of it (status code and outcome); it never holds a
// field's value, so it never holds a secret.
//
// Install UnaryServerInterceptor outside authorization, so that refusals are
// audited too, and inside identity, so that the caller is known.
package audit

import (
	"context"
	"log/slog"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

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

// UnaryServerInterceptor returns an interceptor that writes one audit record
// per UpdateEncryptionAtRest call to logger, and passes every other call
// through untouched. Records are at level INFO with "audit": true, message
// "audit", and the attributes caller, group_id, provider, action, fields,
// code, outcome and attempts (how many times the change was sent to Atlas:
// 0 when it was not, more than 1 when it was sent again while its role
// propagated); the record's time is the time of the answer.
func UnaryServerInterceptor(logger *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if info.FullMethod != encryptionv1.EncryptionService_UpdateEncryptionAtRest_FullMethodName {
			return handler(ctx, req)
		}
		update, _ := req.(*encryptionv1.UpdateEncryptionAtRestRequest)
		m := server.DescribeUpdate(update)
		rec := &server.Record{}
		start := time.Now()
		resp, err := handler(server.NewRecordContext(ctx, rec), req)
		m.Attempts = rec.Attempts
		Write(ctx, logger, caller.FromContext(ctx), m, err, time.Since(start))
		return resp, err
	}
}

// Write writes the audit record of mutation m requested by identity that
// ended with err (nil on success). UnaryServerInterceptor calls it; it is
// exported for layers that refuse a mutation before it reaches the gRPC
// service and must still audit it.
func Write(ctx context.Context, logger *slog.Logger, identity string, m server.Mutation, err error, took time.Duration) {
	code := status.Code(err)
	fields := m.Fields
	if fields == nil {
		fields = []string{}
	}
	logger.LogAttrs(ctx, slog.LevelInfo, "audit",
		slog.Bool("audit", true),
		slog.String("caller", identity),
		slog.String("group_id", m.GroupID),
		slog.String("provider", m.Provider),
		slog.String("action", m.Action),
		slog.Any("fields", fields),
		slog.String("code", code.String()),
		slog.String("outcome", Outcome(m, err)),
		slog.Int("attempts", m.Attempts),
		slog.Duration("duration", took),
	)
}

// Outcome classifies how mutation m ended with err.
func Outcome(m server.Mutation, err error) string {
	if err == nil {
		if m.Action == "validate" {
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
