package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	encryptionv1 "github.com/encryptiond/encryptiond/gen/atlas/encryption/v1"
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
	fs.StringVar(&c.out, "out", "BENCH.md", `Markdown file whose "## Soak" section is replaced; "" prints only`)
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

	pub, priv := "soak-pub-"+randomHex(8), "soak-priv-"+randomHex(16)
	emu, err := startProc(dir, "atlas-emulator", filepath.Join(cfg.bin, "atlas-emulator"),
		[]string{"-addr", "127.0.0.1:0", "-public-key", pub, "-private-key", priv}, nil)
	if err != nil {
		return err
	}
	defer emu.stop()
	line, err := emu.waitLog(ctx, 30*time.Second, func(l string) (string, bool) {
		return strings.CutPrefix(l, "atlas-emulator listening on ")
	})
	if err != nil {
		return fmt.Errorf("atlas-emulator: %w", err)
	}
	atlasURL := strings.TrimSpace(line)

	d, err := startProc(dir, "encryptiond", filepath.Join(cfg.bin, "encryptiond"),
		[]string{"-grpc-addr", "127.0.0.1:0", "-http-addr", "127.0.0.1:0", "-atlas-base-url", atlasURL},
		[]string{"MONGODB_ATLAS_PUBLIC_API_KEY=" + pub, "MONGODB_ATLAS_PRIVATE_API_KEY=" + priv})
	if err != nil {
		return err
	}
	defer d.stop()
	addrs, err := d.waitLog(ctx, 30*time.Second, servingAddrs)
	if err != nil {
		return fmt.Errorf("encryptiond: %w", err)
	}
	grpcAddr, httpAddr, _ := strings.Cut(addrs, " ")

	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	hc := &http.Client{Timeout: callTimeout, Transport: &http.Transport{MaxIdleConnsPerHost: cfg.workers}}
	defer hc.CloseIdleConnections()
	ctl := &control{base: atlasURL, hc: hc}
	if err := ctl.post(ctx, "fault-rate?rate="+strconv.FormatFloat(cfg.faultRate, 'f', -1, 64)+"&statuses="+url.QueryEscape(joinInts(cfg.statuses))); err != nil {
		return fmt.Errorf("setting the emulator's fault rate: %w", err)
	}

	fmt.Fprintf(stdout, "soak: %v at %.0f calls/s, %d workers, %d projects, %.0f%% Atlas faults (%s); daemon pid %d, emulator pid %d\n",
		cfg.duration, cfg.rate, cfg.workers, cfg.groups, cfg.faultRate*100, joinInts(cfg.statuses), d.pid(), emu.pid())

	l := newLoad(cfg, encryptionv1.NewEncryptionServiceClient(conn), hc, "http://"+httpAddr)
	sampler := &sampler{pid: d.pid(), metricsURL: "http://" + httpAddr + "/metrics", hc: hc}
	res, err := l.run(ctx, sampler, stdout)
	if err != nil {
		return err
	}

	// After the load: faults off, then compare every project with the model.
	if err := ctl.post(context.WithoutCancel(ctx), "fault-rate?rate=0"); err != nil {
		return fmt.Errorf("clearing the emulator's fault rate: %w", err)
	}
	res.stateMismatches = l.verifyState(context.WithoutCancel(ctx), ctl)
	res.emulator, _ = ctl.stats(context.WithoutCancel(ctx))

	d.stop()
	emu.stop()
	res.daemonExit = d.err
	logText, err := os.ReadFile(d.log)
	if err != nil {
		return err
	}
	res.secretsInOutput = countSecrets(string(logText), append(l.secrets(), priv))
	res.errorRecords = countErrorRecords(string(logText))

	res.env = fmt.Sprintf("%s/%s, %d CPUs, %s", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version())
	report := res.markdown(cfg)
	fmt.Fprintln(stdout)
	fmt.Fprint(stdout, report)
	if cfg.out != "" {
		if err := writeSection(cfg.out, "## Soak", report); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "\nwrote the Soak section of %s\n", cfg.out)
	}
	if failed := res.failures(); len(failed) > 0 {
		return fmt.Errorf("soak failed: %s", strings.Join(failed, "; "))
	}
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func joinInts(ns []int) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ",")
}
