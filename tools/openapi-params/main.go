// Command openapi-params adds to the OpenAPI document that
// protoc-gen-openapiv2 generates what the REST gateway does beyond the
// API's messages, which the generator's options cannot declare, so `make
// generate` runs this after buf:
//
//   - the query parameters that every route but a stream accepts, `pretty`
//     and `envelope`;
//   - on Atlas's own v2 paths (/api/atlas/v2/), Atlas's answers: 202 for a
//     POST, 204 without a body for a DELETE, and for a paged list Atlas's
//     parameters (itemsPerPage, pageNum, includeCount) instead of pageSize
//     and pageToken, and Atlas's page ({links, results, totalCount})
//     instead of the RPC's message. The gateway's tests hold the document
//     to what it serves;
//   - path enums without their zero value (CLOUD_PROVIDER_UNSPECIFIED),
//     which the gateway refuses.
//
// It also writes embed.go beside FILE, so that Go code can import the
// document (package openapiv2, variable JSON) and serve it.
//
// Usage: openapi-params FILE (rewritten in place; running it twice changes
// nothing).
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// commonParams are the Atlas query parameters accepted on every route.
var commonParams = []map[string]any{
	{
		"name":        "pretty",
		"in":          "query",
		"type":        "boolean",
		"required":    false,
		"description": "Indent the JSON answer for people to read, as Atlas's `pretty` does.",
	},
	{
		"name":        "envelope",
		"in":          "query",
		"type":        "boolean",
		"required":    false,
		"description": "Answer with HTTP 200 and wrap the body as {\"status\": <HTTP status>, \"content\": <body>}, as Atlas's `envelope` does, for clients that cannot read status codes.",
	},
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: openapi-params FILE")
		os.Exit(2)
	}
	if err := rewrite(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "openapi-params:", err)
		os.Exit(1)
	}
}

func rewrite(path string) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	paths, _ := doc["paths"].(map[string]any)
	if len(paths) == 0 {
		return fmt.Errorf("%s: no paths", path)
	}
	definitions, _ := doc["definitions"].(map[string]any)
	for path, item := range paths {
		ops, _ := item.(map[string]any)
		for method, op := range ops {
			op, ok := op.(map[string]any)
			if !ok {
				continue
			}
			params, _ := op["parameters"].([]any)
			params = withoutPathEnumZero(params)
			if !isStream(op) {
				for _, p := range commonParams {
					if !slices.ContainsFunc(params, named(p["name"].(string))) {
						params = append(params, p)
					}
				}
			}
			op["parameters"] = params
			if strings.HasPrefix(path, "/api/atlas/v2/") {
				atlasAnswers(method, op, definitions)
			}
		}
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(doc); err != nil {
		return err
	}
	if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
		return err
	}
	embed := fmt.Sprintf(embedSource, filepath.Base(path))
	return os.WriteFile(filepath.Join(filepath.Dir(path), "embed.go"), []byte(embed), 0o644)
}

// named matches a parameter by name.
func named(name string) func(any) bool {
	return func(q any) bool {
		m, _ := q.(map[string]any)
		return m["name"] == name
	}
}

// isStream reports whether op answers a stream (protoc-gen-openapiv2 titles
// its answer "Stream result of …").
func isStream(op map[string]any) bool {
	res, _ := op["responses"].(map[string]any)
	ok, _ := res["200"].(map[string]any)
	schema, _ := ok["schema"].(map[string]any)
	title, _ := schema["title"].(string)
	return strings.HasPrefix(title, "Stream result of ")
}

// withoutPathEnumZero drops the zero value of path enums, which the gateway
// refuses.
func withoutPathEnumZero(params []any) []any {
	for _, p := range params {
		m, _ := p.(map[string]any)
		if m["in"] != "path" {
			continue
		}
		if enum, ok := m["enum"].([]any); ok {
			m["enum"] = slices.DeleteFunc(enum, func(v any) bool {
				s, _ := v.(string)
				return strings.HasSuffix(s, "_UNSPECIFIED")
			})
		}
	}
	return params
}

// Atlas's pagination parameters, as Atlas's spec declares them.
var atlasPaging = []map[string]any{
	{"name": "itemsPerPage", "in": "query", "type": "integer", "format": "int32", "default": 100, "minimum": 1, "maximum": 500, "required": false,
		"description": "Number of items that the response returns per page, as Atlas's `itemsPerPage`."},
	{"name": "pageNum", "in": "query", "type": "integer", "format": "int32", "default": 1, "minimum": 1, "required": false,
		"description": "Number of the page to return, from 1, as Atlas's `pageNum`."},
	{"name": "includeCount", "in": "query", "type": "boolean", "default": true, "required": false,
		"description": "Whether the answer has `totalCount`, as Atlas's `includeCount`."},
}

// atlasAnswers describes an operation on Atlas's v2 paths as the gateway
// answers it.
func atlasAnswers(method string, op map[string]any, definitions map[string]any) {
	responses, _ := op["responses"].(map[string]any)
	ok, _ := responses["200"].(map[string]any)
	if ok == nil {
		return
	}
	switch method {
	case "post":
		ok["description"] = "Accepted."
		delete(responses, "200")
		responses["202"] = ok
		return
	case "delete":
		delete(responses, "200")
		responses["204"] = map[string]any{"description": "No Content."}
		return
	}
	params, _ := op["parameters"].([]any)
	if !slices.ContainsFunc(params, named("pageSize")) || !slices.ContainsFunc(params, named("pageToken")) {
		return
	}
	params = slices.DeleteFunc(params, func(q any) bool { return named("pageSize")(q) || named("pageToken")(q) })
	for _, p := range atlasPaging {
		params = append(params, p)
	}
	op["parameters"] = params
	schema, _ := ok["schema"].(map[string]any)
	ref, _ := schema["$ref"].(string)
	def, _ := definitions[strings.TrimPrefix(ref, "#/definitions/")].(map[string]any)
	props, _ := def["properties"].(map[string]any)
	var items any
	for _, p := range props {
		if m, _ := p.(map[string]any); m["type"] == "array" {
			items = m["items"]
		}
	}
	ok["schema"] = map[string]any{
		"type":     "object",
		"title":    "Atlas's page of a list",
		"required": []any{"results"},
		"properties": map[string]any{
			"links": map[string]any{"type": "array", "items": map[string]any{"type": "object", "properties": map[string]any{
				"rel":  map[string]any{"type": "string", "description": "self, next or previous"},
				"href": map[string]any{"type": "string"},
			}}},
			"results":    map[string]any{"type": "array", "items": items},
			"totalCount": map[string]any{"type": "integer", "format": "int32", "description": "How many items there are in all; left out with includeCount=false."},
		},
	}
}

const embedSource = `// Code generated by openapi-params. DO NOT EDIT.

// Package openapiv2 holds encryptiond's OpenAPI (Swagger 2.0) document,
// generated from proto/ by protoc-gen-openapiv2.
package openapiv2

import _ "embed"

// JSON is the OpenAPI document of the REST API.
//
//go:embed %s
var JSON []byte
`
