package gateway

import (
	"testing"

	encryptionv1 "github.com/encryptiond/encryptiond/gen/atlas/encryption/v1"
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
