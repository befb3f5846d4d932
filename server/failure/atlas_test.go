package failure

import (
	"bufio"
	"os"
	"strings"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/grpc/codes"
)

// readmeSection is the README heading over the table of Atlas's error
// codes.
const readmeSection = "### Atlas's error codes"

// TestAtlasCodesMatchREADME holds README's table of Atlas's error codes to
// AtlasCodes: the same codes, each with the same gRPC code and remedy.
func TestAtlasCodesMatchREADME(t *testing.T) {
	t.Parallel()
	f, err := os.Open("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	readme := map[string]AtlasCode{}
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == readmeSection:
			in = true
		case in && strings.HasPrefix(line, "#"):
			in = false
		case in && strings.HasPrefix(line, "| `"):
			cells := strings.Split(strings.Trim(line, "| "), " | ")
			if len(cells) != 3 {
				t.Fatalf("README row %q: want 3 cells: errorCode, gRPC code, what to do", line)
			}
			errorCode := strings.Trim(cells[0], "`")
			c, ok := code.Code_value[cells[1]]
			if !ok {
				t.Errorf("README row %s: %q is not a gRPC code", errorCode, cells[1])
			}
			if _, dup := readme[errorCode]; dup {
				t.Errorf("README lists %s twice", errorCode)
			}
			readme[errorCode] = AtlasCode{Code: codes.Code(c), Remedy: cells[2]}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(readme) == 0 {
		t.Fatalf("README has no table under %q", readmeSection)
	}
	for errorCode, want := range AtlasCodes {
		got, ok := readme[errorCode]
		switch {
		case !ok:
			t.Errorf("README's table lacks %s", errorCode)
		case got != want:
			t.Errorf("README's %s = %v, %q; AtlasCodes says %v, %q", errorCode, got.Code, got.Remedy, want.Code, want.Remedy)
		}
	}
	for errorCode := range readme {
		if _, ok := AtlasCodes[errorCode]; !ok {
			t.Errorf("README's table has %s, which AtlasCodes does not", errorCode)
		}
	}
}

// TestRemediesQuoteNothing: a remedy is written once for every caller, so
// it cannot quote a request value; it reads as a sentence.
func TestRemediesQuoteNothing(t *testing.T) {
	t.Parallel()
	for errorCode, c := range AtlasCodes {
		if !strings.HasSuffix(c.Remedy, ".") || strings.ContainsAny(c.Remedy, "%\n|") {
			t.Errorf("%s remedy %q: want one sentence ending in a full stop, without %%, | or a newline", errorCode, c.Remedy)
		}
	}
}
