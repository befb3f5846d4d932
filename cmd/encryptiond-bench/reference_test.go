package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/encryptiond/encryptiond/atlas/atlastest"
	encryptionv1 "github.com/encryptiond/encryptiond/gen/atlas/encryption/v1"
)

// TestReferenceProxy runs the reference proxy against an emulator that
// speaks HTTP/2 without TLS, as cmd/atlas-emulator does, and checks that a
// Get through it is one digest-authenticated Atlas exchange.
func TestReferenceProxy(t *testing.T) {
	emu := atlastest.NewEmulator(atlastest.EmulatorConfig{PublicKey: "ref-pub", PrivateKey: "ref-priv", AutoCreateGroups: true})
	srv := httptest.NewUnstartedServer(emu)
	srv.Config.Protocols = new(http.Protocols)
	srv.Config.Protocols.SetHTTP1(true)
	srv.Config.Protocols.SetUnencryptedHTTP2(true)
	srv.Start()
	defer srv.Close()
	t.Setenv(refEnvBaseURL, srv.URL)
	t.Setenv(refEnvPublicKey, "ref-pub")
	t.Setenv(refEnvPrivateKey, "ref-priv")

	ctx, cancel := context.WithCancel(t.Context())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := serveReference(ctx, pw)
		pw.Close()
		done <- err
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the announcement: %v", err)
	}
	go io.Copy(io.Discard, pr)
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), refListening)
	if !ok {
		t.Fatalf("announcement %q, want %q<addr>", line, refListening)
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := encryptionv1.NewEncryptionServiceClient(conn)

	const group = "0123456789abcdef01234567"
	got, err := c.GetEncryptionAtRest(ctx, &encryptionv1.GetEncryptionAtRestRequest{GroupId: group})
	if err != nil {
		t.Fatalf("GetEncryptionAtRest() = %v", err)
	}
	if got.GetAwsKms() == nil || got.GetAwsKms().Enabled == nil || got.GetAwsKms().GetEnabled() {
		t.Errorf("GetEncryptionAtRest() = %v, want AWS KMS reported disabled", got)
	}
	if s := emu.Stats(); s.Gets != 1 {
		t.Errorf("emulator saw %d GETs, want 1", s.Gets)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("serveReference() = %v after its context ended, want nil", err)
	}
}
