package query

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/activitybi/activitybi/internal/event"
	"github.com/activitybi/activitybi/internal/warehouse"
	"github.com/activitybi/activitybi/internal/warehouse/duckdb"
)

// reportPercentiles adds p50/p95/p99 of lat (in unit) to the output.
func reportPercentiles(b *testing.B, lat []time.Duration, unit time.Duration, name string) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	at := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))]) / float64(unit) }
	b.ReportMetric(at(0.50), "p50-"+name)
	b.ReportMetric(at(0.95), "p95-"+name)
	b.ReportMetric(at(0.99), "p99-"+name)
}

// BenchmarkSubmit times Submit from call to queued ticket: the test
// compiler (a map lookup and a JSON canonicalization), the budget check,
// the insert and the enqueue, with the write-behind store enabled.
// idle: no worker runs. busy: four workers run the queued tickets against
// the warehouse meanwhile (the CPU is shared with them).
func BenchmarkSubmit(b *testing.B) {
	for _, busy := range []bool{false, true} {
		name := map[bool]string{false: "idle", true: "busy"}[busy]
		b.Run(name, func(b *testing.B) {
			db := openWarehouse(b)
			e, _ := newEngine(b, db, Options{Store: db, QueueLimit: 1 << 30, Audit: func(AuditEntry) {},
				Budget: Budget{PerMinute: 1 << 30, Concurrent: 1 << 30, EngineSecondsPerDay: 1 << 30}})
			stop := func() {}
			if busy {
				stop = run(b, e)
			}
			ctx := context.Background()
			req := Request{Template: "count_of", Params: json.RawMessage(`{"activity":"called_tool"}`)}
			lat := make([]time.Duration, 0, 1<<16)
			i := 0
			b.ReportAllocs()
			for b.Loop() {
				// Many customers, so that no per-customer queue fills.
				customer := fmt.Sprintf("customer-%d", i%4096)
				i++
				t0 := time.Now()
				if _, err := e.Submit(ctx, customer, "bench", req); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(t0))
			}
			b.StopTimer()
			var sum time.Duration
			for _, d := range lat {
				sum += d
			}
			b.ReportMetric(float64(sum.Microseconds())/float64(len(lat)), "mean-µs")
			b.ReportMetric(float64(slices.Max(lat).Microseconds()), "max-µs")
			reportPercentiles(b, lat, time.Microsecond, "µs")
			stop()
		})
	}
}

// The 1M-event warehouse of BenchmarkTickets: 10 customers x 20
// activities, 100,000 events per customer over about 12 days, generated once
// and cached in the temp directory (benchVersion names the generation).
const (
	benchVersion   = 1
	benchEvents    = 1_000_000
	benchCustomers = 10
	benchTickets   = 50
)

var benchStart = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func benchWarehouse(b *testing.B) string {
	b.Helper()
	path := filepath.Join(os.TempDir(), fmt.Sprintf("activitybi-bench-query-%dk-v%d.duckdb", benchEvents/1000, benchVersion))
	if _, err := os.Stat(path); err == nil {
		return path
	}
	tmp := path + ".building"
	os.Remove(tmp)
	os.Remove(tmp + ".wal")
	ctx := context.Background()
	db, err := duckdb.Open(ctx, duckdb.Options{Path: tmp})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := db.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	tools := []string{"Read", "Edit", "Bash", "Grep", "Glob", "WebFetch", "search_docs"}
	models := []string{"claude-sonnet-4-5", "claude-opus-4-1", "claude-haiku-4-5"}
	const batch = 20_000
	rev := -0.0004
	for start := 0; start < benchEvents; start += batch {
		evs := make([]event.Event, batch)
		for j := range evs {
			k := start + j
			ts := benchStart.Add(time.Duration(k) * time.Second)
			evs[j] = event.Event{
				ActivityID: event.NewID(ts), TS: ts, Customer: fmt.Sprintf("customer-%d", k%benchCustomers),
				Activity: fmt.Sprintf("called_tool_%d", (k/benchCustomers)%20),
				Features: json.RawMessage(fmt.Sprintf(`{"tool":%q,"model":%q,"input_tokens":%d,"output_tokens":%d,"latency_ms":%d,"ok":%v}`,
					tools[k%len(tools)], models[k%len(models)], 1000+k%5000, 100+k%700, 20+(k*7919)%900, k%17 != 0)),
				RevenueImpact: &rev, ReceivedAt: ts, Source: event.SourceMCP,
			}
		}
		if _, err := db.Load(ctx, &warehouse.Batch{Events: evs}); err != nil {
			b.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		b.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		b.Fatal(err)
	}
	return path
}

func copyFile(b *testing.B, from, to string) {
	in, err := os.Open(from)
	if err != nil {
		b.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		b.Fatal(err)
	}
	if err := out.Close(); err != nil {
		b.Fatal(err)
	}
}

// benchTemplates are five questions a person asks about their usage, each
// over all of that customer's 100,000 events.
var benchTemplates = map[string]string{
	"by_activity": `SELECT activity, count(*) AS n, sum(revenue_impact) AS cost FROM claude_stream GROUP BY ALL ORDER BY n DESC`,
	"tool_latency": `SELECT feature_json->>'tool' AS tool, count(*) AS calls,
    quantile_cont((feature_json->>'latency_ms')::DOUBLE, 0.5) AS p50_ms,
    quantile_cont((feature_json->>'latency_ms')::DOUBLE, 0.95) AS p95_ms
FROM claude_stream GROUP BY ALL ORDER BY calls DESC`,
	"hourly": `SELECT date_trunc('hour', ts) AS hour, count(*) AS n FROM claude_stream GROUP BY ALL ORDER BY hour`,
	"tokens_by_model": `SELECT feature_json->>'model' AS model, sum((feature_json->>'input_tokens')::BIGINT) AS input_tokens,
    sum((feature_json->>'output_tokens')::BIGINT) AS output_tokens, avg(CASE WHEN (feature_json->>'ok')::BOOLEAN THEN 1 ELSE 0 END) AS ok_rate
FROM claude_stream GROUP BY ALL ORDER BY model`,
	"recent_failures": `SELECT ts, activity, feature_json->>'tool' AS tool, feature_json->>'latency_ms' AS latency_ms
FROM claude_stream WHERE NOT (feature_json->>'ok')::BOOLEAN ORDER BY ts DESC LIMIT 100`,
}

func benchCompile(req Request, now time.Time) (*Compiled, error) {
	q, ok := benchTemplates[req.Template]
	if !ok {
		return nil, fmt.Errorf("%w: no template %q", ErrInvalidRequest, req.Template)
	}
	return &Compiled{SQL: q, Key: []byte(req.Template), Name: req.Template}, nil
}

// BenchmarkTickets submits 50 tickets from 10 customers (five templates
// each, customer by customer: all of customer-0's first, customer-9's last)
// to an engine with the default four workers over the 1M-event warehouse,
// and waits for all of them. It reports throughput (tickets/s), the
// submit-to-finish latency of the tickets, and fairness: the mean latency
// of each customer's tickets, Jain's index over those means (1 = equal)
// and the ratio of the slowest customer's mean to the fastest's. With a
// FIFO queue customer-9 would wait for the 45 tickets before it; with the
// round-robin queue every customer's first ticket runs in the first round.
func BenchmarkTickets(b *testing.B) {
	src := benchWarehouse(b)
	names := slices.Sorted(func(yield func(string) bool) {
		for k := range benchTemplates {
			if !yield(k) {
				return
			}
		}
	})
	b.Run("engine", func(b *testing.B) { benchEngine(b, src, names, true) })
	b.Run("engine-nostore", func(b *testing.B) { benchEngine(b, src, names, false) })
	b.Run("direct", func(b *testing.B) { benchDirect(b, src, names, false) })
	b.Run("direct-rr", func(b *testing.B) { benchDirect(b, src, names, true) })
}

// openBenchCopy opens a private copy of the benchmark warehouse.
func openBenchCopy(b *testing.B, src string) (*duckdb.DB, string) {
	dir := b.TempDir()
	path := filepath.Join(dir, "w.duckdb")
	copyFile(b, src, path)
	ctx := context.Background()
	db, err := duckdb.Open(ctx, duckdb.Options{Path: path})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := db.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	return db, dir
}

// benchDirect is the baseline: the same 50 statements through
// CustomerQuery by four goroutines (the engine's worker count), no engine.
func benchDirect(b *testing.B, src string, names []string, roundRobin bool) {
	var rate, cpu []float64
	for b.Loop() {
		b.StopTimer()
		db, _ := openBenchCopy(b, src)
		ctx := context.Background()
		if _, err := db.CustomerQuery(ctx, "customer-0", benchTemplates["by_activity"], nil, MaxResultRows); err != nil {
			b.Fatal(err)
		}
		type job struct{ customer, q string }
		jobs := make(chan job, benchTickets)
		if roundRobin {
			for _, name := range names {
				for c := range benchCustomers {
					jobs <- job{fmt.Sprintf("customer-%d", c), benchTemplates[name]}
				}
			}
		} else {
			for c := range benchCustomers {
				for _, name := range names {
					jobs <- job{fmt.Sprintf("customer-%d", c), benchTemplates[name]}
				}
			}
		}
		close(jobs)
		b.StartTimer()
		start, cpu0 := time.Now(), processCPU()
		var wg sync.WaitGroup
		for range DefaultWorkers {
			wg.Go(func() {
				for j := range jobs {
					if _, err := db.CustomerQuery(ctx, j.customer, j.q, nil, MaxResultRows); err != nil {
						b.Error(err)
					}
				}
			})
		}
		wg.Wait()
		rate = append(rate, float64(benchTickets)/time.Since(start).Seconds())
		cpu = append(cpu, float64((processCPU()-cpu0).Milliseconds())/benchTickets)
		b.StopTimer()
		if err := db.Close(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(mean(rate), "tickets/s")
	b.ReportMetric(mean(cpu), "cpu-ms/ticket")
}

func benchEngine(b *testing.B, src string, names []string, store bool) {
	var all []time.Duration
	var jain, spread, rate, cpu []float64
	for b.Loop() {
		b.StopTimer()
		db, dir := openBenchCopy(b, src)
		ctx := context.Background()
		opts := Options{Runner: db, Compile: benchCompile, Dir: filepath.Join(dir, "results"),
			Budget: Budget{PerMinute: 100, Concurrent: 100, EngineSecondsPerDay: 100000}}
		if store {
			opts.Store = db
		}
		e, err := New(opts)
		if err != nil {
			b.Fatal(err)
		}
		// Warm DuckDB's customer connections and caches once, as a
		// running core would be.
		rctx, cancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		wg.Go(func() { e.Run(rctx) })
		warm, _ := e.Submit(ctx, "customer-0", "bench", Request{Template: "by_activity"})
		e.Wait(ctx, "customer-0", warm.ID, MaxWait, nil)
		b.StartTimer()

		type sub struct {
			customer, id string
			at           time.Time
		}
		var subs []sub
		start, cpu0 := time.Now(), processCPU()
		for c := range benchCustomers {
			customer := fmt.Sprintf("customer-%d", c)
			for _, name := range names {
				tk, err := e.Submit(ctx, customer, "bench", Request{Template: name})
				if err != nil {
					b.Fatal(err)
				}
				subs = append(subs, sub{customer, tk.ID, time.Now()})
			}
		}
		perCustomer := map[string][]time.Duration{}
		var last time.Time
		for _, s := range subs {
			tk, err := e.Wait(ctx, s.customer, s.id, MaxWait, nil)
			if err != nil || tk.State != StateSucceeded {
				b.Fatalf("ticket %+v: %v", tk, err)
			}
			// FinishedAt is the engine's clock (time.Now).
			d := tk.FinishedAt.Sub(s.at)
			all = append(all, d)
			perCustomer[s.customer] = append(perCustomer[s.customer], d)
			if tk.FinishedAt.After(last) {
				last = tk.FinishedAt
			}
		}
		b.StopTimer()
		cpu = append(cpu, float64((processCPU()-cpu0).Milliseconds())/float64(len(subs)))
		rate = append(rate, float64(len(subs))/last.Sub(start).Seconds())
		var sum, sumSq, lo, hi float64
		lo = math.Inf(1)
		for _, ds := range perCustomer {
			var m float64
			for _, d := range ds {
				m += d.Seconds()
			}
			m /= float64(len(ds))
			sum, sumSq = sum+m, sumSq+m*m
			lo, hi = min(lo, m), max(hi, m)
		}
		jain = append(jain, sum*sum/(float64(len(perCustomer))*sumSq))
		spread = append(spread, hi/lo)
		cancel()
		wg.Wait()
		if err := db.Close(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	reportPercentiles(b, all, time.Millisecond, "ms")
	b.ReportMetric(mean(rate), "tickets/s")
	b.ReportMetric(mean(cpu), "cpu-ms/ticket")
	b.ReportMetric(mean(jain), "jain")
	b.ReportMetric(mean(spread), "slowest/fastest-customer")
}

func mean(xs []float64) float64 {
	var s float64
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

// BenchmarkSampleMethods compares ways to take a 0.1% row sample of 10
// million rows of range() in DuckDB through CustomerQuery (the package doc
// says why the engine uses seeded bernoulli).
func BenchmarkSampleMethods(b *testing.B) {
	db := openWarehouse(b)
	const inner = `SELECT range AS i FROM range(10000000)`
	for _, m := range []struct{ name, q string }{
		{"bernoulli-seeded", `SELECT * FROM (` + inner + `) AS sampled USING SAMPLE 0.1000 PERCENT (bernoulli, 42)`},
		{"bernoulli", `SELECT * FROM (` + inner + `) AS sampled USING SAMPLE 0.1000 PERCENT (bernoulli)`},
		{"random", `SELECT * FROM (` + inner + `) AS sampled WHERE random() < 0.001`},
		{"hash", `SELECT * FROM (` + inner + `) AS sampled WHERE hash(sampled, 42) % 1000000 < 1000`},
		{"system", `SELECT * FROM (` + inner + `) AS sampled USING SAMPLE 0.1000 PERCENT (system, 42)`},
		{"count", `SELECT count(*) FROM (` + inner + `) AS counted`},
	} {
		b.Run(m.name, func(b *testing.B) {
			cpu0 := processCPU()
			var rows int
			for b.Loop() {
				t, err := db.CustomerQuery(context.Background(), "alice", m.q, nil, MaxResultRows)
				if err != nil {
					b.Fatal(err)
				}
				rows = len(t.Rows)
			}
			b.ReportMetric(float64((processCPU()-cpu0).Milliseconds())/float64(b.N), "cpu-ms/op")
			b.ReportMetric(float64(rows), "rows")
		})
	}
}

// BenchmarkResultMemory reports the Go heap held by MaxResultRows rows of
// two narrow result shapes, as a worker holds them before sampling.
func BenchmarkResultMemory(b *testing.B) {
	db := openWarehouse(b)
	for _, m := range []struct{ name, q string }{
		{"2-ints", `SELECT range AS i, range % 97 AS g FROM range(300000)`},
		{"5-mixed", `SELECT 'called_tool_' || (range % 20) AS activity, TIMESTAMP '2026-03-01' + to_seconds(range) AS ts, 'search_docs' AS tool, range * 1.5 AS latency, range AS n FROM range(300000)`},
	} {
		b.Run(m.name, func(b *testing.B) {
			var heap, encoded float64
			for b.Loop() {
				runtime.GC()
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				t, err := db.CustomerQuery(context.Background(), "alice", m.q, nil, MaxResultRows)
				if err != nil {
					b.Fatal(err)
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				heap = float64(after.HeapAlloc-before.HeapAlloc) / (1 << 20)
				enc, err := encodeRows(t.Rows, 1<<20)
				if err != nil || len(t.Rows) != MaxResultRows {
					b.Fatalf("%d rows, %v", len(t.Rows), err)
				}
				encoded = float64(enc.size) / (1 << 20)
				runtime.KeepAlive(t)
			}
			b.ReportMetric(heap, "heap-MiB")
			b.ReportMetric(encoded, "json-MiB")
		})
	}
}
