package gateway

import (
	"bytes"
	"net/http/httptest"
	"testing"

	"google.golang.org/protobuf/proto"

	encryptionv1 "github.com/encryptiond/encryptiond/gen/atlas/encryption/v1"
)

// Benchmarks of the gateway's own work on a REST call: JSON out (the
// answer, and the compaction or indentation that flush applies to every
// answer), JSON in (an update body). Run with
//
//	go test ./server/gateway -run '^$' -bench . -benchmem

func benchMarshaler(*testing.B) jsonMarshaler { return jsonMarshaler{} }

func benchAnswer() *encryptionv1.EncryptionAtRest {
	on, off := true, false
	region, cmk := "US_EAST_1", "arn:aws:kms:us-east-1:123456789012:key/bench"
	return &encryptionv1.EncryptionAtRest{
		AwsKms:                &encryptionv1.AwsKmsState{Enabled: &on, Valid: &on, Region: &region, CustomerMasterKeyId: &cmk},
		AzureKeyVault:         &encryptionv1.AzureKeyVaultState{Enabled: &off, Valid: &off},
		GoogleCloudKms:        &encryptionv1.GoogleCloudKmsState{Enabled: &off, Valid: &off},
		EnabledForSearchNodes: &off,
	}
}

func BenchmarkMarshalAnswer(b *testing.B) {
	m := benchMarshaler(b)
	msg := benchAnswer()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Marshal(msg); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFlush is what a REST answer goes through after the ServeMux
// when pretty or envelope asks for it to be rewritten; without them it is
// written straight through.
func BenchmarkFlush(b *testing.B) {
	body, err := benchMarshaler(b).Marshal(benchAnswer())
	if err != nil {
		b.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		f    format
	}{{"pretty", format{pretty: true}}, {"envelope", format{envelope: true}}} {
		b.Run(tt.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				rec := &recorder{ResponseWriter: httptest.NewRecorder(), buf: &bytes.Buffer{}}
				rec.Header().Set("Content-Type", "application/json")
				_, _ = rec.Write(body)
				rec.flush(tt.f)
			}
		})
	}
}

// BenchmarkDecodeUpdateBody is an update body's way in: checkBody's
// strict checks, then the marshaler's decoding.
func BenchmarkDecodeUpdateBody(b *testing.B) {
	m := benchMarshaler(b)
	md := (*encryptionv1.ProviderConfig)(nil).ProtoReflect().Descriptor()
	for _, tt := range []struct{ name, body string }{
		{"partial", `{"awsKms": {"region": "EU_WEST_1"}}`},
		{"enable-azure", `{"azureKeyVault": {"enabled": true, "azureEnvironment": "AZURE", "clientID": "f0e1d2c3-b4a5-4968-8776-a5b4c3d2e1f0", "tenantID": "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d", "secret": "s", "subscriptionID": "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d", "resourceGroupName": "rg", "keyVaultName": "vault", "keyIdentifier": "https://vault.vault.azure.net/keys/key/d891821e3d364e9eb88fbd3d11807b86"}}`},
	} {
		data := []byte(tt.body)
		b.Run(tt.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if ref := checkBody(data, md, "config"); ref != nil {
					b.Fatal(ref.message)
				}
				cfg := new(encryptionv1.ProviderConfig)
				if err := m.Unmarshal(data, cfg); err != nil {
					b.Fatal(err)
				}
				proto.Reset(cfg)
			}
		})
	}
}
