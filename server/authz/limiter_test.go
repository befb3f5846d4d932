package authz

import (
	"strconv"
	"testing"
	"time"
)

func TestBucketsRefill(t *testing.T) {
	t.Parallel()
	b := newBuckets(10, 2, 100) // a token every 100ms, two at once
	t0 := time.Unix(1000, 0)
	for i := range 2 {
		if wait := b.take("a", t0); wait != 0 {
			t.Fatalf("take #%d = %v, want 0", i, wait)
		}
	}
	if wait := b.take("a", t0); wait != 100*time.Millisecond {
		t.Errorf("take when empty = %v, want 100ms", wait)
	}
	if wait := b.take("a", t0.Add(40*time.Millisecond)); wait != 60*time.Millisecond {
		t.Errorf("take 40ms later = %v, want 60ms (a refused take costs nothing)", wait)
	}
	if wait := b.take("b", t0); wait != 0 {
		t.Errorf("take by another caller = %v, want 0", wait)
	}
	if wait := b.take("a", t0.Add(100*time.Millisecond)); wait != 0 {
		t.Errorf("take 100ms later = %v, want 0", wait)
	}
}

func TestBucketsEvictIdle(t *testing.T) {
	t.Parallel()
	b := newBuckets(10, 2, 100) // refills in 200ms
	t0 := time.Unix(1000, 0)
	for i := range 50 {
		b.take("caller"+strconv.Itoa(i), t0)
	}
	b.take("busy", t0.Add(150*time.Millisecond))
	b.take("busy", t0.Add(150*time.Millisecond))
	if got := b.len(); got != 51 {
		t.Fatalf("len() = %d, want 51", got)
	}
	b.take("new", t0.Add(200*time.Millisecond))
	if got := b.len(); got != 2 {
		t.Errorf("len() after 200ms = %d, want 2 (busy, new)", got)
	}
	// The busy caller's empty bucket was kept: it is still empty.
	if wait := b.take("busy", t0.Add(200*time.Millisecond)); wait <= 0 {
		t.Errorf("take by busy caller = %v, want a wait", wait)
	}
}

func TestBucketsBounded(t *testing.T) {
	t.Parallel()
	b := newBuckets(1, 1, 10) // refills in 1s: nothing goes idle below
	t0 := time.Unix(1000, 0)
	for i := range 1000 {
		b.take("caller"+strconv.Itoa(i), t0.Add(time.Duration(i)*time.Microsecond))
		if got := b.len(); got > 10 {
			t.Fatalf("len() after %d callers = %d, want at most 10", i+1, got)
		}
	}
	// The most recent callers are the ones kept.
	if wait := b.take("caller999", t0.Add(time.Millisecond)); wait <= 0 {
		t.Errorf("take by the last caller = %v, want a wait", wait)
	}
}
