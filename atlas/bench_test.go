package atlas_test

import (
	"testing"

	"github.com/encryptiond/encryptiond/atlas"
)

// The benchmarks run against the in-process emulator over loopback HTTP,
// so they measure the client's whole path: digest signing with a reused
// challenge, the HTTP round trip, and JSON both ways. The custom metrics
// report digest challenges and stale resends per operation.

func BenchmarkGet(b *testing.B) {
	_, srv := newEmulator(b)
	c := newClient(b, srv)
	ctx := b.Context()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.GetEncryptionAtRest(ctx, groupID); err != nil {
			b.Fatalf("GetEncryptionAtRest() = %v", err)
		}
	}
	reportAuth(b, c)
}

func BenchmarkPatch(b *testing.B) {
	_, srv := newEmulator(b)
	c := newClient(b, srv)
	ctx := b.Context()
	if _, err := c.UpdateEncryptionAtRest(ctx, groupID, awsRoleConfig()); err != nil {
		b.Fatalf("UpdateEncryptionAtRest(enable) = %v", err)
	}
	regions := []string{"EU_WEST_1", "US_EAST_1"}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		u := &atlas.EncryptionAtRest{AWSKMS: &atlas.AWSKMSConfiguration{Region: &regions[i%2]}}
		if _, err := c.UpdateEncryptionAtRest(ctx, groupID, u); err != nil {
			b.Fatalf("UpdateEncryptionAtRest() = %v", err)
		}
	}
	reportAuth(b, c)
}

// BenchmarkGetParallel shows the cost of out-of-order nonce counts under
// concurrency (the emulator is lenient by default, as most servers).
func BenchmarkGetParallel(b *testing.B) {
	_, srv := newEmulator(b)
	c := newClient(b, srv)
	ctx := b.Context()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.GetEncryptionAtRest(ctx, groupID); err != nil {
				b.Errorf("GetEncryptionAtRest() = %v", err)
				return
			}
		}
	})
	reportAuth(b, c)
}

func reportAuth(b *testing.B, c *atlas.Client) {
	s := c.Stats()
	b.ReportMetric(float64(s.Challenges)/float64(b.N), "challenges/op")
	b.ReportMetric(float64(s.StaleRetries)/float64(b.N), "stale/op")
}
