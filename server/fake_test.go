package server

import (
	"context"
	"encoding/json"
	"sync"

	"github.com/encryptiond/encryptiond/atlas"
)

// fakeAtlas is a small stand-in for Atlas in unit tests: it answers Gets
// from a state it holds, records every PATCH body as JSON, and fails when
// told to. It does not apply Atlas's rules (the emulator does, in the
// end-to-end tests); it applies a PATCH by merging its fields.
type fakeAtlas struct {
	mu      sync.Mutex
	state   atlas.EncryptionAtRest
	gets    int
	patches []string
	getErr  error
	patchFn func() error
	// endpoints are the private endpoints Atlas lists, of every provider;
	// lists counts the list calls.
	endpoints []atlas.PrivateEndpoint
	lists     int

	clusters    []atlas.Cluster
	clusterErr  error
	clusterGets int
}

func (f *fakeAtlas) ListClusters(ctx context.Context, groupID string) ([]atlas.Cluster, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.clusterGets++
	if f.clusterErr != nil {
		return nil, f.clusterErr
	}
	return append([]atlas.Cluster(nil), f.clusters...), nil
}

func (f *fakeAtlas) GetEncryptionAtRest(ctx context.Context, groupID string) (*atlas.EncryptionAtRest, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gets++
	if f.getErr != nil {
		return nil, f.getErr
	}
	out := f.state
	return &out, nil
}

func (f *fakeAtlas) UpdateEncryptionAtRest(ctx context.Context, groupID string, update *atlas.EncryptionAtRest) (*atlas.EncryptionAtRest, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	body, err := json.Marshal(update)
	if err != nil {
		return nil, err
	}
	f.patches = append(f.patches, string(body))
	if f.patchFn != nil {
		if err := f.patchFn(); err != nil {
			return nil, err
		}
	}
	// Merge by JSON: the update's fields over the current document.
	var cur, upd map[string]map[string]any
	b, _ := json.Marshal(f.state)
	_ = json.Unmarshal(b, &cur)
	_ = json.Unmarshal(body, &upd)
	if cur == nil {
		cur = map[string]map[string]any{}
	}
	for prov, fields := range upd {
		if fields["enabled"] == false {
			cur[prov] = map[string]any{"enabled": false, "valid": false}
			continue
		}
		if cur[prov] == nil {
			cur[prov] = map[string]any{}
		}
		for k, v := range fields {
			cur[prov][k] = v
		}
		cur[prov]["valid"] = true
	}
	b, _ = json.Marshal(cur)
	f.state = atlas.EncryptionAtRest{}
	_ = json.Unmarshal(b, &f.state)
	out := f.state
	return &out, nil
}

func (f *fakeAtlas) calls() (gets int, patches []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.gets, append([]string(nil), f.patches...)
}

// ListGroups lists no projects: tests of the fleet use the emulator.
func (f *fakeAtlas) ListGroups(ctx context.Context, opts atlas.ListOptions) (*atlas.Page[atlas.Group], error) {
	return &atlas.Page[atlas.Group]{}, nil
}
