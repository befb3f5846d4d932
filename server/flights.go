package server

import (
	"context"
	"errors"
	"sync"

	"github.com/encryptiond/encryptiond/atlas"
)

// flights shares one Atlas read among concurrent Gets of a project.
//
// It does what golang.org/x/sync/singleflight's DoChan does, without the
// goroutine DoChan starts for every call: the caller that finds no read
// under way makes it itself, with its own context, and the others wait for
// it or for their own context. Under load every Get was one more goroutine
// whose stack grew to the depth of an HTTP round trip; measured with
// `make bench` that goroutine was a visible share of the daemon's memory at
// 1000 concurrent callers and of its CPU (stack growth).
//
// Because the read runs under its maker's context, a maker that gives up
// ends the read: the waiters whose own context is still live then try again,
// one of them making a new read. So no caller waits past its own deadline,
// and none gets an error that belongs to another caller's deadline.
type flights struct {
	mu sync.Mutex
	m  map[string]*flight
}

type flight struct {
	done   chan struct{} // closed when the read ended
	val    *atlas.EncryptionAtRest
	err    error
	gaveUp bool // the read ended because its maker's context did
}

// errReadPanicked is what waiters get when the read panicked; the panic
// itself goes on up the maker's stack.
var errReadPanicked = errors.New("the shared read of the project panicked")

// do returns the result of read for key: of a read under way if there is
// one, else of a new one made with ctx. The result is shared: callers must
// not change it.
func (f *flights) do(ctx context.Context, key string, read func(context.Context) (*atlas.EncryptionAtRest, error)) (*atlas.EncryptionAtRest, error) {
	for {
		f.mu.Lock()
		if c, ok := f.m[key]; ok {
			f.mu.Unlock()
			select {
			case <-c.done:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			if c.gaveUp && ctx.Err() == nil {
				continue // its maker gave up, this caller has not
			}
			return c.val, c.err
		}
		if f.m == nil {
			f.m = make(map[string]*flight)
		}
		c := &flight{done: make(chan struct{}), err: errReadPanicked}
		f.m[key] = c
		f.mu.Unlock()

		func() {
			defer func() {
				f.mu.Lock()
				delete(f.m, key)
				f.mu.Unlock()
				close(c.done)
			}()
			c.val, c.err = read(ctx)
			c.gaveUp = c.err != nil && ctx.Err() != nil
		}()
		return c.val, c.err
	}
}
