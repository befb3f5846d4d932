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

	hc *http.Client // for /metrics
}

// StartDaemon starts Bin/encryptiond with both listeners on random ports of
// 127.0.0.1, talking to emu with emu's credentials in its environment, and
// args added to its flags; it waits up to Ready for the daemon's "serving"
// log record, then makes the client connection (which connects on the
// first call). The caller stops it with Stop.
func (h Harness) StartDaemon(ctx context.Context, emu *Emulator, args ...string) (*Daemon, error) {
	flags := append([]string{"-grpc-addr", "127.0.0.1:0", "-http-addr", "127.0.0.1:0", "-atlas-base-url", emu.URL}, args...)
	d := &Daemon{hc: &http.Client{Timeout: 10 * time.Second}}
	p, _, err := h.Start(ctx, "encryptiond", flags, append([]string{
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
