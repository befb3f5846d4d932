package authz

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/encryptiond/encryptiond/server/caller"
)

const (
	keyAdmin = "spiffe://example.org/ns/platform/sa/key-admin"
	auditor  = "spiffe://example.org/ns/apps/sa/auditor"
	stranger = "spiffe://example.org/ns/apps/sa/stranger"
	writer   = "writer.example.org"

	group1 = "32b6e34b3d91647abb20e7b8"
	group2 = "5f1e0e8a2b7c4d3e9f0a1b2c"
	group3 = "000000000000000000000003"
)

const examplePolicy = `# encryptiond authorization policy
callers:
  - identity: spiffe://example.org/ns/platform/sa/key-admin
    read: ["*"]
    write: ["32b6e34b3d91647abb20e7b8"]
  - identity: spiffe://example.org/ns/apps/sa/auditor
    read: ["*"]
`

func mustParse(t *testing.T, data string) *Policy {
	t.Helper()
	p, err := ParsePolicy([]byte(data))
	if err != nil {
		t.Fatalf("ParsePolicy(%q) = %v", data, err)
	}
	return p
}

func TestParsePolicy(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		data    string
		summary string
	}{
		{
			name:    "yaml example",
			data:    examplePolicy,
			summary: "policy: " + keyAdmin + " may read all projects and change project " + group1 + "; " + auditor + " may read all projects",
		},
		{
			name:    "json with tabs",
			data:    "{\n\t\"callers\": [\n\t\t{\"identity\": \"" + keyAdmin + "\", \"read\": [\"*\"], \"write\": [\"" + group1 + "\"]},\n\t\t{\"identity\": \"" + auditor + "\", \"read\": [\"*\"]}\n\t]\n}\n",
			summary: "policy: " + keyAdmin + " may read all projects and change project " + group1 + "; " + auditor + " may read all projects",
		},
		{
			name:    "any identity, unquoted ids, duplicates merged",
			data:    "callers:\n- identity: '*'\n  read: [" + group2 + ", " + group1 + ", " + group2 + "]\n- identity: " + writer + "\n  write: [\"*\", " + group1 + "]\n",
			summary: "policy: every authenticated caller may read projects " + group1 + ", " + group2 + "; " + writer + " may change all projects",
		},
		{
			name:    "entry without grants",
			data:    "callers:\n  - identity: " + auditor + "\n    read: []\n",
			summary: "policy: " + auditor + " may do nothing",
		},
		{
			name:    "nobody",
			data:    "callers: []",
			summary: "policy: nobody may read or change",
		},
		{
			name:    "all-digit id",
			data:    "callers:\n  - identity: a\n    read: [123456789012345678901234]\n",
			summary: "policy: a may read project 123456789012345678901234",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := mustParse(t, tt.data)
			if got := p.Summary(); got != tt.summary {
				t.Errorf("Summary() = %q, want %q", got, tt.summary)
			}
		})
	}
}

func TestParsePolicyErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		data string
		want string // a part of the error
	}{
		{"empty", "", "empty"},
		{"comments only", "# nothing\n", "empty"},
		{"no callers", "{}", `line 1: the key "callers" is missing`},
		{"not a mapping", "- identity: a\n", "line 1: policy: want a mapping"},
		{"unknown top-level key", "callers: []\nadmins: []\n", `line 2: policy: unknown key "admins"`},
		{"callers not a list", "callers: {identity: a}\n", "line 1: callers: want a list"},
		{"entry not a mapping", "callers:\n  - a\n", "line 2: callers[0]: want a mapping"},
		{"unknown entry key", "callers:\n  - identity: a\n    reed: [\"*\"]\n", `line 3: callers[0]: unknown key "reed"; want identity, read, write`},
		{"missing identity", "callers:\n  - identity: a\n  - read: [\"*\"]\n", `line 3: callers[1]: the key "identity" is missing`},
		{"empty identity", "callers:\n  - identity: \"\"\n", "line 2: callers[0].identity: empty"},
		{"null identity", "callers:\n  - identity:\n    read: []\n", "line 2: callers[0].identity: want a string"},
		{"list identity", "callers:\n  - identity: [a]\n", "line 2: callers[0].identity: want a string"},
		{"identity with space", "callers:\n  - identity: \" a\"\n", "leading or trailing space"},
		{"anonymous identity", "callers:\n  - identity: anonymous\n", `callers[0].identity "anonymous": no authenticated caller`},
		{"identity pattern", "callers:\n  - identity: spiffe://example.org/*\n", "patterns are not supported"},
		{"duplicate identity", "callers:\n  - identity: a\n  - identity: b\n  - identity: a\n", `line 4: callers[2]: identity "a" already has an entry at line 2`},
		{"duplicate key", "callers:\n  - identity: a\n    identity: b\n", `line 3: callers[0]: key "identity" already given at line 2`},
		{"scalar groups", "callers:\n  - identity: a\n    read: \"*\"\n", "line 3: callers[0].read: want a list"},
		{"uppercase group", "callers:\n  - identity: a\n    write:\n      - 32B6E34B3D91647ABB20E7B8\n", `line 4: callers[0].write[0]: "32B6E34B3D91647ABB20E7B8" is not a project id (24 lowercase hexadecimal characters) or "*" (project ids are lowercase)`},
		{"short group", "callers:\n  - identity: a\n    read: [123]\n", `line 3: callers[0].read[0]: "123" is not a project id`},
		{"null group", "callers:\n  - identity: a\n    read: [null]\n", "line 3: callers[0].read[0]: want a project id"},
		{"nested group", "callers:\n  - identity: a\n    read: [[\"*\"]]\n", "line 3: callers[0].read[0]: want a project id"},
		{"alias", "callers:\n  - identity: a\n    read: &r [\"*\"]\n  - identity: b\n    read: *r\n", "line 5: callers[1].read: YAML aliases are not supported"},
		{"two documents", "callers: []\n---\ncallers: []\n", "more than one YAML document"},
		{"syntax", "callers: [\n", "authz policy: yaml:"},
		{"json unknown key", "{\"callers\": [\n  {\"identity\": \"a\",\n   \"writes\": []}]}", `line 3: callers[0]: unknown key "writes"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, err := ParsePolicy([]byte(tt.data))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ParsePolicy(%q) = %v, %v; want an error containing %q", tt.data, p, err, tt.want)
			}
		})
	}
}

func TestLoadPolicy(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, data string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}

	good := write("policy.yaml", examplePolicy)
	p, err := LoadPolicy(good)
	if err != nil {
		t.Fatalf("LoadPolicy(%s) = %v", good, err)
	}
	if !p.Allows(keyAdmin, group1, Write) {
		t.Errorf("LoadPolicy(%s).Allows(%s, %s, Write) = false, want true", good, keyAdmin, group1)
	}

	tests := []struct {
		name, path, want string
	}{
		{"missing", filepath.Join(dir, "missing.yaml"), "no such file"},
		{"bad", write("bad.json", `{"callers": [{"identity": ""}]}`), "bad.json: authz policy: line 1: callers[0].identity: empty"},
		{"too large", write("large.yaml", "# "+strings.Repeat("x", MaxPolicySize)+"\ncallers: []\n"), "larger than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if _, err := LoadPolicy(tt.path); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("LoadPolicy(%s) = %v, want an error containing %q", tt.path, err, tt.want)
			}
		})
	}
}

func TestAllows(t *testing.T) {
	t.Parallel()
	p := mustParse(t, examplePolicy+`  - identity: "*"
    read: [`+group3+`]
  - identity: `+writer+`
    write: [`+group2+`]
`)
	tests := []struct {
		policy   *Policy
		identity string
		group    string
		action   Action
		want     bool
	}{
		{p, keyAdmin, group2, Read, true},
		{p, keyAdmin, group1, Write, true},
		{p, keyAdmin, group2, Write, false},
		{p, auditor, group1, Read, true},
		{p, auditor, group1, Write, false},
		{p, stranger, group3, Read, true}, // the "*" entry
		{p, stranger, group2, Read, false},
		{p, stranger, group3, Write, false},
		{p, writer, group2, Read, true}, // write implies read
		{p, writer, group2, Write, true},
		{p, writer, group1, Read, false},
		{p, writer, group3, Read, true}, // the "*" entry adds to the caller's own
		{p, keyAdmin, "not-a-group", Read, true},
		{p, keyAdmin, "*", Read, true},
		{p, writer, "*", Write, false}, // a "*" in a request is no wildcard
		{p, writer, "", Write, false},
		{p, caller.Anonymous, group3, Read, false},
		{p, "", group3, Read, false},
		{p, "SPIFFE://example.org/ns/apps/sa/auditor", group1, Read, false}, // exact match
		{p, keyAdmin, group1, Action(0), false},
		{p, keyAdmin, group1, Action(7), false},
		{nil, stranger, group1, Read, true},
		{nil, stranger, "whatever", Read, true},
		{nil, stranger, group1, Write, false},
		{nil, caller.Anonymous, group1, Read, false},
	}
	for _, tt := range tests {
		if got := tt.policy.Allows(tt.identity, tt.group, tt.action); got != tt.want {
			t.Errorf("Allows(%q, %q, %v) with %s = %v, want %v", tt.identity, tt.group, tt.action, tt.policy.Summary(), got, tt.want)
		}
	}
}

func TestActionString(t *testing.T) {
	t.Parallel()
	for a, want := range map[Action]string{Read: "read", Write: "write", Action(9): "Action(9)"} {
		if got := a.String(); got != want {
			t.Errorf("Action(%d).String() = %q, want %q", int(a), got, want)
		}
	}
}

func TestNilPolicySummary(t *testing.T) {
	t.Parallel()
	var p *Policy
	if got, want := p.Summary(), "no policy file: every authenticated caller may read, nobody may change"; got != want {
		t.Errorf("Summary() = %q, want %q", got, want)
	}
}
