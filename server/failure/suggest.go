package failure

import "strings"

// Suggest returns the one of candidates that got means, when got misspells
// it only in case or in the separators "_", "-", "." and " " ("us-east-1"
// for US_EAST_1, "customerMasterKeyId" for customerMasterKeyID): a refusal
// then adds "did you mean …?". It returns a candidate, never got, so a
// suggestion quotes nothing the caller sent.
func Suggest(got string, candidates []string) (string, bool) {
	norm := func(s string) string {
		return strings.ToUpper(strings.NewReplacer("_", "", "-", "", ".", "", " ", "").Replace(s))
	}
	for _, c := range candidates {
		if c != got && norm(c) == norm(got) {
			return c, true
		}
	}
	return "", false
}
