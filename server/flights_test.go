package server

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/encryptiond/encryptiond/atlas"
)

func TestFlightsShareOneRead(t *testing.T) {
	t.Parallel()
	var f flights
	var reads atomic.Int32
	release := make(chan struct{})
	read := func(ctx context.Context) (*atlas.EncryptionAtRest, error) {
		reads.Add(1)
		<-release
		return &atlas.EncryptionAtRest{}, nil
	}
	var wg sync.WaitGroup
	results := make(chan *atlas.EncryptionAtRest, 40)
	for range 40 {
		wg.Go(func() {
			v, err := f.do(t.Context(), "g", read)
			if err != nil {
				t.Errorf("do = %v", err)
			}
			results <- v
		})
	}
	for reads.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond) // let the others join
	close(release)
	wg.Wait()
	close(results)
	first := <-results
	for v := range results {
		if v != first {
			t.Fatalf("callers got different results; want the one shared read")
		}
	}
	if n := reads.Load(); n > 2 {
		t.Errorf("40 concurrent callers made %d reads, want 1 (2 if one arrived after the first ended)", n)
	}
}

func TestFlightsWaiterKeepsItsOwnDeadline(t *testing.T) {
	t.Parallel()
	var f flights
	release := make(chan struct{})
	defer close(release)
	started := make(chan struct{})
	go f.do(context.Background(), "g", func(ctx context.Context) (*atlas.EncryptionAtRest, error) {
		close(started)
		<-release
		return &atlas.EncryptionAtRest{}, nil
	})
	<-started
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := f.do(ctx, "g", nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("do with a short deadline = %v, want DeadlineExceeded", err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("do waited %v past its 20ms deadline", took)
	}
}

func TestFlightsRetryWhenTheMakerGivesUp(t *testing.T) {
	t.Parallel()
	var f flights
	makerCtx, cancelMaker := context.WithCancel(t.Context())
	started := make(chan struct{})
	makerDone := make(chan error, 1)
	go func() {
		_, err := f.do(makerCtx, "g", func(ctx context.Context) (*atlas.EncryptionAtRest, error) {
			close(started)
			<-ctx.Done()
			return nil, ctx.Err()
		})
		makerDone <- err
	}()
	<-started
	waiterDone := make(chan error, 1)
	var waiterReads atomic.Int32
	go func() {
		_, err := f.do(t.Context(), "g", func(ctx context.Context) (*atlas.EncryptionAtRest, error) {
			waiterReads.Add(1)
			return &atlas.EncryptionAtRest{}, nil
		})
		waiterDone <- err
	}()
	time.Sleep(20 * time.Millisecond) // the waiter joins the maker's read
	cancelMaker()
	if err := <-makerDone; !errors.Is(err, context.Canceled) {
		t.Errorf("maker's do = %v, want Canceled", err)
	}
	if err := <-waiterDone; err != nil {
		t.Errorf("waiter's do = %v, want a result from its own read after the maker gave up", err)
	}
	if n := waiterReads.Load(); n != 1 {
		t.Errorf("waiter made %d reads, want 1", n)
	}
}

func TestFlightsPanicReleasesWaiters(t *testing.T) {
	t.Parallel()
	var f flights
	started := make(chan struct{})
	release := make(chan struct{})
	go func() {
		defer func() { _ = recover() }()
		f.do(t.Context(), "g", func(ctx context.Context) (*atlas.EncryptionAtRest, error) {
			close(started)
			<-release
			panic("boom")
		})
	}()
	<-started
	errLate := errors.New("joined after the read ended")
	done := make(chan error, 1)
	go func() {
		_, err := f.do(t.Context(), "g", func(context.Context) (*atlas.EncryptionAtRest, error) { return nil, errLate })
		done <- err
	}()
	time.Sleep(50 * time.Millisecond) // the waiter joins the read
	close(release)
	select {
	case err := <-done:
		if errors.Is(err, errLate) {
			t.Skip("the waiter was too slow to join the read; nothing to check")
		}
		if !errors.Is(err, errReadPanicked) {
			t.Errorf("waiter's do = %v, want errReadPanicked", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a waiter still waits after the read panicked")
	}
}
