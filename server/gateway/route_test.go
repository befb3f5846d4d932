package gateway

import (
	"encoding/json"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	encryptionv1 "github.com/encryptiond/encryptiond/gen/atlas/encryption/v1"
	"github.com/encryptiond/encryptiond/gen/openapiv2"
)

func TestAtlasPath(t *testing.T) {
	t.Parallel()
	rs, err := newRoutes(encryptionv1.File_atlas_encryption_v1_encryption_proto.Services().ByName("EncryptionService"))
	if err != nil {
		t.Fatalf("newRoutes() = %v", err)
	}
	const (
		update = "/atlas.encryption.v1.EncryptionService/UpdateEncryptionAtRest"
		get    = "/atlas.encryption.v1.EncryptionService/GetEncryptionAtRest"
	)
	tests := []struct {
		method, path, want string
	}{
		{update, "config.aws_kms.region", "awsKms.region"},
		{update, "config.azure_key_vault.client_id", "azureKeyVault.clientID"},
		{update, "config.aws_kms.customer_master_key_id", "awsKms.customerMasterKeyID"},
		{update, "config.google_cloud_kms.key_version_resource_id", "googleCloudKms.keyVersionResourceID"},
		{update, "config.aws_kms.role_id", "awsKms.roleId"},
		{update, "config.aws_kms", "awsKms"},
		{update, "config", "config"},
		{update, "group_id", "groupId"},
		{update, "validate_only", "validateOnly"},
		{update, "config.aws_kms.noSuchField", "awsKms.noSuchField"},
		{update, "config.aws_kms.region.deeper", "awsKms.region.deeper"},
		{update, "config.awsKms.accessKeyID", "awsKms.accessKeyID"},
		{get, "group_id", "groupId"},
		{"", "config.azure_key_vault.tenant_id", "azureKeyVault.tenantID"},
		{"", "validateonly", "validateonly"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			t.Parallel()
			rt := rs.byRPC(tt.method)
			if rt == nil {
				rt = rs.fallback()
			}
			if got := rt.atlasPath(tt.path); got != tt.want {
				t.Errorf("atlasPath(%q, %q) = %q, want %q", tt.method, tt.path, got, tt.want)
			}
		})
	}
}

// TestOpenAPIDescribesWhatIsServed holds /openapi.json, which
// tools/openapi-params completes, to the routes: every route is there with
// its query parameters, a stream without pretty and envelope, and each of
// Atlas's v2 routes with the status the gateway answers.
func TestOpenAPIDescribesWhatIsServed(t *testing.T) {
	t.Parallel()
	var doc struct {
		Paths map[string]map[string]struct {
			Parameters []struct {
				Name string `json:"name"`
				In   string `json:"in"`
			} `json:"parameters"`
			Responses map[string]any `json:"responses"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(openapiv2.JSON, &doc); err != nil {
		t.Fatal(err)
	}
	rs, err := newRoutes(encryptionv1.File_atlas_encryption_v1_encryption_proto.Services().ByName("EncryptionService"))
	if err != nil {
		t.Fatal(err)
	}
	openapiPath := regexp.MustCompile(`\{([a-z_]+)=\*\}`)
	for _, rt := range rs.all {
		path := openapiPath.ReplaceAllStringFunc(rt.pattern, func(v string) string {
			name := openapiPath.FindStringSubmatch(v)[1]
			return "{" + rt.pathFields[name].JSONName() + "}"
		})
		op, ok := doc.Paths[path][strings.ToLower(rt.method)]
		if !ok {
			t.Errorf("/openapi.json lacks %s %s", rt.method, path)
			continue
		}
		var query []string
		for _, p := range op.Parameters {
			if p.In == "query" {
				query = append(query, p.Name)
			}
		}
		want := slices.Clone(rt.query)
		if !rt.stream {
			want = append(want, paramEnvelope, paramPretty)
		}
		slices.Sort(query)
		slices.Sort(want)
		if !slices.Equal(query, want) {
			t.Errorf("%s %s: /openapi.json's query parameters %v, the route takes %v", rt.method, path, query, want)
		}
		status := "200"
		if rt.atlasStatus != 0 {
			status = strconv.Itoa(rt.atlasStatus)
		}
		if _, ok := op.Responses[status]; !ok {
			t.Errorf("%s %s: /openapi.json documents %v, the gateway answers %s", rt.method, path, slices.Collect(maps.Keys(op.Responses)), status)
		}
	}
}
