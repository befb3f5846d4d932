package atlastest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/encryptiond/encryptiond/atlas"
)

// This file saves and restores the projects' state, so that an emulator in
// another process (cmd/atlas-emulator -state) comes back from a restart
// with what it held, as Atlas does after an outage.

// SnapshotVersion is the version of the format Snapshot writes and Restore
// reads.
const SnapshotVersion = 1

// snapshot is the document Snapshot writes.
type snapshot struct {
	Version int                       `json:"version"`
	Groups  map[string]*groupSnapshot `json:"groups"`
}

// groupSnapshot is one project: whether it exists, its name, its
// encryptionAtRest configuration as stored (secrets and roleId included),
// the providers whose key is marked invalid (SetKeyValid), its clusters and
// its private endpoints as they were when the snapshot was taken.
type groupSnapshot struct {
	Exists                bool                       `json:"exists"`
	Name                  string                     `json:"name,omitempty"`
	AWSKMS                *atlas.AWSKMSConfiguration `json:"awsKms,omitempty"`
	AzureKeyVault         *atlas.AzureKeyVault       `json:"azureKeyVault,omitempty"`
	GoogleCloudKMS        *atlas.GoogleCloudKMS      `json:"googleCloudKms,omitempty"`
	EnabledForSearchNodes bool                       `json:"enabledForSearchNodes,omitempty"`
	InvalidKeys           []string                   `json:"invalidKeys,omitempty"`
	Clusters              []Cluster                  `json:"clusters,omitempty"`
	PrivateEndpoints      []atlas.PrivateEndpoint    `json:"privateEndpoints,omitempty"`
}

// Snapshot returns the state of every project the emulator knows as JSON:
// whether it exists, its name, each enabled provider's configuration as
// stored, the keys marked invalid, its clusters and its private endpoints
// (each with the status it has now: an INITIATING or DELETING endpoint
// starts its delay again after Restore). Restore reads it back.
//
// The snapshot holds the secrets the emulator was sent (secretAccessKey,
// secret, serviceAccountKey) and every roleId: it is the emulator's own
// state, not an answer. Keep it where the emulator's recorded requests
// would be kept, readable by its owner only.
//
// Credentials, nonces, access tokens, faults, the fault rate, latency,
// role propagation delays (RoleUsableAfter), counters and recorded
// requests are not part of it.
func (e *Emulator) Snapshot() ([]byte, error) {
	e.mu.Lock()
	s := snapshot{Version: SnapshotVersion, Groups: make(map[string]*groupSnapshot, len(e.groups))}
	now, delay := e.now(), e.endpointDelay()
	for id, g := range e.groups {
		gs := &groupSnapshot{
			Exists:                g.exists,
			Name:                  g.name,
			AWSKMS:                clonePtr(g.aws),
			AzureKeyVault:         clonePtr(g.azure),
			GoogleCloudKMS:        clonePtr(g.gcp),
			EnabledForSearchNodes: g.searchNodes,
			Clusters:              slices.Clone(g.clusters),
		}
		for p, invalid := range g.invalid {
			if invalid {
				gs.InvalidKeys = append(gs.InvalidKeys, p)
			}
		}
		slices.Sort(gs.InvalidKeys)
		for _, ep := range e.pe.byGroup[id] {
			if v, gone := ep.view(now, delay); !gone {
				gs.PrivateEndpoints = append(gs.PrivateEndpoints, v)
			}
		}
		s.Groups[id] = gs
	}
	e.mu.Unlock()
	return json.MarshalIndent(s, "", "  ")
}

// Restore replaces the state of every project with the one in b, a
// Snapshot; projects that b does not hold are forgotten. Each project's
// configuration goes through the same rules as a PATCH enabling its
// providers (roles count as usable), so a file edited by hand cannot give
// the emulator a configuration Atlas would not hold. b is decoded strictly:
// an unknown field, another version or a malformed project id is an
// error. On any error nothing changes. What Snapshot leaves out is left as
// it is.
func (e *Emulator) Restore(b []byte) error {
	var s snapshot
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return fmt.Errorf("atlastest: Restore: %w", err)
	}
	if dec.More() {
		return fmt.Errorf("atlastest: Restore: more than one JSON document")
	}
	if s.Version != SnapshotVersion {
		return fmt.Errorf("atlastest: Restore: version %d, want %d", s.Version, SnapshotVersion)
	}
	groups := make(map[string]*group, len(s.Groups))
	endpoints := map[string][]*endpointState{}
	now, delay := e.now(), e.endpointDelay()
	for _, id := range slices.Sorted(maps.Keys(s.Groups)) {
		g, err := restoreGroup(id, s.Groups[id])
		if err != nil {
			return fmt.Errorf("atlastest: Restore: project %s: %w", id, err)
		}
		groups[id] = g
		for i, v := range s.Groups[id].PrivateEndpoints {
			ep, err := restoreEndpoint(v, now, delay)
			if err != nil {
				return fmt.Errorf("atlastest: Restore: project %s: privateEndpoints[%d]: %w", id, i, err)
			}
			endpoints[id] = append(endpoints[id], ep)
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.groups = groups
	e.pe.byGroup = endpoints
	return nil
}

// restoreEndpoint rebuilds a private endpoint that had status v.Status
// when the snapshot was taken, so that it has that status at now.
func restoreEndpoint(v atlas.PrivateEndpoint, now time.Time, delay time.Duration) (*endpointState, error) {
	if !hex24Pattern.MatchString(v.ID) {
		return nil, fmt.Errorf("id %q is not 24 hexadecimal characters", v.ID)
	}
	if v.CloudProvider != CloudProviderAWS && v.CloudProvider != CloudProviderAzure {
		return nil, fmt.Errorf("cloudProvider %q: want %s or %s", v.CloudProvider, CloudProviderAWS, CloudProviderAzure)
	}
	if v.RegionName == "" {
		return nil, fmt.Errorf("no regionName")
	}
	ep := &endpointState{id: v.ID, provider: v.CloudProvider, region: v.RegionName,
		connection: v.PrivateEndpointConnectionName, created: now.Add(-delay)}
	switch v.Status {
	case atlas.EndpointInitiating:
		ep.created = now
	case atlas.EndpointActive:
		ep.approved = v.CloudProvider == CloudProviderAzure
	case atlas.EndpointPendingAcceptance:
		if v.CloudProvider != CloudProviderAzure {
			return nil, fmt.Errorf("status %s: only Azure endpoints wait for approval", v.Status)
		}
	case atlas.EndpointFailed:
		if v.ErrorMessage == "" {
			return nil, fmt.Errorf("status FAILED without an errorMessage")
		}
		ep.failure = v.ErrorMessage
	case atlas.EndpointDeleting:
		ep.deleted = now
	default:
		return nil, fmt.Errorf("status %q: want one of INITIATING, PENDING_ACCEPTANCE, ACTIVE, FAILED, DELETING", v.Status)
	}
	return ep, nil
}

// restoreGroup rebuilds one project from its snapshot.
func restoreGroup(id string, gs *groupSnapshot) (*group, error) {
	if !hex24Pattern.MatchString(id) {
		return nil, fmt.Errorf("the id is not 24 hexadecimal characters")
	}
	if gs == nil {
		return nil, fmt.Errorf("null")
	}
	g := newGroup()
	g.exists = gs.Exists
	g.name = gs.Name
	body := map[string]any{"enabledForSearchNodes": gs.EnabledForSearchNodes}
	if gs.AWSKMS != nil {
		body[ProviderAWS] = gs.AWSKMS
	}
	if gs.AzureKeyVault != nil {
		body[ProviderAzure] = gs.AzureKeyVault
	}
	if gs.GoogleCloudKMS != nil {
		body[ProviderGCP] = gs.GoogleCloudKMS
	}
	for _, doc := range []struct {
		name    string
		enabled *bool
		set     bool
	}{
		{ProviderAWS, fieldOf(gs.AWSKMS, func(c *atlas.AWSKMSConfiguration) *bool { return c.Enabled }), gs.AWSKMS != nil},
		{ProviderAzure, fieldOf(gs.AzureKeyVault, func(c *atlas.AzureKeyVault) *bool { return c.Enabled }), gs.AzureKeyVault != nil},
		{ProviderGCP, fieldOf(gs.GoogleCloudKMS, func(c *atlas.GoogleCloudKMS) *bool { return c.Enabled }), gs.GoogleCloudKMS != nil},
	} {
		// A stored configuration is an enabled one: a disabled provider
		// has none.
		if doc.set && (doc.enabled == nil || !*doc.enabled) {
			return nil, fmt.Errorf("%s: a stored configuration has enabled: true", doc.name)
		}
	}
	raw, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	if aerr := g.patch(raw, func(string) bool { return true }); aerr != nil {
		return nil, fmt.Errorf("%d %s: %s", aerr.Error, aerr.ErrorCode, aerr.Detail)
	}
	for _, p := range gs.InvalidKeys {
		if !knownProvider(p) {
			return nil, fmt.Errorf("invalidKeys: unknown provider %q", p)
		}
		g.invalid[p] = true
	}
	for _, c := range gs.Clusters {
		if c.Name == "" {
			return nil, fmt.Errorf("a cluster without a name")
		}
	}
	g.clusters = slices.Clone(gs.Clusters)
	return g, nil
}
