package main

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/encryptiond/encryptiond/atlas/atlastest"
	"github.com/encryptiond/encryptiond/cmd/internal/report"
)

// maxGrowth is the largest RSS growth, from the end of the warm-up to the
// end of the load, that passes.
const maxGrowth = 0.10

// maxSamples bounds the unexplained errors quoted in the report.
const maxSamples = 10

// window is what happened during one report window.
type window struct {
	start, end  time.Time
	lat         []time.Duration // every call
	latGet      []time.Duration // Gets, gRPC and REST
	latChange   []time.Duration // Updates
	calls       int
	injected    int
	chaos       int // errors a chaos event explains
	unexplained int
	skipped     int
	sample      sample // at the window's end
}

func (w *window) line() string {
	return fmt.Sprintf("%6s  %5d calls  p50 %-8s p99 %-8s injected %-4d unexplained %-3d RSS %s  heap %s  goroutines %d",
		w.end.Sub(w.start).Round(time.Second), w.calls, ms(report.Percentile(w.lat, 50)), ms(report.Percentile(w.lat, 99)), w.injected, w.unexplained, mib(w.sample.rss), mib(w.sample.heapInuse), w.sample.goroutines)
}

// opCounts counts the calls of one operation: every call, those that
// succeeded, the errors an injected fault explains, those a chaos event
// explains (-chaos) and the rest.
type opCounts struct{ calls, ok, injected, chaos, unexplained int }

// recorder collects the calls' outcomes, safe for concurrent use.
type recorder struct {
	mu       sync.Mutex
	start    time.Time
	statuses []int // the injected faults' HTTP statuses
	// explain, in a chaos run, says whether a chaos event explains an
	// error of a call made from start to end, and names its class.
	explain func(err error, start, end time.Time) (class string, ok bool)
	cur     *window
	windows []*window
	ops     [numOps]opCounts
	classes map[string]int // error class → count; "unexplained: " prefix when so
	samples []string       // the first unexplained errors
	all     []time.Duration
}

func newRecorder(start time.Time, statuses []int) *recorder {
	return &recorder{start: start, statuses: statuses, cur: &window{start: start}, classes: map[string]int{}}
}

// record counts a call of operation o made from start to end that ended
// with err.
func (r *recorder) record(o op, start, end time.Time, err error) {
	took := end.Sub(start)
	var chaosClass string
	chaosOK := false
	if err != nil && r.explain != nil {
		chaosClass, chaosOK = r.explain(err, start, end)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	w := r.cur
	w.calls++
	w.lat = append(w.lat, took)
	r.all = append(r.all, took)
	if o == opGet || o == opGetREST {
		w.latGet = append(w.latGet, took)
	} else {
		w.latChange = append(w.latChange, took)
	}
	c := &r.ops[o]
	c.calls++
	if err == nil {
		c.ok++
		return
	}
	class, injected := classify(err, r.statuses)
	if injected {
		c.injected++
		w.injected++
		r.classes[class]++
		return
	}
	if chaosOK {
		c.chaos++
		w.chaos++
		r.classes[chaosClass]++
		return
	}
	c.unexplained++
	w.unexplained++
	r.classes["unexplained: "+class]++
	if len(r.samples) < maxSamples {
		r.samples = append(r.samples, fmt.Sprintf("%s after %v: %v", opNames[o], took.Round(time.Millisecond), err))
	}
}

func (r *recorder) skip() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cur.skipped++
}

// rotate closes the current window with s and starts the next.
func (r *recorder) rotate(s sample) *window {
	r.mu.Lock()
	defer r.mu.Unlock()
	w := r.cur
	w.end, w.sample = time.Now(), s
	r.windows = append(r.windows, w)
	r.cur = &window{start: w.end}
	return w
}

// fill copies the totals into res.
func (r *recorder) fill(res *results) {
	r.mu.Lock()
	defer r.mu.Unlock()
	res.windows = r.windows
	res.ops = r.ops
	res.classes = r.classes
	res.samples = r.samples
	res.all = r.all
}

// results is everything the report shows.
type results struct {
	started         time.Time
	elapsed         time.Duration
	windows         []*window
	ops             [numOps]opCounts
	classes         map[string]int
	samples         []string
	all             []time.Duration
	first           sample // before the load
	baseline        sample // after the warm-up
	final           sample // at the end of the load
	stateMismatches []string
	chaos           *chaosResults // -chaos only
	emulator        atlastest.EmulatorStats
	daemonExit      error
	secretsInOutput int
	errorRecords    int
	env             string
}

func (r *results) totals() opCounts {
	var t opCounts
	for _, c := range r.ops {
		t.calls += c.calls
		t.ok += c.ok
		t.injected += c.injected
		t.chaos += c.chaos
		t.unexplained += c.unexplained
	}
	return t
}

func (r *results) growth() float64 {
	if r.baseline.rss == 0 {
		return 0
	}
	return float64(r.final.rss-r.baseline.rss) / float64(r.baseline.rss)
}

// failures lists the verdicts that failed. A chaos run has no RSS verdict:
// the daemon it measures is restarted.
func (r *results) failures() []string {
	var out []string
	if t := r.totals(); t.unexplained > 0 {
		out = append(out, fmt.Sprintf("%d unexplained errors", t.unexplained))
	}
	if n := len(r.stateMismatches); n > 0 {
		out = append(out, fmt.Sprintf("%d projects differ from the model at Atlas", n))
	}
	switch {
	case r.chaos != nil:
		out = append(out, r.chaos.failures()...)
	case r.baseline.rss == 0 || r.final.rss == 0:
		out = append(out, "RSS could not be read")
	case r.growth() >= maxGrowth:
		out = append(out, fmt.Sprintf("RSS grew %.1f%%", r.growth()*100))
	}
	if r.secretsInOutput > 0 {
		out = append(out, fmt.Sprintf("%d secret values in the daemon's output", r.secretsInOutput))
	}
	if r.errorRecords > 0 {
		out = append(out, fmt.Sprintf("%d ERROR records in the daemon's log", r.errorRecords))
	}
	if r.daemonExit != nil {
		out = append(out, fmt.Sprintf("the daemon exited with %v after SIGTERM", r.daemonExit))
	}
	return out
}

// markdown renders the soak section of BENCH.md (its "## Soak" heading
// stays outside the generated text).
func (r *results) markdown(cfg config) string {
	var b strings.Builder
	t := r.totals()
	fmt.Fprintf(&b, "`make soak` (cmd/encryptiond-soak), last run %s on %s: the real `encryptiond` against a separate `atlas-emulator` process, both on 127.0.0.1, for %v at %.0f calls/s from %d workers over %d projects, with %.0f%% of Atlas calls answered by an injected fault (statuses %s, emulator fault-rate control). Half the calls are Gets (a quarter of those over REST), half are changes: full enables of the three providers in both auth modes, partial updates, validate-only updates and disables, each checked against a model of the project. Latency is per call as the client sees it, Atlas retries included. The machine is shared, so absolute latencies vary between runs.\n\n",
		r.started.UTC().Format("2006-01-02 15:04 UTC"), r.env, cfg.duration, cfg.rate, cfg.workers, cfg.groups, cfg.faultRate*100, joinInts(cfg.statuses))

	fmt.Fprintf(&b, "| verdict | result |\n|---|---|\n")
	fmt.Fprintf(&b, "| errors not explained by an injected fault = 0 | %s %d of %d calls |\n", verdict(t.unexplained == 0), t.unexplained, t.calls)
	fmt.Fprintf(&b, "| projects at Atlas that differ from the model at the end = 0 | %s %d of %d |\n", verdict(len(r.stateMismatches) == 0), len(r.stateMismatches), cfg.groups)
	fmt.Fprintf(&b, "| daemon RSS growth after warm-up < %.0f%% | %s %s → %s (%+.1f%%); %s before the load |\n",
		maxGrowth*100, verdict(r.baseline.rss > 0 && r.growth() < maxGrowth), mib(r.baseline.rss), mib(r.final.rss), r.growth()*100, mib(r.first.rss))
	fmt.Fprintf(&b, "| daemon Go heap in use, after warm-up → end | %s → %s |\n", mib(r.baseline.heapInuse), mib(r.final.heapInuse))
	fmt.Fprintf(&b, "| daemon goroutines, after warm-up → end | %d → %d |\n", r.baseline.goroutines, r.final.goroutines)
	fmt.Fprintf(&b, "| secret values in the daemon's output = 0 | %s %d |\n", verdict(r.secretsInOutput == 0), r.secretsInOutput)
	fmt.Fprintf(&b, "| ERROR records in the daemon's log = 0 | %s %d |\n", verdict(r.errorRecords == 0), r.errorRecords)
	fmt.Fprintf(&b, "| exit status after SIGTERM = 0 | %s %s |\n\n", verdict(r.daemonExit == nil), exitText(r.daemonExit))

	r.opTable(&b, false)
	fmt.Fprintf(&b, "Atlas (the emulator) saw %d exchanges: %d GETs, %d PATCHes, %d answered by an injected fault; digest challenges: %d. ",
		r.emulator.Requests, r.emulator.Gets, r.emulator.Patches, r.emulator.Faults, r.emulator.Challenges)
	fmt.Fprintf(&b, "Errors by class: %s. Reads ride out injected faults on retries; a change answered 5xx is not retried (Atlas may have applied it), so the injected-fault errors callers see are changes. "+
		"The p99 is set by the calls that met an injected fault and were retried after a backoff of 100–200 ms; the p50 is the undisturbed path.\n\n", classesText(r.classes))
	r.windowTable(&b, cfg, false)
	if len(r.samples) > 0 || len(r.stateMismatches) > 0 {
		fmt.Fprintf(&b, "\nUnexplained errors and mismatches (first %d):\n\n", maxSamples)
		for _, s := range append(r.samples, first(r.stateMismatches, maxSamples)...) {
			fmt.Fprintf(&b, "- `%s`\n", strings.ReplaceAll(s, "`", "'"))
		}
	}
	return b.String()
}

// opTable writes the calls of each operation, with a column for the
// errors chaos events explain when withChaos is set.
func (r *results) opTable(b *strings.Builder, withChaos bool) {
	t := r.totals()
	chaosHead, chaosRule := "", ""
	if withChaos {
		chaosHead, chaosRule = " chaos-event errors |", "---:|"
	}
	chaosCell := func(c opCounts) string {
		if !withChaos {
			return ""
		}
		return fmt.Sprintf(" %d |", c.chaos)
	}
	fmt.Fprintf(b, "| operation | calls | ok | injected-fault errors |%s unexplained |\n|---|---:|---:|---:|%s---:|\n", chaosHead, chaosRule)
	for o, c := range r.ops {
		fmt.Fprintf(b, "| %s | %d | %d | %d |%s %d |\n", opNames[o], c.calls, c.ok, c.injected, chaosCell(c), c.unexplained)
	}
	fmt.Fprintf(b, "| **all** | %d | %d | %d (%.2f%%) |%s %d |\n\n", t.calls, t.ok, t.injected, 100*float64(t.injected)/float64(max(t.calls, 1)), chaosCell(t), t.unexplained)
}

// windowTable writes latency and the daemon's memory per window, with a
// column for the errors chaos events explain when withChaos is set.
func (r *results) windowTable(b *strings.Builder, cfg config, withChaos bool) {
	t := r.totals()
	chaosHead, chaosRule := "", ""
	if withChaos {
		chaosHead, chaosRule = " chaos |", "---:|"
	}
	chaosCell := func(n int) string {
		if !withChaos {
			return ""
		}
		return fmt.Sprintf(" %d |", n)
	}
	fmt.Fprintf(b, "Latency over time (p50 / p99 of every call, of Gets and of changes, per %v window; the daemon's RSS, Go heap in use and goroutines at the window's end", cfg.window)
	if withChaos {
		b.WriteString(", ? while it was down")
	}
	b.WriteString("):\n\n")
	fmt.Fprintf(b, "| window | calls | p50 | p99 | p99 get | p99 change | injected |%s unexplained | RSS | heap | goroutines |\n|---|---:|---:|---:|---:|---:|---:|%s---:|---:|---:|---:|\n", chaosHead, chaosRule)
	for _, w := range r.windows {
		fmt.Fprintf(b, "| %s–%s | %d | %s | %s | %s | %s | %d |%s %d | %s | %s | %s |\n",
			clock(w.start.Sub(r.started)), clock(w.end.Sub(r.started)), w.calls,
			ms(report.Percentile(w.lat, 50)), ms(report.Percentile(w.lat, 99)), ms(report.Percentile(w.latGet, 99)), ms(report.Percentile(w.latChange, 99)),
			w.injected, chaosCell(w.chaos), w.unexplained, mib(w.sample.rss), mib(w.sample.heapInuse), goroutines(w.sample.goroutines))
	}
	fmt.Fprintf(b, "| **all** | %d | %s | %s | | | %d |%s %d | | | |\n", t.calls, ms(report.Percentile(r.all, 50)), ms(report.Percentile(r.all, 99)), t.injected, chaosCell(t.chaos), t.unexplained)
	if skipped := r.skippedTotal(); skipped > 0 {
		fmt.Fprintf(b, "\n%d paced calls were skipped because every worker was busy.\n", skipped)
	}
}

func verdict(ok bool) string {
	if ok {
		return "✅"
	}
	return "❌"
}

func goroutines(n int) string {
	if n < 0 {
		return "?"
	}
	return fmt.Sprint(n)
}

func (r *results) skippedTotal() int {
	n := 0
	for _, w := range r.windows {
		n += w.skipped
	}
	return n
}

func classesText(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int { return cmp.Or(cmp.Compare(m[b], m[a]), cmp.Compare(a, b)) })
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("`%s` %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}

func first(s []string, n int) []string { return s[:min(len(s), n)] }

func exitText(err error) string {
	if err == nil {
		return "0"
	}
	return err.Error()
}

func ms(d time.Duration) string {
	return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
}

// mib writes n bytes in MiB; "?" when n is not known (0 or less: no
// live process has an empty RSS or heap).
func mib(n int64) string {
	if n <= 0 {
		return "?"
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}

func clock(d time.Duration) string {
	d = d.Round(time.Second)
	return fmt.Sprintf("%d:%02d", int(d.Minutes()), int(d.Seconds())%60)
}
