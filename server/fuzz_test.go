package server

import (
	"encoding/json"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/encryptiond/encryptiond/atlas"
	encryptionv1 "github.com/encryptiond/encryptiond/gen/atlas/encryption/v1"
)

// FuzzUpdateRules runs the rules engine over arbitrary requests and current
// states. Invariants: no panic; a refused request is INVALID_ARGUMENT and
// sent nothing to Atlas; an accepted one sent at most one PATCH, carrying
// only the request's provider.
func FuzzUpdateRules(f *testing.F) {
	seed := func(body, state string, validateOnly bool) {
		cfg := &encryptionv1.ProviderConfig{}
		if err := protojson.Unmarshal([]byte(body), cfg); err != nil {
			f.Fatalf("seed %s: %v", body, err)
		}
		req, err := proto.Marshal(&encryptionv1.UpdateEncryptionAtRestRequest{GroupId: testGroup, Config: cfg, ValidateOnly: validateOnly})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(req, []byte(state))
	}
	enabled := `{"awsKms": {"enabled": true, "valid": true, "region": "US_EAST_1"}, "azureKeyVault": {"enabled": true, "roleId": "` + roleID + `"}, "googleCloudKms": {"enabled": true, "roleId": "` + roleID + `"}}`
	for _, body := range []string{awsWhole, azWhole, gcpWhole, `{"awsKms": {"enabled": false}}`, `{"awsKms": {"region": "EU_WEST_1"}}`, `{"azureKeyVault": {"secret": "s"}}`, `{"googleCloudKms": {"serviceAccountKey": "{}"}}`, `{}`} {
		seed(body, `{}`, false)
		seed(body, enabled, false)
		seed(body, enabled, true)
	}

	f.Fuzz(func(t *testing.T, reqBytes, stateBytes []byte) {
		req := &encryptionv1.UpdateEncryptionAtRestRequest{}
		if err := proto.Unmarshal(reqBytes, req); err != nil {
			return
		}
		var state atlas.EncryptionAtRest
		if err := json.Unmarshal(stateBytes, &state); err != nil {
			return
		}
		fake := &fakeAtlas{state: state}
		_, err := New(fake).UpdateEncryptionAtRest(t.Context(), req)
		_, patches := fake.calls()
		if err != nil {
			if code := status.Code(err); code != codes.InvalidArgument {
				t.Fatalf("Update = %v, want INVALID_ARGUMENT or success", err)
			}
			if len(patches) > 0 {
				t.Fatalf("Update = %v, and sent %v: a refused request must send nothing", err, patches)
			}
			return
		}
		if len(patches) > 1 || (req.GetValidateOnly() && len(patches) > 0) {
			t.Fatalf("Update sent %v, want at most one PATCH and none when validating", patches)
		}
		for _, p := range patches {
			var doc map[string]json.RawMessage
			if err := json.Unmarshal([]byte(p), &doc); err != nil || len(doc) != 1 {
				t.Fatalf("Update sent %s, want exactly one provider document", p)
			}
		}
	})
}
