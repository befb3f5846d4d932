package main

import (
	"bufio"
	"context"
	"io"
	"os"
	"path/filepath"
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

// startRun runs the emulator with args until the returned stop is called,
// and returns its base URL and stop, which returns run's error and what it
// printed.
func startRun(t *testing.T, args ...string) (base string, stop func() (string, error)) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	var out strings.Builder
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, append([]string{"-addr", "127.0.0.1:0", "-public-key", "p", "-private-key", "s"}, args...), pw)
		pw.Close()
	}()
	copied := make(chan struct{})
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		out.WriteString(sc.Text() + "\n")
		if u, ok := strings.CutPrefix(sc.Text(), "atlas-emulator listening on "); ok {
			base = u
			break
		}
	}
	go func() {
		defer close(copied)
		for sc.Scan() {
			out.WriteString(sc.Text() + "\n")
		}
	}()
	stopped := false
	stop = func() (string, error) {
		if stopped {
			return out.String(), nil
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			<-copied
			return out.String(), err
		case <-time.After(20 * time.Second):
			t.Fatal("run() did not return after cancel")
			return "", nil
		}
	}
	t.Cleanup(func() { stop() })
	if base == "" {
		text, err := stop()
		t.Fatalf("run(%q) = %v before it listened; printed %q", args, err, text)
	}
	return base, stop
}

// TestStatePersists stops an emulator with -state and starts another on the
// same file: the project configured in the first is configured in the
// second, and the file is its owner's only.
func TestStatePersists(t *testing.T) {
	t.Parallel()
	const group, secret = "5f4e3d2c1b0a998877665544", "state-secret-9c1d"
	state := filepath.Join(t.TempDir(), "state.json")

	base, stop := startRun(t, "-state", state)
	c, err := atlas.NewClient(atlas.WithBaseURL(base), atlas.WithDigest("p", "s"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.UpdateEncryptionAtRest(t.Context(), group, &atlas.EncryptionAtRest{AWSKMS: &atlas.AWSKMSConfiguration{
		Enabled: ptr(true), CustomerMasterKeyID: ptr("key-1"), Region: ptr("US_EAST_1"),
		AccessKeyID: ptr("AKIAIOSFODNN7EXAMPLE"), SecretAccessKey: ptr(secret),
	}})
	if err != nil {
		t.Fatalf("UpdateEncryptionAtRest() = %v", err)
	}
	c.CloseIdleConnections()
	if out, err := stop(); err != nil || !strings.Contains(out, "atlas-emulator wrote 1 projects to "+state) {
		t.Fatalf("run() = %v, printed %q; want nil and the state written", err, out)
	}
	fi, err := os.Stat(state)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("state file: %v, %v; want mode 0600", fi, err)
	}
	if b, _ := os.ReadFile(state); !strings.Contains(string(b), secret) {
		t.Errorf("state file = %s, want the secret the emulator holds", b)
	}

	base, stop = startRun(t, "-state", state)
	c, err = atlas.NewClient(atlas.WithBaseURL(base), atlas.WithDigest("p", "s"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseIdleConnections()
	got, err := c.GetEncryptionAtRest(t.Context(), group)
	if err != nil || got.AWSKMS == nil || got.AWSKMS.CustomerMasterKeyID == nil || *got.AWSKMS.CustomerMasterKeyID != "key-1" {
		t.Errorf("GetEncryptionAtRest() after the restart = %+v, %v, want awsKms with key-1", got, err)
	}
	c.CloseIdleConnections()
	if out, err := stop(); err != nil || !strings.Contains(out, "atlas-emulator restored 1 projects from "+state) {
		t.Errorf("second run() = %v, printed %q; want nil and the state restored", err, out)
	}
}

func TestStateRefused(t *testing.T) {
	t.Parallel()
	state := filepath.Join(t.TempDir(), "state.json")
	if err := os.WriteFile(state, []byte(`{"version": 1, "groups": {"nope": {}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := run(t.Context(), []string{"-addr", "127.0.0.1:0", "-state", state}, io.Discard); err == nil || !strings.Contains(err.Error(), "-state "+state) {
		t.Errorf("run(-state with a bad file) = %v, want an error naming the file", err)
	}
}

func ptr[T any](v T) *T { return &v }

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
