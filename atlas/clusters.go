package atlas

import "context"

// Cluster is what this client reads of an Atlas cluster: enough to tell
// which key provider it uses.
type Cluster struct {
	Name string `json:"name"`
	// StateName is IDLE, CREATING, UPDATING, DELETING or REPAIRING.
	StateName string `json:"stateName,omitempty"`
	// EncryptionAtRestProvider is NONE, AWS, AZURE or GCP: the key provider
	// the cluster's data is encrypted with. A cluster using a provider
	// blocks disabling it.
	EncryptionAtRestProvider string `json:"encryptionAtRestProvider,omitempty"`
}

// ListClusters returns every cluster of the project groupID, reading all
// pages. It is an API v2 resource, called on v2 paths whatever the
// client's APIVersion.
//
// Atlas API docs: https://www.mongodb.com/docs/atlas/reference/api-resources-spec/v2/#tag/Clusters/operation/listGroupClusters
func (c *Client) ListClusters(ctx context.Context, groupID string) ([]Cluster, error) {
	return listAll[Cluster](ctx, c, "clusters", groupPath(groupID)+"/clusters")
}
