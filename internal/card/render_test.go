package card

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/activitybi/activitybi/internal/warehouse"
)

// TestConcurrentRenders: renders from many goroutines give the bytes of a
// render alone (the font cache and the drawing libraries share no state
// that changes output).
func TestConcurrentRenders(t *testing.T) {
	t.Parallel()
	cases := goldenCases()
	for i := range cases {
		cases[i].opts.DPI = MinDPI // small PNGs: the drawing is the same, the test cheaper
	}
	want := make([]*Card, len(cases))
	for i, c := range cases {
		var err error
		if want[i], err = Render(c.t, c.spec, c.opts); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, 2*len(cases))
	for range 2 {
		for i, c := range cases {
			wg.Go(func() {
				got, err := Render(c.t, c.spec, c.opts)
				switch {
				case err != nil:
					errs <- err
				case !bytes.Equal(got.SVG, want[i].SVG) || !bytes.Equal(got.PNG, want[i].PNG) || got.Markdown != want[i].Markdown:
					errs <- fmt.Errorf("%s: a concurrent render differs", c.name)
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestSeriesCap: more series than MaxSeries keeps the largest, in the
// order they came, and says which were left out.
func TestSeriesCap(t *testing.T) {
	t.Parallel()
	tbl := &warehouse.Table{Columns: cols("day", "DATE", "tool", "VARCHAR", "calls", "BIGINT")}
	for d := range 3 {
		for i := range 11 {
			// tool_00 is the smallest, tool_10 the largest.
			tbl.Rows = append(tbl.Rows, []any{t0.AddDate(0, 0, d), fmt.Sprintf("tool_%02d", i), int64(10 + i)})
		}
	}
	c, err := Render(tbl, Spec{Kind: KindLine, X: "day", Y: []string{"calls"}, Series: "tool"}, Options{Formats: FormatSVG})
	if err != nil {
		t.Fatal(err)
	}
	if !c.Capped {
		t.Fatal("not capped")
	}
	want := "3 more series not drawn (9 rows; at most 8 series, the largest by total): tool_00, tool_01, tool_02."
	if len(c.Notes) != 1 || c.Notes[0] != want {
		t.Fatalf("notes %q, want %q", c.Notes, want)
	}
	svg := string(c.SVG)
	for i := range 11 {
		name := fmt.Sprintf(">tool_%02d<", i)
		if drawn := strings.Contains(svg, name); drawn != (i >= 3) {
			t.Errorf("%s in the legend: %v", name, drawn)
		}
	}
	if !strings.Contains(svg, "Top 8 series of 11 drawn") {
		t.Error("the picture does not say it is capped")
	}
	if strings.Index(svg, ">tool_03<") > strings.Index(svg, ">tool_10<") {
		t.Error("kept series are not in the order they came")
	}
}

// TestCapsSayHowMany: each limit hit says in the notes what was left out,
// sets Capped and is counted.
func TestCapsSayHowMany(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	for _, tc := range []struct {
		kind  Kind
		limit string
		note  string
	}{
		{KindLine, limitPoints, "18,000 rows not drawn: at most 500 points per series (the first in the result's order); aggregate in SQL to draw the whole range."},
		{KindBar, limitCategories, "940 more categories not drawn (18,800 rows; at most 60 categories, the first met in the result's order)."},
		{KindTable, limitTableRows, "19,970 rows not shown: a table card shows at most 30 rows; order and limit them in SQL."},
		{KindKPI, limitPoints, "The sparkline draws the last 500 of 20,000 values."},
		{KindHeatmap, limitCategories, "340 more columns not drawn (17,000 rows; at most 60 columns, the first met in the result's order)."},
	} {
		tbl, s := bigTable(tc.kind, 20_000)
		c, err := Render(tbl, s, Options{Formats: FormatNone, Metrics: m})
		if err != nil {
			t.Fatal(err)
		}
		if !c.Capped || !strings.Contains(strings.Join(c.Notes, "\n"), tc.note) {
			t.Errorf("%s: Capped %v, notes %q; want %q", tc.kind, c.Capped, c.Notes, tc.note)
		}
		if !strings.Contains(c.Markdown, "\nNotes:\n- ") {
			t.Errorf("%s: the Markdown has no notes:\n%s", tc.kind, c.Markdown)
		}
	}
	for limit, want := range map[string]float64{limitPoints: 2, limitCategories: 2, limitTableRows: 1, limitSeries: 1} {
		if got := testutil.ToFloat64(m.limits.WithLabelValues(limit)); got != want {
			t.Errorf("limit %s counted %v times, want %v", limit, got, want)
		}
	}
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	if again := NewMetrics(reg); again.renders != m.renders {
		t.Fatal("a second NewMetrics on one registry made new counters")
	}
	ok := func(tbl *warehouse.Table, s Spec) {
		t.Helper()
		if _, err := Render(tbl, s, Options{Formats: FormatNone, Metrics: m}); err != nil {
			t.Fatal(err)
		}
	}
	ok(callsByTool(), Spec{Kind: KindBar, X: "tool", Y: []string{"calls"}})
	ok(callsByTool(), Spec{Kind: KindBar, X: "tool", Y: []string{"calls"}})
	ok(&warehouse.Table{Columns: cols("tool", "VARCHAR", "calls", "BIGINT")}, Spec{Kind: KindBar, X: "tool", Y: []string{"calls"}})
	for _, s := range []Spec{{Kind: "pie"}, {Kind: "pie2"}, {Kind: KindKPI, Y: []string{"nope"}}} {
		if _, err := Render(callsByTool(), s, Options{Metrics: m}); err == nil {
			t.Fatal("no error")
		}
	}
	for _, tc := range []struct {
		kind, outcome string
		want          float64
	}{
		{"bar", outcomeOK, 2}, {"bar", outcomeNoData, 1}, {"invalid", outcomeInvalidSpec, 2}, {"kpi", outcomeInvalidSpec, 1},
	} {
		if got := testutil.ToFloat64(m.renders.WithLabelValues(tc.kind, tc.outcome)); got != tc.want {
			t.Errorf("renders{%s,%s} = %v, want %v", tc.kind, tc.outcome, got, tc.want)
		}
	}
	if n := testutil.CollectAndCount(m.duration); n != 1 {
		t.Errorf("%d duration series, want 1 (bar)", n)
	}
	// nil Metrics: nothing is counted and nothing breaks.
	if _, err := Render(callsByTool(), Spec{Kind: KindBar, X: "tool", Y: []string{"calls"}}, Options{Formats: FormatNone}); err != nil {
		t.Fatal(err)
	}
}

// TestMaxRows: rows after MaxRows are not read, and the card says so.
func TestMaxRows(t *testing.T) {
	t.Parallel()
	m := NewMetrics(prometheus.NewRegistry())
	c, err := Render(callsByTool(), Spec{Kind: KindBar, X: "tool", Y: []string{"calls"}}, Options{MaxRows: 5, Formats: FormatSVG, Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	want := "Only the first 5 rows were read; 7 more were not (at most 5; aggregate in SQL)."
	if !c.Capped || len(c.Notes) != 1 || c.Notes[0] != want {
		t.Fatalf("Capped %v, notes %q", c.Capped, c.Notes)
	}
	if !strings.Contains(c.Markdown, "5 categories; total 9,590.") || !strings.Contains(string(c.SVG), "First 5 rows read") {
		t.Errorf("Markdown %q; the SVG says it was capped: %v", c.Markdown, strings.Contains(string(c.SVG), "First 5 rows read"))
	}
	if got := testutil.ToFloat64(m.limits.WithLabelValues(limitRows)); got != 1 {
		t.Errorf("max_rows counted %v times", got)
	}
}

// TestTruncatedResult: a result the query itself cut says so.
func TestTruncatedResult(t *testing.T) {
	t.Parallel()
	tbl := callsByTool()
	tbl.Truncated = true
	c, err := Render(tbl, Spec{Kind: KindBar, X: "tool", Y: []string{"calls"}}, Options{Formats: FormatNone, MaxRows: 5})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"Only the first 5 rows were read; 7 more were not (at most 5; aggregate in SQL).",
		"The query returned only its first 12 rows; the result had more.",
	}
	if !slices.Equal(c.Notes, want) {
		t.Fatalf("notes %q, want %q", c.Notes, want)
	}
}
