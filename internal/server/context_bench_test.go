package server

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/activitybi/activitybi/internal/cache"
	"github.com/activitybi/activitybi/internal/memory"
	"github.com/activitybi/activitybi/internal/spool"
)

// benchContext is a context the size of bench/memory.md's fleet customer:
// 10 facts, 10 sessions of 250 events with 10 tools each, 6 insights, 12
// tools and 20 failures (~10 KB of JSON).
func benchContext() memory.Context {
	t0 := time.Date(2026, 11, 26, 6, 0, 0, 0, time.UTC)
	c := memory.Context{Version: 1795676135581221, AsOf: t0}
	for i := range 10 {
		c.Facts = append(c.Facts, memory.Fact{Subject: "user", Metric: fmt.Sprintf("pref_%d", i), Value: json.RawMessage(fmt.Sprintf(`"value %d"`, 80+i)), TS: t0.Add(-time.Duration(i) * time.Minute)})
	}
	for i := range 10 {
		s := memory.Session{ID: fmt.Sprintf("s%d", 40-i), Start: t0.Add(-time.Duration(2*i+1) * time.Hour), End: t0.Add(-time.Duration(2*i) * time.Hour), Events: 250, Place: fmt.Sprintf("proj-%d", i%5),
			Activities: []memory.ActivityCount{{Activity: "called_tool", Count: 149}, {Activity: "completed_response", Count: 50}, {Activity: "submitted_prompt", Count: 50}, {Activity: "started_session", Count: 1}},
			Failures:   i % 5, CostUSD: 0.615}
		for j := range 10 {
			s.Tools = append(s.Tools, fmt.Sprintf("tool%d", (i+j)%12))
		}
		c.Sessions = append(c.Sessions, s)
	}
	for i := range 6 {
		c.Insights = append(c.Insights, memory.InsightSummary{Subject: "project:proj-1", Metric: fmt.Sprintf("metric_%d", i), Value: json.RawMessage(`42.5`), TS: t0})
	}
	for i := range 12 {
		p50, p95 := 120.0, 840.5
		c.Tools = append(c.Tools, memory.ToolStat{Tool: fmt.Sprintf("tool%d", i), Calls: 1000 - i, Failures: i, P50Ms: &p50, P95Ms: &p95, LastUsed: t0})
	}
	for i := range 20 {
		c.Failures = append(c.Failures, memory.Failure{TS: t0.Add(-time.Duration(i) * time.Minute), Tool: "tool3", Error: "exit status 1: command failed"})
	}
	return c
}

// BenchmarkGetContextHot is a hot get_context (L1 hit, page rendered
// before) through a real go-sdk client and server over the SDK's in-memory
// transport (JSON-RPC encoded and decoded on both ends), the default page:
// what an edge and its client spend per call, allocations included
// (-benchmem: bytes and allocations per call; the edge's garbage
// collections follow from them).
func BenchmarkGetContextHot(b *testing.B) {
	c, err := cache.New(cache.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	bc := benchContext()
	js, err := json.Marshal(bc)
	if err != nil {
		b.Fatal(err)
	}
	load := func(context.Context, string, string) (cache.Entry, error) {
		return cache.Entry{Value: js, Version: bc.Version, AsOf: bc.AsOf}, nil
	}
	w, err := spool.Open(spool.Options{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { w.Close() })
	s, err := NewMCPServer(MCPOptions{Appender: w, Identity: FixedIdentity("bench"), Version: "bench", Memory: &Memory{Cache: c, Load: load}})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	cs := connectInMemory(b, s)
	params := &mcp.CallToolParams{Name: "get_context", Arguments: map[string]any{}}
	res, err := cs.CallTool(ctx, params)
	if err != nil || res.IsError {
		b.Fatal(err, res)
	}
	size, _ := json.Marshal(res)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if res, err := cs.CallTool(ctx, params); err != nil || res.IsError {
			b.Fatal(err, res)
		}
	}
	b.ReportMetric(float64(len(size)), "result-bytes")
}
