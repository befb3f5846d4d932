// Package report holds what the benchmark and soak drivers
// (cmd/encryptiond-bench, cmd/encryptiond-soak) share in writing up a run:
// percentiles of call latencies, and the generated sections of BENCH.md.
//
// A generated section lies between two HTML comments that Markdown does
// not show, <!-- NAME:begin --> and <!-- NAME:end -->. WriteSection
// replaces what lies between them and leaves the rest of the file, the
// prose written around the numbers, as it is.
package report

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Percentile returns the p-th percentile (nearest rank) of ds, which need
// not be sorted; 0 when ds is empty.
func Percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(p/100*float64(len(s))+0.5) - 1
	return s[min(max(i, 0), len(s)-1)]
}

// Markers returns the lines that open and close the section name.
func Markers(name string) (begin, end string) {
	return "<!-- " + name + ":begin -->", "<!-- " + name + ":end -->"
}

// ReplaceSection returns doc with the text between the markers of section
// name replaced by text. A doc without the markers gets heading and the
// section appended; a doc with only one of them, or with them out of
// order, is an error, so that a damaged file is not written over.
func ReplaceSection(doc, name, heading, text string) (string, error) {
	begin, end := Markers(name)
	block := begin + "\n" + strings.TrimRight(text, "\n") + "\n" + end
	i, j := strings.Index(doc, begin), strings.Index(doc, end)
	switch {
	case i >= 0 && j > i:
		return doc[:i] + block + doc[j+len(end):], nil
	case i >= 0 || j >= 0:
		return "", fmt.Errorf("the markers of section %q are incomplete or out of order", name)
	case strings.TrimSpace(doc) == "":
		return heading + "\n\n" + block + "\n", nil
	default:
		return strings.TrimRight(doc, "\n") + "\n\n" + heading + "\n\n" + block + "\n", nil
	}
}

// WriteSection replaces section name of the Markdown file at path (see
// ReplaceSection), creating the file if it is missing. The file is
// replaced whole by a rename, so an interrupted run leaves the old one.
func WriteSection(path, name, heading, text string) error {
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	doc, err := ReplaceSection(string(old), name, heading, text)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".report-*.md")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // fails harmlessly after the rename
	mode := os.FileMode(0o644)
	if fi, err := os.Stat(path); err == nil {
		mode = fi.Mode().Perm()
	}
	_, err = tmp.WriteString(doc)
	if err := errors.Join(err, tmp.Chmod(mode), tmp.Close()); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
