package memory

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestBigCustomer: a customer with 1M events and 10,000 insights (beside
// another customer) gets a bounded context that renders within max_tokens
// and pages to the end. Building the fixture takes ~5 s; skipped with
// -short.
func TestBigCustomer(t *testing.T) {
	if testing.Short() {
		t.Skip("1M-event fixture; run without -short")
	}
	b := bigBuilder(t, nil)
	t.Logf("fixture: %d events and %d insights built in %s", bigEvents, bigInsights, bigTook.Round(time.Millisecond))
	ctx := context.Background()
	for _, scope := range []string{"", "proj-1", "/home/big/src/proj-3"} {
		start := time.Now()
		c, err := b.Build(ctx, "big", scope)
		if err != nil {
			t.Fatalf("scope %q: %v", scope, err)
		}
		t.Logf("scope %q: built in %s: %d events read since %s, %d sessions, %d facts, %d insights, %d tools, %d failures",
			scope, time.Since(start).Round(time.Microsecond), c.Coverage.Events, c.Coverage.From.Format(time.DateTime),
			len(c.Sessions), len(c.Facts), len(c.Insights), len(c.Tools), len(c.Failures))

		if !c.Coverage.Capped || c.Coverage.Events != DefaultMaxEvents {
			t.Errorf("coverage %+v: want a read capped at %d", c.Coverage, DefaultMaxEvents)
		}
		// The read holds 20 sessions; a scope keeps the 4 of its project.
		sessions := DefaultRecentSessions
		if scope != "" {
			sessions = 4
		}
		if len(c.Sessions) != sessions || len(c.Insights) != DefaultMaxInsights || len(c.Tools) != 12 ||
			len(c.Failures) == 0 || len(c.Failures) > DefaultMaxFailures {
			t.Errorf("sizes: %d sessions %d insights %d tools %d failures", len(c.Sessions), len(c.Insights), len(c.Tools), len(c.Failures))
		}
		// The last session ends 10 s x 249 after its start; sessions with
		// and without a session_id alternate.
		s := c.Sessions[0]
		if s.Events != 250 || s.End.Sub(s.Start) != 2490*time.Second || s.Activities[0] != (ActivityCount{"called_tool", 149}) {
			t.Errorf("latest session %+v", s)
		}
		ids := 0
		for _, s := range c.Sessions {
			if s.ID != "" {
				ids++
			}
			if scope != "" && !strings.HasSuffix(s.Place, scope[len(scope)-1:]) {
				t.Errorf("scope %q: session in %q", scope, s.Place)
			}
		}
		if scope == "" && ids != 5 {
			t.Errorf("%d of 10 sessions by session_id, want 5", ids)
		}
		facts := 20 + 10 // user prefs, one project's facts
		if scope == "" {
			facts = 20 + 50
		}
		if scope == "/home/big/src/proj-3" {
			facts = 20 // project:<cwd> is no subject
		}
		if len(c.Facts) != facts {
			t.Errorf("scope %q: %d facts, want %d", scope, len(c.Facts), facts)
		}
		for _, f := range c.Facts {
			if strings.Contains(string(f.Value), "other") {
				t.Fatalf("another customer's fact: %+v", f)
			}
		}
		for _, tl := range c.Tools {
			if tl.Tool == "othertool" {
				t.Fatal("another customer's tool")
			}
		}

		for _, mt := range []int{MinMaxTokens, DefaultMaxTokens, HardMaxTokens} {
			p, err := Render(c, RenderRequest{MaxTokens: mt})
			if err != nil {
				t.Fatal(err)
			}
			checkPage(t, p, mt)
		}
		// Page through everything at the default size.
		want := countItems(contextItems(c))
		got, pages, cur := 0, 0, ""
		for {
			p, err := Render(c, RenderRequest{Cursor: cur})
			if err != nil {
				t.Fatal(err)
			}
			checkPage(t, p, DefaultMaxTokens)
			got += textItems(p.Text)
			pages++
			if !p.Truncated {
				break
			}
			cur = p.NextCursor
		}
		if got != want {
			t.Errorf("paged %d items in %d pages, want %d", got, pages, want)
		}
	}
}

// BenchmarkBuild is Build on the 1M-event, 10,000-insight customer (the
// get_context cold path without the MCP round trip), reporting p50/p95/p99
// of single Builds and the process CPU time per Build (cpu-ms/op: less
// inflated than wall time when other work shares the machine). The
// MaxEvents sub-benchmarks show the cost of the bounded read; events and
// insights time each statement alone.
//
//	go test -run '^$' -bench Build -benchtime 200x ./internal/memory/
func BenchmarkBuild(b *testing.B) {
	ctx := context.Background()
	windowStart := bigNow.Add(-DefaultWindow)
	for _, c := range []struct {
		name      string
		maxEvents int
		run       func(*Builder) error
	}{
		{"all", 0, func(bb *Builder) error { _, err := bb.Build(ctx, "big", ""); return err }},
		{"scope", 0, func(bb *Builder) error { _, err := bb.Build(ctx, "big", "proj-1"); return err }},
		{"all/MaxEvents=1000", 1000, func(bb *Builder) error { _, err := bb.Build(ctx, "big", ""); return err }},
		{"all/MaxEvents=10000", 10_000, func(bb *Builder) error { _, err := bb.Build(ctx, "big", ""); return err }},
		{"events.sql", 0, func(bb *Builder) error { _, err := bb.events(ctx, "big", "", windowStart, windowStart); return err }},
		{"insights.sql", 0, func(bb *Builder) error { _, err := bb.insights(ctx, "big", "", windowStart); return err }},
	} {
		b.Run(c.name, func(b *testing.B) {
			bb := bigBuilder(b, func(o *Options) { o.MaxEvents = c.maxEvents })
			// Warm: the driver's statement check cache and connections.
			if err := c.run(bb); err != nil {
				b.Fatal(err)
			}
			lat := make([]time.Duration, 0, b.N)
			cpu0 := processCPU()
			b.ResetTimer()
			for b.Loop() {
				start := time.Now()
				if err := c.run(bb); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(start))
			}
			b.StopTimer()
			if n := len(lat); n > 0 {
				b.ReportMetric(float64((processCPU()-cpu0).Microseconds())/1000/float64(n), "cpu-ms/op")
			}
			reportPercentiles(b, lat)
		})
	}
}

// BenchmarkRender renders the first page of a large context.
func BenchmarkRender(b *testing.B) {
	c := largeContext(1)
	for _, mt := range []int{DefaultMaxTokens, HardMaxTokens} {
		b.Run(fmt.Sprintf("MaxTokens=%d", mt), func(b *testing.B) {
			b.ReportAllocs()
			lat := make([]time.Duration, 0, b.N)
			for b.Loop() {
				start := time.Now()
				if _, err := Render(c, RenderRequest{MaxTokens: mt}); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(start))
			}
			reportPercentiles(b, lat)
		})
	}
}

func reportPercentiles(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	at := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
	b.ReportMetric(at(0.50), "p50-ms")
	b.ReportMetric(at(0.95), "p95-ms")
	b.ReportMetric(at(0.99), "p99-ms")
}
