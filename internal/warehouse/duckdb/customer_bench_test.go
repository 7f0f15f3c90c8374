package duckdb

import (
	"context"
	"database/sql/driver"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// BenchmarkCustomerQuery measures what isolation costs a customer query
// (numbers and command in bench/warehouse.md, "Customer queries"):
//
//	go test -run '^$' -bench CustomerQuery -benchtime 2000x ./internal/warehouse/duckdb/
//
// On 1M events across 100 customers, each sub-benchmark asks for one
// customer's count (customers in turn, so no two calls in a row share one):
//
//   - CustomerQuery: the bare statement through CustomerQuery.
//   - Query: the same count through the analyst's Query, with a WHERE clause
//     and the customer as a literal (Query binds nothing).
//   - Floor: the same count on a plain pooled connection in a READ ONLY
//     transaction, bound, with no check: what the engine alone takes.
//   - ViewsPerCall: the alternative not taken, creating the shadow views in
//     each call's transaction (with the customer as a literal) and rolling
//     them back; no check.
//
// The Empty variants read an empty table (context_cache) instead, so the
// fixed costs are not hidden behind the scan. ConnSetup is the one-time cost
// of shadowing the schema on a new customer connection.
func BenchmarkCustomerQuery(b *testing.B) {
	const rows, customers = 1_000_000, 100
	ctx := context.Background()
	db, err := Open(ctx, Options{Path: filepath.Join(b.TempDir(), "bench.duckdb")})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	seedCustomers(b, db, rows, customers)
	customer := func(i int) string { return fmt.Sprintf("customer-%d", i%customers) }

	type variant struct {
		name string
		run  func(i int) error
	}
	count := func(table, col string) []variant {
		return []variant{
			{"CustomerQuery", func(i int) error {
				tab, err := db.CustomerQuery(ctx, customer(i), "SELECT count(*) FROM "+table, nil, 0)
				return checkCount(tab.Rows, err, table, rows/customers)
			}},
			{"Query", func(i int) error {
				tab, err := db.Query(ctx, fmt.Sprintf("SELECT count(*) FROM %s WHERE %s = '%s'", table, col, customer(i)), 0)
				return checkCount(tab.Rows, err, table, rows/customers)
			}},
			{"Floor", func(i int) error {
				return floorCount(ctx, db, fmt.Sprintf("SELECT count(*) FROM %s WHERE %s = ?", table, col), customer(i))
			}},
			{"ViewsPerCall", func(i int) error {
				return viewsPerCall(ctx, db, "SELECT count(*) FROM "+table, customer(i))
			}},
		}
	}
	for _, tc := range []struct{ name, table, col string }{
		{"Count1M", "claude_stream", "customer"},
		{"Empty", "context_cache", "customer_id"},
	} {
		for _, v := range count(tc.table, tc.col) {
			b.Run(tc.name+"/"+v.name, func(b *testing.B) {
				for i := 0; i < 20; i++ { // warm the pool and the caches
					if err := v.run(i); err != nil {
						b.Fatal(err)
					}
				}
				lat := make([]time.Duration, 0, b.N)
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					start := time.Now()
					if err := v.run(i); err != nil {
						b.Fatal(err)
					}
					lat = append(lat, time.Since(start))
				}
				b.StopTimer()
				reportLatency(b, lat)
			})
		}
	}
	b.Run("ConnSetup", func(b *testing.B) {
		conn, err := db.customerConn(ctx)
		if err != nil {
			b.Fatal(err)
		}
		defer conn.Close()
		lat := make([]time.Duration, 0, b.N)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			start := time.Now()
			// CREATE OR REPLACE: the same work as on a new connection.
			err := conn.Raw(func(dc any) error { return shadowTables(ctx, dc.(driver.Conn)) })
			if err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(start))
		}
		b.StopTimer()
		reportLatency(b, lat)
	})
}

func checkCount(rows [][]any, err error, table string, want int) error {
	if err != nil {
		return err
	}
	if table != "claude_stream" {
		want = 0
	}
	if len(rows) != 1 || rows[0][0] != int64(want) {
		return fmt.Errorf("count %v, want %d", rows, want)
	}
	return nil
}

func floorCount(ctx context.Context, db *DB, q, customer string) error {
	conn, err := db.sqlDB.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN TRANSACTION READ ONLY"); err != nil {
		return err
	}
	defer conn.ExecContext(ctx, "ROLLBACK")
	var n int64
	return conn.QueryRowContext(ctx, q, customer).Scan(&n)
}

// viewsPerCall is the design not taken: every call creates the shadow views
// (ten, as the schema has ten tables) in its transaction, with the customer
// as an escaped literal, and the rollback drops them.
func viewsPerCall(ctx context.Context, db *DB, q, customer string) error {
	conn, err := db.sqlDB.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	lit := "'" + strings.ReplaceAll(customer, "'", "''") + "'"
	var script strings.Builder
	tables := []string{"upload_offsets", "upload_quarantine", "schema_migrations", "stream_partitions"}
	for t, col := range customerTables {
		fmt.Fprintf(&script, "CREATE TEMP VIEW %s AS SELECT * FROM bench.main.%s WHERE %s = %s;\n", t, t, col, lit)
	}
	for _, t := range tables {
		fmt.Fprintf(&script, "CREATE TEMP VIEW %s AS SELECT * FROM bench.main.%s WHERE false;\n", t, t)
	}
	if _, err := conn.ExecContext(ctx, "BEGIN TRANSACTION READ ONLY"); err != nil {
		return err
	}
	defer conn.ExecContext(ctx, "ROLLBACK")
	if _, err := conn.ExecContext(ctx, script.String()); err != nil {
		return err
	}
	var n int64
	return conn.QueryRowContext(ctx, q).Scan(&n)
}

// seedCustomers fills claude_stream with n rows spread evenly over the
// customers, interleaved in time as live traffic is.
func seedCustomers(b *testing.B, db *DB, n, customers int) {
	b.Helper()
	q := fmt.Sprintf(`INSERT INTO claude_stream
SELECT printf('0%%025d', i), TIMESTAMP '2025-12-01' + to_microseconds(i * 1000),
       'customer-' || (i %% %[2]d), 'called_tool_' || ((i // %[2]d) %% 20), NULL,
       '{"tool":"search_docs","latency_ms":' || (i %% 900) || '}', -0.0004, NULL, i // %[2]d + 1, NULL,
       TIMESTAMP '2025-12-01' + to_microseconds(i * 1000), 'mcp'
FROM range(%[1]d) t(i)`, n, customers)
	if _, err := db.writer.ExecContext(context.Background(), q); err != nil {
		b.Fatal(err)
	}
	if _, err := db.writer.ExecContext(context.Background(), "CHECKPOINT"); err != nil {
		b.Fatal(err)
	}
}

// reportLatency reports lat's p50/p95/p99 in ms (it sorts lat).
func reportLatency(b *testing.B, lat []time.Duration) { reportLatencyAs(b, lat, "") }

// reportLatencyAs is reportLatency with a prefix on the metric names.
func reportLatencyAs(b *testing.B, lat []time.Duration, prefix string) {
	if len(lat) == 0 {
		return
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) float64 {
		return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.50), prefix+"p50-ms")
	b.ReportMetric(pct(0.95), prefix+"p95-ms")
	b.ReportMetric(pct(0.99), prefix+"p99-ms")
}
