// Command encryptiond-soak is the soak test behind `make soak`: it runs the
// real encryptiond against a separate cmd/atlas-emulator process that fails
// a fraction of Atlas calls on purpose, drives a steady mixed load for a
// fixed time, and reports whether the daemon stayed correct and bounded.
//
// Both children listen on 127.0.0.1 (random ports); the daemon gets
// generated digest credentials in its environment. The load is paced at
// -rate calls per second by -workers workers over -groups projects: Gets
// (a quarter over REST), and per project a cycle of full enables (the three
// providers, both auth modes), partial updates, validate-only updates and
// disables, checked against a model of each project's state. Every error is
// classified: one that an injected Atlas fault explains (UNAVAILABLE or
// RESOURCE_EXHAUSTED carrying the emulator's "Injected fault." detail) is
// expected; anything else counts as unexplained, and so does a project whose
// state at Atlas differs from the model at the end.
//
// The report gives, per window, the calls, p50 and p99 latency, the errors
// and the daemon's RSS and goroutines; and verdicts: no unexplained error,
// RSS growth below 10% from the end of the warm-up to the end, no secret in
// the daemon's output. It is printed and written into -out between the
// markers <!-- soak:begin --> and <!-- soak:end --> (only that text is
// replaced; see package cmd/internal/report). The exit status is 1 when a
// verdict fails.
//
// With -chaos (make chaos) the run also injects, from the end of the
// warm-up, one event every -chaos-every (chaos.go): bursts of connections
// the emulator drops before or after applying a change, restarts of the
// emulator (which keeps its projects in a -state file, as Atlas keeps them
// through an outage), and SIGTERMs to the daemon while calls wait on a
// slow Atlas, each followed by a restart on the same ports. It then
// accounts for every change sent (ledger.go): each is paired with its
// record in the daemon's audit log, and the outcomes reported are checked
// against the emulator's final state; applied changes must be in Atlas,
// failed, refused and unsent ones must not, unknown ones may be. Errors a
// chaos event explains are counted apart from unexplained ones. The report
// goes between <!-- chaos:begin --> and <!-- chaos:end -->; it has no RSS
// verdict, since the daemon is restarted.
//
// Usage (make soak and make chaos build the binaries into .build/soak first):
//
//	encryptiond-soak -bin .build/soak -duration 5m -out BENCH.md
//	encryptiond-soak -bin .build/soak -duration 2m -chaos -out BENCH.md
//
// Flags:
//
//	-bin         directory holding encryptiond and atlas-emulator (default .build/soak)
//	-duration    length of the load, warm-up included (default 5m)
//	-warmup      load before the RSS baseline is taken (default 30s, at most a fifth of -duration)
//	-window      length of a report window (default 30s)
//	-rate        calls per second (default 100)
//	-workers     concurrent callers (default 16)
//	-groups      projects (default 50)
//	-fault-rate  fraction of Atlas calls answered with an injected fault (default 0.05)
//	-statuses    HTTP statuses of the injected faults (default 500,503,429)
//	-out         Markdown file whose soak (or chaos) section is replaced; "" prints only (default BENCH.md)
//	-chaos       drop connections, restart the emulator and SIGTERM the daemon during the load, then account for every change (default off)
//	-chaos-every time between chaos events (default 6s)
//
// The run stops by itself after -duration, or on SIGINT/SIGTERM; the
// children are stopped on the way out (and get SIGTERM if it dies).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "encryptiond-soak:", err)
		stop()
		os.Exit(1)
	}
}
