package authz

import (
	"container/list"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// buckets holds one token bucket per caller key, in bounded memory: a
// bucket idle long enough to have refilled is indistinguishable from a new
// one and is dropped, and beyond max keys the least recently used bucket is
// dropped (that caller starts again with a full bucket).
type buckets struct {
	limit rate.Limit
	burst int
	max   int
	// idle is how long an emptied bucket takes to refill.
	idle time.Duration

	mu    sync.Mutex
	byKey map[string]*list.Element // values are *bucket
	lru   list.List                // front: most recently used
}

type bucket struct {
	key  string
	lim  *rate.Limiter
	last time.Time
}

func newBuckets(limit float64, burst, max int) *buckets {
	return &buckets{
		limit: rate.Limit(limit),
		burst: burst,
		max:   max,
		idle:  time.Duration(float64(burst) / limit * float64(time.Second)),
		byKey: make(map[string]*list.Element),
	}
}

// take takes a token from key's bucket at now. When there is none it takes
// nothing and returns how long until there is one. One lock covers the
// bookkeeping and the bucket, so that no bucket is dropped while in use.
func (b *buckets) take(key string, now time.Time) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	lim := b.limiter(key, now)
	r := lim.ReserveN(now, 1)
	if !r.OK() { // only with burst 0, which burstOf rules out
		return b.idle
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return d
	}
	return 0
}

// limiter returns key's limiter, creating it, and drops stale buckets.
// b.mu must be held.
func (b *buckets) limiter(key string, now time.Time) *rate.Limiter {
	for e := b.lru.Back(); e != nil; e = b.lru.Back() {
		if bk := e.Value.(*bucket); now.Sub(bk.last) < b.idle {
			break
		}
		b.remove(e)
	}
	if e, ok := b.byKey[key]; ok {
		bk := e.Value.(*bucket)
		if now.After(bk.last) {
			bk.last = now
		}
		b.lru.MoveToFront(e)
		return bk.lim
	}
	bk := &bucket{key: key, lim: rate.NewLimiter(b.limit, b.burst), last: now}
	b.byKey[key] = b.lru.PushFront(bk)
	for len(b.byKey) > b.max {
		b.remove(b.lru.Back())
	}
	return bk.lim
}

func (b *buckets) remove(e *list.Element) {
	delete(b.byKey, e.Value.(*bucket).key)
	b.lru.Remove(e)
}

// len is the number of buckets held.
func (b *buckets) len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.byKey)
}
