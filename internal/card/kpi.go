package card

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/activitybi/activitybi/internal/warehouse"
)

// sparkMin is the fewest values that get a sparkline under the number.
const sparkMin = 3

type kpiData struct {
	value    float64
	hasPrev  bool
	prev     float64
	vsLabel  string    // "previous period", "2025-01-01"
	short    string    // vsLabel for the picture: "Mar 3"
	at       string    // x of the value, when x is given
	spark    []float64 // the values in order, for the sparkline
	count    int       // values read
	lo, hi   float64   // their range
	rows     int
	noValues bool
	notes    notes
}

func readKPI(t *warehouse.Table, s Spec, o Options) (*kpiData, error) {
	cs := newColumns(t)
	vc, err := cs.get("y[0]", s.Y[0], colNumber)
	if err != nil {
		return nil, err
	}
	var dc, xc *column
	if s.Delta != "" {
		c, err := cs.get("delta", s.Delta, colNumber)
		if err != nil {
			return nil, err
		}
		dc = &c
	}
	if s.X != "" {
		c, err := cs.get("x", s.X)
		if err != nil {
			return nil, err
		}
		xc = &c
	}
	type row struct {
		x    float64
		src  int // index in t.Rows, for the x label
		xl   string
		v, d float64
		hasD bool
	}
	rows := make([]row, 0, len(t.Rows))
	for ri, r := range t.Rows {
		if len(r) != len(t.Columns) {
			continue
		}
		v, ok := num(r[vc.idx])
		if !ok {
			continue
		}
		rw := row{v: v, src: ri}
		if dc != nil {
			rw.d, rw.hasD = num(r[dc.idx])
		}
		if xc != nil {
			if xc.kind != colCategory {
				x, ok := xval(*xc, r[xc.idx])
				if !ok {
					continue
				}
				rw.x = x
			}
		}
		rows = append(rows, rw)
	}
	d := &kpiData{rows: len(t.Rows)}
	if len(rows) == 0 {
		d.noValues = true
		return d, nil
	}
	byX := func(a, b row) int { return cmp.Compare(a.x, b.x) }
	if xc != nil && xc.kind != colCategory && !slices.IsSortedFunc(rows, byX) {
		slices.SortStableFunc(rows, byX)
	}
	// Only the first and the last row are named.
	if xc != nil {
		ends := []*row{&rows[0], &rows[len(rows)-1]}
		prec := timePrecisionOf(timeAt(ends[0].x), timeAt(ends[1].x))
		for _, e := range ends {
			if xc.kind == colTime {
				e.xl = formatTime(timeAt(e.x), prec)
			} else {
				e.xl = labelOf(t.Rows[e.src][xc.idx])
			}
		}
	}
	last := rows[len(rows)-1]
	d.value = last.v
	d.count, d.lo, d.hi = len(rows), rows[0].v, rows[0].v
	for _, r := range rows {
		d.lo, d.hi = math.Min(d.lo, r.v), math.Max(d.hi, r.v)
	}
	d.at = last.xl
	switch {
	case dc != nil:
		d.hasPrev, d.prev, d.vsLabel = last.hasD, last.d, "previous period"
		d.short = d.vsLabel
	case len(rows) >= 2:
		first := rows[0]
		d.hasPrev, d.prev = true, first.v
		switch {
		case xc != nil:
			d.vsLabel, d.short = first.xl, first.xl
			if xc.kind == colTime {
				d.short = timeAt(first.x).Format(categoryTimeLayout([]time.Time{timeAt(first.x), timeAt(last.x)}))
			}
		case len(rows) == 2:
			d.vsLabel, d.short = "previous value", "previous value"
		default:
			d.vsLabel = fmt.Sprintf("first of %d values", len(rows))
			d.short = d.vsLabel
		}
	}
	if len(rows) >= sparkMin {
		spark := rows
		if len(spark) > o.MaxPoints {
			// The sparkline shows the latest values; the number and its
			// change still come from all of them.
			spark = spark[len(spark)-o.MaxPoints:]
			d.notes.cap(limitPoints, fmt.Sprintf("Sparkline: last %d of %s values", o.MaxPoints, plainNumber(float64(len(rows)))),
				"The sparkline draws the last %d of %s values.", o.MaxPoints, plainNumber(float64(len(rows))))
		}
		for _, r := range spark {
			d.spark = append(d.spark, r.v)
		}
	}
	if len(rows) > 1 && dc != nil {
		d.notes.add("The result has %d rows; the card shows the last (by %s) with its %s.", len(rows), orderName(s), s.Delta)
	}
	return d, nil
}

func orderName(s Spec) string {
	if s.X != "" {
		return s.X
	}
	return "row order"
}

// deltaText is the change line under the number: "▲ +15% (+$1.61) vs
// previous period". The previous value itself is in the Markdown.
func (d *kpiData) deltaText(unit string) string {
	if !d.hasPrev {
		return ""
	}
	diff := d.value - d.prev
	arrow := "▲"
	switch {
	case diff < 0:
		arrow = "▼"
	case diff == 0:
		arrow = "="
	}
	rel := ""
	if d.prev != 0 {
		rel = pct(diff/math.Abs(d.prev)) + " "
	}
	sign := "+"
	if diff < 0 {
		sign = ""
	}
	if _, cur := currencySymbols[strings.ToUpper(unit)]; !cur && unit != "%" {
		unit = "" // "+22", not "+22 sessions": the number above has the unit
	}
	return fmt.Sprintf("%s %s(%s%s) vs %s", arrow, rel, sign, withUnit(diff, unit), d.short)
}

func buildKPI(t *warehouse.Table, s Spec, o Options) (*picture, error) {
	d, err := readKPI(t, s, o)
	if err != nil {
		return nil, err
	}
	title := cardTitle(s)
	if d.noValues {
		return noData(s, title, d.notes, d.rows), nil
	}
	w, h := s.size()
	f := frame{title: title, subtitle: capLine(d.notes, o)}
	var md strings.Builder
	fmt.Fprintf(&md, "%s: %s", mdTitle(title), withUnit(d.value, s.Unit))
	if d.at != "" {
		fmt.Fprintf(&md, " at %s", mdEscape(d.at))
	}
	if d.hasPrev {
		fmt.Fprintf(&md, ", %s vs %s (%s)", change(d.prev, d.value), mdEscape(d.vsLabel), withUnit(d.prev, s.Unit))
	}
	md.WriteString(".\n")
	if d.count >= sparkMin {
		fmt.Fprintf(&md, "- %s values, low %s, high %s.\n", plainNumber(float64(d.count)), withUnit(d.lo, s.Unit), withUnit(d.hi, s.Unit))
	}
	pic := &picture{w: vg.Points(float64(w)), h: vg.Points(float64(h)), md: md.String(), notes: d.notes.list, capped: d.notes.capped, hits: d.notes.hits}
	delta := d.deltaText(s.Unit)
	pic.draw = func(c draw.Canvas) {
		body := f.draw(c)
		bw := body.Max.X - body.Min.X
		// The number, with a non-currency unit set smaller beside it.
		number, unit := withUnit(d.value, ""), s.Unit
		if _, cur := currencySymbols[strings.ToUpper(s.Unit)]; cur || s.Unit == "%" {
			number, unit = withUnit(d.value, s.Unit), ""
		}
		size := vg.Length(kpiSize)
		big := textStyle(bold, size, ink)
		small := textStyle(sans, kpiDeltaSize, inkSoft)
		unitW := vg.Length(0)
		if unit != "" {
			unitW = small.Width(" "+unit) + 2
		}
		for size > 14 && big.Width(number)+unitW > bw {
			size -= 2
			big = textStyle(bold, size, ink)
		}
		y := body.Max.Y
		if len(d.spark) < sparkMin {
			// Without a sparkline the number and its change sit in the
			// middle of the tile, not at its top.
			block := big.Height(number)
			if delta != "" {
				block += 6 + textStyle(sans, kpiDeltaSize, inkSoft).Height(delta)
			}
			y -= max((body.Max.Y-body.Min.Y-block)/2, 0)
		}
		c.FillText(big, vg.Point{X: body.Min.X, Y: y}, number)
		bigH := big.FontExtents().Ascent
		if unit != "" {
			us := small
			us.YAlign = draw.YBottom
			// On the number's baseline.
			c.FillText(us, vg.Point{X: body.Min.X + big.Width(number) + 4, Y: y - bigH}, fitText(us, unit, bw-big.Width(number)-4))
		}
		y -= big.Height(number) + 6
		if delta != "" {
			ds := textStyle(sans, kpiDeltaSize, inkSoft)
			c.FillText(ds, vg.Point{X: body.Min.X, Y: y}, fitText(ds, delta, bw))
			y -= ds.Height(delta) + 8
		}
		if len(d.spark) >= sparkMin && y-body.Min.Y > 20 {
			drawSpark(c, d.spark, body.Min.X, body.Min.Y, body.Max.X, y)
		}
	}
	return pic, nil
}

// drawSpark draws values as a thin line in the box, the last value marked.
func drawSpark(c draw.Canvas, vals []float64, x0, y0, x1, y1 vg.Length) {
	lo, hi := slices.Min(vals), slices.Max(vals)
	if hi == lo {
		lo, hi = lo-1, hi+1
	}
	n := len(vals)
	pts := make([]vg.Point, n)
	for i, v := range vals {
		pts[i] = vg.Point{
			X: x0 + (x1-x0)*vg.Length(float64(i)/float64(n-1)),
			Y: y0 + 3 + (y1-y0-6)*vg.Length((v-lo)/(hi-lo)),
		}
	}
	c.StrokeLines(draw.LineStyle{Color: palette[0], Width: 1.5}, pts)
	c.DrawGlyph(draw.GlyphStyle{Color: palette[0], Radius: 2.5, Shape: draw.CircleGlyph{}}, pts[n-1])
}
