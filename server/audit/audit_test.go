package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	encryptionv1 "github.com/encryptiond/encryptiond/gen/atlas/encryption/v1"
	"github.com/encryptiond/encryptiond/server"
	"github.com/encryptiond/encryptiond/server/caller"
	"github.com/encryptiond/encryptiond/server/failure"
)

func outcomeUnknown(code codes.Code) error {
	return failure.New(code, "may or may not have been applied", failure.Info{Reason: failure.ReasonOutcomeUnknown, Domain: failure.DomainAtlas})
}

func TestOutcome(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		action string
		err    error
		want   string
	}{
		{"applied", "enable", nil, OutcomeApplied},
		{"validated", "validate", nil, OutcomeValidated},
		{"invalid", "enable", status.Error(codes.InvalidArgument, "x"), OutcomeRefused},
		{"denied", "update", status.Error(codes.PermissionDenied, "x"), OutcomeRefused},
		{"unauthenticated", "update", status.Error(codes.Unauthenticated, "x"), OutcomeRefused},
		{"conflict", "disable", status.Error(codes.FailedPrecondition, "x"), OutcomeRefused},
		{"atlas down", "update", status.Error(codes.Unavailable, "x"), OutcomeFailed},
		{"not a status", "update", errors.New("boom"), OutcomeFailed},
		{"lost after sending", "update", outcomeUnknown(codes.Unavailable), OutcomeUnknown},
		{"deadline after sending", "enable", outcomeUnknown(codes.DeadlineExceeded), OutcomeUnknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := Outcome(server.Mutation{Action: tt.action}, tt.err); got != tt.want {
				t.Errorf("Outcome(%s, %v) = %q, want %q", tt.action, tt.err, got, tt.want)
			}
		})
	}
}

func TestInterceptorWritesOneRecordPerUpdate(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	icpt := UnaryServerInterceptor(slog.New(slog.NewJSONHandler(&buf, nil)))
	ctx := caller.NewContext(context.Background(), "spiffe://example.org/ops")
	ok := func(context.Context, any) (any, error) { return &encryptionv1.EncryptionAtRest{}, nil }

	// A Get is not audited.
	getInfo := &grpc.UnaryServerInfo{FullMethod: encryptionv1.EncryptionService_GetEncryptionAtRest_FullMethodName}
	if _, err := icpt(ctx, &encryptionv1.GetEncryptionAtRestRequest{GroupId: "5f1a2b3c4d5e6f7a8b9c0d1e"}, getInfo, ok); err != nil {
		t.Fatal(err)
	}
	const secret = "do-not-log-this-s3cr3t"
	req := &encryptionv1.UpdateEncryptionAtRestRequest{
		GroupId: "5f1a2b3c4d5e6f7a8b9c0d1e",
		Config: &encryptionv1.ProviderConfig{Provider: &encryptionv1.ProviderConfig_AzureKeyVault{AzureKeyVault: &encryptionv1.AzureKeyVault{
			Secret: proto.String(secret), ClientId: proto.String("b6a2a7a0-2f9e-4a4c-9b0e-1c2d3e4f5a6b"),
		}}},
	}
	updInfo := &grpc.UnaryServerInfo{FullMethod: encryptionv1.EncryptionService_UpdateEncryptionAtRest_FullMethodName}
	refuse := func(context.Context, any) (any, error) { return nil, status.Error(codes.InvalidArgument, "no") }
	if _, err := icpt(ctx, req, updInfo, refuse); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("interceptor changed the handler's error: %v", err)
	}

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 1 {
		t.Fatalf("%d records, want 1:\n%s", len(lines), buf.String())
	}
	if strings.Contains(buf.String(), secret) {
		t.Errorf("the audit record holds the secret: %s", buf.String())
	}
	var rec struct {
		Audit    bool     `json:"audit"`
		Caller   string   `json:"caller"`
		GroupID  string   `json:"group_id"`
		Provider string   `json:"provider"`
		Action   string   `json:"action"`
		Fields   []string `json:"fields"`
		Code     string   `json:"code"`
		Outcome  string   `json:"outcome"`
		Time     string   `json:"time"`
	}
	if err := json.Unmarshal([]byte(lines[0]), &rec); err != nil {
		t.Fatal(err)
	}
	if !rec.Audit || rec.Caller != "spiffe://example.org/ops" || rec.GroupID != req.GroupId || rec.Provider != "azureKeyVault" ||
		rec.Action != "update" || strings.Join(rec.Fields, ",") != "clientID,secret" || rec.Code != "InvalidArgument" ||
		rec.Outcome != OutcomeRefused || rec.Time == "" {
		t.Errorf("audit record = %+v", rec)
	}
}
