package daemon

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/encryptiond/encryptiond/atlas"
	"github.com/encryptiond/encryptiond/atlas/atlastest"
)

// SampleGroupID is the project id the dev banner's commands use. In -dev
// every well-formed id exists.
const SampleGroupID = "32b6e34b3d91647abb20e7b8"

// The -dev emulator's demonstrations of the lifecycle around a change
// (README, "Trying the lifecycle in -dev"):
const (
	// DevBlockedGroupID is a project with AWS KMS enabled and two clusters
	// using it (and one using Azure Key Vault): disabling AWS KMS there is
	// refused, naming them.
	DevBlockedGroupID = "5e6f7a8b9c0d1e2f3a4b5c6d"
	// DevPropagatingRoleID is a Cloud Provider Access role that Atlas can
	// use only DevPropagation after its first use, as if just authorized:
	// an enable naming it is sent again until then.
	DevPropagatingRoleID = "64b6e34b3d91647abb20e7bb"
	// DevPropagation is how long DevPropagatingRoleID takes to propagate.
	DevPropagation = 8 * time.Second
	// DevInvalidKeyGroupID is a project whose Azure Key Vault key Atlas
	// reports invalid (valid: false): -monitor logs it at WARN.
	DevInvalidKeyGroupID = "6f7a8b9c0d1e2f3a4b5c6d7e"
)

// devProjects are the projects the -dev emulator lists (GET
// /api/atlas/v2/groups, ListEncryptionAtRest, -monitor all), by id. Every
// other well-formed id exists too, unlisted.
var devProjects = []struct{ id, name string }{
	{SampleGroupID, "sandbox"},
	{DevBlockedGroupID, "orders"},
	{DevInvalidKeyGroupID, "ledger"},
	{"7a8b9c0d1e2f3a4b5c6d7e8f", "analytics"},
}

// seedDev gives the -dev emulator its demonstrations.
func seedDev(emu *atlastest.Emulator) error {
	on, key, region, role := true, "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab", "US_EAST_1", "64b6e34b3d91647abb20e7b9"
	err := emu.Configure(DevBlockedGroupID, atlas.EncryptionAtRest{AWSKMS: &atlas.AWSKMSConfiguration{Enabled: &on, CustomerMasterKeyID: &key, Region: &region, RoleID: &role}})
	if err != nil {
		return err
	}
	for _, c := range []atlastest.Cluster{
		{Name: "orders-prod", EncryptionAtRestProvider: "AWS"},
		{Name: "payments-prod", EncryptionAtRestProvider: "AWS"},
		{Name: "analytics", EncryptionAtRestProvider: "AZURE"},
	} {
		emu.SetCluster(DevBlockedGroupID, c)
	}
	emu.RoleUsableAfter(DevPropagatingRoleID, DevPropagation)

	for _, p := range devProjects {
		emu.AddProject(p.id, p.name)
	}
	azure := &atlas.AzureKeyVault{Enabled: &on, AzureEnvironment: ptr("AZURE"),
		ClientID: ptr("f0e1d2c3-b4a5-4968-8776-a5b4c3d2e1f0"), TenantID: ptr("0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"),
		Secret: ptr(randomHex(16)), SubscriptionID: ptr("1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"),
		ResourceGroupName: ptr("ledger"), KeyVaultName: ptr("ledger-vault"), KeyIdentifier: ptr("https://ledger-vault.vault.azure.net/keys/ledger/d891821e3d364e9eb88fbd3d11807b86")}
	if err := emu.Configure(DevInvalidKeyGroupID, atlas.EncryptionAtRest{AzureKeyVault: azure}); err != nil {
		return err
	}
	emu.SetKeyValid(DevInvalidKeyGroupID, atlastest.ProviderAzure, false)
	gcp := &atlas.GoogleCloudKMS{Enabled: &on, RoleID: ptr("64b6e34b3d91647abb20e7ba"),
		KeyVersionResourceID: ptr("projects/analytics/locations/global/keyRings/r/cryptoKeys/k/cryptoKeyVersions/1")}
	return emu.Configure("7a8b9c0d1e2f3a4b5c6d7e8f", atlas.EncryptionAtRest{GoogleCloudKMS: gcp})
}

func ptr[T any](v T) *T { return &v }

// devAtlas is the Atlas emulator that -dev runs in-process.
type devAtlas struct {
	url   string
	creds Credentials
	srv   *http.Server
	done  chan error
}

// startDevAtlas serves an emulator on a random loopback port that accepts
// freshly generated digest credentials, known only to this process. It
// records no requests and serves no /_emulator/ control endpoints: those
// are unauthenticated, and the requests hold whatever secrets the developer
// sent, which no other local process should be able to read.
func startDevAtlas() (*devAtlas, error) {
	creds := Credentials{PublicKey: "dev" + randomHex(4), PrivateKey: randomHex(16)}
	emu := atlastest.NewEmulator(atlastest.EmulatorConfig{
		PublicKey:        creds.PublicKey,
		PrivateKey:       creds.PrivateKey,
		AutoCreateGroups: true,
		DisableRecording: true,
		DisableControl:   true,
	})
	if err := seedDev(emu); err != nil {
		return nil, fmt.Errorf("dev: seeding the Atlas emulator: %w", err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("dev: starting the Atlas emulator: %w", err)
	}
	d := &devAtlas{
		url:   "http://" + lis.Addr().String(),
		creds: creds,
		srv:   &http.Server{Handler: emu, ReadHeaderTimeout: 10 * time.Second, Protocols: new(http.Protocols)},
		done:  make(chan error, 1),
	}
	// HTTP/1.1, and HTTP/2 without TLS for -atlas-h2c.
	d.srv.Protocols.SetHTTP1(true)
	d.srv.Protocols.SetUnencryptedHTTP2(true)
	go func() { d.done <- d.srv.Serve(lis) }()
	return d, nil
}

// close stops the emulator.
func (d *devAtlas) close(ctx context.Context) error {
	err := d.srv.Shutdown(ctx)
	if serveErr := <-d.done; !errors.Is(serveErr, http.ErrServerClosed) {
		err = errors.Join(err, serveErr)
	}
	return err
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails.
	return hex.EncodeToString(b)
}

// hostPort turns a listen address into one a local client can dial:
// "[::]:9090" and ":9090" become "localhost:9090".
func hostPort(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}

// writeBanner prints what -dev runs on and ready-to-paste commands for a
// Get, an enable, a partial update and a disable, over gRPC and REST.
func writeBanner(w io.Writer, addrs Addrs, tls bool) {
	grpcAddr, httpAddr := hostPort(addrs.GRPC), hostPort(addrs.HTTP)
	grpcurl := "go tool -modfile=tools/go.mod grpcurl -plaintext"
	curl, scheme := "curl -s", "http"
	if tls {
		grpcurl = "go tool -modfile=tools/go.mod grpcurl -insecure"
		curl, scheme = "curl -sk", "https"
	}
	const svc = "atlas.encryption.v1.EncryptionService"
	g := SampleGroupID
	url := fmt.Sprintf("'%s://%s/v1/groups/%s/encryptionAtRest?pretty=true'", scheme, httpAddr, g)
	enable := `{"awsKms": {"enabled": true, "customerMasterKeyID": "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab", "region": "US_EAST_1", "roleId": "64b6e34b3d91647abb20e7b9"}}`
	update := `{"awsKms": {"region": "US_WEST_2"}}`
	disable := `{"awsKms": {"enabled": false}}`
	req := func(body string) string { return fmt.Sprintf(`{"groupId": "%s", "config": %s}`, g, body) }

	var b strings.Builder
	fmt.Fprintf(&b, `
encryptiond is running in DEVELOPMENT mode against an in-process Atlas EMULATOR
(%s) with generated credentials: no real Atlas project is touched.
Every well-formed group id exists and nothing is persisted. Both servers
listen on loopback only and are open to any local caller.

  gRPC  %s   (reflection on: try "%s %s describe %s")
  REST  %s://%s   (/openapi.json, /metrics, /healthz, /readyz)

Run these from the repository root.

# Get
%s -d '{"groupId": "%s"}' %s %s/GetEncryptionAtRest
%s %s

# Enable AWS KMS (a role-based configuration)
%s -d '%s' %s %s/UpdateEncryptionAtRest
%s -X PATCH -H 'Content-Type: application/json' %s -d '%s'

# Partial update: change only the region
%s -d '%s' %s %s/UpdateEncryptionAtRest
%s -X PATCH -H 'Content-Type: application/json' %s -d '%s'

# Disable AWS KMS
%s -d '%s' %s %s/UpdateEncryptionAtRest
%s -X PATCH -H 'Content-Type: application/json' %s -d '%s'

# Every project's configuration (the emulator lists four; one has an invalid
# key: restart with -monitor all to see it logged)
%s '%s://%s/v1/groups/-/encryptionAtRest?pretty=true'
# Watch that project; it streams until Ctrl-C (run it without the leading #)
# %s -d '{"groupId": "%s"}' %s %s/WatchEncryptionAtRest

`,
		addrs.Atlas,
		grpcAddr, grpcurl, grpcAddr, svc,
		scheme, httpAddr,
		grpcurl, g, grpcAddr, svc,
		curl, url,
		grpcurl, req(enable), grpcAddr, svc,
		curl, url, enable,
		grpcurl, req(update), grpcAddr, svc,
		curl, url, update,
		grpcurl, req(disable), grpcAddr, svc,
		curl, url, disable,
		curl, scheme, httpAddr,
		grpcurl, DevInvalidKeyGroupID, grpcAddr, svc,
	)
	io.WriteString(w, b.String())
}
