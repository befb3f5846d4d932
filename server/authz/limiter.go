package authz

import (
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
	"golang.org/x/time/rate"
)

// buckets holds one token bucket per caller key, in bounded memory: a
// bucket idle long enough to have refilled is indistinguishable from a new
// one and is dropped, and beyond max keys the least recently used bucket is
// dropped (that caller starts again with a full bucket).
//
// The buckets are golang.org/x/time/rate limiters; the bookkeeping is
// hashicorp/golang-lru's simplelru, whose oldest entry is also the one idle
// longest, so dropping idle buckets is a look at the oldest. (Its expirable
// LRU expires entries a fixed time after they are added, not after they
// were last used, and runs a goroutine.)
type buckets struct {
	limit rate.Limit
	burst int
	// idle is how long an emptied bucket takes to refill.
	idle time.Duration

	mu  sync.Mutex
	lru *simplelru.LRU[string, *bucket]
}

type bucket struct {
	lim  *rate.Limiter
	last time.Time
}

func newBuckets(limit float64, burst, max int) *buckets {
	lru, err := simplelru.NewLRU[string, *bucket](max, nil)
	if err != nil {
		// Only for max <= 0, which NewInterceptor rules out.
		panic("authz: " + err.Error())
	}
	return &buckets{
		limit: rate.Limit(limit),
		burst: burst,
		idle:  time.Duration(float64(burst) / limit * float64(time.Second)),
		lru:   lru,
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

// limiter returns key's limiter, creating it, and drops idle buckets.
// b.mu must be held.
func (b *buckets) limiter(key string, now time.Time) *rate.Limiter {
	for {
		_, oldest, ok := b.lru.GetOldest()
		if !ok || now.Sub(oldest.last) < b.idle {
			break
		}
		b.lru.RemoveOldest()
	}
	if bk, ok := b.lru.Get(key); ok {
		if now.After(bk.last) {
			bk.last = now
		}
		return bk.lim
	}
	bk := &bucket{lim: rate.NewLimiter(b.limit, b.burst), last: now}
	b.lru.Add(key, bk) // drops the least recently used beyond max
	return bk.lim
}

// len is the number of buckets held.
func (b *buckets) len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.lru.Len()
}
