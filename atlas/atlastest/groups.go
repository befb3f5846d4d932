package atlastest

import (
	"net/http"
	"slices"
	"strings"

	"github.com/encryptiond/encryptiond/atlas"
)

// This file serves the projects the credentials can see: GET
// /api/atlas/v2/groups, every project that exists (AddGroup, AddProject,
// or one a request made exist with AutoCreateGroups), in the order of
// their ids, a page at a time.

// AddProject makes the project id exist with a name, shown by the projects
// list.
func (e *Emulator) AddProject(id, name string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	g := e.groupLocked(id, true)
	g.exists, g.name = true, name
}

// serveGroups lists the projects, a page at a time.
func (e *Emulator) serveGroups(req *apiRequest) (int, any) {
	if req.method != http.MethodGet {
		return methodNotAllowed(req.method)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	var all []atlas.Group
	for id, g := range e.groups {
		if !g.exists {
			continue
		}
		name := g.name
		if name == "" {
			name = "project-" + id[:min(6, len(id))]
		}
		all = append(all, atlas.Group{ID: id, Name: name, OrgID: "5e2211c17a3e5a48f5497de3", ClusterCount: len(g.clusters), Created: "2026-01-01T00:00:00Z"})
	}
	slices.SortFunc(all, func(a, b atlas.Group) int { return strings.Compare(a.ID, b.ID) })
	return page(req, all, e.cfg.MaxItemsPerPage)
}
