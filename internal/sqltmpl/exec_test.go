package sqltmpl

import (
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/activitybi/activitybi/internal/warehouse"
)

// Every template, with its defaults and with every value of every enum
// parameter, runs on a real DuckDB warehouse through CustomerQuery, returns
// the columns its metadata declares with the declared types, and shows
// alice nothing of bob's.
func TestExecuteEveryTemplateAndEnumValue(t *testing.T) {
	t.Parallel()
	db := fixture(t)
	for _, tp := range Default().List() {
		cases := []string{baseParams[tp.Name]}
		for _, p := range tp.Params {
			if p.Type != TypeEnum {
				continue
			}
			for _, v := range p.Values {
				params := map[string]any{p.Name: v}
				if base := baseParams[tp.Name]; base != "" {
					if err := json.Unmarshal([]byte(base), &params); err != nil {
						t.Fatal(err)
					}
					params[p.Name] = v
				}
				if p.Name == paramBucket && v == "hour" {
					params[paramDays] = 7
				}
				b, _ := json.Marshal(params)
				cases = append(cases, string(b))
			}
		}
		for _, params := range cases {
			tb := run(t, db, "alice", tp.Name, params)
			checkColumns(t, tp, params, tb)
			noBob(t, tp.Name+" "+params, tb)
		}
	}
}

func checkColumns(t *testing.T, tp *Template, params string, tb *warehouse.Table) {
	t.Helper()
	var got, want []string
	for _, c := range tb.Columns {
		got = append(got, c.Name+" "+c.Type)
	}
	for _, c := range tp.Columns {
		want = append(want, c.Name+" "+c.Type)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s %s: columns\n got %v\nwant %v", tp.Name, params, got, want)
	}
}

// noBob fails if any value of tb is one of bob's.
func noBob(t *testing.T, what string, tb *warehouse.Table) {
	t.Helper()
	for _, row := range tb.Rows {
		for _, v := range row {
			bobs := false
			switch v := v.(type) {
			case string:
				bobs = strings.Contains(strings.ToLower(v), "bob")
			case float64:
				bobs = v == 99999 || v == 777777 || v == 9.99
			case int64:
				bobs = v == 99999 || v == 777777
			}
			if bobs {
				t.Errorf("%s: bob's data in alice's result: %v", what, row)
			}
		}
	}
}

// rows renders tb's rows with floats rounded to 1e-6, for comparisons.
func rows(tb *warehouse.Table) [][]any {
	out := make([][]any, len(tb.Rows))
	for i, r := range tb.Rows {
		out[i] = make([]any, len(r))
		for j, v := range r {
			switch v := v.(type) {
			case float64:
				out[i][j] = math.Round(v*1e6) / 1e6
			case time.Time:
				out[i][j] = v.UTC().Format("2006-01-02 15:04")
			default:
				out[i][j] = v
			}
		}
	}
	return out
}

// Results worked out by hand from the fixture's lists (fixture_test.go).
func TestExecuteHandChecked(t *testing.T) {
	t.Parallel()
	db := fixture(t)
	type R = []any
	cases := []struct {
		name, template, params string
		want                   [][]any
	}{
		{
			// Bash this week: 100, 200, 1000 (failed), 300, 400. p95 of five
			// values: position 0.95*4 = 3.8 between 400 and 1000: 400 +
			// 0.8*600 = 880; p99: 400 + 0.96*600 = 976. Read: 30, 50.
			"tool_stats default", "tool_stats", ``,
			[][]any{
				R{"Bash", "shell", int64(5), int64(1), 0.2, 300.0, 880.0, 976.0, 1000.0},
				R{"Read", "fs", int64(2), int64(0), 0.0, 40.0, 49.0, 49.8, 50.0},
				R{"WebFetch", "fetch", int64(1), int64(1), 1.0, nil, nil, nil, nil},
			},
		},
		{
			// 14 days take in last week's two Bash calls, one with server
			// "" and one without: both in the server "" row.
			"tool_stats 14 days, Bash only", "tool_stats", `{"days": 14, "tool": "Bash"}`,
			[][]any{
				R{"Bash", "shell", int64(5), int64(1), 0.2, 300.0, 880.0, 976.0, 1000.0},
				R{"Bash", "", int64(2), int64(0), 0.0, 60.0, 69.0, 69.8, 70.0},
			},
		},
		{
			"tool_stats min_calls", "tool_stats", `{"min_calls": 2, "server": "fs"}`,
			[][]any{R{"Read", "fs", int64(2), int64(0), 0.0, 40.0, 49.0, 49.8, 50.0}},
		},
		{
			"mcp_server_stats", "mcp_server_stats", ``,
			[][]any{
				R{"shell", int64(1), int64(5), int64(1), 0.2, 300.0, 880.0, 976.0},
				R{"fs", int64(1), int64(2), int64(0), 0.0, 40.0, 49.0, 49.8},
				R{"fetch", int64(1), int64(1), int64(1), 1.0, nil, nil, nil},
			},
		},
		{
			"tool_errors Bash", "tool_errors", `{"tool": "Bash"}`,
			[][]any{R{"2026-03-30 09:04", "Bash", "shell", "exit status 1", "s-1", 1000.0}},
		},
		{
			"slow_tool_calls over 250ms", "slow_tool_calls", `{"slower_than": "250ms"}`,
			[][]any{
				R{"2026-03-30 09:04", "Bash", "shell", 1000.0, true, "s-1"},
				R{"2026-03-31 08:03", "Bash", "shell", 400.0, false, "s-2"},
				R{"2026-03-31 08:02", "Bash", "shell", 300.0, false, "s-2"},
			},
		},
		{
			"slow_tool_calls seconds as a number", "slow_tool_calls", `{"slower_than": 0.5}`,
			[][]any{R{"2026-03-30 09:04", "Bash", "shell", 1000.0, true, "s-1"}},
		},
		{
			"tool_calls_over_time by server", "tool_calls_over_time", `{"by": "server"}`,
			[][]any{
				R{"2026-03-30 00:00", "shell", int64(3), int64(1)},
				R{"2026-03-30 00:00", "fs", int64(1), int64(0)},
				R{"2026-03-31 00:00", "shell", int64(2), int64(0)},
				R{"2026-03-31 00:00", "fetch", int64(1), int64(1)},
				R{"2026-03-31 00:00", "fs", int64(1), int64(0)},
			},
		},
		{
			// Bash on 03-30: 100, 200, 1000 -> p50 200, p95 200+0.9*800 = 920.
			"tool_latency_over_time Bash", "tool_latency_over_time", `{"tool": "Bash"}`,
			[][]any{
				R{"2026-03-30 00:00", int64(3), 200.0, 920.0, 984.0},
				R{"2026-03-31 00:00", int64(2), 350.0, 395.0, 399.0},
			},
		},
		{
			// sonnet: first token 500, 700; response 2000, 3000. haiku's
			// response time is its duration_ms (no latency_ms).
			"response_latency", "response_latency", ``,
			[][]any{
				R{"claude-sonnet-4-5", int64(2), 600.0, 690.0, 698.0, 2500.0, 2950.0, 2990.0},
				R{"claude-haiku-4-5", int64(1), 100.0, 100.0, 100.0, 800.0, 800.0, 800.0},
			},
		},
		{
			"response_latency_over_time haiku", "response_latency_over_time", `{"model": "claude-haiku-4-5"}`,
			[][]any{R{"2026-03-31 00:00", int64(1), 100.0, 100.0, 100.0, 800.0, 800.0, 800.0}},
		},
		{
			// 30 days: sonnet 4000+1000+500 in, 400+200+100 out, 0.10+0.05+0.03.
			"usage_cost by model", "usage_cost", ``,
			[][]any{
				R{"claude-sonnet-4-5", int64(3), int64(5500), int64(700), int64(5000), int64(0), 0.18},
				R{"claude-haiku-4-5", int64(1), int64(300), int64(50), int64(0), int64(0), 0.01},
			},
		},
		{
			// Responses name no project: each takes its session's.
			"usage_cost by project", "usage_cost", `{"by": "project"}`,
			[][]any{
				R{"billing", int64(2), int64(5000), int64(600), int64(5000), int64(0), 0.15},
				R{"website", int64(2), int64(800), int64(150), int64(0), int64(0), 0.04},
			},
		},
		{
			"usage_cost by day", "usage_cost", `{"by": "day"}`,
			[][]any{
				R{"2026-03-18", int64(1), int64(4000), int64(400), int64(0), int64(0), 0.1},
				R{"2026-03-30", int64(1), int64(1000), int64(200), int64(5000), int64(0), 0.05},
				R{"2026-03-31", int64(2), int64(800), int64(150), int64(0), int64(0), 0.04},
			},
		},
		{
			"cost_over_time weekly, all", "cost_over_time", `{"bucket": "week", "by": "all"}`,
			[][]any{
				R{"2026-03-16 00:00", "all", 0.1, int64(4000), int64(400)},
				R{"2026-03-30 00:00", "all", 0.09, int64(1800), int64(350)},
			},
		},
		{
			// Sessions s-1 (30 min, 8 events) and s-2 (7 min, 8 events);
			// s-1's project comes from its started_session.
			"session_list", "session_list", ``,
			[][]any{
				R{"s-2", "website", "2026-03-31 08:00", "2026-03-31 08:07", 7.0, int64(8), int64(1), int64(4), int64(1), 0.04},
				R{"s-1", "billing", "2026-03-30 09:00", "2026-03-30 09:30", 30.0, int64(8), int64(1), int64(4), int64(1), 0.05},
			},
		},
		{
			"session_list billing over 14 days", "session_list", `{"project": "billing", "days": 14}`,
			[][]any{
				R{"s-1", "billing", "2026-03-30 09:00", "2026-03-30 09:30", 30.0, int64(8), int64(1), int64(4), int64(1), 0.05},
				R{"s-0", "billing", "2026-03-18 10:00", "2026-03-18 10:03", 3.0, int64(4), int64(0), int64(2), int64(0), 0.1},
			},
		},
		{
			"sessions_over_time weekly", "sessions_over_time", `{"bucket": "week", "from": "2026-03-16", "to": "2026-04-01"}`,
			[][]any{
				R{"2026-03-16 00:00", int64(1), int64(1), int64(0), int64(1)},
				R{"2026-03-30 00:00", int64(2), int64(2), int64(2), int64(3)},
			},
		},
		{
			"activity_over_time prompts", "activity_over_time", `{"activity": "submitted_prompt"}`,
			[][]any{
				R{"2026-03-10 00:00", "submitted_prompt", int64(1)},
				R{"2026-03-30 00:00", "submitted_prompt", int64(1)},
				R{"2026-03-31 00:00", "submitted_prompt", int64(1)},
			},
		},
		{
			"top_activities", "top_activities", `{"days": 7, "limit": 2}`,
			[][]any{
				R{"called_tool", int64(8), 0.5, "2026-03-30 09:02", "2026-03-31 08:05", 0.0},
				R{"completed_response", int64(3), 0.1875, "2026-03-30 09:06", "2026-03-31 08:07", 0.09},
			},
		},
		{
			// Mon 09h: s-1's 8 events; Tue 08h: s-2's 8; Tue 10h: 03-10's
			// prompt; Wed 10h: last week's 4.
			"activity_heatmap", "activity_heatmap", ``,
			[][]any{
				R{int64(1), int64(9), int64(8)},
				R{int64(2), int64(8), int64(8)},
				R{int64(2), int64(10), int64(1)},
				R{int64(3), int64(10), int64(4)},
			},
		},
		{
			// 03-25: 400 and 500 (avg 450); 03-30: 880; string and object
			// values skipped; bob's 1 never seen.
			"insight_series avg", "insight_series", `{"subject": "tool:Bash", "metric": "p95_latency_ms"}`,
			[][]any{
				R{"2026-03-25 00:00", "tool:Bash", "p95_latency_ms", "tool:Bash/p95_latency_ms", 450.0, int64(2)},
				R{"2026-03-30 00:00", "tool:Bash", "p95_latency_ms", "tool:Bash/p95_latency_ms", 880.0, int64(1)},
			},
		},
		{
			"insight_series last, weekly, by prefix", "insight_series", `{"subject_prefix": "tool:", "metric": "p95_latency_ms", "agg": "last", "bucket": "week"}`,
			[][]any{
				R{"2026-03-23 00:00", "tool:Bash", "p95_latency_ms", "tool:Bash/p95_latency_ms", 500.0, int64(2)},
				R{"2026-03-30 00:00", "tool:Bash", "p95_latency_ms", "tool:Bash/p95_latency_ms", 880.0, int64(1)},
				R{"2026-03-30 00:00", "tool:Read", "p95_latency_ms", "tool:Read/p95_latency_ms", 49.0, int64(1)},
			},
		},
		{
			"insight_latest", "insight_latest", `{"subject": "tool:Bash"}`,
			[][]any{
				R{"tool:Bash", "note", `{"flaky":true}`, "2026-03-30 12:30", int64(1)},
				R{"tool:Bash", "p95_latency_ms", "880", "2026-03-30 10:00", int64(3)},
			},
		},
		{
			// This week 0.03+0.05 for sonnet and 0.01 for haiku; last week
			// 0.10 for sonnet. Events without a model cost nothing.
			"period_comparison cost by model", "period_comparison", `{"metric": "cost_usd", "by": "model"}`,
			[][]any{
				R{"claude-sonnet-4-5", 0.08, 0.1, -0.02, -0.2},
				R{"claude-haiku-4-5", 0.01, 0.0, 0.01, nil},
				R{"(none)", 0.0, 0.0, 0.0, nil},
			},
		},
		{
			// Only started_session names a project; the session's other
			// events count under it, not under (none) (s-1 and s-2 this
			// week, s-0 the week before).
			"period_comparison sessions by project", "period_comparison", `{"metric": "sessions", "by": "project"}`,
			[][]any{
				R{"billing", 1.0, 1.0, 0.0, 0.0},
				R{"website", 1.0, 0.0, 1.0, nil},
			},
		},
		{
			"period_comparison tool calls by tool", "period_comparison", `{"metric": "tool_calls", "by": "tool"}`,
			[][]any{
				R{"Bash", 5.0, 2.0, 3.0, 1.5},
				R{"Read", 2.0, 0.0, 2.0, nil},
				R{"WebFetch", 1.0, 0.0, 1.0, nil},
				R{"(none)", 0.0, 0.0, 0.0, nil},
			},
		},
		{
			"usage_summary", "usage_summary", ``,
			[][]any{
				R{"events", 16.0, 4.0, 3.0},
				R{"sessions", 2.0, 1.0, 1.0},
				R{"prompts", 2.0, 0.0, nil},
				R{"responses", 3.0, 1.0, 2.0},
				R{"tool_calls", 8.0, 2.0, 3.0},
				R{"tool_errors", 2.0, 0.0, nil},
				R{"input_tokens", 1800.0, 4000.0, -0.55},
				R{"output_tokens", 350.0, 400.0, -0.125},
				R{"cost_usd", 0.09, 0.1, -0.1},
			},
		},
		{
			// An empty window still gives every KPI, as zeros.
			"usage_summary empty window", "usage_summary", `{"from": "2020-01-01", "to": "2020-01-02"}`,
			[][]any{
				R{"events", 0.0, 0.0, nil}, R{"sessions", 0.0, 0.0, nil}, R{"prompts", 0.0, 0.0, nil},
				R{"responses", 0.0, 0.0, nil}, R{"tool_calls", 0.0, 0.0, nil}, R{"tool_errors", 0.0, 0.0, nil},
				R{"input_tokens", 0.0, 0.0, nil}, R{"output_tokens", 0.0, 0.0, nil}, R{"cost_usd", 0.0, 0.0, nil},
			},
		},
	}
	seen := map[string]bool{}
	for _, c := range cases {
		seen[c.template] = true
		t.Run(c.name, func(t *testing.T) {
			got := rows(run(t, db, "alice", c.template, c.params))
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("%s %s:\n got %v\nwant %v", c.template, c.params, got, c.want)
			}
		})
	}
	for _, tp := range Default().List() {
		if !seen[tp.Name] {
			t.Errorf("template %s has no hand-checked result", tp.Name)
		}
	}
}

// The same templates for bob show bob's rows and none of alice's.
func TestExecuteOtherCustomer(t *testing.T) {
	t.Parallel()
	db := fixture(t)
	got := rows(run(t, db, "bob", "tool_stats", ``))
	want := [][]any{
		{"Bash", "shell", int64(1), int64(1), 1.0, 99999.0, 99999.0, 99999.0, 99999.0},
		{"BobTool", "bobserver", int64(1), int64(0), 0.0, 5.0, 5.0, 5.0, 5.0},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("bob's tool_stats:\n got %v\nwant %v", got, want)
	}
	got = rows(run(t, db, "bob", "insight_latest", ``))
	want = [][]any{
		{"bob-subject", "bob_metric", `"bob-secret"`, "2026-03-30 10:00", int64(1)},
		{"tool:Bash", "p95_latency_ms", "1", "2026-03-30 10:00", int64(1)},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("bob's insight_latest:\n got %v\nwant %v", got, want)
	}
	// A customer without rows gets empty results, not an error.
	if tb := run(t, db, "carol", "tool_stats", ``); len(tb.Rows) != 0 {
		t.Errorf("carol sees %v", tb.Rows)
	}
}
