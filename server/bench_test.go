package server

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/encryptiond/encryptiond/atlas"
	encryptionv1 "github.com/encryptiond/encryptiond/gen/atlas/encryption/v1"
	"github.com/encryptiond/encryptiond/server/telemetry"
)

// Benchmarks of the service's own work on a call, without any network:
// Atlas is fakeAtlas. Run with
//
//	go test ./server -run '^$' -bench . -benchmem
//
// The whole path, over gRPC and REST against the emulator, is measured by
// `make bench` and profiled by cmd/encryptiond-bench's benchmarks.

func benchState() atlas.EncryptionAtRest {
	on, region, cmk := true, "US_EAST_1", "arn:aws:kms:us-east-1:123456789012:key/bench"
	return atlas.EncryptionAtRest{
		AWSKMS:         &atlas.AWSKMSConfiguration{Enabled: &on, Valid: &on, Region: &region, CustomerMasterKeyID: &cmk},
		AzureKeyVault:  &atlas.AzureKeyVault{},
		GoogleCloudKMS: &atlas.GoogleCloudKMS{},
	}
}

func benchUpdates() map[string]*encryptionv1.UpdateEncryptionAtRestRequest {
	on, off := true, false
	region, cmk, role := "EU_WEST_1", "arn:aws:kms:us-east-1:123456789012:key/bench", "5f3b1c2d3e4f5a6b7c8d9e0f"
	env, sub, rg, vault := "AZURE", "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d", "rg", "vault"
	key, client, tenant, secret := "https://vault.vault.azure.net/keys/key/d891821e3d364e9eb88fbd3d11807b86", "f0e1d2c3-b4a5-4968-8776-a5b4c3d2e1f0", "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d", "s3cret"
	aws := func(m *encryptionv1.AwsKms) *encryptionv1.UpdateEncryptionAtRestRequest {
		return &encryptionv1.UpdateEncryptionAtRestRequest{GroupId: "0123456789abcdef01234567",
			Config: &encryptionv1.ProviderConfig{Provider: &encryptionv1.ProviderConfig_AwsKms{AwsKms: m}}}
	}
	return map[string]*encryptionv1.UpdateEncryptionAtRestRequest{
		"enable-aws": aws(&encryptionv1.AwsKms{Enabled: &on, CustomerMasterKeyId: &cmk, Region: &region, RoleId: &role}),
		"partial":    aws(&encryptionv1.AwsKms{Region: &region}),
		"disable":    aws(&encryptionv1.AwsKms{Enabled: &off}),
		"enable-azure": {GroupId: "0123456789abcdef01234567", Config: &encryptionv1.ProviderConfig{Provider: &encryptionv1.ProviderConfig_AzureKeyVault{
			AzureKeyVault: &encryptionv1.AzureKeyVault{Enabled: &on, AzureEnvironment: &env, SubscriptionId: &sub, ResourceGroupName: &rg,
				KeyVaultName: &vault, KeyIdentifier: &key, ClientId: &client, TenantId: &tenant, Secret: &secret}}}},
	}
}

// BenchmarkCheckRequest is the rule checks that need only the request.
func BenchmarkCheckRequest(b *testing.B) {
	for name, req := range benchUpdates() {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := checkRequest(req); err != nil {
					b.Fatalf("checkRequest() = %v", err)
				}
			}
		})
	}
}

// BenchmarkTranslate is request → Atlas body → JSON on the wire, and
// Atlas's answer → API resource.
func BenchmarkTranslate(b *testing.B) {
	for name, req := range benchUpdates() {
		r, err := checkRequest(req)
		if err != nil {
			b.Fatal(err)
		}
		b.Run("patch/"+name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := json.Marshal(r.patch()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	state := benchState()
	body, err := json.Marshal(&state)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("decode-answer", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var out atlas.EncryptionAtRest
			if err := json.Unmarshal(body, &out); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("toProto", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = toProto(&state)
		}
	})
}

// BenchmarkGet is the service's Get: singleflight, translation and the
// valid observer, with a fake Atlas that answers at once.
func BenchmarkGet(b *testing.B) {
	newMetrics := func(b *testing.B) *telemetry.Metrics {
		m, err := telemetry.NewMetrics(prometheus.NewRegistry())
		if err != nil {
			b.Fatal(err)
		}
		return m
	}
	tests := []struct {
		name   string
		groups int // distinct projects cycled through
		opts   func(b *testing.B) []Option
	}{
		{"no-observer", 1, func(*testing.B) []Option { return nil }},
		{"valid-gauge/1-project", 1, func(b *testing.B) []Option { return []Option{WithValidObserver(newMetrics(b).ObserveValid)} }},
		{"valid-gauge/10000-projects", 10000, func(b *testing.B) []Option { return []Option{WithValidObserver(newMetrics(b).ObserveValid)} }},
	}
	for _, tt := range tests {
		b.Run(tt.name, func(b *testing.B) {
			s := New(&fakeAtlas{state: benchState()}, tt.opts(b)...)
			reqs := make([]*encryptionv1.GetEncryptionAtRestRequest, tt.groups)
			for i := range reqs {
				reqs[i] = &encryptionv1.GetEncryptionAtRestRequest{GroupId: fmt.Sprintf("%024x", i)}
			}
			ctx := b.Context()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, err := s.GetEncryptionAtRest(ctx, reqs[i%len(reqs)]); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// BenchmarkUpdate is the service's Update with a fake Atlas: a partial
// update (read, check, patch) and a disable (patch only).
func BenchmarkUpdate(b *testing.B) {
	reqs := benchUpdates()
	for _, name := range []string{"partial", "disable"} {
		b.Run(name, func(b *testing.B) {
			s := New(&fakeAtlas{state: benchState()})
			ctx := b.Context()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.UpdateEncryptionAtRest(ctx, reqs[name]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
