package duckdb

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/activitybi/activitybi/internal/event"
	"github.com/activitybi/activitybi/internal/warehouse"
)

// BenchmarkAuditList measures `activitybi audit`'s listing (db.Audit) on a
// log of 1M rows, one a second (so "at" follows insertion order, as it does
// when the uploader loads records), over 100 customers, 300 principals, the
// 9 actions and 100,000 targets, with and without ART indexes on the
// equality filters (numbers and command in bench/audit.md):
//
//	go test -run '^$' -bench AuditList -benchtime 200x ./internal/warehouse/duckdb/
//
// Each sub-benchmark asks for the newest 100 rows matching its filter, the
// filter value changing from call to call.
func BenchmarkAuditList(b *testing.B) {
	const rows = 1_000_000
	ctx := context.Background()
	db, err := Open(ctx, Options{Path: filepath.Join(b.TempDir(), "bench.duckdb")})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	acts := event.AuditActions()
	_, err = db.writer.ExecContext(ctx, fmt.Sprintf(`INSERT INTO audit_log
SELECT printf('%%026d', i), TIMESTAMP '2026-01-01 00:00:00' + to_seconds(i), 'tok_' || (i %% 300),
    CASE WHEN i %% 100 = 0 THEN NULL ELSE 'customer-' || (i %% 100) END,
    (?::VARCHAR[])[1 + i %% 9], 't' || (i %% 100000), i %% 50, i %% 5000, i %% 30,
    CASE WHEN i %% 97 = 0 THEN 'refused' ELSE 'ok' END,
    'SELECT activity, count(*) FROM claude_stream WHERE ts > now() - INTERVAL 1 DAY GROUP BY ALL',
    TIMESTAMP '2026-01-01 00:00:00' + to_seconds(i), 'mcp'
FROM range(%d) t(i)`, rows), acts)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := db.writer.ExecContext(ctx, "CHECKPOINT"); err != nil {
		b.Fatal(err)
	}
	end := t0.Add(rows * time.Second)
	cases := []struct {
		name string
		f    func(i int) warehouse.AuditFilter
	}{
		{"Newest", func(int) warehouse.AuditFilter { return warehouse.AuditFilter{} }},
		{"Customer", func(i int) warehouse.AuditFilter {
			return warehouse.AuditFilter{Customer: fmt.Sprintf("customer-%d", 1+i%99)}
		}},
		{"Principal", func(i int) warehouse.AuditFilter {
			return warehouse.AuditFilter{Principal: fmt.Sprintf("tok_%d", i%300)}
		}},
		{"ActionOutcome", func(i int) warehouse.AuditFilter {
			return warehouse.AuditFilter{Action: acts[i%len(acts)], Outcome: event.OutcomeRefused}
		}},
		{"TargetRare", func(i int) warehouse.AuditFilter {
			return warehouse.AuditFilter{Target: fmt.Sprintf("t%d", (i*7919)%100000)}
		}},
		{"LastHour", func(int) warehouse.AuditFilter { return warehouse.AuditFilter{Since: end.Add(-time.Hour)} }},
		{"OldHourWindow", func(i int) warehouse.AuditFilter {
			s := t0.Add(time.Duration(100+i%100) * time.Hour)
			return warehouse.AuditFilter{Since: s, Until: s.Add(time.Hour)}
		}},
		{"CustomerInOldDay", func(i int) warehouse.AuditFilter {
			s := t0.Add(time.Duration(1+i%10) * 24 * time.Hour)
			return warehouse.AuditFilter{Customer: fmt.Sprintf("customer-%d", 1+i%99), Since: s, Until: s.Add(24 * time.Hour)}
		}},
	}
	run := func(prefix string) {
		for _, tc := range cases {
			b.Run(prefix+"/"+tc.name, func(b *testing.B) {
				for i := 0; i < 5; i++ {
					if _, err := db.Audit(ctx, tc.f(i)); err != nil {
						b.Fatal(err)
					}
				}
				lat := make([]time.Duration, 0, b.N)
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					start := time.Now()
					tab, err := db.Audit(ctx, tc.f(i))
					if err != nil {
						b.Fatal(err)
					}
					if len(tab.Rows) == 0 {
						b.Fatalf("%+v matched nothing", tc.f(i))
					}
					lat = append(lat, time.Since(start))
				}
				b.StopTimer()
				reportLatency(b, lat)
			})
		}
	}
	run("NoIndex")
	for _, col := range []string{"customer_id", "principal", "action", "target"} {
		if _, err := db.writer.ExecContext(ctx, fmt.Sprintf("CREATE INDEX audit_log_%s ON audit_log (%s)", col, col)); err != nil {
			b.Fatal(err)
		}
	}
	run("Index")
}
