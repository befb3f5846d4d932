package atlasspec

import (
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
)

// TestCorrectionsStayStrict checks that the corrected schema still refuses
// what Atlas's would: a region of the other provider, a read-only field in
// a create body, a status Atlas does not have.
func TestCorrectionsStayStrict(t *testing.T) {
	t.Parallel()
	doc := Load(t)
	schemas := doc.Components.Schemas
	aws, azure, union := schemas["AWSKMSEARPrivateEndpoint"].Value, schemas["AzureKeyVaultEARPrivateEndpoint"].Value, schemas["EARPrivateEndpoint"].Value
	const id = `"id": "32b6e34b3d91647abb20e7b8"`
	tests := []struct {
		name    string
		body    string
		request bool
		ok      bool
		which   string
	}{
		{"AWS endpoint", `{` + id + `, "cloudProvider": "AWS", "regionName": "US_EAST_1", "status": "ACTIVE"}`, false, true, "union"},
		{"Azure endpoint in a region both lists have", `{` + id + `, "cloudProvider": "AZURE", "regionName": "US_EAST_2", "status": "PENDING_ACCEPTANCE"}`, false, true, "union"},
		{"AWS endpoint in an Azure region", `{` + id + `, "cloudProvider": "AWS", "regionName": "EUROPE_WEST", "status": "ACTIVE"}`, false, false, "union"},
		{"a status Atlas does not have", `{` + id + `, "cloudProvider": "AWS", "regionName": "US_EAST_1", "status": "DELETED"}`, false, false, "union"},
		{"AWS create body", `{"regionName": "US_EAST_1"}`, true, true, "aws"},
		{"Azure create body with an AWS-only region", `{"regionName": "EU_WEST_1"}`, true, false, "azure"},
		{"create body with a read-only field", `{"regionName": "US_EAST_1", "status": "ACTIVE"}`, true, false, "aws"},
	}
	for _, tt := range tests {
		s := map[string]*openapi3.Schema{"aws": aws, "azure": azure, "union": union}[tt.which]
		if err := Validate(s, []byte(tt.body), tt.request); (err == nil) != tt.ok {
			t.Errorf("%s: Validate(%s) = %v, want ok: %v", tt.name, tt.body, err, tt.ok)
		}
	}
}
