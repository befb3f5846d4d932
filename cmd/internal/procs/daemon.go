package procs

import (
	"context"
	"encoding/json"
)

// Daemon is a running cmd/encryptiond.
type Daemon struct {
	Proc *Proc
	// GRPCAddr and HTTPAddr are where it serves gRPC and REST (and
	// /metrics), as host:port.
	GRPCAddr, HTTPAddr string
}

// StartDaemon starts Bin/encryptiond with both listeners on random ports of
// 127.0.0.1, talking to emu with emu's credentials in its environment, and
// args added to its flags; it waits up to Ready for the daemon's "serving"
// log record. The caller stops it with Proc.Stop.
func (h Harness) StartDaemon(ctx context.Context, emu *Emulator, args ...string) (*Daemon, error) {
	flags := append([]string{"-grpc-addr", "127.0.0.1:0", "-http-addr", "127.0.0.1:0", "-atlas-base-url", emu.URL}, args...)
	d := &Daemon{}
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
	return d, nil
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
