package failure

import "strings"

// Suggest returns the one of candidates that got means, when got misspells
// it only in case or in the separators "_", "-", "." and " " ("us-east-1"
// for US_EAST_1, "customerMasterKeyId" for customerMasterKeyID): a refusal
// then adds "did you mean …?". It returns a candidate, never got, so a
// suggestion quotes nothing the caller sent.
func Suggest(got string, candidates []string) (string, bool) {
	want := normalize(got)
	for _, c := range candidates {
		if c != got && normalize(c) == want {
			return c, true
		}
	}
	return "", false
}

// separators are what Suggest ignores besides case.
var separators = strings.NewReplacer("_", "", "-", "", ".", "", " ", "")

func normalize(s string) string { return strings.ToUpper(separators.Replace(s)) }
