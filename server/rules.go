package server

import (
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/encryptiond/encryptiond/atlas"
	encryptionv1 "github.com/encryptiond/encryptiond/gen/atlas/encryption/v1"
)

// This file is Atlas's update rules, as data: which fields each provider
// needs to be enabled (providers), and what each field's value must look like
// (fieldChecks). checkRequest applies the rules that need nothing but the
// request; request.checkState those that need Atlas's current state.

// provider describes one key provider: its names and what Atlas needs to
// enable it.
type provider struct {
	field protoreflect.Name // member of ProviderConfig's oneof: "aws_kms"
	atlas string            // Atlas's JSON name: "awsKms"
	title string            // for people: "AWS KMS"
	desc  protoreflect.MessageDescriptor

	// required are the fields, besides enabled, that enabling needs.
	required []protoreflect.Name
	// authModes are the alternative sets of credential fields; enabling
	// needs one of them whole, and a request may not mix them.
	authModes [][]protoreflect.Name
}

var (
	awsKMS = &provider{
		field:     "aws_kms",
		atlas:     "awsKms",
		title:     "AWS KMS",
		desc:      (*encryptionv1.AwsKms)(nil).ProtoReflect().Descriptor(),
		required:  []protoreflect.Name{"customer_master_key_id", "region"},
		authModes: [][]protoreflect.Name{{"role_id"}, {"access_key_id", "secret_access_key"}},
	}
	azureKeyVault = &provider{
		field:     "azure_key_vault",
		atlas:     "azureKeyVault",
		title:     "Azure Key Vault",
		desc:      (*encryptionv1.AzureKeyVault)(nil).ProtoReflect().Descriptor(),
		required:  []protoreflect.Name{"azure_environment", "subscription_id", "resource_group_name", "key_vault_name", "key_identifier"},
		authModes: [][]protoreflect.Name{{"role_id"}, {"client_id", "tenant_id", "secret"}},
	}
	googleCloudKMS = &provider{
		field:     "google_cloud_kms",
		atlas:     "googleCloudKms",
		title:     "Google Cloud KMS",
		desc:      (*encryptionv1.GoogleCloudKms)(nil).ProtoReflect().Descriptor(),
		required:  []protoreflect.Name{"key_version_resource_id"},
		authModes: [][]protoreflect.Name{{"role_id"}, {"service_account_key"}},
	}
)

// fieldCheck returns what is wrong with a value, or "". The description
// never quotes the value: it may be a secret.
type fieldCheck func(string) string

// fieldChecks holds the static rule of every provider field that has one,
// keyed by the field's full protobuf name. It is the only place these rules
// are declared. Atlas is deliberately not second-guessed beyond its own
// documented formats: customerMasterKeyID, for one, may be a key id, an ARN
// or an alias, so only its length is checked.
var fieldChecks = map[protoreflect.FullName]fieldCheck{
	"atlas.encryption.v1.AwsKms.access_key_id":          length(16, 128),
	"atlas.encryption.v1.AwsKms.secret_access_key":      length(1, 1024),
	"atlas.encryption.v1.AwsKms.customer_master_key_id": length(1, 2048),
	"atlas.encryption.v1.AwsKms.region":                 oneOf(atlas.AWSRegions()),
	"atlas.encryption.v1.AwsKms.role_id":                matches(hex24, "must be 24 lowercase hexadecimal characters"),

	"atlas.encryption.v1.AzureKeyVault.azure_environment":   oneOf(atlas.AzureEnvironments()),
	"atlas.encryption.v1.AzureKeyVault.client_id":           matches(uuid, "must be a UUID"),
	"atlas.encryption.v1.AzureKeyVault.tenant_id":           matches(uuid, "must be a UUID"),
	"atlas.encryption.v1.AzureKeyVault.subscription_id":     matches(uuid, "must be a UUID"),
	"atlas.encryption.v1.AzureKeyVault.key_identifier":      keyURL,
	"atlas.encryption.v1.AzureKeyVault.key_vault_name":      length(1, 1024),
	"atlas.encryption.v1.AzureKeyVault.resource_group_name": length(1, 1024),
	"atlas.encryption.v1.AzureKeyVault.secret":              length(1, 4096),
	"atlas.encryption.v1.AzureKeyVault.role_id":             matches(hex24, "must be 24 lowercase hexadecimal characters"),

	"atlas.encryption.v1.GoogleCloudKms.key_version_resource_id": matches(gcpKeyVersion, "must be shaped projects/<project>/locations/<location>/keyRings/<ring>/cryptoKeys/<key>/cryptoKeyVersions/<version>"),
	"atlas.encryption.v1.GoogleCloudKms.service_account_key":     jsonObject,
	"atlas.encryption.v1.GoogleCloudKms.role_id":                 matches(hex24, "must be 24 lowercase hexadecimal characters"),
}

var (
	hex24         = regexp.MustCompile(`^[a-f0-9]{24}$`)
	uuid          = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	gcpKeyVersion = regexp.MustCompile(`^projects/[^/]+/locations/[^/]+/keyRings/[^/]+/cryptoKeys/[^/]+/cryptoKeyVersions/[^/]+$`)
)

func length(minLen, maxLen int) fieldCheck {
	return func(v string) string {
		if n := len(v); n < minLen || n > maxLen {
			if minLen == 1 {
				return fmt.Sprintf("must be 1 to %d characters, got %d", maxLen, n)
			}
			return fmt.Sprintf("must be %d to %d characters, got %d", minLen, maxLen, n)
		}
		return ""
	}
}

func oneOf(values []string) fieldCheck {
	return func(v string) string {
		if !slices.Contains(values, v) {
			return "must be one of " + strings.Join(values, ", ")
		}
		return ""
	}
}

func matches(re *regexp.Regexp, problem string) fieldCheck {
	return func(v string) string {
		if !re.MatchString(v) {
			return problem
		}
		return ""
	}
}

// keyURL checks an Azure Key Vault key identifier: an https URL whose path
// names a key, /keys/<name>, usually followed by /<version>. Atlas refuses
// anything else (AZURE_KEY_VAULT_KEY_IDENTIFIER_INVALID_FORMAT).
func keyURL(v string) string {
	u, err := url.Parse(v)
	parts := []string{}
	if err == nil {
		parts = strings.Split(strings.Trim(u.Path, "/"), "/")
	}
	if err != nil || u.Scheme != "https" || u.Host == "" || len(parts) < 2 || parts[0] != "keys" || parts[1] == "" {
		return "must be the key's https URL, https://<vault>.vault.azure.net/keys/<name>/<version>"
	}
	return ""
}

func jsonObject(v string) string {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal([]byte(v), &obj); err != nil {
		return "must be the service account's JSON key: a JSON object, sent as a string"
	}
	return ""
}

// violations collects field violations in the order they are found.
type violations []*errdetails.BadRequest_FieldViolation

func (vs *violations) add(field, description string) {
	*vs = append(*vs, &errdetails.BadRequest_FieldViolation{Field: field, Description: description})
}

// request is an UpdateEncryptionAtRestRequest that passed checkRequest: what
// it asks of which provider.
type request struct {
	groupID  string
	provider *provider
	msg      protoreflect.Message           // the provider's message in the request
	set      []protoreflect.FieldDescriptor // the fields it sets, in field-number order
	disable  bool                           // enabled=false, alone
}

// has reports whether the request sets the field.
func (r *request) has(name protoreflect.Name) bool {
	return slices.ContainsFunc(r.set, func(fd protoreflect.FieldDescriptor) bool { return fd.Name() == name })
}

// enabled returns the value of enabled, if the request sets it.
func (r *request) enabled() (value, ok bool) {
	fd := r.provider.desc.Fields().ByName("enabled")
	if !r.msg.Has(fd) {
		return false, false
	}
	return r.msg.Get(fd).Bool(), true
}

// path returns the request path of a provider field, e.g. config.aws_kms.region.
func (r *request) path(name protoreflect.Name) string {
	return "config." + string(r.provider.field) + "." + string(name)
}

// jsonName returns Atlas's name of a provider field, e.g. customerMasterKeyID.
func (r *request) jsonName(name protoreflect.Name) string {
	return r.provider.desc.Fields().ByName(name).JSONName()
}

// fieldNames returns Atlas's names of the fields the request sets.
func (r *request) fieldNames() []string {
	names := make([]string, len(r.set))
	for i, fd := range r.set {
		names[i] = fd.JSONName()
	}
	slices.Sort(names)
	return names
}

// whole reports whether the request carries the provider's whole document
// for one auth mode, with enabled=true: what Atlas needs to enable it.
func (r *request) whole() bool {
	return len(r.missingToEnable()) == 0
}

// missingToEnable lists, as field violations, what the request lacks to
// enable its provider.
func (r *request) missingToEnable() violations {
	var vs violations
	p := r.provider
	why := "required to enable " + p.title + ": Atlas needs the whole document the first time"
	if enabled, _ := r.enabled(); !enabled {
		vs.add(r.path("enabled"), why+" (enabled must be true)")
	}
	for _, name := range p.required {
		if !r.has(name) {
			vs.add(r.path(name), why+" ("+r.jsonName(name)+")")
		}
	}
	// The auth mode the request started on, or the first if none.
	mode := p.authModes[0]
	for _, m := range p.authModes {
		if slices.ContainsFunc(m, r.has) {
			mode = m
			break
		}
	}
	if !slices.ContainsFunc(mode, r.has) {
		vs.add(r.path(mode[0]), why+" ("+r.authAlternatives()+")")
		return vs
	}
	for _, name := range mode {
		if !r.has(name) {
			vs.add(r.path(name), why+" ("+r.jsonName(name)+")")
		}
	}
	return vs
}

// authAlternatives spells the provider's auth modes for people:
// "roleId, or accessKeyID and secretAccessKey".
func (r *request) authAlternatives() string {
	var modes []string
	for _, m := range r.provider.authModes {
		names := make([]string, len(m))
		for i, n := range m {
			names[i] = r.jsonName(n)
		}
		modes = append(modes, strings.Join(names, " and "))
	}
	return strings.Join(modes, ", or ")
}

// newRequest returns what req asks of which provider, unchecked, or nil if
// it names no provider.
func newRequest(req *encryptionv1.UpdateEncryptionAtRestRequest) *request {
	p, msg := providerOf(req.GetConfig())
	if p == nil {
		return nil
	}
	r := &request{groupID: req.GetGroupId(), provider: p, msg: msg}
	msg.Range(func(fd protoreflect.FieldDescriptor, _ protoreflect.Value) bool {
		r.set = append(r.set, fd)
		return true
	})
	slices.SortFunc(r.set, func(a, b protoreflect.FieldDescriptor) int { return int(a.Number() - b.Number()) })
	return r
}

// checkRequest applies every rule that needs only the request: the group id,
// one provider, each field's format, no mixed auth modes, disable alone, and
// not an empty update. The error is an INVALID_ARGUMENT status with one field
// violation per problem.
func checkRequest(req *encryptionv1.UpdateEncryptionAtRestRequest) (*request, error) {
	var vs violations
	groupID := req.GetGroupId()
	checkGroupID(&vs, groupID)

	r := newRequest(req)
	if r == nil {
		vs.add("config", "set exactly one provider: awsKms, azureKeyVault or googleCloudKms")
		return nil, invalidArgument(groupID, "", reasonInvalid, vs)
	}
	p, msg := r.provider, r.msg

	if len(r.set) == 0 {
		vs.add("config."+string(p.field), "sets no field: to change "+p.title+" set the fields to change; to disable it set only enabled=false")
		return nil, invalidArgument(groupID, p.atlas, reasonInvalid, vs)
	}
	for _, fd := range r.set {
		check := fieldChecks[fd.FullName()]
		if check == nil || fd.Kind() != protoreflect.StringKind {
			continue
		}
		if problem := check(msg.Get(fd).String()); problem != "" {
			vs.add(r.path(fd.Name()), fd.JSONName()+" "+problem)
		}
	}

	// Auth modes are never mixed in one request.
	var modesUsed [][]protoreflect.Name
	for _, m := range p.authModes {
		if slices.ContainsFunc(m, r.has) {
			modesUsed = append(modesUsed, m)
		}
	}
	if len(modesUsed) > 1 {
		vs.add(r.path(modesUsed[0][0]), "cannot be combined with "+r.namesSet(modesUsed[1:])+": choose role-based access (roleId) or static credentials, not both")
	}

	if enabled, ok := r.enabled(); ok && !enabled {
		r.disable = true
		if len(r.set) > 1 {
			var others []string
			for _, fd := range r.set {
				if fd.Name() != "enabled" {
					others = append(others, fd.JSONName())
				}
			}
			vs.add(r.path("enabled"), "enabled=false disables "+p.title+" and must be the only field set; also set: "+strings.Join(others, ", "))
		}
	}
	if len(vs) > 0 {
		return nil, invalidArgument(groupID, p.atlas, reasonInvalid, vs)
	}
	return r, nil
}

// namesSet spells the fields of modes that the request sets.
func (r *request) namesSet(modes [][]protoreflect.Name) string {
	var names []string
	for _, m := range modes {
		for _, n := range m {
			if r.has(n) {
				names = append(names, r.jsonName(n))
			}
		}
	}
	return strings.Join(names, ", ")
}

// needsState reports whether the rules can judge r only against the
// provider's current state in Atlas: a partial document is allowed only for
// an enabled provider, and Google Cloud KMS refuses a serviceAccountKey once
// it uses a role.
func (r *request) needsState() bool {
	if r.disable {
		return false
	}
	return !r.whole() || (r.provider == googleCloudKMS && r.has("service_account_key"))
}

// checkState applies the rules that need the provider's current state in
// Atlas: a provider that is not enabled needs its whole document, and Google
// Cloud KMS refuses a serviceAccountKey once it uses a role.
func (r *request) checkState(current *atlas.EncryptionAtRest) error {
	if r.disable {
		return nil
	}
	var vs violations
	reason := reasonInvalid
	if !providerEnabled(current, r.provider) {
		if vs = r.missingToEnable(); len(vs) > 0 {
			reason = reasonMissing
		}
	} else if !staticCredentials(current, r.provider) {
		// Switching an enabled provider to static credentials needs all of
		// them: Atlas has none of that mode to keep.
		for _, mode := range r.provider.authModes {
			if len(mode) < 2 || !slices.ContainsFunc(mode, r.has) {
				continue
			}
			for _, name := range mode {
				if !r.has(name) {
					vs.add(r.path(name), "required to switch "+r.provider.title+" to static credentials ("+r.jsonName(name)+"): it uses a role now")
					reason = reasonMissing
				}
			}
		}
	}
	if r.provider == googleCloudKMS && r.has("service_account_key") {
		if g := current.GoogleCloudKMS; g != nil && g.RoleID != nil && *g.RoleID != "" {
			vs.add(r.path("service_account_key"), "serviceAccountKey cannot be set: this project's Google Cloud KMS uses roleId, and Atlas refuses static credentials once a role is configured")
		}
	}
	if len(vs) > 0 {
		return invalidArgument(r.groupID, r.provider.atlas, reason, vs)
	}
	return nil
}

// staticCredentials reports whether Atlas shows p configured with static
// credentials of more than one field (an AWS access key, an Azure
// application). Secrets are never shown, so their non-secret halves tell.
func staticCredentials(current *atlas.EncryptionAtRest, p *provider) bool {
	switch p {
	case awsKMS:
		return current.AWSKMS != nil && current.AWSKMS.AccessKeyID != nil
	case azureKeyVault:
		return current.AzureKeyVault != nil && current.AzureKeyVault.ClientID != nil
	}
	return false
}

// checkGroupID adds a violation unless id is an Atlas project id.
func checkGroupID(vs *violations, id string) {
	if !hex24.MatchString(id) {
		vs.add("group_id", "groupId must be the Atlas project id: 24 lowercase hexadecimal characters")
	}
}

// providerOf returns the provider a config sets, and its message.
func providerOf(cfg *encryptionv1.ProviderConfig) (*provider, protoreflect.Message) {
	switch p := cfg.GetProvider().(type) {
	case *encryptionv1.ProviderConfig_AwsKms:
		if p.AwsKms != nil {
			return awsKMS, p.AwsKms.ProtoReflect()
		}
	case *encryptionv1.ProviderConfig_AzureKeyVault:
		if p.AzureKeyVault != nil {
			return azureKeyVault, p.AzureKeyVault.ProtoReflect()
		}
	case *encryptionv1.ProviderConfig_GoogleCloudKms:
		if p.GoogleCloudKms != nil {
			return googleCloudKMS, p.GoogleCloudKms.ProtoReflect()
		}
	}
	return nil, nil
}

// providerEnabled reports whether Atlas says p is enabled.
func providerEnabled(current *atlas.EncryptionAtRest, p *provider) bool {
	var enabled *bool
	switch p {
	case awsKMS:
		if current.AWSKMS != nil {
			enabled = current.AWSKMS.Enabled
		}
	case azureKeyVault:
		if current.AzureKeyVault != nil {
			enabled = current.AzureKeyVault.Enabled
		}
	case googleCloudKMS:
		if current.GoogleCloudKMS != nil {
			enabled = current.GoogleCloudKMS.Enabled
		}
	}
	return enabled != nil && *enabled
}
