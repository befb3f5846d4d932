package report

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	t.Parallel()
	var ds []time.Duration // 100 ms down to 1 ms: not sorted
	for i := 100; i >= 1; i-- {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	tests := []struct {
		ds   []time.Duration
		p    float64
		want time.Duration
	}{
		{ds, 50, 50 * time.Millisecond},
		{ds, 99, 99 * time.Millisecond},
		{ds, 100, 100 * time.Millisecond},
		{ds, 0, time.Millisecond},
		{[]time.Duration{3, 1, 2}, 50, 2},
		{[]time.Duration{7}, 99, 7},
		{nil, 99, 0},
	}
	for _, tt := range tests {
		if got := Percentile(tt.ds, tt.p); got != tt.want {
			t.Errorf("Percentile(%d durations, %v) = %v, want %v", len(tt.ds), tt.p, got, tt.want)
		}
	}
	if ds[0] != 100*time.Millisecond {
		t.Errorf("Percentile sorted its argument: ds[0] = %v, want 100ms", ds[0])
	}
}

func TestReplaceSection(t *testing.T) {
	t.Parallel()
	const (
		b = "<!-- s:begin -->"
		e = "<!-- s:end -->"
	)
	tests := []struct {
		name, doc, want string
	}{
		{"replaced, the prose around kept", "# T\n\nbefore\n" + b + "\nold\nolder\n" + e + "\nafter\n", "# T\n\nbefore\n" + b + "\nnew\n" + e + "\nafter\n"},
		{"empty section", "x\n" + b + e + "\n", "x\n" + b + "\nnew\n" + e + "\n"},
		{"empty file", "", "## S\n\n" + b + "\nnew\n" + e + "\n"},
		{"no markers: appended under the heading", "# T\n\nprose\n\n", "# T\n\nprose\n\n## S\n\n" + b + "\nnew\n" + e + "\n"},
		{"another section's markers are left alone", "<!-- o:begin -->\no\n<!-- o:end -->\n" + b + "\nold\n" + e + "\n", "<!-- o:begin -->\no\n<!-- o:end -->\n" + b + "\nnew\n" + e + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ReplaceSection(tt.doc, "s", "## S", "new\n\n")
			if err != nil || got != tt.want {
				t.Errorf("ReplaceSection(%q) = %q, %v, want %q", tt.doc, got, err, tt.want)
			}
		})
	}
	for _, doc := range []string{b + "\nno end\n", "no begin\n" + e, e + "\n" + b} {
		if got, err := ReplaceSection(doc, "s", "## S", "new"); err == nil {
			t.Errorf("ReplaceSection(%q) = %q, nil, want an error", doc, got)
		}
	}
}

func TestWriteSection(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "BENCH.md")
	if err := WriteSection(path, "s", "## S", "one"); err != nil {
		t.Fatalf("WriteSection(missing file) = %v", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := WriteSection(path, "s", "## S", "two"); err != nil {
		t.Fatalf("WriteSection() = %v", err)
	}
	b, err := os.ReadFile(path)
	if want := "## S\n\n<!-- s:begin -->\ntwo\n<!-- s:end -->\n"; err != nil || string(b) != want {
		t.Errorf("file = %q, %v, want %q", b, err, want)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("mode = %v, %v, want the file's own 0600 kept", fi.Mode(), err)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("directory holds %d files, want only BENCH.md (no temporary left)", len(entries))
	}

	if err := os.WriteFile(path, []byte("<!-- s:begin -->\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteSection(path, "s", "## S", "three"); err == nil || !strings.Contains(err.Error(), "incomplete") {
		t.Errorf("WriteSection(damaged file) = %v, want an error", err)
	}
}
