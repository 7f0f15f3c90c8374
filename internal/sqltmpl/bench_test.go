package sqltmpl

import (
	"encoding/json"
	"slices"
	"testing"
	"time"
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
