package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"

	"google.golang.org/grpc"

	"github.com/encryptiond/encryptiond/atlas"
	"github.com/encryptiond/encryptiond/cmd/internal/procs"
	encryptionv1 "github.com/encryptiond/encryptiond/gen/atlas/encryption/v1"
)

// The reference proxy calibrates the machine. It is the thinnest gRPC
// front to Atlas that can be written: a bare grpc.Server (no interceptors,
// no logging, no metrics, no rules) whose GetEncryptionAtRest makes the
// same atlas.Client call as the direct client and copies three booleans
// into the answer. What it adds over the direct client is what one more
// process and one gRPC hop cost on this machine, with nothing of
// encryptiond in it; the latency and CPU targets are stated as ratios to
// its numbers, measured in the same run, so that they judge what the
// daemon adds and not the machine. It has no verdict of its own.
//
// The driver runs it as a child: its own binary with -reference-proxy.

// The reference proxy's environment: the emulator's URL and credentials.
const (
	refEnvBaseURL    = "ENCRYPTIOND_BENCH_ATLAS_BASE_URL"
	refEnvPublicKey  = "ENCRYPTIOND_BENCH_ATLAS_PUBLIC_KEY"
	refEnvPrivateKey = "ENCRYPTIOND_BENCH_ATLAS_PRIVATE_KEY"
)

const refListening = "reference proxy listening on "

type referenceProxy struct {
	encryptionv1.UnimplementedEncryptionServiceServer
	atlas *atlas.Client
}

func (p referenceProxy) GetEncryptionAtRest(ctx context.Context, req *encryptionv1.GetEncryptionAtRestRequest) (*encryptionv1.EncryptionAtRest, error) {
	ear, err := p.atlas.GetEncryptionAtRest(ctx, req.GetGroupId())
	if err != nil {
		return nil, err
	}
	out := &encryptionv1.EncryptionAtRest{}
	if ear.AWSKMS != nil {
		out.AwsKms = &encryptionv1.AwsKmsState{Enabled: ear.AWSKMS.Enabled}
	}
	if ear.AzureKeyVault != nil {
		out.AzureKeyVault = &encryptionv1.AzureKeyVaultState{Enabled: ear.AzureKeyVault.Enabled}
	}
	if ear.GoogleCloudKMS != nil {
		out.GoogleCloudKms = &encryptionv1.GoogleCloudKmsState{Enabled: ear.GoogleCloudKMS.Enabled}
	}
	return out, nil
}

// serveReference serves the reference proxy on a free port of 127.0.0.1
// until ctx ends, announcing its address on w.
func serveReference(ctx context.Context, w io.Writer) error {
	c, err := atlas.NewClient(
		atlas.WithBaseURL(os.Getenv(refEnvBaseURL)),
		atlas.WithDigest(os.Getenv(refEnvPublicKey), os.Getenv(refEnvPrivateKey)),
		atlas.WithUnencryptedHTTP2(),
	)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	s := grpc.NewServer()
	encryptionv1.RegisterEncryptionServiceServer(s, referenceProxy{atlas: c})
	fmt.Fprintf(w, "%s%s\n", refListening, ln.Addr())
	go func() {
		<-ctx.Done()
		s.Stop()
	}()
	if err := s.Serve(ln); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return err
	}
	return nil
}

// startReference starts the reference proxy against the emulator and
// returns it and its gRPC address. It gets the daemon's -daemon-cpus.
func (b *bench) startReference(ctx context.Context) (*procs.Proc, string, error) {
	return b.harness.Start(ctx, "encryptiond-bench", []string{"-reference-proxy"}, append([]string{
		refEnvBaseURL + "=" + b.emu.URL,
		refEnvPublicKey + "=" + b.emu.PublicKey,
		refEnvPrivateKey + "=" + b.emu.PrivateKey,
	}, b.cfg.cpuEnv()...), func(line string) (string, bool) {
		addr, ok := strings.CutPrefix(line, refListening)
		return strings.TrimSpace(addr), ok
	})
}
