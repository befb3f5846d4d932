// Package atlasspec holds tests to Atlas's own OpenAPI schema: it loads the
// excerpt shared beside this repository
// (../shared/atlas/encryption-at-rest.openapi.json, or $ATLAS_OPENAPI_SPEC),
// corrects the defects that no document could satisfy, finds the operation
// of a request, and validates bodies. The atlas package's conformance test
// checks the client and the emulator with it; the server's checks
// encryptiond's own answers on Atlas's v2 paths.
//
// It is for tests only: nothing that ships imports it.
package atlasspec

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
)

// Env names the variable that overrides where the spec is read from.
const Env = "ATLAS_OPENAPI_SPEC"

// TB is the part of testing.TB that Load uses.
type TB interface {
	Helper()
	Skipf(format string, args ...any)
	Fatalf(format string, args ...any)
}

// Load loads, validates and corrects (Correct) the spec, and skips the test
// when it cannot be found.
func Load(t TB) *openapi3.T {
	t.Helper()
	path := os.Getenv(Env)
	if path == "" {
		root, err := moduleRoot()
		if err != nil {
			t.Skipf("conformance: cannot find the module root (%v) and %s is not set", err, Env)
		}
		path = filepath.Join(root, "..", "shared", "atlas", "encryption-at-rest.openapi.json")
	}
	if _, err := os.Stat(path); err != nil {
		t.Skipf("conformance: Atlas OpenAPI spec not found at %s (set %s to its path): %v", path, Env, err)
	}
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromFile(path)
	if err != nil {
		t.Fatalf("loading %s: %v", path, err)
	}
	if err := doc.Validate(loader.Context); err != nil {
		t.Fatalf("validating %s: %v", path, err)
	}
	if err := Correct(doc); err != nil {
		t.Fatalf("correcting %s: %v", path, err)
	}
	return doc
}

// moduleRoot walks up from the working directory to the directory with go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above %s", dir)
		}
		dir = parent
	}
}

// Correct fixes three places where Atlas's schema and Atlas's documents
// part ways. Two are defects of its schema of private endpoints, which
// otherwise no document could satisfy:
//
//   - regionName is typed as an object whose oneOf lists two string enums
//     (Azure's regions and AWS's). A region is a string, and names such as
//     US_EAST_2 are in both lists, so oneOf can never hold for them. Each
//     provider's schema gets its own list; the union schema, either.
//   - EARPrivateEndpoint is a oneOf with the discriminator cloudProvider,
//     which is read-only: a create body, {"regionName": …}, never has it.
//     RequestSchema validates a create body against the schema of the
//     provider its path names instead.
//
// The third: ApiError.parameters types its items as objects, while Atlas's
// error documents list there the names their detail refers to
// ("parameters": ["regionName"]), as encryptiond's refusals on Atlas's
// paths do. Any item is allowed.
//
// The enums themselves are left as they are: RegionLists reads them.
func Correct(doc *openapi3.T) error {
	apiError := doc.Components.Schemas["ApiError"]
	if apiError == nil || apiError.Value.Properties["parameters"] == nil {
		return fmt.Errorf("the spec has no ApiError.parameters")
	}
	params := *apiError.Value.Properties["parameters"].Value
	params.Items = &openapi3.SchemaRef{Value: &openapi3.Schema{}}
	apiError.Value.Properties["parameters"] = &openapi3.SchemaRef{Value: &params}

	union := doc.Components.Schemas["EARPrivateEndpoint"].Value
	lists := RegionLists(doc)
	aws, azure := lists["AWS Regions"], lists["Azure Regions"]
	if aws == nil || azure == nil {
		return fmt.Errorf("EARPrivateEndpoint.regionName has no AWS Regions and Azure Regions")
	}
	doc.Components.Schemas["AWSKMSEARPrivateEndpoint"].Value.Properties["regionName"] = aws
	doc.Components.Schemas["AzureKeyVaultEARPrivateEndpoint"].Value.Properties["regionName"] = azure
	union.Properties["regionName"] = &openapi3.SchemaRef{Value: &openapi3.Schema{AnyOf: openapi3.SchemaRefs{aws, azure}}}
	return nil
}

// RegionLists returns the region enums of a private endpoint's regionName,
// by title ("AWS Regions", "Azure Regions"), before or after Correct.
func RegionLists(doc *openapi3.T) map[string]*openapi3.SchemaRef {
	out := map[string]*openapi3.SchemaRef{}
	region := doc.Components.Schemas["EARPrivateEndpoint"].Value.Properties["regionName"].Value
	for _, r := range append(region.OneOf, region.AnyOf...) {
		out[r.Value.Title] = r
	}
	return out
}

// Enum returns a schema's enum as strings.
func Enum(s *openapi3.Schema) []string {
	var out []string
	for _, v := range s.Enum {
		if str, ok := v.(string); ok {
			out = append(out, str)
		}
	}
	return out
}

// Operation returns the spec's operation for method on path, whose segments
// match the template's literally or fill its {variables}. A v1.0 path is
// looked up as its v2 twin: the spec has only v2, and v1.0 has the same
// schemas.
func Operation(doc *openapi3.T, method, path string) (*openapi3.Operation, error) {
	path = strings.Replace(path, "/api/atlas/v1.0/", "/api/atlas/v2/", 1)
	segs := strings.Split(strings.Trim(path, "/"), "/")
	for tmpl, item := range doc.Paths.Map() {
		want := strings.Split(strings.Trim(tmpl, "/"), "/")
		if len(want) != len(segs) {
			continue
		}
		match := true
		for i, w := range want {
			if !strings.HasPrefix(w, "{") && w != segs[i] {
				match = false
				break
			}
		}
		if match {
			if op := item.GetOperation(method); op != nil {
				return op, nil
			}
			return nil, fmt.Errorf("the spec has no %s operation on %s", method, tmpl)
		}
	}
	return nil, fmt.Errorf("no path of the spec matches %s", path)
}

// RequestSchema returns the schema a request body on path must satisfy:
// for a private endpoint, its provider's (see Correct), else the
// operation's, in the versioned media type.
func RequestSchema(doc *openapi3.T, op *openapi3.Operation, path string) *openapi3.Schema {
	switch {
	case strings.Contains(path, "/encryptionAtRest/AWS/privateEndpoints"):
		return doc.Components.Schemas["AWSKMSEARPrivateEndpoint"].Value
	case strings.Contains(path, "/encryptionAtRest/AZURE/privateEndpoints"):
		return doc.Components.Schemas["AzureKeyVaultEARPrivateEndpoint"].Value
	}
	return op.RequestBody.Value.Content.Get(MediaTypeV2).Schema.Value
}

// MediaTypeV2 is the versioned media type the spec's schemas are under.
const MediaTypeV2 = "application/vnd.atlas.2023-01-01+json"

// Validate checks a JSON body against schema, as a request or an answer
// (read-only properties are allowed only in answers).
func Validate(schema *openapi3.Schema, body []byte, request bool) error {
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return fmt.Errorf("body is not JSON: %w", err)
	}
	opts := []openapi3.SchemaValidationOption{openapi3.MultiErrors(), openapi3.EnableFormatValidation()}
	if request {
		opts = append(opts, openapi3.VisitAsRequest())
	} else {
		opts = append(opts, openapi3.VisitAsResponse())
	}
	if err := schema.VisitJSON(v, opts...); err != nil {
		return fmt.Errorf("does not conform to the spec: %w\nbody: %s", err, body)
	}
	return nil
}
