package atlas

import (
	"context"
	"net/http"
)

// Group is an Atlas project, as the projects list shows it.
type Group struct {
	ID           string `json:"id"`
	Name         string `json:"name"`
	OrgID        string `json:"orgId,omitempty"`
	ClusterCount int    `json:"clusterCount,omitempty"`
	Created      string `json:"created,omitempty"`
}

// ListGroups returns one page of the projects the client's credentials can
// see, as opts selects it. It is an API v2 resource, called on v2 paths
// whatever the client's APIVersion.
//
// Atlas API docs: https://www.mongodb.com/docs/atlas/reference/api-resources-spec/v2/#tag/Projects/operation/listProjects
func (c *Client) ListGroups(ctx context.Context, opts ListOptions) (*Page[Group], error) {
	var p Page[Group]
	if err := c.do(ctx, &call{method: http.MethodGet, resource: "groups", path: "/groups", query: opts.query(), v2: true, out: &p}); err != nil {
		return nil, err
	}
	return &p, nil
}

// ListAllGroups returns every project the client's credentials can see,
// reading all pages.
func (c *Client) ListAllGroups(ctx context.Context) ([]Group, error) {
	return listAll[Group](ctx, c, "groups", "/groups")
}
