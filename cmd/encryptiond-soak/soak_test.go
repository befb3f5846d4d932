package main

import (
	"errors"
	"io"
	"strconv"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/encryptiond/encryptiond/server/failure"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestClassify(t *testing.T) {
	t.Parallel()
	atlasErr := func(c codes.Code, msg, reason, httpStatus string) error {
		n, _ := strconv.Atoi(httpStatus)
		return failure.New(c, msg, failure.Info{Reason: reason, Domain: failure.DomainAtlas, HTTPStatus: n})
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

func TestParseFlags(t *testing.T) {
	t.Parallel()
	cfg, err := parseFlags([]string{"-duration", "10s", "-statuses", "500, 429"}, io.Discard)
	if err != nil {
		t.Fatalf("parseFlags = %v", err)
	}
	if cfg.warmup != 2*time.Second || cfg.window != 10*time.Second || len(cfg.statuses) != 2 {
		t.Errorf("parseFlags(-duration 10s) = warm-up %v, window %v, statuses %v; want 2s, 10s and two statuses", cfg.warmup, cfg.window, cfg.statuses)
	}
	if cfg.chaos {
		t.Errorf("parseFlags(-duration 10s) = chaos on, want off by default")
	}
	cfg, err = parseFlags([]string{"-chaos", "-chaos-every", "3s"}, io.Discard)
	if err != nil || !cfg.chaos || cfg.chaosEvery != 3*time.Second {
		t.Errorf("parseFlags(-chaos -chaos-every 3s) = %v, %v, %v; want chaos every 3s", cfg.chaos, cfg.chaosEvery, err)
	}
	for _, args := range [][]string{{"-statuses", "200"}, {"-rate", "0"}, {"-fault-rate", "2"}, {"extra"}, {"-chaos", "-chaos-every", "1s"}} {
		if _, err := parseFlags(args, io.Discard); err == nil {
			t.Errorf("parseFlags(%q) = nil error, want one", args)
		}
	}
}
