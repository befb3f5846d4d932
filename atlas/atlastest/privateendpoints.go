package atlastest

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/encryptiond/encryptiond/atlas"
)

// This file holds Atlas's private endpoints for encryption at rest, per
// project and cloud provider (AWS, AZURE), with Atlas's lifecycle on the
// emulator's clock (EmulatorConfig.Now), d being
// EmulatorConfig.PrivateEndpointDelay:
//
//   - AWS: INITIATING for d after its creation, then ACTIVE.
//   - Azure: INITIATING for d, then PENDING_ACCEPTANCE until approved
//     (ApprovePrivateEndpoint, or the control route), then ACTIVE.
//   - FAILED, with an errorMessage, on request (FailPrivateEndpoint).
//   - A DELETE makes it DELETING for d; then it is gone: Atlas answers 404
//     and lists it no more.
//
// Lists are paginated as every Atlas v2 list: itemsPerPage (1 to 500,
// default 100), pageNum (from 1), includeCount (default true), and links to
// self, next and previous. Choices where Atlas's behaviour is unconfirmed:
// a missing endpoint is 404 RESOURCE_NOT_FOUND; read-only fields in a
// create body are ignored; a DELETE of an endpoint already DELETING
// answers 204 again; a project need not have the provider enabled to get
// an endpoint.

// DefaultPrivateEndpointDelay is how long a private endpoint stays
// INITIATING, and DELETING, when EmulatorConfig.PrivateEndpointDelay is 0.
const DefaultPrivateEndpointDelay = 3 * time.Second

// The cloud providers of private endpoints, as in their paths.
const (
	CloudProviderAWS   = atlas.CloudProviderAWS
	CloudProviderAzure = atlas.CloudProviderAzure
)

// privateEndpointStore holds every project's private endpoints, guarded by
// Emulator.mu.
type privateEndpointStore struct {
	byGroup map[string][]*endpointState // in creation order
}

// endpointState is what the emulator knows of one private endpoint; its
// status follows from it and the clock (see view).
type endpointState struct {
	id, provider, region string
	connection           string // privateEndpointConnectionName
	created              time.Time
	approved             bool      // Azure: the connection was approved
	failure              string    // the errorMessage of a FAILED endpoint
	deleted              time.Time // when the DELETE came; zero before
}

func (e *Emulator) endpointDelay() time.Duration {
	if e.cfg.PrivateEndpointDelay > 0 {
		return e.cfg.PrivateEndpointDelay
	}
	return DefaultPrivateEndpointDelay
}

// view is what Atlas reports of ep at now, and whether it is gone.
func (ep *endpointState) view(now time.Time, delay time.Duration) (atlas.PrivateEndpoint, bool) {
	v := atlas.PrivateEndpoint{ID: ep.id, CloudProvider: ep.provider, RegionName: ep.region}
	switch {
	case !ep.deleted.IsZero() && now.Sub(ep.deleted) >= delay:
		return v, true
	case !ep.deleted.IsZero():
		v.Status = atlas.EndpointDeleting
	case ep.failure != "":
		v.Status, v.ErrorMessage = atlas.EndpointFailed, ep.failure
	case now.Sub(ep.created) < delay:
		v.Status = atlas.EndpointInitiating
		return v, false
	case ep.provider == CloudProviderAWS || ep.approved:
		v.Status = atlas.EndpointActive
	default:
		v.Status = atlas.EndpointPendingAcceptance
	}
	v.PrivateEndpointConnectionName = ep.connection
	return v, false
}

// endpointsLocked returns the endpoints of groupID and provider that are
// not gone, in creation order, forgetting the gone ones. e.mu must be held.
func (e *Emulator) endpointsLocked(groupID, provider string) []*endpointState {
	now, delay := e.now(), e.endpointDelay()
	all := e.pe.byGroup[groupID]
	all = slices.DeleteFunc(all, func(ep *endpointState) bool { _, gone := ep.view(now, delay); return gone })
	e.pe.byGroup[groupID] = all
	var out []*endpointState
	for _, ep := range all {
		if ep.provider == provider {
			out = append(out, ep)
		}
	}
	return out
}

// endpointLocked returns the endpoint id of groupID and provider, unless it
// is gone. e.mu must be held.
func (e *Emulator) endpointLocked(groupID, provider, id string) *endpointState {
	for _, ep := range e.endpointsLocked(groupID, provider) {
		if ep.id == id {
			return ep
		}
	}
	return nil
}

// checkProviderLocked returns the project and the provider of req's path,
// or the error Atlas answers. e.mu must be held.
func (e *Emulator) checkProviderLocked(req *apiRequest) (string, *atlas.ErrorBody) {
	groupID := req.params["groupId"]
	if _, aerr := e.existingGroupLocked(groupID); aerr != nil {
		return "", aerr
	}
	switch p := req.params["cloudProvider"]; p {
	case CloudProviderAWS, CloudProviderAzure:
		return p, nil
	}
	return "", invalidEnum("cloudProvider")
}

// servePrivateEndpoints lists a provider's private endpoints (GET) or
// creates one (POST, 202).
func (e *Emulator) servePrivateEndpoints(req *apiRequest) (int, any) {
	e.mu.Lock()
	defer e.mu.Unlock()
	provider, aerr := e.checkProviderLocked(req)
	if aerr != nil {
		return aerr.Error, aerr
	}
	groupID := req.params["groupId"]
	switch req.method {
	case http.MethodGet:
		return e.listEndpointsLocked(req, groupID, provider)
	case http.MethodPost:
		region, aerr := decodeEndpoint(req.body, provider)
		if aerr != nil {
			return aerr.Error, aerr
		}
		ep := &endpointState{id: randomToken(12), provider: provider, region: region, created: e.now()}
		ep.connection = connectionName(ep)
		e.pe.byGroup[groupID] = append(e.pe.byGroup[groupID], ep)
		v, _ := ep.view(e.now(), e.endpointDelay())
		return http.StatusAccepted, v
	}
	return methodNotAllowed(req.method)
}

// servePrivateEndpoint reads (GET) or deletes (DELETE, 204) one private
// endpoint.
func (e *Emulator) servePrivateEndpoint(req *apiRequest) (int, any) {
	e.mu.Lock()
	defer e.mu.Unlock()
	provider, aerr := e.checkProviderLocked(req)
	if aerr != nil {
		return aerr.Error, aerr
	}
	id := req.params["endpointId"]
	if !hex24Pattern.MatchString(id) {
		aerr := invalidAttribute(atlas.FieldViolation{Field: "endpointId", Description: "must be 24 hexadecimal characters"})
		return aerr.Error, aerr
	}
	ep := e.endpointLocked(req.params["groupId"], provider, id)
	if ep == nil {
		aerr := errorBody(http.StatusNotFound, "RESOURCE_NOT_FOUND", "Cannot find resource private endpoint "+id+".")
		return aerr.Error, aerr
	}
	switch req.method {
	case http.MethodGet:
		v, _ := ep.view(e.now(), e.endpointDelay())
		return http.StatusOK, v
	case http.MethodDelete:
		if ep.deleted.IsZero() {
			ep.deleted = e.now()
		}
		return http.StatusNoContent, nil
	}
	return methodNotAllowed(req.method)
}

func (e *Emulator) listEndpointsLocked(req *apiRequest, groupID, provider string) (int, any) {
	all := e.endpointsLocked(groupID, provider)
	views := make([]atlas.PrivateEndpoint, len(all))
	now, delay := e.now(), e.endpointDelay()
	for i, ep := range all {
		views[i], _ = ep.view(now, delay)
	}
	return page(req, views, e.cfg.MaxItemsPerPage)
}

// endpointFields are the fields of a create body: regionName, and the
// read-only ones, which are ignored.
var endpointFields = []string{"regionName", "id", "cloudProvider", "status", "errorMessage", "privateEndpointConnectionName"}

// decodeEndpoint reads a create body and returns its region, or the error
// Atlas answers.
func decodeEndpoint(body []byte, provider string) (string, *atlas.ErrorBody) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil || m == nil {
		return "", invalidJSON()
	}
	if bad := unknownFields("", m, endpointFields); len(bad) > 0 {
		return "", invalidAttribute(bad...)
	}
	raw, ok := present(m, "regionName")
	if !ok {
		return "", missingAttributes([]atlas.FieldViolation{{Field: "regionName", Description: "required"}})
	}
	var region string
	if err := json.Unmarshal(raw, &region); err != nil {
		return "", invalidAttribute(atlas.FieldViolation{Field: "regionName", Description: "has the wrong type"})
	}
	regions := atlas.AWSRegions()
	if provider == CloudProviderAzure {
		regions = atlas.AzureRegions()
	}
	if !slices.Contains(regions, region) {
		return "", invalidEnum("regionName")
	}
	return region, nil
}

// connectionName makes up the name Atlas gives the cloud side of ep: an
// AWS VPC endpoint id, or an Azure private endpoint connection.
func connectionName(ep *endpointState) string {
	if ep.provider == CloudProviderAWS {
		return "vpce-0" + ep.id[:16]
	}
	return "atlas-ear-" + strings.ToLower(strings.ReplaceAll(ep.region, "_", "")) + "-" + ep.id[:8]
}

// ErrNoSuchPrivateEndpoint is returned by ApprovePrivateEndpoint and
// FailPrivateEndpoint for an endpoint the emulator does not have (or no
// longer has).
var ErrNoSuchPrivateEndpoint = errors.New("atlastest: no such private endpoint")

// ApprovePrivateEndpoint approves the private endpoint connection of the
// Azure private endpoint endpointID of groupID, as its owner would on the
// key vault: once past INITIATING it is ACTIVE. It fails for an endpoint
// that does not exist, is not Azure's, or is being deleted.
func (e *Emulator) ApprovePrivateEndpoint(groupID, endpointID string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	ep, err := e.liveEndpointLocked(groupID, endpointID)
	if err != nil {
		return err
	}
	if ep.provider != CloudProviderAzure {
		return fmt.Errorf("atlastest: private endpoint %s is %s's: only Azure endpoints wait for approval", endpointID, ep.provider)
	}
	ep.approved = true
	return nil
}

// FailPrivateEndpoint makes the private endpoint endpointID of groupID
// FAILED, with message as its errorMessage. It fails for an endpoint that
// does not exist or is being deleted.
func (e *Emulator) FailPrivateEndpoint(groupID, endpointID, message string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	ep, err := e.liveEndpointLocked(groupID, endpointID)
	if err != nil {
		return err
	}
	if message == "" {
		message = "The private endpoint could not be created."
	}
	ep.failure = message
	return nil
}

// PrivateEndpoints returns what Atlas would list of provider's private
// endpoints in groupID, all pages at once.
func (e *Emulator) PrivateEndpoints(groupID, provider string) []atlas.PrivateEndpoint {
	e.mu.Lock()
	defer e.mu.Unlock()
	now, delay := e.now(), e.endpointDelay()
	var out []atlas.PrivateEndpoint
	for _, ep := range e.endpointsLocked(groupID, provider) {
		v, _ := ep.view(now, delay)
		out = append(out, v)
	}
	return out
}

func (e *Emulator) liveEndpointLocked(groupID, endpointID string) (*endpointState, error) {
	for _, provider := range []string{CloudProviderAWS, CloudProviderAzure} {
		if ep := e.endpointLocked(groupID, provider, endpointID); ep != nil {
			if !ep.deleted.IsZero() {
				return nil, fmt.Errorf("atlastest: private endpoint %s is being deleted", endpointID)
			}
			return ep, nil
		}
	}
	return nil, ErrNoSuchPrivateEndpoint
}

// serveEndpointControl serves the control routes of private endpoints:
// POST private-endpoints/approve?group=<id>&id=<endpoint id> and
// POST private-endpoints/fail?group=<id>&id=<endpoint id>&message=<text>.
func (e *Emulator) serveEndpointControl(w http.ResponseWriter, r *http.Request, action string) {
	q := r.URL.Query()
	group, id := q.Get("group"), q.Get("id")
	var err error
	switch action {
	case "approve":
		err = e.ApprovePrivateEndpoint(group, id)
	case "fail":
		err = e.FailPrivateEndpoint(group, id, q.Get("message"))
	}
	if err != nil {
		controlError(w, "private-endpoints/"+action+": "+err.Error())
		return
	}
	writeControl(w, http.StatusOK, map[string]string{"group": group, "id": id, "status": map[string]string{"approve": "approved", "fail": "failed"}[action]})
}
