package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/encryptiond/encryptiond/atlas/atlastest"
	encryptionv1 "github.com/encryptiond/encryptiond/gen/atlas/encryption/v1"
	daemonpkg "github.com/encryptiond/encryptiond/server/daemon"
)

// These benchmarks run the whole daemon (daemonpkg.Run: every interceptor,
// JSON logging to io.Discard, metrics, the gateway, the Atlas client) in
// process against the Atlas emulator over loopback, so that
//
//	go test ./cmd/encryptiond-bench -run '^$' -bench Daemon -benchmem -cpuprofile cpu.out -memprofile mem.out
//
// profiles what `make bench` measures from outside. Every call names its
// own project, so none is shared: each costs one Atlas exchange. The
// emulator and the load generator are in the profile too; focus on
// server/, atlas/ and grpc's server side (-focus, or the daemon's
// functions in -top).

// startInProcess runs the daemon until the benchmark ends and returns its
// addresses.
func startInProcess(b *testing.B) daemonpkg.Addrs {
	b.Helper()
	_, srv := atlastest.NewServer(b, atlastest.EmulatorConfig{PublicKey: "bench-pub", PrivateKey: "bench-priv", AutoCreateGroups: true})
	env := map[string]string{
		daemonpkg.EnvPublicKey:  "bench-pub",
		daemonpkg.EnvPrivateKey: "bench-priv",
	}
	cfg, err := daemonpkg.ParseConfig([]string{"-grpc-addr", "127.0.0.1:0", "-http-addr", "127.0.0.1:0", "-atlas-base-url", srv.URL},
		func(k string) string { return env[k] })
	if err != nil {
		b.Fatal(err)
	}
	ready := make(chan daemonpkg.Addrs, 1)
	cfg.OnReady = func(a daemonpkg.Addrs) { ready <- a }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- daemonpkg.Run(ctx, cfg, daemonpkg.NewLogger(cfg, io.Discard), io.Discard) }()
	b.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			b.Errorf("daemonpkg.Run() = %v", err)
		}
	})
	select {
	case a := <-ready:
		return a
	case err := <-done:
		b.Fatalf("daemonpkg.Run() = %v before ready", err)
	}
	panic("unreachable")
}

var benchGroups atomic.Int64

func nextGroup() string { return fmt.Sprintf("%024x", benchGroups.Add(1)) }

func BenchmarkDaemonGetGRPC(b *testing.B) {
	addrs := startInProcess(b)
	conn, err := grpc.NewClient(addrs.GRPC.String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	c := encryptionv1.NewEncryptionServiceClient(conn)
	ctx := b.Context()
	b.ReportAllocs()
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.GetEncryptionAtRest(ctx, &encryptionv1.GetEncryptionAtRestRequest{GroupId: nextGroup()}); err != nil {
				b.Errorf("GetEncryptionAtRest() = %v", err)
				return
			}
		}
	})
}

func BenchmarkDaemonGetREST(b *testing.B) {
	addrs := startInProcess(b)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	base := "http://" + addrs.HTTP.String() + "/v1/groups/"
	ctx := b.Context()
	b.ReportAllocs()
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+nextGroup()+"/encryptionAtRest", nil)
			res, err := client.Do(req)
			if err != nil {
				b.Errorf("GET = %v", err)
				return
			}
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusOK {
				b.Errorf("GET = %s", res.Status)
				return
			}
		}
	})
}
