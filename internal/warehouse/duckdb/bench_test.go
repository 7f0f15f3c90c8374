package duckdb

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/activitybi/activitybi/internal/event"
	"github.com/activitybi/activitybi/internal/warehouse"
)

// Benchmarks (commands and numbers in bench/warehouse.md):
//
//	go test -run '^$' -bench 'Load|ReadNDJSON' -benchtime 30x ./internal/warehouse/duckdb/
//
// BenchmarkLoad loads batches of 10,000 in-order events into an empty table
// and into one that already holds 1M rows, to show that a load's cost does
// not grow with the table; Late1pct makes 1% of each batch late by up to
// 2 s of stream time (20,000 rows at the benchmark's 10,000 rows/s), as a
// client whose events arrive a batch or two behind; Resent1pct re-sends 1%
// of the previous batch's events (rows/s counts inserted rows). BenchmarkReadNDJSON is the ceiling: DuckDB's own read_ndjson bulk
// load of the same rows into a table with the same primary key.

const (
	benchBatch     = 10_000
	benchCustomers = 10
	benchActivity  = 20
)

var benchStart = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// benchFeatures is a realistic feature_json: tool, model, tokens, latency.
func benchFeatures(i int) json.RawMessage {
	return json.RawMessage(fmt.Sprintf(`{"tool":"search_docs","model":"claude-sonnet-4-5","input_tokens":%d,"output_tokens":%d,"latency_ms":%d,"ok":true}`,
		1000+i%5000, 100+i%700, 20+i%900))
}

// benchEvents makes n in-order events starting at from, spread over the
// benchmark's partitions; late of them (evenly spaced) are moved back by up
// to 2 s.
func benchEvents(n int, from time.Time, seq int, late int) []event.Event {
	evs := make([]event.Event, n)
	rev := -0.0004
	for i := range evs {
		ts := from.Add(time.Duration(i) * 100 * time.Microsecond)
		k := seq + i
		evs[i] = event.Event{
			ActivityID:    event.NewID(ts),
			TS:            ts,
			Customer:      fmt.Sprintf("customer-%d", k%benchCustomers),
			Activity:      fmt.Sprintf("called_tool_%d", (k/benchCustomers)%benchActivity),
			Features:      benchFeatures(k),
			RevenueImpact: &rev,
			ReceivedAt:    ts,
			Source:        event.SourceMCP,
		}
	}
	if late > 0 {
		step := n / late
		for j := 0; j < late; j++ {
			evs[j*step].TS = from.Add(-time.Duration(1+(j*7919)%2000) * time.Millisecond)
		}
	}
	return evs
}

// seed fills claude_stream and stream_partitions with n rows in SQL, in the
// benchmark's partitions, 100 µs apart, ending before benchStart.
func seed(b *testing.B, db *DB, n int) {
	b.Helper()
	if n == 0 {
		return
	}
	parts := benchCustomers * benchActivity
	start := benchStart.Add(-time.Duration(n) * 100 * time.Microsecond)
	q := fmt.Sprintf(`INSERT INTO claude_stream
SELECT printf('0%%025d', i), %[2]s + to_microseconds(i * 100),
       'customer-' || (i %% %[3]d), 'called_tool_' || ((i // %[3]d) %% %[4]d), NULL,
       '{"tool":"search_docs","model":"claude-sonnet-4-5","input_tokens":' || (1000 + i %% 5000) || ',"output_tokens":1,"latency_ms":2,"ok":true}',
       -0.0004, NULL, i // %[5]d + 1,
       CASE WHEN i + %[5]d < %[1]d THEN %[2]s + to_microseconds((i + %[5]d) * 100) END,
       %[2]s + to_microseconds(i * 100), 'mcp'
FROM range(%[1]d) t(i)`, n, tsLiteral(start), benchCustomers, benchActivity, parts)
	if _, err := db.writer.ExecContext(context.Background(), q); err != nil {
		b.Fatal(err)
	}
	_, err := db.writer.ExecContext(context.Background(), `INSERT INTO stream_partitions
SELECT customer, activity, count(*), min(ts), max(ts), arg_max(activity_id, ts) FROM claude_stream GROUP BY ALL`)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := db.writer.ExecContext(context.Background(), "CHECKPOINT"); err != nil {
		b.Fatal(err)
	}
}

func BenchmarkLoad(b *testing.B) {
	for _, c := range []struct {
		name   string
		rows   int
		late   int
		resent bool
		batch  int
	}{
		{"Empty", 0, 0, false, benchBatch},
		{"Rows1M", 1_000_000, 0, false, benchBatch},
		{"Rows1M/Late1pct", 1_000_000, benchBatch / 100, false, benchBatch},
		{"Rows1M/Resent1pct", 1_000_000, 0, true, benchBatch},
		// What the uploader commits at 1,000 events/s: a poll every 50 ms.
		{"Rows1M/Batch50", 1_000_000, 0, false, 50},
	} {
		b.Run(c.name, func(b *testing.B) {
			ctx := context.Background()
			db, err := Open(ctx, Options{Path: filepath.Join(b.TempDir(), "bench.duckdb")})
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			if _, err := db.Migrate(ctx); err != nil {
				b.Fatal(err)
			}
			seed(b, db, c.rows)
			lat := make([]time.Duration, 0, b.N)
			var total time.Duration
			var prev []event.Event
			var rows int
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				from := benchStart.Add(time.Duration(i*c.batch) * 100 * time.Microsecond)
				evs := benchEvents(c.batch, from, i*c.batch, c.late)
				want := c.batch
				if c.resent && prev != nil {
					// 1% of the batch re-sends events of the previous batch.
					for j := 0; j < c.batch/100; j++ {
						evs[j*100] = prev[j*100+1]
					}
					want -= c.batch / 100
				}
				prev = evs
				batch := &warehouse.Batch{
					Events:  evs,
					Offsets: []warehouse.Offset{{Segment: "seg", Offset: int64(i + 1), Records: int64((i + 1) * c.batch)}},
				}
				b.StartTimer()
				start := time.Now()
				res, err := db.Load(ctx, batch)
				d := time.Since(start)
				if err != nil {
					b.Fatal(err)
				}
				if res.Inserted != want {
					b.Fatalf("inserted %d, want %d", res.Inserted, want)
				}
				total += d
				rows += res.Inserted
				lat = append(lat, d)
			}
			b.StopTimer()
			b.ReportMetric(float64(rows)/total.Seconds(), "rows/s")
			reportPercentiles(b, lat)
			// The primary-key index lives in DuckDB's buffer pool and counts
			// against memory_limit; report its size with the table's.
			var artMB float64
			if err := db.sqlDB.QueryRow(`SELECT coalesce(sum(memory_usage_bytes), 0) / 1e6 FROM duckdb_memory() WHERE tag = 'ART_INDEX'`).Scan(&artMB); err == nil {
				b.ReportMetric(artMB, "index-MB")
			}
			if c.late > 0 || c.resent {
				checkBenchOccurrences(b, db)
			}
		})
	}
}

// checkBenchOccurrences verifies, after a late benchmark, that occurrences
// are a gapless 1..n per partition in (ts, activity_id) order.
func checkBenchOccurrences(b *testing.B, db *DB) {
	var bad int64
	err := db.sqlDB.QueryRow(`SELECT count(*) FROM (
  SELECT _activity_occurrence AS occ, _activity_repeated_at AS rep,
         row_number() OVER w AS want_occ, lead(ts) OVER w AS want_rep
  FROM claude_stream WINDOW w AS (PARTITION BY customer, activity ORDER BY ts, activity_id))
WHERE occ IS DISTINCT FROM want_occ OR rep IS DISTINCT FROM want_rep`).Scan(&bad)
	if err != nil || bad != 0 {
		b.Fatalf("occurrence check: %d wrong rows, %v", bad, err)
	}
}

func reportPercentiles(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) float64 {
		return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.50), "p50-ms/batch")
	b.ReportMetric(pct(0.95), "p95-ms/batch")
	b.ReportMetric(pct(0.99), "p99-ms/batch")
}

// BenchmarkReadNDJSON is the reference ceiling: DuckDB reading an NDJSON
// file of the same events (as the spool stores them) with read_ndjson into
// a fresh in-memory database whose claude_stream has the same primary key.
// It needs external access, so it opens its own database, not the driver's.
func BenchmarkReadNDJSON(b *testing.B) {
	const rows = 100_000
	path := filepath.Join(b.TempDir(), "events.ndjson")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriter(f)
	for _, e := range benchEvents(rows, benchStart, 0, 0) {
		line, err := event.Marshal(&e)
		if err != nil {
			b.Fatal(err)
		}
		w.Write(line)
		w.WriteByte('\n')
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	f.Close()
	ms, err := loadMigrations(migrationFS)
	if err != nil {
		b.Fatal(err)
	}
	var total time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		sdb, err := sql.Open("duckdb", "?threads=2&memory_limit=512MB")
		if err != nil {
			b.Fatal(err)
		}
		if _, err := sdb.Exec(ms[0].sql); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		start := time.Now()
		r, err := sdb.Exec(`INSERT INTO claude_stream (activity_id, ts, customer, activity, anonymous_customer_id,
    feature_json, revenue_impact, link, _received_at, _source)
SELECT activity_id, ts, coalesce(customer, ''), activity, anonymous_customer_id, feature_json,
       revenue_impact, link, _received_at, _source
FROM read_ndjson(?, columns = {activity_id: 'VARCHAR', ts: 'TIMESTAMP', customer: 'VARCHAR',
    activity: 'VARCHAR', anonymous_customer_id: 'VARCHAR', feature_json: 'JSON',
    revenue_impact: 'DOUBLE', link: 'VARCHAR', _received_at: 'TIMESTAMP', _source: 'VARCHAR'})
ON CONFLICT DO NOTHING`, path)
		total += time.Since(start)
		b.StopTimer()
		if err != nil {
			b.Fatal(err)
		}
		if n, _ := r.RowsAffected(); n != rows {
			b.Fatalf("read_ndjson loaded %d rows, want %d", n, rows)
		}
		sdb.Close()
	}
	b.ReportMetric(float64(b.N*rows)/total.Seconds(), "rows/s")
}
