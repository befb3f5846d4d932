package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/encryptiond/encryptiond/atlas/atlastest"
	"github.com/encryptiond/encryptiond/server/audit"
)

// maxProblems bounds the problems quoted in the chaos report.
const maxProblems = 20

// chaosResults is what a chaos run adds to the results.
type chaosResults struct {
	counts   chaosCounts
	windows  []chaosWindow
	emulator atlastest.EmulatorStats // the emulator runs stopped during the load
	acc      *accounting
	// emulatorExit is the last emulator run's exit error after SIGTERM.
	emulatorExit error
}

func newChaosResults(c *chaos, acc *accounting, emulatorExit error) *chaosResults {
	counts, windows, stats := c.snapshot()
	return &chaosResults{counts: counts, windows: windows, emulator: stats, acc: acc, emulatorExit: emulatorExit}
}

// failures lists the chaos verdicts that failed.
func (c *chaosResults) failures() []string {
	var out []string
	if n := len(c.acc.problems); n > 0 {
		out = append(out, fmt.Sprintf("%d changes or records not accounted for", n))
	}
	if n := len(c.acc.overtaken); n > 0 {
		out = append(out, fmt.Sprintf("%d changes reported applied overtaken by an earlier change that landed late", n))
	}
	n := c.counts
	if !n.complete() {
		out = append(out, "not every chaos event happened: make -duration longer or -chaos-every shorter")
	}
	out = append(out, n.failures...)
	if c.emulatorExit != nil {
		out = append(out, fmt.Sprintf("the emulator exited with %v after the last SIGTERM", c.emulatorExit))
	}
	return out
}

// chaosMarkdown renders the chaos section of BENCH.md (its "### Chaos"
// heading stays outside the generated text).
func (r *results) chaosMarkdown(cfg config) string {
	var b strings.Builder
	c, acc, n := r.chaos, r.chaos.acc, r.chaos.counts
	t := r.totals()
	fmt.Fprintf(&b, "`make chaos` (cmd/encryptiond-soak -chaos), last run %s on %s: the soak's load (%.0f calls/s from %d workers over %d projects, %.0f%% of Atlas calls answered %s) for %v, against a daemon run with `-shutdown-timeout %v` and an emulator that keeps its projects in a `-state` file. "+
		"From the end of the %v warm-up, every %v, in turn: a burst of dropped connections (%d PATCHes dropped before Atlas applies them, %d after, %d GETs); a restart of the emulator, down %v; another burst; a SIGTERM to the daemon while every Atlas exchange takes %v, so that calls are in flight, and its restart on the same ports %v after it exited. "+
		"Then every change is paired with its audit record (the record lies within the change's call, and one project's changes never overlap) and the outcomes reported are checked against the emulator's final state: every change writes a value of its own, so Atlas's state names the change that set it; a change reported applied must be what Atlas shows unless a later change reported applied or unknown replaced it; one reported failed, refused or validated, or never sent, must not be; one reported unknown may be either, and, when it was sent while Atlas was slow, may land up to %v after its answer (Atlas finishes a request the daemon gave up on): a final state only such a late landing explains has its own verdict.\n\n",
		r.started.UTC().Format("2006-01-02 15:04 UTC"), r.env, cfg.rate, cfg.workers, cfg.groups, cfg.faultRate*100, joinInts(cfg.statuses), cfg.duration, chaosShutdownTimeout,
		cfg.warmup, cfg.chaosEvery, dropBurst, dropBurst, dropBurst, chaosDown, chaosLatency, chaosDown, chaosLatency)

	fmt.Fprintf(&b, "| verdict | result |\n|---|---|\n")
	fmt.Fprintf(&b, "| every change accounted for: its audit record agrees with its answer, and Atlas's final state is one its project's reported outcomes allow | %s %d changes, %d problems; %d (project, provider) pairs, %d of them with exactly one allowed final state |\n",
		verdict(acc.ok()), acc.changes, len(acc.problems), acc.pairs, acc.exact)
	fmt.Fprintf(&b, "| changes reported applied that Atlas does not show because an earlier change, reported unknown, landed after them = 0 | %s %d |\n", verdict(len(acc.overtaken) == 0), len(acc.overtaken))
	fmt.Fprintf(&b, "| errors not explained by an injected fault or a chaos event = 0 | %s %d of %d calls |\n", verdict(t.unexplained == 0), t.unexplained, t.calls)
	fmt.Fprintf(&b, "| the daemon exited 0 after every SIGTERM | %s %d of %d, and after the last |\n", verdict(n.daemonCleanExits == n.daemonStops && r.daemonExit == nil), n.daemonCleanExits+boolInt(r.daemonExit == nil), n.daemonStops+1)
	fmt.Fprintf(&b, "| the emulator exited 0 after every SIGTERM and came back on its address with its projects | %s %d of %d, and after the last |\n", verdict(n.emulatorCleanExits == n.emulatorRestarts && c.emulatorExit == nil), n.emulatorCleanExits+boolInt(c.emulatorExit == nil), n.emulatorRestarts+1)
	fmt.Fprintf(&b, "| every kind of chaos event happened, none failed | %s %d events, %d failed |\n", verdict(n.complete() && len(n.failures) == 0), n.events, len(n.failures))
	fmt.Fprintf(&b, "| secret values in the daemon's output (every run) = 0 | %s %d |\n", verdict(r.secretsInOutput == 0), r.secretsInOutput)
	fmt.Fprintf(&b, "| ERROR records in the daemon's logs = 0 | %s %d |\n\n", verdict(r.errorRecords == 0), r.errorRecords)

	fmt.Fprintf(&b, "| changes (UpdateEncryptionAtRest calls) | count |\n|---|---:|\n")
	fmt.Fprintf(&b, "| sent, validate-only included | %d |\n", acc.changes)
	for _, o := range sortedOutcomes(acc.outcomes) {
		label := o
		switch o {
		case audit.OutcomeUnknown:
			label = fmt.Sprintf("unknown (the project's next read showed %d landed, %d not; %d not read; late audit records settled %d as applied, %d as failed)",
				acc.landed, acc.notLanded, acc.unread, acc.settled[audit.OutcomeApplied], acc.settled[audit.OutcomeFailed])
		case outcomeNotSent:
			label = "not sent: no answer from the daemon and no audit record (it was down)"
		}
		fmt.Fprintf(&b, "| %s | %d |\n", label, acc.outcomes[o])
	}
	fmt.Fprintf(&b, "| audited, but the answer never reached the caller | %d |\n\n", acc.answerLost)

	fmt.Fprintf(&b, "| chaos event | count |\n|---|---:|\n")
	fmt.Fprintf(&b, "| emulator restarts | %d |\n", n.emulatorRestarts)
	fmt.Fprintf(&b, "| daemon SIGTERMs with calls in flight, then restarts | %d, %d (calls in flight at each SIGTERM: %s) |\n", n.daemonStops, n.daemonRestarts, joinInt64s(n.inFlightAtStop))
	fmt.Fprintf(&b, "| connection drops injected and consumed: PATCH before Atlas applied it / after / GET | %d / %d / %d (of %d queued) |\n\n", n.dropsBefore, n.dropsAfter, n.dropsGet, n.dropsQueued)

	r.opTable(&b, true)
	fmt.Fprintf(&b, "Atlas (the emulator, every run) saw %d exchanges: %d GETs, %d PATCHes, %d answered by an injected fault (the rate's and the drops); digest challenges: %d (one per daemon run, and one after each emulator restart: the new emulator does not know the old nonce). Errors by class: %s.\n\n",
		r.emulator.Requests, r.emulator.Gets, r.emulator.Patches, r.emulator.Faults, r.emulator.Challenges, classesText(r.classes))
	r.windowTable(&b, cfg, true)

	if len(acc.problems) > 0 || len(acc.overtaken) > 0 || len(n.failures) > 0 || len(r.samples) > 0 {
		fmt.Fprintf(&b, "\nProblems (first %d of each kind):\n\n", maxProblems)
		for _, s := range slices.Concat(first(acc.problems, maxProblems), first(acc.overtaken, maxProblems), first(n.failures, maxProblems), r.samples) {
			fmt.Fprintf(&b, "- `%s`\n", strings.ReplaceAll(s, "`", "'"))
		}
	}
	return b.String()
}

// complete reports whether every kind of event happened.
func (n chaosCounts) complete() bool {
	return n.emulatorRestarts > 0 && n.daemonRestarts > 0 && n.dropsBefore+n.dropsAfter > 0
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func joinInt64s(ns []int64) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = fmt.Sprint(n)
	}
	return strings.Join(s, ", ")
}
