package monitor

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	encryptionv1 "github.com/encryptiond/encryptiond/gen/atlas/encryption/v1"
)

// scripted is a Watcher that sends each project a fixed sequence of
// configurations, then waits for its context.
type scripted map[string][]*encryptionv1.EncryptionAtRest

func (s scripted) Watch(ctx context.Context, groupID string, send func(*encryptionv1.EncryptionAtRest) error) error {
	for _, cfg := range s[groupID] {
		if err := send(cfg); err != nil {
			return err
		}
	}
	<-ctx.Done()
	return ctx.Err()
}

func aws(enabled, valid bool) *encryptionv1.EncryptionAtRest {
	return &encryptionv1.EncryptionAtRest{
		AwsKms:         &encryptionv1.AwsKmsState{Enabled: proto.Bool(enabled), Valid: proto.Bool(valid)},
		AzureKeyVault:  &encryptionv1.AzureKeyVaultState{Enabled: proto.Bool(false), Valid: proto.Bool(false)},
		GoogleCloudKms: &encryptionv1.GoogleCloudKmsState{Enabled: proto.Bool(false), Valid: proto.Bool(false)},
	}
}

func TestTransitions(t *testing.T) {
	t.Parallel()
	const g = "5e6f7a8b9c0d1e2f3a4b5c6d"
	svc := scripted{g: {
		aws(true, true),   // valid: nothing to say
		aws(true, false),  // WARN
		aws(true, false),  // still invalid: nothing
		aws(true, true),   // INFO
		aws(true, false),  // WARN
		aws(false, false), // disabled: forgotten, nothing said
		aws(true, false),  // enabled again, invalid: WARN
	}}
	var buf bytes.Buffer
	m, err := New(Config{GroupIDs: []string{g}, Interval: time.Minute}, svc, nil, slog.New(slog.NewJSONHandler(&buf, nil)), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { m.Run(ctx); close(done) }()
	want := []string{"WARN awsKms", "INFO awsKms", "WARN awsKms", "WARN awsKms"}
	var got []string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if got = records(t, &buf, m); len(got) >= len(want) {
			break
		}
	}
	cancel()
	<-done
	got = records(t, &buf, m)
	if !slices.Equal(got, want) {
		t.Errorf("records %q, want %q", got, want)
	}
	if strings.Contains(buf.String(), `"level":"ERROR"`) {
		t.Errorf("an ERROR record: %s", buf.String())
	}
}

// records returns the transition records in buf as "LEVEL provider".
func records(t *testing.T, buf *bytes.Buffer, m *Monitor) []string {
	t.Helper()
	m.mu.Lock() // observe writes under it
	defer m.mu.Unlock()
	var out []string
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if line == "" {
			continue
		}
		var r map[string]any
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("record %q: %v", line, err)
		}
		out = append(out, r["level"].(string)+" "+r["provider"].(string))
	}
	return out
}

func TestNewRefuses(t *testing.T) {
	t.Parallel()
	for name, cfg := range map[string]Config{
		"no interval":          {GroupIDs: []string{"5e6f7a8b9c0d1e2f3a4b5c6d"}},
		"no project":           {Interval: time.Minute},
		"all without a lister": {All: true, Interval: time.Minute},
	} {
		if _, err := New(cfg, scripted{}, nil, slog.Default(), nil); err == nil {
			t.Errorf("%s: New(%+v) succeeded", name, cfg)
		}
	}
}
