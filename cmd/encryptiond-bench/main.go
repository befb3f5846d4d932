// Command encryptiond-bench is the benchmark driver behind `make bench`. It
// measures encryptiond's Atlas round trips, latency overhead, throughput and
// memory side by side in one run on one machine, judges each against its
// limit, prints a table ending in "N of M targets met" and writes it into
// BENCH.md.
//
// It starts cmd/atlas-emulator and cmd/encryptiond as separate processes on
// 127.0.0.1 (random free ports, generated digest credentials passed to the
// daemon in its environment), then drives the daemon with the driver's own
// Go load generators and with real load tools: ghz for gRPC, wrk for REST
// when it is installed, and curl --digest as the reference direct client
// when curl is. Atlas exchanges and digest challenges are counted at the
// emulator through its /_emulator/ control endpoints.
//
// Beside the daemon, in the same run, it measures two calibrations of the
// machine: the reference proxy (this binary with -reference-proxy: a bare
// gRPC server making the same Atlas client call, see reference.go) and the
// direct Go client with no proxy at all. The latency and CPU targets are
// stated against them, as ratios: what the daemon adds over the direct
// client against what the reference proxy adds, the daemon's latency and
// CPU per call under load against the reference proxy's, and the daemon's
// gRPC rate against the direct client's raw rate. So the verdicts hold on
// a small shared machine as on a large one. Rows that compare the load
// tools with each other are shown for information, without a verdict.
//
// The fleet steps (watch, fanout, list; see fleet.go) run against an
// emulator and a daemon of their own, started for them: 10,000
// WatchEncryptionAtRest streams over 100 projects polled every 10 s (the
// Atlas GETs per interval and the daemon's peak RSS), an update reaching
// 1000 watchers of its project, and ListEncryptionAtRest over 1000
// projects at 50 ms per Atlas exchange. Their targets are counts and
// absolute limits.
//
// Every load run is bounded by a count or a duration; the child processes
// are stopped when the driver exits or is interrupted (and are sent SIGTERM
// if it dies).
//
// Usage (make bench builds the binaries into .build/bench first):
//
//	encryptiond-bench -bin .build/bench -out BENCH.md
//
// Flags:
//
//	-bin          directory holding atlas-emulator, encryptiond, ghz and this driver (default .build/bench)
//	-out          Markdown file whose generated section is replaced; "" prints only (default BENCH.md)
//	-duration     length of each throughput and latency load run (default 5s)
//	-daemon-cpus  GOMAXPROCS of the daemon and the reference proxy, as in a container
//	              limited to that many CPUs; 0 is Go's default, every core (default 1)
//	-steps        only these steps, e.g. overhead,200-callers (of round-trips, curl,
//	              coalescing, overhead, 200-callers, throughput, memory, watch,
//	              fanout, list); such a run does not write -out
//	-daemon-args  extra flags for encryptiond, space-separated
//	-daemon-env   extra environment for encryptiond (NAME=value, space-separated)
//
// Only the part of -out between the markers <!-- bench:begin --> and
// <!-- bench:end --> is rewritten, so notes written around it (profiles,
// what changed) survive a new run.
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
		fmt.Fprintln(os.Stderr, "encryptiond-bench:", err)
		stop()
		os.Exit(1)
	}
}
