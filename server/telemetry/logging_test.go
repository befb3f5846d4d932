package telemetry

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/stats"

	"github.com/encryptiond/encryptiond/server/caller"
)

// TestCallLogForwardedFor checks that the call log shows the address
// caller.ForwardedFor carries, and never the x-forwarded-for metadata a
// caller sent.
func TestCallLogForwardedFor(t *testing.T) {
	t.Parallel()
	spoofed := metadata.Pairs("x-forwarded-for", "203.0.113.66, 198.51.100.7")
	tests := []struct {
		name string
		ctx  func(context.Context) context.Context
		want any // nil: no forwarded_for attribute
	}{
		{
			name: "direct gRPC call with x-forwarded-for metadata",
			ctx:  func(ctx context.Context) context.Context { return metadata.NewIncomingContext(ctx, spoofed) },
		},
		{
			name: "REST call",
			ctx: func(ctx context.Context) context.Context {
				return caller.NewForwardedContext(metadata.NewIncomingContext(ctx, spoofed), "192.0.2.10")
			},
			want: "192.0.2.10",
		},
		{
			name: "overlong address",
			ctx: func(ctx context.Context) context.Context {
				return caller.NewForwardedContext(ctx, strings.Repeat("é", 200))
			},
			want: strings.Repeat("é", 128) + "…",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			m, err := NewMetrics(prometheus.NewRegistry())
			if err != nil {
				t.Fatal(err)
			}
			calls := NewCalls(slog.New(slog.NewJSONHandler(&buf, nil)), m)
			ctx := peer.NewContext(t.Context(), &peer.Peer{Addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 4242}})
			ctx = calls.TagRPC(tt.ctx(ctx), &stats.RPCTagInfo{FullMethodName: "/atlas.encryption.v1.EncryptionService/GetEncryptionAtRest"})
			now := time.Now()
			calls.HandleRPC(ctx, &stats.Begin{BeginTime: now})
			calls.HandleRPC(ctx, &stats.End{BeginTime: now, EndTime: now.Add(time.Millisecond)})
			var rec map[string]any
			if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
				t.Fatalf("log %q: %v", buf.String(), err)
			}
			if got := rec["forwarded_for"]; got != tt.want {
				t.Errorf("forwarded_for = %v, want %v", got, tt.want)
			}
			if rec["peer"] != "127.0.0.1:4242" {
				t.Errorf("peer = %v, want 127.0.0.1:4242", rec["peer"])
			}
		})
	}
}
