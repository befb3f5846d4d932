package daemon

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	encryptionv1 "github.com/encryptiond/encryptiond/gen/atlas/encryption/v1"
)

// TestFleetUnderMutualTLS lists every project over gRPC and REST as callers
// the policy allows different projects (the -dev projects): each sees
// exactly the projects it could Get. A watch of the configuration gets the
// decisions of a Get.
func TestFleetUnderMutualTLS(t *testing.T) {
	t.Parallel()
	const auditor, ledger, ops, nobody = "spiffe://example.org/auditor", "spiffe://example.org/ledger", "spiffe://example.org/ops", "spiffe://example.org/nobody"
	policy := "callers:\n" +
		"  - identity: " + auditor + "\n    read: [\"*\"]\n" +
		"  - identity: " + ledger + "\n    read: [\"" + DevInvalidKeyGroupID + "\"]\n" +
		"  - identity: " + ops + "\n    write: [\"" + DevBlockedGroupID + "\", \"" + SampleGroupID + "\"]\n"
	d, ca, roots := startMutualTLS(t, policy)
	tlsConfig := func(id string) *tls.Config {
		cfg := &tls.Config{RootCAs: roots}
		if id != "" {
			cfg.Certificates = []tls.Certificate{ca.clientCert(t, id)}
		}
		return cfg
	}
	client := func(id string) encryptionv1.EncryptionServiceClient {
		conn, err := grpc.NewClient(d.addrs.GRPC.String(), grpc.WithTransportCredentials(credentials.NewTLS(tlsConfig(id))))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return encryptionv1.NewEncryptionServiceClient(conn)
	}
	names := func(page *encryptionv1.ListEncryptionAtRestResponse) []string {
		var out []string
		for _, p := range page.GetProjects() {
			out = append(out, p.GetGroupName())
		}
		return out
	}

	all := make([]string, len(devProjects))
	for i, p := range devProjects {
		all[i] = p.name
	}
	tests := []struct {
		identity string
		want     []string
	}{
		{auditor, all},
		{ledger, []string{"ledger"}},
		{ops, []string{"sandbox", "orders"}},
		{nobody, nil},
	}
	for _, tt := range tests {
		page, err := client(tt.identity).ListEncryptionAtRest(t.Context(), &encryptionv1.ListEncryptionAtRestRequest{})
		if err != nil {
			t.Fatalf("gRPC ListEncryptionAtRest as %s = %v", tt.identity, err)
		}
		if got := names(page); !slices.Equal(got, tt.want) {
			t.Errorf("gRPC: %s lists %v, want %v", tt.identity, got, tt.want)
		}

		hc := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsConfig(tt.identity)}}
		res, err := hc.Get("https://" + d.addrs.HTTP.String() + "/v1/groups/-/encryptionAtRest")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		var rest struct {
			Projects []struct {
				GroupName string `json:"groupName"`
			} `json:"projects"`
		}
		if res.StatusCode != http.StatusOK || json.Unmarshal(body, &rest) != nil {
			t.Fatalf("REST list as %s = %d %s", tt.identity, res.StatusCode, body)
		}
		var got []string
		for _, p := range rest.Projects {
			got = append(got, p.GroupName)
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("REST: %s lists %v, want %v", tt.identity, got, tt.want)
		}
	}
	if _, err := client("").ListEncryptionAtRest(t.Context(), &encryptionv1.ListEncryptionAtRestRequest{}); status.Code(err) != codes.Unauthenticated {
		t.Errorf("ListEncryptionAtRest without a certificate = %v, want Unauthenticated", err)
	}

	watch := func(id, group string) error {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		stream, err := client(id).WatchEncryptionAtRest(ctx, &encryptionv1.WatchEncryptionAtRestRequest{GroupId: group})
		if err != nil {
			return err
		}
		_, err = stream.Recv()
		return err
	}
	if err := watch(ledger, DevInvalidKeyGroupID); err != nil {
		t.Errorf("a reader's watch of its project = %v", err)
	}
	if err := watch(ledger, DevBlockedGroupID); status.Code(err) != codes.PermissionDenied {
		t.Errorf("a watch of a project the caller may not read = %v, want PermissionDenied", err)
	}
	code, line := restWatch(t, t.Context(), &http.Client{Transport: &http.Transport{TLSClientConfig: tlsConfig(ledger)}},
		"https://"+d.addrs.HTTP.String()+"/v1/groups/"+DevBlockedGroupID+"/encryptionAtRest:watch")
	if code != http.StatusForbidden {
		t.Errorf("REST watch of a project the caller may not read = %d %v, want 403", code, line)
	}
}
