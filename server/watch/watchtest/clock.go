// Package watchtest has a fake clock for tests of code that polls through
// package watch, and of the Atlas emulator's lifecycles, which can share it:
// time moves only when the test calls Advance, and WaitForTimers tells the
// test when a loop has finished its work and waits for its next poll. No
// test then sleeps or depends on how long anything takes.
package watchtest

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/encryptiond/encryptiond/server/watch"
)

// Clock is a fake watch.Clock. Its zero value is not usable: create one
// with NewClock. It is safe for concurrent use.
type Clock struct {
	mu      sync.Mutex
	now     time.Time
	timers  []*timer      // pending, in the order created
	changed chan struct{} // closed, and replaced, when timers is
}

var _ watch.Clock = (*Clock)(nil)

// NewClock returns a Clock that reads start until Advance moves it.
func NewClock(start time.Time) *Clock {
	return &Clock{now: start, changed: make(chan struct{})}
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// NewTimer returns a timer that fires when Advance reaches d from now; one
// with d <= 0 has fired already.
func (c *Clock) NewTimer(d time.Duration) watch.Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &timer{c: c, at: c.now.Add(d), ch: make(chan time.Time, 1)}
	if d <= 0 {
		t.ch <- c.now
		return t
	}
	c.timers = append(c.timers, t)
	c.changedLocked()
	return t
}

// Advance moves the clock d forward and fires, in time order, every timer
// due by then.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	due := slices.DeleteFunc(slices.Clone(c.timers), func(t *timer) bool { return t.at.After(c.now) })
	if len(due) == 0 {
		return
	}
	slices.SortStableFunc(due, func(a, b *timer) int { return a.at.Compare(b.at) })
	c.timers = slices.DeleteFunc(c.timers, func(t *timer) bool { return !t.at.After(c.now) })
	for _, t := range due {
		t.ch <- c.now
	}
	c.changedLocked()
}

// Timers returns how many timers are waiting to fire.
func (c *Clock) Timers() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}

// WaitForTimers returns once at least n timers wait to fire: the loops
// that own them have done what they do between two polls. It returns ctx's
// error if ctx ends first.
func (c *Clock) WaitForTimers(ctx context.Context, n int) error {
	for {
		c.mu.Lock()
		pending, changed := len(c.timers), c.changed
		c.mu.Unlock()
		if pending >= n {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// WaitForTimerIn returns once a timer is pending that fires d from now. It
// returns ctx's error if ctx ends first.
func (c *Clock) WaitForTimerIn(ctx context.Context, d time.Duration) error {
	for {
		c.mu.Lock()
		found := slices.ContainsFunc(c.timers, func(t *timer) bool { return t.at.Sub(c.now) == d })
		changed := c.changed
		c.mu.Unlock()
		if found {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// NextTimer returns how long until the earliest pending timer fires, and
// false when none is pending.
func (c *Clock) NextTimer() (time.Duration, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.timers) == 0 {
		return 0, false
	}
	first := c.timers[0].at
	for _, t := range c.timers[1:] {
		if t.at.Before(first) {
			first = t.at
		}
	}
	return first.Sub(c.now), true
}

func (c *Clock) changedLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

type timer struct {
	c  *Clock
	at time.Time
	ch chan time.Time
}

func (t *timer) C() <-chan time.Time { return t.ch }

func (t *timer) Stop() bool {
	c := t.c
	c.mu.Lock()
	defer c.mu.Unlock()
	i := slices.Index(c.timers, t)
	if i < 0 {
		return false
	}
	c.timers = slices.Delete(c.timers, i, i+1)
	c.changedLocked()
	return true
}
