// Package procs runs encryptiond and atlas-emulator as child processes for
// the benchmark and soak drivers (cmd/encryptiond-bench and
// cmd/encryptiond-soak), so that both measure the real binaries the way an
// operator runs them rather than the packages in-process.
//
// Start with a Harness: it names the directory holding the built binaries
// and the directory for the children's logs. Harness.StartEmulator starts
// cmd/atlas-emulator on a random port of 127.0.0.1 with generated digest
// credentials and returns an *Emulator, whose methods drive the emulator's
// /_emulator/ control endpoints (counters, latency, injected faults, the
// projects it lists, a project's state). Harness.StartDaemon then starts cmd/encryptiond against
// that emulator, with the credentials in its environment and both listeners
// on random ports, and returns a *Daemon with their addresses, a gRPC
// client of it, and Daemon.Metrics to read its /metrics. Each child is a
// *Proc: its output goes to a log file, it gets SIGTERM if the driver dies,
// and Proc.Stop ends it gracefully. ReadMemory reads a child's resident set
// size from /proc.
//
// For fault-injection runs, Emulator.Restart and Daemon.Restart start a
// child again on the address it had, so that whoever points at it (the
// daemon's -atlas-base-url, the driver's client connection) finds it there
// again; an emulator started with -state comes back with its projects.
// Each run of a child keeps a log of its own (Proc.LogPaths).
//
// Everything here is Linux-only (Pdeathsig, /proc), as the drivers are.
package procs
