package card

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/activitybi/activitybi/internal/warehouse"
)

// largeRows is the size of the "large" benchmark results: far more than a
// card draws, to show that reading and capping them stays cheap.
const largeRows = 100_000

// largeTable returns a result of largeRows rows for kind k.
func largeTable(k Kind) (*warehouse.Table, Spec) { return bigTable(k, largeRows) }

// bigTable returns a result of n rows for kind k, more than a card draws
// when n is 20,000 or more.
func bigTable(k Kind, largeRows int) (*warehouse.Table, Spec) {
	t := &warehouse.Table{}
	switch k {
	case KindLine:
		t.Columns = cols("minute", "TIMESTAMP", "model", "VARCHAR", "p95_ms", "DOUBLE")
		for i := range largeRows {
			t.Rows = append(t.Rows, []any{t0.Add(time.Duration(i/4) * time.Minute), fmt.Sprintf("model-%d", i%4), float64(1000 + i%977)})
		}
		return t, Spec{Kind: k, X: "minute", Y: []string{"p95_ms"}, Series: "model", Unit: "ms"}
	case KindBar, KindStackedBar:
		t.Columns = cols("tool", "VARCHAR", "model", "VARCHAR", "calls", "BIGINT")
		for i := range largeRows {
			t.Rows = append(t.Rows, []any{fmt.Sprintf("tool_%04d", i/20), fmt.Sprintf("model-%d", i%20), int64(i % 1013)})
		}
		return t, Spec{Kind: k, X: "tool", Y: []string{"calls"}, Series: "model"}
	case KindTable:
		return sessionsN(largeRows), Spec{Kind: k}
	case KindKPI:
		t.Columns = cols("day", "TIMESTAMP", "events", "BIGINT")
		for i := range largeRows {
			t.Rows = append(t.Rows, []any{t0.Add(time.Duration(i) * time.Minute), int64(500 + i%313)})
		}
		return t, Spec{Kind: k, X: "day", Y: []string{"events"}}
	case KindHeatmap:
		t.Columns = cols("x", "BIGINT", "y", "VARCHAR", "v", "BIGINT")
		for i := range largeRows {
			t.Rows = append(t.Rows, []any{int64(i % 400), fmt.Sprintf("row %03d", i/400), int64(i % 997)})
		}
		return t, Spec{Kind: k, X: "x", Series: "y", Y: []string{"v"}}
	}
	panic(k)
}

func sessionsN(n int) *warehouse.Table {
	t := sessions()
	base := t.Rows
	t.Rows = nil
	for i := range n {
		t.Rows = append(t.Rows, base[i%len(base)])
	}
	return t
}

// smallTable is the golden fixture of kind k.
func smallTable(k Kind) (*warehouse.Table, Spec) {
	for _, c := range goldenCases() {
		if c.spec.Kind == k {
			return c.t, c.spec
		}
	}
	panic(k)
}

// BenchmarkRender renders each kind from a small result (the golden
// fixture) and a large one (100,000 rows, capped), SVG and PNG, and
// reports the latency percentiles of one Render.
func BenchmarkRender(b *testing.B) {
	for _, k := range kinds {
		for _, size := range []string{"small", "large"} {
			b.Run(fmt.Sprintf("%s/%s", k, size), func(b *testing.B) {
				t, s := smallTable(k)
				if size == "large" {
					t, s = largeTable(k)
				}
				b.ReportAllocs()
				var lat []time.Duration
				cpu0 := processCPU()
				for b.Loop() {
					start := time.Now()
					c, err := Render(t, s, Options{})
					lat = append(lat, time.Since(start))
					if err != nil {
						b.Fatal(err)
					}
					if size == "large" && !c.Capped {
						b.Fatal("a large result was not capped")
					}
				}
				reportPercentiles(b, lat)
				b.ReportMetric(float64((processCPU()-cpu0).Microseconds())/1000/float64(len(lat)), "cpu-ms/op")
			})
		}
	}
}

// BenchmarkRenderFormat splits the cost of one card (the line fixture) by
// output: Markdown only, SVG, PNG.
func BenchmarkRenderFormat(b *testing.B) {
	t, s := smallTable(KindLine)
	for _, f := range []struct {
		name string
		f    Format
	}{{"markdown", FormatNone}, {"svg", FormatSVG}, {"png", FormatPNG}} {
		b.Run(f.name, func(b *testing.B) {
			var lat []time.Duration
			cpu0 := processCPU()
			for b.Loop() {
				start := time.Now()
				if _, err := Render(t, s, Options{Formats: f.f}); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(start))
			}
			reportPercentiles(b, lat)
			b.ReportMetric(float64((processCPU()-cpu0).Microseconds())/1000/float64(len(lat)), "cpu-ms/op")
		})
	}
}

// reportPercentiles adds p50/p95/p99 of the per-render latencies, in
// milliseconds, to the benchmark's output.
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
