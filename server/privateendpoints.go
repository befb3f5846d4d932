package server

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/encryptiond/encryptiond/atlas"
	encryptionv1 "github.com/encryptiond/encryptiond/gen/atlas/encryption/v1"
	"github.com/encryptiond/encryptiond/server/failure"
	"github.com/encryptiond/encryptiond/server/paging"
	"github.com/encryptiond/encryptiond/server/watch"
)

// This file serves the private endpoints for encryption at rest: List, Get,
// Create and Delete, each one Atlas call (Delete two: the DELETE, then a
// GET for the state it left), and Watch, whose polls package watch shares
// among every watcher of an endpoint.
//
// The rules, checked before anything is sent to Atlas:
//   - groupId is 24 lowercase hex, endpointId too;
//   - the cloud provider is one that Atlas offers private endpoints for (the
//     provider table's endpointRegions): AWS or AZURE, not GCP;
//   - a new endpoint's regionName is in Atlas's list for its provider.
//
// Whether Atlas accepts an endpoint otherwise (for instance whether
// requirePrivateNetworking needs an ACTIVE one first) is Atlas's to say:
// its answer is mapped like any other (errors.go).

// How a watch polls Atlas.
const (
	// watchFirstPoll is the wait after a change, and the shortest;
	// watchSlowestPoll the longest, reached while nothing changes.
	watchFirstPoll   = time.Second
	watchSlowestPoll = 30 * time.Second
	// watchMaxFailures is how many polls in a row may fail (after the
	// Atlas client's own retries) before the watchers get the error.
	watchMaxFailures = 5
	// maxEndpointPages bounds privateEndpointsOf: 20 pages of 500.
	maxEndpointPages = 20
)

// groupNotFound is Atlas's errorCode for a project that does not exist:
// unlike any other 404, it does not mean that a watched endpoint is gone.
const groupNotFound = "GROUP_NOT_FOUND"

// endpointKey names one private endpoint, for the watches.
type endpointKey struct {
	groupID    string
	provider   *provider
	endpointID string
}

// endpointWatches are the watches of private endpoints: one poll loop per
// watched endpoint.
type endpointWatches = watch.Registry[endpointKey, *encryptionv1.PrivateEndpoint]

func (s *Server) newEndpointWatches() *endpointWatches {
	return watch.New(s.pollEndpoint, func(a, b *encryptionv1.PrivateEndpoint) bool { return proto.Equal(a, b) },
		watch.WithSchedule(watch.Backoff(watchFirstPoll, watchSlowestPoll)),
		watch.WithClock(s.opts.watchClock),
		watch.WithMaxFailures(watchMaxFailures),
		// A watcher joining a quiet endpoint hears of a change within a
		// second, not at the end of a 30 s wait.
		watch.WithMaxAge(watchFirstPoll),
	)
}

// checkTarget applies the rules every private-endpoint request shares to
// the project, the cloud provider and, when withID, the endpoint id. It
// returns the provider, nil when the request names none.
func checkTarget(vs *violations, groupID string, cloud encryptionv1.CloudProvider, endpointID string, withID bool) *provider {
	checkGroupID(vs, groupID)
	p := providerByCloud(cloud)
	switch {
	case p == nil:
		var names []string
		for _, q := range providers {
			if q.hasEndpoints() {
				names = append(names, q.cloud.String())
			}
		}
		vs.add("cloud_provider", "cloudProvider must be "+strings.Join(names, " or "))
	case !p.hasEndpoints():
		vs.add("cloud_provider", "Atlas offers no private endpoints for "+p.title)
	}
	if withID && !IsAtlasID(endpointID) {
		vs.add("endpoint_id", "endpointId must be the id of a private endpoint: 24 lowercase hexadecimal characters")
	}
	return p
}

// pageSize reads a list request's page_size: 0 means paging.DefaultSize,
// more than paging.MaxSize means MaxSize, and a negative one is a
// violation. asked reports whether the request named a size.
func pageSize(vs *violations, n int32) (size int, asked bool) {
	switch {
	case n < 0:
		vs.add("page_size", "pageSize must not be negative")
	case n > 0:
		return min(int(n), paging.MaxSize), true
	}
	return paging.DefaultSize, false
}

// ListPrivateEndpoints returns one page of a provider's private endpoints:
// one Atlas call, whose pageNum and itemsPerPage the page token carries.
func (s *Server) ListPrivateEndpoints(ctx context.Context, req *encryptionv1.ListPrivateEndpointsRequest) (*encryptionv1.ListPrivateEndpointsResponse, error) {
	var vs violations
	p := checkTarget(&vs, req.GetGroupId(), req.GetCloudProvider(), "", false)
	size, asked := pageSize(&vs, req.GetPageSize())
	page := paging.Page{Number: 1, Size: size}
	if token := req.GetPageToken(); token != "" {
		next, err := paging.Parse(token)
		switch {
		case err != nil:
			vs.add("page_token", "pageToken is "+err.Error())
		case asked && page.Size != next.Size:
			vs.add("page_size", fmt.Sprintf("pageSize must stay %d while paging with pageToken; to change it, start again without pageToken", next.Size))
		default:
			page = next
		}
	}
	if err := vs.err(req.GetGroupId(), p); err != nil {
		return nil, err
	}
	opts := atlas.ListOptions{PageNum: page.Number, ItemsPerPage: page.Size}
	res, err := s.atlas.ListPrivateEndpoints(ctx, req.GetGroupId(), p.cloud.String(), opts)
	if err != nil {
		return nil, fromAtlas(ctx, err, req.GetGroupId(), p, nil)
	}
	out := &encryptionv1.ListPrivateEndpointsResponse{}
	for i := range res.Results {
		out.PrivateEndpoints = append(out.PrivateEndpoints, endpointToProto(&res.Results[i], p))
	}
	if res.TotalCount != nil {
		out.TotalSize = int32(min(max(*res.TotalCount, 0), math.MaxInt32))
	}
	if res.HasNext(opts) {
		out.NextPageToken = paging.Token(page.Next())
	}
	return out, nil
}

// GetPrivateEndpoint returns one private endpoint: one Atlas call.
func (s *Server) GetPrivateEndpoint(ctx context.Context, req *encryptionv1.GetPrivateEndpointRequest) (*encryptionv1.PrivateEndpoint, error) {
	var vs violations
	p := checkTarget(&vs, req.GetGroupId(), req.GetCloudProvider(), req.GetEndpointId(), true)
	if err := vs.err(req.GetGroupId(), p); err != nil {
		return nil, err
	}
	ep, err := s.atlas.GetPrivateEndpoint(ctx, req.GetGroupId(), p.cloud.String(), req.GetEndpointId())
	if err != nil {
		return nil, fromAtlas(ctx, err, req.GetGroupId(), p, nil)
	}
	return endpointToProto(ep, p), nil
}

// CreatePrivateEndpoint asks Atlas for a private endpoint: one POST, under
// the project's lock, since it changes the project. validate_only lists the
// provider's endpoints instead (one GET, a page of one), which tells that
// the project exists and that this service may read it, and creates
// nothing.
func (s *Server) CreatePrivateEndpoint(ctx context.Context, req *encryptionv1.CreatePrivateEndpointRequest) (*encryptionv1.PrivateEndpoint, error) {
	var vs violations
	groupID := req.GetGroupId()
	p := checkTarget(&vs, groupID, req.GetCloudProvider(), "", false)
	region := req.GetPrivateEndpoint().GetRegionName()
	if p != nil && p.hasEndpoints() {
		if region == "" {
			vs.addMissing("private_endpoint.region_name", "regionName is required: the "+p.title+" region of the endpoint, as Atlas names it")
		} else if problem := oneOf(p.endpointRegions)(region); problem != "" {
			vs.add("private_endpoint.region_name", "regionName "+problem)
		}
	}
	if err := vs.err(groupID, p); err != nil {
		return nil, err
	}
	if req.GetValidateOnly() {
		if _, err := s.atlas.ListPrivateEndpoints(ctx, groupID, p.cloud.String(), atlas.ListOptions{ItemsPerPage: 1, OmitCount: true}); err != nil {
			return nil, fromAtlas(ctx, err, groupID, p, nil)
		}
		return &encryptionv1.PrivateEndpoint{CloudProvider: p.cloud, RegionName: region, Status: encryptionv1.PrivateEndpoint_INITIATING}, nil
	}

	unlock, err := s.groups.lock(ctx, groupID)
	if err != nil {
		return nil, lockError(ctx, groupID)
	}
	defer unlock()
	// The project's watchers read it again once the change is made.
	defer s.configs.Refresh(groupID)
	ep, err := s.atlas.CreatePrivateEndpoint(ctx, groupID, p.cloud.String(), region)
	if errors.Is(err, atlas.ErrUpdateAppliedUnreadable) && ctx.Err() == nil {
		return nil, failure.New(codes.Unavailable,
			"Atlas accepted the private endpoint, but its answer could not be read: list the "+p.title+" private endpoints to find it before creating another",
			failure.Info{Domain: failure.DomainAtlas, Reason: failure.ReasonAppliedUnreadable, HTTPStatus: http.StatusBadGateway, GroupID: groupID, Provider: p.atlas})
	}
	if err != nil {
		return nil, fromAtlas(ctx, err, groupID, p, nil)
	}
	return endpointToProto(ep, p), nil
}

// DeletePrivateEndpoint asks Atlas to delete a private endpoint and reads
// it back: a DELETE and a GET, under the project's lock. Its watchers get
// the state read at once.
func (s *Server) DeletePrivateEndpoint(ctx context.Context, req *encryptionv1.DeletePrivateEndpointRequest) (*encryptionv1.PrivateEndpoint, error) {
	var vs violations
	groupID, id := req.GetGroupId(), req.GetEndpointId()
	p := checkTarget(&vs, groupID, req.GetCloudProvider(), id, true)
	if err := vs.err(groupID, p); err != nil {
		return nil, err
	}
	unlock, err := s.groups.lock(ctx, groupID)
	if err != nil {
		return nil, lockError(ctx, groupID)
	}
	defer unlock()
	// The project's watchers read it again once the change is made.
	defer s.configs.Refresh(groupID)
	if err := s.atlas.DeletePrivateEndpoint(ctx, groupID, p.cloud.String(), id); err != nil {
		return nil, fromAtlas(ctx, err, groupID, p, nil)
	}
	key := endpointKey{groupID: groupID, provider: p, endpointID: id}
	ep, err := s.atlas.GetPrivateEndpoint(ctx, groupID, p.cloud.String(), id)
	var out *encryptionv1.PrivateEndpoint
	switch {
	case err == nil:
		out = endpointToProto(ep, p)
	case gone(err):
		out = deleted(key)
	default:
		// Atlas accepted the deletion (204) but its state could not be
		// read: DELETING is what the 204 means.
		return &encryptionv1.PrivateEndpoint{Id: id, CloudProvider: p.cloud, Status: encryptionv1.PrivateEndpoint_DELETING}, nil
	}
	s.endpoints.Push(key, out)
	return out, nil
}

// WatchPrivateEndpoint streams a private endpoint until it is ACTIVE,
// FAILED or gone (DELETED); see the .proto. Watchers of one endpoint share
// its poll (pollEndpoint).
func (s *Server) WatchPrivateEndpoint(req *encryptionv1.WatchPrivateEndpointRequest, stream grpc.ServerStreamingServer[encryptionv1.PrivateEndpoint]) error {
	var vs violations
	p := checkTarget(&vs, req.GetGroupId(), req.GetCloudProvider(), req.GetEndpointId(), true)
	if err := vs.err(req.GetGroupId(), p); err != nil {
		return err
	}
	ctx := stream.Context()
	key := endpointKey{groupID: req.GetGroupId(), provider: p, endpointID: req.GetEndpointId()}
	w := s.endpoints.Watch(key)
	defer w.Stop()
	var last *encryptionv1.PrivateEndpoint
	for {
		ep, err := w.Next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return watchEnded(ctx, key, last)
			}
			return err // a status from pollEndpoint
		}
		if err := stream.Send(ep); err != nil {
			return err
		}
		last = ep
		switch ep.GetStatus() {
		case encryptionv1.PrivateEndpoint_ACTIVE, encryptionv1.PrivateEndpoint_FAILED, encryptionv1.PrivateEndpoint_DELETED:
			return nil
		}
	}
}

// pollEndpoint reads a watched endpoint: one GET. A 404 other than a
// missing project means that the endpoint is gone: DELETED. Failures that
// another poll may cure (Atlas unavailable, rate limited) are retried on
// the watch's schedule; any other ends the watch.
func (s *Server) pollEndpoint(ctx context.Context, key endpointKey) (*encryptionv1.PrivateEndpoint, error) {
	ep, err := s.atlas.GetPrivateEndpoint(ctx, key.groupID, key.provider.cloud.String(), key.endpointID)
	switch {
	case ctx.Err() != nil:
		return nil, ctx.Err() // the last watcher left: not a failed poll
	case err == nil:
		s.observePoll(PollPrivateEndpoint, nil)
		return endpointToProto(ep, key.provider), nil
	case gone(err):
		s.observePoll(PollPrivateEndpoint, nil)
		return deleted(key), nil
	}
	s.observePoll(PollPrivateEndpoint, err)
	st := fromAtlas(ctx, err, key.groupID, key.provider, nil)
	if c := status.Code(st); c == codes.Unavailable || c == codes.ResourceExhausted {
		return nil, st
	}
	return nil, watch.Permanent(st)
}

// gone reports whether err says that Atlas does not know the endpoint.
func gone(err error) bool {
	var ae *atlas.Error
	return errors.As(err, &ae) && ae.HTTPStatus == http.StatusNotFound && ae.ErrorCode != groupNotFound
}

// deleted is the last message of a watch whose endpoint is gone.
func deleted(key endpointKey) *encryptionv1.PrivateEndpoint {
	return &encryptionv1.PrivateEndpoint{Id: key.endpointID, CloudProvider: key.provider.cloud, Status: encryptionv1.PrivateEndpoint_DELETED}
}

// watchEnded is the status of a watch whose context ended before the
// endpoint was ready or gone; last is the state it last sent, if any.
func watchEnded(ctx context.Context, key endpointKey, last *encryptionv1.PrivateEndpoint) error {
	seen := "before its first state was read"
	if last != nil {
		seen = "last seen " + last.GetStatus().String()
	}
	info := failure.Info{Domain: failure.DomainService, GroupID: key.groupID, Provider: key.provider.atlas}
	return watchEndedWith(ctx, info, "the watch of private endpoint "+key.endpointID+" ("+seen+")")
}

// endpointToProto converts Atlas's endpoint of provider p. A status this
// service does not know stays unset.
func endpointToProto(ep *atlas.PrivateEndpoint, p *provider) *encryptionv1.PrivateEndpoint {
	cloud := encryptionv1.CloudProvider(encryptionv1.CloudProvider_value[ep.CloudProvider])
	if cloud == encryptionv1.CloudProvider_CLOUD_PROVIDER_UNSPECIFIED {
		cloud = p.cloud
	}
	st := encryptionv1.PrivateEndpoint_Status(encryptionv1.PrivateEndpoint_Status_value[ep.Status])
	if st == encryptionv1.PrivateEndpoint_DELETED { // ours, never Atlas's
		st = encryptionv1.PrivateEndpoint_STATUS_UNSPECIFIED
	}
	return &encryptionv1.PrivateEndpoint{
		Id:                            ep.ID,
		CloudProvider:                 cloud,
		RegionName:                    ep.RegionName,
		Status:                        st,
		ErrorMessage:                  ep.ErrorMessage,
		PrivateEndpointConnectionName: ep.PrivateEndpointConnectionName,
	}
}

// privateEndpointsOf returns every private endpoint of provider p in the
// project that Atlas lists, reading every page (at most 20 of 500): those
// being deleted (DELETING) included, those gone not. It returns nil without
// calling Atlas for a provider that has no private endpoints (Google Cloud
// KMS). Its error is Atlas's, for fromAtlas.
//
// The Azure rule that the key vault cannot move while endpoints lead to it
// uses it (fixedWhileEndpoints).
func (s *Server) privateEndpointsOf(ctx context.Context, groupID string, p *provider) ([]atlas.PrivateEndpoint, error) {
	if !p.hasEndpoints() {
		return nil, nil
	}
	var all []atlas.PrivateEndpoint
	opts := atlas.ListOptions{ItemsPerPage: paging.MaxSize}
	for page := 1; page <= maxEndpointPages; page++ {
		opts.PageNum = page
		res, err := s.atlas.ListPrivateEndpoints(ctx, groupID, p.cloud.String(), opts)
		if err != nil {
			return nil, err
		}
		all = append(all, res.Results...)
		if !res.HasNext(opts) {
			break
		}
	}
	return all, nil
}

// The audit log's actions of the private-endpoint mutations.
const (
	ActionCreatePrivateEndpoint = "create_private_endpoint"
	ActionDeletePrivateEndpoint = "delete_private_endpoint"
)

// maxAuditedID bounds the endpoint id an audit record repeats: a request
// may carry any string there.
const maxAuditedID = 64

// DescribeCreatePrivateEndpoint names what a CreatePrivateEndpoint request
// asks, for the audit log: names only, never a value. It works on requests
// that break the rules too.
func DescribeCreatePrivateEndpoint(req *encryptionv1.CreatePrivateEndpointRequest) Mutation {
	m := Mutation{GroupID: req.GetGroupId(), Action: ActionCreatePrivateEndpoint, ValidateOnly: req.GetValidateOnly(), Fields: []string{}}
	if p := providerByCloud(req.GetCloudProvider()); p != nil {
		m.Provider = p.atlas
	}
	if ep := req.GetPrivateEndpoint(); ep != nil {
		ep.ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, _ protoreflect.Value) bool {
			m.Fields = append(m.Fields, fd.JSONName())
			return true
		})
		slices.Sort(m.Fields)
	}
	return m
}

// DescribeDeletePrivateEndpoint names what a DeletePrivateEndpoint request
// asks, for the audit log.
func DescribeDeletePrivateEndpoint(req *encryptionv1.DeletePrivateEndpointRequest) Mutation {
	m := Mutation{GroupID: req.GetGroupId(), Action: ActionDeletePrivateEndpoint, Fields: []string{}, EndpointID: req.GetEndpointId()}
	if len(m.EndpointID) > maxAuditedID {
		m.EndpointID = strings.ToValidUTF8(m.EndpointID[:maxAuditedID], "") + "…"
	}
	if p := providerByCloud(req.GetCloudProvider()); p != nil {
		m.Provider = p.atlas
	}
	return m
}
