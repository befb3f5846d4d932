package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/encryptiond/encryptiond/atlas"
	"github.com/encryptiond/encryptiond/atlas/atlastest"
	"github.com/encryptiond/encryptiond/cmd/internal/procs"
	"github.com/encryptiond/encryptiond/cmd/internal/report"
	encryptionv1 "github.com/encryptiond/encryptiond/gen/atlas/encryption/v1"
)

// The steps of a run, in order, as -steps names them and the table's
// first column shows them.
const (
	stepRoundTrips = "round-trips" // Atlas exchanges per call, digest challenges
	stepCurl       = "curl"        // REST Get against curl --digest at 100 ms
	stepCoalescing = "coalescing"  // Atlas calls for concurrent Gets
	stepOverhead   = "overhead"    // latency added, one caller, zero latency
	stepCallers    = "200-callers" // latency and CPU, 200 callers at 50 ms
	stepThroughput = "throughput"  // rates at zero latency
	stepMemory     = "memory"      // RSS idle and at 1000 callers
	stepWatch      = "watch"       // Atlas GETs and RSS at 10,000 watchers (fleet.go)
	stepFanout     = "fanout"      // an update reaching 1000 watchers
	stepList       = "list"        // ListEncryptionAtRest over 1000 projects
)

var stepNames = []string{stepRoundTrips, stepCurl, stepCoalescing, stepOverhead, stepCallers, stepThroughput, stepMemory, stepWatch, stepFanout, stepList}

// daemonArgs are the flags the driver gives every daemon: Atlas speaks
// HTTP/2 (over HTTPS), so concurrent calls share a few connections; the
// emulator serves HTTP/2 without TLS, and -atlas-h2c makes the daemon use
// it, so that the load runs have Atlas's shape rather than one HTTP/1.1
// connection per call in flight. make bench builds the daemon from the same
// tree, so the flag is there.
var daemonArgs = []string{"-atlas-h2c"}

// The binaries a run needs in -bin; make bench builds them.
var binaries = []string{"atlas-emulator", "encryptiond", "encryptiond-bench", "ghz"}

// config is the driver's configuration, from flags.
type config struct {
	bin      string
	out      string
	duration time.Duration
	// steps, when not empty, limits the run to these steps (see
	// stepNames); such a run prints its table but does not write out.
	steps map[string]bool
	// daemonCPUs is the GOMAXPROCS of the daemon and of the reference
	// proxy; 0 leaves Go's default, every core.
	daemonCPUs int
	// daemonArgs and daemonEnv are added to the daemon's flags and
	// environment, for comparing configurations.
	daemonArgs, daemonEnv []string
	// reference makes the binary serve the reference proxy (see
	// reference.go) instead of driving a run: the driver starts itself so.
	reference bool
}

func parseFlags(args []string, w io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("encryptiond-bench", flag.ContinueOnError)
	fs.SetOutput(w)
	fs.StringVar(&c.bin, "bin", ".build/bench", "`directory` holding atlas-emulator, encryptiond, encryptiond-bench and ghz")
	fs.StringVar(&c.out, "out", "BENCH.md", "Markdown `file` whose generated section is replaced; empty prints only")
	fs.DurationVar(&c.duration, "duration", 5*time.Second, "length of each throughput and latency load run")
	fs.IntVar(&c.daemonCPUs, "daemon-cpus", 1, "GOMAXPROCS of the daemon and the reference proxy, as in a container limited to `N` CPUs; 0 leaves Go's default (every core)")
	steps := fs.String("steps", "", "comma-separated `list` of steps to run, of "+strings.Join(stepNames, ", ")+"; a partial run does not write -out")
	daemonArgs := fs.String("daemon-args", "", "extra `flags` for encryptiond, space-separated")
	daemonEnv := fs.String("daemon-env", "", "extra `variables` for encryptiond's environment (NAME=value, space-separated)")
	fs.BoolVar(&c.reference, "reference-proxy", false, "serve the reference proxy for a run of this driver, which starts it (internal)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	for st := range strings.SplitSeq(*steps, ",") {
		if st = strings.TrimSpace(st); st == "" {
			continue
		}
		if !slices.Contains(stepNames, st) {
			return c, fmt.Errorf("-steps: no step %q (steps: %s)", st, strings.Join(stepNames, ", "))
		}
		if c.steps == nil {
			c.steps = map[string]bool{}
		}
		c.steps[st] = true
	}
	c.daemonArgs, c.daemonEnv = strings.Fields(*daemonArgs), strings.Fields(*daemonEnv)
	if c.daemonCPUs < 0 {
		return c, errors.New("-daemon-cpus: want 0 or more")
	}
	if c.duration < time.Second {
		return c, errors.New("-duration: want at least 1s")
	}
	return c, nil
}

// runs reports whether the run includes step.
func (c config) runs(step string) bool { return c.steps == nil || c.steps[step] }

// cpuEnv is the environment that gives a child -daemon-cpus.
func (c config) cpuEnv() []string {
	if c.daemonCPUs == 0 {
		return nil
	}
	return []string{"GOMAXPROCS=" + strconv.Itoa(c.daemonCPUs)}
}

// bench holds the processes and clients of one run.
type bench struct {
	cfg     config
	dir     string
	harness procs.Harness
	emu     *procs.Emulator
	d       *procs.Daemon
	dargs   []string                             // the daemon's flags beyond the harness's: see daemonArgs
	ghzPool string                               // ghz's requests: see writeGHZPool
	ref     encryptionv1.EncryptionServiceClient // the reference proxy: see reference.go
	refPID  int
	daemons []*procs.Proc // every daemon started, for checkDaemonLog
	rest    *http.Client
	direct  *atlas.Client // a warm digest client straight to the emulator
	log     io.Writer
	// wrk and curl are whether those tools are installed: without wrk the
	// REST load runs use only the Go generator; without curl the curl
	// step is not measured.
	wrk, curl bool

	// fleetEmu and fleetD are the fleet steps' own emulator and daemon,
	// once one of them has run (see startFleet).
	fleetEmu *procs.Emulator
	fleetD   *procs.Daemon

	rows  []row
	notes []string
	// steady accumulates the emulator's counters over the daemon's load
	// runs, for the challenges-per-1000-calls target.
	steady atlastest.EmulatorStats
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	cfg, err := parseFlags(args, stdout)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	if cfg.reference {
		return serveReference(ctx, stdout)
	}
	for _, name := range binaries {
		if _, err := os.Stat(filepath.Join(cfg.bin, name)); err != nil {
			return fmt.Errorf("%s not built in -bin %s (make bench builds it): %w", name, cfg.bin, err)
		}
	}
	dir, err := os.MkdirTemp("", "encryptiond-bench-")
	if err != nil {
		return err
	}
	b := &bench{
		cfg: cfg, dir: dir, log: stdout,
		harness: procs.Harness{Bin: cfg.bin, Dir: dir, Ready: 20 * time.Second, StopGrace: 5 * time.Second, DaemonEnv: append(cfg.cpuEnv(), cfg.daemonEnv...)},
		dargs:   slices.Concat(daemonArgs, cfg.daemonArgs),
		wrk:     installed("wrk"),
		curl:    installed("curl"),
	}
	fmt.Fprintf(stdout, "encryptiond-bench: %d cores, logs in %s\n", runtime.NumCPU(), dir)
	if !b.wrk {
		fmt.Fprintln(stdout, "wrk is not installed: the REST load runs use the driver's Go generator only, and the wrk rows (information) are not measured")
	}
	if !b.curl {
		fmt.Fprintln(stdout, "curl is not installed: the REST Get vs curl --digest target is not measured")
	}
	if b.ghzPool, err = writeGHZPool(dir); err != nil {
		return err
	}

	b.emu, err = b.harness.StartEmulator(ctx)
	if err != nil {
		return err
	}
	defer b.emu.Proc.Stop()
	b.d, err = b.startDaemon(ctx, b.harness, b.emu)
	if err != nil {
		return err
	}
	defer func() { b.d.Stop() }() // b.d changes on restart
	defer b.stopFleet()
	fmt.Fprintf(stdout, "emulator %s (pid %d); encryptiond grpc %s http %s (pid %d)\n",
		b.emu.URL, b.emu.Proc.PID(), b.d.GRPCAddr, b.d.HTTPAddr, b.d.Proc.PID())

	ref, refAddr, err := b.startReference(ctx)
	if err != nil {
		return err
	}
	defer ref.Stop()
	refConn, err := procs.Dial(refAddr)
	if err != nil {
		return err
	}
	defer refConn.Close()
	b.ref, b.refPID = encryptionv1.NewEncryptionServiceClient(refConn), ref.PID()
	b.rest = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 1100, MaxIdleConns: 1100}}
	// The direct client speaks to the emulator as the daemon does (see
	// daemonArgs): HTTP/2 without TLS, Atlas's own protocol minus TLS.
	b.direct, err = atlas.NewClient(atlas.WithBaseURL(b.emu.URL), atlas.WithDigest(b.emu.PublicKey, b.emu.PrivateKey), atlas.WithUnencryptedHTTP2())
	if err != nil {
		return err
	}

	// The warm-up runs whatever the steps; it measures idle memory for
	// the memory step.
	steps := []struct {
		step, name string
		f          func(context.Context) error
	}{
		{"", "warm up", b.warmUp},
		{stepRoundTrips, "Atlas exchanges per call", b.roundTrips},
		{stepCurl, "REST Get vs curl --digest at 100 ms", b.versusCurl},
		{stepCoalescing, "coalescing", b.coalescing},
		{stepOverhead, "latency overhead, single caller, zero latency", b.overhead},
		{stepCallers, "200 concurrent callers at 50 ms", b.concurrent200},
		{stepThroughput, "throughput, zero latency", b.throughput},
		{stepMemory, "memory at 1000 concurrent callers", b.memory1000},
		{stepWatch, "10,000 concurrent watchers over 100 projects, polled every 10 s", b.watch10000},
		{stepFanout, "an update reaching 1000 watchers of its project", b.fanout},
		{stepList, "ListEncryptionAtRest over 1000 projects at 50 ms", b.list1000},
	}
	for _, s := range steps {
		if err := ctx.Err(); err != nil {
			return err
		}
		if s.step != "" && !cfg.runs(s.step) {
			continue
		}
		fmt.Fprintf(stdout, "== %s: %s\n", cmp.Or(s.step, "start"), s.name)
		if err := s.f(ctx); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
	}
	b.addChallengeRow()
	if err := b.checkDaemonLog(); err != nil {
		return err
	}

	text := b.report(time.Now())
	fmt.Fprintln(stdout)
	fmt.Fprint(stdout, text)
	if cfg.out != "" && cfg.steps == nil {
		if err := report.WriteSection(cfg.out, "bench", "## Results", text); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "\nwrote %s\n", cfg.out)
	}
	return nil
}

// installed reports whether tool is on PATH.
func installed(tool string) bool {
	_, err := exec.LookPath(tool)
	return err == nil
}

// group returns a project id: prefix (8 hex digits) then i.
func group(prefix uint32, i int64) string { return fmt.Sprintf("%08x%016x", prefix, i) }

// Prefixes keep the projects of each step apart.
const (
	pfxWarm uint32 = 0xa0000000 + iota
	pfxTrips
	pfxCurl
	pfxCoalesce40
	pfxCoalesce1000
	pfxOverhead
	pfxRawWRK
	pfxLoad
	pfxFleet
)

// The load runs cycle through one pool of projects, far more than there
// are concurrent callers, so that two calls in flight never name the same
// project: none is shared, each costs one Atlas exchange, the daemon's
// worst case. The pool is bounded because the daemon keeps a valid gauge
// per project it has seen, for ever: a new project per call would measure
// that growth rather than the call.
const loadPool = 4096

func loadGroup(i int64) string { return group(pfxLoad, i%loadPool) }

// startDaemon starts a daemon of emu with h, the driver's flags and args.
func (b *bench) startDaemon(ctx context.Context, h procs.Harness, emu *procs.Emulator, args ...string) (*procs.Daemon, error) {
	d, err := h.StartDaemon(ctx, emu, slices.Concat(b.dargs, args)...)
	if err != nil {
		return nil, err
	}
	b.daemons = append(b.daemons, d.Proc)
	return d, nil
}

// restartDaemon replaces the daemon with a fresh process, warmed with one
// call, so that a measurement of memory does not carry earlier runs' heap.
func (b *bench) restartDaemon(ctx context.Context) error {
	before, _ := procs.ReadMemory(b.d.Proc.PID())
	b.d.Stop()
	d, err := b.startDaemon(ctx, b.harness, b.emu)
	if err != nil {
		return err
	}
	b.note("daemon restarted for the memory run; the old one ended at RSS %s (peak %s)", mb(before.RSS), mb(before.HWM))
	b.d = d
	return b.getGRPC(ctx, group(pfxWarm, 0))
}

func (b *bench) getGRPC(ctx context.Context, groupID string) error {
	return getGRPC(ctx, b.d.Client, groupID)
}

func getGRPC(ctx context.Context, c encryptionv1.EncryptionServiceClient, groupID string) error {
	_, err := c.GetEncryptionAtRest(ctx, &encryptionv1.GetEncryptionAtRestRequest{GroupId: groupID})
	return err
}

func (b *bench) getREST(ctx context.Context, groupID string) error {
	return b.getRESTAt(ctx, b.d.HTTPAddr, groupID)
}

func (b *bench) getRESTAt(ctx context.Context, httpAddr, groupID string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+httpAddr+"/v1/groups/"+groupID+"/encryptionAtRest", nil)
	if err != nil {
		return err
	}
	res, err := b.rest.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("REST Get: %s", res.Status)
	}
	return nil
}

func (b *bench) getReference(ctx context.Context, groupID string) error {
	return getGRPC(ctx, b.ref, groupID)
}

func (b *bench) getDirect(ctx context.Context, groupID string) error {
	_, err := b.direct.GetEncryptionAtRest(ctx, groupID)
	return err
}

// warmUp makes the first calls of every client, so that no step pays for
// a cold connection or a digest challenge (the daemon's, the reference
// proxy's and the direct client's Atlas clients each meet one), and reads
// the daemon's idle RSS.
func (b *bench) warmUp(ctx context.Context) error {
	for i := range int64(20) {
		if err := b.getGRPC(ctx, group(pfxWarm, i)); err != nil {
			return err
		}
		if err := b.getREST(ctx, group(pfxWarm, i)); err != nil {
			return err
		}
		if err := b.getDirect(ctx, group(pfxWarm, i)); err != nil {
			return err
		}
		if err := b.getReference(ctx, group(pfxWarm, i)); err != nil {
			return err
		}
	}
	time.Sleep(2 * time.Second) // let the runtime settle after start-up
	m, err := procs.ReadMemory(b.d.Proc.PID())
	if err != nil {
		return err
	}
	if b.cfg.runs(stepMemory) {
		b.add(row{step: stepMemory, what: "RSS idle (after start-up and 40 calls)", limit: "≤ 30 MB", value: mb(m.RSS), verdict: judge(m.RSS <= 30<<20)})
	}
	return nil
}

// roundTrips counts the exchanges of single calls at the emulator, with
// the daemon's digest client warm.
func (b *bench) roundTrips(ctx context.Context) error {
	g := group(pfxTrips, 1)
	role := "5f3b1c2d3e4f5a6b7c8d9e0f"
	on, off := true, false
	region, cmk := "US_EAST_1", "arn:aws:kms:us-east-1:123456789012:key/bench"
	newRegion := "EU_WEST_1"
	update := func(aws *encryptionv1.AwsKms) func() error {
		return func() error {
			_, err := b.d.Client.UpdateEncryptionAtRest(ctx, &encryptionv1.UpdateEncryptionAtRestRequest{
				GroupId: g, Config: &encryptionv1.ProviderConfig{Provider: &encryptionv1.ProviderConfig_AwsKms{AwsKms: aws}},
			})
			return err
		}
	}
	calls := []struct {
		what  string
		limit int64 // 0: for information
		f     func() error
	}{
		{"Get over gRPC", 1, func() error { return b.getGRPC(ctx, g) }},
		{"Get over REST", 1, func() error { return b.getREST(ctx, g) }},
		{"enable with the whole document", 0, update(&encryptionv1.AwsKms{Enabled: &on, CustomerMasterKeyId: &cmk, Region: &region, RoleId: &role})},
		{"partial Update (region only)", 2, update(&encryptionv1.AwsKms{Region: &newRegion})},
		{"disable", 2, update(&encryptionv1.AwsKms{Enabled: &off})},
	}
	for _, c := range calls {
		s, err := b.measure(ctx, c.f)
		if err != nil {
			return fmt.Errorf("%s: %w", c.what, err)
		}
		what, value := "Atlas exchanges: "+c.what, fmt.Sprintf("%d (%d GET, %d PATCH, %d challenges)", s.Requests, s.Gets, s.Patches, s.Challenges)
		if c.limit == 0 {
			b.addInfo(stepRoundTrips, what, value)
			continue
		}
		b.add(row{step: stepRoundTrips, what: what, limit: fmt.Sprintf("≤ %d", c.limit), value: value, verdict: judge(s.Requests <= c.limit)})
	}
	return nil
}

// versusCurl compares curl --digest straight to the emulator (a challenge
// and a signed request: two exchanges per call) with curl to the daemon's
// REST Get (one exchange once warm), at 100 ms per Atlas exchange.
func (b *bench) versusCurl(ctx context.Context) error {
	const n = 15
	const what = "REST Get p50 / curl --digest p50 at 100 ms latency"
	q := ratio{limit: 0.55}
	if !b.curl {
		b.add(row{step: stepCurl, what: what, limit: q.limitText(), value: "not measured: curl is not installed", verdict: notMeasured})
		return nil
	}
	if err := b.emu.SetLatency(ctx, 100*time.Millisecond); err != nil {
		return err
	}
	defer b.emu.SetLatency(context.WithoutCancel(ctx), 0)
	g := group(pfxCurl, 1)
	var direct, rest []time.Duration
	s, err := b.measure(ctx, func() error {
		var err error
		direct, err = curlTimes(ctx, n, "--digest", "-u", b.emu.PublicKey+":"+b.emu.PrivateKey,
			"-H", "Accept: application/vnd.atlas.2023-01-01+json", b.emu.URL+"/api/atlas/v2/groups/"+g+"/encryptionAtRest")
		return err
	})
	if err != nil {
		return err
	}
	curlP50 := report.Percentile(direct, 50)
	b.note("curl --digest direct: %d calls, %d exchanges at the emulator, p50 %s", n, s.Requests, ms(curlP50))
	s, err = b.measure(ctx, func() error {
		var err error
		rest, err = curlTimes(ctx, n, "http://"+b.d.HTTPAddr+"/v1/groups/"+g+"/encryptionAtRest")
		return err
	})
	if err != nil {
		return err
	}
	restP50 := report.Percentile(rest, 50)
	b.note("curl to encryptiond REST: %d calls, %d exchanges at the emulator, p50 %s", n, s.Requests, ms(restP50))
	q.num, q.den = float64(restP50), float64(curlP50)
	b.addRatio(stepCurl, what, "", q, fmt.Sprintf("REST %s, curl --digest %s", ms(restP50), ms(curlP50)))
	return nil
}

// coalescing fires concurrent gRPC Gets while every Atlas exchange takes
// 300 ms, and counts the exchanges.
func (b *bench) coalescing(ctx context.Context) error {
	if err := b.emu.SetLatency(ctx, 300*time.Millisecond); err != nil {
		return err
	}
	defer b.emu.SetLatency(context.WithoutCancel(ctx), 0)
	burst := func(n, groups int, prefix uint32) (phase, error) {
		return b.measure(ctx, func() error {
			start := make(chan struct{})
			errs := make(chan error, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() {
					<-start
					errs <- b.getGRPC(ctx, group(prefix, int64(i%groups)))
				})
			}
			close(start)
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					return err
				}
			}
			return nil
		})
	}
	s, err := burst(40, 1, pfxCoalesce40)
	if err != nil {
		return err
	}
	b.add(row{step: stepCoalescing, what: "Atlas calls for 40 concurrent Gets of one project (300 ms exchange)", limit: "≤ 3",
		value: fmt.Sprint(s.Requests), verdict: judge(s.Requests <= 3)})
	b.accumulate(s)
	s, err = burst(1000, 100, pfxCoalesce1000)
	if err != nil {
		return err
	}
	b.add(row{step: stepCoalescing, what: "Atlas calls for 1000 concurrent Gets over 100 projects", limit: "≤ 100 + a few (≤ 105)",
		value: fmt.Sprint(s.Requests), verdict: judge(s.Requests <= 105)})
	b.accumulate(s)
	return nil
}

// overhead compares, one caller at a time and without Atlas latency, a
// direct Go client call with the same Get through the daemon, and through
// the reference proxy (see reference.go). What the daemon adds over the
// direct client is judged against what the reference proxy adds: the cost
// of one more process and one gRPC hop on this machine. When the daemon
// runs on fewer cores than Go would give it (-daemon-cpus), a second
// daemon on every core is measured in the same rounds, for the record. The
// kinds of call alternate in rounds so that drift hits all of them.
func (b *bench) overhead(ctx context.Context) error {
	type kind struct {
		name string
		call func(context.Context, string) error
		lat  []time.Duration
	}
	direct := &kind{name: "direct Go client", call: b.getDirect}
	viaGRPC := &kind{name: "gRPC", call: b.getGRPC}
	viaREST := &kind{name: "REST", call: b.getREST}
	ref := &kind{name: "reference proxy", call: b.getReference}
	kinds := []*kind{direct, viaGRPC, viaREST, ref}
	if b.cfg.daemonCPUs != 0 {
		h := b.harness
		h.DaemonEnv = b.cfg.daemonEnv
		d, err := b.startDaemon(ctx, h, b.emu)
		if err != nil {
			return err
		}
		defer d.Stop()
		kinds = append(kinds,
			&kind{name: "gRPC, daemon on every core", call: func(ctx context.Context, g string) error { return getGRPC(ctx, d.Client, g) }},
			&kind{name: "REST, daemon on every core", call: func(ctx context.Context, g string) error { return b.getRESTAt(ctx, d.HTTPAddr, g) }},
		)
	}
	const rounds, per = 10, 200
	g := group(pfxOverhead, 1)
	for _, k := range kinds { // one warm call each
		if err := k.call(ctx, g); err != nil {
			return fmt.Errorf("%s: %w", k.name, err)
		}
	}
	s, err := b.measure(ctx, func() error {
		for range rounds {
			for _, k := range kinds {
				for range per {
					t := time.Now()
					if err := k.call(ctx, g); err != nil {
						return fmt.Errorf("%s: %w", k.name, err)
					}
					k.lat = append(k.lat, time.Since(t))
				}
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	p50 := func(k *kind) time.Duration { return report.Percentile(k.lat, 50) }
	var parts []string
	for _, k := range kinds {
		parts = append(parts, fmt.Sprintf("%s p50 %s", k.name, msFine(p50(k))))
	}
	b.note("single caller, zero latency, %d calls each: %s (%d Atlas exchanges for %d calls)",
		rounds*per, strings.Join(parts, ", "), s.Requests, rounds*per*len(kinds))
	added := func(k *kind) time.Duration { return p50(k) - p50(direct) }
	if len(kinds) > 4 {
		b.note("p50 added over the direct Go client by a daemon on every core: gRPC %s, REST %s", msFine(added(kinds[4])), msFine(added(kinds[5])))
	}
	detail := func(k *kind) string {
		return fmt.Sprintf("the daemon adds %s, the reference proxy %s; p50 %s %s, reference proxy %s, direct Go client %s",
			msFine(added(k)), msFine(added(ref)), k.name, msFine(p50(k)), msFine(p50(ref)), msFine(p50(direct)))
	}
	b.addRatio(stepOverhead, "p50 the daemon adds over a direct Go client call, gRPC", "what the reference proxy adds",
		ratio{num: float64(added(viaGRPC)), den: float64(added(ref)), limit: 1.25}, detail(viaGRPC))
	b.addRatio(stepOverhead, "p50 the daemon adds over a direct Go client call, REST", "what the reference proxy adds (gRPC)",
		ratio{num: float64(added(viaREST)), den: float64(added(ref)), limit: 2}, detail(viaREST))
	return nil
}

// cpuCeiling is the rate a run's calls could reach on this machine if the
// daemon cost no CPU at all: every core shared by what the load tool and
// the emulator spent per call. Zero when either was not measured.
func cpuCeiling(r loadResult) float64 {
	if r.calls == 0 || r.cpu == 0 || r.emuCPU == 0 {
		return 0
	}
	perCall := (r.cpu + r.emuCPU).Seconds() / float64(r.calls)
	return float64(runtime.NumCPU()) / perCall
}

// concurrent200 runs 200 concurrent gRPC callers at 50 ms per Atlas
// exchange, cycling through the project pool (no sharing: each call is one
// exchange, the daemon's worst case). First ghz against the daemon, for
// information: on a small machine its own CPU, more than the Go
// generator's, sets its numbers. Then, taking turns (see alternate), the
// driver's Go load generator through the daemon and through the reference
// proxy (see reference.go), and 200 direct Go clients with no proxy at
// all, the latency this machine gives the emulator's 50 ms. The daemon's
// p50, p99 and CPU per call are judged against the reference proxy's.
func (b *bench) concurrent200(ctx context.Context) error {
	if err := b.emu.SetLatency(ctx, 50*time.Millisecond); err != nil {
		return err
	}
	defer b.emu.SetLatency(context.WithoutCancel(ctx), 0)
	var ghz loadResult
	s, err := b.measure(ctx, func() error {
		var err error
		ghz, err = runGHZ(ctx, filepath.Join(b.cfg.bin, "ghz"), b.d.GRPCAddr, b.ghzPool, 200, 10, 0, b.cfg.duration)
		return err
	})
	if err != nil {
		return err
	}
	b.accumulate(s)
	b.note("200 callers at 50 ms, projects cycled, none shared, ghz over 10 connections: %v; %d Atlas exchanges; %s", ghz, s.Requests, s.cpuPerCall(s.Gets))

	daemon := &goRun{tool: "Go gRPC load generator", conc: 200, call: func(ctx context.Context, i int64) error { return b.getGRPC(ctx, loadGroup(i)) }}
	ref := &goRun{tool: "Go gRPC load generator", conc: 200, call: func(ctx context.Context, i int64) error { return b.getReference(ctx, loadGroup(i)) }}
	direct := &goRun{tool: "direct Go client", conc: 200, call: func(ctx context.Context, i int64) error { return b.getDirect(ctx, loadGroup(i)) }}
	if err := b.alternate(ctx, daemon, ref, direct); err != nil {
		return err
	}
	b.accumulate(daemon.ph)
	b.note("200 callers at 50 ms, projects cycled, none shared, in turns with the two below; Go load generator over 1 connection: %v; %d Atlas exchanges; %s",
		daemon.r, daemon.ph.Requests, daemon.ph.cpuPerCall(daemon.r.calls))
	b.note("the same through the reference proxy: %v; %d Atlas exchanges; CPU per call: reference proxy %s, emulator %s",
		ref.r, ref.ph.Requests, perCall(ref.ph.refCPU, ref.r.calls), perCall(ref.ph.emuCPU, ref.r.calls))
	b.note("the same with 200 direct Go clients and no proxy: %v; %d Atlas exchanges; CPU per call: emulator %s",
		direct.r, direct.ph.Requests, perCall(direct.ph.emuCPU, direct.r.calls))

	latency := func(pct string, p func(loadResult) time.Duration, limit float64) {
		b.addRatio(stepCallers, "gRPC Get "+pct+", 200 concurrent callers, 50 ms Atlas latency (Go client)", "the reference proxy's",
			ratio{num: float64(p(daemon.r)), den: float64(p(ref.r)), limit: limit},
			fmt.Sprintf("daemon %s, reference proxy %s; direct, no proxy: %s", ms(p(daemon.r)), ms(p(ref.r)), ms(p(direct.r))),
			daemon.r, ref.r, direct.r)
	}
	latency("p50", func(r loadResult) time.Duration { return r.p50 }, 1.05)
	latency("p99", func(r loadResult) time.Duration { return r.p99 }, 1.15)
	cpuPerCall := func(cpu time.Duration, calls int64) float64 { return cpu.Seconds() / float64(max(calls, 1)) }
	b.addRatio(stepCallers, "daemon CPU per call, 200 concurrent callers, 50 ms Atlas latency (Go client)", "the reference proxy's",
		ratio{num: cpuPerCall(daemon.ph.daemonCPU, daemon.r.calls), den: cpuPerCall(ref.ph.refCPU, ref.r.calls), limit: 1.15},
		fmt.Sprintf("daemon %s, reference proxy %s per call", perCall(daemon.ph.daemonCPU, daemon.r.calls), perCall(ref.ph.refCPU, ref.r.calls)),
		daemon.r, ref.r)
	b.addInfo(stepCallers, "gRPC Get p50 and p99, 200 concurrent callers, 50 ms Atlas latency (ghz)",
		fmt.Sprintf("p50 %s, p99 %s (%d errors)", ms(ghz.p50), ms(ghz.p99), ghz.errors))
	return nil
}

// throughput measures rates at zero latency, every call to its own
// project, 50 concurrent callers. The targets compare Go clients, which
// cost about the same CPU on the client side, taking turns (see
// alternate): the warm direct Go client's raw rate at the emulator, and
// the Go generators' through the daemon over gRPC and REST. The load tools
// are compared with each other for information, as ghz costs several
// times wrk's CPU per call: wrk replaying a signed request at the
// emulator, ghz over gRPC, wrk over REST.
func (b *bench) throughput(ctx context.Context) error {
	const conc = 50
	dur := b.cfg.duration
	raw := &goRun{tool: "direct Go client", conc: conc, call: func(ctx context.Context, i int64) error { return b.getDirect(ctx, loadGroup(i)) }}
	overGRPC := &goRun{tool: "Go gRPC load generator", conc: conc, allocs: true, call: func(ctx context.Context, i int64) error { return b.getGRPC(ctx, loadGroup(i)) }}
	overREST := &goRun{tool: "Go HTTP load generator", conc: conc, call: func(ctx context.Context, i int64) error { return b.getREST(ctx, loadGroup(i)) }}
	if err := b.alternate(ctx, raw, overGRPC, overREST); err != nil {
		return err
	}
	for _, n := range []struct {
		name string
		g    *goRun
	}{
		{"emulator raw rate, warm direct Go atlas client, in turns with the two below", raw},
		{"gRPC through encryptiond, Go load generator", overGRPC},
		{"REST through encryptiond, Go load generator", overREST},
	} {
		b.note("%s: %v; %d Atlas exchanges; %s", n.name, n.g.r, n.g.ph.Requests, n.g.ph.cpuPerCall(n.g.r.calls))
	}
	if n := float64(overGRPC.r.calls); n > 0 {
		b.note("daemon heap allocations per gRPC Get under load (Go runtime counters from /metrics; everything included: gRPC, interceptors, logging, metrics, Atlas client): %.0f objects, %.1f KiB",
			overGRPC.objects/n, overGRPC.bytes/n/1024)
	}

	tool := func(name string, f func() (loadResult, error)) (loadResult, error) {
		var r loadResult
		s, err := b.measure(ctx, func() error {
			var err error
			r, err = f()
			return err
		})
		if err != nil {
			return r, fmt.Errorf("%s: %w", name, err)
		}
		b.note("%s: %v; %d Atlas exchanges; %s", name, r, s.Requests, s.cpuPerCall(s.Gets))
		r.emuCPU = s.emuCPU
		return r, nil
	}
	var rawWRK, grpcGHZ, restWRK loadResult
	var err error
	if b.wrk {
		target := b.emu.URL + "/api/atlas/v2/groups/" + group(pfxRawWRK, 0) + "/encryptionAtRest"
		auth, err := digestHeader(ctx, target, "application/vnd.atlas.2023-01-01+json", b.emu.PublicKey, b.emu.PrivateKey)
		if err != nil {
			return err
		}
		rawWRK, err = tool("emulator raw rate, wrk replaying a signed GET", func() (loadResult, error) {
			return runWRK(ctx, b.dir, target, []string{auth, "Accept: application/vnd.atlas.2023-01-01+json"}, conc, dur, false)
		})
		if err != nil {
			return err
		}
	}
	grpcGHZ, err = tool("gRPC through encryptiond, ghz over 5 connections", func() (loadResult, error) {
		return runGHZ(ctx, filepath.Join(b.cfg.bin, "ghz"), b.d.GRPCAddr, b.ghzPool, conc, 5, 0, dur)
	})
	if err != nil {
		return err
	}
	if b.wrk {
		restWRK, err = tool("REST through encryptiond, wrk", func() (loadResult, error) {
			return runWRK(ctx, b.dir, "http://"+b.d.HTTPAddr, nil, conc, dur, true)
		})
		if err != nil {
			return err
		}
	}

	rates := func(num, den loadResult, ceiling bool) string {
		v := fmt.Sprintf("%s %.0f/s, %s %.0f/s", num.tool, num.rps, den.tool, den.rps)
		if c := cpuCeiling(num); ceiling && c > 0 && den.rps > 0 {
			v += fmt.Sprintf("; at most %.0f%% if the daemon cost no CPU", 100*c/den.rps)
		}
		return v
	}
	b.addRatio(stepThroughput, "gRPC rate / the direct Go client's raw rate at the emulator (Go clients)", "",
		ratio{num: overGRPC.r.rps, den: raw.r.rps, limit: 0.6, atLeast: true, percent: true}, rates(overGRPC.r, raw.r, true), overGRPC.r, raw.r)
	b.addRatio(stepThroughput, "REST rate / gRPC rate (Go clients)", "",
		ratio{num: overREST.r.rps, den: overGRPC.r.rps, limit: 0.6, atLeast: true, percent: true}, rates(overREST.r, overGRPC.r, false), overREST.r, overGRPC.r)
	toolRatio := func(what string, num, den loadResult, ceiling bool) {
		if !b.wrk {
			b.addInfo(stepThroughput, what, "not measured: wrk is not installed")
			return
		}
		q := ratio{num: num.rps, den: den.rps, percent: true}
		b.addInfo(stepThroughput, what, q.String()+" ("+rates(num, den, ceiling)+")")
	}
	toolRatio("gRPC rate / emulator raw rate, load tools (ghz vs wrk)", grpcGHZ, rawWRK, true)
	toolRatio("REST rate / gRPC rate, load tools (wrk vs ghz)", restWRK, grpcGHZ, false)
	return nil
}

// memory1000 samples the RSS of a fresh daemon while 1000 concurrent gRPC
// callers (ghz over 20 connections) run at 50 ms per Atlas exchange.
func (b *bench) memory1000(ctx context.Context) error {
	if err := b.restartDaemon(ctx); err != nil {
		return err
	}
	if err := b.emu.SetLatency(ctx, 50*time.Millisecond); err != nil {
		return err
	}
	defer b.emu.SetLatency(context.WithoutCancel(ctx), 0)
	peakRSS := startPeakRSS(ctx, b.d.Proc.PID())
	var r loadResult
	s, err := b.measure(ctx, func() error {
		var err error
		r, err = runGHZ(ctx, filepath.Join(b.cfg.bin, "ghz"), b.d.GRPCAddr, b.ghzPool, 1000, 20, 0, b.cfg.duration)
		return err
	})
	rss := peakRSS()
	if err != nil {
		return err
	}
	b.accumulate(s)
	b.note("1000 callers at 50 ms (ghz, 20 connections): %v; %d Atlas exchanges; peak RSS %s; %s", r, s.Requests, mb(rss), s.cpuPerCall(s.Gets))
	b.add(row{step: stepMemory, what: "peak RSS, 1000 concurrent gRPC callers", limit: "≤ 80 MB", value: mb(rss), verdict: failOnErrors(judge(rss <= 80<<20), r)})
	return nil
}

// phase is what a step cost, measured around it: the emulator's counters
// and the CPU time the daemon, the reference proxy and the emulator used.
type phase struct {
	atlastest.EmulatorStats
	daemonCPU, refCPU, emuCPU time.Duration
}

// add returns the costs of p and o together (the counters the steps read).
func (p phase) add(o phase) phase {
	p.EmulatorStats = p.EmulatorStats.Plus(o.EmulatorStats)
	p.daemonCPU += o.daemonCPU
	p.refCPU += o.refCPU
	p.emuCPU += o.emuCPU
	return p
}

// cpuPerCall describes the CPU the daemon and the emulator spent per call.
func (p phase) cpuPerCall(calls int64) string {
	if calls == 0 {
		return ""
	}
	return fmt.Sprintf("CPU per call: daemon %s, emulator %s", perCall(p.daemonCPU, calls), perCall(p.emuCPU, calls))
}

// measure runs f between a reset and a read of the emulator's counters,
// and takes the CPU time of the daemon, the reference proxy and the
// emulator around it.
func (b *bench) measure(ctx context.Context, f func() error) (phase, error) {
	cpu := func() (d, r, e time.Duration, err error) {
		var errs [3]error
		d, errs[0] = cpuTime(b.d.Proc.PID())
		r, errs[1] = cpuTime(b.refPID)
		e, errs[2] = cpuTime(b.emu.Proc.PID())
		return d, r, e, errors.Join(errs[:]...)
	}
	d0, r0, e0, err := cpu()
	if err != nil {
		return phase{}, err
	}
	if err := b.emu.ResetStats(ctx); err != nil {
		return phase{}, err
	}
	if err := f(); err != nil {
		return phase{}, err
	}
	s, err := b.emu.Stats(ctx)
	if err != nil {
		return phase{}, err
	}
	d1, r1, e1, err := cpu()
	if err != nil {
		return phase{}, err
	}
	return phase{EmulatorStats: s, daemonCPU: d1 - d0, refCPU: r1 - r0, emuCPU: e1 - e0}, nil
}

// goRun is a Go generator run that a ratio target compares with others:
// tool is its name in the notes, conc its concurrent callers, call one
// call. alternate fills in the rest.
type goRun struct {
	tool string
	conc int
	call func(ctx context.Context, i int64) error
	// allocs makes alternate read the daemon's heap allocation counters
	// around the run's turns, into objects and bytes.
	allocs bool

	r              loadResult
	ph             phase
	objects, bytes float64
}

// alternate runs the runs that a step compares in turns of half
// -duration, in order and then in reverse (A B C C B A), so that a change
// in a shared host's load during the step meets them all alike instead of
// one of them alone (a steady drift cancels). Each run's results add up
// over its two turns.
func (b *bench) alternate(ctx context.Context, runs ...*goRun) error {
	back := slices.Clone(runs)
	slices.Reverse(back)
	for _, g := range slices.Concat(runs, back) {
		var before map[string]float64
		if g.allocs {
			var err error
			if before, err = b.d.Metrics(ctx, allocMetrics...); err != nil {
				return err
			}
		}
		var r loadResult
		ph, err := b.measure(ctx, func() error {
			r = goLoad(ctx, g.tool, g.conc, b.cfg.duration/2, g.call)
			return nil
		})
		if err != nil {
			return fmt.Errorf("%s: %w", g.tool, err)
		}
		r.emuCPU = ph.emuCPU
		g.r, g.ph = g.r.add(r), g.ph.add(ph)
		if g.allocs {
			after, err := b.d.Metrics(ctx, allocMetrics...)
			if err != nil {
				return err
			}
			objects, bytes, err := allocDelta(before, after)
			if err != nil {
				return err
			}
			g.objects, g.bytes = g.objects+objects, g.bytes+bytes
		}
	}
	return nil
}

// accumulate adds a load run's counters to the steady-state totals.
func (b *bench) accumulate(s phase) {
	b.steady = b.steady.Plus(s.EmulatorStats)
}

// addChallengeRow judges the digest challenges the load runs met, once
// some ran.
func (b *bench) addChallengeRow() {
	if b.steady.Requests == 0 {
		return
	}
	per := 1000 * float64(b.steady.Challenges) / float64(b.steady.Requests)
	b.add(row{step: stepRoundTrips, what: "digest challenges per 1000 Atlas calls, steady state (all load runs)", limit: "≤ 1",
		value: fmt.Sprintf("%.3f (%d in %d)", per, b.steady.Challenges, b.steady.Requests), verdict: judge(per <= 1)})
}

// checkDaemonLog notes the daemons' log records at error level: a run
// with errors is suspect whatever its numbers.
func (b *bench) checkDaemonLog() error {
	for _, p := range b.daemons {
		n, err := p.ErrorRecords()
		if err != nil {
			return err
		}
		if n > 0 {
			b.note("a daemon logged %d records at ERROR level; see %s", n, p.LogPath())
		}
	}
	return nil
}

func mb(n int64) string { return fmt.Sprintf("%.1f MB", float64(n)/(1<<20)) }

// perCall is CPU time per call, in µs.
func perCall(cpu time.Duration, calls int64) string {
	return fmt.Sprintf("%.0f µs", float64(cpu.Microseconds())/float64(max(calls, 1)))
}
