package atlastest

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/encryptiond/encryptiond/atlas"
)

// This file holds a project's clusters, as far as encryption at rest cares
// (a cluster using a key provider blocks disabling it), the clusters
// resource that lists them, and Cloud Provider Access roles that are not
// yet usable, as right after they are authorized (IAM propagation).

// Cluster is a cluster of a project: its name, its state (IDLE, CREATING,
// UPDATING, DELETING, REPAIRING) and the key provider its data is encrypted
// with (NONE, AWS, AZURE, GCP).
type Cluster = atlas.Cluster

// cloudOf maps a provider document's name to Atlas's encryptionAtRestProvider.
var cloudOf = map[string]string{ProviderAWS: "AWS", ProviderAzure: "AZURE", ProviderGCP: "GCP"}

// SetCluster adds the cluster c to groupID, or replaces the one of that
// name. A cluster whose EncryptionAtRestProvider is a provider's blocks
// disabling that provider (409 CANNOT_DISABLE_ENCRYPTION_AT_REST).
func (e *Emulator) SetCluster(groupID string, c Cluster) {
	if c.StateName == "" {
		c.StateName = "IDLE"
	}
	if c.EncryptionAtRestProvider == "" {
		c.EncryptionAtRestProvider = "NONE"
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	g := e.groupLocked(groupID, true)
	if i := slices.IndexFunc(g.clusters, func(x Cluster) bool { return x.Name == c.Name }); i >= 0 {
		g.clusters[i] = c
		return
	}
	g.clusters = append(g.clusters, c)
}

// RemoveCluster removes the cluster named name from groupID, as if it was
// terminated.
func (e *Emulator) RemoveCluster(groupID, name string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if g := e.groups[groupID]; g != nil {
		g.clusters = slices.DeleteFunc(g.clusters, func(c Cluster) bool { return c.Name == name })
	}
}

// SetProviderInUse marks provider (ProviderAWS, ProviderAzure or
// ProviderGCP) in groupID as used by clusters, by giving it a cluster named
// "in-use-<provider>" that uses it, or not, by removing every cluster that
// uses it. Disabling a provider in use fails with 409
// CANNOT_DISABLE_ENCRYPTION_AT_REST. Unknown provider names are ignored.
func (e *Emulator) SetProviderInUse(groupID, provider string, inUse bool) {
	cloud, ok := cloudOf[provider]
	if !ok {
		return
	}
	if inUse {
		e.SetCluster(groupID, Cluster{Name: "in-use-" + provider, EncryptionAtRestProvider: cloud})
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if g := e.groups[groupID]; g != nil {
		g.clusters = slices.DeleteFunc(g.clusters, func(c Cluster) bool { return c.EncryptionAtRestProvider == cloud })
	}
}

// inUse reports whether a cluster of g uses provider.
func (g *group) inUse(provider string) bool {
	return slices.ContainsFunc(g.clusters, func(c Cluster) bool { return c.EncryptionAtRestProvider == cloudOf[provider] })
}

// serveClusters lists a project's clusters, a page at a time.
func (e *Emulator) serveClusters(req *apiRequest) (int, any) {
	if req.method != http.MethodGet {
		return methodNotAllowed(req.method)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	g, aerr := e.existingGroupLocked(req.params["groupId"])
	if aerr != nil {
		return aerr.Error, aerr
	}
	return page(req, slices.Clone(g.clusters), e.cfg.MaxItemsPerPage)
}

// RoleUsableAfter makes the Cloud Provider Access role roleID unusable
// until d has passed since the first PATCH that uses it, as if it had been
// authorized just before: until then such a PATCH gets 400
// CANNOT_ASSUME_ROLE, as Atlas answers while IAM propagates a new role.
// Roles never named here are usable at once.
func (e *Emulator) RoleUsableAfter(roleID string, d time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.roles[roleID] = &pendingRole{delay: d}
}

// pendingRole is a role that becomes usable delay after its first use.
type pendingRole struct {
	delay     time.Duration
	firstUsed time.Time // zero until a PATCH uses it
}

// roleUsableLocked reports whether a PATCH may use roleID now, noting its
// first use. e.mu must be held.
func (e *Emulator) roleUsableLocked(roleID string) bool {
	r := e.roles[roleID]
	if r == nil {
		return true
	}
	now := e.now()
	if r.firstUsed.IsZero() {
		r.firstUsed = now
	}
	return !now.Before(r.firstUsed.Add(r.delay))
}

// cannotAssumeRole is Atlas's answer to a PATCH whose role has not
// propagated yet.
func cannotAssumeRole(provider string) *atlas.ErrorBody {
	return errorBody(http.StatusBadRequest, "CANNOT_ASSUME_ROLE",
		"Atlas cannot assume the Cloud Provider Access role of "+provider+": it may not be authorized yet.",
		atlas.FieldViolation{Field: provider + ".roleId", Description: "cannot be assumed"})
}

// now is the emulator's clock: EmulatorConfig.Now, or the time.
func (e *Emulator) now() time.Time {
	if e.cfg.Now != nil {
		return e.cfg.Now()
	}
	return time.Now()
}

// parseClusterControl reads ?group=&name=&provider=&state= for the
// clusters control endpoint.
func parseClusterControl(q url.Values) (group string, c Cluster, ok bool) {
	c = Cluster{Name: q.Get("name"), StateName: q.Get("state"), EncryptionAtRestProvider: strings.ToUpper(q.Get("provider"))}
	switch c.EncryptionAtRestProvider {
	case "", "NONE", "AWS", "AZURE", "GCP":
	default:
		return "", c, false
	}
	return q.Get("group"), c, c.Name != ""
}
