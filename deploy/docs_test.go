package deploy

import (
	"regexp"
	"strings"
	"testing"
)

// TestDocManifests decodes every Kubernetes object that docs/DEPLOYING.md
// shows (a ```yaml block with apiVersion and kind) as strictly as the kit's.
func TestDocManifests(t *testing.T) {
	t.Parallel()
	blocks := regexp.MustCompile("(?ms)^```yaml\n(.*?)^```$").FindAllSubmatch(readFile(t, "docs", "DEPLOYING.md"), -1)
	n := 0
	for _, b := range blocks {
		for _, doc := range strings.Split(string(b[1]), "\n---\n") {
			if !strings.Contains(doc, "\napiVersion: ") || !strings.Contains(doc, "\nkind: ") {
				continue
			}
			n++
			if err := decodeStrictly(t, []byte(doc), new(objects)); err != nil {
				t.Errorf("docs/DEPLOYING.md shows an object that does not decode strictly: %v\n%s", err, doc)
			}
		}
	}
	if n == 0 {
		t.Errorf("docs/DEPLOYING.md shows no Kubernetes object; this test looks for ```yaml blocks with apiVersion and kind")
	}
}
