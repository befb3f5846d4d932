package main

import (
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/encryptiond/encryptiond/server/audit"
	"github.com/encryptiond/encryptiond/server/failure"
)

const testGroup = "5f4e3d2c1b0a998877665544"

// step is one change of a scenario, to one project, and what came of it.
type step struct {
	prov    int
	action  string // enable, update, disable, validate
	value   string // what it writes; "" for a disable
	outcome string // its audit record's outcome; outcomeNotSent for none
	// noAnswer: the caller got no answer from the service (whatever the
	// audit log says).
	noAnswer bool
	lateBy   time.Duration // see sentChange.lateBy
}

// scenario builds the changes and audit records of steps, one second
// apart, each record in the middle of its change's call, as the daemon
// writes them.
func scenario(steps []step) ([]*sentChange, []auditRecord) {
	t0 := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	var changes []*sentChange
	var records []auditRecord
	for i, s := range steps {
		start := t0.Add(time.Duration(i) * time.Second)
		c := &sentChange{group: testGroup, provider: s.prov, action: s.action, value: s.value,
			start: start, end: start.Add(100 * time.Millisecond), answered: !s.noAnswer, lateBy: s.lateBy}
		code := codes.OK
		switch s.outcome {
		case audit.OutcomeRefused:
			code = codes.InvalidArgument
		case audit.OutcomeFailed, audit.OutcomeUnknown:
			code = codes.Unavailable
		}
		c.code = code
		if s.noAnswer {
			c.code = codes.Unavailable
		}
		changes = append(changes, c)
		if s.outcome != outcomeNotSent {
			records = append(records, auditRecord{Time: start.Add(50 * time.Millisecond), Audit: true, GroupID: testGroup,
				Provider: providerNames[s.prov], Action: s.action, Code: code.String(), Outcome: s.outcome})
		}
	}
	return changes, records
}

func on(v string) providerState { return providerState{enabled: true, value: v} }

// finalOf is Atlas's final state with aws as given and the others
// disabled.
func finalOf(aws providerState) map[string][numProviders]providerState {
	return map[string][numProviders]providerState{testGroup: {aws, {}, {}}}
}

// TestAccountFinalState checks sequences of reported outcomes against
// final states: what the audit log allows, and what it does not.
func TestAccountFinalState(t *testing.T) {
	t.Parallel()
	const (
		applied, unknown, failed, refused, validated = audit.OutcomeApplied, audit.OutcomeUnknown, audit.OutcomeFailed, audit.OutcomeRefused, audit.OutcomeValidated
	)
	enable := func(v, outcome string) step { return step{prov: aws, action: "enable", value: v, outcome: outcome} }
	update := func(v, outcome string) step { return step{prov: aws, action: "update", value: v, outcome: outcome} }
	disable := func(outcome string) step { return step{prov: aws, action: "disable", outcome: outcome} }
	tests := []struct {
		name      string
		steps     []step
		final     providerState
		wantExact int    // pairs with one allowed state, of 3
		want      string // "" when accounted for; else a problem containing this
	}{
		{"nothing sent, nothing enabled", nil, providerState{}, 3, ""},
		{"nothing sent, something enabled", nil, on("x"), 3, "a value no change of the driver wrote"},
		{"applied is what Atlas has", []step{enable("a", applied)}, on("a"), 3, ""},
		{"applied but Atlas has it disabled", []step{enable("a", applied)}, providerState{}, 3, "Atlas has it disabled; the audit log allows only enabled, \"a\" (change #1 (awsKms enable"},
		{"the last applied wins", []step{enable("a", applied), update("b", applied)}, on("b"), 3, ""},
		{"an earlier applied value: the later applied change is lost", []step{enable("a", applied), update("b", applied)}, on("a"), 3, "the value of change #1 (awsKms enable sent at 12:00:00.000000), reported applied; the audit log allows only enabled, \"b\" (change #2"},
		{"unknown after applied, landed", []step{enable("a", applied), update("b", unknown)}, on("b"), 2, ""},
		{"unknown after applied, not landed", []step{enable("a", applied), update("b", unknown)}, on("a"), 2, ""},
		{"unknown after applied allows neither a disable", []step{enable("a", applied), update("b", unknown)}, providerState{}, 2, "allows only enabled, \"a\" (change #1 (awsKms enable sent at 12:00:00.000000), reported applied) or enabled, \"b\" (change #2"},
		{"applied after unknown decides", []step{enable("a", unknown), enable("b", applied)}, on("a"), 3, "the value of change #1"},
		{"two unknowns from nothing: any of three", []step{enable("a", unknown), enable("b", unknown)}, on("a"), 2, ""},
		{"two unknowns from nothing: nothing", []step{enable("a", unknown), enable("b", unknown)}, providerState{}, 2, ""},
		{"failed is not in Atlas", []step{enable("a", applied), update("b", failed)}, on("a"), 3, ""},
		{"failed but in Atlas", []step{enable("a", applied), update("b", failed)}, on("b"), 3, "the value of change #2 (awsKms update sent at 12:00:01.000000), reported failed"},
		{"refused but in Atlas", []step{enable("a", refused)}, on("a"), 3, "reported refused"},
		{"validated but in Atlas", []step{enable("a", applied), {prov: aws, action: "validate", value: "v", outcome: validated}}, on("v"), 3, "reported validated"},
		{"not sent but in Atlas", []step{enable("a", applied), {prov: aws, action: "update", value: "n", outcome: outcomeNotSent, noAnswer: true}}, on("n"), 3, "reported not sent"},
		{"not sent is not in Atlas", []step{enable("a", applied), {prov: aws, action: "update", value: "n", outcome: outcomeNotSent, noAnswer: true}}, on("a"), 3, ""},
		{"applied disable", []step{enable("a", applied), disable(applied)}, providerState{}, 3, ""},
		{"applied disable, still enabled", []step{enable("a", applied), disable(applied)}, on("a"), 3, "allows only disabled (change #2 (awsKms disable"},
		{"unknown disable: either", []step{enable("a", applied), disable(unknown)}, providerState{}, 2, ""},
		{"unknown disable: either, enabled", []step{enable("a", applied), disable(unknown)}, on("a"), 2, ""},
		{"failed disable, disabled", []step{enable("a", applied), disable(failed)}, providerState{}, 3, "Atlas has it disabled, as the disable #2 (awsKms disable sent at 12:00:01.000000) would have left it, reported failed; the audit log allows only enabled, \"a\""},
		{"another provider's changes do not count", []step{enable("a", applied), {prov: gcp, action: "enable", value: "g", outcome: unknown}}, on("a"), 2, ""},
		// Late landings: change #2 was sent while Atlas was slow; #3 was
		// sent 0.9 s after #2 was answered.
		{"late landing possible, not needed", []step{enable("a", applied), {prov: aws, action: "update", value: "b", outcome: unknown, lateBy: 2 * time.Second}, update("c", applied)}, on("c"), 3, ""},
		{"late landing without lateBy is unaccounted", []step{enable("a", applied), update("b", unknown), update("c", applied)}, on("b"), 3, "the value of change #2 (awsKms update sent at 12:00:01.000000), reported unknown; the audit log allows only enabled, \"c\""},
		{"late landing later than lateBy allows", []step{enable("a", applied), {prov: aws, action: "update", value: "b", outcome: unknown, lateBy: 500 * time.Millisecond}, update("c", applied)}, on("b"), 3, "reported unknown; the audit log allows only"},
		{"a late landing only explains the unknown change's own value", []step{enable("a", applied), {prov: aws, action: "update", value: "b", outcome: unknown, lateBy: 2 * time.Second}, update("c", applied)}, on("a"), 3, "the value of change #1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			changes, records := scenario(tt.steps)
			final := finalOf(tt.final)
			if slices.ContainsFunc(tt.steps, func(s step) bool { return s.prov == gcp }) {
				final[testGroup] = [numProviders]providerState{tt.final, {}, on("g")}
			}
			a := account(changes, records, final)
			if a.pairs != 3 || a.exact != tt.wantExact {
				t.Errorf("account() checked %d pairs, %d exact; want 3, %d", a.pairs, a.exact, tt.wantExact)
			}
			if len(a.overtaken) > 0 {
				t.Errorf("account() = overtaken %q, want none", a.overtaken)
			}
			switch {
			case tt.want == "" && !a.ok():
				t.Errorf("account() = problems %q, want none", a.problems)
			case tt.want != "" && (len(a.problems) != 1 || !strings.Contains(a.problems[0], tt.want)):
				t.Errorf("account() = problems %q, want one containing %q", a.problems, tt.want)
			}
		})
	}
}

// TestAccountLateLanding checks that a change reported applied whose value
// an earlier unknown change's late landing replaced is counted apart:
// accounted for, and overtaken.
func TestAccountLateLanding(t *testing.T) {
	t.Parallel()
	changes, records := scenario([]step{
		{prov: aws, action: "enable", value: "a", outcome: audit.OutcomeApplied},
		{prov: aws, action: "update", value: "b", outcome: audit.OutcomeUnknown, lateBy: 2 * time.Second},
		{prov: aws, action: "update", value: "c", outcome: audit.OutcomeApplied},
	})
	a := account(changes, records, finalOf(on("b")))
	if !a.ok() {
		t.Errorf("account() = problems %q, want none", a.problems)
	}
	want := `awsKms: Atlas has it enabled, "b", from change #2 (awsKms update sent at 12:00:01.000000), reported unknown, which landed after the change(s) it was sent before were answered; the audit log's order allows only enabled, "c" (change #3 (awsKms update sent at 12:00:02.000000), reported applied)`
	if len(a.overtaken) != 1 || !strings.Contains(a.overtaken[0], want) {
		t.Errorf("account() = overtaken %q, want one containing %q", a.overtaken, want)
	}
}

// TestAccountLateRecords checks late audit records: one settles the
// latest change of its project reported unknown (here: failed, so Atlas
// must not show it), and one that matches no such change is a problem.
func TestAccountLateRecords(t *testing.T) {
	t.Parallel()
	changes, records := scenario([]step{
		{prov: aws, action: "enable", value: "a", outcome: audit.OutcomeApplied},
		{prov: aws, action: "update", value: "b", outcome: audit.OutcomeUnknown},
	})
	late := auditRecord{Time: changes[1].end.Add(time.Second), Audit: true, Late: true, GroupID: testGroup,
		Provider: providerNames[aws], Action: "update", Outcome: audit.OutcomeFailed}
	records = append(records, late)
	if a := account(changes, records, finalOf(on("a"))); !a.ok() || a.settled[audit.OutcomeFailed] != 1 {
		t.Errorf("account() with a late record settling failed, Atlas showing the change before = problems %q, settled %v; want none, 1 failed", a.problems, a.settled)
	}
	changes, _ = scenario([]step{
		{prov: aws, action: "enable", value: "a", outcome: audit.OutcomeApplied},
		{prov: aws, action: "update", value: "b", outcome: audit.OutcomeUnknown},
	})
	if a := account(changes, records, finalOf(on("b"))); a.ok() {
		t.Errorf("account() with a late record saying failed, Atlas showing the change = no problem, want one")
	}
	changes, records = scenario([]step{{prov: aws, action: "enable", value: "a", outcome: audit.OutcomeApplied}})
	late.Action = "enable"
	records = append(records, late)
	if a := account(changes, records, finalOf(on("a"))); len(a.problems) != 1 || !strings.Contains(a.problems[0], "matches no change reported unknown") {
		t.Errorf("account() with a late record after an applied change = problems %q, want one saying it matches no change", a.problems)
	}
}

// TestAccountRecords checks the pairing of changes with audit records.
func TestAccountRecords(t *testing.T) {
	t.Parallel()
	base := func() ([]*sentChange, []auditRecord) {
		return scenario([]step{
			{prov: aws, action: "enable", value: "a", outcome: audit.OutcomeApplied},
			{prov: azure, action: "enable", value: "z", outcome: audit.OutcomeUnknown},
		})
	}
	final := map[string][numProviders]providerState{testGroup: {on("a"), on("z"), {}}}
	tests := []struct {
		name   string
		change func(cs []*sentChange, rs []auditRecord) []auditRecord
		want   string // "" for none
	}{
		{"as written", func(_ []*sentChange, rs []auditRecord) []auditRecord { return rs }, ""},
		{"a record between two changes", func(cs []*sentChange, rs []auditRecord) []auditRecord {
			r := rs[0]
			r.Time = cs[0].end.Add(time.Millisecond)
			return append(rs, r)
		}, "the audit record at 12:00:00.101000 (awsKms enable, applied) matches no change the driver sent"},
		{"a record of a project never changed", func(_ []*sentChange, rs []auditRecord) []auditRecord {
			r := rs[0]
			r.GroupID = "aaaaaaaaaaaaaaaaaaaaaaaa"
			return append(rs, r)
		}, "aaaaaaaaaaaaaaaaaaaaaaaa: the audit record at 12:00:00.050000 (awsKms enable, applied) matches no change"},
		{"two records for one change", func(_ []*sentChange, rs []auditRecord) []auditRecord {
			r := rs[0]
			r.Time = r.Time.Add(time.Millisecond)
			return append(rs, r)
		}, "change #1 (awsKms enable sent at 12:00:00.000000) has two audit records"},
		{"no record of an answered change", func(_ []*sentChange, rs []auditRecord) []auditRecord { return rs[1:] }, "change #1 (awsKms enable sent at 12:00:00.000000) was answered OK by the service but has no audit record"},
		{"a record naming another provider", func(_ []*sentChange, rs []auditRecord) []auditRecord {
			rs[0].Provider = "googleCloudKms"
			return rs
		}, "the audit record of change #1 (awsKms enable sent at 12:00:00.000000) names googleCloudKms enable"},
		{"a record with another code", func(_ []*sentChange, rs []auditRecord) []auditRecord {
			rs[1].Code = "Internal"
			return rs
		}, "was answered Unavailable, its audit record says Internal (unknown)"},
		{"OK but audited unknown", func(_ []*sentChange, rs []auditRecord) []auditRecord {
			rs[0].Outcome = audit.OutcomeUnknown
			return rs
		}, "was answered OK, its audit record says unknown"},
		{"overlapping changes", func(cs []*sentChange, rs []auditRecord) []auditRecord {
			cs[1].start = cs[0].end.Add(-time.Millisecond)
			return rs
		}, "overlap in time"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cs, rs := base()
			a := account(cs, tt.change(cs, rs), final)
			switch {
			case tt.want == "" && !a.ok():
				t.Errorf("account() = problems %q, want none", a.problems)
			case tt.want != "" && (len(a.problems) != 1 || !strings.Contains(a.problems[0], tt.want)):
				t.Errorf("account() = problems %q, want one containing %q", a.problems, tt.want)
			}
		})
	}
}

// TestAccountCounts checks the counts of a run: outcomes, answers lost,
// and what reads showed of unknown outcomes.
func TestAccountCounts(t *testing.T) {
	t.Parallel()
	cs, rs := scenario([]step{
		{prov: aws, action: "enable", value: "a", outcome: audit.OutcomeApplied},
		{prov: aws, action: "update", value: "b", outcome: audit.OutcomeUnknown},                 // landed
		{prov: aws, action: "update", value: "c", outcome: audit.OutcomeUnknown},                 // did not
		{prov: aws, action: "update", value: "d", outcome: audit.OutcomeUnknown},                 // not read
		{prov: aws, action: "update", value: "e", outcome: audit.OutcomeApplied, noAnswer: true}, // answer lost
		{prov: aws, action: "update", value: "f", outcome: outcomeNotSent, noAnswer: true},
		{prov: azure, action: "validate", value: "v", outcome: audit.OutcomeValidated},
		{prov: azure, action: "enable", value: "r", outcome: audit.OutcomeRefused},
	})
	cs[1].seen, cs[2].seen = &providerState{true, "b"}, &providerState{true, "b"}
	a := account(cs, rs, finalOf(on("e")))
	if !a.ok() {
		t.Fatalf("account() = problems %q, want none", a.problems)
	}
	want := map[string]int{audit.OutcomeApplied: 2, audit.OutcomeUnknown: 3, outcomeNotSent: 1, audit.OutcomeValidated: 1, audit.OutcomeRefused: 1}
	if a.changes != 8 || !mapsEqual(a.outcomes, want) {
		t.Errorf("account() = %d changes %v, want 8 %v", a.changes, a.outcomes, want)
	}
	if a.answerLost != 1 || a.landed != 1 || a.notLanded != 1 || a.unread != 1 {
		t.Errorf("account() = %d answers lost, unknown %d landed, %d not, %d unread; want 1 each", a.answerLost, a.landed, a.notLanded, a.unread)
	}
	if got, want := sortedOutcomes(a.outcomes), []string{"applied", "validated", "refused", "unknown", "not sent"}; !slices.Equal(got, want) {
		t.Errorf("sortedOutcomes() = %q, want %q", got, want)
	}
}

func mapsEqual(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestReadAudit(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	logs := []string{filepath.Join(dir, "encryptiond.log"), filepath.Join(dir, "encryptiond-2.log")}
	texts := []string{
		`{"time":"2026-11-29T12:00:00.123456789Z","level":"INFO","msg":"serving","grpc_addr":"127.0.0.1:1"}
{"time":"2026-11-29T12:00:01.5Z","level":"INFO","msg":"audit","logger":"audit","audit":true,"caller":"anonymous","group_id":"` + testGroup + `","provider":"awsKms","action":"enable","fields":["enabled"],"code":"OK","outcome":"applied","attempts":1,"duration":"2ms"}
not JSON "audit":true
`,
		`{"time":"2026-11-29T12:00:02Z","level":"INFO","msg":"audit","audit":true,"group_id":"` + testGroup + `","provider":"awsKms","action":"disable","code":"Unavailable","outcome":"unknown"}
`,
	}
	for i, text := range texts {
		if err := os.WriteFile(logs[i], []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	got, err := readAudit(logs)
	want := []auditRecord{
		{Time: time.Date(2026, 11, 29, 12, 0, 1, 5e8, time.UTC), Audit: true, GroupID: testGroup, Provider: "awsKms", Action: "enable", Code: "OK", Outcome: "applied"},
		{Time: time.Date(2026, 11, 29, 12, 0, 2, 0, time.UTC), Audit: true, GroupID: testGroup, Provider: "awsKms", Action: "disable", Code: "Unavailable", Outcome: "unknown"},
	}
	if err != nil || len(got) != len(want) || !got[0].Time.Equal(want[0].Time) || got[1].Outcome != "unknown" || got[0].Action != "enable" {
		t.Errorf("readAudit() = %+v, %v, want %+v", got, err, want)
	}
	if _, err := readAudit([]string{filepath.Join(dir, "missing.log")}); err == nil {
		t.Error("readAudit(missing) = nil error, want one")
	}
}

func TestAnsweredAndKnownUnchanged(t *testing.T) {
	t.Parallel()
	svc := func(c codes.Code, reason string, info failure.Info) error {
		info.Reason = reason
		if info.Domain == "" {
			info.Domain = failure.DomainService
		}
		return failure.New(c, "x", info)
	}
	tests := []struct {
		name         string
		action       string
		err          error
		wantCode     codes.Code
		wantAnswered bool
		wantNoChange bool
	}{
		{"OK", "enable", nil, codes.OK, true, false},
		{"refused by the rules", "update", svc(codes.InvalidArgument, failure.ReasonMissingAttribute, failure.Info{}), codes.InvalidArgument, true, true},
		{"Atlas 5xx: unknown", "enable", svc(codes.Unavailable, "UNEXPECTED_ERROR", failure.Info{Domain: failure.DomainAtlas, HTTPStatus: 500, Outcome: failure.OutcomeUnknown}), codes.Unavailable, true, false},
		{"connection lost: unknown", "disable", svc(codes.Unavailable, failure.ReasonOutcomeUnknown, failure.Info{}), codes.Unavailable, true, false},
		{"shutting down before sending: failed", "enable", svc(codes.Unavailable, failure.ReasonShuttingDown, failure.Info{}), codes.Unavailable, true, true},
		{"the daemon was down", "enable", status.Error(codes.Unavailable, "connection refused"), codes.Unavailable, false, false},
		{"not a status", "enable", errors.New("answer shows awsKms disabled"), codes.Unknown, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			code, ok := answered(tt.err)
			if code != tt.wantCode || ok != tt.wantAnswered {
				t.Errorf("answered(%v) = %v, %v, want %v, %v", tt.err, code, ok, tt.wantCode, tt.wantAnswered)
			}
			if got := knownUnchanged(tt.action, tt.err); got != tt.wantNoChange {
				t.Errorf("knownUnchanged(%s, %v) = %v, want %v", tt.action, tt.err, got, tt.wantNoChange)
			}
		})
	}
}

func TestChaosClass(t *testing.T) {
	t.Parallel()
	svc := func(c codes.Code, domain, reason string) error {
		return failure.New(c, "x", failure.Info{Domain: domain, Reason: reason})
	}
	tests := []struct {
		name      string
		err       error
		wantClass string
		wantChaos bool
	}{
		{"cut while the change was in flight", svc(codes.Unavailable, failure.DomainService, failure.ReasonOutcomeUnknown), "Unavailable OUTCOME_UNKNOWN", true},
		{"cut before", svc(codes.Unavailable, failure.DomainService, failure.ReasonShuttingDown), "Unavailable SHUTTING_DOWN", true},
		{"Atlas down", svc(codes.Unavailable, failure.DomainAtlas, failure.ReasonUnreachable), "Unavailable ATLAS_UNREACHABLE", true},
		{"the daemon down", status.Error(codes.Unavailable, "connection refused"), "Unavailable: no answer from the daemon", true},
		{"a deadline in the client", status.Error(codes.DeadlineExceeded, "context deadline exceeded"), "DeadlineExceeded: no answer from the daemon", false},
		{"a refusal", svc(codes.InvalidArgument, failure.DomainService, failure.ReasonMissingAttribute), "InvalidArgument MISSING_ATTRIBUTE", false},
		{"REST 503 shutting down", &restError{status: http.StatusServiceUnavailable, body: `{"error": {"code": 503, "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "SHUTTING_DOWN"}]}}`}, "REST 503 SHUTTING_DOWN", true},
		{"REST 400", &restError{status: http.StatusBadRequest, body: `{"error": {"details": [{"reason": "INVALID_ATTRIBUTE"}]}}`}, "REST 400 INVALID_ATTRIBUTE", false},
		{"REST without an answer", &noAnswer{errors.New("connection refused")}, "REST: no answer from the daemon", true},
		{"a wrong answer", errors.New("answer shows awsKms disabled"), "REST: no answer from the daemon", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if class, ok := chaosClass(tt.err); class != tt.wantClass || ok != tt.wantChaos {
				t.Errorf("chaosClass(%v) = %q, %v, want %q, %v", tt.err, class, ok, tt.wantClass, tt.wantChaos)
			}
		})
	}
}

// TestChaosExplain checks that a chaos error is explained only by an
// event whose window the call overlaps, or by the event under way.
func TestChaosExplain(t *testing.T) {
	t.Parallel()
	c := &chaos{}
	unknown := failure.New(codes.Unavailable, "x", failure.Info{Domain: failure.DomainService, Reason: failure.ReasonOutcomeUnknown})
	before := time.Now()
	closeWindow := c.open("daemon SIGTERM")
	during := time.Now()
	if _, ok := c.explain(unknown, during, during); !ok {
		t.Error("explain() during an event under way = false, want true")
	}
	closeWindow(0)
	after := time.Now().Add(time.Second)
	if _, ok := c.explain(unknown, before.Add(-time.Second), before.Add(-time.Millisecond)); ok {
		t.Error("explain() of a call that ended before the event = true, want false")
	}
	if _, ok := c.explain(unknown, after, after); ok {
		t.Error("explain() of a call after the window = true, want false")
	}
	if _, ok := c.explain(errors.New("answer shows awsKms disabled"), during, during); ok {
		t.Error("explain() of a wrong answer during an event = true, want false")
	}
}
