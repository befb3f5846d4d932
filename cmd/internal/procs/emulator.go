package procs

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/encryptiond/encryptiond/atlas/atlastest"
)

// Emulator is a running cmd/atlas-emulator. Its methods drive the control
// endpoints under URL/_emulator/ (see package atlastest).
type Emulator struct {
	Proc *Proc
	// URL is the base URL of the Atlas API, such as http://127.0.0.1:41234.
	URL string
	// PublicKey and PrivateKey are the digest credentials it accepts,
	// generated at start. PrivateKey is a secret: no log should hold it.
	PublicKey, PrivateKey string

	hc   *http.Client // for the control endpoints
	args []string     // the flags StartEmulator was given
}

// StartEmulator starts Bin/atlas-emulator on a random port of 127.0.0.1
// with generated digest credentials, every well-formed project id
// existing, and args added to its flags (such as -state FILE, which keeps
// its projects across Restart); it waits up to Ready for it to listen. The
// caller stops it with Proc.Stop.
func (h Harness) StartEmulator(ctx context.Context, args ...string) (*Emulator, error) {
	e := &Emulator{
		PublicKey: "emu-pub-" + RandomHex(8), PrivateKey: "emu-priv-" + RandomHex(16),
		hc: &http.Client{Timeout: 10 * time.Second}, args: slices.Clone(args),
	}
	p, u, err := h.Start(ctx, "atlas-emulator", e.flags("127.0.0.1:0"), nil, listening)
	if err != nil {
		return nil, err
	}
	e.Proc, e.URL = p, u
	return e, nil
}

// listening matches the emulator's line saying where it listens and
// returns its base URL.
func listening(line string) (string, bool) {
	u, ok := strings.CutPrefix(line, "atlas-emulator listening on ")
	return strings.TrimSpace(u), ok
}

// flags are the emulator's command-line flags with this listen address.
func (e *Emulator) flags(addr string) []string {
	return append([]string{"-addr", addr, "-public-key", e.PublicKey, "-private-key", e.PrivateKey, "-auto-create-groups=true"}, e.args...)
}

// Restart stops the emulator as Proc.Stop does, if it still runs, and
// starts it again with the same credentials and flags on the same address,
// so that a daemon's -atlas-base-url still points at it. What it held
// survives only with -state (see cmd/atlas-emulator); latency, faults and
// the fault rate do not, nor its counters: read Stats before. A client's
// digest nonces are forgotten, so its next request is challenged again.
func (e *Emulator) Restart(ctx context.Context) error {
	addr, ok := strings.CutPrefix(e.URL, "http://")
	if !ok {
		return fmt.Errorf("emulator URL %q: want http://host:port", e.URL)
	}
	u, err := e.Proc.Restart(ctx, e.flags(addr), listening)
	if err != nil {
		return err
	}
	if u != e.URL {
		return fmt.Errorf("the restarted emulator listens on %s, want %s", u, e.URL)
	}
	return nil
}

// ResetStats zeroes the counters and forgets the recorded requests (which
// the emulator otherwise keeps for every call).
func (e *Emulator) ResetStats(ctx context.Context) error {
	return e.control(ctx, http.MethodPost, "reset-stats", nil)
}

// Stats reads the counters.
func (e *Emulator) Stats(ctx context.Context) (atlastest.EmulatorStats, error) {
	var s atlastest.EmulatorStats
	err := e.control(ctx, http.MethodGet, "stats", &s)
	return s, err
}

// Calls reads the emulator's counts of authenticated requests by method
// and resource, such as "GET encryptionAtRest" and "GET groups" (see
// atlastest.Emulator.Calls); ResetStats zeroes them.
func (e *Emulator) Calls(ctx context.Context) (map[string]int64, error) {
	var c map[string]int64
	err := e.control(ctx, http.MethodGet, "calls", &c)
	return c, err
}

// AddProject makes the project id exist with name, listed by GET
// /api/atlas/v2/groups: what an emulator started with
// -auto-create-groups=false serves.
func (e *Emulator) AddProject(ctx context.Context, id, name string) error {
	return e.control(ctx, http.MethodPost, "groups?"+url.Values{"id": {id}, "name": {name}}.Encode(), nil)
}

// SetLatency delays every later Atlas exchange by d; 0 removes the delay.
func (e *Emulator) SetLatency(ctx context.Context, d time.Duration) error {
	return e.control(ctx, http.MethodPost, "latency?d="+d.String(), nil)
}

// SetFaultRate makes the emulator answer the fraction rate of Atlas calls
// with an injected fault, of one of statuses (the emulator's default
// statuses when empty); rate 0 stops it.
func (e *Emulator) SetFaultRate(ctx context.Context, rate float64, statuses []int) error {
	path := "fault-rate?rate=" + strconv.FormatFloat(rate, 'f', -1, 64)
	if len(statuses) > 0 {
		s := make([]string, len(statuses))
		for i, n := range statuses {
			s[i] = strconv.Itoa(n)
		}
		path += "&statuses=" + url.QueryEscape(strings.Join(s, ","))
	}
	return e.control(ctx, http.MethodPost, path, nil)
}

// InjectFault queues f (see atlastest.Fault): the next matching requests
// are answered by it.
func (e *Emulator) InjectFault(ctx context.Context, f atlastest.Fault) error {
	// The control endpoint takes retryAfter as a duration string.
	body := struct {
		atlastest.Fault
		RetryAfter string `json:"retryAfter,omitempty"`
	}{Fault: f}
	if f.RetryAfter > 0 {
		body.RetryAfter = f.RetryAfter.String()
	}
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	return e.send(ctx, http.MethodPost, "faults", b, nil)
}

// ClearFaults drops the queued faults and stops the fault rate.
func (e *Emulator) ClearFaults(ctx context.Context) error {
	return e.control(ctx, http.MethodDelete, "faults", nil)
}

// State is a project's configuration as the emulator holds it: what an
// Atlas v2 GET would answer.
func (e *Emulator) State(ctx context.Context, groupID string) (map[string]any, error) {
	var st map[string]any
	err := e.control(ctx, http.MethodGet, "state?group="+url.QueryEscape(groupID), &st)
	return st, err
}

// control calls the control endpoint path and decodes its JSON answer into
// into, unless into is nil.
func (e *Emulator) control(ctx context.Context, method, path string, into any) error {
	return e.send(ctx, method, path, nil, into)
}

// send is control with a request body.
func (e *Emulator) send(ctx context.Context, method, path string, body []byte, into any) error {
	req, err := http.NewRequestWithContext(ctx, method, e.URL+"/_emulator/"+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	res, err := e.hc.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return err
	}
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("emulator %s %s: %s: %.300s", method, path, res.Status, b)
	}
	if into != nil {
		return json.Unmarshal(b, into)
	}
	return nil
}

// RandomHex returns n random bytes in hex: the emulator's credentials, and
// the project ids and secret values a driver makes up.
func RandomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
