package sqltmpl

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/activitybi/activitybi/internal/event"
	"github.com/activitybi/activitybi/internal/warehouse"
	"github.com/activitybi/activitybi/internal/warehouse/duckdb"
)

// reportPercentiles adds p50/p95/p99 of per-call latencies to the
// benchmark's output (as internal/cache's benchmarks do).
func reportPercentiles(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	at := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Nanoseconds()) }
	b.ReportMetric(at(0.50), "p50-ns")
	b.ReportMetric(at(0.95), "p95-ns")
	b.ReportMetric(at(0.99), "p99-ns")
}

// BenchmarkRender: one Render on the submit_query path (validate the
// parameters, resolve the window, build the statement), for a small
// template with defaults, one with every kind of parameter given, and the
// largest template.
func BenchmarkRender(b *testing.B) {
	lib := Default()
	now := time.Date(2026, 3, 31, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct{ name, template, params string }{
		{"tool_stats/defaults", "tool_stats", ``},
		{"tool_calls_over_time/all_params", "tool_calls_over_time", `{"from": "2026-03-01T00:00:00Z", "to": "2026-03-31", "bucket": "hour", "by": "server", "tool": "Bash", "server": "shell", "limit": 1000}`},
		{"usage_summary/defaults", "usage_summary", `{"days": 30}`},
		{"invalid", "tool_stats", `{"days": 0, "tool": 5, "colour": "red"}`},
	} {
		params := json.RawMessage(c.params)
		b.Run(c.name, func(b *testing.B) {
			lat := make([]time.Duration, 0, b.N)
			b.ReportAllocs()
			for b.Loop() {
				t0 := time.Now()
				_, err := lib.Render(c.template, params, DuckDB, now)
				lat = append(lat, time.Since(t0))
				if (err != nil) != (c.name == "invalid") {
					b.Fatal(err)
				}
			}
			reportPercentiles(b, lat)
		})
	}
}

// benchEvents is the size of each customer's stream in BenchmarkExecute.
const benchEvents = 100_000

// benchWarehouse holds two customers of benchEvents events each over the 30
// days before fxNow: sessions of a prompt, a few tool calls and a response.
func benchWarehouse(b *testing.B) *duckdb.DB {
	b.Helper()
	db := openWarehouse(b)
	tools := []string{"Bash", "Read", "Edit", "Grep", "WebFetch", "Task"}
	servers := []string{"shell", "fs", "fs", "fs", "fetch", ""}
	models := []string{"claude-sonnet-4-5", "claude-haiku-4-5", "claude-opus-4-1"}
	start := fxNow.Add(-30 * 24 * time.Hour)
	step := 30 * 24 * time.Hour / benchEvents
	for _, customer := range []string{"alice", "bob"} {
		var batch warehouse.Batch
		for i := 0; i < benchEvents; i++ {
			ts := start.Add(time.Duration(i) * step)
			session := fmt.Sprintf("s-%d", i/10)
			var act string
			var f map[string]any
			var cost *float64
			switch i % 10 {
			case 0:
				act, f = "started_session", map[string]any{"session_id": session, "project": fmt.Sprintf("p%d", i/1000%7)}
			case 1:
				act, f = "submitted_prompt", map[string]any{"session_id": session}
			case 9:
				c := -float64(i%50) / 1000
				cost = &c
				act, f = "completed_response", map[string]any{"session_id": session, "model": models[i%3],
					"input_tokens": 1000 + i%500, "output_tokens": 100 + i%70, "first_token_ms": 300 + i%900, "latency_ms": 2000 + i%5000}
			default:
				k := i % len(tools)
				act, f = "called_tool", map[string]any{"session_id": session, "tool": tools[k], "server": servers[k],
					"success": i%23 != 0, "duration_ms": 5 + i%2000}
			}
			e, err := event.Normalize(event.Input{ActivityID: fmt.Sprintf("b%d", i), TS: &ts, Activity: act, Features: mustJSON(f), RevenueImpact: cost},
				event.Defaults{Customer: customer, Source: event.SourceMCP, Now: func() time.Time { return fxNow }})
			if err != nil {
				b.Fatal(err)
			}
			batch.Events = append(batch.Events, e)
			if len(batch.Events) == 20_000 {
				if _, err := db.Load(context.Background(), &batch); err != nil {
					b.Fatal(err)
				}
				batch.Events = batch.Events[:0]
			}
		}
	}
	return db
}

// BenchmarkExecute: each template with its defaults on a warehouse of two
// customers with 100,000 events each over 30 days, through CustomerQuery
// (parse check cached after the first call, view filter, READ ONLY
// transaction): what a query ticket costs the engine. cpu-ms/op is the
// process's CPU time per run (DuckDB's threads included), which other load
// on the machine inflates less than the wall-clock percentiles.
func BenchmarkExecute(b *testing.B) {
	db := benchWarehouse(b)
	lib := Default()
	ctx := context.Background()
	for _, tp := range lib.List() {
		b.Run(tp.Name, func(b *testing.B) {
			r, err := lib.Render(tp.Name, json.RawMessage(baseParams[tp.Name]), DuckDB, fxNow)
			if err != nil {
				b.Fatal(err)
			}
			lat := make([]time.Duration, 0, b.N)
			var rows int
			cpu0 := processCPU()
			for b.Loop() {
				t0 := time.Now()
				t, err := db.CustomerQuery(ctx, "alice", r.SQL, r.Args, 10_000)
				lat = append(lat, time.Since(t0))
				if err != nil {
					b.Fatal(err)
				}
				rows = len(t.Rows)
			}
			b.ReportMetric(float64(processCPU()-cpu0)/1e6/float64(len(lat)), "cpu-ms/op")
			b.ReportMetric(float64(rows), "rows")
			reportPercentiles(b, lat)
		})
	}
}
