package watch

import "time"

// A Schedule decides how long a key's loop waits before its next poll.
// Each loop has its own, made by the factory given to WithSchedule, and
// calls it from one goroutine only.
type Schedule interface {
	// Next returns the wait before the next poll, given what the last poll
	// found, or that a push just changed the value (Changed, no Err).
	Next(r Result) time.Duration
}

// Result is what a poll, or a push, found.
type Result struct {
	// Changed reports a new value.
	Changed bool
	// Err is the poll's error, nil when it succeeded.
	Err error
}

// Backoff returns a schedule factory that polls after minWait, doubles the
// wait after every poll that finds no change or fails, up to maxWait, and
// goes back to minWait after a change: polls come often while something
// happens and seldom while nothing does. A minWait under a millisecond
// counts as one, and a maxWait under minWait as minWait.
func Backoff(minWait, maxWait time.Duration) func() Schedule {
	minWait = max(minWait, time.Millisecond)
	maxWait = max(maxWait, minWait)
	return func() Schedule { return &backoff{min: minWait, max: maxWait} }
}

type backoff struct {
	min, max, cur time.Duration
}

func (b *backoff) Next(r Result) time.Duration {
	if b.cur == 0 || r.Changed && r.Err == nil {
		b.cur = b.min
	} else {
		b.cur = min(2*b.cur, b.max)
	}
	return b.cur
}

// Every returns a schedule factory that polls every d, whatever the polls
// find. A d under a millisecond counts as one.
func Every(d time.Duration) func() Schedule {
	d = max(d, time.Millisecond)
	return func() Schedule { return every(d) }
}

type every time.Duration

func (e every) Next(Result) time.Duration { return time.Duration(e) }
