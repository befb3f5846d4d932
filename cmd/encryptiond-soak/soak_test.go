package main

import (
	"errors"
	"io"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestReplaceSection(t *testing.T) {
	t.Parallel()
	const section = "## Soak\n\nnew\n"
	tests := []struct {
		name, doc, want string
	}{
		{"empty file", "", "## Soak\n\nnew\n"},
		{"appended after other sections", "# Bench\n\n## Performance\n\ntable\n", "# Bench\n\n## Performance\n\ntable\n\n## Soak\n\nnew\n"},
		{"replaced at the end", "# Bench\n\n## Soak\n\nold\nolder\n", "# Bench\n\n## Soak\n\nnew\n"},
		{"replaced in the middle, the next section kept", "## Soak\n\nold\n\n## Performance\n\ntable\n", "## Soak\n\nnew\n\n## Performance\n\ntable\n"},
		{"a heading inside a code block is not the end", "## Soak\n\n```\n## not a heading\n```\n## Next\n", "## Soak\n\nnew\n\n## Next\n"},
		{"a longer heading is another section", "## Soak tests elsewhere\n\nkeep\n", "## Soak tests elsewhere\n\nkeep\n\n## Soak\n\nnew\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := replaceSection(tt.doc, "## Soak", section); got != tt.want {
				t.Errorf("replaceSection(%q) = %q, want %q", tt.doc, got, tt.want)
			}
		})
	}
}

func TestClassify(t *testing.T) {
	t.Parallel()
	atlasErr := func(c codes.Code, msg, reason, httpStatus string) error {
		st, err := status.New(c, msg).WithDetails(&errdetails.ErrorInfo{
			Reason: reason, Domain: "cloud.mongodb.com", Metadata: map[string]string{"httpStatus": httpStatus},
		})
		if err != nil {
			t.Fatal(err)
		}
		return st.Err()
	}
	statuses := []int{500, 503, 429}
	tests := []struct {
		name         string
		err          error
		wantInjected bool
	}{
		{"injected 503 on a change", atlasErr(codes.Unavailable, "Atlas answered 503 SERVICE_UNAVAILABLE: Injected fault.", "SERVICE_UNAVAILABLE", "503"), true},
		{"injected 429 after retries", atlasErr(codes.ResourceExhausted, "Atlas answered 429 RATE_LIMITED_TOKEN_BUCKET: Injected fault.", "RATE_LIMITED_TOKEN_BUCKET", "429"), true},
		{"REST 503 with the marker", &restError{status: 503, body: `{"error": {"message": "Atlas answered 503 SERVICE_UNAVAILABLE: Injected fault."}}`}, true},
		{"a 502 was not injected", atlasErr(codes.Unavailable, "Atlas answered 502 BAD_GATEWAY: Injected fault.", "BAD_GATEWAY", "502"), false},
		{"a real Atlas 503", atlasErr(codes.Unavailable, "Atlas answered 503 SERVICE_UNAVAILABLE", "SERVICE_UNAVAILABLE", "503"), false},
		{"outcome unknown", atlasErr(codes.Unavailable, "may or may not have been applied", "OUTCOME_UNKNOWN", "502"), false},
		{"INTERNAL", status.Error(codes.Internal, "Injected fault."), false},
		{"INVALID_ARGUMENT", status.Error(codes.InvalidArgument, "MISSING_ATTRIBUTE"), false},
		{"REST 500", &restError{status: 500, body: "Injected fault."}, false},
		{"a transport error", errors.New("connection reset"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if class, got := classify(tt.err, statuses); got != tt.wantInjected {
				t.Errorf("classify(%v) = %q, %v, want injected %v", tt.err, class, got, tt.wantInjected)
			}
		})
	}
}

func TestPct(t *testing.T) {
	t.Parallel()
	var ds []time.Duration
	for i := 100; i >= 1; i-- {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	for _, tt := range []struct {
		p    float64
		want time.Duration
	}{{50, 50 * time.Millisecond}, {99, 99 * time.Millisecond}, {100, 100 * time.Millisecond}} {
		if got := pct(ds, tt.p); got != tt.want {
			t.Errorf("pct(1..100 ms, %v) = %v, want %v", tt.p, got, tt.want)
		}
	}
	if got := pct(nil, 99); got != 0 {
		t.Errorf("pct(nil, 99) = %v, want 0", got)
	}
}

func TestParseFlags(t *testing.T) {
	t.Parallel()
	cfg, err := parseFlags([]string{"-duration", "10s", "-statuses", "500, 429"}, io.Discard)
	if err != nil {
		t.Fatalf("parseFlags = %v", err)
	}
	if cfg.warmup != 2*time.Second || cfg.window != 10*time.Second || len(cfg.statuses) != 2 {
		t.Errorf("parseFlags(-duration 10s) = warm-up %v, window %v, statuses %v; want 2s, 10s and two statuses", cfg.warmup, cfg.window, cfg.statuses)
	}
	for _, args := range [][]string{{"-statuses", "200"}, {"-rate", "0"}, {"-fault-rate", "2"}, {"extra"}} {
		if _, err := parseFlags(args, io.Discard); err == nil {
			t.Errorf("parseFlags(%q) = nil error, want one", args)
		}
	}
}
