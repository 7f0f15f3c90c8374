// Package memorytest writes big warehouses for the memory's tests and
// benchmarks: one customer with 1M events and 10,000 insights (WriteBig,
// the size tests of get_context), and a fleet of customers sharing 1M
// events (WriteFleet, bench/memory.md). Rows are written in SQL straight
// into the tables, in seconds; the occurrence columns are left NULL
// (nothing that reads these warehouses uses them) and stream_partitions is
// filled from the rows, as the loader would have.
//
// It imports the DuckDB driver: only tests and the load tool use it.
package memorytest

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	_ "github.com/duckdb/duckdb-go/v2" // the raw driver, to write in SQL

	"github.com/activitybi/activitybi/internal/warehouse/duckdb"
)

// The big customer ("big") beside a small one ("other"), at BigNow.
//
// big's events come in 4,000 sessions of 250 events, one every 2.19 h over
// the year before BigNow, each lasting 41.5 min (10 s between events): even
// sessions carry a session_id on every event, odd ones none (sessionized
// by the gap). Each starts with started_session naming project proj-<s%5>
// and its cwd; then per 5 events a submitted_prompt, three called_tool
// (tool<i%12> on srv<i%3>, duration_ms, every 37th failing with an error)
// and a completed_response costing $0.0123. other has 1,000 failing
// called_tool events and 100 facts of its own, all naming "other".
const (
	BigEvents   = 1_000_000
	BigInsights = 10_000
)

// BigNow is the big fixture's clock.
var BigNow = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)

const bigEventsSQL = `INSERT INTO claude_stream (activity_id, ts, customer, activity, feature_json,
    revenue_impact, _received_at, _source)
SELECT printf('%026d', i),
    $1::TIMESTAMP + to_microseconds((i // 250) * 7884000000 + (i % 250) * 10000000),
    'big',
    CASE WHEN i % 250 = 0 THEN 'started_session' WHEN i % 5 = 1 THEN 'submitted_prompt'
         WHEN i % 5 = 4 THEN 'completed_response' ELSE 'called_tool' END,
    '{' || CASE WHEN (i // 250) % 2 = 0 THEN '"session_id":"s' || (i // 250) || '",' ELSE '' END ||
    CASE WHEN i % 250 = 0 THEN '"project":"proj-' || ((i // 250) % 5) || '","cwd":"/home/big/src/proj-' || ((i // 250) % 5) || '"}'
         WHEN i % 5 = 1 THEN '"topic":"t' || (i % 97) || '"}'
         WHEN i % 5 = 4 THEN '"model":"claude-sonnet-4-5","input_tokens":' || (i % 5000) || ',"output_tokens":' || (i % 700) || '}'
         ELSE '"tool":"tool' || (i % 12) || '","server":"srv' || (i % 3) || '","success":' || (i % 37 <> 0) ||
              ',"duration_ms":' || ((i * 7) % 2000) ||
              CASE WHEN i % 37 = 0 THEN ',"error":"error ' || i || '"' ELSE '' END || '}' END,
    CASE WHEN i % 5 = 4 AND i % 250 <> 0 THEN -0.0123 END,
    $1::TIMESTAMP, 'mcp'
FROM range($2) t(i)`

const otherEventsSQL = `INSERT INTO claude_stream (activity_id, ts, customer, activity, feature_json,
    revenue_impact, _received_at, _source)
SELECT printf('o%025d', i), $1::TIMESTAMP - to_microseconds(i * 60000000), 'other', 'called_tool',
    '{"tool":"othertool","server":"othersrv","project":"other-proj","success":false,"error":"other-error"}',
    -1.0, $1::TIMESTAMP, 'mcp'
FROM range(1000) t(i)`

// big's insights, spread evenly over the year: user facts (20 metrics),
// project facts (proj-0..4, 10 metrics each), numeric insights on tool<k>
// (12 tools x 5 metrics) and on series:<k> (300 subjects: more than the
// builder's MaxInsights).
const bigInsightsSQL = `INSERT INTO insight_atoms (atom_id, customer_id, subject, metric, value, ts, _verified, _received_at, _source)
SELECT printf('a%025d', i), 'big',
    CASE WHEN i % 10 = 0 THEN 'user'
         WHEN i % 10 IN (1, 2) THEN 'project:proj-' || ((i // 10) % 5)
         WHEN i % 10 BETWEEN 3 AND 6 THEN 'tool:tool' || ((i // 10) % 12)
         ELSE 'series:' || ((i // 10) % 300) END,
    CASE WHEN i % 10 = 0 THEN 'pref_' || ((i // 10) % 20)
         WHEN i % 10 IN (1, 2) THEN 'fact_' || ((i // 50) % 10)
         WHEN i % 10 BETWEEN 3 AND 6 THEN 'metric_' || ((i // 120) % 5)
         ELSE 'value' END,
    CASE WHEN i % 10 IN (0, 1, 2) THEN ('"value ' || i || '"')::JSON ELSE (100 + (i % 50) * 3)::VARCHAR::JSON END,
    $1::TIMESTAMP - to_microseconds(($2 - i) * 3153600000),
    false, $1::TIMESTAMP, 'mcp'
FROM range($2) t(i)`

const otherInsightsSQL = `INSERT INTO insight_atoms (atom_id, customer_id, subject, metric, value, ts, _verified, _received_at, _source)
SELECT printf('o%025d', i), 'other', 'project:other-proj', 'secret_' || i, '"other-secret"', $1::TIMESTAMP - INTERVAL 1 DAY,
    false, $1::TIMESTAMP, 'mcp'
FROM range(100) t(i)`

// partitionsSQL fills stream_partitions from claude_stream: count, first
// and last ts, and the last row in (ts, activity_id) order per partition.
const partitionsSQL = `INSERT INTO stream_partitions (customer, activity, n, first_ts, last_ts, last_id)
SELECT customer, activity, count(*), min(ts), max(ts), arg_max(activity_id, (ts, activity_id))
FROM claude_stream GROUP BY customer, activity`

// WriteBig creates a migrated warehouse at path (which must not exist)
// holding the big customer and the other one.
func WriteBig(ctx context.Context, path string) error {
	start := BigNow.Add(-365 * 24 * time.Hour)
	return write(ctx, path, []stmt{
		{bigEventsSQL, []any{start, int64(BigEvents)}},
		{otherEventsSQL, []any{BigNow.Add(-time.Hour)}},
		{bigInsightsSQL, []any{BigNow, int64(BigInsights)}},
		{otherInsightsSQL, []any{BigNow}},
	})
}

// FleetOptions describe WriteFleet's customers. Zero means the default.
type FleetOptions struct {
	// Customers are named customer-000, customer-001, ...; default 100.
	Customers int
	// Events per customer; default 10,000 (1M in all).
	Events int
	// Insights per customer; default 100.
	Insights int
	// Now: the events end here; default time.Now (truncated to the
	// second), so that the fleet is active for a core started now.
	Now time.Time
}

// fleetEventsSQL: customer c's event j (i = j * customers + c) belongs to
// session j // 250 of 250 events, 10 s apart; sessions start every 2 h and
// end at $1; even sessions carry a session_id, odd ones are found by the
// gap. The mix and features are the big customer's.
const fleetEventsSQL = `INSERT INTO claude_stream (activity_id, ts, customer, activity, feature_json,
    revenue_impact, _received_at, _source)
SELECT printf('f%025d', i),
    $1::TIMESTAMP - to_microseconds(((($3 - 1 - j) // 250) * 7200 + (249 - j % 250) * 10) * 1000000),
    printf('customer-%03d', c),
    CASE WHEN j % 250 = 0 THEN 'started_session' WHEN j % 5 = 1 THEN 'submitted_prompt'
         WHEN j % 5 = 4 THEN 'completed_response' ELSE 'called_tool' END,
    '{' || CASE WHEN (j // 250) % 2 = 0 THEN '"session_id":"s' || (j // 250) || '",' ELSE '' END ||
    CASE WHEN j % 250 = 0 THEN '"project":"proj-' || ((j // 250) % 5) || '","cwd":"/home/c' || c || '/src/proj-' || ((j // 250) % 5) || '"}'
         WHEN j % 5 = 1 THEN '"topic":"t' || (j % 97) || '"}'
         WHEN j % 5 = 4 THEN '"model":"claude-sonnet-4-5","input_tokens":' || (j % 5000) || ',"output_tokens":' || (j % 700) || '}'
         ELSE '"tool":"tool' || (j % 12) || '","server":"srv' || (j % 3) || '","success":' || (j % 37 <> 0) ||
              ',"duration_ms":' || ((j * 7) % 2000) ||
              CASE WHEN j % 37 = 0 THEN ',"error":"error ' || j || '"' ELSE '' END || '}' END,
    CASE WHEN j % 5 = 4 AND j % 250 <> 0 THEN -0.0123 END,
    $1::TIMESTAMP, 'mcp'
FROM (SELECT i, i % $2 AS c, i // $2 AS j FROM range($2 * $3) t(i))`

// fleetInsightsSQL: per customer, user facts (20 metrics), project facts
// and numeric tool insights, over the week before $1.
const fleetInsightsSQL = `INSERT INTO insight_atoms (atom_id, customer_id, subject, metric, value, ts, _verified, _received_at, _source)
SELECT printf('fa%024d', i), printf('customer-%03d', c),
    CASE WHEN j % 4 = 0 THEN 'user' WHEN j % 4 = 1 THEN 'project:proj-' || (j % 5) ELSE 'tool:tool' || (j % 12) END,
    CASE WHEN j % 4 = 0 THEN 'pref_' || (j % 20) WHEN j % 4 = 1 THEN 'fact_' || (j % 10) ELSE 'p95_ms' END,
    CASE WHEN j % 4 IN (0, 1) THEN ('"value ' || j || '"')::JSON ELSE (100 + (j % 50) * 3)::VARCHAR::JSON END,
    $1::TIMESTAMP - to_microseconds(($3 - j) * 6048000000 // $3),
    false, $1::TIMESTAMP, 'mcp'
FROM (SELECT i, i % $2 AS c, i // $2 AS j FROM range($2 * $3) t(i))`

// WriteFleet creates a migrated warehouse at path (which must not exist)
// holding o.Customers customers with o.Events events and o.Insights
// insights each, all within the week before o.Now.
func WriteFleet(ctx context.Context, path string, o FleetOptions) error {
	if o.Customers == 0 {
		o.Customers = 100
	}
	if o.Events == 0 {
		o.Events = 10_000
	}
	if o.Insights == 0 {
		o.Insights = 100
	}
	if o.Now.IsZero() {
		o.Now = time.Now().UTC().Truncate(time.Second)
	}
	if o.Customers < 1 || o.Customers > 1000 || o.Events < 250 || o.Events > 100_000 || o.Insights < 0 {
		return fmt.Errorf("memorytest: fleet of %d customers x %d events: want 1-1000 customers, 250-100,000 events each", o.Customers, o.Events)
	}
	return write(ctx, path, []stmt{
		{fleetEventsSQL, []any{o.Now, int64(o.Customers), int64(o.Events)}},
		{fleetInsightsSQL, []any{o.Now, int64(o.Customers), int64(o.Insights)}},
	})
}

type stmt struct {
	q    string
	args []any
}

// OpenMigrated creates a warehouse at path with the driver's migrations
// and returns it opened raw (no customer views, no locked configuration),
// for writing a fixture in SQL; the caller closes it.
func OpenMigrated(ctx context.Context, path string) (*sql.DB, error) {
	db, err := duckdb.Open(ctx, duckdb.Options{Path: path})
	if err != nil {
		return nil, err
	}
	if _, err := db.Migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	if err := db.Close(); err != nil {
		return nil, err
	}
	return sql.Open("duckdb", path)
}

// write migrates a new warehouse at path with the driver, then runs the
// statements on the raw database and fills stream_partitions.
func write(ctx context.Context, path string, stmts []stmt) error {
	raw, err := OpenMigrated(ctx, path)
	if err != nil {
		return err
	}
	defer raw.Close()
	for _, s := range append(stmts, stmt{partitionsSQL, nil}, stmt{"CHECKPOINT", nil}) {
		if _, err := raw.ExecContext(ctx, s.q, s.args...); err != nil {
			return fmt.Errorf("memorytest: %w", err)
		}
	}
	return raw.Close()
}
