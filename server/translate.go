package server

import (
	"fmt"
	"reflect"
	"slices"
	"strings"

	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/encryptiond/encryptiond/atlas"
	encryptionv1 "github.com/encryptiond/encryptiond/gen/atlas/encryption/v1"
)

// This file translates between the API's messages and Atlas's wire types,
// for every provider alike. The API's JSON names are Atlas's (the contract
// test in proto/ holds them to it), so a field of a provider's request or
// state message is the field of Atlas's document with the same JSON name.
// Presence carries over both ways: a field set in the request is set in the
// Atlas body, and nothing else is.

// wireBinding maps one provider's messages onto its document in
// atlas.EncryptionAtRest. bindWire builds it once (mustBind, for the
// provider table), from the descriptors and the wire types' JSON tags.
type wireBinding struct {
	doc    int            // index in atlas.EncryptionAtRest of the document's pointer field
	typ    reflect.Type   // the document's struct type
	byJSON map[string]int // index of each document field, by JSON name
	state  []stateField   // the state message's fields and where Atlas's answer has them
}

// stateField is one field of a provider's state message and its place in
// Atlas's document.
type stateField struct {
	fd   protoreflect.FieldDescriptor
	wire int
}

var wireType = reflect.TypeFor[atlas.EncryptionAtRest]()

// jsonTag returns the JSON name of a struct field, or "".
func jsonTag(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	return name
}

// bindWire maps p's messages onto Atlas's document named p.atlas. It fails
// on a field of either message that Atlas's wire type lacks, or whose type
// differs.
func bindWire(p *provider) (wireBinding, error) {
	w := wireBinding{doc: -1, byJSON: map[string]int{}}
	for i := range wireType.NumField() {
		if f := wireType.Field(i); jsonTag(f) == p.atlas && f.Type.Kind() == reflect.Pointer {
			w.doc, w.typ = i, f.Type.Elem()
		}
	}
	if w.doc < 0 {
		return w, fmt.Errorf("atlas.EncryptionAtRest has no document %q", p.atlas)
	}
	for i := range w.typ.NumField() {
		if name := jsonTag(w.typ.Field(i)); name != "" {
			w.byJSON[name] = i
		}
	}
	lookup := func(fd protoreflect.FieldDescriptor) (int, error) {
		i, ok := w.byJSON[fd.JSONName()]
		if !ok {
			return 0, fmt.Errorf("atlas.%s has no field %q for %s", w.typ.Name(), fd.JSONName(), fd.FullName())
		}
		want := map[protoreflect.Kind]reflect.Kind{protoreflect.StringKind: reflect.String, protoreflect.BoolKind: reflect.Bool}[fd.Kind()]
		if got := w.typ.Field(i).Type; got.Kind() != reflect.Pointer || got.Elem().Kind() != want {
			return 0, fmt.Errorf("atlas.%s.%s is %v, which cannot hold %s (%v)", w.typ.Name(), w.typ.Field(i).Name, got, fd.FullName(), fd.Kind())
		}
		return i, nil
	}
	for fds, i := p.request.Fields(), 0; i < fds.Len(); i++ {
		if _, err := lookup(fds.Get(i)); err != nil {
			return w, err
		}
	}
	for fds, i := p.state.Fields(), 0; i < fds.Len(); i++ {
		wi, err := lookup(fds.Get(i))
		if err != nil {
			return w, err
		}
		w.state = append(w.state, stateField{fd: fds.Get(i), wire: wi})
	}
	return w, nil
}

// document returns the provider's document in e: a struct, or the zero
// Value when e has none.
func (w wireBinding) document(e *atlas.EncryptionAtRest) reflect.Value {
	if e == nil {
		return reflect.Value{}
	}
	ptr := reflect.ValueOf(e).Elem().Field(w.doc)
	if ptr.IsNil() {
		return reflect.Value{}
	}
	return ptr.Elem()
}

// newDocument gives e a new, empty document for the provider, replacing
// any, and returns it (settable).
func (w wireBinding) newDocument(e *atlas.EncryptionAtRest) reflect.Value {
	ptr := reflect.New(w.typ)
	reflect.ValueOf(e).Elem().Field(w.doc).Set(ptr)
	return ptr.Elem()
}

// get returns the value of the document field jsonName in e, if set.
func (w wireBinding) get(e *atlas.EncryptionAtRest, jsonName string) (reflect.Value, bool) {
	doc := w.document(e)
	i, ok := w.byJSON[jsonName]
	if !doc.IsValid() || !ok || doc.Field(i).IsNil() {
		return reflect.Value{}, false
	}
	return doc.Field(i).Elem(), true
}

// flag returns the boolean document field jsonName in e; false if unset.
func (w wireBinding) flag(e *atlas.EncryptionAtRest, jsonName string) bool {
	v, ok := w.get(e, jsonName)
	return ok && v.Kind() == reflect.Bool && v.Bool()
}

// set sets the document field jsonName to a copy of v, a string or bool.
func (w wireBinding) set(doc reflect.Value, jsonName string, v protoreflect.Value) {
	f := doc.Field(w.byJSON[jsonName])
	ptr := reflect.New(f.Type().Elem())
	switch x := v.Interface().(type) {
	case string:
		ptr.Elem().SetString(x)
	case bool:
		ptr.Elem().SetBool(x)
	}
	f.Set(ptr)
}

// clear unsets the document field jsonName.
func (w wireBinding) clear(doc reflect.Value, jsonName string) {
	f := doc.Field(w.byJSON[jsonName])
	f.SetZero()
}

// patch returns the Atlas body for the request: its provider's document
// with exactly the fields the request sets. A disable sets only enabled
// (rule 3 refuses anything else).
func (r *request) patch() *atlas.EncryptionAtRest {
	out := &atlas.EncryptionAtRest{}
	w := r.provider.wire
	doc := w.newDocument(out)
	for _, fd := range r.set {
		w.set(doc, fd.JSONName(), r.msg.Get(fd))
	}
	return out
}

// secrets returns the secret values the request carries (atlas.Secrets),
// to redact them from anything Atlas says back, however escaped. The
// Atlas client already removes them from its errors; this is the second
// line, for every text the service builds from one.
func (r *request) secrets() []string {
	if r.provider == nil {
		return nil
	}
	var values []string
	for _, fd := range r.set {
		if r.provider.fields[fd.Name()].secret {
			values = append(values, r.msg.Get(fd).String())
		}
	}
	return atlas.Secrets(values...)
}

// applied returns the configuration as it would be after Atlas applied the
// request to current: what validate_only answers. Atlas has not checked a key
// it has not seen, so a provider that the request would enable reports
// valid=false until Atlas says otherwise.
func (r *request) applied(current *atlas.EncryptionAtRest) *atlas.EncryptionAtRest {
	next := *current
	p, w := r.provider, r.provider.wire
	off := protoreflect.ValueOfBool(false)
	doc := w.newDocument(&next)
	if r.disable {
		w.set(doc, "enabled", off)
		w.set(doc, "valid", off)
		return &next
	}
	if p.enabled(current) {
		doc.Set(w.document(current))
	} else {
		w.set(doc, "valid", off)
	}
	// The auth mode the request uses replaces the others.
	if mode := r.mode(); mode != nil {
		for _, m := range p.authModes {
			if !slices.Equal(m, mode) {
				for _, name := range m {
					w.clear(doc, p.jsonName(name))
				}
			}
		}
	}
	for _, fd := range r.set {
		if !p.fields[fd.Name()].secret {
			w.set(doc, fd.JSONName(), r.msg.Get(fd))
		}
	}
	for _, name := range p.writeOnly {
		w.clear(doc, p.jsonName(name))
	}
	return &next
}

// toProto converts Atlas's answer to the API's resource. It always carries
// all three providers with enabled and valid set, and it copies no secret:
// the state messages have no field for one.
func toProto(in *atlas.EncryptionAtRest) *encryptionv1.EncryptionAtRest {
	out := &encryptionv1.EncryptionAtRest{EnabledForSearchNodes: in.EnabledForSearchNodes}
	m := out.ProtoReflect()
	for _, p := range providers {
		st := m.Mutable(encryptionAtRest.Fields().ByName(p.field)).Message()
		doc := p.wire.document(in)
		for _, sf := range p.wire.state {
			if doc.IsValid() {
				if f := doc.Field(sf.wire); !f.IsNil() {
					switch f := f.Elem(); f.Kind() {
					case reflect.String:
						st.Set(sf.fd, protoreflect.ValueOfString(f.String()))
					case reflect.Bool:
						st.Set(sf.fd, protoreflect.ValueOfBool(f.Bool()))
					}
					continue
				}
			}
			// enabled and valid are always present.
			if name := sf.fd.Name(); name == "enabled" || name == "valid" {
				st.Set(sf.fd, protoreflect.ValueOfBool(false))
			}
		}
	}
	return out
}
