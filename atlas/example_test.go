package atlas_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"

	"github.com/encryptiond/encryptiond/atlas"
	"github.com/encryptiond/encryptiond/atlas/atlastest"
)

func Example() {
	// An in-memory Atlas stands in for https://cloud.mongodb.com.
	emu := atlastest.NewEmulator(atlastest.EmulatorConfig{PublicKey: "pub", PrivateKey: "priv", AutoCreateGroups: true})
	srv := httptest.NewServer(emu)
	defer srv.Close()

	c, err := atlas.NewClient(atlas.WithBaseURL(srv.URL), atlas.WithDigest("pub", "priv"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.CloseIdleConnections()
	ctx := context.Background()
	const project = "5f4e3d2c1b0a998877665544"
	str := func(s string) *string { return &s }
	yes := true

	// Enabling a provider takes its whole document.
	_, err = c.UpdateEncryptionAtRest(ctx, project, &atlas.EncryptionAtRest{AWSKMS: &atlas.AWSKMSConfiguration{
		Enabled:             &yes,
		CustomerMasterKeyID: str("alias/atlas"),
		Region:              str("EU_WEST_1"),
		RoleID:              str("32b6e34b3d91647abb20e7b8"),
	}})
	fmt.Println("enable:", err)

	// Afterwards, only what changes.
	cfg, err := c.UpdateEncryptionAtRest(ctx, project, &atlas.EncryptionAtRest{AWSKMS: &atlas.AWSKMSConfiguration{
		Region: str("US_EAST_1"),
	}})
	fmt.Println("region:", *cfg.AWSKMS.Region, *cfg.AWSKMS.Valid, err)

	// Atlas's refusals are *atlas.Error.
	_, err = c.UpdateEncryptionAtRest(ctx, project, &atlas.EncryptionAtRest{AzureKeyVault: &atlas.AzureKeyVault{Enabled: &yes}})
	var aerr *atlas.Error
	if errors.As(err, &aerr) {
		fmt.Println(aerr.HTTPStatus, aerr.ErrorCode, len(aerr.Fields), "fields")
	}
	fmt.Printf("%+v\n", c.Stats())
	// Output:
	// enable: <nil>
	// region: US_EAST_1 true <nil>
	// 400 MISSING_ATTRIBUTE 6 fields
	// {Challenges:1 StaleRetries:0 TokenFetches:0}
}

// A service account whose secret is a file that something else rotates (a
// mounted Kubernetes Secret, say): the client reads it at each token
// fetch, so it picks up a new secret without being rebuilt.
func ExampleWithServiceAccountSource() {
	dir, err := os.MkdirTemp("", "atlas-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	secretFile := filepath.Join(dir, "client-secret")
	if err := os.WriteFile(secretFile, []byte("mdb_sa_sk_example\n"), 0o600); err != nil {
		fmt.Println(err)
		return
	}
	emu := atlastest.NewEmulator(atlastest.EmulatorConfig{ClientID: "mdb_sa_id_example", ClientSecret: "mdb_sa_sk_example", AutoCreateGroups: true})
	srv := httptest.NewServer(emu)
	defer srv.Close()

	source := func() (id, secret string, err error) {
		b, err := os.ReadFile(secretFile)
		if err != nil {
			return "", "", err // names the file, never its content
		}
		return "mdb_sa_id_example", strings.TrimSuffix(string(b), "\n"), nil
	}
	c, err := atlas.NewClient(atlas.WithBaseURL(srv.URL), atlas.WithServiceAccountSource(source))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.CloseIdleConnections()
	_, err = c.GetEncryptionAtRest(context.Background(), "5f4e3d2c1b0a998877665544")
	fmt.Println("get:", err)
	// Output:
	// get: <nil>
}
