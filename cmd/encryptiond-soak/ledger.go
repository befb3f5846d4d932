package main

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/encryptiond/encryptiond/cmd/internal/procs"
	"github.com/encryptiond/encryptiond/server"
	"github.com/encryptiond/encryptiond/server/audit"
	"github.com/encryptiond/encryptiond/server/failure"
)

// This file accounts for every change a chaos run sent: it pairs each with
// its record in the daemon's audit log and checks the reported outcomes
// against what Atlas (the emulator) holds at the end.
//
// Pairing. The driver makes a project's changes one at a time (a worker
// holds the project from before the call until after the answer), and the
// daemon writes a change's audit record before it answers. So the record
// of a change lies between the moment the driver sent it and the moment
// the answer came back, and the windows of one project's changes do not
// overlap: a record belongs to the change whose window holds its time.
// Both clocks are the same machine's wall clock; the JSON log writes times
// to the nanosecond. A change without a record was never seen by the
// service ("not sent"), which is only possible when its caller got no
// answer from the service either.
//
// Checking. Each change that is not a disable writes a value no other
// change of its project writes (valueFields), so Atlas's final state says
// which change set it, or that the last one to land was a disable. Going
// through one provider's changes in order, the states the audit log allows
// at the end are: after a change reported applied, exactly its effect; a
// change reported unknown adds its effect to the states allowed before it;
// any other outcome (failed, refused, validated, not sent) changes nothing.
// The final state must be one of them.
//
// Late landings. That rule assumes that a change whose outcome is unknown
// has landed, if it ever does, by the time its caller is answered. It need
// not have: when the daemon gives up on a change (its caller's deadline,
// or the cut at the end of its shutdown timeout) it cancels its request,
// but Atlas may already be working on it and apply it later, as late as
// Atlas takes to answer (the emulator, sleeping its latency before reading
// the body, does not notice that the client has gone). Such a change can
// then land after a later change of its project was answered applied, and
// overwrite it. A change sent while Atlas was slow may land up to lateBy
// after its answer; a final state that only such a late landing explains
// is not unaccounted for, but it is a change reported applied that Atlas
// does not show: account counts it apart (overtaken). The daemon prevents
// it: a PATCH it gave up on runs on to Atlas's answer while the project's
// lock is held, and the process waits for such answers before it exits;
// each one gets a second, late audit record with the outcome Atlas's
// answer gave it. A late record belongs to the latest change of its
// project reported unknown before it, and settles that change's outcome
// (applied or failed) for the check; one that matches no such change is a
// problem.

// outcomeNotSent is the outcome of a change the service never saw: its
// caller got no answer from the service, and the audit log has no record
// of it.
const outcomeNotSent = "not sent"

// providerState is what the accounting compares: whether a provider is
// enabled and, if so, its value field, which names the change that set it.
type providerState struct {
	enabled bool
	value   string
}

func (s providerState) equal(o providerState) bool {
	return s.enabled == o.enabled && (!s.enabled || s.value == o.value)
}

func (s providerState) String() string {
	if !s.enabled {
		return "disabled"
	}
	return fmt.Sprintf("enabled, %q", s.value)
}

// docState reads each provider's state from a document as Atlas (the
// emulator's state endpoint) writes it.
func docState(doc map[string]any) [numProviders]providerState {
	var out [numProviders]providerState
	for prov, name := range providerNames {
		d, _ := doc[name].(map[string]any)
		out[prov].enabled, _ = d["enabled"].(bool)
		out[prov].value, _ = d[valueFields[prov]].(string)
	}
	return out
}

// sentChange is one UpdateEncryptionAtRest the load made, as its caller saw
// it.
type sentChange struct {
	group    string
	provider int
	action   string // as the audit log names it: enable, update, disable or validate
	value    string // the value it writes; "" for a disable
	// start and end are the wall-clock times just before the call and just
	// after its answer.
	start, end time.Time
	// answered says that the service answered: OK, or a status carrying
	// the service's ErrorInfo; code is what the caller got.
	answered bool
	code     codes.Code
	// seen is the provider's state at the project's next read, for a
	// change whose outcome the driver did not know (-chaos only).
	seen *providerState
	// lateBy is how long after its answer the change may still land if
	// its outcome is unknown (see Late landings above): the latency Atlas
	// had while it was under way.
	lateBy time.Duration

	record *auditRecord // set by account
	late   *auditRecord // the late record settling an unknown outcome, if any
}

// settled is the change's outcome once its late audit record, if any, has
// settled an unknown one.
func (c *sentChange) settled() string {
	if c.late != nil && c.late.Outcome != audit.OutcomeUnknown {
		return c.late.Outcome
	}
	return c.outcome()
}

// effect is the provider's state once the change has landed.
func (c *sentChange) effect() providerState {
	if c.action == "disable" {
		return providerState{}
	}
	return providerState{enabled: true, value: c.value}
}

// outcome is the change's outcome as reported: its audit record's, or not
// sent. A change the service answered without a record (a defect account
// reports) counts as unknown.
func (c *sentChange) outcome() string {
	switch {
	case c.record != nil:
		return c.record.Outcome
	case c.answered:
		return audit.OutcomeUnknown
	}
	return outcomeNotSent
}

// answered returns the code a caller got and whether the service answered:
// OK, or a status carrying the service's ErrorInfo. A status without one
// was made by the client library: the call never reached the service, or
// its answer was lost.
func answered(err error) (codes.Code, bool) {
	if err == nil {
		return codes.OK, true
	}
	st, ok := status.FromError(err)
	if !ok {
		return codes.Unknown, false
	}
	return st.Code(), failure.Parse(st).Info.Domain != ""
}

// knownUnchanged reports whether the service's answer err to a change says
// that nothing changed: the audit log's outcome for it is refused or
// failed.
func knownUnchanged(action string, err error) bool {
	if _, ok := answered(err); !ok || err == nil {
		return false
	}
	switch audit.Outcome(server.Mutation{Action: action}, err) {
	case audit.OutcomeRefused, audit.OutcomeFailed:
		return true
	}
	return false
}

// ledger collects the changes sent, safe for concurrent use.
type ledger struct {
	mu      sync.Mutex
	changes []*sentChange
}

func (l *ledger) add(c *sentChange) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.changes = append(l.changes, c)
}

func (l *ledger) all() []*sentChange {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.changes)
}

// auditRecord is the part of an audit record the accounting reads.
type auditRecord struct {
	Time     time.Time `json:"time"`
	Audit    bool      `json:"audit"`
	Late     bool      `json:"late"`
	GroupID  string    `json:"group_id"`
	Provider string    `json:"provider"`
	Action   string    `json:"action"`
	Code     string    `json:"code"`
	Outcome  string    `json:"outcome"`
}

// readAudit reads the audit records from the daemon's logs, in order.
func readAudit(paths []string) ([]auditRecord, error) {
	var out []auditRecord
	err := procs.ScanLines(paths, func(line []byte) {
		var r auditRecord
		if json.Unmarshal(line, &r) == nil && r.Audit {
			out = append(out, r)
		}
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// accounting is what account found.
type accounting struct {
	changes  int            // changes sent, validate-only ones included
	outcomes map[string]int // by reported outcome, outcomeNotSent included
	// answerLost counts changes the service audited whose caller got no
	// answer from it.
	answerLost int
	// Changes reported unknown, by what the project's next read showed:
	// their effect (landed), another state (notLanded), or no read.
	landed, notLanded, unread int
	// settled counts changes reported unknown by the outcome their late
	// audit record gave them.
	settled map[string]int
	// pairs is the number of (project, provider) checked; exact, those
	// whose reported outcomes allow one final state only.
	pairs, exact int
	// problems are the changes not accounted for, one sentence each.
	problems []string
	// overtaken are the changes reported applied that Atlas does not show
	// because an earlier change reported unknown landed after them (see
	// Late landings above), one sentence each.
	overtaken []string
}

// ok reports whether every change is accounted for.
func (a *accounting) ok() bool { return len(a.problems) == 0 }

// account pairs changes with records and checks the reported outcomes
// against final, Atlas's state of every project the load used, as the
// comment at the top of this file says.
func account(changes []*sentChange, records []auditRecord, final map[string][numProviders]providerState) *accounting {
	a := &accounting{outcomes: map[string]int{}, settled: map[string]int{}}
	byGroup := map[string][]*sentChange{}
	for _, c := range changes {
		byGroup[c.group] = append(byGroup[c.group], c)
	}
	for group, cs := range byGroup {
		slices.SortStableFunc(cs, func(x, y *sentChange) int { return x.start.Compare(y.start) })
		for i := 1; i < len(cs); i++ {
			if cs[i].start.Before(cs[i-1].end) {
				a.problemf("%s: changes %s and %s overlap in time: the driver did not make them one at a time", group, name(cs, i-1), name(cs, i))
			}
		}
	}

	for i := range records {
		r := &records[i]
		cs := byGroup[r.GroupID]
		if r.Late {
			if c := lateChange(cs, r); c != nil {
				c.late = r
				a.settled[r.Outcome]++
			} else {
				a.problemf("%s: the late audit record at %s (%s %s, %s) matches no change reported unknown before it", r.GroupID, clockTime(r.Time), r.Provider, r.Action, r.Outcome)
			}
			continue
		}
		k, _ := slices.BinarySearchFunc(cs, r.Time, func(c *sentChange, t time.Time) int {
			if c.end.Before(t) {
				return -1
			}
			return 1
		})
		if k == len(cs) || r.Time.Before(cs[k].start) {
			a.problemf("%s: the audit record at %s (%s %s, %s) matches no change the driver sent", r.GroupID, clockTime(r.Time), r.Provider, r.Action, r.Outcome)
			continue
		}
		c := cs[k]
		switch {
		case c.record != nil:
			a.problemf("%s: change %s has two audit records (%s at %s, then %s at %s)", r.GroupID, name(cs, k), c.record.Outcome, clockTime(c.record.Time), r.Outcome, clockTime(r.Time))
			continue
		case r.Provider != providerNames[c.provider] || r.Action != c.action:
			a.problemf("%s: the audit record of change %s names %s %s", r.GroupID, name(cs, k), r.Provider, r.Action)
		}
		c.record = r
	}

	for _, cs := range byGroup {
		for k, c := range cs {
			a.changes++
			a.outcomes[c.outcome()]++
			switch {
			case c.record == nil && c.answered:
				a.problemf("%s: change %s was answered %s by the service but has no audit record", c.group, name(cs, k), c.code)
			case c.record != nil && c.answered && c.record.Code != c.code.String():
				a.problemf("%s: change %s was answered %s, its audit record says %s (%s)", c.group, name(cs, k), c.code, c.record.Code, c.record.Outcome)
			case c.record != nil && c.code == codes.OK && c.record.Outcome != audit.OutcomeApplied && c.record.Outcome != audit.OutcomeValidated:
				a.problemf("%s: change %s was answered OK, its audit record says %s", c.group, name(cs, k), c.record.Outcome)
			case c.record != nil && !c.answered:
				a.answerLost++
			}
			if c.outcome() == audit.OutcomeUnknown && c.action != "validate" {
				switch {
				case c.seen == nil:
					a.unread++
				case c.seen.equal(c.effect()):
					a.landed++
				default:
					a.notLanded++
				}
			}
		}
	}

	for _, group := range slices.Sorted(maps.Keys(final)) {
		cs := byGroup[group]
		for prov := range numProviders {
			a.pairs++
			allowed, late := acceptable(cs, prov)
			if len(allowed) == 1 {
				a.exact++
			}
			got := final[group][prov]
			if slices.ContainsFunc(allowed, func(s allowedState) bool { return s.state.equal(got) }) {
				continue
			}
			if k := slices.IndexFunc(late, func(s allowedState) bool { return s.state.equal(got) }); k >= 0 {
				a.overtaken = append(a.overtaken, fmt.Sprintf("%s %s: Atlas has it %v, from change %s, reported unknown, which landed after the change(s) it was sent before were answered; the audit log's order allows only %s",
					group, providerNames[prov], got, name(cs, late[k].from), describe(cs, allowed)))
				continue
			}
			a.problemf("%s %s: %s", group, providerNames[prov], explainMismatch(cs, prov, got, allowed))
		}
	}
	for group := range byGroup {
		if _, ok := final[group]; !ok {
			a.problemf("%s: changes were sent but Atlas's state was not read", group)
		}
	}
	slices.Sort(a.problems)
	slices.Sort(a.overtaken)
	return a
}

// lateChange returns the change of cs, one project's changes in order,
// that late record r settles: the latest one that started before r, was
// reported unknown, names r's provider and action, and has no late record
// yet; nil if none.
func lateChange(cs []*sentChange, r *auditRecord) *sentChange {
	for k := len(cs) - 1; k >= 0; k-- {
		c := cs[k]
		if c.start.After(r.Time) || c.record == nil || c.record.Outcome != audit.OutcomeUnknown || c.late != nil {
			continue
		}
		if providerNames[c.provider] == r.Provider && c.action == r.Action {
			return c
		}
	}
	return nil
}

func (a *accounting) problemf(format string, args ...any) {
	a.problems = append(a.problems, fmt.Sprintf(format, args...))
}

// allowedState is a final state the audit log allows, and the change it
// comes from (-1: the project's state before any change).
type allowedState struct {
	state providerState
	from  int
}

// acceptable lists the final states of provider prov that the reported
// outcomes of cs, one project's changes in order, allow (every project
// starts with nothing enabled); and, apart, those that only a late landing
// allows (see Late landings above).
//
// The final state is the effect of the change that landed last. A change
// reported applied landed during its call; one reported unknown may not
// have landed at all, or landed during its call, or up to lateBy after.
// So a change x can be the last to land when it was applied or unknown and
// can land after every other applied change a can: when the latest x can
// land is after a started. Without late landings (lateBy 0) that is: x is
// applied or unknown and no applied change came after it.
func acceptable(cs []*sentChange, prov int) (allowed, late []allowedState) {
	var landed []int // changes of prov that may have landed
	anyApplied := false
	for k, c := range cs {
		if c.provider != prov || c.action == "validate" {
			continue
		}
		switch c.settled() {
		case audit.OutcomeApplied:
			anyApplied = true
			landed = append(landed, k)
		case audit.OutcomeUnknown:
			landed = append(landed, k)
		}
	}
	if !anyApplied {
		allowed = append(allowed, allowedState{from: -1})
	}
	lastAfter := func(k int, latest time.Time) bool {
		for _, j := range landed {
			if j != k && cs[j].settled() == audit.OutcomeApplied && !latest.After(cs[j].start) {
				return false
			}
		}
		return true
	}
	add := func(list []allowedState, s allowedState) []allowedState {
		if i := slices.IndexFunc(list, func(a allowedState) bool { return a.state.equal(s.state) }); i >= 0 {
			list[i] = s // the later change of the two
			return list
		}
		return append(list, s)
	}
	for _, k := range landed {
		x := cs[k]
		s := allowedState{state: x.effect(), from: k}
		switch {
		case lastAfter(k, x.end):
			allowed = add(allowed, s)
		case x.settled() == audit.OutcomeUnknown && x.lateBy > 0 && lastAfter(k, x.end.Add(x.lateBy)):
			late = add(late, s)
		}
	}
	late = slices.DeleteFunc(late, func(l allowedState) bool {
		return slices.ContainsFunc(allowed, func(a allowedState) bool { return a.state.equal(l.state) })
	})
	return allowed, late
}

// explainMismatch says why got, the final state of provider prov, is not
// one the audit log allows: which change wrote it and what it reported, and
// what was allowed.
func explainMismatch(cs []*sentChange, prov int, got providerState, allowed []allowedState) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Atlas has it %v", got)
	if got.enabled {
		k := slices.IndexFunc(cs, func(c *sentChange) bool { return c.provider == prov && c.value == got.value })
		if k >= 0 {
			fmt.Fprintf(&b, ", the value of change %s, reported %s", name(cs, k), cs[k].outcome())
		} else {
			b.WriteString(", a value no change of the driver wrote")
		}
	} else {
		// The last disable sent after the changes allowed would explain it.
		after := slices.MaxFunc(allowed, func(x, y allowedState) int { return cmp.Compare(x.from, y.from) }).from
		for k := len(cs) - 1; k > after; k-- {
			if c := cs[k]; c.provider == prov && c.action == "disable" {
				fmt.Fprintf(&b, ", as the disable %s would have left it, reported %s", name(cs, k), c.outcome())
				break
			}
		}
	}
	b.WriteString("; the audit log allows only ")
	b.WriteString(describe(cs, allowed))
	return b.String()
}

// describe lists allowed states for a reader.
func describe(cs []*sentChange, allowed []allowedState) string {
	var b strings.Builder
	for i, s := range allowed {
		if i > 0 {
			b.WriteString(" or ")
		}
		if s.from < 0 {
			fmt.Fprintf(&b, "%v (no change)", s.state)
			continue
		}
		fmt.Fprintf(&b, "%v (change %s, reported %s)", s.state, name(cs, s.from), cs[s.from].outcome())
	}
	return b.String()
}

// name names the k-th change of a project for a reader of the report: its
// number among the project's changes, what it was and when it was sent.
func name(cs []*sentChange, k int) string {
	c := cs[k]
	return fmt.Sprintf("#%d (%s %s sent at %s)", k+1, providerNames[c.provider], c.action, clockTime(c.start))
}

func clockTime(t time.Time) string { return t.UTC().Format("15:04:05.000000") }

// sortedOutcomes lists the outcomes in the order the report shows them.
func sortedOutcomes(m map[string]int) []string {
	order := []string{audit.OutcomeApplied, audit.OutcomeValidated, audit.OutcomeRefused, audit.OutcomeFailed, audit.OutcomeUnknown, outcomeNotSent}
	keys := slices.Collect(maps.Keys(m))
	slices.SortFunc(keys, func(x, y string) int {
		ix, iy := slices.Index(order, x), slices.Index(order, y)
		if ix < 0 {
			ix = len(order)
		}
		if iy < 0 {
			iy = len(order)
		}
		return cmp.Or(cmp.Compare(ix, iy), cmp.Compare(x, y))
	})
	return keys
}
