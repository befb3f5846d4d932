// Package watch shares polls among watchers. For every key that someone
// watches, a Registry keeps one loop that polls the key's value and hands
// every change to all of the key's watchers; for a key nobody watches, it
// runs nothing.
//
// Start with New and Registry.Watch:
//
//	equal := func(a, b *encryptionv1.PrivateEndpoint) bool { return proto.Equal(a, b) }
//	r := watch.New(pollEndpoint, equal, watch.WithSchedule(watch.Backoff(time.Second, 30*time.Second)))
//
//	w := r.Watch(key)
//	defer w.Stop()
//	for {
//		v, err := w.Next(ctx) // the current value first, then each change
//		if err != nil {
//			return err // ctx ended, or polling gave up
//		}
//		…
//	}
//
// # What a Registry guarantees
//
//   - One poll loop per watched key. The first Watch of a key starts its
//     loop, which polls at once; the last Stop ends it, cancelling a poll in
//     flight, and returns only once it has ended. However many watchers a
//     key has, it is polled once per interval of its schedule.
//   - Next returns the latest value its watcher has not seen yet: first the
//     value as last read, then each change. The loop never waits for a
//     watcher: it stores the new value and wakes the watchers waiting in
//     Next. A watcher that falls behind gets the latest value and misses the
//     ones in between, so a slow watcher costs neither the loop nor the other
//     watchers anything.
//   - Push sets a key's value at once, without a poll, for a change the
//     program made itself. A poll that was in flight when Push was called
//     is discarded: its answer may predate the change. Refresh asks for a
//     poll at once, for a change whose result the program does not know.
//   - A poll that fails is tried again on the schedule. After
//     WithMaxFailures failures in a row, or at once for an error marked
//     Permanent, every watcher of the key gets the error from Next (after
//     any value it has not seen yet) and the key's loop ends; the next Watch
//     of the key starts afresh.
//
// # Schedules
//
// A Schedule decides how long a key's loop waits before its next poll,
// from what the last poll (or push) found. Backoff polls often while the
// value changes and less often while it does not; Every polls at a fixed
// interval. Each loop gets its own Schedule from the factory given to
// WithSchedule, so a schedule may keep state.
//
// # Clocks and tests
//
// A Registry waits on the timers of its Clock (WithClock). Tests pass a
// fake clock (package watchtest) and move time themselves: nothing in a
// test then depends on how long anything takes.
package watch

import (
	"context"
	"errors"
	"sync"
	"time"
)

// Registry keeps one poll loop per watched key; see the package
// documentation. Create one with New. It is safe for concurrent use.
type Registry[K comparable, V any] struct {
	poll  func(ctx context.Context, key K) (V, error)
	equal func(a, b V) bool
	set   settings

	mu   sync.Mutex
	keys map[K]*entry[V] // keys with a live loop
}

// entry is one key's shared state. Its fields are guarded by Registry.mu,
// except the channels, which are set once.
type entry[V any] struct {
	watchers int
	version  uint64 // how many distinct values the key has had; 0 before the first
	value    V
	read     time.Time     // when a poll or push last confirmed value
	pushes   uint64        // Push calls so far, to discard a poll that overlapped one
	err      error         // why polling gave up, once it has
	wake     chan struct{} // closed, and replaced, at each new version and when err is set

	kick   chan struct{}      // poll now (buffered, 1)
	pushed chan struct{}      // a push changed the value: reschedule (buffered, 1)
	cancel context.CancelFunc // ends the loop and a poll in flight
	done   chan struct{}      // closed when the loop has returned
}

// New returns a Registry that reads a key's value with poll and compares
// values with equal to tell a change. poll is called from the key's loop
// only, never concurrently for one key, with a context that ends when the
// key's last watcher stops; it must return soon after. Values are shared
// by every watcher of a key: neither poll's caller nor a watcher may modify
// one.
func New[K comparable, V any](poll func(ctx context.Context, key K) (V, error), equal func(a, b V) bool, opts ...Option) *Registry[K, V] {
	s := settings{schedule: Backoff(time.Second, 30*time.Second), clock: SystemClock()}
	for _, o := range opts {
		o(&s)
	}
	return &Registry[K, V]{poll: poll, equal: equal, set: s, keys: map[K]*entry[V]{}}
}

// Option configures a Registry.
type Option func(*settings)

type settings struct {
	schedule    func() Schedule
	clock       Clock
	maxFailures int
	maxAge      time.Duration
}

// WithSchedule sets the factory of the schedule each key's loop follows.
// Default: Backoff(time.Second, 30*time.Second). A nil factory keeps the
// default.
func WithSchedule(newSchedule func() Schedule) Option {
	return func(s *settings) {
		if newSchedule != nil {
			s.schedule = newSchedule
		}
	}
}

// WithClock sets the clock whose timers the loops wait on. Default:
// SystemClock(). A nil clock keeps the default.
func WithClock(c Clock) Option {
	return func(s *settings) {
		if c != nil {
			s.clock = c
		}
	}
}

// WithMaxFailures makes a key's loop give up after n failed polls in a
// row: its watchers get the last error. Default 0: a loop never gives up on
// an error that is not Permanent (its watchers' contexts bound the wait).
func WithMaxFailures(n int) Option {
	return func(s *settings) { s.maxFailures = max(n, 0) }
}

// WithMaxAge makes a watcher that joins a key whose value was last read
// more than d ago ask for a poll at once; it still gets the value as last
// read first, then the poll's if it differs. Joins thus add at most one
// poll per d to a key. Default 0: joining never polls; the new watcher gets
// the value as last read.
func WithMaxAge(d time.Duration) Option {
	return func(s *settings) { s.maxAge = max(d, 0) }
}

// Permanent marks err as an error that polling again cannot cure (the key
// does not exist, access is denied): the key's loop gives up at once, and
// its watchers get err from Next, unwrapped.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err}
}

type permanentError struct{ err error }

func (p *permanentError) Error() string { return p.err.Error() }
func (p *permanentError) Unwrap() error { return p.err }

// Watch adds a watcher of key, starting the key's loop if it is the first.
// The caller must Stop the watcher when done with it.
func (r *Registry[K, V]) Watch(key K) *Watcher[K, V] {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.keys[key]
	switch {
	case e == nil:
		e = r.startLocked(key)
	case r.set.maxAge > 0 && e.version > 0 && r.set.clock.Now().Sub(e.read) > r.set.maxAge:
		signal(e.kick)
	}
	e.watchers++
	return &Watcher[K, V]{r: r, key: key, e: e}
}

// Push sets key's value to v at once, for the key's watchers, if the key
// has any; otherwise it does nothing (nobody would see it). A value equal to
// the current one changes nothing but the time it was last confirmed.
func (r *Registry[K, V]) Push(key K, v V) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.keys[key]
	if e == nil {
		return
	}
	e.pushes++
	if r.storeLocked(e, v) {
		signal(e.pushed)
	}
}

// Refresh asks key's loop to poll at once, if the key has watchers;
// otherwise it does nothing. It is for a change the program made that it
// cannot Push, not knowing the value it led to.
func (r *Registry[K, V]) Refresh(key K) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if e := r.keys[key]; e != nil {
		signal(e.kick)
	}
}

// Watched reports how many keys have a poll loop, for tests and metrics.
func (r *Registry[K, V]) Watched() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.keys)
}

func (r *Registry[K, V]) startLocked(key K) *entry[V] {
	ctx, cancel := context.WithCancel(context.Background())
	e := &entry[V]{
		wake:   make(chan struct{}),
		kick:   make(chan struct{}, 1),
		pushed: make(chan struct{}, 1),
		cancel: cancel,
		done:   make(chan struct{}),
	}
	r.keys[key] = e
	go r.loop(ctx, key, e)
	return e
}

// storeLocked records v as e's value, read now, and reports whether it is
// a change; a change wakes the watchers. r.mu must be held.
func (r *Registry[K, V]) storeLocked(e *entry[V], v V) bool {
	e.read = r.set.clock.Now()
	if e.version > 0 && r.equal(e.value, v) {
		return false
	}
	e.value = v
	e.version++
	close(e.wake)
	e.wake = make(chan struct{})
	return true
}

// loop polls key until ctx ends or polling gives up.
func (r *Registry[K, V]) loop(ctx context.Context, key K, e *entry[V]) {
	defer close(e.done)
	sched := r.set.schedule()
	failures := 0
	for {
		r.mu.Lock()
		pushes := e.pushes
		r.mu.Unlock()
		select { // this poll answers a request to poll made before it
		case <-e.kick:
		default:
		}

		v, err := r.poll(ctx, key)
		if ctx.Err() != nil {
			return
		}
		var res Result
		r.mu.Lock()
		switch {
		case e.pushes != pushes:
			// A push came while the poll was in flight: its answer may
			// predate the pushed change. The push rescheduled already.
			res.Changed = true
		case err == nil:
			failures = 0
			res.Changed = r.storeLocked(e, v)
		default:
			failures++
			res.Err = err
			var p *permanentError
			if errors.As(err, &p) || r.set.maxFailures > 0 && failures >= r.set.maxFailures {
				if p != nil {
					err = p.err
				}
				e.err = err
				close(e.wake)
				if r.keys[key] == e {
					delete(r.keys, key)
				}
				r.mu.Unlock()
				return
			}
		}
		r.mu.Unlock()
		if !r.wait(ctx, e, sched, sched.Next(res)) {
			return
		}
	}
}

// wait waits d, or less when asked to poll at once, rescheduling after a
// push. It reports false when ctx ended.
func (r *Registry[K, V]) wait(ctx context.Context, e *entry[V], sched Schedule, d time.Duration) bool {
	for {
		t := r.set.clock.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.C():
			return true
		case <-e.kick:
			t.Stop()
			return true
		case <-e.pushed:
			t.Stop()
			d = sched.Next(Result{Changed: true})
		}
	}
}

// Watcher is one watcher of a key. Its methods are for one goroutine at a
// time.
type Watcher[K comparable, V any] struct {
	r    *Registry[K, V]
	key  K
	e    *entry[V]
	seen uint64 // the version last returned by Next
	once sync.Once
}

// Next returns the key's latest value that this watcher has not seen yet,
// waiting for one if need be: the current value on the first call, then
// each change. It returns ctx's error when ctx ends first, and the error
// that made polling give up once the watcher has seen every value before
// it. The value is shared: do not modify it.
func (w *Watcher[K, V]) Next(ctx context.Context) (V, error) {
	for {
		w.r.mu.Lock()
		e := w.e
		if e.version > w.seen {
			v := e.value
			w.seen = e.version
			w.r.mu.Unlock()
			return v, nil
		}
		err, wake := e.err, e.wake
		w.r.mu.Unlock()
		if err != nil {
			var zero V
			return zero, err
		}
		select {
		case <-wake:
		case <-ctx.Done():
			var zero V
			return zero, ctx.Err()
		}
	}
}

// Stop removes the watcher. When it is the key's last, Stop ends the key's
// loop, cancelling a poll in flight, and returns once the loop has ended.
// Stop may be called more than once.
func (w *Watcher[K, V]) Stop() {
	w.once.Do(func() {
		r, e := w.r, w.e
		r.mu.Lock()
		e.watchers--
		last := e.watchers == 0
		if last {
			if r.keys[w.key] == e {
				delete(r.keys, w.key)
			}
			e.cancel()
		}
		r.mu.Unlock()
		if last {
			<-e.done
		}
	})
}

// signal sends on a channel of capacity 1 unless a signal is already
// pending.
func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}
