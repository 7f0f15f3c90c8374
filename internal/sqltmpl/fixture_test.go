package sqltmpl

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/activitybi/activitybi/internal/event"
	"github.com/activitybi/activitybi/internal/warehouse"
	"github.com/activitybi/activitybi/internal/warehouse/duckdb"
)

// fxNow is the clock of every test: windows are counted back from it.
var fxNow = time.Date(2026, 3, 31, 12, 0, 0, 0, time.UTC)

func at(s string) time.Time {
	t, err := time.Parse("2006-01-02 15:04", s)
	if err != nil {
		panic(err)
	}
	return t
}

type fxEvent struct {
	ts       string
	activity string
	features string
	revenue  float64 // 0 = none
}

type fxInsight struct {
	ts, subject, metric, value string
}

// alice's history. The default 7-day window is [2026-03-24 12:00,
// 2026-03-31 12:00); the previous one [2026-03-17 12:00, 2026-03-24 12:00).
// Every number the tests expect can be worked out from these lists.
var aliceEvents = []fxEvent{
	// Previous week.
	{"2026-03-18 10:00", "started_session", `{"session_id":"s-0","project":"billing"}`, 0},
	{"2026-03-18 10:01", "called_tool", `{"session_id":"s-0","tool":"Bash","server":"","success":true,"duration_ms":50}`, 0},
	{"2026-03-18 10:02", "called_tool", `{"session_id":"s-0","tool":"Bash","success":true,"duration_ms":70}`, 0},
	{"2026-03-18 10:03", "completed_response", `{"session_id":"s-0","model":"claude-sonnet-4-5","input_tokens":4000,"output_tokens":400}`, -0.10},

	// This week, session s-1 in billing (project named on the start only).
	{"2026-03-30 09:00", "started_session", `{"session_id":"s-1","project":"billing"}`, 0},
	{"2026-03-30 09:01", "submitted_prompt", `{"session_id":"s-1"}`, 0},
	{"2026-03-30 09:02", "called_tool", `{"session_id":"s-1","tool":"Bash","server":"shell","success":true,"duration_ms":100}`, 0},
	{"2026-03-30 09:03", "called_tool", `{"session_id":"s-1","tool":"Bash","server":"shell","success":true,"duration_ms":200}`, 0},
	{"2026-03-30 09:04", "called_tool", `{"session_id":"s-1","tool":"Bash","server":"shell","success":false,"duration_ms":1000,"error":"exit status 1"}`, 0},
	{"2026-03-30 09:05", "called_tool", `{"session_id":"s-1","tool":"Read","server":"fs","success":true,"duration_ms":30}`, 0},
	{"2026-03-30 09:06", "completed_response", `{"session_id":"s-1","model":"claude-sonnet-4-5","input_tokens":1000,"output_tokens":200,"cache_read_input_tokens":5000,"first_token_ms":500,"latency_ms":2000}`, -0.05},
	{"2026-03-30 09:30", "ended_session", `{"session_id":"s-1"}`, 0},

	// This week, session s-2 in website.
	{"2026-03-31 08:00", "started_session", `{"session_id":"s-2","project":"website"}`, 0},
	{"2026-03-31 08:01", "submitted_prompt", `{"session_id":"s-2"}`, 0},
	{"2026-03-31 08:02", "called_tool", `{"session_id":"s-2","tool":"Bash","server":"shell","success":true,"duration_ms":300}`, 0},
	{"2026-03-31 08:03", "called_tool", `{"session_id":"s-2","tool":"Bash","server":"shell","success":true,"duration_ms":400}`, 0},
	{"2026-03-31 08:04", "called_tool", `{"session_id":"s-2","tool":"Read","server":"fs","success":true,"duration_ms":50}`, 0},
	{"2026-03-31 08:05", "called_tool", `{"session_id":"s-2","tool":"WebFetch","server":"fetch","error":"timeout after 30s"}`, 0},
	{"2026-03-31 08:06", "completed_response", `{"session_id":"s-2","model":"claude-sonnet-4-5","input_tokens":500,"output_tokens":100,"first_token_ms":700,"latency_ms":3000}`, -0.03},
	{"2026-03-31 08:07", "completed_response", `{"session_id":"s-2","model":"claude-haiku-4-5","input_tokens":300,"output_tokens":50,"first_token_ms":100,"duration_ms":800}`, -0.01},

	// Outside every default window but the 30-day ones.
	{"2026-03-10 10:00", "submitted_prompt", `{"project":"oldproj"}`, 0},
}

var aliceInsights = []fxInsight{
	{"2026-03-25 10:00", "tool:Bash", "p95_latency_ms", `400`},
	{"2026-03-25 14:00", "tool:Bash", "p95_latency_ms", `500`},
	{"2026-03-30 10:00", "tool:Bash", "p95_latency_ms", `880`},
	{"2026-03-30 11:00", "tool:Read", "p95_latency_ms", `49`},
	{"2026-03-30 12:00", "user", "prefers_language", `"go"`},
	{"2026-03-30 12:30", "tool:Bash", "note", `{"flaky":true}`},
}

// bob shares tools, models and subjects with alice, with values that would
// show in any of alice's numbers.
var bobEvents = []fxEvent{
	{"2026-03-30 10:00", "started_session", `{"session_id":"bob-s","project":"billing"}`, 0},
	{"2026-03-30 10:01", "called_tool", `{"session_id":"bob-s","tool":"Bash","server":"shell","success":false,"duration_ms":99999,"error":"bob-secret-error"}`, 0},
	{"2026-03-30 10:02", "completed_response", `{"session_id":"bob-s","model":"claude-sonnet-4-5","input_tokens":777777,"first_token_ms":99999}`, -9.99},
	{"2026-03-30 10:03", "called_tool", `{"session_id":"bob-s","tool":"BobTool","server":"bobserver","duration_ms":5}`, 0},
}

var bobInsights = []fxInsight{
	{"2026-03-30 10:00", "tool:Bash", "p95_latency_ms", `1`},
	{"2026-03-30 10:00", "bob-subject", "bob_metric", `"bob-secret"`},
}

func events(tb testing.TB, customer string, fx []fxEvent) []event.Event {
	tb.Helper()
	out := make([]event.Event, 0, len(fx))
	for i, f := range fx {
		ts := at(f.ts)
		in := event.Input{ActivityID: fmt.Sprintf("%s-%03d", customer, i), TS: &ts, Activity: f.activity, Features: json.RawMessage(f.features)}
		if f.revenue != 0 {
			r := f.revenue
			in.RevenueImpact = &r
		}
		e, err := event.Normalize(in, event.Defaults{Customer: customer, Source: event.SourceMCP, Now: func() time.Time { return fxNow }})
		if err != nil {
			tb.Fatalf("%s event %d: %v", customer, i, err)
		}
		out = append(out, e)
	}
	return out
}

func insights(tb testing.TB, customer string, fx []fxInsight) []event.Insight {
	tb.Helper()
	out := make([]event.Insight, 0, len(fx))
	for i, f := range fx {
		ts := at(f.ts)
		x, err := event.NormalizeInsight(event.InsightInput{
			AtomID: fmt.Sprintf("%s-i%03d", customer, i), TS: &ts,
			Subject: f.subject, Metric: f.metric, Value: json.RawMessage(f.value),
		}, event.Defaults{Customer: customer, Source: event.SourceMCP, Now: func() time.Time { return fxNow }})
		if err != nil {
			tb.Fatalf("%s insight %d: %v", customer, i, err)
		}
		out = append(out, x)
	}
	return out
}

// openWarehouse opens a migrated DuckDB warehouse in a temporary directory.
func openWarehouse(tb testing.TB) *duckdb.DB {
	tb.Helper()
	ctx := context.Background()
	db, err := duckdb.Open(ctx, duckdb.Options{Path: filepath.Join(tb.TempDir(), "w.duckdb")})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	if _, err := db.Migrate(ctx); err != nil {
		tb.Fatal(err)
	}
	return db
}

// fixture is a warehouse with alice's and bob's histories (bob's loaded
// first, so alice's rows are not simply the first of the table).
func fixture(tb testing.TB) *duckdb.DB {
	tb.Helper()
	db := openWarehouse(tb)
	for _, b := range []*warehouse.Batch{
		{Events: events(tb, "bob", bobEvents), Insights: insights(tb, "bob", bobInsights)},
		{Events: events(tb, "alice", aliceEvents), Insights: insights(tb, "alice", aliceInsights)},
	} {
		if _, err := db.Load(context.Background(), b); err != nil {
			tb.Fatal(err)
		}
	}
	return db
}

// baseParams are the smallest parameters each template renders with: its
// required ones.
var baseParams = map[string]string{
	"insight_series": `{"metric": "p95_latency_ms"}`,
}

// run renders name with params for DuckDB and runs it for customer.
func run(tb testing.TB, db *duckdb.DB, customer, name, params string) *warehouse.Table {
	tb.Helper()
	r, err := Default().Render(name, json.RawMessage(params), DuckDB, fxNow)
	if err != nil {
		tb.Fatalf("render %s %s: %v", name, params, err)
	}
	t, err := db.CustomerQuery(context.Background(), customer, r.SQL, r.Args, 1000)
	if err != nil {
		tb.Fatalf("run %s %s: %v\n%s", name, params, err, r.SQL)
	}
	return t
}
