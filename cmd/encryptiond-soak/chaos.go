package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/encryptiond/encryptiond/atlas"
	"github.com/encryptiond/encryptiond/atlas/atlastest"
	"github.com/encryptiond/encryptiond/cmd/internal/procs"
	"github.com/encryptiond/encryptiond/server/failure"
)

// What a chaos run does, from the end of the warm-up until one -chaos-every
// before the end of the load, one event every -chaos-every, in turn:
//
//  1. a burst of dropped connections: the emulator hangs up on the next
//     dropBurst PATCHes before applying them, on the dropBurst after those
//     once it has applied them, and on the next dropBurst GETs;
//  2. a restart of the emulator: SIGTERM (it writes its projects to its
//     -state file), down for chaosDown, started again on its address (it
//     reads them back); the daemon's calls meanwhile find nothing listening;
//  3. another burst;
//  4. a SIGTERM to the daemon with calls in flight: every Atlas exchange
//     takes chaosLatency from a moment before, so the workers' calls are
//     waiting on Atlas when the daemon, run with -shutdown-timeout
//     chaosShutdownTimeout, is told to stop; it is started again on the same
//     ports chaosDown after it exited.
const (
	dropBurst            = 3
	chaosDown            = time.Second
	chaosLatency         = 2 * time.Second
	chaosShutdownTimeout = time.Second
)

// retryBudget is the daemon's -atlas-retry-max-elapsed (its default): how
// long after the emulator is back a call may still fail for its absence.
var retryBudget = atlas.DefaultRetryPolicy().MaxElapsed

// chaos runs the events above against the children of a run and keeps
// what it did.
type chaos struct {
	cfg      config
	emu      *procs.Emulator
	d        *procs.Daemon
	inFlight func() int64 // the load's calls under way
	progress io.Writer

	mu       sync.Mutex
	windows  []chaosWindow
	slow     []chaosWindow // when Atlas took chaosLatency per exchange
	counts   chaosCounts
	emuStats atlastest.EmulatorStats // of the emulator runs stopped so far
}

// chaosWindow is a time during which an event may make calls fail: from
// just before it starts until the calls it disturbed are over; to is zero
// while the event is under way.
type chaosWindow struct {
	event    string
	from, to time.Time
}

// chaosCounts is what the events did.
type chaosCounts struct {
	events int
	// Connection drops, confirmed consumed by the emulator's counters:
	// PATCHes dropped before being applied, after, and GETs.
	dropsBefore, dropsAfter, dropsGet int
	dropsQueued                       int // queued, all kinds
	emulatorRestarts                  int
	emulatorCleanExits                int // of the SIGTERMs to the emulator, those it exited 0 from
	daemonStops                       int // SIGTERMs to the daemon
	daemonCleanExits                  int
	daemonRestarts                    int
	inFlightAtStop                    []int64 // the load's calls under way at each SIGTERM to the daemon
	failures                          []string
}

// run makes the events until ctx ends or the load is about to: the last
// event starts at least cfg.chaosEvery before end, so that the run ends
// calm. An event under way when ctx ends is finished.
func (c *chaos) run(ctx context.Context, end time.Time) {
	events := []func(context.Context) error{c.dropBurst, c.restartEmulator, c.dropBurst, c.stopDaemon}
	first := time.NewTimer(c.cfg.warmup)
	defer first.Stop()
	select {
	case <-ctx.Done():
		return
	case <-first.C:
	}
	tick := time.NewTicker(c.cfg.chaosEvery)
	defer tick.Stop()
	for i := 0; time.Until(end) > c.cfg.chaosEvery; i++ {
		err := events[i%len(events)](context.WithoutCancel(ctx))
		c.update(func(n *chaosCounts) {
			n.events++
			if err != nil {
				n.failures = append(n.failures, err.Error())
			}
		})
		if err != nil {
			fmt.Fprintf(c.progress, "chaos: %v\n", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// dropBurst queues dropped connections and waits until the emulator's
// counters show them consumed (at most cfg.chaosEvery less a second).
func (c *chaos) dropBurst(ctx context.Context) error {
	before, err := c.emu.Stats(ctx)
	if err != nil {
		return fmt.Errorf("drops: %w", err)
	}
	from := time.Now()
	closeWindow := c.open("connection drops")
	defer closeWindow(time.Second)
	for _, f := range []atlastest.Fault{
		{Drop: true, Method: http.MethodPatch, Times: dropBurst},
		{DropAfterApply: true, Method: http.MethodPatch, Times: dropBurst},
		{Drop: true, Method: http.MethodGet, Times: dropBurst},
	} {
		if err := c.emu.InjectFault(ctx, f); err != nil {
			return fmt.Errorf("drops: %w", err)
		}
	}
	c.update(func(n *chaosCounts) { n.dropsQueued += 3 * dropBurst })
	// Queued faults answer the next matching requests before any other,
	// so the burst is consumed once the counters have moved past it. A
	// request counted between the read above and the injection consumed
	// nothing, so two more are awaited.
	const margin = 2
	deadline := time.Now().Add(c.cfg.chaosEvery - time.Second)
	var patches, gets int64
	for {
		now, err := c.emu.Stats(ctx)
		if err != nil {
			return fmt.Errorf("drops: %w", err)
		}
		patches, gets = now.Patches-before.Patches, now.Gets-before.Gets
		if patches >= 2*dropBurst+margin && gets >= dropBurst+margin || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	// What was not consumed would be counted wrong: clear it, and the
	// fault rate with it, then set that again.
	if patches < 2*dropBurst+margin || gets < dropBurst+margin {
		err = errors.Join(c.emu.ClearFaults(ctx), c.emu.SetFaultRate(ctx, c.cfg.faultRate, c.cfg.statuses))
	}
	p := max(patches-margin, 0)
	c.update(func(n *chaosCounts) {
		n.dropsBefore += int(min(p, dropBurst))
		n.dropsAfter += int(min(max(p-dropBurst, 0), dropBurst))
		n.dropsGet += int(min(max(gets-margin, 0), dropBurst))
	})
	fmt.Fprintf(c.progress, "chaos: %d connection drops queued, consumed after %v\n", 3*dropBurst, time.Since(from).Round(time.Millisecond))
	return err
}

// restartEmulator stops the emulator and starts it again on its address.
func (c *chaos) restartEmulator(ctx context.Context) error {
	st, err := c.emu.Stats(ctx)
	if err != nil {
		return fmt.Errorf("emulator restart: %w", err)
	}
	from := time.Now()
	closeWindow := c.open("emulator restart")
	defer closeWindow(retryBudget + time.Second)
	c.emu.Proc.Stop()
	exit := c.emu.Proc.Err()
	time.Sleep(chaosDown)
	err = c.emu.Restart(ctx)
	if err == nil {
		err = c.emu.SetFaultRate(ctx, c.cfg.faultRate, c.cfg.statuses)
	}
	c.update(func(n *chaosCounts) {
		c.emuStats = c.emuStats.Plus(st)
		if exit == nil {
			n.emulatorCleanExits++
		} else {
			n.failures = append(n.failures, fmt.Sprintf("the emulator exited with %v after SIGTERM", exit))
		}
		if err == nil {
			n.emulatorRestarts++
		}
	})
	if err != nil {
		return fmt.Errorf("emulator restart: %w", err)
	}
	fmt.Fprintf(c.progress, "chaos: emulator restarted after %v down\n", time.Since(from).Round(time.Millisecond))
	return nil
}

// stopDaemon sends the daemon SIGTERM while calls wait on a slow Atlas,
// and starts it again on the same ports.
func (c *chaos) stopDaemon(ctx context.Context) error {
	from := time.Now()
	closeWindow := c.open("daemon SIGTERM")
	defer closeWindow(2 * time.Second)
	if err := c.emu.SetLatency(ctx, chaosLatency); err != nil {
		return fmt.Errorf("daemon SIGTERM: %w", err)
	}
	time.Sleep(chaosLatency / 2) // the calls of the last second are waiting on Atlas
	inFlight := c.inFlight()
	c.d.Proc.Stop()
	exit := c.d.Proc.Err()
	err := c.emu.SetLatency(ctx, 0)
	c.mu.Lock()
	c.slow = append(c.slow, chaosWindow{event: "slow Atlas", from: from, to: time.Now()})
	c.mu.Unlock()
	time.Sleep(chaosDown)
	if restartErr := c.d.Restart(ctx); restartErr != nil {
		err = errors.Join(err, restartErr)
	}
	c.update(func(n *chaosCounts) {
		n.daemonStops++
		n.inFlightAtStop = append(n.inFlightAtStop, inFlight)
		if exit == nil {
			n.daemonCleanExits++
		} else {
			n.failures = append(n.failures, fmt.Sprintf("the daemon exited with %v after SIGTERM", exit))
		}
		if err == nil {
			n.daemonRestarts++
		}
	})
	if err != nil {
		return fmt.Errorf("daemon SIGTERM and restart: %w", err)
	}
	fmt.Fprintf(c.progress, "chaos: daemon stopped with %d calls in flight (exit %v), restarted after %v\n", inFlight, exitText(exit), time.Since(from).Round(time.Millisecond))
	return nil
}

// explain says whether a chaos event explains err, the error of a call
// made from start to end: the error is one an event causes (a change's
// outcome unknown, the daemon shutting down, Atlas unreachable, or no
// answer from the daemon at all) and the call overlapped an event's
// window.
func (c *chaos) explain(err error, start, end time.Time) (string, bool) {
	class, ok := chaosClass(err)
	if !ok {
		return "", false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return class, slices.ContainsFunc(c.windows, func(w chaosWindow) bool {
		return !end.Before(w.from) && (w.to.IsZero() || !start.After(w.to))
	})
}

// update changes the counts under c.mu.
func (c *chaos) update(f func(n *chaosCounts)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f(&c.counts)
}

// open opens the window of an event starting now; close closes it.
func (c *chaos) open(event string) (close func(slack time.Duration)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	i := len(c.windows)
	c.windows = append(c.windows, chaosWindow{event: event, from: time.Now()})
	return func(slack time.Duration) {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.windows[i].to = time.Now().Add(slack)
	}
}

// setLateBy gives every change made while Atlas was slow the time it may
// take to land after its answer (see Late landings in ledger.go): the
// latency of the request it may have left at Atlas.
func (c *chaos) setLateBy(changes []*sentChange) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, ch := range changes {
		if slices.ContainsFunc(c.slow, func(w chaosWindow) bool { return !ch.end.Before(w.from) && !ch.start.After(w.to) }) {
			ch.lateBy = chaosLatency
		}
	}
}

// chaosReasons are the ErrorInfo reasons a chaos event causes.
var chaosReasons = []string{failure.ReasonOutcomeUnknown, failure.ReasonShuttingDown, failure.ReasonUnreachable}

// chaosClass names err's class when it is of a kind a chaos event causes.
func chaosClass(err error) (string, bool) {
	if re, ok := err.(*restError); ok {
		reason := restReason(re.body)
		return fmt.Sprintf("REST %d %s", re.status, reason), slices.Contains(chaosReasons, reason)
	}
	st, ok := status.FromError(err)
	if !ok {
		// A REST call that got no HTTP answer: the daemon was down.
		return "REST: no answer from the daemon", errors.As(err, new(*noAnswer))
	}
	info := failure.Parse(st).Info
	if info.Domain == "" {
		return st.Code().String() + ": no answer from the daemon", st.Code() == codes.Unavailable
	}
	return st.Code().String() + " " + info.Reason, slices.Contains(chaosReasons, info.Reason)
}

// restReason reads the ErrorInfo reason from a REST error body (AIP-193:
// {"error": {"details": [{"reason": …}]}}).
func restReason(body string) string {
	var doc struct {
		Error struct {
			Details []struct {
				Reason string `json:"reason"`
			} `json:"details"`
		} `json:"error"`
	}
	if json.Unmarshal([]byte(body), &doc) != nil {
		return ""
	}
	for _, d := range doc.Error.Details {
		if d.Reason != "" {
			return d.Reason
		}
	}
	return ""
}

// snapshot returns what the events did so far, and the emulator's
// counters of the runs stopped so far.
func (c *chaos) snapshot() (chaosCounts, []chaosWindow, atlastest.EmulatorStats) {
	c.mu.Lock()
	defer c.mu.Unlock()
	counts := c.counts
	counts.inFlightAtStop = slices.Clone(c.counts.inFlightAtStop)
	counts.failures = slices.Clone(c.counts.failures)
	return counts, slices.Clone(c.windows), c.emuStats
}
