package server

import (
	"fmt"
	"slices"
	"testing"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
)

// TestProviderTable walks the API's descriptors and holds the provider
// table to them: every provider of ProviderConfig has an entry, every field
// of its request message has a rule, every name the table uses is a real
// field, and the table's secrets are exactly the fields the proto marks
// debug_redact.
func TestProviderTable(t *testing.T) {
	t.Parallel()
	if err := checkProviderTable(providers); err != nil {
		t.Fatal(err)
	}
}

// TestProviderTableCatchesMistakes shows that the check above fails on the
// mistakes it is there for.
func TestProviderTableCatchesMistakes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		mistake func(p *provider)
	}{
		{"a field without a rule", func(p *provider) { delete(p.fields, "region") }},
		{"a rule for no field (a typo)", func(p *provider) { p.fields["regoin"] = fieldRule{check: length(1, 2)} }},
		{"a secret that is not debug_redact", func(p *provider) { p.fields["region"] = fieldRule{secret: true} }},
		{"a debug_redact field that is not a secret", func(p *provider) { p.fields["secret_access_key"] = fieldRule{} }},
		{"a required field that does not exist", func(p *provider) { p.required = append(p.required, "key_id") }},
		{"an auth mode naming no field", func(p *provider) { p.authModes = append(p.authModes, []protoreflect.Name{"token"}) }},
		{"a write-only field the state lacks", func(p *provider) { p.writeOnly = []protoreflect.Name{"secret_access_key"} }},
		{"a check on a boolean", func(p *provider) { p.fields["enabled"] = fieldRule{check: length(1, 2)} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := *awsKMS
			p.fields = make(map[protoreflect.Name]fieldRule, len(awsKMS.fields))
			for k, v := range awsKMS.fields {
				p.fields[k] = v
			}
			p.required = slices.Clone(awsKMS.required)
			p.authModes = slices.Clone(awsKMS.authModes)
			tt.mistake(&p)
			if err := checkProviderTable([]*provider{&p, azureKeyVault, googleCloudKMS}); err == nil {
				t.Errorf("checkProviderTable with %s = nil, want an error", tt.name)
			}
		})
	}
	if err := checkProviderTable([]*provider{awsKMS, azureKeyVault}); err == nil {
		t.Errorf("checkProviderTable without Google Cloud KMS = nil, want an error")
	}
}

// checkProviderTable returns the first way in which ps disagrees with the
// descriptors.
func checkProviderTable(ps []*provider) error {
	oneof := providerConfig.Oneofs().ByName("provider")
	if oneof.Fields().Len() != len(ps) {
		return errorf("ProviderConfig has %d providers, the table %d", oneof.Fields().Len(), len(ps))
	}
	for i := range oneof.Fields().Len() {
		member := oneof.Fields().Get(i)
		at := slices.IndexFunc(ps, func(p *provider) bool { return p.field == member.Name() })
		if at < 0 {
			return errorf("ProviderConfig.%s has no table entry", member.Name())
		}
		p := ps[at]
		if p.atlas != member.JSONName() || p.request != member.Message() {
			return errorf("%s: atlas name %q or request message %s disagree with ProviderConfig.%s", p.title, p.atlas, p.request.FullName(), member.Name())
		}
		if fd := encryptionAtRest.Fields().ByName(p.field); fd == nil || fd.Message() != p.state {
			return errorf("%s: EncryptionAtRest.%s is not its state message %s", p.title, p.field, p.state.FullName())
		}
		if err := checkFields(p); err != nil {
			return errorf("%s: %v", p.title, err)
		}
		if _, err := bindWire(p); err != nil {
			return errorf("%s: %v", p.title, err)
		}
	}
	return nil
}

func checkFields(p *provider) error {
	fields := p.request.Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		rule, ok := p.fields[fd.Name()]
		if !ok {
			return errorf("request field %s has no entry in the table's fields", fd.FullName())
		}
		redact := fd.Options().(*descriptorpb.FieldOptions).GetDebugRedact()
		if rule.secret != redact {
			return errorf("field %s: the table says secret=%v, the proto debug_redact=%v", fd.FullName(), rule.secret, redact)
		}
		if rule.check != nil && fd.Kind() != protoreflect.StringKind {
			return errorf("field %s has a format check but is not a string", fd.FullName())
		}
		if st := p.state.Fields().ByName(fd.Name()); rule.secret && st != nil {
			return errorf("secret field %s has a field in the state message %s", fd.FullName(), p.state.FullName())
		}
	}
	for name := range p.fields {
		if fields.ByName(name) == nil {
			return errorf("the table names %q, which is not a field of %s", name, p.request.FullName())
		}
	}
	names := slices.Clone(p.required)
	for _, m := range p.authModes {
		names = append(names, m...)
	}
	for _, s := range p.special {
		names = append(names, s.fields...)
	}
	for _, name := range names {
		if fields.ByName(name) == nil {
			return errorf("required, an auth mode or a special rule names %q, which is not a field of %s", name, p.request.FullName())
		}
	}
	for _, name := range p.writeOnly {
		if fields.ByName(name) == nil || p.state.Fields().ByName(name) == nil {
			return errorf("write-only %q is not a field of both %s and %s", name, p.request.FullName(), p.state.FullName())
		}
	}
	return nil
}

var errorf = fmt.Errorf
