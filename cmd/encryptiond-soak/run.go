package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/encryptiond/encryptiond/cmd/internal/procs"
	"github.com/encryptiond/encryptiond/cmd/internal/report"
)

// config is the soak run's configuration, from flags.
type config struct {
	bin       string
	duration  time.Duration
	warmup    time.Duration
	window    time.Duration
	rate      float64
	workers   int
	groups    int
	faultRate float64
	statuses  []int
	out       string
	// chaos turns on the chaos events (chaos.go), every chaosEvery.
	chaos      bool
	chaosEvery time.Duration
}

func parseFlags(args []string, out io.Writer) (config, error) {
	var c config
	var statuses string
	fs := flag.NewFlagSet("encryptiond-soak", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&c.bin, "bin", ".build/soak", "directory holding encryptiond and atlas-emulator")
	fs.DurationVar(&c.duration, "duration", 5*time.Minute, "length of the load, warm-up included")
	fs.DurationVar(&c.warmup, "warmup", 30*time.Second, "load before the RSS baseline is taken (at most a fifth of -duration)")
	fs.DurationVar(&c.window, "window", 30*time.Second, "length of a report window")
	fs.Float64Var(&c.rate, "rate", 100, "calls per second")
	fs.IntVar(&c.workers, "workers", 16, "concurrent callers")
	fs.IntVar(&c.groups, "groups", 50, "projects")
	fs.Float64Var(&c.faultRate, "fault-rate", 0.05, "fraction of Atlas calls answered with an injected fault")
	fs.StringVar(&statuses, "statuses", "500,503,429", "HTTP statuses of the injected faults")
	fs.StringVar(&c.out, "out", "BENCH.md", `Markdown file whose soak section (between <!-- soak:begin --> and <!-- soak:end -->; with -chaos, the chaos section) is replaced; "" prints only`)
	fs.BoolVar(&c.chaos, "chaos", false, "restart the emulator, drop connections and SIGTERM the daemon during the load, then account for every change from the audit log and Atlas's state")
	fs.DurationVar(&c.chaosEvery, "chaos-every", 6*time.Second, "with -chaos, time between chaos events")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	for s := range strings.SplitSeq(statuses, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 400 || n > 599 {
			return c, fmt.Errorf("-statuses %q: want HTTP error statuses separated by commas", statuses)
		}
		c.statuses = append(c.statuses, n)
	}
	switch {
	case c.duration <= 0 || c.window <= 0 || c.warmup < 0:
		return c, errors.New("-duration and -window must be positive, -warmup not negative")
	case c.rate <= 0 || c.workers < 1 || c.groups < 1:
		return c, errors.New("-rate, -workers and -groups must be positive")
	case c.faultRate < 0 || c.faultRate > 1:
		return c, errors.New("-fault-rate must be between 0 and 1")
	case c.chaos && c.chaosEvery < 2*time.Second:
		return c, errors.New("-chaos-every must be at least 2s: an event takes a few seconds")
	}
	c.warmup = min(c.warmup, c.duration/5)
	c.window = min(c.window, c.duration)
	return c, nil
}

// run starts the emulator and the daemon, soaks the daemon and reports.
func run(ctx context.Context, args []string, stdout io.Writer) error {
	cfg, err := parseFlags(args, stdout)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, name := range []string{"encryptiond", "atlas-emulator"} {
		if _, err := os.Stat(filepath.Join(cfg.bin, name)); err != nil {
			return fmt.Errorf("%s not built in -bin %s (make soak builds it): %w", name, cfg.bin, err)
		}
	}
	dir, err := os.MkdirTemp("", "encryptiond-soak-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	h := procs.Harness{Bin: cfg.bin, Dir: dir, Ready: 30 * time.Second, StopGrace: 20 * time.Second}
	var emuArgs, daemonArgs []string
	if cfg.chaos {
		// The emulator keeps its projects across restarts; the file holds
		// the secrets sent, and goes with dir.
		emuArgs = []string{"-state", filepath.Join(dir, "emulator-state.json")}
		daemonArgs = []string{"-shutdown-timeout", chaosShutdownTimeout.String()}
	}
	emu, err := h.StartEmulator(ctx, emuArgs...)
	if err != nil {
		return err
	}
	defer emu.Proc.Stop()
	d, err := h.StartDaemon(ctx, emu, daemonArgs...)
	if err != nil {
		return err
	}
	defer d.Stop()

	hc := &http.Client{Timeout: callTimeout, Transport: &http.Transport{MaxIdleConnsPerHost: cfg.workers}}
	defer hc.CloseIdleConnections()
	if err := emu.SetFaultRate(ctx, cfg.faultRate, cfg.statuses); err != nil {
		return fmt.Errorf("setting the emulator's fault rate: %w", err)
	}

	fmt.Fprintf(stdout, "soak: %v at %.0f calls/s, %d workers, %d projects, %.0f%% Atlas faults (%s); daemon pid %d, emulator pid %d\n",
		cfg.duration, cfg.rate, cfg.workers, cfg.groups, cfg.faultRate*100, joinInts(cfg.statuses), d.Proc.PID(), emu.Proc.PID())

	l := newLoad(cfg, d.Client, hc, "http://"+d.HTTPAddr)
	var c *chaos
	if cfg.chaos {
		c = &chaos{cfg: cfg, emu: emu, d: d, inFlight: l.inFlight.Load, progress: stdout}
		fmt.Fprintf(stdout, "chaos: an event every %v after the %v warm-up\n", cfg.chaosEvery, cfg.warmup)
	}
	res, err := l.run(ctx, &sampler{d: d}, stdout, c)
	if err != nil {
		return err
	}

	// After the load: faults and latency off, then read Atlas's state.
	bg := context.WithoutCancel(ctx)
	if err := errors.Join(emu.ClearFaults(bg), emu.SetLatency(bg, 0)); err != nil {
		return fmt.Errorf("clearing the emulator's faults: %w", err)
	}
	states, err := l.atlasStates(bg, emu)
	if err != nil {
		return err
	}
	res.emulator, _ = emu.Stats(bg)

	d.Stop()
	emu.Proc.Stop()
	res.daemonExit = d.Proc.Err()
	var logText strings.Builder
	for _, path := range d.Proc.LogPaths() {
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		logText.Write(b)
	}
	res.secretsInOutput = countSecrets(logText.String(), append(l.secrets(), emu.PrivateKey))
	if res.errorRecords, err = d.Proc.ErrorRecords(); err != nil {
		return err
	}
	res.env = fmt.Sprintf("%s/%s, %d CPUs, %s", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version())

	section, heading, text := "soak", "## Soak", ""
	if c == nil {
		res.stateMismatches = l.verifyState(states)
		text = res.markdown(cfg)
	} else {
		records, err := readAudit(d.Proc.LogPaths())
		if err != nil {
			return err
		}
		changes := l.ledger.all()
		c.setLateBy(changes)
		res.chaos = newChaosResults(c, account(changes, records, states), emu.Proc.Err())
		res.emulator = res.chaos.emulator.Plus(res.emulator)
		section, heading, text = "chaos", "### Chaos", res.chaosMarkdown(cfg)
	}
	fmt.Fprintln(stdout)
	fmt.Fprint(stdout, text)
	if cfg.out != "" {
		if err := report.WriteSection(cfg.out, section, heading, text); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "\nwrote the %s section of %s\n", section, cfg.out)
	}
	if failed := res.failures(); len(failed) > 0 {
		return fmt.Errorf("%s failed: %s", section, strings.Join(failed, "; "))
	}
	return nil
}

func joinInts(ns []int) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ",")
}
