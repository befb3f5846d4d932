package procs

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	encryptionv1 "github.com/encryptiond/encryptiond/gen/atlas/encryption/v1"
)

// Daemon is a running cmd/encryptiond and a gRPC client of it.
type Daemon struct {
	Proc *Proc
	// GRPCAddr and HTTPAddr are where it serves gRPC and REST (and
	// /metrics), as host:port.
	GRPCAddr, HTTPAddr string
	// Conn is a plaintext client connection to GRPCAddr, and Client the
	// service's client over it. Stop closes it.
	Conn   *grpc.ClientConn
	Client encryptionv1.EncryptionServiceClient

	hc     *http.Client // for /metrics
	emuURL string       // -atlas-base-url
	args   []string     // the flags StartDaemon was given
}

// StartDaemon starts Bin/encryptiond with both listeners on random ports of
// 127.0.0.1, talking to emu with emu's credentials in its environment, and
// args added to its flags; it waits up to Ready for the daemon's "serving"
// log record, then makes the client connection (which connects on the
// first call). The caller stops it with Stop.
func (h Harness) StartDaemon(ctx context.Context, emu *Emulator, args ...string) (*Daemon, error) {
	d := &Daemon{hc: &http.Client{Timeout: 10 * time.Second}, emuURL: emu.URL, args: slices.Clone(args)}
	p, _, err := h.Start(ctx, "encryptiond", d.flags("127.0.0.1:0", "127.0.0.1:0"), append([]string{
		"MONGODB_ATLAS_PUBLIC_API_KEY=" + emu.PublicKey,
		"MONGODB_ATLAS_PRIVATE_API_KEY=" + emu.PrivateKey,
	}, h.DaemonEnv...), func(line string) (string, bool) {
		g, r, ok := servingAddrs(line)
		if ok {
			d.GRPCAddr, d.HTTPAddr = g, r
		}
		return "", ok
	})
	if err != nil {
		return nil, err
	}
	d.Proc = p
	if d.Conn, err = Dial(d.GRPCAddr); err != nil {
		p.Stop()
		return nil, err
	}
	d.Client = encryptionv1.NewEncryptionServiceClient(d.Conn)
	return d, nil
}

// flags are the daemon's command-line flags with these listen addresses.
func (d *Daemon) flags(grpcAddr, httpAddr string) []string {
	return append([]string{"-grpc-addr", grpcAddr, "-http-addr", httpAddr, "-atlas-base-url", d.emuURL}, d.args...)
}

// Restart stops the daemon as Proc.Stop does, if it still runs (SIGTERM,
// then the harness's StopGrace), and starts it again with the same flags
// and environment on the same two addresses, so that clients find it where
// it was; it waits for its "serving" record as StartDaemon does. Conn is
// kept: it reconnects by itself, and Restart resets its reconnection
// backoff so that it does so at once rather than after the backoff the
// failed attempts of the downtime built up. To see the daemon down for a
// while, call Proc.Stop first. The exit status of the incarnation stopped
// is Proc.Err before Restart is called.
func (d *Daemon) Restart(ctx context.Context) error {
	got, err := d.Proc.Restart(ctx, d.flags(d.GRPCAddr, d.HTTPAddr), func(line string) (string, bool) {
		g, h, ok := servingAddrs(line)
		return g + " " + h, ok
	})
	if err != nil {
		return err
	}
	if want := d.GRPCAddr + " " + d.HTTPAddr; got != want {
		return fmt.Errorf("the restarted daemon serves on %s, want %s", got, want)
	}
	d.Conn.ResetConnectBackoff()
	return nil
}

// Dial makes a plaintext gRPC client connection to addr, as the drivers
// use for every child that serves gRPC on loopback.
func Dial(addr string) (*grpc.ClientConn, error) {
	return grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
}

// Stop closes the client connection and stops the daemon (see Proc.Stop).
// It may be called again.
func (d *Daemon) Stop() {
	_ = d.Conn.Close()
	d.Proc.Stop()
}

// Metrics reads the named unlabelled series, such as go_goroutines, from
// the daemon's /metrics. A name the page does not hold is missing from the
// map.
func (d *Daemon) Metrics(ctx context.Context, names ...string) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+d.HTTPAddr+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	res, err := d.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("/metrics: %s", res.Status)
	}
	out := make(map[string]float64, len(names))
	sc := bufio.NewScanner(io.LimitReader(res.Body, 8<<20))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, v, ok := strings.Cut(sc.Text(), " ")
		if !ok || !slices.Contains(names, name) {
			continue
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil {
			return nil, fmt.Errorf("/metrics: %s: %w", name, err)
		}
		out[name] = f
	}
	return out, sc.Err()
}

// servingAddrs matches the daemon's "serving" log record and returns the
// addresses in it.
func servingAddrs(line string) (grpcAddr, httpAddr string, ok bool) {
	var rec struct {
		Msg      string `json:"msg"`
		GRPCAddr string `json:"grpc_addr"`
		HTTPAddr string `json:"http_addr"`
	}
	if json.Unmarshal([]byte(line), &rec) != nil || rec.Msg != "serving" || rec.GRPCAddr == "" {
		return "", "", false
	}
	return rec.GRPCAddr, rec.HTTPAddr, true
}
