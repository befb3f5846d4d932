package server

import (
	"context"
	"errors"
	"net/http"

	"github.com/encryptiond/encryptiond/atlas"
)

// fakeAtlas's private endpoints: it lists, reads and deletes what the test
// put in endpoints, on one page, and creates nothing (the end-to-end tests
// use the emulator for that).

var errFakeCreate = errors.New("fakeAtlas creates no private endpoints")

func (f *fakeAtlas) ListPrivateEndpoints(_ context.Context, _, cloudProvider string, _ atlas.ListOptions) (*atlas.PrivateEndpointPage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lists++
	out := &atlas.PrivateEndpointPage{Results: []atlas.PrivateEndpoint{}}
	for _, ep := range f.endpoints {
		if ep.CloudProvider == cloudProvider {
			out.Results = append(out.Results, ep)
		}
	}
	n := len(out.Results)
	out.TotalCount = &n
	return out, nil
}

func (f *fakeAtlas) GetPrivateEndpoint(_ context.Context, _, cloudProvider, endpointID string) (*atlas.PrivateEndpoint, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, ep := range f.endpoints {
		if ep.CloudProvider == cloudProvider && ep.ID == endpointID {
			return &ep, nil
		}
	}
	return nil, &atlas.Error{HTTPStatus: http.StatusNotFound, ErrorCode: "RESOURCE_NOT_FOUND"}
}

func (f *fakeAtlas) CreatePrivateEndpoint(context.Context, string, string, string) (*atlas.PrivateEndpoint, error) {
	return nil, errFakeCreate
}

func (f *fakeAtlas) DeletePrivateEndpoint(_ context.Context, _, cloudProvider, endpointID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, ep := range f.endpoints {
		if ep.CloudProvider == cloudProvider && ep.ID == endpointID {
			f.endpoints[i].Status = atlas.EndpointDeleting
			return nil
		}
	}
	return &atlas.Error{HTTPStatus: http.StatusNotFound, ErrorCode: "RESOURCE_NOT_FOUND"}
}
