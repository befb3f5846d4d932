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
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
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
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	return c, nil
}

// run serves the emulator until ctx is done, then shuts down gracefully.
func run(ctx context.Context, args []string, stdout io.Writer) error {
	cfg, err := parseFlags(args, stdout)
	if err != nil {
		return err
	}
	emu := atlastest.NewEmulator(cfg.emulator)
	emu.SetLatency(cfg.latency)
	var lc net.ListenConfig
	l, err := lc.Listen(ctx, "tcp", cfg.addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: emu, ReadHeaderTimeout: 10 * time.Second, Protocols: new(http.Protocols)}
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
	if serveErr := <-errc; !errors.Is(serveErr, http.ErrServerClosed) {
		err = errors.Join(err, serveErr)
	}
	return err
}
