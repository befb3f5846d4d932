package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/encryptiond/encryptiond/cmd/internal/procs"
	"github.com/encryptiond/encryptiond/cmd/internal/report"
	encryptionv1 "github.com/encryptiond/encryptiond/gen/atlas/encryption/v1"
)

// The fleet steps measure WatchEncryptionAtRest and ListEncryptionAtRest
// at a fleet's scale. They run against an emulator and a daemon of their
// own (startFleet): the emulator lists exactly fleetProjects projects
// (-auto-create-groups=false, each project added over its control
// endpoint), so that a list covers those and none that an earlier step
// made exist; the daemon polls watched projects every fleetInterval, the
// shortest -watch-interval, and lists with -atlas-concurrency
// listConcurrency. The watches are opened by the driver with the
// generated client, spread over watchConns connections (the daemon serves
// at most 1000 streams on one), and each is read by a goroutine of its
// own.
const (
	fleetProjects   = 1000             // the projects the fleet emulator lists
	watchers        = 10000            // watch: concurrent watches…
	watchedProjects = 100              // …spread evenly over this many projects
	watchConns      = 20               // client connections the watches share
	fleetInterval   = 10 * time.Second // the daemon's -watch-interval
	watchIntervals  = 3                // intervals the Atlas GETs are counted over
	fanoutWatchers  = 1000             // fanout: watches of the one project updated…
	fanoutUpdates   = 20               // …this many times
	listPageSize    = 500              // list: the page size asked for
	listConcurrency = 8                // the daemon's -atlas-concurrency
	listLatency     = 50 * time.Millisecond
	// watchOpenTimeout bounds the wait for every watch's first message,
	// and fanoutTimeout the wait for an update's message to reach every
	// watcher.
	watchOpenTimeout = 2 * time.Minute
	fanoutTimeout    = 10 * time.Second
)

// fleetGroup is the fleet emulator's project i, of fleetProjects.
func fleetGroup(i int) string { return group(pfxFleet, int64(i)) }

// startFleet starts the fleet steps' emulator and daemon, once: see the
// constants above. run stops them.
func (b *bench) startFleet(ctx context.Context) error {
	if b.fleetD != nil {
		return nil
	}
	emu, err := b.harness.StartEmulator(ctx, "-auto-create-groups=false")
	if err != nil {
		return err
	}
	b.fleetEmu = emu
	var g errgroup.Group
	g.SetLimit(8)
	for i := range fleetProjects {
		g.Go(func() error { return emu.AddProject(ctx, fleetGroup(i), fmt.Sprintf("fleet-%04d", i)) })
	}
	if err := g.Wait(); err != nil {
		return fmt.Errorf("adding the fleet's projects: %w", err)
	}
	d, err := b.startDaemon(ctx, b.harness, emu, "-watch-interval", fleetInterval.String(), "-atlas-concurrency", strconv.Itoa(listConcurrency))
	if err != nil {
		return err
	}
	b.fleetD = d
	fmt.Fprintf(b.log, "fleet: emulator %s (pid %d) listing %d projects; encryptiond grpc %s (pid %d) with -watch-interval %v -atlas-concurrency %d\n",
		emu.URL, emu.Proc.PID(), fleetProjects, d.GRPCAddr, d.Proc.PID(), fleetInterval, listConcurrency)
	// A warm call: the digest challenge is behind it.
	return getGRPC(ctx, d.Client, fleetGroup(fleetProjects-1))
}

// stopFleet stops what startFleet started.
func (b *bench) stopFleet() {
	if b.fleetD != nil {
		b.fleetD.Stop()
	}
	if b.fleetEmu != nil {
		b.fleetEmu.Proc.Stop()
	}
}

// dialFleet makes n client connections to the fleet daemon.
func (b *bench) dialFleet(n int) ([]encryptionv1.EncryptionServiceClient, func(), error) {
	var conns []*grpc.ClientConn
	closeAll := func() {
		for _, c := range conns {
			_ = c.Close()
		}
	}
	clients := make([]encryptionv1.EncryptionServiceClient, n)
	for i := range clients {
		c, err := procs.Dial(b.fleetD.GRPCAddr)
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		conns = append(conns, c)
		clients[i] = encryptionv1.NewEncryptionServiceClient(c)
	}
	return clients, closeAll, nil
}

// watchSet is a set of WatchEncryptionAtRest streams, each read by a
// goroutine of its own until the set is closed.
type watchSet struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	firsts atomic.Int64
	first  chan struct{} // closed once every stream has had its first message

	mu     sync.Mutex
	errs   int   // streams that ended before the set was closed
	err    error // the first of their errors
	failed chan struct{}
}

// openWatches opens n watches, watch i of project groupOf(i) over
// clients[i%len(clients)], and calls onMessage(i, message, time received)
// for each message from watch i's goroutine. It returns once every watch
// has had its first message; it fails when a watch ends before, or after
// watchOpenTimeout. The caller closes the set.
func openWatches(ctx context.Context, clients []encryptionv1.EncryptionServiceClient, n int, groupOf func(int) string, onMessage func(int, *encryptionv1.EncryptionAtRest, time.Time)) (*watchSet, error) {
	wctx, cancel := context.WithCancel(ctx)
	ws := &watchSet{cancel: cancel, first: make(chan struct{}), failed: make(chan struct{})}
	for i := range n {
		ws.wg.Go(func() {
			stream, err := clients[i%len(clients)].WatchEncryptionAtRest(wctx, &encryptionv1.WatchEncryptionAtRestRequest{GroupId: groupOf(i)})
			if err != nil {
				ws.fail(wctx, err)
				return
			}
			for first := true; ; first = false {
				msg, err := stream.Recv()
				at := time.Now()
				if err != nil {
					ws.fail(wctx, err)
					return
				}
				if onMessage != nil {
					onMessage(i, msg, at)
				}
				if first && ws.firsts.Add(1) == int64(n) {
					close(ws.first)
				}
			}
		})
	}
	t := time.NewTimer(watchOpenTimeout)
	defer t.Stop()
	var err error
	select {
	case <-ws.first:
		return ws, nil
	case <-ws.failed:
		_, err = ws.errors()
	case <-t.C:
		err = fmt.Errorf("%d of %d watches had their first message after %v", ws.firsts.Load(), n, watchOpenTimeout)
	case <-ctx.Done():
		err = ctx.Err()
	}
	ws.close()
	return nil, err
}

// fail records a stream's end, unless the set was closed.
func (ws *watchSet) fail(ctx context.Context, err error) {
	if ctx.Err() != nil {
		return
	}
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if ws.errs++; ws.errs == 1 {
		ws.err = err
		close(ws.failed)
	}
}

// errors returns how many streams ended before the set was closed, and the
// first one's error.
func (ws *watchSet) errors() (int, error) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	return ws.errs, ws.err
}

// close ends every stream and waits for their goroutines. It may be called
// more than once.
func (ws *watchSet) close() {
	ws.cancel()
	ws.wg.Wait()
}

// watchMemoryMetrics are the daemon's Go runtime series read at the
// watchers' peak, to say where the memory goes.
var watchMemoryMetrics = []string{"go_goroutines", "go_memstats_heap_inuse_bytes", "go_memstats_stack_inuse_bytes", "go_memstats_sys_bytes"}

// watch10000 opens watchers watches over watchedProjects projects, counts
// the Atlas GETs their first messages cost, then the GETs of
// watchIntervals intervals once every watch is up, and samples the
// daemon's RSS from before the first watch to the end.
func (b *bench) watch10000(ctx context.Context) error {
	if err := b.startFleet(ctx); err != nil {
		return err
	}
	emu, d := b.fleetEmu, b.fleetD
	clients, closeConns, err := b.dialFleet(watchConns)
	if err != nil {
		return err
	}
	defer closeConns()
	idle, err := procs.ReadMemory(d.Proc.PID())
	if err != nil {
		return err
	}
	if err := emu.ResetStats(ctx); err != nil {
		return err
	}
	peakRSS := startPeakRSS(ctx, d.Proc.PID())
	defer peakRSS()

	start := time.Now()
	ws, err := openWatches(ctx, clients, watchers, func(i int) string { return fleetGroup(i % watchedProjects) }, nil)
	if err != nil {
		return fmt.Errorf("opening %d watches: %w", watchers, err)
	}
	defer ws.close()
	opened := time.Since(start)
	initial, err := emu.Calls(ctx)
	if err != nil {
		return err
	}

	if err := emu.ResetStats(ctx); err != nil {
		return err
	}
	cpu0, err := cpuTime(d.Proc.PID())
	if err != nil {
		return err
	}
	t0 := time.Now()
	select {
	case <-time.After(watchIntervals * fleetInterval):
	case <-ctx.Done():
		return ctx.Err()
	}
	steady, err := emu.Calls(ctx)
	if err != nil {
		return err
	}
	window := time.Since(t0)
	cpu1, err := cpuTime(d.Proc.PID())
	if err != nil {
		return err
	}
	m, err := d.Metrics(ctx, watchMemoryMetrics...)
	if err != nil {
		return err
	}
	rss := peakRSS()
	ws.close()
	failed, firstErr := ws.errors()

	gets := steady[callGetEAR]
	per := perInterval(gets, window, fleetInterval)
	b.note("%d watches of %d projects (%d each) over %d connections, opened and answered in %s; their first messages cost %s",
		watchers, watchedProjects, watchers/watchedProjects, watchConns, opened.Round(time.Millisecond), describeCalls(initial))
	b.note("with every watch up, %s in %.1f s (%d intervals of %s); daemon CPU %s over the window; watches that ended early: %d%s",
		describeCalls(steady), window.Seconds(), watchIntervals, shortDuration(fleetInterval), cpu1-cpu0, failed, errSuffix(firstErr))
	b.note("daemon at %d watches: peak RSS %s (idle before %s); %.0f goroutines, Go heap in use %s, goroutine stacks %s, memory from the OS %s",
		watchers, mb(rss), mb(idle.RSS), m["go_goroutines"], mb(int64(m["go_memstats_heap_inuse_bytes"])), mb(int64(m["go_memstats_stack_inuse_bytes"])), mb(int64(m["go_memstats_sys_bytes"])))

	limit := float64(watchedProjects) * 1.01
	others := otherCalls(steady, callGetEAR)
	b.add(row{step: stepWatch, what: fmt.Sprintf("Atlas GETs of encryptionAtRest per %s interval, %d concurrent watchers over %d projects", shortDuration(fleetInterval), watchers, watchedProjects),
		limit: fmt.Sprintf("≤ %d + 1%% (%.0f)", watchedProjects, limit),
		value: fmt.Sprintf("%.1f (%d in %.1f s)", per, gets, window.Seconds()), verdict: judge(per <= limit && failed == 0 && others == 0)})
	b.add(row{step: stepWatch, what: fmt.Sprintf("peak RSS of the daemon at %d watchers", watchers), limit: "≤ 150 MB",
		value: fmt.Sprintf("%s (%.0f goroutines)", mb(rss), m["go_goroutines"]), verdict: judge(rss <= 150<<20 && failed == 0)})
	return nil
}

func errSuffix(err error) string {
	if err == nil {
		return ""
	}
	return " (the first: " + err.Error() + ")"
}

// shortDuration is a setting's duration as the table writes it: whole
// seconds ("10 s"), or milliseconds under a second ("50 ms").
func shortDuration(d time.Duration) string {
	if d < time.Second {
		return fmt.Sprintf("%d ms", d.Milliseconds())
	}
	return fmt.Sprintf("%.0f s", d.Seconds())
}

// The emulator's names of the calls the fleet steps count (see
// atlastest.Emulator.Calls).
const (
	callGetEAR    = "GET encryptionAtRest"
	callGetGroups = "GET groups"
)

// perInterval is n calls counted over window, per interval.
func perInterval(n int64, window, interval time.Duration) float64 {
	if window <= 0 {
		return 0
	}
	return float64(n) * float64(interval) / float64(window)
}

// otherCalls counts the calls that are none of the kinds named.
func otherCalls(calls map[string]int64, kinds ...string) int64 {
	var n int64
	for k, c := range calls {
		if !slices.Contains(kinds, k) {
			n += c
		}
	}
	return n
}

// describeCalls lists the emulator's call counts, the most first: "300
// GET encryptionAtRest, 2 GET groups"; "no Atlas calls" when empty.
func describeCalls(calls map[string]int64) string {
	keys := slices.Collect(maps.Keys(calls))
	slices.SortFunc(keys, func(a, b string) int { return cmp.Or(cmp.Compare(calls[b], calls[a]), strings.Compare(a, b)) })
	var parts []string
	for _, k := range keys {
		if calls[k] != 0 {
			parts = append(parts, fmt.Sprintf("%d %s", calls[k], k))
		}
	}
	if len(parts) == 0 {
		return "no Atlas calls"
	}
	return strings.Join(parts, ", ")
}

// gcpKeyVersion is the Google Cloud KMS key version resource id the fanout
// step sets, version n.
func gcpKeyVersion(n int) string {
	return fmt.Sprintf("projects/bench/locations/global/keyRings/fleet/cryptoKeys/k/cryptoKeyVersions/%d", n)
}

// keyVersionOf returns n from a resource id gcpKeyVersion(n), and false
// for any other.
func keyVersionOf(id string) (int, bool) {
	prefix := strings.TrimSuffix(gcpKeyVersion(0), "0")
	s, ok := strings.CutPrefix(id, prefix)
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	return n, err == nil && n >= 0
}

// fanoutLatencies returns, for each update r that returned at returned[r],
// how long after it each watcher received its message (received[r][i], the
// zero time when it did not): a message received before the update's
// answer counts as 0 and in early, one never received in missing.
func fanoutLatencies(returned []time.Time, received [][]time.Time) (lat []time.Duration, early, missing int) {
	for r, at := range returned {
		for _, got := range received[r] {
			switch d := got.Sub(at); {
			case got.IsZero():
				missing++
			case d < 0:
				early++
				lat = append(lat, 0)
			default:
				lat = append(lat, d)
			}
		}
	}
	return lat, early, missing
}

// fanout opens fanoutWatchers watches of one project with Google Cloud KMS
// enabled, then changes its key version through the service fanoutUpdates
// times (gRPC UpdateEncryptionAtRest, a partial update: a GET and a PATCH
// to Atlas), each once the last has reached every watcher, and measures
// how long after the update's answer each watcher receives the changed
// configuration.
func (b *bench) fanout(ctx context.Context) error {
	if err := b.startFleet(ctx); err != nil {
		return err
	}
	d := b.fleetD
	g := fleetGroup(watchedProjects) // not one of the watch step's projects
	update := func(version int, enable bool) error {
		gcp := &encryptionv1.GoogleCloudKms{KeyVersionResourceId: proto.String(gcpKeyVersion(version))}
		if enable {
			gcp.Enabled, gcp.RoleId = proto.Bool(true), proto.String("5f3b1c2d3e4f5a6b7c8d9e0f")
		}
		_, err := d.Client.UpdateEncryptionAtRest(ctx, &encryptionv1.UpdateEncryptionAtRestRequest{
			GroupId: g, Config: &encryptionv1.ProviderConfig{Provider: &encryptionv1.ProviderConfig_GoogleCloudKms{GoogleCloudKms: gcp}},
		})
		return err
	}
	if err := update(0, true); err != nil {
		return fmt.Errorf("enabling Google Cloud KMS: %w", err)
	}
	clients, closeConns, err := b.dialFleet(watchConns)
	if err != nil {
		return err
	}
	defer closeConns()

	received := make([][]time.Time, fanoutUpdates)
	arrived := make([]atomic.Int64, fanoutUpdates)
	done := make([]chan struct{}, fanoutUpdates)
	for r := range received {
		received[r], done[r] = make([]time.Time, fanoutWatchers), make(chan struct{})
	}
	ws, err := openWatches(ctx, clients, fanoutWatchers, func(int) string { return g }, func(i int, msg *encryptionv1.EncryptionAtRest, at time.Time) {
		v, ok := keyVersionOf(msg.GetGoogleCloudKms().GetKeyVersionResourceId())
		if !ok || v < 1 || v > fanoutUpdates {
			return
		}
		received[v-1][i] = at
		if arrived[v-1].Add(1) == fanoutWatchers {
			close(done[v-1])
		}
	})
	if err != nil {
		return fmt.Errorf("opening %d watches: %w", fanoutWatchers, err)
	}
	defer ws.close()

	sent, returned := make([]time.Time, fanoutUpdates), make([]time.Time, fanoutUpdates)
	var took []time.Duration
	for r := range fanoutUpdates {
		sent[r] = time.Now()
		err := update(r+1, false)
		returned[r] = time.Now()
		if err != nil {
			return fmt.Errorf("update %d: %w", r+1, err)
		}
		took = append(took, returned[r].Sub(sent[r]))
		select {
		case <-done[r]:
		case <-time.After(fanoutTimeout):
		case <-ctx.Done():
			return ctx.Err()
		}
		time.Sleep(100 * time.Millisecond) // updates apart, as a person's
	}
	ws.close()
	failed, firstErr := ws.errors()
	lat, early, missing := fanoutLatencies(returned, received)
	p50, p99, maxLat := report.Percentile(lat, 50), report.Percentile(lat, 99), report.Percentile(lat, 100)
	sinceSent, _, _ := fanoutLatencies(sent, received)
	b.note("%d updates of one project's Google Cloud KMS key version through gRPC (each a GET and a PATCH at Atlas), %d watchers over %d connections: the update's own latency p50 %s, max %s; each watcher's message after the update's answer p50 %s, p99 %s, max %s, %d of the %d before the answer (counted as 0), %d never within %v; after the update was sent p50 %s, p99 %s; watches that ended early: %d%s",
		fanoutUpdates, fanoutWatchers, watchConns, ms(report.Percentile(took, 50)), ms(report.Percentile(took, 100)), ms(p50), ms(p99), ms(maxLat),
		early, fanoutUpdates*fanoutWatchers, missing, fanoutTimeout, ms(report.Percentile(sinceSent, 50)), ms(report.Percentile(sinceSent, 99)), failed, errSuffix(firstErr))
	b.add(row{step: stepFanout, what: fmt.Sprintf("an update through the service reaching all %d watchers of its project: p99 after the update returns", fanoutWatchers),
		limit: "≤ 100 ms", value: fmt.Sprintf("%s (p50 %s, max %s; %d updates, %.0f%% of the messages before the answer)",
			ms(p99), ms(p50), ms(maxLat), fanoutUpdates, 100*float64(early)/float64(fanoutUpdates*fanoutWatchers)),
		verdict: judge(p99 <= 100*time.Millisecond && missing == 0 && failed == 0)})
	return nil
}

// listBudget is the wall time a list of n projects may take when Atlas
// answers each GET in latency and conc run at once: 1.2 × ⌈n/conc⌉ ×
// latency.
func listBudget(n, conc int, latency time.Duration) time.Duration {
	rounds := (n + conc - 1) / conc
	return time.Duration(rounds) * latency * 6 / 5
}

// list1000 pages through ListEncryptionAtRest over the fleet's projects
// (gRPC, pages of listPageSize) while every Atlas exchange takes
// listLatency, and counts the Atlas calls it made.
func (b *bench) list1000(ctx context.Context) error {
	if err := b.startFleet(ctx); err != nil {
		return err
	}
	emu, d := b.fleetEmu, b.fleetD
	if err := emu.SetLatency(ctx, listLatency); err != nil {
		return err
	}
	defer emu.SetLatency(context.WithoutCancel(ctx), 0)
	if err := emu.ResetStats(ctx); err != nil {
		return err
	}
	lctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var projects, failed, pages int
	var firstErr error
	start := time.Now()
	for token := ""; ; {
		res, err := d.Client.ListEncryptionAtRest(lctx, &encryptionv1.ListEncryptionAtRestRequest{PageSize: listPageSize, PageToken: token})
		if err != nil {
			return fmt.Errorf("ListEncryptionAtRest page %d: %w", pages+1, err)
		}
		pages++
		for _, p := range res.GetProjects() {
			projects++
			if p.GetError() != nil {
				failed++
				firstErr = cmp.Or(firstErr, errors.New(p.GetError().GetMessage()))
			}
		}
		if token = res.GetNextPageToken(); token == "" {
			break
		}
	}
	wall := time.Since(start)
	calls, err := emu.Calls(ctx)
	if err != nil {
		return err
	}
	budget := listBudget(fleetProjects, listConcurrency, listLatency)
	// The pages of Atlas's project list the list spans (its pages are
	// paging.MaxSize = listPageSize projects): one read of each is enough.
	atlasPages := int64((fleetProjects + listPageSize - 1) / listPageSize)
	b.note("ListEncryptionAtRest at %s Atlas latency, -atlas-concurrency %d: %d projects (%d with an error%s) in %d pages of %d, %.3f s; Atlas calls: %s",
		shortDuration(listLatency), listConcurrency, projects, failed, errSuffix(firstErr), pages, listPageSize, wall.Seconds(), describeCalls(calls))
	b.add(row{step: stepList, what: fmt.Sprintf("ListEncryptionAtRest over %d projects, %s Atlas latency, -atlas-concurrency %d, pages of %d: wall time", fleetProjects, shortDuration(listLatency), listConcurrency, listPageSize),
		limit:   fmt.Sprintf("≤ %.2f s (1.2 × ⌈%d/%d⌉ × %s)", budget.Seconds(), fleetProjects, listConcurrency, shortDuration(listLatency)),
		value:   fmt.Sprintf("%.2f s (%d projects, %d with an error)", wall.Seconds(), projects, failed),
		verdict: judge(wall <= budget && projects == fleetProjects && failed == 0)})
	b.add(row{step: stepList, what: "Atlas GETs of encryptionAtRest for that list", limit: fmt.Sprintf("= %d", fleetProjects),
		value: fmt.Sprint(calls[callGetEAR]), verdict: judge(calls[callGetEAR] == fleetProjects)})
	b.add(row{step: stepList, what: "Atlas GETs of the project list (groups) for that list, and no other call", limit: fmt.Sprintf("= %d, its pages of %d", atlasPages, listPageSize),
		value:   fmt.Sprintf("%d (all calls: %s)", calls[callGetGroups], describeCalls(calls)),
		verdict: judge(calls[callGetGroups] == atlasPages && otherCalls(calls, callGetEAR, callGetGroups) == 0)})
	return nil
}
