// Command atlas-emulator serves an in-memory MongoDB Atlas (package
// atlastest) for local runs, benchmarks and soak tests in another process:
// the encryptionAtRest resource under /api/atlas/v2 and /api/atlas/v1.0,
// HTTP Digest with an API key, the service-account token endpoint, and the
// /_emulator/ control endpoints described in package atlastest.
//
//	atlas-emulator -addr 127.0.0.1:8090
//	curl --digest -u emulator-public-key:emulator-private-key \
//	  -H 'Accept: application/vnd.atlas.2023-01-01+json' \
//	  http://127.0.0.1:8090/api/atlas/v2/groups/5f4e3d2c1b0a998877665544/encryptionAtRest
//
// Flags:
//
//	-addr                listen address (default 127.0.0.1:8090)
//	-public-key          API public key (default emulator-public-key)
//	-private-key         API private key (default emulator-private-key)
//	-client-id           service account client id (default mdb_sa_id_emulator)
//	-client-secret       service account secret (default mdb_sa_sk_emulator)
//	-latency             latency added to every exchange (default 0)
//	-auto-create-groups  every well-formed group id exists (default true)
//	-nonce-lifetime      digest nonce lifetime, 0 = never expires (default 0)
//	-strict-nonce-count  refuse nonce counts that do not increase (default false)
//	-token-lifetime      access token lifetime (default 1h)
//	-private-endpoint-delay  how long a private endpoint stays INITIATING, and DELETING (default 3s)
//	-state               file holding the projects' state across restarts (default none)
//
// With -state FILE the emulator keeps its projects across a restart, as
// Atlas keeps them across an outage: it restores them from FILE at start
// when the file exists, and when it stops on SIGINT or SIGTERM, once the
// requests in flight have ended, it writes them there (mode 0600, replaced
// whole by a rename). FILE holds the secrets and roles the emulator was
// sent (see atlastest.Emulator.Snapshot); nothing else is kept: digest
// nonces, tokens, faults, latency and counters start afresh, so a client
// signs again after a digest challenge. A process that is killed does not
// write it.
//
// It is a test tool, not a service: the /_emulator/ control endpoints are
// unauthenticated, so anyone who can reach -addr can reconfigure it, and
// GET /_emulator/requests returns the last atlastest.MaxRecordedRequests
// requests it received, bodies and any secrets in them included. Keep -addr on loopback and send
// it no real credentials or keys.
//
// It serves HTTP/1.1 and HTTP/2 without TLS (h2c, prior knowledge), so that
// a client configured for HTTP/2 (encryptiond -atlas-h2c) shares a few
// connections for many concurrent calls, as it does with Atlas over HTTPS.
// It stops gracefully on SIGINT or SIGTERM.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/encryptiond/encryptiond/atlas/atlastest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "atlas-emulator:", err)
		stop()
		os.Exit(1)
	}
}

// usage heads the -help output.
const usage = `Usage: atlas-emulator [flags]

atlas-emulator serves an in-memory MongoDB Atlas for tests, benchmarks and
soak runs. It is a test tool, not a service: the /_emulator/ control
endpoints are unauthenticated, and GET /_emulator/requests returns the last
%d requests it received, bodies and any secrets in them included. Keep
-addr on loopback and send it no real credentials or keys.

Flags:
`

// config is the emulator binary's configuration, parsed from flags.
type config struct {
	addr     string
	emulator atlastest.EmulatorConfig
	latency  time.Duration
	state    string // -state: "" keeps nothing across restarts
}

func parseFlags(args []string, out io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("atlas-emulator", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), usage, atlastest.MaxRecordedRequests)
		fs.PrintDefaults()
	}
	fs.StringVar(&c.addr, "addr", "127.0.0.1:8090", "listen address")
	fs.StringVar(&c.emulator.PublicKey, "public-key", "emulator-public-key", "API public key accepted with HTTP Digest")
	fs.StringVar(&c.emulator.PrivateKey, "private-key", "emulator-private-key", "API private key accepted with HTTP Digest")
	fs.StringVar(&c.emulator.ClientID, "client-id", "mdb_sa_id_emulator", "service account client id accepted at /api/oauth/token")
	fs.StringVar(&c.emulator.ClientSecret, "client-secret", "mdb_sa_sk_emulator", "service account client secret")
	fs.DurationVar(&c.latency, "latency", 0, "latency added to every exchange")
	fs.BoolVar(&c.emulator.AutoCreateGroups, "auto-create-groups", true, "every well-formed group id exists")
	fs.DurationVar(&c.emulator.NonceLifetime, "nonce-lifetime", 0, "digest nonce lifetime; 0 means nonces never expire")
	fs.BoolVar(&c.emulator.StrictNonceCount, "strict-nonce-count", false, "refuse digest nonce counts that do not increase (401 stale=true)")
	fs.DurationVar(&c.emulator.TokenLifetime, "token-lifetime", time.Hour, "service account access token lifetime")
	fs.DurationVar(&c.emulator.PrivateEndpointDelay, "private-endpoint-delay", atlastest.DefaultPrivateEndpointDelay, "how long a private endpoint stays INITIATING, and DELETING")
	fs.StringVar(&c.state, "state", "", "file that keeps the projects' state (secrets included) across restarts: read at start if present, written (0600) on SIGINT/SIGTERM")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	return c, nil
}

// run serves the emulator until ctx is done, then shuts down gracefully
// and, with -state, writes the projects' state once no request is left.
func run(ctx context.Context, args []string, stdout io.Writer) error {
	cfg, err := parseFlags(args, stdout)
	if err != nil {
		return err
	}
	emu := atlastest.NewEmulator(cfg.emulator)
	emu.SetLatency(cfg.latency)
	if cfg.state != "" {
		n, found, err := loadState(emu, cfg.state)
		switch {
		case err != nil:
			return err
		case found:
			fmt.Fprintf(stdout, "atlas-emulator restored %d projects from %s\n", n, cfg.state)
		default:
			fmt.Fprintf(stdout, "atlas-emulator starts without projects: %s does not exist yet\n", cfg.state)
		}
	}
	var lc net.ListenConfig
	l, err := lc.Listen(ctx, "tcp", cfg.addr)
	if err != nil {
		return err
	}
	// The state is written after the last request that could change it.
	g := &gate{}
	g.idle = sync.NewCond(&g.mu)
	srv := &http.Server{Handler: g.wrap(emu), ReadHeaderTimeout: 10 * time.Second, Protocols: new(http.Protocols)}
	srv.Protocols.SetHTTP1(true)
	srv.Protocols.SetUnencryptedHTTP2(true)
	fmt.Fprintf(stdout, "atlas-emulator listening on http://%s\n", l.Addr())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = srv.Shutdown(shutdownCtx)
	if err != nil {
		// Requests still running past the grace: close their connections,
		// which ends their contexts (and any injected latency).
		err = errors.Join(err, srv.Close())
	}
	if serveErr := <-errc; !errors.Is(serveErr, http.ErrServerClosed) {
		err = errors.Join(err, serveErr)
	}
	g.close()
	if cfg.state != "" {
		n, saveErr := saveState(emu, cfg.state)
		if saveErr == nil {
			fmt.Fprintf(stdout, "atlas-emulator wrote %d projects to %s\n", n, cfg.state)
		}
		err = errors.Join(err, saveErr)
	}
	return err
}

// gate lets requests through to a handler until it is closed, and then
// lets none: close returns once the last request let through has ended.
// net/http can still start a handler for a request read just before the
// server closed its connection; the gate keeps such a request from
// changing the state after it was written.
type gate struct {
	mu      sync.Mutex
	idle    *sync.Cond // signalled when running drops to 0
	running int
	closed  bool
}

func (g *gate) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.mu.Lock()
		if g.closed {
			g.mu.Unlock()
			http.Error(w, "atlas-emulator is stopping", http.StatusServiceUnavailable)
			return
		}
		g.running++
		g.mu.Unlock()
		defer func() {
			g.mu.Lock()
			if g.running--; g.running == 0 {
				g.idle.Broadcast()
			}
			g.mu.Unlock()
		}()
		h.ServeHTTP(w, r)
	})
}

// close stops letting requests through and waits for those running.
func (g *gate) close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.closed = true
	for g.running > 0 {
		g.idle.Wait()
	}
}

// loadState restores emu from the file at path, if there is one, and
// returns how many projects it held.
func loadState(emu *atlastest.Emulator, path string) (projects int, found bool, err error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	if err := emu.Restore(b); err != nil {
		return 0, true, fmt.Errorf("-state %s: %w", path, err)
	}
	return countProjects(b), true, nil
}

// saveState writes emu's projects to path, readable by its owner only,
// replacing the file whole so that an interrupted write leaves the old one.
func saveState(emu *atlastest.Emulator, path string) (int, error) {
	b, err := emu.Snapshot()
	if err != nil {
		return 0, err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".atlas-emulator-state-*") // mode 0600
	if err != nil {
		return 0, fmt.Errorf("-state %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // fails harmlessly after the rename
	_, err = tmp.Write(b)
	if err := errors.Join(err, tmp.Sync(), tmp.Close()); err != nil {
		return 0, fmt.Errorf("-state %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return 0, fmt.Errorf("-state %s: %w", path, err)
	}
	return countProjects(b), nil
}

// countProjects counts the projects of a snapshot, for the log line.
func countProjects(snapshot []byte) int {
	var s struct {
		Groups map[string]json.RawMessage `json:"groups"`
	}
	_ = json.Unmarshal(snapshot, &s)
	return len(s.Groups)
}
