package procs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
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

	hc *http.Client // for the control endpoints
}

// StartEmulator starts Bin/atlas-emulator on a random port of 127.0.0.1
// with generated digest credentials and every well-formed project id
// existing, and waits up to Ready for it to listen. The caller stops it
// with Proc.Stop.
func (h Harness) StartEmulator(ctx context.Context) (*Emulator, error) {
	pub, priv := "emu-pub-"+RandomHex(8), "emu-priv-"+RandomHex(16)
	p, u, err := h.Start(ctx, "atlas-emulator", []string{
		"-addr", "127.0.0.1:0", "-public-key", pub, "-private-key", priv, "-auto-create-groups=true",
	}, nil, func(line string) (string, bool) {
		return strings.CutPrefix(line, "atlas-emulator listening on ")
	})
	if err != nil {
		return nil, err
	}
	return &Emulator{
		Proc: p, URL: strings.TrimSpace(u), PublicKey: pub, PrivateKey: priv,
		hc: &http.Client{Timeout: 10 * time.Second},
	}, nil
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
	req, err := http.NewRequestWithContext(ctx, method, e.URL+"/_emulator/"+path, nil)
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
