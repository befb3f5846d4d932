package server

import (
	"slices"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/encryptiond/encryptiond/atlas"
	encryptionv1 "github.com/encryptiond/encryptiond/gen/atlas/encryption/v1"
	"github.com/encryptiond/encryptiond/server/failure"
)

// This file is Atlas's update rules, as README's "The update rules, checked
// before anything is sent to Atlas" numbers them: updateRules holds one
// entry per README rule, in its order. What a rule needs to know of a
// provider (its required fields, auth modes, formats, special rules) comes
// from the provider table (provider.go).
//
// checkRequest applies the rules that need only the request;
// request.checkState those that need Atlas's current state, read when
// request.needsState says so.

// updateRule is one of README's numbered update rules.
type updateRule struct {
	number int    // README's number
	name   string // what it says, in short
	// request checks what the request alone can tell. It returns true when
	// the rules after it cannot judge the request.
	request func(r *request, vs *violations) (stop bool)
	// needsState reports whether the rule can judge r only against the
	// provider's current state in Atlas.
	needsState func(r *request) bool
	// state checks r against Atlas's current state.
	state func(r *request, st *state, vs *violations)
}

// state is what the rules judge a request against: Atlas's current
// configuration and, only when a rule needs them (request.needsEndpoints),
// the provider's private endpoints.
type state struct {
	config    *atlas.EncryptionAtRest
	endpoints []atlas.PrivateEndpoint
}

// updateRules are README's update rules, in README's order. Each entry's
// comment quotes its rule.
var updateRules = []updateRule{
	// 1. `groupId` is 24 lowercase hexadecimal characters.
	{number: 1, name: "groupId is an Atlas project id", request: func(r *request, vs *violations) bool {
		checkGroupID(vs, r.groupID)
		return false
	}},
	// 2. One provider per call (`awsKms`, `azureKeyVault` or
	// `googleCloudKms`). (REST refuses a body naming two; in a message the
	// oneof keeps one.)
	{number: 2, name: "one provider per call", request: func(r *request, vs *violations) bool {
		if r.provider == nil {
			vs.add("config", "set exactly one provider: awsKms, azureKeyVault or googleCloudKms")
			return true
		}
		return false
	}},
	// 3. Disable: `{"<provider>": {"enabled": false}}` and nothing else;
	// Atlas removes that provider's configuration.
	{number: 3, name: "disable alone", request: func(r *request, vs *violations) bool {
		if r.disable && len(r.set) > 1 {
			var others []string
			for _, fd := range r.set {
				if fd.Name() != "enabled" {
					others = append(others, fd.JSONName())
				}
			}
			vs.add(r.path("enabled"), "enabled=false disables "+r.provider.title+" and must be the only field set; also set: "+strings.Join(others, ", "))
		}
		return false
	}},
	// 4. Enable: while a provider is not enabled, send its whole document
	// for one auth mode, with "enabled": true. A partial document for a
	// provider that is not enabled is refused with one field violation per
	// missing field.
	{
		number:     4,
		name:       "enabling needs the whole document",
		needsState: func(r *request) bool { return !r.disable && !r.whole() },
		state: func(r *request, st *state, vs *violations) {
			if !r.disable && !r.provider.enabled(st.config) {
				r.missingToEnable(vs)
			}
		},
	},
	// 5. Update: once a provider is enabled, send only the fields to
	// change; only those reach Atlas. A document that sets nothing is
	// refused.
	{number: 5, name: "an update sets what changes", request: func(r *request, vs *violations) bool {
		if len(r.set) == 0 {
			p := r.provider
			vs.add("config."+string(p.field), "sets no field: to change "+p.title+" set the fields to change; to disable it set only enabled=false")
			return true
		}
		return false
	}},
	// 6. Formats: each field's value as Atlas documents it (the provider
	// table's checks).
	{number: 6, name: "formats", request: func(r *request, vs *violations) bool {
		for _, fd := range r.set {
			check := r.provider.fields[fd.Name()].check
			if check == nil || fd.Kind() != protoreflect.StringKind {
				continue
			}
			if problem := check(r.msg.Get(fd).String()); problem != "" {
				vs.add(r.path(fd.Name()), fd.JSONName()+" "+problem)
			}
		}
		return false
	}},
	// 7. A role (`roleId`) and static credentials are never mixed in one
	// request; switching an enabled provider from a role to static
	// credentials needs all of them; and each provider's special rules
	// (Google Cloud KMS refuses a `serviceAccountKey` once it uses a role;
	// Azure Key Vault refuses a change of `keyVaultName`,
	// `resourceGroupName` or `subscriptionID` while the project has Azure
	// private endpoints that are not DELETING).
	{
		number:  7,
		name:    "credentials",
		request: ruleNoMixedCredentials,
		needsState: func(r *request) bool {
			return !r.disable && (r.partialMode() || slices.ContainsFunc(r.provider.special, func(s specialRule) bool { return s.applies(r) }))
		},
		state: func(r *request, st *state, vs *violations) {
			if r.disable {
				return
			}
			if r.provider.enabled(st.config) && !r.provider.staticCredentials(st.config) {
				r.missingToSwitch(vs)
			}
			for _, s := range r.provider.special {
				if s.applies(r) {
					s.check(r, st, vs)
				}
			}
		},
	},
	// 8. `validateOnly`: every check runs, including reading the state from
	// Atlas, and the answer is the configuration as it would be; nothing
	// changes. (UpdateEncryptionAtRest answers with request.applied.)
	{number: 8, name: "validateOnly reads the state", needsState: func(r *request) bool { return r.validateOnly }},
}

// ruleNoMixedCredentials is rule 7's request part: auth modes are never
// mixed in one request.
func ruleNoMixedCredentials(r *request, vs *violations) bool {
	var used [][]protoreflect.Name
	for _, m := range r.provider.authModes {
		if slices.ContainsFunc(m, r.has) {
			used = append(used, m)
		}
	}
	if len(used) > 1 {
		var names []string
		for _, m := range used[1:] {
			for _, n := range m {
				if r.has(n) {
					names = append(names, r.provider.jsonName(n))
				}
			}
		}
		vs.add(r.path(used[0][0]), "cannot be combined with "+strings.Join(names, ", ")+": choose role-based access (roleId) or static credentials, not both")
	}
	return false
}

// violations collects field violations in the order they are found.
type violations struct {
	list []*failure.Violation
	// missing is set when a field needed to enable a provider, or to switch
	// its credentials, is missing: Atlas calls that MISSING_ATTRIBUTE.
	missing bool
}

func (vs *violations) add(field, description string) {
	vs.list = append(vs.list, &failure.Violation{Field: field, Description: description})
}

func (vs *violations) addMissing(field, description string) {
	vs.add(field, description)
	vs.missing = true
}

// err is the INVALID_ARGUMENT status of the violations, or nil if there
// are none: nothing was sent to Atlas.
func (vs *violations) err(groupID string, p *provider) error {
	if len(vs.list) == 0 {
		return nil
	}
	reason := failure.ReasonInvalidAttribute
	if vs.missing {
		reason = failure.ReasonMissingAttribute
	}
	descriptions := make([]string, len(vs.list))
	for i, v := range vs.list {
		descriptions[i] = v.Field + ": " + v.Description
	}
	info := failure.Info{Domain: failure.DomainService, Reason: reason, HTTPStatus: 400, GroupID: groupID}
	if p != nil {
		info.Provider = p.atlas
	}
	return failure.New(codes.InvalidArgument, reason+": "+strings.Join(descriptions, "; "), info, failure.BadRequest(vs.list))
}

// request is an UpdateEncryptionAtRestRequest: what it asks of which
// provider.
type request struct {
	groupID      string
	validateOnly bool
	provider     *provider                      // nil if the config sets none
	msg          protoreflect.Message           // the provider's message in the request
	set          []protoreflect.FieldDescriptor // the fields it sets, in field-number order
	disable      bool                           // enabled=false
}

// newRequest returns what req asks, unchecked.
func newRequest(req *encryptionv1.UpdateEncryptionAtRestRequest) *request {
	r := &request{groupID: req.GetGroupId(), validateOnly: req.GetValidateOnly()}
	r.provider, r.msg = providerOf(req.GetConfig())
	if r.provider == nil {
		return r
	}
	r.msg.Range(func(fd protoreflect.FieldDescriptor, _ protoreflect.Value) bool {
		r.set = append(r.set, fd)
		return true
	})
	slices.SortFunc(r.set, func(a, b protoreflect.FieldDescriptor) int { return int(a.Number() - b.Number()) })
	if enabled, ok := r.enabled(); ok && !enabled {
		r.disable = true
	}
	return r
}

// checkRequest applies every rule's request part, in README's order. The
// error is an INVALID_ARGUMENT status with one field violation per problem.
func checkRequest(req *encryptionv1.UpdateEncryptionAtRestRequest) (*request, error) {
	r := newRequest(req)
	var vs violations
	for _, rule := range updateRules {
		if rule.request != nil && rule.request(r, &vs) {
			break
		}
	}
	if err := vs.err(r.groupID, r.provider); err != nil {
		return nil, err
	}
	return r, nil
}

// needsState reports whether any rule can judge r only against Atlas's
// current state.
func (r *request) needsState() bool {
	return slices.ContainsFunc(updateRules, func(rule updateRule) bool {
		return rule.needsState != nil && rule.needsState(r)
	})
}

// needsEndpoints reports whether a rule that applies to r judges it against
// the provider's private endpoints: only then does the handler list them.
func (r *request) needsEndpoints() bool {
	return !r.disable && slices.ContainsFunc(r.provider.special, func(s specialRule) bool { return s.endpoints && s.applies(r) })
}

// checkState applies every rule's state part against st.
func (r *request) checkState(st *state) error {
	var vs violations
	for _, rule := range updateRules {
		if rule.state != nil {
			rule.state(r, st, &vs)
		}
	}
	return vs.err(r.groupID, r.provider)
}

// has reports whether the request sets the field.
func (r *request) has(name protoreflect.Name) bool {
	return slices.ContainsFunc(r.set, func(fd protoreflect.FieldDescriptor) bool { return fd.Name() == name })
}

// enabled returns the value of enabled, if the request sets it.
func (r *request) enabled() (value, ok bool) {
	fd := r.provider.request.Fields().ByName("enabled")
	if !r.msg.Has(fd) {
		return false, false
	}
	return r.msg.Get(fd).Bool(), true
}

// path returns the request path of a provider field, e.g. config.aws_kms.region.
func (r *request) path(name protoreflect.Name) string {
	return "config." + string(r.provider.field) + "." + string(name)
}

// fieldNames returns Atlas's names of the fields the request sets, sorted.
func (r *request) fieldNames() []string {
	names := make([]string, len(r.set))
	for i, fd := range r.set {
		names[i] = fd.JSONName()
	}
	slices.Sort(names)
	return names
}

// whole reports whether the request carries the provider's whole document
// for one auth mode, with enabled=true: what Atlas needs to enable it. It
// is missingToEnable finding nothing, without building its messages: the
// rules ask it on every update.
func (r *request) whole() bool {
	enabled, _ := r.enabled()
	mode := r.mode()
	lacks := func(n protoreflect.Name) bool { return !r.has(n) }
	return enabled && mode != nil && !slices.ContainsFunc(r.provider.required, lacks) && !slices.ContainsFunc(mode, lacks)
}

// mode returns the auth mode the request uses: the first whose fields it
// sets, or nil.
func (r *request) mode() []protoreflect.Name {
	for _, m := range r.provider.authModes {
		if slices.ContainsFunc(m, r.has) {
			return m
		}
	}
	return nil
}

// partialMode reports whether the request sets some, not all, fields of an
// auth mode of several fields: only the current state says whether Atlas
// has the rest.
func (r *request) partialMode() bool {
	m := r.mode()
	return len(m) > 1 && slices.ContainsFunc(m, func(n protoreflect.Name) bool { return !r.has(n) })
}

// missingToEnable adds a violation for each field the request lacks to
// enable its provider.
func (r *request) missingToEnable(vs *violations) {
	p := r.provider
	why := "required to enable " + p.title + ": Atlas needs the whole document the first time"
	if enabled, _ := r.enabled(); !enabled {
		vs.addMissing(r.path("enabled"), why+" (enabled must be true)")
	}
	for _, name := range p.required {
		if !r.has(name) {
			vs.addMissing(r.path(name), why+" ("+p.jsonName(name)+")")
		}
	}
	mode := r.mode()
	if mode == nil {
		vs.addMissing(r.path(p.authModes[0][0]), why+" ("+p.authAlternatives()+")")
		return
	}
	for _, name := range mode {
		if !r.has(name) {
			vs.addMissing(r.path(name), why+" ("+p.jsonName(name)+")")
		}
	}
}

// missingToSwitch adds a violation for each field of static credentials
// the request lacks, when it starts on them for a provider that Atlas has
// configured without: Atlas has none of that mode to keep.
func (r *request) missingToSwitch(vs *violations) {
	mode := r.mode()
	if len(mode) < 2 {
		return
	}
	for _, name := range mode {
		if !r.has(name) {
			vs.addMissing(r.path(name), "required to switch "+r.provider.title+" to static credentials ("+r.provider.jsonName(name)+"): it uses a role now")
		}
	}
}

// authAlternatives spells the provider's auth modes for people:
// "roleId, or accessKeyID and secretAccessKey".
func (p *provider) authAlternatives() string {
	var modes []string
	for _, m := range p.authModes {
		names := make([]string, len(m))
		for i, n := range m {
			names[i] = p.jsonName(n)
		}
		modes = append(modes, strings.Join(names, " and "))
	}
	return strings.Join(modes, ", or ")
}

// checkGroupID adds a violation unless id is an Atlas project id.
func checkGroupID(vs *violations, id string) {
	if !IsAtlasID(id) {
		vs.add("group_id", "groupId must be the Atlas project id: 24 lowercase hexadecimal characters, shown in Atlas › Project Settings (or by atlas projects list)")
	}
}
