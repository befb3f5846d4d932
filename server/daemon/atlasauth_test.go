package daemon

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/encryptiond/encryptiond/atlas/atlastest"
	encryptionv1 "github.com/encryptiond/encryptiond/gen/atlas/encryption/v1"
)

// TestCredentialsMetrics: a digest challenge is counted apart from the 401s
// that refuse encryptiond's credentials; wrong credentials turn the
// credentials gauge to 0 and log one ERROR record, however many calls fail.
func TestCredentialsMetrics(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		privateKey   string
		wantCode     codes.Code
		wantMetrics  []string
		wantMissing  []string
		wantRefusals int // ERROR records saying Atlas refuses the credentials
	}{
		{
			name: "right key", privateKey: "priv", wantCode: codes.OK,
			wantMetrics: []string{"encryptiond_atlas_digest_challenges_total 1", "encryptiond_atlas_credentials_accepted 1"},
			wantMissing: []string{`status="401"`},
		},
		{
			name: "wrong key", privateKey: "wrong-priv", wantCode: codes.Internal,
			wantMetrics:  []string{"encryptiond_atlas_digest_challenges_total 3", `status="401"`, "encryptiond_atlas_credentials_accepted 0"},
			wantRefusals: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, srv := atlastest.NewServer(t, atlastest.EmulatorConfig{PublicKey: "pub", PrivateKey: "priv", AutoCreateGroups: true})
			d := startDaemon(t, Config{AtlasBaseURL: srv.URL, Credentials: Credentials{PublicKey: "pub", PrivateKey: tt.privateKey}, LogFormat: "json", AtlasRetryMaxElapsed: time.Second})
			c := encryptionv1.NewEncryptionServiceClient(d.grpcConn(t))
			for range 3 {
				_, err := c.GetEncryptionAtRest(t.Context(), &encryptionv1.GetEncryptionAtRestRequest{GroupId: testGroup})
				if status.Code(err) != tt.wantCode {
					t.Fatalf("GetEncryptionAtRest() = %v, want %v", err, tt.wantCode)
				}
			}
			_, metrics := httpDo(t, &http.Client{Timeout: 10 * time.Second}, "GET", d.url("/metrics"), "")
			var atlasLines []string
			for line := range strings.Lines(metrics) {
				if strings.HasPrefix(line, "encryptiond_atlas_") {
					atlasLines = append(atlasLines, line)
				}
			}
			joined := strings.Join(atlasLines, "")
			for _, want := range tt.wantMetrics {
				if !strings.Contains(joined, want) {
					t.Errorf("/metrics lacks %s:\n%s", want, joined)
				}
			}
			for _, unwanted := range tt.wantMissing {
				if strings.Contains(joined, unwanted) {
					t.Errorf("/metrics has %s:\n%s", unwanted, joined)
				}
			}
			var refusals int
			for _, rec := range d.log.records(t) {
				if rec["level"] == "ERROR" && strings.HasPrefix(rec["msg"].(string), "Atlas refuses encryptiond's credentials") {
					refusals++
				}
			}
			if refusals != tt.wantRefusals {
				t.Errorf("%d ERROR records about refused credentials, want %d", refusals, tt.wantRefusals)
			}
			if strings.Contains(d.log.String(), tt.privateKey) {
				t.Errorf("the log shows the private key")
			}
		})
	}
}
