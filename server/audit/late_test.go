package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/encryptiond/encryptiond/atlas"
	"github.com/encryptiond/encryptiond/atlas/atlastest"
	encryptionv1 "github.com/encryptiond/encryptiond/gen/atlas/encryption/v1"
	"github.com/encryptiond/encryptiond/server"
	"github.com/encryptiond/encryptiond/server/caller"
)

func TestLateOutcome(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err  error
		want string
	}{
		{nil, OutcomeApplied},
		{fmt.Errorf("atlas: PATCH: %w", atlas.ErrUpdateAppliedUnreadable), OutcomeApplied},
		{&atlas.Error{HTTPStatus: http.StatusBadRequest, ErrorCode: "INVALID_ENUM_VALUE"}, OutcomeFailed},
		{&atlas.Error{HTTPStatus: http.StatusServiceUnavailable}, OutcomeUnknown},
		{fmt.Errorf("atlas: PATCH: %w: EOF", atlas.ErrOutcomeUnknown), OutcomeUnknown},
		{errors.New("context deadline exceeded"), OutcomeUnknown},
	}
	for _, tt := range tests {
		if got := LateOutcome(tt.err); got != tt.want {
			t.Errorf("LateOutcome(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for the late record's goroutine.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestLateRecord is a change whose caller leaves while Atlas is slow: its
// record says unknown at once, and a second record, late, says applied
// when Atlas's answer comes.
func TestLateRecord(t *testing.T) {
	t.Parallel()
	const group = "5f1a2b3c4d5e6f7a8b9c0d1e"
	emu, srv := atlastest.NewServer(t, atlastest.EmulatorConfig{PublicKey: "p", PrivateKey: "k", AutoCreateGroups: true})
	client, err := atlas.NewClient(atlas.WithBaseURL(srv.URL), atlas.WithDigest("p", "k"))
	if err != nil {
		t.Fatal(err)
	}
	svc := server.New(client)
	var buf syncBuffer
	icpt := UnaryServerInterceptor(slog.New(slog.NewJSONHandler(&buf, nil)))
	info := &grpc.UnaryServerInfo{FullMethod: encryptionv1.EncryptionService_UpdateEncryptionAtRest_FullMethodName}
	handler := func(ctx context.Context, req any) (any, error) {
		return svc.UpdateEncryptionAtRest(ctx, req.(*encryptionv1.UpdateEncryptionAtRestRequest))
	}
	req := &encryptionv1.UpdateEncryptionAtRestRequest{GroupId: group, Config: &encryptionv1.ProviderConfig{
		Provider: &encryptionv1.ProviderConfig_GoogleCloudKms{GoogleCloudKms: &encryptionv1.GoogleCloudKms{
			Enabled:              proto.Bool(true),
			KeyVersionResourceId: proto.String("projects/p/locations/global/keyRings/r/cryptoKeys/k/cryptoKeyVersions/1"),
			RoleId:               proto.String("5f3b1c2d3e4f5a6b7c8d9e0f"),
		}},
	}}

	emu.SetLatency(500 * time.Millisecond)
	ctx, cancel := context.WithTimeout(caller.NewContext(t.Context(), "spiffe://example.org/ops"), 100*time.Millisecond)
	defer cancel()
	if _, err := icpt(ctx, req, info, handler); err == nil {
		t.Fatal("a change cut off by its deadline succeeded")
	}
	if n := svc.WaitForAtlas(t.Context()); n != 0 {
		t.Fatalf("WaitForAtlas() = %d unanswered, want 0", n)
	}

	type record struct {
		Late    bool   `json:"late"`
		Caller  string `json:"caller"`
		Action  string `json:"action"`
		Code    string `json:"code"`
		Outcome string `json:"outcome"`
	}
	var got []record
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var r record
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("record %q: %v", line, err)
		}
		got = append(got, r)
	}
	want := []record{
		{false, "spiffe://example.org/ops", "enable", "DeadlineExceeded", OutcomeUnknown},
		{true, "spiffe://example.org/ops", "enable", "", OutcomeApplied},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("audit records = %+v, want %+v", got, want)
	}
	if v := emu.State(group).GoogleCloudKMS.Enabled; v == nil || !*v {
		t.Errorf("Atlas's state after the late answer: googleCloudKms not enabled")
	}
}
