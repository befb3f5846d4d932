package main

import (
	"bufio"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/encryptiond/encryptiond/atlas"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestRun(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-public-key", "p", "-private-key", "s"}, pw)
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the listen line: %v", err)
	}
	go io.Copy(io.Discard, pr)
	base, ok := strings.CutPrefix(strings.TrimSpace(line), "atlas-emulator listening on ")
	if !ok {
		t.Fatalf("run() printed %q, want the listen address", line)
	}
	c, err := atlas.NewClient(atlas.WithBaseURL(base), atlas.WithDigest("p", "s"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.GetEncryptionAtRest(ctx, "5f4e3d2c1b0a998877665544")
	if err != nil || got.AWSKMS == nil {
		t.Errorf("GetEncryptionAtRest() = %+v, %v, want a configuration", got, err)
	}
	c.CloseIdleConnections()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run() = %v, want nil after cancel", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run() did not return after cancel")
	}
}

func TestRunBadFlags(t *testing.T) {
	t.Parallel()
	tests := [][]string{{"-nope"}, {"extra"}, {"-latency", "soon"}}
	for _, args := range tests {
		if err := run(t.Context(), args, io.Discard); err == nil {
			t.Errorf("run(%q) = nil, want an error", args)
		}
	}
}

// TestHelpWarns checks that -help says the emulator is a test tool whose
// control endpoint hands out request bodies.
func TestHelpWarns(t *testing.T) {
	t.Parallel()
	var out strings.Builder
	if err := run(t.Context(), []string{"-help"}, &out); err == nil {
		t.Fatal("run(-help) = nil, want flag.ErrHelp")
	}
	for _, want := range []string{"test tool", "/_emulator/requests", "bodies", "-addr"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("run(-help) printed %q, want it to mention %q", out.String(), want)
		}
	}
}
