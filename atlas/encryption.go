package atlas

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
)

// This file holds the encryptionAtRest resource as Atlas spells it on the
// wire. Every field is a pointer so that "not set" and "zero" stay distinct:
// a PATCH body carries exactly the fields a caller set, and nil fields are
// omitted from JSON.
//
// Atlas reference:
// https://www.mongodb.com/docs/atlas/reference/api-resources-spec/v2/#tag/Encryption-at-Rest-using-Customer-Key-Management

// EncryptionAtRest is a project's Encryption at Rest using Customer Key
// Management configuration: one document per key provider.
type EncryptionAtRest struct {
	AWSKMS                *AWSKMSConfiguration `json:"awsKms,omitempty"`
	AzureKeyVault         *AzureKeyVault       `json:"azureKeyVault,omitempty"`
	GoogleCloudKMS        *GoogleCloudKMS      `json:"googleCloudKms,omitempty"`
	EnabledForSearchNodes *bool                `json:"enabledForSearchNodes,omitempty"`
}

// AWSKMSConfiguration configures AWS Key Management Service.
// SecretAccessKey is write-only, and so is RoleID in API v2: Atlas never
// returns them.
type AWSKMSConfiguration struct {
	Enabled                  *bool   `json:"enabled,omitempty"`
	AccessKeyID              *string `json:"accessKeyID,omitempty"`
	SecretAccessKey          *string `json:"secretAccessKey,omitempty"`
	CustomerMasterKeyID      *string `json:"customerMasterKeyID,omitempty"`
	Region                   *string `json:"region,omitempty"`
	RoleID                   *string `json:"roleId,omitempty"`
	RequirePrivateNetworking *bool   `json:"requirePrivateNetworking,omitempty"`
	Valid                    *bool   `json:"valid,omitempty"`
}

// AzureKeyVault configures Azure Key Vault. Secret is write-only.
type AzureKeyVault struct {
	Enabled                  *bool   `json:"enabled,omitempty"`
	AzureEnvironment         *string `json:"azureEnvironment,omitempty"`
	ClientID                 *string `json:"clientID,omitempty"`
	KeyIdentifier            *string `json:"keyIdentifier,omitempty"`
	KeyVaultName             *string `json:"keyVaultName,omitempty"`
	ResourceGroupName        *string `json:"resourceGroupName,omitempty"`
	RoleID                   *string `json:"roleId,omitempty"`
	Secret                   *string `json:"secret,omitempty"`
	SubscriptionID           *string `json:"subscriptionID,omitempty"`
	TenantID                 *string `json:"tenantID,omitempty"`
	RequirePrivateNetworking *bool   `json:"requirePrivateNetworking,omitempty"`
	Valid                    *bool   `json:"valid,omitempty"`
}

// GoogleCloudKMS configures Google Cloud KMS. ServiceAccountKey (the service
// account's JSON key, sent as a string) is write-only.
type GoogleCloudKMS struct {
	Enabled              *bool   `json:"enabled,omitempty"`
	KeyVersionResourceID *string `json:"keyVersionResourceID,omitempty"`
	RoleID               *string `json:"roleId,omitempty"`
	ServiceAccountKey    *string `json:"serviceAccountKey,omitempty"`
	Valid                *bool   `json:"valid,omitempty"`
}

// AWSRegions returns the region names Atlas accepts for awsKms.region, in
// the order of Atlas's OpenAPI enum. The slice is the caller's.
func AWSRegions() []string { return slices.Clone(awsRegions) }

// AzureEnvironments returns the values Atlas accepts for
// azureKeyVault.azureEnvironment. The slice is the caller's.
func AzureEnvironments() []string { return slices.Clone(azureEnvironments) }

var awsRegions = []string{
	"US_GOV_WEST_1", "US_GOV_EAST_1", "US_EAST_1", "US_EAST_2", "US_WEST_1", "US_WEST_2",
	"CA_CENTRAL_1", "EU_NORTH_1", "EU_WEST_1", "EU_WEST_2", "EU_WEST_3", "EU_CENTRAL_1",
	"EU_CENTRAL_2", "AP_EAST_1", "AP_EAST_2", "AP_NORTHEAST_1", "AP_NORTHEAST_2",
	"AP_NORTHEAST_3", "AP_SOUTHEAST_1", "AP_SOUTHEAST_2", "AP_SOUTHEAST_3", "AP_SOUTHEAST_4",
	"AP_SOUTHEAST_5", "AP_SOUTHEAST_6", "AP_SOUTHEAST_7", "AP_SOUTH_1", "AP_SOUTH_2",
	"SA_EAST_1", "CN_NORTH_1", "CN_NORTHWEST_1", "ME_SOUTH_1", "ME_CENTRAL_1", "AF_SOUTH_1",
	"EU_SOUTH_1", "EU_SOUTH_2", "IL_CENTRAL_1", "CA_WEST_1", "MX_CENTRAL_1", "GLOBAL",
}

var azureEnvironments = []string{"AZURE", "AZURE_CHINA", "AZURE_US_GOVERNMENT"}

// GetEncryptionAtRest returns the encryption-at-rest configuration of the
// project groupID (24 hexadecimal characters). Atlas never returns secrets.
//
// Atlas API docs: https://www.mongodb.com/docs/atlas/reference/api-resources-spec/v2/#tag/Encryption-at-Rest-using-Customer-Key-Management/operation/getGroupEncryptionAtRest
func (c *Client) GetEncryptionAtRest(ctx context.Context, groupID string) (*EncryptionAtRest, error) {
	var out EncryptionAtRest
	if err := c.do(ctx, &call{method: http.MethodGet, resource: encryptionAtRest, path: groupPath(groupID) + "/encryptionAtRest", out: &out}); err != nil {
		return nil, err
	}
	return &out, nil
}

// encryptionAtRest is the resource's name in errors.
const encryptionAtRest = "encryptionAtRest"

// UpdateEncryptionAtRest changes the configuration of project groupID with a
// PATCH whose body is exactly update's set fields, and returns the resulting
// configuration. To enable a provider send its whole document; once enabled,
// send only what changes; to disable it send only Enabled: false. update is
// not modified.
//
// A failure after the request may have reached Atlas wraps
// ErrOutcomeUnknown; a 2xx answer that cannot be read wraps
// ErrUpdateAppliedUnreadable. Neither is retried.
//
// Atlas API docs: https://www.mongodb.com/docs/atlas/reference/api-resources-spec/v2/#tag/Encryption-at-Rest-using-Customer-Key-Management/operation/updateGroupEncryptionAtRest
func (c *Client) UpdateEncryptionAtRest(ctx context.Context, groupID string, update *EncryptionAtRest) (*EncryptionAtRest, error) {
	cl := &call{method: http.MethodPatch, resource: encryptionAtRest, path: groupPath(groupID) + "/encryptionAtRest"}
	if update == nil {
		return nil, cl.error(errors.New("nil update"))
	}
	body, err := json.Marshal(update)
	if err != nil {
		return nil, cl.error(err)
	}
	var out EncryptionAtRest
	cl.body, cl.secrets, cl.out = body, sentSecrets(update), &out
	if err := c.do(ctx, cl); err != nil {
		return nil, err
	}
	return &out, nil
}
