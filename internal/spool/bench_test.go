package spool

import (
	"fmt"
	"math"
	"os"
	"slices"
	"sync"
	"testing"
	"time"
)

// benchPayload is a typical called_tool event as the event package encodes it.
var benchPayload = []byte(`{"activity_id":"01JD3Q8V7Z6XKJ2M4N5P6Q7R8S","ts":"2026-11-25T22:44:01.123456Z","customer":"alice@example.com",` +
	`"activity":"called_tool","feature_json":{"tool":"submit_query","server":"activitybi","duration_ms":12.5,"ok":true,` +
	`"input_bytes":412,"output_bytes":2048},"revenue_impact":-0.0012,"_source":"mcp","_received_at":"2026-11-25T22:44:01.124Z"}`)

// benchDir is where benchmarks write: $SPOOL_BENCH_DIR (a real disk, for
// meaningful fsync numbers) or the test temp dir.
func benchDir(b *testing.B) string {
	root := os.Getenv("SPOOL_BENCH_DIR")
	if root == "" {
		return b.TempDir()
	}
	dir, err := os.MkdirTemp(root, "spool-bench-")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func benchWriter(b *testing.B, d Durability) *Writer {
	w, err := Open(Options{Dir: benchDir(b), Durability: d, MaxPending: math.MaxInt32})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { w.Close() })
	return w
}

func BenchmarkAppend(b *testing.B) {
	for _, d := range []Durability{DurabilityDefault, DurabilitySync} {
		b.Run(d.String(), func(b *testing.B) {
			w := benchWriter(b, d)
			b.ReportAllocs()
			b.SetBytes(int64(recordLen("event", benchPayload)))
			for b.Loop() {
				if err := w.Append("event", benchPayload); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkAppendLatency times every Append of b.N, spread over 1 or 8
// goroutines appending as fast as they can, and reports the latency
// distribution and the sustained rate. The rate=10000 cases pace appends
// from 64 goroutines (concurrent requests) at the product's sustained target
// of 10K events/s instead.
func BenchmarkAppendLatency(b *testing.B) {
	appendTo := func(b *testing.B, d Durability) func() error {
		w := benchWriter(b, d)
		return func() error { return w.Append("event", benchPayload) }
	}
	for _, d := range []Durability{DurabilityDefault, DurabilitySync} {
		for _, g := range []int{1, 8} {
			b.Run(fmt.Sprintf("%s/goroutines=%d", d, g), func(b *testing.B) {
				measure(b, appendTo(b, d), g, 0)
			})
		}
		b.Run(fmt.Sprintf("%s/goroutines=64/rate=10000", d), func(b *testing.B) {
			measure(b, appendTo(b, d), 64, 10000)
		})
	}
	// The floor of this measurement on this machine: the same pacing and
	// timing around an empty critical section instead of an Append.
	b.Run("noop/goroutines=64/rate=10000", func(b *testing.B) {
		var mu sync.Mutex
		measure(b, func() error { mu.Lock(); mu.Unlock(); return nil }, 64, 10000)
	})
}

// measure runs op b.N times on g goroutines, at rate ops per second in total
// (0 = as fast as they can), and reports latency quantiles and the rate.
func measure(b *testing.B, op func() error, g int, rate float64) {
	per := (b.N + g - 1) / g
	lat := make([][]time.Duration, g)
	for i := range lat {
		lat[i] = make([]time.Duration, 0, per)
	}
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for i := range g {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range per {
				if rate > 0 {
					due := start.Add(time.Duration(float64(k*g+i) / rate * float64(time.Second)))
					if d := time.Until(due); d > 0 {
						time.Sleep(d)
					}
				}
				t0 := time.Now()
				if err := op(); err != nil {
					b.Error(err)
					return
				}
				lat[i] = append(lat[i], time.Since(t0))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	reportLatencies(b, slices.Concat(lat...), elapsed, "events/s")
}

func reportLatencies(b *testing.B, all []time.Duration, elapsed time.Duration, rateUnit string) {
	slices.Sort(all)
	q := func(p float64) float64 { return float64(all[min(len(all)-1, int(p*float64(len(all))))].Nanoseconds()) }
	b.ReportMetric(q(0.50), "p50-ns")
	b.ReportMetric(q(0.95), "p95-ns")
	b.ReportMetric(q(0.99), "p99-ns")
	b.ReportMetric(q(0.999), "p99.9-ns")
	b.ReportMetric(float64(all[len(all)-1].Nanoseconds()), "max-ns")
	b.ReportMetric(float64(len(all))/elapsed.Seconds(), rateUnit)
}

// BenchmarkFsyncFloor is the device's floor for sync durability: write one
// record's bytes and fsync, without the spool.
func BenchmarkFsyncFloor(b *testing.B) {
	f, err := os.Create(benchDir(b) + "/floor")
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	line := appendRecord(nil, "event", benchPayload)
	lat := make([]time.Duration, 0, b.N)
	start := time.Now()
	for b.Loop() {
		t0 := time.Now()
		if _, err := f.Write(line); err != nil {
			b.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	reportLatencies(b, lat, time.Since(start), "fsyncs/s")
}

// BenchmarkReadSegment measures the uploader's read path over a closed
// segment of typical records.
func BenchmarkReadSegment(b *testing.B) {
	dir := benchDir(b)
	w, err := Open(Options{Dir: dir, MaxPending: math.MaxInt32})
	if err != nil {
		b.Fatal(err)
	}
	const n = 20000
	for range n {
		if err := w.Append("event", benchPayload); err != nil {
			b.Fatal(err)
		}
	}
	path := segmentPath(dir, w.SegmentID(), true)
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	fi, _ := os.Stat(path)
	b.SetBytes(fi.Size())
	b.ReportAllocs()
	buf := make([]byte, DefaultReadBytes)
	for b.Loop() {
		got := 0
		for off := int64(0); ; {
			es, next, err := ReadSegment(path, off, DefaultReadBytes, buf)
			if err != nil {
				b.Fatal(err)
			}
			if next == off {
				break
			}
			got += len(es)
			off = next
		}
		if got != n {
			b.Fatalf("read %d records", got)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "records/s")
}
