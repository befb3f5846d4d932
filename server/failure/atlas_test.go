package failure

import (
	"bufio"
	"os"
	"strings"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/grpc/codes"
)

// The table of Atlas's error codes is in docs/ERRORS.md, under this
// heading.
const (
	codesDoc     = "../../docs/ERRORS.md"
	codesSection = "# Atlas's error codes"
)

// TestAtlasCodesMatchDocs holds docs/ERRORS.md's table of Atlas's error
// codes to AtlasCodes: the same codes, each with the same gRPC code and
// remedy.
func TestAtlasCodesMatchDocs(t *testing.T) {
	t.Parallel()
	f, err := os.Open(codesDoc)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	documented := map[string]AtlasCode{}
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == codesSection:
			in = true
		case in && strings.HasPrefix(line, "#"):
			in = false
		case in && strings.HasPrefix(line, "| `"):
			cells := strings.Split(strings.Trim(line, "| "), " | ")
			if len(cells) != 3 {
				t.Fatalf("docs/ERRORS.md row %q: want 3 cells: errorCode, gRPC code, what to do", line)
			}
			errorCode := strings.Trim(cells[0], "`")
			c, ok := code.Code_value[cells[1]]
			if !ok {
				t.Errorf("docs/ERRORS.md row %s: %q is not a gRPC code", errorCode, cells[1])
			}
			if _, dup := documented[errorCode]; dup {
				t.Errorf("docs/ERRORS.md lists %s twice", errorCode)
			}
			documented[errorCode] = AtlasCode{Code: codes.Code(c), Remedy: cells[2]}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(documented) == 0 {
		t.Fatalf("%s has no table under %q", codesDoc, codesSection)
	}
	for errorCode, want := range AtlasCodes {
		got, ok := documented[errorCode]
		switch {
		case !ok:
			t.Errorf("docs/ERRORS.md's table lacks %s", errorCode)
		case got != want:
			t.Errorf("docs/ERRORS.md's %s = %v, %q; AtlasCodes says %v, %q", errorCode, got.Code, got.Remedy, want.Code, want.Remedy)
		}
	}
	for errorCode := range documented {
		if _, ok := AtlasCodes[errorCode]; !ok {
			t.Errorf("docs/ERRORS.md's table has %s, which AtlasCodes does not", errorCode)
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
