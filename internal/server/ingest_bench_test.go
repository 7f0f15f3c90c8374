package server

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/activitybi/activitybi/internal/spool"
	"github.com/activitybi/activitybi/internal/upload"
)

// benchBatch is the batch size of the ingest benchmarks: what the load
// tool sends by default (bench/mcp.md).
const benchBatch = 1000

// benchIngestServer is a core with a real spool in a temp dir whose
// backpressure limit the benchmark never reaches (no uploader drains it).
func benchIngestServer(tb testing.TB, dur spool.Durability) *Server {
	tb.Helper()
	w, err := spool.Open(spool.Options{Dir: tb.TempDir(), Durability: dur, MaxPending: 1 << 40})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { w.Close() })
	tok, _ := NewToken()
	verify := func(tk string) (Principal, error) {
		if tk == tokA {
			return Principal{Customer: "alice", TokenID: "a"}, nil
		}
		return Principal{}, errors.New("unknown token")
	}
	s, err := New(Options{Addr: "127.0.0.1:0", Registry: prometheus.NewRegistry(), Warehouse: tableQuerier{},
		Uploader: func() upload.Status { return upload.Status{Started: true} }, AdminToken: tok,
		Appender: w, VerifyToken: verify})
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// benchBody is an NDJSON batch shaped like the load tool's default record,
// every activity_id new (seq counts on across calls), so that no record is
// answered "duplicate" and every one takes the full path to the spool.
func benchBody(dst []byte, seq *atomic.Int64) []byte {
	dst = dst[:0]
	for range benchBatch {
		n := strconv.AppendInt(nil, seq.Add(1), 10)
		dst = append(dst, `{"activity":"called_tool","activity_id":"load-bench-`...)
		dst = append(dst, n...)
		dst = append(dst, `","feature_json":{"tool":"activitybi-load","seq":`...)
		dst = append(dst, n...)
		dst = append(dst, "}}\n"...)
	}
	return dst
}

// BenchmarkEventsHandler is the CPU of POST /v1/events inside the core,
// per event: auth, body read, decode, validate, encode, one spool write per
// batch, the per-record results; no network. One op is a batch of 1,000.
func BenchmarkEventsHandler(b *testing.B) {
	for _, d := range []struct {
		name string
		dur  spool.Durability
	}{{"default", spool.DurabilityDefault}, {"sync", spool.DurabilitySync}} {
		b.Run(d.name, func(b *testing.B) {
			s := benchIngestServer(b, d.dur)
			var seq atomic.Int64
			bodies := make([][]byte, b.N)
			for i := range bodies {
				bodies[i] = benchBody(nil, &seq)
			}
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := processCPU(b)
			for i := 0; i < b.N; i++ {
				req := httptest.NewRequest(http.MethodPost, "/v1/events", bytes.NewReader(bodies[i]))
				req.Header.Set("Authorization", "Bearer "+tokA)
				req.Header.Set("Content-Type", "application/x-ndjson")
				rec := httptest.NewRecorder()
				s.events(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatalf("HTTP %d: %s", rec.Code, rec.Body.Bytes())
				}
			}
			cpu := processCPU(b) - cpu0
			b.StopTimer()
			events := float64(b.N * benchBatch)
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/events, "ns/event")
			// CPU time, all threads (the garbage collector's too): on a
			// shared machine, less disturbed by others than wall time.
			b.ReportMetric(float64(cpu.Nanoseconds())/events, "cpu-ns/event")
		})
	}
}

// processCPU is the user and system CPU this process has used.
func processCPU(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkEventsHTTP posts batches over loopback HTTP from c workers, each
// with one request in flight, and reports events/s and the request latency
// percentiles. Client and core share this process (and its CPU), so the
// rate is a floor for the core alone; the load tool against a real core is
// in bench/mcp.md.
func BenchmarkEventsHTTP(b *testing.B) {
	for _, c := range []int{1, 2, 4, 8} {
		b.Run("c"+strconv.Itoa(c), func(b *testing.B) {
			_, addr, _ := runBenchServer(b)
			url := "http://" + addr.String() + "/v1/events"
			tr := &http.Transport{MaxIdleConnsPerHost: c}
			defer tr.CloseIdleConnections()
			hc := &http.Client{Transport: tr}
			// Bodies are encoded before the clock starts: b.N batches
			// split over the workers.
			var seq atomic.Int64
			bodies := make([][]byte, b.N)
			for i := range bodies {
				bodies[i] = benchBody(nil, &seq)
			}
			var next atomic.Int64
			lat := make([]time.Duration, b.N)
			var wg sync.WaitGroup
			b.ResetTimer()
			start := time.Now()
			for range c {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						i := int(next.Add(1)) - 1
						if i >= len(bodies) {
							return
						}
						req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(bodies[i]))
						req.Header.Set("Authorization", "Bearer "+tokA)
						req.Header.Set("Content-Type", "application/x-ndjson")
						a := time.Now()
						resp, err := hc.Do(req)
						if err != nil {
							b.Error(err)
							return
						}
						io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						lat[i] = time.Since(a)
						if resp.StatusCode != http.StatusOK {
							b.Errorf("HTTP %d", resp.StatusCode)
							return
						}
					}
				}()
			}
			wg.Wait()
			el := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(b.N*benchBatch)/el.Seconds(), "events/s")
			slices.Sort(lat)
			at := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) }
			b.ReportMetric(at(0.50), "p50-µs")
			b.ReportMetric(at(0.99), "p99-µs")
		})
	}
}

// runBenchServer starts a core's HTTP side (benchIngestServer, default
// durability) on a loopback port until the benchmark ends; the context
// ends with it.
func runBenchServer(b *testing.B) (*Server, net.Addr, context.Context) {
	b.Helper()
	s := benchIngestServer(b, spool.DurabilityDefault)
	addr, err := s.Listen()
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	b.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			b.Error(err)
		}
	})
	return s, addr, ctx
}

// BenchmarkRecentIDsAdd looks up and then adds new ids in a full RecentIDs
// of the core's size (every Add evicts one), as a core taking events with
// caller-given ids does.
// The ids are made before the timer starts.
func BenchmarkRecentIDsAdd(b *testing.B) {
	r := NewRecentIDs(DefaultRecentIDs)
	ids := make([]string, DefaultRecentIDs+b.N)
	for i := range ids {
		ids[i] = "load-00e6c498-" + strconv.Itoa(i)
	}
	for _, id := range ids[:DefaultRecentIDs] {
		r.Add("event", "bench", id, time.Time{})
	}
	b.ResetTimer()
	for i := range b.N {
		id := ids[DefaultRecentIDs+i]
		if _, dup := r.Seen("event", "bench", id); dup {
			b.Fatal("a new id counted as a duplicate")
		}
		r.Add("event", "bench", id, time.Time{})
	}
}
