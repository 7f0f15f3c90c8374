package cache

import (
	"context"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// benchValue is about the size of a default get_context answer (2,000
// tokens).
var benchValue = strings.Repeat("x", 8<<10)

func benchLoad(context.Context) (Entry, error) {
	return Entry{Value: []byte(benchValue), Version: 1, AsOf: time.Now()}, nil
}

// reportPercentiles adds p50/p95/p99 of the per-Get latencies to the
// benchmark's output.
func reportPercentiles(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	at := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Nanoseconds()) }
	b.ReportMetric(at(0.50), "p50-ns")
	b.ReportMetric(at(0.95), "p95-ns")
	b.ReportMetric(at(0.99), "p99-ns")
}

// BenchmarkGetL1: a hot entry in this process's L1.
func BenchmarkGetL1(b *testing.B) {
	c := newCache(b, Options{})
	ctx := context.Background()
	if _, _, err := c.Get(ctx, "bench", "scope", benchLoad); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, src, err := c.Get(ctx, "bench", "scope", benchLoad); err != nil || src.Tier != TierL1 {
			b.Fatalf("%v %v", src, err)
		}
	}
}

func BenchmarkGetL1Parallel(b *testing.B) {
	c := newCache(b, Options{})
	ctx := context.Background()
	scopes := []string{"a", "b", "c", "d", "e", "f", "g", "h"}
	for _, s := range scopes {
		if _, _, err := c.Get(ctx, "bench", s, benchLoad); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			i++
			if _, src, err := c.Get(ctx, "bench", scopes[i%len(scopes)], benchLoad); err != nil || src.Tier != TierL1 {
				b.Errorf("%v %v", src, err)
				return
			}
		}
	})
}

// BenchmarkGetL1Latency times each L1 Get (the timer's own cost, ~20-40 ns,
// is included).
func BenchmarkGetL1Latency(b *testing.B) {
	c := newCache(b, Options{})
	ctx := context.Background()
	if _, _, err := c.Get(ctx, "bench", "scope", benchLoad); err != nil {
		b.Fatal(err)
	}
	lat := make([]time.Duration, 0, 1<<20)
	for b.Loop() {
		t0 := time.Now()
		_, _, err := c.Get(ctx, "bench", "scope", benchLoad)
		d := time.Since(t0)
		if err != nil {
			b.Fatal(err)
		}
		if len(lat) < cap(lat) {
			lat = append(lat, d)
		}
	}
	reportPercentiles(b, lat)
}

// BenchmarkGetL2 is a latency loop over Redis on loopback: the clock moves
// past L1TTL before every Get, so L1 never answers and L2 always does.
func BenchmarkGetL2(b *testing.B) {
	r := startRedis(b)
	var now atomic.Int64
	now.Store(time.Now().UnixNano())
	clock := func() time.Time { return time.Unix(0, now.Load()) }
	c := newCache(b, Options{RedisURL: r.URL(), Now: clock})
	waitSubscribed(b, c)
	ctx := context.Background()
	if _, _, err := c.Get(ctx, "bench", "scope", benchLoad); err != nil {
		b.Fatal(err)
	}
	eventually(b, 2*time.Second, "write-back", func() bool { return l2Exists(b, r, DefaultNamespace, "bench", "scope") })
	lat := make([]time.Duration, 0, 1<<20)
	for b.Loop() {
		now.Add(int64(DefaultL1TTL + time.Second))
		t0 := time.Now()
		_, src, err := c.Get(ctx, "bench", "scope", benchLoad)
		d := time.Since(t0)
		if err != nil || src.Tier != TierL2 {
			b.Fatalf("%v %v", src, err)
		}
		if len(lat) < cap(lat) {
			lat = append(lat, d)
		}
	}
	reportPercentiles(b, lat)
}

// BenchmarkGetLoad: L1 and L2 miss (a new key each time) and a load that
// costs nothing: the cache's own cost on the cold path.
func BenchmarkGetLoad(b *testing.B) {
	c := newCache(b, Options{})
	ctx := context.Background()
	var i atomic.Int64
	lat := make([]time.Duration, 0, 1<<20)
	for b.Loop() {
		scope := "s" + strings.Repeat("x", int(i.Add(1)%7)) + time.Now().String()
		t0 := time.Now()
		_, src, err := c.Get(ctx, "bench", scope, benchLoad)
		d := time.Since(t0)
		if err != nil || src.Tier != TierLoad {
			b.Fatalf("%v %v", src, err)
		}
		if len(lat) < cap(lat) {
			lat = append(lat, d)
		}
	}
	reportPercentiles(b, lat)
}
