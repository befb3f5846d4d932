package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// stream is a server stream in progress (a watch), over either transport:
// its messages, and how it ended (nil for OK).
type stream[M proto.Message] struct {
	msgs chan M
	end  chan error
}

func newStream[M proto.Message]() *stream[M] {
	return &stream[M]{msgs: make(chan M, 100), end: make(chan error, 1)}
}

// next returns the next message, failing the test if the stream ends.
func (w *stream[M]) next(t *testing.T) M {
	t.Helper()
	select {
	case m := <-w.msgs:
		return m
	case err := <-w.end:
		t.Fatalf("the watch ended with %v, want another message", err)
	case <-waitCtx(t).Done():
		t.Fatal("no message from the watch")
	}
	var zero M
	return zero
}

// ended returns how the stream ended, failing the test on a further
// message.
func (w *stream[M]) ended(t *testing.T) error {
	t.Helper()
	select {
	case m := <-w.msgs:
		t.Fatalf("the watch sent %v, want its end", m)
	case err := <-w.end:
		return err
	case <-waitCtx(t).Done():
		t.Fatal("the watch did not end")
	}
	return nil
}

// quiet fails the test if the stream has sent a message or ended.
func (w *stream[M]) quiet(t *testing.T, why string) {
	t.Helper()
	select {
	case m := <-w.msgs:
		t.Fatalf("%s: the watch sent %v, want nothing", why, m)
	case err := <-w.end:
		t.Fatalf("%s: the watch ended with %v, want it open", why, err)
	default:
	}
}

// receive feeds w from a gRPC stream's Recv until it ends.
func (w *stream[M]) receive(recv func() (M, error)) {
	go func() {
		for {
			m, err := recv()
			if err != nil {
				if errors.Is(err, io.EOF) {
					err = nil
				}
				w.end <- err
				return
			}
			w.msgs <- m
		}
	}()
}

// errREST is how a REST watch's error line reads.
type errREST struct {
	code   int
	status string
	msg    string
}

func (e *errREST) Error() string { return fmt.Sprintf("%d %s: %s", e.code, e.status, e.msg) }

// get feeds w from a REST watch at url: grpc-gateway's newline-delimited
// JSON, {"result": …} a line, or a last {"error": …}. The answer's headers
// come with its first message, so the request runs in the background too.
func (w *stream[M]) get(t *testing.T, ctx context.Context, client *http.Client, url string, newM func() M) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		res, err := client.Do(req)
		if err != nil {
			w.end <- err
			return
		}
		defer res.Body.Close()
		sc := bufio.NewScanner(res.Body)
		for sc.Scan() {
			var line struct {
				Result json.RawMessage `json:"result"`
				Error  *struct {
					Code    int    `json:"code"`
					Status  string `json:"status"`
					Message string `json:"message"`
				} `json:"error"`
			}
			if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
				w.end <- fmt.Errorf("line %q: %w", sc.Text(), err)
				return
			}
			if line.Error != nil {
				w.end <- &errREST{line.Error.Code, line.Error.Status, line.Error.Message}
				return
			}
			m := newM()
			if err := protojson.Unmarshal(line.Result, m); err != nil {
				w.end <- fmt.Errorf("result %s: %w", line.Result, err)
				return
			}
			w.msgs <- m
		}
		w.end <- sc.Err()
	}()
}
