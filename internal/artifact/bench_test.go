package artifact

import (
	"bytes"
	"context"
	"io"
	"slices"
	"testing"
	"time"
)

// reportPercentiles adds p50/p95/p99 of the per-operation latencies.
func reportPercentiles(b *testing.B, prefix string, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	at := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) }
	b.ReportMetric(at(0.50), prefix+"p50-µs")
	b.ReportMetric(at(0.95), prefix+"p95-µs")
	b.ReportMetric(at(0.99), prefix+"p99-µs")
}

// BenchmarkPutGet stores a 100 KB PNG and reads it back, on the default
// folder (fsyncs included), in memory, and in gofakes3 over loopback HTTP
// (the S3 path's overhead, not S3's latency), all with the real DuckDB
// index.
// Put is two single-row warehouse writes and the blob write; Get is one
// customer-scoped warehouse read and the blob read.
func BenchmarkPutGet(b *testing.B) {
	for _, be := range append(backends, struct{ name, url string }{"s3", "s3"}) {
		b.Run(be.name, func(b *testing.B) {
			// b.Run calls this more than once: each call has its own
			// fake S3 and environment.
			url := be.url
			if url == "s3" {
				url = startFakeS3(b).storeURL(s3TestBucket)
			}
			s, _ := setup(b, Options{URL: url, Now: time.Now})
			png := testPNG(b, 100_000)
			ctx := context.Background()
			var puts, gets []time.Duration
			b.SetBytes(int64(len(png)))
			b.ReportAllocs()
			for b.Loop() {
				t0 := time.Now()
				m, err := s.Put(ctx, "bench", Meta{ContentType: "image/png", Kind: "card_png"}, bytes.NewReader(png))
				if err != nil {
					b.Fatal(err)
				}
				t1 := time.Now()
				_, r, err := s.Get(ctx, "bench", m.ID)
				if err != nil {
					b.Fatal(err)
				}
				n, err := io.Copy(io.Discard, r)
				r.Close()
				if err != nil || n != int64(len(png)) {
					b.Fatalf("read %d bytes, %v", n, err)
				}
				t2 := time.Now()
				puts, gets = append(puts, t1.Sub(t0)), append(gets, t2.Sub(t1))
			}
			reportPercentiles(b, "put-", puts)
			reportPercentiles(b, "get-", gets)
		})
	}
}
