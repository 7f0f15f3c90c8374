package dashboard

import (
	"fmt"
	"html/template"
	"math"
	"strings"
	"time"

	"github.com/activitybi/activitybi/internal/warehouse"
)

// Sparkline geometry.
const (
	sparkW = 120
	sparkH = 28
	// maxSparkPoints bounds the values a sparkline draws (insights.sql
	// samples a longer trend down to about this many, keeping its first
	// and last): one per point of its width, so that a value logged every
	// minute does not make the page grow with its atoms.
	maxSparkPoints = 120
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
		name := fmt.Sprint(r[1])
		if r[1] == nil {
			name = "(none)"
		}
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
