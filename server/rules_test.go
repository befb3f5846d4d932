package server

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/encryptiond/encryptiond/atlas"
	encryptionv1 "github.com/encryptiond/encryptiond/gen/atlas/encryption/v1"
)

const (
	testGroup = "32b6e34b3d91647abb20e7b8"
	roleID    = "5f3b1c2d3e4f5a6b7c8d9e0f"
	awsWhole  = `{"awsKms": {"enabled": true, "accessKeyID": "AKIAIOSFODNN7EXAMPLE", "secretAccessKey": "aws-secret-SENTINEL", "customerMasterKeyID": "030gce02-586d-48d2-a966-05ea954fde0g", "region": "US_EAST_1"}}`
	azWhole   = `{"azureKeyVault": {"enabled": true, "azureEnvironment": "AZURE", "clientID": "f0e1d2c3-b4a5-4968-8776-a5b4c3d2e1f0", "tenantID": "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d", "secret": "azure-secret-SENTINEL", "subscriptionID": "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d", "resourceGroupName": "rg", "keyVaultName": "vault", "keyIdentifier": "https://vault.vault.azure.net/keys/key/d891821e3d364e9eb88fbd3d11807b86"}}`
	gcpWhole  = `{"googleCloudKms": {"enabled": true, "keyVersionResourceID": "projects/p/locations/global/keyRings/r/cryptoKeys/k/cryptoKeyVersions/1", "serviceAccountKey": "{\"type\": \"service_account\", \"private_key\": \"gcp-secret-SENTINEL\"}"}}`
)

// sentinels are the secret values the test requests carry; no error may
// contain one.
var sentinels = []string{"aws-secret-SENTINEL", "azure-secret-SENTINEL", "gcp-secret-SENTINEL"}

func boolp(b bool) *bool    { return &b }
func strp(s string) *string { return &s }
func enabledAWS() atlas.EncryptionAtRest {
	return atlas.EncryptionAtRest{AWSKMS: &atlas.AWSKMSConfiguration{
		Enabled: boolp(true), Valid: boolp(true), AccessKeyID: strp("AKIAIOSFODNN7EXAMPLE"),
		CustomerMasterKeyID: strp("key-1"), Region: strp("US_EAST_1"),
	}}
}

func updateRequest(t *testing.T, groupID, body string, validateOnly bool) *encryptionv1.UpdateEncryptionAtRestRequest {
	t.Helper()
	cfg := &encryptionv1.ProviderConfig{}
	if err := protojson.Unmarshal([]byte(body), cfg); err != nil {
		t.Fatalf("protojson.Unmarshal(%s) = %v", body, err)
	}
	return &encryptionv1.UpdateEncryptionAtRestRequest{GroupId: groupID, Config: cfg, ValidateOnly: validateOnly}
}

// violationsOf returns "field: description" of every field violation in err.
func violationsOf(err error) []string {
	var out []string
	for _, d := range status.Convert(err).Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				out = append(out, v.GetField())
			}
		}
	}
	return out
}

func TestUpdateRules(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		groupID      string
		body         string
		validateOnly bool
		state        atlas.EncryptionAtRest
		wantCode     codes.Code
		wantFields   []string // field violations, in order
		wantGets     int
		wantPatch    string // the one PATCH body sent, "" for none
	}{
		{
			name: "rule 1: group id must be 24 lowercase hex", groupID: "32B6E34B3D91647ABB20E7B8", body: awsWhole,
			wantCode: codes.InvalidArgument, wantFields: []string{"group_id"},
		},
		{
			name: "rule 1: short group id", groupID: "abc", body: `{"awsKms": {"enabled": false}}`,
			wantCode: codes.InvalidArgument, wantFields: []string{"group_id"},
		},
		{
			name: "rule 2: no provider", body: `{}`,
			wantCode: codes.InvalidArgument, wantFields: []string{"config"},
		},
		{
			name: "rule 2: provider with no field", body: `{"awsKms": {}}`,
			wantCode: codes.InvalidArgument, wantFields: []string{"config.aws_kms"},
		},
		{
			name: "rule 3: disable sends enabled=false alone, without reading state", body: `{"azureKeyVault": {"enabled": false}}`,
			wantCode: codes.OK, wantPatch: `{"azureKeyVault":{"enabled":false}}`,
		},
		{
			name: "rule 3: disable with another field", body: `{"awsKms": {"enabled": false, "region": "US_EAST_1"}}`,
			wantCode: codes.InvalidArgument, wantFields: []string{"config.aws_kms.enabled"},
		},
		{
			name: "rule 4: whole AWS document enables in one PATCH", body: awsWhole,
			wantCode:  codes.OK,
			wantPatch: `{"awsKms":{"enabled":true,"accessKeyID":"AKIAIOSFODNN7EXAMPLE","secretAccessKey":"aws-secret-SENTINEL","customerMasterKeyID":"030gce02-586d-48d2-a966-05ea954fde0g","region":"US_EAST_1"}}`,
		},
		{
			name: "rule 4: whole Azure document", body: azWhole, wantCode: codes.OK,
			wantPatch: `{"azureKeyVault":{"enabled":true,"azureEnvironment":"AZURE","clientID":"f0e1d2c3-b4a5-4968-8776-a5b4c3d2e1f0","keyIdentifier":"https://vault.vault.azure.net/keys/key/d891821e3d364e9eb88fbd3d11807b86","keyVaultName":"vault","resourceGroupName":"rg","secret":"azure-secret-SENTINEL","subscriptionID":"1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d","tenantID":"0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"}}`,
		},
		{
			name: "rule 4: whole GCP document with a role", body: `{"googleCloudKms": {"enabled": true, "keyVersionResourceID": "projects/p/locations/l/keyRings/r/cryptoKeys/k/cryptoKeyVersions/3", "roleId": "` + roleID + `"}}`,
			wantCode:  codes.OK,
			wantPatch: `{"googleCloudKms":{"enabled":true,"keyVersionResourceID":"projects/p/locations/l/keyRings/r/cryptoKeys/k/cryptoKeyVersions/3","roleId":"` + roleID + `"}}`,
		},
		{
			name: "rule 4: partial document for a provider that is not enabled", body: `{"awsKms": {"region": "EU_WEST_1"}}`,
			wantCode: codes.InvalidArgument, wantGets: 1,
			wantFields: []string{"config.aws_kms.enabled", "config.aws_kms.customer_master_key_id", "config.aws_kms.role_id"},
		},
		{
			name: "rule 4: enable with half the static credentials", body: `{"awsKms": {"enabled": true, "customerMasterKeyID": "k", "region": "US_EAST_1", "accessKeyID": "AKIAIOSFODNN7EXAMPLE"}}`,
			wantCode: codes.InvalidArgument, wantGets: 1,
			wantFields: []string{"config.aws_kms.secret_access_key"},
		},
		{
			name: "rule 4: Azure enable missing its resource group", body: strings.Replace(azWhole, `"resourceGroupName": "rg", `, "", 1),
			wantCode: codes.InvalidArgument, wantGets: 1, wantFields: []string{"config.azure_key_vault.resource_group_name"},
		},
		{
			name: "rule 5: enabled provider takes a partial document", body: `{"awsKms": {"region": "EU_WEST_1"}}`,
			state: enabledAWS(), wantCode: codes.OK, wantGets: 1, wantPatch: `{"awsKms":{"region":"EU_WEST_1"}}`,
		},
		{
			name: "rule 6: region not in Atlas's list", body: strings.Replace(awsWhole, "US_EAST_1", "us-east-1", 1),
			wantCode: codes.InvalidArgument, wantFields: []string{"config.aws_kms.region"},
		},
		{
			name: "rule 6: access key id too short", body: strings.Replace(awsWhole, "AKIAIOSFODNN7EXAMPLE", "AKIA", 1),
			wantCode: codes.InvalidArgument, wantFields: []string{"config.aws_kms.access_key_id"},
		},
		{
			name: "rule 6: Azure environment, UUIDs and key URL", body: `{"azureKeyVault": {"azureEnvironment": "AZURE_GERMANY", "clientID": "nope", "tenantID": "nope", "subscriptionID": "nope", "keyIdentifier": "http://vault/keys/k"}}`,
			wantCode:   codes.InvalidArgument,
			wantFields: []string{"config.azure_key_vault.azure_environment", "config.azure_key_vault.client_id", "config.azure_key_vault.key_identifier", "config.azure_key_vault.subscription_id", "config.azure_key_vault.tenant_id"},
		},
		{
			name: "rule 6: Azure key identifier without a key path", body: strings.Replace(azWhole, "https://vault.vault.azure.net/keys/key/d891821e3d364e9eb88fbd3d11807b86", "https://vault.vault.azure.net", 1),
			wantCode: codes.InvalidArgument, wantFields: []string{"config.azure_key_vault.key_identifier"},
		},
		{
			name:     "rule 5: switching an enabled provider from a role to static credentials needs them all",
			state:    atlas.EncryptionAtRest{AzureKeyVault: &atlas.AzureKeyVault{Enabled: boolp(true), Valid: boolp(true), RoleID: strp(roleID)}},
			body:     `{"azureKeyVault": {"secret": "azure-secret-SENTINEL"}}`,
			wantCode: codes.InvalidArgument, wantGets: 1, wantFields: []string{"config.azure_key_vault.client_id", "config.azure_key_vault.tenant_id"},
		},
		{
			name: "rule 5: rotating the secret of static credentials", state: atlas.EncryptionAtRest{AzureKeyVault: &atlas.AzureKeyVault{Enabled: boolp(true), Valid: boolp(true), ClientID: strp("f0e1d2c3-b4a5-4968-8776-a5b4c3d2e1f0")}},
			body:     `{"azureKeyVault": {"secret": "azure-secret-SENTINEL"}}`,
			wantCode: codes.OK, wantGets: 1, wantPatch: `{"azureKeyVault":{"secret":"azure-secret-SENTINEL"}}`,
		},
		{
			name: "rule 6: role id not 24 hex", body: `{"googleCloudKms": {"roleId": "not-a-role"}}`,
			wantCode: codes.InvalidArgument, wantFields: []string{"config.google_cloud_kms.role_id"},
		},
		{
			name: "rule 6: service account key not a JSON object", body: `{"googleCloudKms": {"serviceAccountKey": "[1,2]"}}`,
			wantCode: codes.InvalidArgument, wantFields: []string{"config.google_cloud_kms.service_account_key"},
		},
		{
			name: "rule 6: key version path", body: `{"googleCloudKms": {"keyVersionResourceID": "projects/p/keyRings/r"}}`,
			wantCode: codes.InvalidArgument, wantFields: []string{"config.google_cloud_kms.key_version_resource_id"},
		},
		{
			name: "rule 7: role and static credentials mixed", body: `{"awsKms": {"roleId": "` + roleID + `", "accessKeyID": "AKIAIOSFODNN7EXAMPLE"}}`,
			wantCode: codes.InvalidArgument, wantFields: []string{"config.aws_kms.role_id"},
		},
		{
			name: "rule 7: Azure role with a secret", body: `{"azureKeyVault": {"roleId": "` + roleID + `", "secret": "azure-secret-SENTINEL"}}`,
			wantCode: codes.InvalidArgument, wantFields: []string{"config.azure_key_vault.role_id"},
		},
		{
			name: "rule 8: validate only reads state and sends nothing", body: awsWhole, validateOnly: true,
			wantCode: codes.OK, wantGets: 1,
		},
		{
			name: "rule 8: validate only still refuses a partial enable", body: `{"awsKms": {"region": "EU_WEST_1"}}`, validateOnly: true,
			wantCode: codes.InvalidArgument, wantGets: 1,
			wantFields: []string{"config.aws_kms.enabled", "config.aws_kms.customer_master_key_id", "config.aws_kms.role_id"},
		},
		{
			name:     "GCP refuses a whole document with a service account key once it uses a role",
			state:    atlas.EncryptionAtRest{GoogleCloudKMS: &atlas.GoogleCloudKMS{Enabled: boolp(true), Valid: boolp(true), RoleID: strp(roleID), KeyVersionResourceID: strp("projects/p/locations/l/keyRings/r/cryptoKeys/k/cryptoKeyVersions/1")}},
			body:     gcpWhole,
			wantCode: codes.InvalidArgument, wantGets: 1, wantFields: []string{"config.google_cloud_kms.service_account_key"},
		},
		{
			name:     "GCP refuses a service account key once it uses a role",
			state:    atlas.EncryptionAtRest{GoogleCloudKMS: &atlas.GoogleCloudKMS{Enabled: boolp(true), Valid: boolp(true), RoleID: strp(roleID), KeyVersionResourceID: strp("projects/p/locations/l/keyRings/r/cryptoKeys/k/cryptoKeyVersions/1")}},
			body:     `{"googleCloudKms": {"serviceAccountKey": "{\"private_key\": \"gcp-secret-SENTINEL\"}"}}`,
			wantCode: codes.InvalidArgument, wantGets: 1, wantFields: []string{"config.google_cloud_kms.service_account_key"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fake := &fakeAtlas{state: tt.state}
			groupID := tt.groupID
			if groupID == "" {
				groupID = testGroup
			}
			req := updateRequest(t, groupID, tt.body, tt.validateOnly)
			_, err := New(fake).UpdateEncryptionAtRest(t.Context(), req)
			if got := status.Code(err); got != tt.wantCode {
				t.Fatalf("Update(%s) = %v, want code %v", tt.body, err, tt.wantCode)
			}
			if diff := cmp.Diff(tt.wantFields, violationsOf(err)); diff != "" {
				t.Errorf("Update(%s) field violations (-want +got):\n%s\nerror: %v", tt.body, diff, err)
			}
			gets, patches := fake.calls()
			if gets != tt.wantGets {
				t.Errorf("Update(%s) read the state %d times, want %d", tt.body, gets, tt.wantGets)
			}
			var wantPatches []string
			if tt.wantPatch != "" {
				wantPatches = []string{tt.wantPatch}
			}
			if diff := cmp.Diff(wantPatches, patches); diff != "" {
				t.Errorf("Update(%s) PATCH bodies (-want +got):\n%s", tt.body, diff)
			}
			if err != nil {
				for _, s := range sentinels {
					if strings.Contains(err.Error(), s) || strings.Contains(status.Convert(err).Proto().String(), s) {
						t.Errorf("Update(%s) error %v contains the secret %q", tt.body, err, s)
					}
				}
			}
		})
	}
}

func TestValidateOnlyAnswersTheFutureState(t *testing.T) {
	t.Parallel()
	fake := &fakeAtlas{state: enabledAWS()}
	got, err := New(fake).UpdateEncryptionAtRest(t.Context(), updateRequest(t, testGroup, `{"awsKms": {"region": "EU_WEST_1"}}`, true))
	if err != nil {
		t.Fatalf("Update(validateOnly) = %v", err)
	}
	if got.GetAwsKms().GetRegion() != "EU_WEST_1" || !got.GetAwsKms().GetEnabled() || got.GetAwsKms().GetCustomerMasterKeyId() != "key-1" {
		t.Errorf("Update(validateOnly) = %v, want the enabled AWS config with region EU_WEST_1", got)
	}
	if _, patches := fake.calls(); len(patches) != 0 {
		t.Errorf("Update(validateOnly) sent %v, want nothing", patches)
	}
	// A provider it would enable reports valid=false: Atlas has not seen the key.
	got, err = New(fake).UpdateEncryptionAtRest(t.Context(), updateRequest(t, testGroup, gcpWhole, true))
	if err != nil {
		t.Fatalf("Update(validateOnly) = %v", err)
	}
	if gcp := got.GetGoogleCloudKms(); !gcp.GetEnabled() || gcp.Valid == nil || gcp.GetValid() {
		t.Errorf("Update(validateOnly, enable GCP).googleCloudKms = %v, want enabled and valid=false", gcp)
	}
}

func TestValidateOnlySwitchingAuthModes(t *testing.T) {
	t.Parallel()
	fake := &fakeAtlas{state: atlas.EncryptionAtRest{AzureKeyVault: &atlas.AzureKeyVault{
		Enabled: boolp(true), Valid: boolp(true), RoleID: strp(roleID), AzureEnvironment: strp("AZURE"),
	}}}
	body := `{"azureKeyVault": {"clientID": "f0e1d2c3-b4a5-4968-8776-a5b4c3d2e1f0", "tenantID": "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d", "secret": "azure-secret-SENTINEL"}}`
	got, err := New(fake).UpdateEncryptionAtRest(t.Context(), updateRequest(t, testGroup, body, true))
	if err != nil {
		t.Fatalf("Update(validateOnly, %s) = %v", body, err)
	}
	if az := got.GetAzureKeyVault(); az.RoleId != nil || az.GetClientId() == "" || az.GetAzureEnvironment() != "AZURE" {
		t.Errorf("Update(validateOnly, %s).azureKeyVault = %v, want the application instead of the role, the rest kept", body, az)
	}

	fake = &fakeAtlas{state: enabledAWS()}
	got, err = New(fake).UpdateEncryptionAtRest(t.Context(), updateRequest(t, testGroup, `{"awsKms": {"roleId": "`+roleID+`"}}`, true))
	if err != nil {
		t.Fatalf("Update(validateOnly, AWS role) = %v", err)
	}
	if aws := got.GetAwsKms(); aws.AccessKeyId != nil || aws.RoleId != nil {
		t.Errorf("Update(validateOnly, AWS role).awsKms = %v, want no accessKeyID (replaced) and no roleId (write-only)", aws)
	}
}

func TestResponseAlwaysCarriesEveryProvider(t *testing.T) {
	t.Parallel()
	got, err := New(&fakeAtlas{}).GetEncryptionAtRest(t.Context(), &encryptionv1.GetEncryptionAtRestRequest{GroupId: testGroup})
	if err != nil {
		t.Fatalf("Get = %v", err)
	}
	b, err := protojson.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"awsKms", "azureKeyVault", "googleCloudKms"} {
		if doc[p]["enabled"] != false || doc[p]["valid"] != false {
			t.Errorf("Get = %s, want %s with enabled=false and valid=false", b, p)
		}
	}
}

func TestDescribeUpdate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		body         string
		validateOnly bool
		want         Mutation
	}{
		{awsWhole, false, Mutation{GroupID: testGroup, Provider: "awsKms", Action: "enable", Fields: []string{"accessKeyID", "customerMasterKeyID", "enabled", "region", "secretAccessKey"}}},
		{`{"azureKeyVault": {"enabled": false}}`, false, Mutation{GroupID: testGroup, Provider: "azureKeyVault", Action: "disable", Fields: []string{"enabled"}}},
		{`{"googleCloudKms": {"roleId": "x"}}`, false, Mutation{GroupID: testGroup, Provider: "googleCloudKms", Action: "update", Fields: []string{"roleId"}}},
		{`{"googleCloudKms": {"roleId": "x"}}`, true, Mutation{GroupID: testGroup, Provider: "googleCloudKms", Action: "validate", Fields: []string{"roleId"}, ValidateOnly: true}},
		{`{}`, false, Mutation{GroupID: testGroup, Action: "update"}},
	}
	for _, tt := range tests {
		got := DescribeUpdate(updateRequest(t, testGroup, tt.body, tt.validateOnly))
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("DescribeUpdate(%s) (-want +got):\n%s", tt.body, diff)
		}
	}
}
