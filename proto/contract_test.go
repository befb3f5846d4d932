// Package proto_test holds the contract tests of the API in proto/: that the
// generated messages speak Atlas's JSON, keep field presence, cannot carry a
// secret in a response, that the .proto imports only what its clients need,
// and that the generated OpenAPI document describes both REST paths with
// Atlas's spelling, a title and a summary for every RPC.
package proto_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/descriptorpb"

	encryptionv1 "github.com/encryptiond/encryptiond/gen/atlas/encryption/v1"
	"github.com/encryptiond/encryptiond/gen/openapiv2"
)

// Atlas's own request bodies, one per provider; the first is the v1.0
// documentation's example.
var atlasBodies = []string{
	`{"awsKms": {"enabled": true, "accessKeyID": "AKIAIOSFODNN7EXAMPLE", "secretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "customerMasterKeyID": "030gce02-586d-48d2-a966-05ea954fde0g", "region": "US_EAST_1"}}`,
	`{"awsKms": {"enabled": true, "customerMasterKeyID": "arn:aws:kms:us-east-1:123456789012:key/k", "region": "EU_WEST_1", "roleId": "32b6e34b3d91647abb20e7b8", "requirePrivateNetworking": false}}`,
	`{"azureKeyVault": {"enabled": true, "azureEnvironment": "AZURE", "clientID": "g54f9e2-89e3-40fd-8188-EXAMPLEID", "keyIdentifier": "https://EXAMPLEKeyVault.vault.azure.net/keys/EXAMPLEKey/d891821e3d364e9eb88fbd3d11807b86", "keyVaultName": "string", "resourceGroupName": "string", "secret": "string", "subscriptionID": "d0dd68eb-7e97-448c-b05b-EXAMPLEID", "tenantID": "91402512-d8e4-4a5d-8e2b-EXAMPLEID", "requirePrivateNetworking": true, "roleId": "32b6e34b3d91647abb20e7b8"}}`,
	`{"googleCloudKms": {"enabled": true, "keyVersionResourceID": "projects/my-project-common-0/locations/us-east4/keyRings/my-key-ring-0/cryptoKeys/my-key-0/cryptoKeyVersions/1", "serviceAccountKey": "{\"type\": \"service_account\"}", "roleId": "32b6e34b3d91647abb20e7b8"}}`,
	`{"awsKms": {"enabled": false}}`,
}

func TestAtlasBodiesRoundTrip(t *testing.T) {
	t.Parallel()
	for _, body := range atlasBodies {
		cfg := &encryptionv1.ProviderConfig{}
		if err := protojson.Unmarshal([]byte(body), cfg); err != nil {
			t.Fatalf("protojson.Unmarshal(%s) = %v, want nil", body, err)
		}
		out, err := protojson.Marshal(cfg)
		if err != nil {
			t.Fatalf("protojson.Marshal(%v) = %v", cfg, err)
		}
		var want, got any
		if err := json.Unmarshal([]byte(body), &want); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("protojson round trip of %s (-atlas +ours):\n%s", body, diff)
		}
	}
}

func TestPresenceSurvivesJSONAndBinary(t *testing.T) {
	t.Parallel()
	// Only region and enabled=false are set: everything else must stay unset.
	in := &encryptionv1.ProviderConfig{}
	if err := protojson.Unmarshal([]byte(`{"awsKms": {"region": "US_EAST_1", "requirePrivateNetworking": false}}`), in); err != nil {
		t.Fatal(err)
	}
	b, err := proto.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	out := &encryptionv1.ProviderConfig{}
	if err := proto.Unmarshal(b, out); err != nil {
		t.Fatal(err)
	}
	var set []string
	out.GetAwsKms().ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, _ protoreflect.Value) bool {
		set = append(set, fd.JSONName())
		return true
	})
	slices.Sort(set)
	if diff := cmp.Diff([]string{"region", "requirePrivateNetworking"}, set); diff != "" {
		t.Errorf("fields set after JSON and binary round trips (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(in, out, protocmp.Transform()); diff != "" {
		t.Errorf("binary round trip (-in +out):\n%s", diff)
	}
}

// TestResponsesCannotCarrySecrets walks every message a response can contain
// and fails on any field named like one of Atlas's secrets, or marked
// debug_redact.
func TestResponsesCannotCarrySecrets(t *testing.T) {
	t.Parallel()
	secretNames := []string{"secretAccessKey", "secret", "serviceAccountKey"}
	seen := map[protoreflect.FullName]bool{}
	var walk func(md protoreflect.MessageDescriptor)
	walk = func(md protoreflect.MessageDescriptor) {
		if seen[md.FullName()] {
			return
		}
		seen[md.FullName()] = true
		for i := range md.Fields().Len() {
			fd := md.Fields().Get(i)
			opts, _ := fd.Options().(*descriptorpb.FieldOptions)
			if slices.Contains(secretNames, fd.JSONName()) || opts.GetDebugRedact() {
				t.Errorf("response message %s has a secret field %s", md.FullName(), fd.Name())
			}
			if fd.Message() != nil {
				walk(fd.Message())
			}
		}
	}
	svc := encryptionv1.File_atlas_encryption_v1_encryption_proto.Services().ByName("EncryptionService")
	for i := range svc.Methods().Len() {
		walk(svc.Methods().Get(i).Output())
	}
	if len(seen) < 4 {
		t.Errorf("walked %d response messages, want the resource and its three providers", len(seen))
	}
	// And the input messages do mark their secrets.
	for _, m := range []proto.Message{&encryptionv1.AwsKms{}, &encryptionv1.AzureKeyVault{}, &encryptionv1.GoogleCloudKms{}} {
		fields := m.ProtoReflect().Descriptor().Fields()
		n := 0
		for i := range fields.Len() {
			if opts, _ := fields.Get(i).Options().(*descriptorpb.FieldOptions); opts.GetDebugRedact() {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%s has %d debug_redact fields, want its one secret", m.ProtoReflect().Descriptor().FullName(), n)
		}
	}
}

func TestOpenAPIDescribesBothPathsInAtlasSpelling(t *testing.T) {
	t.Parallel()
	var doc struct {
		Paths map[string]map[string]struct {
			Parameters []struct {
				Name string `json:"name"`
				In   string `json:"in"`
			} `json:"parameters"`
		} `json:"paths"`
		Definitions map[string]struct {
			Properties map[string]any `json:"properties"`
		} `json:"definitions"`
	}
	if err := json.Unmarshal(openapiv2.JSON, &doc); err != nil {
		t.Fatalf("OpenAPI document: %v", err)
	}
	for _, path := range []string{"/v1/groups/{groupId}/encryptionAtRest", "/api/atlas/v1.0/groups/{groupId}/encryptionAtRest"} {
		ops, ok := doc.Paths[path]
		if !ok {
			t.Errorf("OpenAPI paths lack %s", path)
			continue
		}
		for method, want := range map[string][]string{"get": {"pretty", "envelope"}, "patch": {"pretty", "envelope", "validateOnly"}} {
			var query []string
			for _, p := range ops[method].Parameters {
				if p.In == "query" {
					query = append(query, p.Name)
				}
			}
			for _, w := range want {
				if !slices.Contains(query, w) {
					t.Errorf("OpenAPI %s %s query parameters = %v, want %s among them", method, path, query, w)
				}
			}
		}
	}
	var props []string
	for _, d := range doc.Definitions {
		for p := range d.Properties {
			props = append(props, p)
		}
	}
	for _, want := range []string{"awsKms", "azureKeyVault", "googleCloudKms", "accessKeyID", "customerMasterKeyID", "clientID", "subscriptionID", "tenantID", "keyVersionResourceID", "roleId", "enabledForSearchNodes", "requirePrivateNetworking"} {
		if !slices.Contains(props, want) {
			t.Errorf("OpenAPI definitions lack the Atlas-spelled property %s", want)
		}
	}
	for _, p := range props {
		if strings.Contains(p, "_") {
			t.Errorf("OpenAPI property %s is not spelled as Atlas spells it", p)
		}
	}
}

// TestProtoImportsOnlyWhatClientsNeed checks that the API imports
// google/api/annotations.proto and google/rpc/status.proto (a project's
// error in ListEncryptionAtRest), both part of every gRPC toolkit, and
// nothing else. Every client that generates
// code from the .proto or loads it through server reflection must load its
// imports, and some clients cannot load protoc-gen-openapiv2's options
// (grpc-js-reflection-client); the OpenAPI metadata belongs in
// proto/openapiv2.yaml.
func TestProtoImportsOnlyWhatClientsNeed(t *testing.T) {
	t.Parallel()
	var linked []string
	imports := encryptionv1.File_atlas_encryption_v1_encryption_proto.Imports()
	for i := range imports.Len() {
		linked = append(linked, imports.Get(i).Path())
	}
	source := new(descriptorpb.FileDescriptorProto)
	if err := proto.Unmarshal(encryptionv1.SourceFileDescriptor(), source); err != nil {
		t.Fatalf("proto.Unmarshal(SourceFileDescriptor()) = %v", err)
	}
	tests := []struct {
		name    string
		imports []string
	}{
		{name: "descriptor linked into the Go package", imports: linked},
		{name: "source descriptor served by reflection", imports: source.GetDependency()},
	}
	for _, tt := range tests {
		if diff := cmp.Diff([]string{"google/api/annotations.proto", "google/rpc/status.proto"}, tt.imports); diff != "" {
			t.Errorf("imports of the %s (-want +got):\n%s", tt.name, diff)
		}
	}
}

// TestOpenAPIKeepsItsMetadata checks that the OpenAPI document, whose
// metadata comes from proto/openapiv2.yaml rather than from the .proto, has
// its title, version, description, schemes and media types, and a summary
// for every operation of every RPC: an RPC added without an entry in
// openapiv2.yaml fails here.
func TestOpenAPIKeepsItsMetadata(t *testing.T) {
	t.Parallel()
	type operation struct {
		OperationID string `json:"operationId"`
		Summary     string `json:"summary"`
	}
	var doc struct {
		Info struct {
			Title       string `json:"title"`
			Description string `json:"description"`
			Version     string `json:"version"`
		} `json:"info"`
		Schemes  []string                        `json:"schemes"`
		Consumes []string                        `json:"consumes"`
		Produces []string                        `json:"produces"`
		Paths    map[string]map[string]operation `json:"paths"`
	}
	if err := json.Unmarshal(openapiv2.JSON, &doc); err != nil {
		t.Fatalf("OpenAPI document: %v", err)
	}
	if doc.Info.Title != "encryptiond" || doc.Info.Version != "v1" || doc.Info.Description == "" {
		t.Errorf("OpenAPI info = %+v, want title encryptiond, version v1 and a description", doc.Info)
	}
	for _, tt := range []struct {
		name      string
		got, want []string
	}{
		{"schemes", doc.Schemes, []string{"http", "https"}},
		{"consumes", doc.Consumes, []string{"application/json"}},
		{"produces", doc.Produces, []string{"application/json"}},
	} {
		if diff := cmp.Diff(tt.want, tt.got); diff != "" {
			t.Errorf("OpenAPI %s (-want +got):\n%s", tt.name, diff)
		}
	}

	summarized := map[string]bool{}
	for path, ops := range doc.Paths {
		for method, op := range ops {
			if op.Summary == "" {
				t.Errorf("OpenAPI %s %s (%s) has no summary", method, path, op.OperationID)
				continue
			}
			summarized[op.OperationID] = true
		}
	}
	methods := encryptionv1.File_atlas_encryption_v1_encryption_proto.Services().ByName("EncryptionService").Methods()
	for i := range methods.Len() {
		if id := "EncryptionService_" + string(methods.Get(i).Name()); !summarized[id] {
			t.Errorf("OpenAPI has no summarized operation %s", id)
		}
	}
}
