package atlas

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
)

// This file holds the private endpoints for encryption at rest: the private
// network paths through which Atlas reaches a project's AWS KMS or Azure
// Key Vault keys when requirePrivateNetworking is set. Atlas has them in
// API v2 only, so every call goes to v2 whatever the client's APIVersion.
//
// Atlas reference:
// https://www.mongodb.com/docs/atlas/reference/api-resources-spec/v2/#tag/Encryption-at-Rest-using-Customer-Key-Management

// The cloud providers that have private endpoints for encryption at rest,
// as Atlas spells them in paths and in PrivateEndpoint.CloudProvider.
const (
	CloudProviderAWS   = "AWS"
	CloudProviderAzure = "AZURE"
)

// The statuses Atlas reports for a private endpoint.
const (
	EndpointInitiating        = "INITIATING"
	EndpointPendingAcceptance = "PENDING_ACCEPTANCE" // Azure: waiting for the connection's approval on the key vault
	EndpointActive            = "ACTIVE"
	EndpointFailed            = "FAILED" // ErrorMessage says why
	EndpointPendingRecreation = "PENDING_RECREATION"
	EndpointDeleting          = "DELETING"
)

// PrivateEndpoint is a private endpoint for encryption at rest
// (EARPrivateEndpoint). Only RegionName is sent to Atlas; the rest is what
// Atlas reports.
type PrivateEndpoint struct {
	// ID is Atlas's id of the endpoint, 24 hexadecimal characters.
	ID string `json:"id,omitempty"`
	// CloudProvider is CloudProviderAWS or CloudProviderAzure.
	CloudProvider string `json:"cloudProvider,omitempty"`
	// RegionName is the region, in Atlas's names for the provider (see
	// AWSRegions and AzureRegions).
	RegionName string `json:"regionName,omitempty"`
	// Status is one of the Endpoint* statuses.
	Status string `json:"status,omitempty"`
	// ErrorMessage says why a FAILED endpoint failed.
	ErrorMessage string `json:"errorMessage,omitempty"`
	// PrivateEndpointConnectionName is, for AWS, the resource id of the
	// private endpoint and, for Azure, the name of the private endpoint
	// connection to approve on the key vault.
	PrivateEndpointConnectionName string `json:"privateEndpointConnectionName,omitempty"`
}

// PrivateEndpointPage is one page of a list of private endpoints
// (PaginatedApiAtlasEARPrivateEndpointView).
type PrivateEndpointPage = Page[PrivateEndpoint]

// AzureRegions returns the region names Atlas accepts for the regionName of
// an Azure private endpoint, in the order of Atlas's OpenAPI enum. (An AWS
// private endpoint takes AWSRegions.) The slice is the caller's.
func AzureRegions() []string { return slices.Clone(azureRegions) }

var azureRegions = []string{
	"US_CENTRAL", "US_EAST", "US_EAST_2", "US_NORTH_CENTRAL", "US_WEST", "US_SOUTH_CENTRAL",
	"EUROPE_NORTH", "EUROPE_WEST", "US_WEST_CENTRAL", "US_WEST_2", "US_WEST_3", "CANADA_EAST",
	"CANADA_CENTRAL", "BRAZIL_SOUTH", "BRAZIL_SOUTHEAST", "AUSTRALIA_CENTRAL", "AUSTRALIA_CENTRAL_2",
	"AUSTRALIA_EAST", "AUSTRALIA_SOUTH_EAST", "GERMANY_WEST_CENTRAL", "GERMANY_NORTH", "SWEDEN_CENTRAL",
	"SWEDEN_SOUTH", "SWITZERLAND_NORTH", "SWITZERLAND_WEST", "UK_SOUTH", "UK_WEST", "NORWAY_EAST",
	"NORWAY_WEST", "INDIA_CENTRAL", "INDIA_SOUTH", "INDIA_WEST", "CHINA_EAST", "CHINA_NORTH",
	"ASIA_EAST", "JAPAN_EAST", "JAPAN_WEST", "ASIA_SOUTH_EAST", "KOREA_CENTRAL", "KOREA_SOUTH",
	"FRANCE_CENTRAL", "FRANCE_SOUTH", "SOUTH_AFRICA_NORTH", "SOUTH_AFRICA_WEST", "UAE_CENTRAL",
	"UAE_NORTH", "QATAR_CENTRAL", "POLAND_CENTRAL", "ISRAEL_CENTRAL", "ITALY_NORTH", "SPAIN_CENTRAL",
	"MEXICO_CENTRAL", "NEW_ZEALAND_NORTH", "US_GOV_VIRGINIA", "US_GOV_ARIZONA", "US_GOV_TEXAS",
}

// The resources' names in errors (and in the emulator's Calls).
const (
	privateEndpoints = "privateEndpoints" // the list
	privateEndpoint  = "privateEndpoint"  // one endpoint
)

// privateEndpointsPath is "/groups/<id>/encryptionAtRest/<provider>/privateEndpoints", escaped.
func privateEndpointsPath(groupID, cloudProvider string) string {
	return groupPath(groupID) + "/encryptionAtRest/" + url.PathEscape(cloudProvider) + "/privateEndpoints"
}

// ListPrivateEndpoints returns one page of the private endpoints of
// cloudProvider (CloudProviderAWS or CloudProviderAzure) in project
// groupID. Use PrivateEndpointPage.HasNext to tell whether there are more.
//
// Atlas API docs: https://www.mongodb.com/docs/atlas/reference/api-resources-spec/v2/#tag/Encryption-at-Rest-using-Customer-Key-Management/operation/listGroupEncryptionAtRestPrivateEndpoints
func (c *Client) ListPrivateEndpoints(ctx context.Context, groupID, cloudProvider string, opts ListOptions) (*PrivateEndpointPage, error) {
	var out PrivateEndpointPage
	cl := &call{method: http.MethodGet, resource: privateEndpoints, path: privateEndpointsPath(groupID, cloudProvider), query: opts.query(), v2: true, out: &out}
	if err := c.do(ctx, cl); err != nil {
		return nil, err
	}
	return &out, nil
}

// GetPrivateEndpoint returns one private endpoint. One that Atlas no longer
// knows (deleted) is a 404 *Error.
//
// Atlas API docs: https://www.mongodb.com/docs/atlas/reference/api-resources-spec/v2/#tag/Encryption-at-Rest-using-Customer-Key-Management/operation/getGroupEncryptionAtRestPrivateEndpoint
func (c *Client) GetPrivateEndpoint(ctx context.Context, groupID, cloudProvider, endpointID string) (*PrivateEndpoint, error) {
	var out PrivateEndpoint
	cl := &call{method: http.MethodGet, resource: privateEndpoint, path: privateEndpointsPath(groupID, cloudProvider) + "/" + url.PathEscape(endpointID), v2: true, out: &out}
	if err := c.do(ctx, cl); err != nil {
		return nil, err
	}
	return &out, nil
}

// CreatePrivateEndpoint asks Atlas for a private endpoint of cloudProvider
// in regionName and returns it as Atlas accepted it (202), typically
// INITIATING. Like UpdateEncryptionAtRest, a failure after the request may
// have reached Atlas wraps ErrOutcomeUnknown, and an accepted request whose
// answer cannot be read wraps ErrUpdateAppliedUnreadable; neither is
// retried.
//
// Atlas API docs: https://www.mongodb.com/docs/atlas/reference/api-resources-spec/v2/#tag/Encryption-at-Rest-using-Customer-Key-Management/operation/createGroupEncryptionAtRestPrivateEndpoint
func (c *Client) CreatePrivateEndpoint(ctx context.Context, groupID, cloudProvider, regionName string) (*PrivateEndpoint, error) {
	cl := &call{method: http.MethodPost, resource: privateEndpoints, path: privateEndpointsPath(groupID, cloudProvider), v2: true}
	body, err := json.Marshal(PrivateEndpoint{RegionName: regionName})
	if err != nil {
		return nil, cl.error(err)
	}
	var out PrivateEndpoint
	cl.body, cl.out = body, &out
	if err := c.do(ctx, cl); err != nil {
		return nil, err
	}
	return &out, nil
}

// DeletePrivateEndpoint asks Atlas to delete a private endpoint (204).
// Atlas then reports it DELETING until it is gone. A failure after the
// request may have reached Atlas wraps ErrOutcomeUnknown and is not
// retried.
//
// Atlas API docs: https://www.mongodb.com/docs/atlas/reference/api-resources-spec/v2/#tag/Encryption-at-Rest-using-Customer-Key-Management/operation/requestGroupEncryptionAtRestPrivateEndpointDeletion
func (c *Client) DeletePrivateEndpoint(ctx context.Context, groupID, cloudProvider, endpointID string) error {
	return c.do(ctx, &call{method: http.MethodDelete, resource: privateEndpoint, path: privateEndpointsPath(groupID, cloudProvider) + "/" + url.PathEscape(endpointID), v2: true})
}
