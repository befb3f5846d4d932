package server_test

import (
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
)

// TestSuggestions: a refusal of a near miss says what was meant, and where
// to find an id, without ever quoting the value sent.
func TestSuggestions(t *testing.T) {
	t.Parallel()
	const arn = "arn:aws:iam::123456789012:role/atlas-kms-VALUE"
	tests := []struct {
		name, group, body string
		want              string // in what the caller sees
		notWant           string // the value sent
	}{
		{"AWS region spelled as AWS does", "", `{"awsKms": {"region": "us-east-1"}}`, "did you mean US_EAST_1?", "us-east-1"},
		{"Azure environment in lower case", "", `{"azureKeyVault": {"azureEnvironment": "azure_china"}}`, "did you mean AZURE_CHINA?", "azure_china"},
		{"an IAM role ARN for roleId", "", `{"googleCloudKms": {"roleId": "` + arn + `"}}`, "not an AWS IAM role ARN", arn},
		{"a project name for groupId", "payments-prod", `{"awsKms": {"enabled": false}}`, "Project Settings", ""},
	}
	for _, tt := range tests {
		for _, tr := range transports {
			t.Run(tt.name+"/"+tr.name, func(t *testing.T) {
				t.Parallel()
				h := newHarness(t)
				group := tt.group
				if group == "" {
					group = "3c4d5e6f7a8b9c0d1e2f3a4b"
				}
				code, _, seen := tr.update(t, h, group, tt.body, "")
				if code != codes.InvalidArgument || !strings.Contains(seen, tt.want) {
					t.Errorf("Update(%s) = %v %s, want INVALID_ARGUMENT with %q", tt.body, code, seen, tt.want)
				}
				if tt.notWant != "" && strings.Contains(seen, tt.notWant) {
					t.Errorf("Update(%s) = %s, which quotes the value sent", tt.body, seen)
				}
			})
		}
	}
}

// TestFieldNameSuggestion: a REST body with a near-miss field name is told
// the name meant.
func TestFieldNameSuggestion(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	code, _, seen := restPatch(t, h.rest.URL+"/v1/groups/3c4d5e6f7a8b9c0d1e2f3a4b/encryptionAtRest", `{"awsKms": {"customerMasterKeyId": "k-VALUE"}}`)
	if code != codes.InvalidArgument || !strings.Contains(seen, "did you mean customerMasterKeyID?") || strings.Contains(seen, "k-VALUE") {
		t.Errorf("PATCH with customerMasterKeyId = %v %s, want INVALID_ARGUMENT suggesting customerMasterKeyID, quoting no value", code, seen)
	}
}
