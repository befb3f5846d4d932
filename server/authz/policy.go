package authz

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"go.yaml.in/yaml/v3"

	"github.com/encryptiond/encryptiond/server"
	"github.com/encryptiond/encryptiond/server/caller"
)

// Action is what a call does to a project's configuration.
type Action int

const (
	// Read is GetEncryptionAtRest.
	Read Action = iota + 1
	// Write is UpdateEncryptionAtRest, validate-only included: the answer to
	// an update is the project's configuration, so Write implies Read.
	Write
)

// String returns "read" or "write".
func (a Action) String() string {
	switch a {
	case Read:
		return "read"
	case Write:
		return "write"
	}
	return "Action(" + strconv.Itoa(int(a)) + ")"
}

// verb is the action as it reads in a refusal: "may not read", "may not change".
func (a Action) verb() string {
	if a == Write {
		return "change"
	}
	return a.String()
}

// AnyIdentity, as a policy entry's identity, grants to every authenticated
// caller; AllGroups, as a group, stands for every project.
const (
	AnyIdentity = "*"
	AllGroups   = "*"
)

// MaxPolicySize bounds a policy file, in bytes: a policy is a few
// kilobytes. LoadPolicy refuses a larger file; so should whoever reads one
// for ParsePolicy.
const MaxPolicySize = 1 << 20

// Policy maps caller identities to the projects they may read and change.
// It is immutable and safe for concurrent use. A nil *Policy is the policy
// without a file: every authenticated caller may read every project, and
// nobody may change any.
type Policy struct {
	grants   map[string]*grant // by exact identity
	anyone   *grant            // the AnyIdentity entry, or nil
	identity []string          // declared order, for Summary
}

// grant is what one policy entry allows.
type grant struct {
	read, write groups
}

// groups is a set of project ids, or all of them.
type groups struct {
	all bool
	ids []string // sorted, without duplicates; empty when all
}

func (g groups) contains(groupID string) bool {
	if g.all {
		return true
	}
	_, found := slices.BinarySearch(g.ids, groupID)
	return found
}

func (g groups) empty() bool { return !g.all && len(g.ids) == 0 }

func (g groups) String() string {
	switch {
	case g.all:
		return "all projects"
	case len(g.ids) == 1:
		return "project " + g.ids[0]
	}
	return "projects " + strings.Join(g.ids, ", ")
}

// LoadPolicy reads and parses the policy file at path (see ParsePolicy).
func LoadPolicy(path string) (*Policy, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("authz policy: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxPolicySize+1))
	if err != nil {
		return nil, fmt.Errorf("authz policy %s: %w", path, err)
	}
	if len(data) > MaxPolicySize {
		return nil, fmt.Errorf("authz policy %s: larger than %d bytes", path, MaxPolicySize)
	}
	p, err := ParsePolicy(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return p, nil
}

// ParsePolicy parses a policy written in YAML or JSON (JSON is YAML):
//
//	callers:
//	  - identity: spiffe://example.org/ns/platform/sa/key-admin
//	    read: ["*"]
//	    write: ["32b6e34b3d91647abb20e7b8"]
//	  - identity: spiffe://example.org/ns/apps/sa/auditor
//	    read: ["*"]
//
// An identity is matched exactly, byte for byte, against the caller's
// certificate identity; "*" alone grants to every authenticated caller, in
// addition to what the caller's own entry grants. Groups are Atlas project
// ids (24 lowercase hexadecimal characters) or "*" for all projects.
// write implies read. Parsing is strict: unknown keys, duplicate keys or
// identities, malformed ids, empty identities, the identity "anonymous"
// (which no authenticated caller has), YAML aliases and more than one
// document are errors naming the line.
func ParsePolicy(data []byte) (*Policy, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("authz policy: empty; want a mapping with the key \"callers\"")
		}
		return nil, fmt.Errorf("authz policy: %w", err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, errors.New("authz policy: more than one YAML document")
	}
	return parseDocument(&doc)
}

// policyError is a policy error at a line.
func policyError(n *yaml.Node, format string, args ...any) error {
	return fmt.Errorf("authz policy: line %d: %s", n.Line, fmt.Sprintf(format, args...))
}

func parseDocument(doc *yaml.Node) (*Policy, error) {
	root := doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	var callers *yaml.Node
	err := eachKey(root, "policy", []string{"callers"}, func(key string, v *yaml.Node) error {
		callers = v
		return nil
	})
	if err != nil {
		return nil, err
	}
	if callers == nil {
		return nil, policyError(root, "the key \"callers\" is missing")
	}
	if callers.Kind != yaml.SequenceNode {
		return nil, policyError(callers, "callers: want a list of entries")
	}
	p := &Policy{grants: make(map[string]*grant)}
	lines := make(map[string]int)
	for i, entry := range callers.Content {
		where := "callers[" + strconv.Itoa(i) + "]"
		id, g, err := parseEntry(entry, where)
		if err != nil {
			return nil, err
		}
		if line, dup := lines[id]; dup {
			return nil, policyError(entry, "%s: identity %q already has an entry at line %d", where, id, line)
		}
		lines[id] = entry.Line
		p.identity = append(p.identity, id)
		if id == AnyIdentity {
			p.anyone = g
		} else {
			p.grants[id] = g
		}
	}
	return p, nil
}

// parseEntry parses one entry of callers.
func parseEntry(entry *yaml.Node, where string) (string, *grant, error) {
	var (
		idNode *yaml.Node
		g      grant
	)
	err := eachKey(entry, where, []string{"identity", "read", "write"}, func(key string, v *yaml.Node) error {
		var err error
		switch key {
		case "identity":
			idNode = v
		case "read":
			g.read, err = parseGroups(v, where+".read")
		case "write":
			g.write, err = parseGroups(v, where+".write")
		}
		return err
	})
	if err != nil {
		return "", nil, err
	}
	if idNode == nil {
		return "", nil, policyError(entry, "%s: the key \"identity\" is missing", where)
	}
	id, err := parseIdentity(idNode, where)
	if err != nil {
		return "", nil, err
	}
	return id, &g, nil
}

func parseIdentity(n *yaml.Node, where string) (string, error) {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		return "", policyError(n, "%s.identity: want a string", where)
	}
	id := n.Value
	switch {
	case id == "":
		return "", policyError(n, "%s.identity: empty", where)
	case strings.TrimFunc(id, unicode.IsSpace) != id:
		return "", policyError(n, "%s.identity %q: leading or trailing space", where, id)
	case id == caller.Anonymous:
		return "", policyError(n, "%s.identity %q: no authenticated caller has this identity", where, id)
	case id != AnyIdentity && strings.Contains(id, "*"):
		return "", policyError(n, "%s.identity %q: \"*\" stands only alone, for every authenticated caller; patterns are not supported", where, id)
	}
	return id, nil
}

// parseGroups parses a list of project ids or "*".
func parseGroups(n *yaml.Node, where string) (groups, error) {
	if n.Kind != yaml.SequenceNode {
		return groups{}, policyError(n, "%s: want a list of project ids or \"*\"", where)
	}
	var g groups
	for i, v := range n.Content {
		if v.Kind != yaml.ScalarNode || v.Tag == "!!null" {
			return groups{}, policyError(v, "%s[%d]: want a project id or \"*\"", where, i)
		}
		switch id := v.Value; {
		case id == AllGroups:
			g.all = true
		case server.IsAtlasID(id):
			g.ids = append(g.ids, id)
		default:
			hint := ""
			if server.IsAtlasID(strings.ToLower(id)) {
				hint = " (project ids are lowercase)"
			}
			return groups{}, policyError(v, "%s[%d]: %q is not a project id (24 lowercase hexadecimal characters) or \"*\"%s", where, i, id, hint)
		}
	}
	if g.all {
		g.ids = nil
	}
	slices.Sort(g.ids)
	g.ids = slices.Compact(g.ids)
	return g, nil
}

// eachKey calls f for every key of mapping n, in order, refusing keys not
// in known, duplicate keys and aliases.
func eachKey(n *yaml.Node, where string, known []string, f func(key string, v *yaml.Node) error) error {
	if n.Kind != yaml.MappingNode {
		return policyError(n, "%s: want a mapping with the keys %s", where, strings.Join(known, ", "))
	}
	seen := make(map[string]int)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			return policyError(k, "%s: want keys %s", where, strings.Join(known, ", "))
		}
		if !slices.Contains(known, k.Value) {
			return policyError(k, "%s: unknown key %q; want %s", where, k.Value, strings.Join(known, ", "))
		}
		if line, dup := seen[k.Value]; dup {
			return policyError(k, "%s: key %q already given at line %d", where, k.Value, line)
		}
		seen[k.Value] = k.Line
		if v.Kind == yaml.AliasNode {
			return policyError(v, "%s.%s: YAML aliases are not supported", where, k.Value)
		}
		if err := f(k.Value, v); err != nil {
			return err
		}
	}
	return nil
}

// Allows reports whether the caller identity may perform action on the
// project groupID. The anonymous or empty identity is never allowed; the
// group is matched exactly (a "*" in a request is no wildcard), so a
// malformed id is allowed only by a grant of all projects.
func (p *Policy) Allows(identity, groupID string, action Action) bool {
	if identity == "" || identity == caller.Anonymous {
		return false
	}
	if p == nil {
		return action == Read
	}
	for _, g := range []*grant{p.grants[identity], p.anyone} {
		if g == nil {
			continue
		}
		switch action {
		case Read:
			if g.read.contains(groupID) || g.write.contains(groupID) {
				return true
			}
		case Write:
			if g.write.contains(groupID) {
				return true
			}
		}
	}
	return false
}

// Summary describes in one line what p allows, for the daemon's start-up
// log.
func (p *Policy) Summary() string {
	if p == nil {
		return "no policy file: every authenticated caller may read, nobody may change"
	}
	if len(p.identity) == 0 {
		return "policy: nobody may read or change"
	}
	parts := make([]string, 0, len(p.identity))
	for _, id := range p.identity {
		g, who := p.grants[id], id
		if id == AnyIdentity {
			g, who = p.anyone, "every authenticated caller"
		}
		var may []string
		if !g.read.empty() {
			may = append(may, "read "+g.read.String())
		}
		if !g.write.empty() {
			may = append(may, "change "+g.write.String())
		}
		if len(may) == 0 {
			may = append(may, "do nothing")
		}
		parts = append(parts, who+" may "+strings.Join(may, " and "))
	}
	return "policy: " + strings.Join(parts, "; ")
}
