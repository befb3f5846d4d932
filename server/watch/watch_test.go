package watch_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/encryptiond/encryptiond/server/watch"
	"github.com/encryptiond/encryptiond/server/watch/watchtest"
)

// TestMain fails the package's tests if any goroutine outlives them: every
// loop must end with its last watcher.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// source is a value that tests change, and a poll function that reads it
// and counts the polls of each key.
type source struct {
	mu    sync.Mutex
	value map[string]string
	err   map[string]error
	polls map[string]int
	// gate, when set, holds every poll until the test sends on it (or the
	// poll's context ends).
	gate chan struct{}
	// started receives the key of every poll as it starts, when set.
	started chan string
}

func newSource() *source {
	return &source{value: map[string]string{}, err: map[string]error{}, polls: map[string]int{}}
}

func (s *source) set(key, v string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.value[key] = v
}

func (s *source) fail(key string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.err[key] = err
}

func (s *source) count(key string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.polls[key]
}

func (s *source) poll(ctx context.Context, key string) (string, error) {
	s.mu.Lock()
	s.polls[key]++
	gate, started := s.gate, s.started
	s.mu.Unlock()
	if started != nil {
		started <- key
	}
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.value[key], s.err[key]
}

func equal(a, b string) bool { return a == b }

// ctx bounds a test's waits so that a bug fails the test instead of
// hanging it; no assertion depends on how long anything takes.
func ctx(t *testing.T) context.Context {
	t.Helper()
	c, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func next(t *testing.T, w *watch.Watcher[string, string]) string {
	t.Helper()
	v, err := w.Next(ctx(t))
	if err != nil {
		t.Fatalf("Next() = %v, want a value", err)
	}
	return v
}

// settle waits until the key's loop waits for its next poll.
func settle(t *testing.T, clock *watchtest.Clock) {
	t.Helper()
	if err := clock.WaitForTimers(ctx(t), 1); err != nil {
		t.Fatalf("the loop never waited for its next poll: %v", err)
	}
}

func TestManyWatchersShareOnePollPerInterval(t *testing.T) {
	t.Parallel()
	clock := watchtest.NewClock(time.Unix(0, 0))
	src := newSource()
	src.set("k", "INITIATING")
	r := watch.New(src.poll, equal, watch.WithClock(clock), watch.WithSchedule(watch.Every(time.Second)))

	var ws []*watch.Watcher[string, string]
	for range 50 {
		w := r.Watch("k")
		defer w.Stop()
		ws = append(ws, w)
	}
	for _, w := range ws {
		if got := next(t, w); got != "INITIATING" {
			t.Fatalf("first Next() = %q, want INITIATING", got)
		}
	}
	settle(t, clock)
	if got := src.count("k"); got != 1 {
		t.Fatalf("50 watchers joined: %d polls, want 1", got)
	}
	for i := 2; i <= 4; i++ {
		clock.Advance(time.Second)
		settle(t, clock)
		if got := src.count("k"); got != i {
			t.Errorf("after %d intervals: %d polls, want %d", i-1, got, i)
		}
	}
	src.set("k", "ACTIVE")
	clock.Advance(time.Second)
	for _, w := range ws {
		if got := next(t, w); got != "ACTIVE" {
			t.Errorf("Next() after the change = %q, want ACTIVE", got)
		}
	}
	if got := src.count("k"); got != 5 {
		t.Errorf("%d polls, want 5", got)
	}
}

func TestSlowWatcherGetsTheLatestValue(t *testing.T) {
	t.Parallel()
	clock := watchtest.NewClock(time.Unix(0, 0))
	src := newSource()
	src.set("k", "a")
	r := watch.New(src.poll, equal, watch.WithClock(clock), watch.WithSchedule(watch.Every(time.Second)))
	fast, slow := r.Watch("k"), r.Watch("k")
	defer fast.Stop()
	defer slow.Stop()

	var fastSaw []string
	fastSaw = append(fastSaw, next(t, fast))
	for _, v := range []string{"b", "c", "d"} {
		settle(t, clock)
		src.set("k", v)
		clock.Advance(time.Second)
		fastSaw = append(fastSaw, next(t, fast))
	}
	if diff := cmp.Diff([]string{"a", "b", "c", "d"}, fastSaw); diff != "" {
		t.Errorf("a watcher that keeps up sees every value (-want +got):\n%s", diff)
	}
	// The slow watcher never asked in between: it gets the latest value
	// only, and the loop never waited for it.
	if got := next(t, slow); got != "d" {
		t.Errorf("slow watcher's first Next() = %q, want the latest value d", got)
	}
}

func TestLastStopEndsTheLoop(t *testing.T) {
	t.Parallel()
	clock := watchtest.NewClock(time.Unix(0, 0))
	src := newSource()
	r := watch.New(src.poll, equal, watch.WithClock(clock))
	a, b := r.Watch("k"), r.Watch("k")
	next(t, a)
	settle(t, clock)
	a.Stop()
	a.Stop() // twice is fine
	if r.Watched() != 1 {
		t.Fatalf("Watched() = %d after one of two watchers stopped, want 1", r.Watched())
	}
	b.Stop()
	if r.Watched() != 0 || clock.Timers() != 0 {
		t.Fatalf("after the last Stop: Watched() = %d, pending timers %d; want 0 and 0", r.Watched(), clock.Timers())
	}
	polls := src.count("k")
	clock.Advance(time.Hour)
	if got := src.count("k"); got != polls {
		t.Errorf("%d polls after the last watcher left, want none", got-polls)
	}

	// A new watcher starts a new loop, which polls at once.
	c := r.Watch("k")
	defer c.Stop()
	next(t, c)
	if got := src.count("k"); got != polls+1 {
		t.Errorf("a new watcher after the loop ended: %d polls, want %d", got, polls+1)
	}
}

func TestLastStopCancelsThePollInFlight(t *testing.T) {
	t.Parallel()
	src := newSource()
	src.gate = make(chan struct{}) // never opened: polls wait for their context
	src.started = make(chan string, 1)
	r := watch.New(src.poll, equal)
	w := r.Watch("k")
	<-src.started
	w.Stop() // returns only once the poll has given up and the loop ended
	if r.Watched() != 0 {
		t.Errorf("Watched() = %d after Stop, want 0", r.Watched())
	}
}

func TestKeysArePolledApart(t *testing.T) {
	t.Parallel()
	clock := watchtest.NewClock(time.Unix(0, 0))
	src := newSource()
	src.set("a", "1")
	src.set("b", "2")
	r := watch.New(src.poll, equal, watch.WithClock(clock))
	wa, wb := r.Watch("a"), r.Watch("b")
	defer wa.Stop()
	defer wb.Stop()
	if got := next(t, wa) + next(t, wb); got != "12" {
		t.Errorf("values = %q, want 1 and 2", got)
	}
	if r.Watched() != 2 || src.count("a") != 1 || src.count("b") != 1 {
		t.Errorf("Watched() = %d, polls a %d, b %d; want 2, 1, 1", r.Watched(), src.count("a"), src.count("b"))
	}
}

func TestPushReachesWatchersAtOnce(t *testing.T) {
	t.Parallel()
	clock := watchtest.NewClock(time.Unix(0, 0))
	src := newSource()
	src.set("k", "ACTIVE")
	r := watch.New(src.poll, equal, watch.WithClock(clock), watch.WithSchedule(watch.Backoff(time.Second, 30*time.Second)))
	w := r.Watch("k")
	defer w.Stop()
	next(t, w)
	for range 3 { // back off to 8 s
		settle(t, clock)
		d, _ := clock.NextTimer()
		clock.Advance(d)
	}
	settle(t, clock)
	if d, _ := clock.NextTimer(); d != 8*time.Second {
		t.Fatalf("after three polls without change the wait is %v, want 8s", d)
	}
	polls := src.count("k")

	r.Push("k", "DELETING")
	if got := next(t, w); got != "DELETING" {
		t.Errorf("Next() after Push = %q, want DELETING", got)
	}
	if got := src.count("k"); got != polls {
		t.Errorf("Push polled %d times, want 0", got-polls)
	}
	// The push was a change: the schedule starts again from its shortest wait.
	if err := clock.WaitForTimerIn(ctx(t), time.Second); err != nil {
		t.Fatalf("the wait after a push never went back to 1s: %v", err)
	}

	r.Push("nobody-watches", "x") // no loop: nothing happens
	if r.Watched() != 1 {
		t.Errorf("Push of an unwatched key started a loop: Watched() = %d", r.Watched())
	}
}

func TestPollInFlightDuringPushIsDiscarded(t *testing.T) {
	t.Parallel()
	clock := watchtest.NewClock(time.Unix(0, 0))
	src := newSource()
	src.set("k", "ACTIVE")
	r := watch.New(src.poll, equal, watch.WithClock(clock), watch.WithSchedule(watch.Every(time.Second)))
	w := r.Watch("k")
	defer w.Stop()
	next(t, w)
	settle(t, clock)

	src.mu.Lock()
	src.gate, src.started = make(chan struct{}), make(chan string, 1)
	src.mu.Unlock()
	clock.Advance(time.Second)
	<-src.started // a poll is in flight; it will read ACTIVE
	r.Push("k", "DELETING")
	close(src.gate)
	if got := next(t, w); got != "DELETING" {
		t.Fatalf("Next() = %q, want the pushed DELETING", got)
	}
	settle(t, clock)
	// The poll that started before the push answered ACTIVE: had it been
	// kept, the watcher would see ACTIVE again.
	c, cancel := context.WithCancel(t.Context())
	cancel()
	if v, err := w.Next(c); err == nil {
		t.Errorf("Next() = %q, want no further value: the stale poll must be discarded", v)
	}
}

func TestFailures(t *testing.T) {
	t.Parallel()
	errDown := errors.New("atlas is down")

	t.Run("retried until MaxFailures in a row", func(t *testing.T) {
		t.Parallel()
		clock := watchtest.NewClock(time.Unix(0, 0))
		src := newSource()
		src.set("k", "v1")
		r := watch.New(src.poll, equal, watch.WithClock(clock), watch.WithSchedule(watch.Every(time.Second)), watch.WithMaxFailures(3))
		w := r.Watch("k")
		defer w.Stop()
		next(t, w)
		src.set("k", "v2")
		src.fail("k", errDown)
		for range 2 {
			settle(t, clock)
			clock.Advance(time.Second)
		}
		settle(t, clock) // two failures: still polling
		src.fail("k", nil)
		clock.Advance(time.Second)
		if got := next(t, w); got != "v2" {
			t.Fatalf("after a success Next() = %q, want v2", got)
		}
		src.fail("k", errDown)
		for range 3 {
			settle(t, clock)
			clock.Advance(time.Second)
		}
		if _, err := w.Next(ctx(t)); !errors.Is(err, errDown) {
			t.Fatalf("Next() after 3 failures in a row = %v, want %v", err, errDown)
		}
		if r.Watched() != 0 {
			t.Errorf("Watched() = %d after polling gave up, want 0", r.Watched())
		}
	})

	t.Run("a permanent error ends at once, after the values not yet seen", func(t *testing.T) {
		t.Parallel()
		clock := watchtest.NewClock(time.Unix(0, 0))
		src := newSource()
		src.set("k", "v1")
		r := watch.New(src.poll, equal, watch.WithClock(clock), watch.WithSchedule(watch.Every(time.Second)))
		w := r.Watch("k")
		defer w.Stop()
		settle(t, clock)
		src.fail("k", watch.Permanent(errDown))
		clock.Advance(time.Second)
		if got := next(t, w); got != "v1" {
			t.Errorf("Next() = %q, want v1 before the error", got)
		}
		_, err := w.Next(ctx(t))
		if err != errDown { //nolint:errorlint // Next returns the error unwrapped.
			t.Errorf("Next() = %v, want %v itself, unwrapped", err, errDown)
		}
		// A new watcher starts afresh.
		src.fail("k", nil)
		again := r.Watch("k")
		defer again.Stop()
		if got := next(t, again); got != "v1" {
			t.Errorf("a new watcher after the error: Next() = %q, want v1", got)
		}
	})
}

func TestNextEndsWithItsContext(t *testing.T) {
	t.Parallel()
	clock := watchtest.NewClock(time.Unix(0, 0))
	src := newSource()
	r := watch.New(src.poll, equal, watch.WithClock(clock))
	w := r.Watch("k")
	defer w.Stop()
	next(t, w)
	c, cancel := context.WithCancelCause(t.Context())
	stopping := errors.New("stopping")
	cancel(stopping)
	if _, err := w.Next(c); !errors.Is(err, context.Canceled) || context.Cause(c) != stopping { //nolint:errorlint // the cause itself
		t.Errorf("Next(cancelled) = %v (cause %v), want context.Canceled with the cause kept", err, context.Cause(c))
	}
}

func TestMaxAgeJoinPolls(t *testing.T) {
	t.Parallel()
	clock := watchtest.NewClock(time.Unix(0, 0))
	src := newSource()
	src.set("k", "old")
	r := watch.New(src.poll, equal, watch.WithClock(clock), watch.WithSchedule(watch.Every(time.Minute)), watch.WithMaxAge(time.Second))
	first := r.Watch("k")
	defer first.Stop()
	next(t, first)
	settle(t, clock)

	// Joining while the value is fresh costs nothing.
	fresh := r.Watch("k")
	defer fresh.Stop()
	next(t, fresh)
	if got := src.count("k"); got != 1 {
		t.Errorf("a join within MaxAge: %d polls, want 1", got)
	}

	clock.Advance(2 * time.Second) // the value is now older than MaxAge
	src.set("k", "new")
	late := r.Watch("k")
	defer late.Stop()
	if got := next(t, late); got != "old" {
		t.Errorf("late watcher's first Next() = %q, want the value as last read", got)
	}
	if got := next(t, late); got != "new" {
		t.Errorf("late watcher's second Next() = %q, want the fresh poll's value", got)
	}
	if got := src.count("k"); got != 2 {
		t.Errorf("a join past MaxAge: %d polls, want 2", got)
	}
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	s := watch.Backoff(time.Second, 30*time.Second)()
	var got []time.Duration
	for _, r := range []watch.Result{
		{Changed: true}, {}, {}, {}, {}, {}, {}, // first value, then nothing new
		{Changed: true}, {Err: errors.New("x")}, {Changed: true, Err: errors.New("x")},
	} {
		got = append(got, s.Next(r))
	}
	want := []time.Duration{1, 2, 4, 8, 16, 30, 30, 1, 2, 4}
	for i := range want {
		want[i] *= time.Second
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Backoff(1s, 30s) waits (-want +got):\n%s", diff)
	}
	if d := watch.Every(5 * time.Second)().Next(watch.Result{Err: errors.New("x")}); d != 5*time.Second {
		t.Errorf("Every(5s).Next() = %v, want 5s", d)
	}
}

func TestRefreshPollsAtOnce(t *testing.T) {
	t.Parallel()
	clock := watchtest.NewClock(time.Unix(0, 0))
	src := newSource()
	src.set("k", "old")
	r := watch.New(src.poll, equal, watch.WithClock(clock), watch.WithSchedule(watch.Every(time.Hour)))
	r.Refresh("k") // nobody watches: nothing happens
	w := r.Watch("k")
	defer w.Stop()
	next(t, w)
	settle(t, clock)
	src.set("k", "new")
	r.Refresh("k")
	if got := next(t, w); got != "new" {
		t.Errorf("Next() after Refresh = %q, want the new value, without the clock moving", got)
	}
	if got := src.count("k"); got != 2 {
		t.Errorf("%d polls, want 2", got)
	}
}
