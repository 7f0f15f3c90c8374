package duckdb

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkQueryThreads measures what DuckDB's thread count costs readers,
// for the default of warehouse.threads (NumCPU-1, min 1; see warehouse.ThreadsFor).
// Numbers and command in bench/warehouse.md ("warehouse.threads defaults to
// NumCPU-1"):
//
//	go test -run '^$' -bench QueryThreads -benchtime 40x ./internal/warehouse/duckdb/
//
// Two warehouses with the same 1M events over 100 customers, one opened
// with each thread count of $ACTIVITYBI_BENCH_THREADS (default "1,2"). Every
// iteration runs the query once on each warehouse in turn (interleaved, so
// other load on a shared machine falls on both alike) and reports, per
// thread count, latency p50/p95/p99 and the process CPU per query:
//
//   - Scan: the analyst's full-table aggregate through Query, GROUP BY
//     activity with count(DISTINCT customer) and a JSON extraction, where
//     DuckDB can split the scan across threads.
//   - Customer: one customer's count through CustomerQuery (the read path
//     of get_context and the SafeSQL templates), customers in turn.
func BenchmarkQueryThreads(b *testing.B) {
	const rows, customers = 1_000_000, 100
	ctx := context.Background()
	counts := []int{1, 2}
	if v := os.Getenv("ACTIVITYBI_BENCH_THREADS"); v != "" {
		counts = counts[:0]
		for _, s := range strings.Split(v, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil || n < 1 {
				b.Fatalf("ACTIVITYBI_BENCH_THREADS=%q: want thread counts like 1,2", v)
			}
			counts = append(counts, n)
		}
	}
	dbs := make([]*DB, len(counts))
	for i, n := range counts {
		db, err := Open(ctx, Options{Path: filepath.Join(b.TempDir(), fmt.Sprintf("t%d.duckdb", n)), Threads: n})
		if err != nil {
			b.Fatal(err)
		}
		defer db.Close()
		if _, err := db.Migrate(ctx); err != nil {
			b.Fatal(err)
		}
		seedCustomers(b, db, rows, customers)
		dbs[i] = db
	}
	const scan = `SELECT activity, count(*) AS n, count(DISTINCT customer) AS customers,
       avg(CAST(feature_json->>'latency_ms' AS INTEGER)) AS latency
FROM claude_stream GROUP BY activity ORDER BY activity`
	queries := []struct {
		name string
		run  func(db *DB, i int) error
	}{
		{"Scan", func(db *DB, _ int) error {
			tab, err := db.Query(ctx, scan, 0)
			if err != nil {
				return err
			}
			var total int64
			for _, r := range tab.Rows {
				total += r[1].(int64)
			}
			if len(tab.Rows) != 20 || total != rows {
				return fmt.Errorf("scan: %d groups, %d rows; want 20, %d", len(tab.Rows), total, rows)
			}
			return nil
		}},
		{"Customer", func(db *DB, i int) error {
			tab, err := db.CustomerQuery(ctx, fmt.Sprintf("customer-%d", i%customers), "SELECT count(*) FROM claude_stream", nil, 0)
			return checkCount(tab.Rows, err, "claude_stream", rows/customers)
		}},
	}
	for _, q := range queries {
		b.Run(q.name, func(b *testing.B) {
			for _, db := range dbs { // warm the pools and the caches
				for i := 0; i < 5; i++ {
					if err := q.run(db, i); err != nil {
						b.Fatal(err)
					}
				}
			}
			lat := make([][]time.Duration, len(dbs))
			cpu := make([]time.Duration, len(dbs))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				for j, db := range dbs {
					c0, start := ticketsCPU(), time.Now()
					if err := q.run(db, i); err != nil {
						b.Fatal(err)
					}
					lat[j] = append(lat[j], time.Since(start))
					cpu[j] += ticketsCPU() - c0
				}
			}
			b.StopTimer()
			for j, n := range counts {
				reportLatencyAs(b, lat[j], fmt.Sprintf("t%d-", n))
				b.ReportMetric(float64(cpu[j].Microseconds())/1000/float64(b.N), fmt.Sprintf("t%d-cpu-ms/op", n))
			}
		})
	}
}
