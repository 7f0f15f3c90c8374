package dashboard

import (
	"errors"
	"fmt"
	"html"
	"html/template"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/activitybi/activitybi/internal/warehouse"
)

// ChartSpec says what to draw from a page's table; the fields mean what
// they mean in the card package's Spec (kind line, bar or stacked_bar; X
// the category or time column; Y the value columns; Series the column that
// splits rows into series).
type ChartSpec struct {
	Kind   string
	Title  string
	X      string
	Y      []string
	Series string
	XLabel string
	YLabel string
	Unit   string
}

// CardFunc draws a chart as SVG. The core passes the card package's
// renderer, so that the dashboard shows the same cards as Claude gets.
type CardFunc func(t *warehouse.Table, s ChartSpec) ([]byte, error)

// palette is the Okabe-Ito colour-blind-safe palette (the card package's).
var palette = []string{"#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"}

// Built-in chart geometry, in SVG user units.
const (
	chartW      = 720
	chartH      = 260
	chartLeft   = 64
	chartRight  = 16
	chartTop    = 16
	chartBottom = 64
	maxXLabels  = 8
)

// builtinChart draws line, bar and stacked_bar charts as plain SVG with
// presentation attributes only (no style attributes, no script), every
// text escaped. It is the dashboard's own renderer when no CardFunc is
// given.
func builtinChart(t *warehouse.Table, s ChartSpec) ([]byte, error) {
	xs, series, err := chartData(t, s)
	if err != nil {
		return nil, err
	}
	if len(xs) == 0 {
		return nil, errors.New("no rows to draw")
	}
	stacked := s.Kind == "stacked_bar"
	maxY := 0.0
	for i := range xs {
		sum := 0.0
		for _, sr := range series {
			v := sr.vals[i]
			if stacked {
				sum += v
			} else {
				maxY = math.Max(maxY, v)
			}
		}
		maxY = math.Max(maxY, sum)
	}
	top := niceCeil(maxY)
	pw, ph := float64(chartW-chartLeft-chartRight), float64(chartH-chartTop-chartBottom)
	yOf := func(v float64) float64 { return chartTop + ph - v/top*ph }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" width="%d" height="%d" font-family="Liberation Sans, Arial, Helvetica, sans-serif" role="img" aria-label="%s">`,
		chartW, chartH, chartW, chartH, html.EscapeString(s.Title))
	fmt.Fprintf(&b, `<title>%s</title>`, html.EscapeString(s.Title))
	// Grid and y labels: 0, half, top.
	for _, f := range []float64{0, 0.5, 1} {
		y := yOf(top * f)
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd" stroke-width="1"/>`, chartLeft, y, chartW-chartRight, y)
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" font-size="11" text-anchor="end" fill="#555">%s</text>`,
			chartLeft-6, y+4, html.EscapeString(axisNumber(top*f, s.Unit)))
	}
	n := len(xs)
	slot := pw / float64(n)
	xCenter := func(i int) float64 { return chartLeft + slot*(float64(i)+0.5) }
	switch s.Kind {
	case "line":
		for si, sr := range series {
			var pts strings.Builder
			for i, v := range sr.vals {
				fmt.Fprintf(&pts, "%.1f,%.1f ", xCenter(i), yOf(v))
			}
			c := palette[si%len(palette)]
			fmt.Fprintf(&b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"/>`, strings.TrimSpace(pts.String()), c)
			if n == 1 {
				fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"/>`, xCenter(0), yOf(sr.vals[0]), c)
			}
		}
	case "bar", "stacked_bar":
		groups := len(series)
		barW := slot * 0.8
		if !stacked {
			barW /= float64(groups)
		}
		for i := range xs {
			base := 0.0
			for si, sr := range series {
				v := sr.vals[i]
				x := xCenter(i) - slot*0.4
				if !stacked {
					x += barW * float64(si)
				}
				lo, hi := yOf(base), yOf(base+v)
				if stacked {
					base += v
				} else {
					lo, hi = yOf(0), yOf(v)
				}
				fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s</title></rect>`,
					x, hi, math.Max(barW-1, 1), math.Max(lo-hi, 0), palette[si%len(palette)],
					html.EscapeString(xs[i]+" · "+sr.name+": "+axisNumber(v, s.Unit)))
			}
		}
	default:
		return nil, fmt.Errorf("chart kind %q is not drawn here (line, bar, stacked_bar)", s.Kind)
	}
	// X labels: at most maxXLabels, evenly spaced.
	step := (n + maxXLabels - 1) / maxXLabels
	for i := 0; i < n; i += step {
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" font-size="11" text-anchor="middle" fill="#555">%s</text>`,
			xCenter(i), chartH-chartBottom+16, html.EscapeString(clipRunes(xs[i], 18)))
	}
	// Legend: one swatch per series.
	lx := float64(chartLeft)
	for si, sr := range series {
		name := clipRunes(sr.name, 28)
		fmt.Fprintf(&b, `<rect x="%.1f" y="%d" width="10" height="10" fill="%s"/>`, lx, chartH-24, palette[si%len(palette)])
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" font-size="11" fill="#333">%s</text>`, lx+14, chartH-15, html.EscapeString(name))
		lx += 14 + 7*float64(len([]rune(name))) + 16
	}
	b.WriteString(`</svg>`)
	return []byte(b.String()), nil
}

type chartSeries struct {
	name string
	vals []float64
}

// chartData reads the x categories and series of a table for a spec:
// with Series, one Y column split by the series column; without, one
// series per Y column.
func chartData(t *warehouse.Table, s ChartSpec) ([]string, []chartSeries, error) {
	col := func(name string) (int, error) {
		for i, c := range t.Columns {
			if c.Name == name {
				return i, nil
			}
		}
		return -1, fmt.Errorf("column %q is not in the result", name)
	}
	xi, err := col(s.X)
	if err != nil {
		return nil, nil, err
	}
	if len(s.Y) == 0 {
		return nil, nil, errors.New("no value column")
	}
	yis := make([]int, len(s.Y))
	for i, y := range s.Y {
		if yis[i], err = col(y); err != nil {
			return nil, nil, err
		}
	}
	si := -1
	if s.Series != "" {
		if si, err = col(s.Series); err != nil {
			return nil, nil, err
		}
	}
	var xs []string
	xIndex := map[string]int{}
	var series []chartSeries
	sIndex := map[string]int{}
	add := func(name string) int {
		k, ok := sIndex[name]
		if !ok {
			k = len(series)
			sIndex[name] = k
			series = append(series, chartSeries{name: name, vals: make([]float64, len(xs))})
		}
		return k
	}
	for _, row := range t.Rows {
		x := label(row[xi])
		i, ok := xIndex[x]
		if !ok {
			i = len(xs)
			xIndex[x] = i
			xs = append(xs, x)
			for k := range series {
				series[k].vals = append(series[k].vals, 0)
			}
		}
		if si >= 0 {
			k := add(label(row[si]))
			series[k].vals[i] += number(row[yis[0]])
			continue
		}
		for j, yi := range yis {
			k := add(s.Y[j])
			series[k].vals[i] += number(row[yi])
		}
	}
	return xs, series, nil
}

// label is a value as an axis or legend label.
func label(v any) string {
	switch v := v.(type) {
	case nil:
		return "(none)"
	case string:
		return v
	case time.Time:
		if v.Hour() == 0 && v.Minute() == 0 {
			return v.Format("Jan 2")
		}
		return v.Format("Jan 2 15:04")
	}
	return fmt.Sprint(v)
}

// number is a table value as a float (0 for anything not numeric).
func number(v any) float64 {
	switch v := v.(type) {
	case int64:
		return float64(v)
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return 0
		}
		return v
	case string:
		f, err := strconv.ParseFloat(v, 64)
		if err == nil && !math.IsNaN(f) && !math.IsInf(f, 0) {
			return f
		}
	}
	return 0
}

// niceCeil rounds a chart's top up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

func axisNumber(v float64, unit string) string {
	switch unit {
	case "USD":
		return money(v)
	case "ms":
		return millis(v)
	}
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return intText(int64(v))
	}
	return strconv.FormatFloat(v, 'g', 3, 64)
}

func clipRunes(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// Sparkline geometry.
const (
	sparkW = 120
	sparkH = 28
)

// sparkline draws numbers as a small line (at least two points) with the
// last one marked; nil for fewer than two.
func sparkline(vals []float64) template.HTML {
	if len(vals) < 2 {
		return ""
	}
	lo, hi := vals[0], vals[0]
	for _, v := range vals {
		lo, hi = math.Min(lo, v), math.Max(hi, v)
	}
	span := hi - lo
	if span == 0 {
		span = 1
	}
	var pts strings.Builder
	var lx, ly float64
	for i, v := range vals {
		lx = 2 + float64(i)/float64(len(vals)-1)*(sparkW-4)
		ly = 2 + (1-(v-lo)/span)*(sparkH-4)
		fmt.Fprintf(&pts, "%.1f,%.1f ", lx, ly)
	}
	return template.HTML(fmt.Sprintf(`<svg class="spark" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-label="trend of %d values"><polyline points="%s" fill="none" stroke="#0072B2" stroke-width="1.5"/><circle cx="%.1f" cy="%.1f" r="2.5" fill="#D55E00"/></svg>`,
		sparkW, sparkH, sparkW, sparkH, len(vals), strings.TrimSpace(pts.String()), lx, ly))
}

// fillBuckets completes a time series (bucket, series, value) with zero
// rows for every bucket of [from, to) and every series it has, so lines
// do not jump over empty hours or days.
func fillBuckets(t *warehouse.Table, bucket string, from, to time.Time) *warehouse.Table {
	if t == nil || len(t.Columns) < 3 {
		return t
	}
	var names []string
	seen := map[string]bool{}
	have := map[string]map[time.Time]any{}
	for _, r := range t.Rows {
		ts, ok := r[0].(time.Time)
		if !ok {
			return t
		}
		name := label(r[1])
		if !seen[name] {
			seen[name] = true
			names = append(names, name)
			have[name] = map[time.Time]any{}
		}
		have[name][ts.UTC()] = r[2]
	}
	out := &warehouse.Table{Columns: t.Columns, Truncated: t.Truncated}
	step := bucketStep(bucket)
	for b := truncBucket(bucket, from); b.Before(to); b = b.Add(step) {
		for _, name := range names {
			v, ok := have[name][b]
			if !ok {
				v = int64(0)
			}
			out.Rows = append(out.Rows, []any{b, name, v})
		}
	}
	return out
}
