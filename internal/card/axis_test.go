package card

import (
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/vg"

	"github.com/activitybi/activitybi/internal/warehouse"
)

func TestNiceScale(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		lo, hi  float64
		n       int
		integer bool
		want    []float64
	}{
		{0, 4200, 6, true, []float64{0, 1000, 2000, 3000, 4000, 5000}},
		{0, 3, 8, true, []float64{0, 1, 2, 3}},                  // whole data: no 0.5 steps
		{0, 0.9, 6, false, []float64{0, 0.2, 0.4, 0.6, 0.8, 1}}, // fractions when the data has them
		{-35, 80, 6, true, []float64{-50, 0, 50, 100}},
		{12, 12, 5, false, []float64{0, 5, 10, 15}}, // one value: from zero
		{0, 0, 5, true, []float64{0, 1}},
	} {
		got, step := niceScale(tc.lo, tc.hi, tc.n, tc.integer)
		if len(tc.want) > 0 && !reflect.DeepEqual(got, tc.want) {
			t.Errorf("niceScale(%v, %v, %d): %v, want %v", tc.lo, tc.hi, tc.n, got, tc.want)
		}
		// Always: at most n ticks, covering the range, a nice step, whole
		// steps for whole data.
		if len(got) > tc.n || len(got) < 2 || got[0] > tc.lo || got[len(got)-1] < tc.hi {
			t.Errorf("niceScale(%v, %v, %d) = %v does not cover the range in %d ticks", tc.lo, tc.hi, tc.n, got, tc.n)
		}
		m := step / math.Pow(10, math.Floor(math.Log10(step)))
		if !slices.ContainsFunc(niceSteps, func(s float64) bool { return math.Abs(s-m) < 1e-9 }) {
			t.Errorf("step %v is not 1, 2, 2.5 or 5 times a power of ten", step)
		}
		if tc.integer && step != math.Trunc(step) {
			t.Errorf("step %v for whole data", step)
		}
	}
}

func TestTickLabels(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		vals []float64
		step float64
		want string
	}{
		{[]float64{0, 2500, 5000, 7500}, 2500, "0 2,500 5,000 7,500"}, // small thousands in full
		{[]float64{0, 2000, 4000}, 2000, "0 2k 4k"},                   // unless whole in k
		{[]float64{0, 25000, 50000}, 25000, "0 25k 50k"},
		{[]float64{0, 0.25, 0.5, 0.75}, 0.25, "0 0.25 0.5 0.75"},
		{[]float64{0, 1e6, 2e6}, 1e6, "0 1M 2M"},
		{[]float64{-20, 0, 20}, 20, "-20 0 20"},
		{[]float64{0.1 + 0.2, 0.6}, 0.3, "0.3 0.6"}, // float noise does not show
		{[]float64{100, 200, 300}, 100, "100 200 300"},
		{[]float64{1000, 1001, 1002}, 1, "1,000 1,001 1,002"}, // a small step keeps the digits
	} {
		if got := strings.Join(tickLabels(tc.vals, tc.step), " "); got != tc.want {
			t.Errorf("tickLabels(%v, %v) = %q, want %q", tc.vals, tc.step, got, tc.want)
		}
	}
}

func TestWithUnit(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		v    float64
		unit string
		want string
	}{
		{12345, "events", "12,345 events"},
		{412.456, "ms", "412.46 ms"},
		{0.01234, "", "0.0123"},
		{2_500_000, "", "2.5M"},
		{184.3712, "USD", "$184.37"},
		{-3.5, "USD", "-$3.50"},
		{0.0042, "usd", "$0.0042"},
		{12.5, "%", "12.5%"},
		{1234.6, "", "1,235"},
		{-1e9, "", "-1B"},
	} {
		if got := withUnit(tc.v, tc.unit); got != tc.want {
			t.Errorf("withUnit(%v, %q) = %q, want %q", tc.v, tc.unit, got, tc.want)
		}
	}
	for _, tc := range []struct{ a, b float64 }{{100, 112}, {100, 96.6}, {100, 100.4}, {0, 5}, {5, 5}} {
		t.Logf("change(%v, %v) = %s", tc.a, tc.b, change(tc.a, tc.b))
	}
	if got := change(100, 112) + "|" + change(100, 96.6) + "|" + change(100, 100.4) + "|" + change(0, 5) + "|" + change(5, 5); got != "up 12%|down 3.4%|about the same (+0.4%)|up from 0|unchanged" {
		t.Errorf("change: %s", got)
	}
}

// TestTimeAxis: the date axis picks steps people count in, aligned to whole
// units, and its labels never overlap.
func TestTimeAxis(t *testing.T) {
	t.Parallel()
	sty := newPlot().X.Tick.Label
	at := func(s string) float64 {
		tm, err := time.Parse("2006-01-02 15:04", s)
		if err != nil {
			t.Fatal(err)
		}
		return unixSec(tm)
	}
	for _, tc := range []struct {
		name     string
		lo, hi   string
		w        vg.Length
		want     string // the labels, or "" to check only the rules
		wantStep time.Duration
	}{
		{"three days hourly", "2025-03-03 00:00", "2025-03-05 23:00", 500, "Mar 3|06:00|12:00|18:00|Mar 4|06:00|12:00|18:00|Mar 5|06:00|12:00|18:00", 6 * time.Hour},
		{"a month daily", "2025-03-03 00:00", "2025-04-01 00:00", 500, "Mar 3|Mar 10|Mar 17|Mar 24|Mar 31", 7 * 24 * time.Hour},
		{"an hour", "2025-03-03 10:00", "2025-03-03 11:00", 500, "10:00|10:05|10:10|10:15|10:20|10:25|10:30|10:35|10:40|10:45|10:50|10:55|11:00", 5 * time.Minute},
		{"two years", "2024-01-01 00:00", "2025-12-31 00:00", 500, "", 0},
		{"over new year", "2024-12-20 00:00", "2025-01-12 00:00", 500, "", 0},
		{"narrow card", "2025-03-03 00:00", "2025-03-05 23:00", 200, "", 0},
		{"one instant", "2025-03-03 12:00", "2025-03-03 12:00", 500, "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var a plot.Axis
			lo, hi := at(tc.lo), at(tc.hi)
			timeXAxis(&a, lo, hi, sty, tc.w)
			ticks := a.Tick.Marker.Ticks(a.Min, a.Max)
			var labels []string
			for _, tk := range ticks {
				labels = append(labels, tk.Label)
			}
			if tc.want != "" && strings.Join(labels, "|") != tc.want {
				t.Errorf("labels %q, want %q", strings.Join(labels, "|"), tc.want)
			}
			if len(ticks) < 2 {
				t.Fatalf("only %d ticks: %q", len(ticks), labels)
			}
			if tc.wantStep != 0 {
				if got := time.Duration((ticks[1].Value - ticks[0].Value) * 1e9); got != tc.wantStep {
					t.Errorf("step %v, want %v", got, tc.wantStep)
				}
			}
			span := a.Max - a.Min
			for i := 1; i < len(ticks); i++ {
				gap := tc.w * vg.Length((ticks[i].Value-ticks[i-1].Value)/span)
				need := (sty.Width(ticks[i].Label)+sty.Width(ticks[i-1].Label))/2 + tickGap
				if gap < need {
					t.Errorf("labels %q and %q overlap: %v apart, need %v", ticks[i-1].Label, ticks[i].Label, gap, need)
				}
			}
			for _, tk := range ticks {
				if tk.Value < a.Min || tk.Value > a.Max {
					t.Errorf("tick %q outside the axis", tk.Label)
				}
				if tm := timeAt(tk.Value); tm.Second() != 0 || tm.Nanosecond() != 0 {
					t.Errorf("tick %q at %v is not on a whole minute", tk.Label, tm)
				}
			}
			if tc.name == "over new year" && !strings.Contains(strings.Join(labels, "|"), "2025") {
				t.Errorf("an axis over new year does not say which year: %q", labels)
			}
		})
	}
}

// TestCategoryAxis: level labels when they fit; turned and then thinned
// labels when they do not; ordered categories thinned, never turned.
func TestCategoryAxis(t *testing.T) {
	t.Parallel()
	short := []string{"Bash", "Read", "Edit"}
	var long, days []string
	for i := range 60 {
		long = append(long, "/v1/resource/"+strings.Repeat("x", i%9))
		days = append(days, time.Date(2025, 3, 1+i%28, 0, 0, 0, 0, time.UTC).Format("Jan 2"))
	}
	for _, tc := range []struct {
		name    string
		labels  []string
		ordered bool
		rotated bool
	}{
		{"few short", short, false, false},
		{"many long", long, false, true},
		{"many days", days, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newPlot().X
			categoryAxis(&a, tc.labels, 500, tc.ordered)
			ticks := a.Tick.Marker.Ticks(a.Min, a.Max)
			if rot := a.Tick.Label.Rotation != 0; rot != tc.rotated {
				t.Errorf("rotated %v, want %v", rot, tc.rotated)
			}
			every := len(tc.labels)
			if len(ticks) > 1 {
				every = int(ticks[1].Value - ticks[0].Value)
			}
			// Every label fits its share; one label more would not (for
			// level labels, the widest).
			band := func(every int) vg.Length { return vg.Length(500) / vg.Length(len(tc.labels)) * vg.Length(every) }
			var widest vg.Length
			for _, tk := range ticks {
				need := a.Tick.Label.Width(tk.Label) + tickGap/2
				if tc.rotated {
					need = a.Tick.Label.Height(tk.Label) * 1.4
				}
				widest = max(widest, need)
			}
			if widest > band(every) {
				t.Errorf("every %d-th label: %v each, labels need %v", every, band(every), widest)
			}
			if every > 1 && !tc.rotated && widest <= band(every-1) {
				t.Errorf("every %d-th label, but every %d-th fits", every, every-1)
			}
			if tc.name == "few short" && (every != 1 || len(ticks) != 3) {
				t.Errorf("short labels thinned: %d ticks, every %d", len(ticks), every)
			}
		})
	}
}

func TestAxisLabels(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		s    Spec
		want string
	}{
		{Spec{Y: []string{"latency_ms"}, Unit: "ms"}, "Latency (ms)"},
		{Spec{Y: []string{"net_usd"}, Unit: "USD"}, "Net (USD)"},
		{Spec{Y: []string{"ms"}, Unit: "ms"}, "Ms"},
		{Spec{Y: []string{"calls"}, Unit: "calls"}, "Calls"},
		{Spec{Y: []string{"p95"}, Unit: "ms", YLabel: "p95 latency"}, "p95 latency (ms)"},
		{Spec{Y: []string{"a", "b"}, Unit: "ms"}, "ms"},
		{Spec{Y: []string{"a", "b"}}, ""},
	} {
		if got := yLabel(tc.s); got != tc.want {
			t.Errorf("yLabel(%+v) = %q, want %q", tc.s, got, tc.want)
		}
	}
	if got := xLabel(Spec{}, column{name: "ts", kind: colTime}); got != "Ts (UTC)" {
		t.Errorf("time x label %q", got)
	}
	if got := xLabel(Spec{XLabel: "Hour (UTC)"}, column{name: "h", kind: colTime}); got != "Hour (UTC)" {
		t.Errorf("time x label %q", got)
	}
}

// TestHugeCloseValuesRenderInBoundedTime: values just under the 1e18 a
// card still draws, a few units apart (two rows of a customer's own numbers),
// once made niceScale count its ticks with a float that no longer changed
// when incremented (above 2^53): the render never returned and its tick
// list grew until the process ran out of memory.
func TestHugeCloseValuesRenderInBoundedTime(t *testing.T) {
	t.Parallel()
	const big = int64(1_000_000_000_000_000_000)
	for n := 2; n <= 10; n++ {
		ticks, _ := niceScaleWithin(t, float64(big-128), float64(big), n)
		if len(ticks) > n || len(ticks) < 2 || ticks[0] > float64(big-128) || ticks[len(ticks)-1] < float64(big) {
			t.Errorf("niceScale(1e18-128, 1e18, %d) = %v does not cover the range in %d ticks", n, ticks, n)
		}
	}
	for _, tc := range []struct {
		name string
		t    *warehouse.Table
		spec Spec
	}{
		{"line y", &warehouse.Table{Columns: cols("day", "DATE", "tokens", "BIGINT"),
			Rows: [][]any{{t0, big - 128}, {t0.AddDate(0, 0, 1), big}}},
			Spec{Kind: KindLine, X: "day", Y: []string{"tokens"}}},
		{"line number x", &warehouse.Table{Columns: cols("id", "BIGINT", "n", "BIGINT"),
			Rows: [][]any{{big - 256, int64(1)}, {big, int64(2)}}},
			Spec{Kind: KindLine, X: "id", Y: []string{"n"}}},
		{"heatmap scale", &warehouse.Table{Columns: cols("day", "DATE", "tool", "VARCHAR", "tokens", "BIGINT"),
			Rows: [][]any{{t0, "a", big - 128}, {t0, "b", big}}},
			Spec{Kind: KindHeatmap, X: "day", Series: "tool", Y: []string{"tokens"}}},
	} {
		done := make(chan error, 1)
		go func() {
			_, err := Render(tc.t, tc.spec, Options{Formats: FormatSVG})
			done <- err
		}()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
		case <-time.After(10 * time.Second):
			// The render spins and allocates without end: stop here
			// rather than let it take the machine's memory.
			panic(tc.name + ": Render did not return in 10 s")
		}
	}
}

// niceScaleWithin runs niceScale, failing the test (and stopping the
// process) if it does not return in 10 s.
func niceScaleWithin(t *testing.T, lo, hi float64, n int) ([]float64, float64) {
	t.Helper()
	type res struct {
		ticks []float64
		step  float64
	}
	done := make(chan res, 1)
	go func() {
		ticks, step := niceScale(lo, hi, n, true)
		done <- res{ticks, step}
	}()
	select {
	case r := <-done:
		return r.ticks, r.step
	case <-time.After(10 * time.Second):
		panic(fmt.Sprintf("niceScale(%v, %v, %d) did not return in 10 s", lo, hi, n))
	}
}
