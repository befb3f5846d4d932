package server

import (
	"encoding/json"
	"fmt"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"strings"

	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/encryptiond/encryptiond/atlas"
	encryptionv1 "github.com/encryptiond/encryptiond/gen/atlas/encryption/v1"
	"github.com/encryptiond/encryptiond/server/failure"
)

// This file is the provider table: everything the service knows about each
// key provider, in one entry per provider. Nothing outside this file names a
// provider or a field of one provider (the fields every provider has,
// enabled and role_id, are named where a shared rule needs them); the
// rules (rules.go) and the translations (translate.go) read the entries.
//
// Adding a field to a provider means adding it to the .proto (request and
// state messages, with Atlas's JSON name), regenerating, and adding its
// entry to the provider's fields below. Translation between the API's
// messages and Atlas's wire types goes by JSON name, so the Atlas wire type
// (package atlas) must carry the field too; TestProviderTable fails, naming
// the field, when any of these is missing.

// provider is one key provider.
type provider struct {
	// Names.
	field protoreflect.Name // member of ProviderConfig's oneof and field of EncryptionAtRest: "aws_kms"
	atlas string            // Atlas's JSON name: "awsKms"
	title string            // for people: "AWS KMS"

	// request is the provider's message in ProviderConfig (the change a
	// request carries); state is its message in EncryptionAtRest (what
	// Atlas reports).
	request, state protoreflect.MessageDescriptor

	// fields holds every field of the request message with its rules.
	fields map[protoreflect.Name]fieldRule
	// required are the fields, besides enabled, that enabling needs.
	required []protoreflect.Name
	// authModes are the alternative sets of credential fields; enabling
	// needs one of them whole, and a request never mixes them.
	authModes [][]protoreflect.Name
	// special are the provider's own rules beyond the shared ones.
	special []specialRule
	// writeOnly are state fields that Atlas (API v2) accepts but never
	// returns, besides the secrets: the configuration a validate-only
	// request predicts leaves them out.
	writeOnly []protoreflect.Name

	// cloud is the provider's cloud. Its value name is Atlas's name of it
	// in the paths of private endpoints, in an endpoint's cloudProvider and
	// in a cluster's encryptionAtRestProvider: "AWS", "AZURE", "GCP".
	cloud encryptionv1.CloudProvider
	// endpointRegions are the regions Atlas offers private endpoints in for
	// the provider (an endpoint's regionName), from Atlas's schema; nil when
	// Atlas offers the provider no private endpoints.
	endpointRegions []string

	// wire is how the provider's documents map onto Atlas's wire types;
	// bindWire fills it from the descriptors and struct tags (mustBind).
	wire wireBinding
}

// fieldRule is what the service knows of one request field.
type fieldRule struct {
	// check is the field's format rule; nil for fields without one
	// (booleans).
	check fieldCheck
	// secret marks a write-only secret: never returned, logged or echoed.
	// The proto marks the same fields debug_redact; TestProviderTable
	// checks that the two agree.
	secret bool
}

// specialRule is a rule of one provider alone, checked against Atlas's
// current state when a request triggers it. (README rule 7 lists them.)
type specialRule struct {
	// fields are the request fields the rule is about.
	fields []protoreflect.Name
	// applies reports whether the request needs the rule checked.
	applies func(r *request) bool
	// endpoints marks a rule that judges the request against the
	// provider's private endpoints too: they are listed (state.endpoints)
	// only when such a rule applies.
	endpoints bool
	// check adds a violation when the state forbids the request.
	check func(r *request, st *state, vs *violations)
}

var (
	awsKMS = &provider{
		field:   "aws_kms",
		atlas:   "awsKms",
		title:   "AWS KMS",
		request: (*encryptionv1.AwsKms)(nil).ProtoReflect().Descriptor(),
		state:   (*encryptionv1.AwsKmsState)(nil).ProtoReflect().Descriptor(),
		fields: map[protoreflect.Name]fieldRule{
			"enabled":                    {},
			"access_key_id":              {check: length(16, 128)},
			"secret_access_key":          {check: length(1, 1024), secret: true},
			"customer_master_key_id":     {check: length(1, 2048)}, // a key id, an ARN or an alias: not second-guessed
			"region":                     {check: oneOf(atlas.AWSRegions())},
			"role_id":                    {check: roleIDCheck},
			"require_private_networking": {},
		},
		required:        []protoreflect.Name{"customer_master_key_id", "region"},
		authModes:       [][]protoreflect.Name{{"role_id"}, {"access_key_id", "secret_access_key"}},
		writeOnly:       []protoreflect.Name{"role_id"},
		cloud:           encryptionv1.CloudProvider_AWS,
		endpointRegions: atlas.AWSRegions(),
	}
	azureKeyVault = &provider{
		field:   "azure_key_vault",
		atlas:   "azureKeyVault",
		title:   "Azure Key Vault",
		request: (*encryptionv1.AzureKeyVault)(nil).ProtoReflect().Descriptor(),
		state:   (*encryptionv1.AzureKeyVaultState)(nil).ProtoReflect().Descriptor(),
		fields: map[protoreflect.Name]fieldRule{
			"enabled":                    {},
			"azure_environment":          {check: oneOf(atlas.AzureEnvironments())},
			"client_id":                  {check: uuidCheck},
			"key_identifier":             {check: keyURL},
			"key_vault_name":             {check: length(1, 1024)},
			"resource_group_name":        {check: length(1, 1024)},
			"role_id":                    {check: roleIDCheck},
			"secret":                     {check: length(1, 4096), secret: true},
			"subscription_id":            {check: uuidCheck},
			"tenant_id":                  {check: uuidCheck},
			"require_private_networking": {},
		},
		required:  []protoreflect.Name{"azure_environment", "subscription_id", "resource_group_name", "key_vault_name", "key_identifier"},
		authModes: [][]protoreflect.Name{{"role_id"}, {"client_id", "tenant_id", "secret"}},
		special: []specialRule{
			// Atlas refuses to move the key vault while private endpoints
			// lead to it.
			fixedWhileEndpoints("key_vault_name", "resource_group_name", "subscription_id"),
		},
		cloud:           encryptionv1.CloudProvider_AZURE,
		endpointRegions: atlas.AzureRegions(),
	}
	googleCloudKMS = &provider{
		field:   "google_cloud_kms",
		atlas:   "googleCloudKms",
		title:   "Google Cloud KMS",
		request: (*encryptionv1.GoogleCloudKms)(nil).ProtoReflect().Descriptor(),
		state:   (*encryptionv1.GoogleCloudKmsState)(nil).ProtoReflect().Descriptor(),
		fields: map[protoreflect.Name]fieldRule{
			"enabled":                 {},
			"key_version_resource_id": {check: matches(gcpKeyVersion, "must be shaped projects/<project>/locations/<location>/keyRings/<ring>/cryptoKeys/<key>/cryptoKeyVersions/<version>")},
			"service_account_key":     {check: jsonObject, secret: true},
			"role_id":                 {check: roleIDCheck},
		},
		required:  []protoreflect.Name{"key_version_resource_id"},
		authModes: [][]protoreflect.Name{{"role_id"}, {"service_account_key"}},
		special: []specialRule{
			// Atlas refuses a serviceAccountKey once the provider uses a
			// role: the switch to a role is one-way.
			oneWay("role_id", "service_account_key",
				"serviceAccountKey cannot be set: this project's Google Cloud KMS uses roleId, and Atlas refuses static credentials once a role is configured"),
		},
		cloud: encryptionv1.CloudProvider_GCP, // and no endpointRegions: Atlas offers it no private endpoints
	}

	// providers lists every provider, in ProviderConfig's field order.
	providers = mustBind(awsKMS, azureKeyVault, googleCloudKMS)
)

// mustBind binds each provider's messages to Atlas's wire types (see
// bindWire) and returns the providers. A provider field that the wire type
// lacks is a programming error, found by every test of this package.
func mustBind(ps ...*provider) []*provider {
	for _, p := range ps {
		w, err := bindWire(p)
		if err != nil {
			panic("server: provider " + p.atlas + ": " + err.Error())
		}
		p.wire = w
	}
	return ps
}

// providerConfig and encryptionAtRest are the messages that hold one field
// per provider.
var (
	providerConfig   = (*encryptionv1.ProviderConfig)(nil).ProtoReflect().Descriptor()
	encryptionAtRest = (*encryptionv1.EncryptionAtRest)(nil).ProtoReflect().Descriptor()
)

// oneWay is the special rule "once current shows the field configured,
// refused may not be set".
func oneWay(configured, refused protoreflect.Name, description string) specialRule {
	return specialRule{
		fields:  []protoreflect.Name{configured, refused},
		applies: func(r *request) bool { return r.has(refused) },
		check: func(r *request, st *state, vs *violations) {
			if r.provider.shows(st.config, configured) {
				vs.add(r.path(refused), description)
			}
		},
	}
}

// maxNamedEndpoints bounds how many endpoint ids a refusal names.
const maxNamedEndpoints = 5

// fixedWhileEndpoints is the special rule "while the project has private
// endpoints of the provider that are not DELETING, the fields cannot
// change": a partial document that sets one to a value other than the one
// Atlas shows gets a violation per such field. (A whole document is sent as
// it is, whatever the state: Atlas judges it.)
func fixedWhileEndpoints(names ...protoreflect.Name) specialRule {
	return specialRule{
		fields:    names,
		endpoints: true,
		applies:   func(r *request) bool { return !r.whole() && slices.ContainsFunc(names, r.has) },
		check: func(r *request, st *state, vs *violations) {
			var ids []string
			for _, ep := range st.endpoints {
				if ep.Status != atlas.EndpointDeleting {
					ids = append(ids, ep.ID)
				}
			}
			if len(ids) == 0 {
				return
			}
			named := strings.Join(ids[:min(len(ids), maxNamedEndpoints)], ", ")
			if len(ids) > maxNamedEndpoints {
				named += fmt.Sprintf(" and %d more", len(ids)-maxNamedEndpoints)
			}
			p := r.provider
			for _, name := range names {
				fd := p.request.Fields().ByName(name)
				current, shown := p.wire.get(st.config, fd.JSONName())
				if !r.has(name) || !shown || current.String() == r.msg.Get(fd).String() {
					continue
				}
				vs.add(r.path(name), fmt.Sprintf("%s cannot change while the project has %s private endpoints (%s): Atlas refuses it; delete them first, or keep the current value",
					fd.JSONName(), p.title, named))
			}
		},
	}
}

// providerOf returns the provider a config sets, and its message; nil if it
// sets none.
func providerOf(cfg *encryptionv1.ProviderConfig) (*provider, protoreflect.Message) {
	m := cfg.ProtoReflect()
	fd := m.WhichOneof(providerConfig.Oneofs().ByName("provider"))
	if fd == nil {
		return nil, nil
	}
	for _, p := range providers {
		if p.field == fd.Name() {
			return p, m.Get(fd).Message()
		}
	}
	return nil, nil
}

// providerByCloud returns the provider whose cloud is c, or nil.
func providerByCloud(c encryptionv1.CloudProvider) *provider {
	for _, p := range providers {
		if p.cloud == c {
			return p
		}
	}
	return nil
}

// hasEndpoints reports whether Atlas offers the provider private
// endpoints.
func (p *provider) hasEndpoints() bool { return p.endpointRegions != nil }

// providerByAtlasName returns the provider Atlas calls name, or nil.
func providerByAtlasName(name string) *provider {
	for _, p := range providers {
		if p.atlas == name {
			return p
		}
	}
	return nil
}

// jsonName returns Atlas's name of a request field, e.g. customerMasterKeyID.
func (p *provider) jsonName(name protoreflect.Name) string {
	return p.request.Fields().ByName(name).JSONName()
}

// enabled reports whether Atlas says the provider is enabled.
func (p *provider) enabled(current *atlas.EncryptionAtRest) bool {
	return p.wire.flag(current, "enabled")
}

// valid reports Atlas's valid flag of the provider.
func (p *provider) valid(current *atlas.EncryptionAtRest) bool {
	return p.wire.flag(current, "valid")
}

// shows reports whether Atlas shows the request field configured: set, and
// not an empty string.
func (p *provider) shows(current *atlas.EncryptionAtRest, name protoreflect.Name) bool {
	v, ok := p.wire.get(current, p.jsonName(name))
	return ok && (v.Kind() != reflect.String || v.String() != "")
}

// staticCredentials reports whether Atlas shows the provider configured
// with static credentials of more than one field (an AWS access key, an
// Azure application). Secrets are never shown, so the non-secret fields of
// those modes tell.
func (p *provider) staticCredentials(current *atlas.EncryptionAtRest) bool {
	for _, mode := range p.authModes {
		if len(mode) < 2 {
			continue
		}
		for _, name := range mode {
			if !p.fields[name].secret && p.shows(current, name) {
				return true
			}
		}
	}
	return false
}

// IsAtlasID reports whether s is an Atlas object id (a project's, a Cloud
// Provider Access role's, a private endpoint's): 24 lowercase hexadecimal
// characters.
func IsAtlasID(s string) bool {
	if len(s) != 24 {
		return false
	}
	for i := range len(s) {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// fieldCheck returns what is wrong with a value, or "". The description
// never quotes the value: it may be a secret.
type fieldCheck func(string) string

var (
	uuid          = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	gcpKeyVersion = regexp.MustCompile(`^projects/[^/]+/locations/[^/]+/keyRings/[^/]+/cryptoKeys/[^/]+/cryptoKeyVersions/[^/]+$`)

	uuidCheck = matches(uuid, "must be a UUID")
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
		if slices.Contains(values, v) {
			return ""
		}
		problem := "must be one of " + strings.Join(values, ", ")
		// A near miss ("us-east-1") gets the value meant, which is one of
		// Atlas's, never the caller's.
		if want, ok := failure.Suggest(v, values); ok {
			return problem + "; did you mean " + want + "?"
		}
		return problem
	}
}

// roleIDCheck checks a Cloud Provider Access role id, and tells apart the
// AWS IAM role ARN people often send in its place.
func roleIDCheck(v string) string {
	if IsAtlasID(v) {
		return ""
	}
	if strings.HasPrefix(v, "arn:") {
		return "must be the Atlas Cloud Provider Access role id, 24 lowercase hexadecimal characters (Atlas › Cloud Provider Access, or atlas cloudProviders accessRoles list), not an AWS IAM role ARN"
	}
	return "must be the Atlas Cloud Provider Access role id: 24 lowercase hexadecimal characters"
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
