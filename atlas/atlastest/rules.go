package atlastest

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/encryptiond/encryptiond/atlas"
)

// This file holds Atlas's rules for the encryptionAtRest resource, as
// Atlas documents them (its Administration API reference for
// encryptionAtRest, and the behaviour of its official clients):
//
//  1. A provider that is not enabled must be sent whole for one auth mode.
//  2. An enabled provider takes only the changed fields, merged in.
//  3. {"enabled": false} alone disables a provider and removes its
//     configuration; 409 CANNOT_DISABLE_ENCRYPTION_AT_REST while clusters use it.
//  4. Secrets are write-only, and so is awsKms.roleId in v2.
//
// A PATCH is all or nothing: every provider document is checked before any
// is applied. Errors are reported in this order: INVALID_JSON, then per
// provider (awsKms, azureKeyVault, googleCloudKms) INVALID_ATTRIBUTE
// (unknown field, wrong type, bad format), INVALID_ENUM_VALUE and
// MISSING_ATTRIBUTE, and only then a 409. Error details name fields, never
// the values sent.
//
// Choices where Atlas's behaviour is unconfirmed: an empty provider document
// {} changes nothing (the deprecated official client sent one for every
// provider); "enabled": false together with other fields is refused with
// INVALID_ATTRIBUTE; switching auth mode (e.g. sending roleId to a provider
// configured with static credentials) drops the old mode's credentials; a
// read-only "valid" in a request is ignored.

var (
	hex24Pattern  = regexp.MustCompile(`^[a-f0-9]{24}$`) // role and group ids
	uuidPattern   = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	gcpKeyPattern = regexp.MustCompile(`^projects/[^/]+/locations/[^/]+/keyRings/[^/]+/cryptoKeys/[^/]+/cryptoKeyVersions/[^/]+$`)
)

// The JSON fields each document accepts.
var (
	topFields   = []string{"awsKms", "azureKeyVault", "googleCloudKms", "enabledForSearchNodes"}
	awsFields   = []string{"enabled", "accessKeyID", "secretAccessKey", "customerMasterKeyID", "region", "roleId", "requirePrivateNetworking", "valid"}
	azureFields = []string{"enabled", "azureEnvironment", "clientID", "keyIdentifier", "keyVaultName", "resourceGroupName", "roleId", "secret", "subscriptionID", "tenantID", "requirePrivateNetworking", "valid"}
	gcpFields   = []string{"enabled", "keyVersionResourceID", "roleId", "serviceAccountKey", "valid"}
)

func knownProvider(p string) bool {
	return p == ProviderAWS || p == ProviderAzure || p == ProviderGCP
}

// group is one project's state. Provider configurations are stored with
// their secrets; view strips them.
type group struct {
	exists      bool
	name        string // for the projects list; "" for a made-up one
	aws         *atlas.AWSKMSConfiguration
	azure       *atlas.AzureKeyVault
	gcp         *atlas.GoogleCloudKMS
	searchNodes bool
	invalid     map[string]bool // provider → key marked invalid
	clusters    []Cluster
}

func newGroup() *group {
	return &group{invalid: map[string]bool{}}
}

// errorBody is an Atlas ApiError answer with status, errorCode and detail,
// naming the rejected fields if any. Its parameters are always an empty
// array: the spec types their items as objects, and the emulator has
// nothing to put there that would not echo request values.
func errorBody(status int, code, detail string, fields ...atlas.FieldViolation) *atlas.ErrorBody {
	b := &atlas.ErrorBody{
		Error:      status,
		ErrorCode:  code,
		Detail:     detail,
		Reason:     http.StatusText(status),
		Parameters: []any{},
	}
	if len(fields) > 0 {
		b.BadRequestDetail = &atlas.BadRequestDetail{Fields: fields}
	}
	return b
}

func invalidJSON() *atlas.ErrorBody {
	return errorBody(http.StatusBadRequest, "INVALID_JSON", "Received JSON is malformed.")
}

func invalidAttribute(fields ...atlas.FieldViolation) *atlas.ErrorBody {
	return errorBody(http.StatusBadRequest, "INVALID_ATTRIBUTE", "Invalid attribute "+fields[0].Field+" specified.", fields...)
}

func invalidEnum(field string) *atlas.ErrorBody {
	return errorBody(http.StatusBadRequest, "INVALID_ENUM_VALUE", "An invalid enumeration value was specified for "+field+".", atlas.FieldViolation{Field: field, Description: "not one of the allowed values"})
}

func missingAttributes(fields []atlas.FieldViolation) *atlas.ErrorBody {
	return errorBody(http.StatusBadRequest, "MISSING_ATTRIBUTE", "The required attribute "+fields[0].Field+" was not specified.", fields...)
}

func cannotDisable(provider string) *atlas.ErrorBody {
	return errorBody(http.StatusConflict, "CANNOT_DISABLE_ENCRYPTION_AT_REST", "Cannot disable encryption at rest for "+provider+" while clusters use it; set their encryption provider to NONE first.")
}

// patch applies a PATCH body to g, or changes nothing and returns why not.
// usable says whether a Cloud Provider Access role can be assumed yet.
func (g *group) patch(body []byte, usable func(roleID string) bool) *atlas.ErrorBody {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil || top == nil {
		return invalidJSON()
	}
	if bad := unknownFields("", top, topFields); len(bad) > 0 {
		return invalidAttribute(bad...)
	}
	var conflict *atlas.ErrorBody
	keep := func(aerr *atlas.ErrorBody) *atlas.ErrorBody { // remember a 409, report a 400 now
		if aerr != nil && aerr.Error == http.StatusConflict {
			if conflict == nil {
				conflict = aerr
			}
			return nil
		}
		return aerr
	}
	aws, azure, gcp, searchNodes := g.aws, g.azure, g.gcp, g.searchNodes
	var aerr *atlas.ErrorBody
	if aws, aerr = patchDoc(top, ProviderAWS, awsFields, aws, g.inUse(ProviderAWS), patchAWS); keep(aerr) != nil {
		return aerr
	}
	if azure, aerr = patchDoc(top, ProviderAzure, azureFields, azure, g.inUse(ProviderAzure), patchAzure); keep(aerr) != nil {
		return aerr
	}
	if gcp, aerr = patchDoc(top, ProviderGCP, gcpFields, gcp, g.inUse(ProviderGCP), patchGCP); keep(aerr) != nil {
		return aerr
	}
	if raw, ok := present(top, "enabledForSearchNodes"); ok {
		if err := json.Unmarshal(raw, &searchNodes); err != nil {
			return invalidAttribute(atlas.FieldViolation{Field: "enabledForSearchNodes", Description: "must be a boolean"})
		}
	}
	if conflict != nil {
		return conflict
	}
	// Only a document that passed every other rule reaches the KMS, with
	// the role it newly names.
	for _, r := range []struct {
		provider  string
		next, cur *string
	}{
		{ProviderAWS, fieldOf(aws, func(c *atlas.AWSKMSConfiguration) *string { return c.RoleID }), fieldOf(g.aws, func(c *atlas.AWSKMSConfiguration) *string { return c.RoleID })},
		{ProviderAzure, fieldOf(azure, func(c *atlas.AzureKeyVault) *string { return c.RoleID }), fieldOf(g.azure, func(c *atlas.AzureKeyVault) *string { return c.RoleID })},
		{ProviderGCP, fieldOf(gcp, func(c *atlas.GoogleCloudKMS) *string { return c.RoleID }), fieldOf(g.gcp, func(c *atlas.GoogleCloudKMS) *string { return c.RoleID })},
	} {
		if r.next != nil && (r.cur == nil || *r.cur != *r.next) && !usable(*r.next) {
			return cannotAssumeRole(r.provider)
		}
	}
	g.aws, g.azure, g.gcp, g.searchNodes = aws, azure, gcp, searchNodes
	return nil
}

// present returns the raw value of key unless it is absent or null.
// patchDoc applies the provider document name of a PATCH body, if the body
// has one, to cur with apply; it returns cur unchanged otherwise.
func patchDoc[T any](top map[string]json.RawMessage, name string, allowed []string, cur *T, inUse bool,
	apply func(cur, u *T, inUse bool) (*T, *atlas.ErrorBody)) (*T, *atlas.ErrorBody) {
	raw, ok := present(top, name)
	if !ok {
		return cur, nil
	}
	var u T
	if aerr := decodeDoc(name, raw, allowed, &u); aerr != nil {
		return cur, aerr
	}
	return apply(cur, &u, inUse)
}

func present(m map[string]json.RawMessage, key string) (json.RawMessage, bool) {
	raw, ok := m[key]
	if !ok || string(raw) == "null" {
		return nil, false
	}
	return raw, true
}

// unknownFields lists the keys of m not in allowed, sorted.
func unknownFields(prefix string, m map[string]json.RawMessage, allowed []string) []atlas.FieldViolation {
	var bad []atlas.FieldViolation
	for k := range m {
		if !slices.Contains(allowed, k) {
			name := k
			if len(name) > 64 {
				name = name[:64] + "…"
			}
			bad = append(bad, atlas.FieldViolation{Field: prefix + name, Description: "unknown field"})
		}
	}
	sort.Slice(bad, func(i, j int) bool { return bad[i].Field < bad[j].Field })
	return bad
}

// decodeDoc decodes one provider document into dst, refusing unknown fields
// and wrongly typed values.
func decodeDoc(name string, raw json.RawMessage, allowed []string, dst any) *atlas.ErrorBody {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return invalidAttribute(atlas.FieldViolation{Field: name, Description: "must be an object"})
	}
	if bad := unknownFields(name+".", m, allowed); len(bad) > 0 {
		return invalidAttribute(bad...)
	}
	if err := json.Unmarshal(raw, dst); err != nil {
		field := name
		if te := (*json.UnmarshalTypeError)(nil); errors.As(err, &te) && te.Field != "" {
			field = name + "." + te.Field
		}
		return invalidAttribute(atlas.FieldViolation{Field: field, Description: "has the wrong type"})
	}
	return nil
}

// checks collects field violations of one document.
type checks struct {
	prefix string
	bad    []atlas.FieldViolation
}

func (c *checks) add(field, desc string) {
	c.bad = append(c.bad, atlas.FieldViolation{Field: c.prefix + field, Description: desc})
}

func (c *checks) nonEmpty(field string, v *string) {
	if v != nil && *v == "" {
		c.add(field, "must not be empty")
	}
}

func (c *checks) match(field string, v *string, re *regexp.Regexp, desc string) {
	if v != nil && !re.MatchString(*v) {
		c.add(field, desc)
	}
}

func (c *checks) length(field string, v *string, lo, hi int) {
	if v != nil && (len(*v) < lo || len(*v) > hi) {
		c.add(field, "length out of range")
	}
}

func (c *checks) require(field string, set bool, desc string) {
	if !set {
		c.add(field, desc)
	}
}

// disabling reports whether a document asks to disable its provider, and
// whether it wrongly carries other fields besides.
func disabling(enabled *bool, others ...bool) (disable, extra bool) {
	if enabled == nil || *enabled {
		return false, false
	}
	return true, slices.Contains(others, true)
}

// disable applies rule 3 to a provider currently configured as cur.
func disable[T any](provider string, cur *T, extra, inUse bool) (*T, *atlas.ErrorBody) {
	switch {
	case extra:
		return cur, invalidAttribute(atlas.FieldViolation{Field: provider + ".enabled",
			Description: "to disable a provider send only enabled: false"})
	case cur == nil:
		return nil, nil
	case inUse:
		return cur, cannotDisable(provider)
	}
	return nil, nil
}

func patchAWS(cur, u *atlas.AWSKMSConfiguration, inUse bool) (*atlas.AWSKMSConfiguration, *atlas.ErrorBody) {
	if u.Region != nil && !slices.Contains(atlas.AWSRegions(), *u.Region) {
		return cur, invalidEnum(ProviderAWS + ".region")
	}
	c := checks{prefix: ProviderAWS + "."}
	c.length("customerMasterKeyID", u.CustomerMasterKeyID, 1, 2048)
	c.length("accessKeyID", u.AccessKeyID, 16, 128)
	c.nonEmpty("secretAccessKey", u.SecretAccessKey)
	c.match("roleId", u.RoleID, hex24Pattern, "must be 24 hexadecimal characters")
	if len(c.bad) > 0 {
		return cur, invalidAttribute(c.bad...)
	}
	set := []bool{u.AccessKeyID != nil, u.SecretAccessKey != nil, u.CustomerMasterKeyID != nil,
		u.Region != nil, u.RoleID != nil, u.RequirePrivateNetworking != nil}
	if off, extra := disabling(u.Enabled, set...); off {
		return disable(ProviderAWS, cur, extra, inUse)
	}
	if u.Enabled == nil && !slices.Contains(set, true) {
		return cur, nil // {} or {"valid": …}: nothing to change
	}
	m := atlas.AWSKMSConfiguration{}
	if cur != nil {
		m = *cur
	}
	staticCreds := u.AccessKeyID != nil || u.SecretAccessKey != nil
	if u.RoleID != nil && !staticCreds {
		m.AccessKeyID, m.SecretAccessKey = nil, nil
	}
	if staticCreds && u.RoleID == nil {
		m.RoleID = nil
	}
	overlay(&m.Enabled, u.Enabled)
	overlay(&m.AccessKeyID, u.AccessKeyID)
	overlay(&m.SecretAccessKey, u.SecretAccessKey)
	overlay(&m.CustomerMasterKeyID, u.CustomerMasterKeyID)
	overlay(&m.Region, u.Region)
	overlay(&m.RoleID, u.RoleID)
	overlay(&m.RequirePrivateNetworking, u.RequirePrivateNetworking)
	m.Valid = nil
	need := checks{prefix: ProviderAWS + "."}
	need.require("enabled", m.Enabled != nil, "required to enable the provider")
	need.require("customerMasterKeyID", m.CustomerMasterKeyID != nil, "required")
	need.require("region", m.Region != nil, "required")
	if m.RoleID == nil {
		switch {
		case m.AccessKeyID == nil && m.SecretAccessKey == nil:
			need.add("roleId", "required unless accessKeyID and secretAccessKey are given")
		default:
			need.require("accessKeyID", m.AccessKeyID != nil, "required with secretAccessKey")
			need.require("secretAccessKey", m.SecretAccessKey != nil, "required with accessKeyID")
		}
	}
	if len(need.bad) > 0 {
		return cur, missingAttributes(need.bad)
	}
	return &m, nil
}

func patchAzure(cur, u *atlas.AzureKeyVault, inUse bool) (*atlas.AzureKeyVault, *atlas.ErrorBody) {
	if u.AzureEnvironment != nil && !slices.Contains(atlas.AzureEnvironments(), *u.AzureEnvironment) {
		return cur, invalidEnum(ProviderAzure + ".azureEnvironment")
	}
	if u.KeyIdentifier != nil && !validKeyIdentifier(*u.KeyIdentifier) {
		return cur, errorBody(http.StatusBadRequest, "AZURE_KEY_VAULT_KEY_IDENTIFIER_INVALID_FORMAT", "The Azure Key Vault key identifier is not in the expected format https://<vault>/keys/<name>/<version>.", atlas.FieldViolation{Field: ProviderAzure + ".keyIdentifier", Description: "invalid format"})
	}
	c := checks{prefix: ProviderAzure + "."}
	c.match("subscriptionID", u.SubscriptionID, uuidPattern, "must be a UUID")
	c.match("tenantID", u.TenantID, uuidPattern, "must be a UUID")
	c.match("clientID", u.ClientID, uuidPattern, "must be a UUID")
	c.match("roleId", u.RoleID, hex24Pattern, "must be 24 hexadecimal characters")
	c.nonEmpty("keyVaultName", u.KeyVaultName)
	c.nonEmpty("resourceGroupName", u.ResourceGroupName)
	c.nonEmpty("secret", u.Secret)
	if len(c.bad) > 0 {
		return cur, invalidAttribute(c.bad...)
	}
	set := []bool{u.AzureEnvironment != nil, u.ClientID != nil, u.KeyIdentifier != nil, u.KeyVaultName != nil,
		u.ResourceGroupName != nil, u.RoleID != nil, u.Secret != nil, u.SubscriptionID != nil,
		u.TenantID != nil, u.RequirePrivateNetworking != nil}
	if off, extra := disabling(u.Enabled, set...); off {
		return disable(ProviderAzure, cur, extra, inUse)
	}
	if u.Enabled == nil && !slices.Contains(set, true) {
		return cur, nil
	}
	m := atlas.AzureKeyVault{}
	if cur != nil {
		m = *cur
	}
	appCreds := u.ClientID != nil || u.TenantID != nil || u.Secret != nil
	if u.RoleID != nil && !appCreds {
		m.ClientID, m.TenantID, m.Secret = nil, nil, nil
	}
	if appCreds && u.RoleID == nil {
		m.RoleID = nil
	}
	overlay(&m.Enabled, u.Enabled)
	overlay(&m.AzureEnvironment, u.AzureEnvironment)
	overlay(&m.ClientID, u.ClientID)
	overlay(&m.KeyIdentifier, u.KeyIdentifier)
	overlay(&m.KeyVaultName, u.KeyVaultName)
	overlay(&m.ResourceGroupName, u.ResourceGroupName)
	overlay(&m.RoleID, u.RoleID)
	overlay(&m.Secret, u.Secret)
	overlay(&m.SubscriptionID, u.SubscriptionID)
	overlay(&m.TenantID, u.TenantID)
	overlay(&m.RequirePrivateNetworking, u.RequirePrivateNetworking)
	m.Valid = nil
	need := checks{prefix: ProviderAzure + "."}
	need.require("enabled", m.Enabled != nil, "required to enable the provider")
	need.require("azureEnvironment", m.AzureEnvironment != nil, "required")
	need.require("subscriptionID", m.SubscriptionID != nil, "required")
	need.require("resourceGroupName", m.ResourceGroupName != nil, "required")
	need.require("keyVaultName", m.KeyVaultName != nil, "required")
	need.require("keyIdentifier", m.KeyIdentifier != nil, "required")
	if m.RoleID == nil {
		if m.ClientID == nil && m.TenantID == nil && m.Secret == nil {
			need.add("roleId", "required unless clientID, tenantID and secret are given")
		} else {
			need.require("clientID", m.ClientID != nil, "required with tenantID and secret")
			need.require("tenantID", m.TenantID != nil, "required with clientID and secret")
			need.require("secret", m.Secret != nil, "required with clientID and tenantID")
		}
	}
	if len(need.bad) > 0 {
		return cur, missingAttributes(need.bad)
	}
	return &m, nil
}

func patchGCP(cur, u *atlas.GoogleCloudKMS, inUse bool) (*atlas.GoogleCloudKMS, *atlas.ErrorBody) {
	c := checks{prefix: ProviderGCP + "."}
	c.match("keyVersionResourceID", u.KeyVersionResourceID, gcpKeyPattern,
		"must be projects/<p>/locations/<l>/keyRings/<r>/cryptoKeys/<k>/cryptoKeyVersions/<n>")
	c.match("roleId", u.RoleID, hex24Pattern, "must be 24 hexadecimal characters")
	if u.ServiceAccountKey != nil && !isJSONObject(*u.ServiceAccountKey) {
		c.add("serviceAccountKey", "must be the service account's JSON key, as a string")
	}
	if len(c.bad) > 0 {
		return cur, invalidAttribute(c.bad...)
	}
	set := []bool{u.KeyVersionResourceID != nil, u.RoleID != nil, u.ServiceAccountKey != nil}
	if off, extra := disabling(u.Enabled, set...); off {
		return disable(ProviderGCP, cur, extra, inUse)
	}
	if u.Enabled == nil && !slices.Contains(set, true) {
		return cur, nil
	}
	if u.ServiceAccountKey != nil && (u.RoleID != nil || cur != nil && cur.RoleID != nil) {
		return cur, invalidAttribute(atlas.FieldViolation{Field: ProviderGCP + ".serviceAccountKey",
			Description: "not supported once roleId is configured"})
	}
	m := atlas.GoogleCloudKMS{}
	if cur != nil {
		m = *cur
	}
	if u.RoleID != nil {
		m.ServiceAccountKey = nil
	}
	overlay(&m.Enabled, u.Enabled)
	overlay(&m.KeyVersionResourceID, u.KeyVersionResourceID)
	overlay(&m.RoleID, u.RoleID)
	overlay(&m.ServiceAccountKey, u.ServiceAccountKey)
	m.Valid = nil
	need := checks{prefix: ProviderGCP + "."}
	need.require("enabled", m.Enabled != nil, "required to enable the provider")
	need.require("keyVersionResourceID", m.KeyVersionResourceID != nil, "required")
	if m.RoleID == nil && m.ServiceAccountKey == nil {
		need.add("serviceAccountKey", "required unless roleId is given")
	}
	if len(need.bad) > 0 {
		return cur, missingAttributes(need.bad)
	}
	return &m, nil
}

// overlay copies a set update field over the merged value.
func overlay[T any](dst **T, src *T) {
	if src != nil {
		v := *src
		*dst = &v
	}
}

func validKeyIdentifier(s string) bool {
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return false
	}
	parts := strings.Split(strings.Trim(u.Path, "/"), "/")
	return len(parts) >= 2 && parts[0] == "keys" && parts[1] != ""
}

func isJSONObject(s string) bool {
	var m map[string]any
	return json.Unmarshal([]byte(s), &m) == nil && m != nil
}

// view is what Atlas answers for g: every provider document with enabled
// and valid, non-secret fields of configured ones, and no secrets. AWS
// roleId is write-only in v2 and returned in v1.0.
func (g *group) view(v2 bool) atlas.EncryptionAtRest {
	out := atlas.EncryptionAtRest{EnabledForSearchNodes: ptr(g.searchNodes)}
	if c := g.aws; c != nil {
		out.AWSKMS = &atlas.AWSKMSConfiguration{
			Enabled:                  ptr(true),
			AccessKeyID:              clonePtr(c.AccessKeyID),
			CustomerMasterKeyID:      clonePtr(c.CustomerMasterKeyID),
			Region:                   clonePtr(c.Region),
			RequirePrivateNetworking: ptr(c.RequirePrivateNetworking != nil && *c.RequirePrivateNetworking),
			Valid:                    ptr(!g.invalid[ProviderAWS]),
		}
		if !v2 {
			out.AWSKMS.RoleID = clonePtr(c.RoleID)
		}
	} else {
		out.AWSKMS = &atlas.AWSKMSConfiguration{Enabled: ptr(false), Valid: ptr(false)}
	}
	if c := g.azure; c != nil {
		out.AzureKeyVault = &atlas.AzureKeyVault{
			Enabled:                  ptr(true),
			AzureEnvironment:         clonePtr(c.AzureEnvironment),
			ClientID:                 clonePtr(c.ClientID),
			KeyIdentifier:            clonePtr(c.KeyIdentifier),
			KeyVaultName:             clonePtr(c.KeyVaultName),
			ResourceGroupName:        clonePtr(c.ResourceGroupName),
			RoleID:                   clonePtr(c.RoleID),
			SubscriptionID:           clonePtr(c.SubscriptionID),
			TenantID:                 clonePtr(c.TenantID),
			RequirePrivateNetworking: ptr(c.RequirePrivateNetworking != nil && *c.RequirePrivateNetworking),
			Valid:                    ptr(!g.invalid[ProviderAzure]),
		}
	} else {
		out.AzureKeyVault = &atlas.AzureKeyVault{Enabled: ptr(false), Valid: ptr(false)}
	}
	if c := g.gcp; c != nil {
		out.GoogleCloudKMS = &atlas.GoogleCloudKMS{
			Enabled:              ptr(true),
			KeyVersionResourceID: clonePtr(c.KeyVersionResourceID),
			RoleID:               clonePtr(c.RoleID),
			Valid:                ptr(!g.invalid[ProviderGCP]),
		}
	} else {
		out.GoogleCloudKMS = &atlas.GoogleCloudKMS{Enabled: ptr(false), Valid: ptr(false)}
	}
	return out
}

func ptr[T any](v T) *T { return &v }

func clonePtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

// fieldOf returns the field get reads of a provider document, nil when
// there is no document.
func fieldOf[T, V any](doc *T, get func(*T) *V) *V {
	if doc == nil {
		return nil
	}
	return get(doc)
}
