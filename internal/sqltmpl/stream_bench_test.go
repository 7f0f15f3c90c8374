package sqltmpl

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/activitybi/activitybi/internal/event"
	"github.com/activitybi/activitybi/internal/memory/memorytest"
	"github.com/activitybi/activitybi/internal/warehouse"
	"github.com/activitybi/activitybi/internal/warehouse/duckdb"
)

// The stream benchmark: every template with its defaults on a customer
// whose stream holds 1M or 10M events over the 30 days before fxNow, with a
// second customer's rows (a tenth as many) interleaved in time in the same
// table, so that the customer view's filter does real work. The rows are
// written in SQL straight into the tables (10M in about two minutes on the
// shared 2-core machine, 65 CPU-s), with the loader's occurrence columns
// computed in closed form; TestStreamFixtureMatchesLoad holds that computation to what
// Load stores for the same events.
//
// The event mix is BenchmarkExecute's: per session of 10 events a
// started_session naming project p<(j/1000)%7>, a submitted_prompt, seven
// called_tool (Bash, Read, Edit, Grep, WebFetch, Task on shell, fs, fetch
// or no server; duration 5-2004 ms, 10-60 s for events whose index is 3
// mod 997; those whose index is a multiple of 23 fail with an error text) and a completed_response of one of three
// models with tokens (cache reads on every other one), first-token and
// total latency and a cost. Alongside, insights: one per 100 events, on
// tool:<tool> p95_latency_ms, user preferences and project daily_usd.
const (
	// streamCacheEnv names the directory where the stream warehouses are
	// built once and reused (the dashboard's benchmark uses it too). The
	// 10M case runs only when it is set: building it takes ~2 minutes and
	// ~0.9 GB of disk, which CI must not pay.
	streamCacheEnv = "ACTIVITYBI_BENCH_CACHE"
	// streamOtherDivisor: the other customer has 1/streamOtherDivisor as
	// many events as the measured one, interleaved with them.
	streamOtherDivisor = 10
	// streamInsightEvery: one insight per this many events.
	streamInsightEvery = 100
	// streamSpan is the time the stream covers, ending at fxNow.
	streamSpan = 30 * 24 * time.Hour
	// streamCustomer is the measured customer; streamOther the one beside.
	streamCustomer = "alice"
	streamOther    = "bob"
)

// streamEventsSQL writes $2 events of streamCustomer and $2/10 of
// streamOther from $1 ('YYYY-MM-DD HH:MM:SS', UTC) over 30 days. Row k of
// the range is event j of customer c: every 11th row is the other
// customer's, so the two streams interleave in time. Within a customer ts
// grows strictly with j (no ties), so the partition order (ts,
// activity_id) is the order of j, and each activity's next occurrence is
// at a fixed offset in the 10-event session: started_session, prompt and
// response repeat 10 events later; tool calls sit at positions 2-8, the
// next one 1 later (4 from position 8).
const streamEventsSQL = `INSERT INTO claude_stream (activity_id, ts, customer, activity, feature_json,
    revenue_impact, _activity_occurrence, _activity_repeated_at, _received_at, _source)
SELECT
    printf('%s-%010d', c, j),
    $1::TIMESTAMP + to_microseconds(j * step),
    c,
    CASE p WHEN 0 THEN 'started_session' WHEN 1 THEN 'submitted_prompt'
           WHEN 9 THEN 'completed_response' ELSE 'called_tool' END,
    ('{"session_id":"s-' || (j // 10) || '"' ||
     CASE p
       WHEN 0 THEN ',"project":"p' || ((j // 1000) % 7) || '"'
       WHEN 1 THEN ''
       WHEN 9 THEN ',"model":"' || ['claude-sonnet-4-5', 'claude-haiku-4-5', 'claude-opus-4-1'][j % 3 + 1] ||
                   '","input_tokens":' || (1000 + j % 500) || ',"output_tokens":' || (100 + j % 70) ||
                   CASE WHEN j % 20 = 9 THEN ',"cache_read_input_tokens":' || (2000 + j % 3000) ELSE '' END ||
                   ',"first_token_ms":' || (300 + j % 900) || ',"latency_ms":' || (2000 + j % 5000)
       ELSE ',"tool":"' || ['Bash', 'Read', 'Edit', 'Grep', 'WebFetch', 'Task'][j % 6 + 1] ||
            '","server":"' || ['shell', 'fs', 'fs', 'fs', 'fetch', ''][j % 6 + 1] ||
            '","success":' || (j % 23 <> 0) ||
            ',"duration_ms":' || CASE WHEN j % 997 = 3 THEN 10000 + (j * 13) % 50000 ELSE 5 + j % 2000 END ||
            CASE WHEN j % 23 = 0 THEN ',"error":"exit status ' || (1 + j % 7) || '"' ELSE '' END
     END || '}')::JSON,
    CASE WHEN p = 9 THEN -((j % 50) / 1000.0) END,
    CASE WHEN p IN (0, 1, 9) THEN j // 10 + 1 ELSE (j // 10) * 7 + p - 1 END,
    CASE WHEN nxt < n THEN $1::TIMESTAMP + to_microseconds(nxt * step) END,
    $3::TIMESTAMP, 'mcp'
FROM (
    SELECT c, j, n, step, p,
        CASE WHEN p IN (0, 1, 9) THEN j + 10 WHEN p < 8 THEN j + 1 ELSE j + 4 END AS nxt
    FROM (
        SELECT c, j, n, ` + "(2592000000000 // n)" + ` AS step, j % 10 AS p
        FROM (
            SELECT
                CASE WHEN k % 11 = 10 THEN '` + streamOther + `' ELSE '` + streamCustomer + `' END AS c,
                CASE WHEN k % 11 = 10 THEN k // 11 ELSE (k // 11) * 10 + k % 11 END AS j,
                CASE WHEN k % 11 = 10 THEN $2 // 10 ELSE $2 END AS n
            FROM range($2 + $2 // 10) t(k)
        )
    )
)`

// streamInsightsSQL writes $2 insights for customer $4 over the 30 days
// from $1: six of eight are p95_latency_ms of tool:<tool> (numbers), one a
// user preference (a string), one a project's daily_usd (a number).
const streamInsightsSQL = `INSERT INTO insight_atoms (atom_id, customer_id, subject, metric, value, ts,
    _verified, _received_at, _source)
SELECT printf('%s-a%010d', $4, i), $4,
    CASE WHEN i % 8 < 6 THEN 'tool:' || ['Bash', 'Read', 'Edit', 'Grep', 'WebFetch', 'Task'][i % 8 + 1]
         WHEN i % 8 = 6 THEN 'user' ELSE 'project:p' || (i % 7) END,
    CASE WHEN i % 8 < 6 THEN 'p95_latency_ms' WHEN i % 8 = 6 THEN 'pref_' || (i % 20) ELSE 'daily_usd' END,
    CASE WHEN i % 8 = 6 THEN ('"value ' || i || '"')::JSON
         ELSE (100 + (i * 7) % 900)::VARCHAR::JSON END,
    $1::TIMESTAMP + to_microseconds(i * (2592000000000 // $2)),
    false, $3::TIMESTAMP, 'mcp'
FROM range($2) t(i)`

// streamPartitionsSQL fills the loader's stream_partitions from the rows,
// as Load would have.
const streamPartitionsSQL = `INSERT INTO stream_partitions (customer, activity, n, first_ts, last_ts, last_id)
SELECT customer, activity, count(*), min(ts), max(ts), arg_max(activity_id, (ts, activity_id))
FROM claude_stream GROUP BY customer, activity`

// streamCheckSQL is a whole-table sanity check of the occurrence columns:
// per partition, occurrences are exactly 1..n and only the last row lacks
// a repeated_at. It returns the partitions that break that.
const streamCheckSQL = `SELECT customer || '/' || activity FROM claude_stream
GROUP BY customer, activity
HAVING min(_activity_occurrence) <> 1 OR max(_activity_occurrence) <> count(*)
    OR count(DISTINCT _activity_occurrence) <> count(*)
    OR count(*) - count(_activity_repeated_at) <> 1
    OR max(_activity_repeated_at) <> max(ts)`

// streamFixtureVersion names the generator: a hash of its SQL, so that a
// change to it rebuilds cached files.
func streamFixtureVersion() string {
	h := sha256.Sum256([]byte(streamEventsSQL + streamInsightsSQL + streamPartitionsSQL))
	return hex.EncodeToString(h[:4])
}

// streamStart is the first event's time as text: a string cast to
// TIMESTAMP is read as UTC whatever the session's time zone.
func streamStart() string { return fxNow.Add(-streamSpan).Format("2006-01-02 15:04:05") }

// writeStream migrates a new warehouse at path and writes events events of
// streamCustomer, events/10 of streamOther and their insights.
func writeStream(ctx context.Context, path string, events int64) error {
	if events%10 != 0 || events < 1000 {
		return fmt.Errorf("stream fixture: %d events; want a multiple of 10, at least 1000", events)
	}
	raw, err := memorytest.OpenMigrated(ctx, path)
	if err != nil {
		return err
	}
	defer raw.Close()
	now := fxNow.Format("2006-01-02 15:04:05")
	for _, s := range []struct {
		q    string
		args []any
	}{
		{streamEventsSQL, []any{streamStart(), events, now}},
		{streamInsightsSQL, []any{streamStart(), events / streamInsightEvery, now, streamCustomer}},
		{streamInsightsSQL, []any{streamStart(), events / streamOtherDivisor / streamInsightEvery, now, streamOther}},
		{streamPartitionsSQL, nil},
		{"CHECKPOINT", nil},
	} {
		if _, err := raw.ExecContext(ctx, s.q, s.args...); err != nil {
			return fmt.Errorf("stream fixture: %w", err)
		}
	}
	rows, err := raw.QueryContext(ctx, streamCheckSQL)
	if err != nil {
		return fmt.Errorf("stream fixture check: %w", err)
	}
	var bad []string
	for rows.Next() {
		var p string
		if err := rows.Scan(&p); err != nil {
			rows.Close()
			return err
		}
		bad = append(bad, p)
	}
	rows.Close()
	if len(bad) > 0 {
		return fmt.Errorf("stream fixture: occurrence columns wrong in partitions %v", bad)
	}
	return raw.Close()
}

// streamWarehouse opens the stream warehouse of events events, from the
// cache directory when dir is set (building it there first when missing),
// else built in a temporary directory.
func streamWarehouse(b *testing.B, dir string, events int64) *duckdb.DB {
	b.Helper()
	ctx := context.Background()
	if dir == "" {
		dir = b.TempDir()
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		b.Fatal(err)
	}
	// The schema version is part of the name (a new migration rebuilds
	// the file): learn it from a scratch warehouse.
	probe := openWarehouse(b)
	ver, err := probe.SchemaVersion(ctx)
	if err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(dir, fmt.Sprintf("sqltmpl-stream-%dk-s%d-%s.duckdb", events/1000, ver, streamFixtureVersion()))
	if _, err := os.Stat(path); err != nil {
		tmp := path + ".building"
		os.Remove(tmp)
		os.Remove(tmp + ".wal")
		t0 := time.Now()
		if err := writeStream(ctx, tmp, events); err != nil {
			os.Remove(tmp)
			b.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			b.Fatal(err)
		}
		b.Logf("built %s in %s", path, time.Since(t0).Round(time.Second))
	}
	st, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	// The core's defaults: memory_limit and threads as serve opens it.
	db, err := duckdb.Open(ctx, duckdb.Options{Path: path})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	b.Logf("warehouse %s: %.0f MiB, memory_limit %s, threads %d", path, float64(st.Size())/(1<<20),
		duckdb.DefaultMemoryLimit, duckdb.DefaultThreads)
	return db
}

// BenchmarkExecuteStream: each template with its defaults, through
// CustomerQuery, for a customer with 1M events (built in a temporary
// directory, or cached in $ACTIVITYBI_BENCH_CACHE) and with 10M events
// (only with $ACTIVITYBI_BENCH_CACHE). Every run of a template is preceded
// by the floor, `SELECT count(*) FROM claude_stream` on the same customer
// view (which also checks that the view holds exactly the customer's
// events), so that floor-p50-ms shows what the machine's load did to wall
// time while that template ran. cpu-ms/op counts the template's runs only.
func BenchmarkExecuteStream(b *testing.B) {
	dir := os.Getenv(streamCacheEnv)
	for _, size := range []struct {
		name   string
		events int64
	}{{"1M", 1_000_000}, {"10M", 10_000_000}} {
		b.Run(size.name, func(b *testing.B) {
			if size.events > 1_000_000 && dir == "" {
				b.Skipf("the %s-event warehouse takes about 2 minutes and 0.9 GB of disk to build: set %s to a directory to build it once there and run this case",
					size.name, streamCacheEnv)
			}
			benchStream(b, streamWarehouse(b, dir, size.events), size.events)
		})
	}
}

// streamVariants are cases beyond each template's defaults, where the
// defaults take a path much cheaper than the template's other uses:
// period_comparison's default (events, overall) needs no feature, so
// DuckDB drops the JSON parse; sessions per project needs it for every
// event of both windows.
var streamVariants = []struct{ name, template, params string }{
	{"period_comparison_sessions_by_project", "period_comparison", `{"metric": "sessions", "by": "project"}`},
}

func benchStream(b *testing.B, db *duckdb.DB, events int64) {
	lib := Default()
	ctx := context.Background()
	const floorSQL = `SELECT count(*) AS n FROM claude_stream`
	type benchCase struct{ name, template, params string }
	var cases []benchCase
	for _, tp := range lib.List() {
		cases = append(cases, benchCase{tp.Name, tp.Name, baseParams[tp.Name]})
	}
	for _, v := range streamVariants {
		cases = append(cases, benchCase{v.name, v.template, v.params})
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			r, err := lib.Render(c.template, json.RawMessage(c.params), DuckDB, fxNow)
			if err != nil {
				b.Fatal(err)
			}
			lat := make([]time.Duration, 0, b.N)
			floor := make([]time.Duration, 0, b.N)
			var cpu time.Duration
			var rows int
			for b.Loop() {
				t0 := time.Now()
				f, err := db.CustomerQuery(ctx, streamCustomer, floorSQL, nil, 1)
				floor = append(floor, time.Since(t0))
				if err != nil {
					b.Fatal(err)
				}
				if n := f.Rows[0][0]; n != events {
					b.Fatalf("the customer view holds %v events, want %d", n, events)
				}
				c0 := processCPU()
				t0 = time.Now()
				t, err := db.CustomerQuery(ctx, streamCustomer, r.SQL, r.Args, 10_000)
				lat = append(lat, time.Since(t0))
				cpu += processCPU() - c0
				if err != nil {
					b.Fatal(err)
				}
				rows = len(t.Rows)
			}
			b.ReportMetric(float64(cpu)/1e6/float64(len(lat)), "cpu-ms/op")
			b.ReportMetric(float64(rows), "rows")
			reportMs(b, "", lat)
			reportMs(b, "floor-", floor)
		})
	}
}

// reportMs adds p50 and p95 of latencies in ms (p95 of 7 runs is the
// second slowest).
func reportMs(b *testing.B, prefix string, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	at := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))]) / 1e6 }
	b.ReportMetric(at(0.50), prefix+"p50-ms")
	b.ReportMetric(at(0.95), prefix+"p95-ms")
}

// TestStreamFixtureMatchesLoad writes a small stream with the benchmark's
// SQL, loads the same events through Load (in shuffled batches, so that
// late arrivals are renumbered too) into a second warehouse, and compares
// every column of every row, the occurrence columns included, and the
// partition summaries. Every generated event must also pass
// event.Validate, as anything Load stores has.
func TestStreamFixtureMatchesLoad(t *testing.T) {
	ctx := context.Background()
	const events = 2000
	path := filepath.Join(t.TempDir(), "gen.duckdb")
	if err := writeStream(ctx, path, events); err != nil {
		t.Fatal(err)
	}
	gen, err := sql.Open("duckdb", path)
	if err != nil {
		t.Fatal(err)
	}
	defer gen.Close()
	want := dumpStream(t, gen)
	if len(want) != events+events/streamOtherDivisor {
		t.Fatalf("generated %d rows, want %d", len(want), events+events/streamOtherDivisor)
	}

	evs := make([]event.Event, len(want))
	for i, r := range want {
		evs[i] = event.Event{ActivityID: r.id, TS: r.ts, Customer: r.customer, Activity: r.activity,
			Features: json.RawMessage(r.features), ReceivedAt: r.received, Source: r.source}
		if r.revenue.Valid {
			v := r.revenue.Float64
			evs[i].RevenueImpact = &v
		}
		if err := event.Validate(&evs[i], fxNow); err != nil {
			t.Fatalf("generated event %s/%s is invalid: %v", r.customer, r.id, err)
		}
	}
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(evs), func(i, j int) { evs[i], evs[j] = evs[j], evs[i] })
	db := openWarehouse(t)
	for i := 0; i < len(evs); i += 300 {
		if _, err := db.Load(ctx, &warehouse.Batch{Events: evs[i:min(i+300, len(evs))]}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := db.Query(ctx, streamDumpSQL, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Rows) != len(want) {
		t.Fatalf("Load stored %d rows, the generator %d", len(got.Rows), len(want))
	}
	for i, g := range got.Rows {
		w := want[i]
		wantRow := []any{w.id, w.ts, w.customer, w.activity, w.features, nullF(w.revenue), nullI(w.occ), nullT(w.rep)}
		for c := range wantRow {
			if fmt.Sprint(g[c]) != fmt.Sprint(wantRow[c]) {
				t.Fatalf("row %d (%s/%s) column %s: Load stored %v, the generator %v",
					i, w.customer, w.id, got.Columns[c].Name, g[c], wantRow[c])
			}
		}
	}

	const partsSQL = `SELECT customer, activity, n, first_ts, last_ts, last_id FROM stream_partitions ORDER BY customer, activity`
	gp, err := db.Query(ctx, partsSQL, 0)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := gen.QueryContext(ctx, partsSQL)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var n int
	for ; rows.Next(); n++ {
		var cust, act, lastID string
		var cnt int64
		var first, last time.Time
		if err := rows.Scan(&cust, &act, &cnt, &first, &last, &lastID); err != nil {
			t.Fatal(err)
		}
		if n >= len(gp.Rows) || fmt.Sprint(gp.Rows[n]) != fmt.Sprint([]any{cust, act, cnt, first, last, lastID}) {
			t.Fatalf("stream_partitions row %d: generator %v, Load %v", n, []any{cust, act, cnt, first, last, lastID}, gp.Rows)
		}
	}
	if n != len(gp.Rows) || n != 8 {
		t.Fatalf("stream_partitions: generator %d rows, Load %d, want 8 (2 customers x 4 activities)", n, len(gp.Rows))
	}
}

const streamDumpSQL = `SELECT activity_id, ts, customer, activity, feature_json::VARCHAR AS features, revenue_impact,
    _activity_occurrence, _activity_repeated_at, _received_at, _source
FROM claude_stream ORDER BY customer, activity_id`

type streamRow struct {
	id, customer, activity, features, source string
	ts, received                             time.Time
	revenue                                  sql.NullFloat64
	occ                                      sql.NullInt64
	rep                                      sql.NullTime
}

func dumpStream(t *testing.T, db *sql.DB) []streamRow {
	t.Helper()
	rows, err := db.Query(streamDumpSQL)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []streamRow
	for rows.Next() {
		var r streamRow
		if err := rows.Scan(&r.id, &r.ts, &r.customer, &r.activity, &r.features, &r.revenue, &r.occ, &r.rep, &r.received, &r.source); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func nullF(v sql.NullFloat64) any {
	if v.Valid {
		return v.Float64
	}
	return nil
}

func nullI(v sql.NullInt64) any {
	if v.Valid {
		return v.Int64
	}
	return nil
}

func nullT(v sql.NullTime) any {
	if v.Valid {
		return v.Time
	}
	return nil
}
