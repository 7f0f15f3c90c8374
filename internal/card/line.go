package card

import (
	"cmp"
	"fmt"
	"image/color"
	"math"
	"slices"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/activitybi/activitybi/internal/warehouse"
)

// pt is one point of a line; ok is false for a missing value, which
// breaks the line rather than bridging the gap.
type pt struct {
	x, y float64
	ok   bool
}

// markerMax is the most points per series that still get a dot each; a
// denser line reads better without them.
const markerMax = 40

type lineData struct {
	xc    column
	cats  *categories // x is text: positions are category indexes
	names []string
	pts   [][]pt
	notes notes
}

func readLine(t *warehouse.Table, s Spec, o Options) (*lineData, error) {
	cs := newColumns(t)
	xc, err := cs.get("x", s.X)
	if err != nil {
		return nil, err
	}
	ys, err := cs.values(s.Y)
	if err != nil {
		return nil, err
	}
	var sc *column
	if s.Series != "" {
		c, err := cs.get("series", s.Series)
		if err != nil {
			return nil, err
		}
		sc = &c
	}
	d := &lineData{xc: xc}
	if xc.kind == colCategory {
		d.cats = newCategories(xc)
	}
	ss := newSeriesSet()
	if sc == nil {
		for _, y := range ys {
			ss.id(y.name)
		}
	}
	var all [][]pt
	var noX, noValue, overPoints, catRows int
	for _, r := range t.Rows {
		if len(r) != len(t.Columns) {
			continue
		}
		var x float64
		if d.cats != nil {
			id, _, full := d.cats.id(r[xc.idx], o.MaxPoints)
			if full {
				catRows++
				continue
			}
			x = float64(id)
		} else {
			var ok bool
			if x, ok = xval(xc, r[xc.idx]); !ok {
				noX++
				continue
			}
		}
		for yi, y := range ys {
			si := yi
			if sc != nil {
				si = ss.id(labelOf(r[sc.idx]))
			}
			for len(all) <= si {
				all = append(all, nil)
			}
			if len(all[si]) >= o.MaxPoints {
				overPoints++
				continue
			}
			v, ok := num(r[y.idx])
			all[si] = append(all[si], pt{x: x, y: v, ok: ok})
			if ok {
				ss.totals[si] += math.Abs(v)
			} else {
				noValue++
			}
			ss.rows[si]++
		}
	}
	keep, dropped, droppedRows := ss.keep(o.MaxSeries)
	d.notes.seriesDropped(dropped, droppedRows, o.MaxSeries)
	for _, i := range keep {
		p := []pt(nil)
		if i < len(all) {
			p = all[i]
		}
		slices.SortStableFunc(p, func(a, b pt) int { return cmp.Compare(a.x, b.x) })
		d.names = append(d.names, ss.names[i])
		d.pts = append(d.pts, p)
	}
	if d.cats != nil {
		d.cats.finish()
	}
	if overPoints > 0 {
		d.notes.cap(limitPoints, fmt.Sprintf("Capped at %d points per series: %s not drawn", o.MaxPoints, count(overPoints, "row", "rows")), "%s not drawn: at most %d points per series (the first in the result's order); aggregate in SQL to draw the whole range.", count(overPoints, "row", "rows"), o.MaxPoints)
	}
	if catRows > 0 {
		d.notes.cap(limitPoints, fmt.Sprintf("First %d x values drawn: %s not drawn", o.MaxPoints, count(catRows, "row", "rows")), "%s not drawn: at most %d x values.", count(catRows, "row", "rows"), o.MaxPoints)
	}
	if noX > 0 {
		d.notes.add("%s skipped: %s is empty or not a %s.", count(noX, "row", "rows"), xc.name, xc.kind)
	}
	if noValue > 0 {
		d.notes.add("%s without a number: the line breaks there.", count(noValue, "value", "values"))
	}
	return d, nil
}

func (d *lineData) empty() bool {
	for _, p := range d.pts {
		for _, q := range p {
			if q.ok {
				return false
			}
		}
	}
	return true
}

func buildLine(t *warehouse.Table, s Spec, o Options) (*picture, error) {
	d, err := readLine(t, s, o)
	if err != nil {
		return nil, err
	}
	title := cardTitle(s)
	if d.empty() {
		return noData(s, title, d.notes, len(t.Rows)), nil
	}
	w, h := s.size()
	f := frame{title: title, subtitle: capLine(d.notes, o)}
	if len(d.names) > 1 {
		for i, n := range d.names {
			f.legend = append(f.legend, legendItem{name: seriesLabel(n, s), color: seriesColor(i), line: true})
		}
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	xlo, xhi := math.Inf(1), math.Inf(-1)
	integer := true
	for _, p := range d.pts {
		for _, q := range p {
			xlo, xhi = math.Min(xlo, q.x), math.Max(xhi, q.x)
			if q.ok {
				lo, hi = math.Min(lo, q.y), math.Max(hi, q.y)
				integer = integer && q.y == math.Trunc(q.y)
			}
		}
	}
	// A zero baseline unless the values sit far from zero, where it would
	// flatten the line.
	if lo > 0 && lo <= hi/2 {
		lo = 0
	}
	if hi < 0 && hi >= lo/2 {
		hi = 0
	}
	xInteger := true
	for _, p := range d.pts {
		for _, q := range p {
			xInteger = xInteger && q.x == math.Trunc(q.x)
		}
	}
	pic := &picture{w: vg.Points(float64(w)), h: vg.Points(float64(h)), notes: d.notes.list, capped: d.notes.capped, hits: d.notes.hits}
	pic.md = lineSummary(d, s, title)
	pic.draw = func(c draw.Canvas) {
		body := f.draw(c)
		p := newPlot()
		p.X.Label.Text = xLabel(s, d.xc)
		p.Y.Label.Text = yLabel(s)
		valueAxis(&p.Y, lo, hi, yTickCount(body), integer)
		dc := p.DataCanvas(body)
		switch {
		case d.cats != nil:
			categoryAxis(&p.X, d.cats.drawn(), dc.Max.X-dc.Min.X, false)
		case d.xc.kind == colTime:
			timeXAxis(&p.X, xlo, xhi, p.X.Tick.Label, dc.Max.X-dc.Min.X)
		default:
			numberXAxis(&p.X, xlo, xhi, xInteger, p.X.Tick.Label, dc.Max.X-dc.Min.X)
		}
		p.Add(gridLines{axis: &p.Y})
		for i, pts := range d.pts {
			p.Add(linePlotter{pts: pts, color: seriesColor(i), markers: len(pts) <= markerMax})
		}
		p.Draw(body)
	}
	return pic, nil
}

// yTickCount fits about one gridline per 40 points of height.
func yTickCount(c draw.Canvas) int {
	n := int((c.Max.Y - c.Min.Y) / 40)
	return min(max(n, 3), 8)
}

// linePlotter draws one series.
type linePlotter struct {
	pts     []pt
	color   color.Color
	markers bool
}

func (l linePlotter) Plot(c draw.Canvas, p *plot.Plot) {
	tx, ty := p.Transforms(&c)
	sty := draw.LineStyle{Color: l.color, Width: 1.75}
	var seg []vg.Point
	flush := func() {
		if len(seg) > 1 {
			c.StrokeLines(sty, c.ClipLinesXY(seg)...)
		}
		seg = seg[:0]
	}
	for i, q := range l.pts {
		if !q.ok {
			flush()
			continue
		}
		pt := vg.Point{X: tx(q.x), Y: ty(q.y)}
		seg = append(seg, pt)
		// A point alone between gaps would be invisible without a dot.
		alone := (i == 0 || !l.pts[i-1].ok) && (i == len(l.pts)-1 || !l.pts[i+1].ok)
		if l.markers || alone {
			c.DrawGlyph(draw.GlyphStyle{Color: l.color, Radius: 2.25, Shape: draw.CircleGlyph{}}, pt)
		}
	}
	flush()
}

// gridLines draws a light line at every y tick, and a darker one at zero
// when the axis crosses it.
// vertical draws them at the x axis's ticks instead (horizontal bars).
type gridLines struct {
	axis     *plot.Axis
	vertical bool
}

func (g gridLines) Plot(c draw.Canvas, p *plot.Plot) {
	tx, ty := p.Transforms(&c)
	for _, t := range g.axis.Tick.Marker.Ticks(g.axis.Min, g.axis.Max) {
		if t.Value < g.axis.Min || t.Value > g.axis.Max {
			continue
		}
		sty := draw.LineStyle{Color: gridColor, Width: 0.75}
		if t.Value == 0 && (g.axis.Min < 0 || g.vertical) {
			sty.Color = zeroColor
		}
		if g.vertical {
			c.StrokeLine2(sty, tx(t.Value), c.Min.Y, tx(t.Value), c.Max.Y)
		} else {
			c.StrokeLine2(sty, c.Min.X, ty(t.Value), c.Max.X, ty(t.Value))
		}
	}
}

// cardTitle is the spec's title or one made from the columns.
func cardTitle(s Spec) string {
	if s.Title != "" {
		return s.Title
	}
	var ys []string
	for _, y := range s.Y {
		ys = append(ys, withoutUnit(humanize(y), s.Unit))
	}
	v := strings.Join(ys, ", ")
	switch s.Kind {
	case KindTable:
		return "Table"
	case KindKPI:
		return v
	case KindHeatmap:
		return fmt.Sprintf("%s by %s and %s", v, strings.ToLower(humanize(s.X)), strings.ToLower(humanize(s.Series)))
	}
	if s.Series != "" {
		return fmt.Sprintf("%s by %s and %s", v, strings.ToLower(humanize(s.X)), strings.ToLower(humanize(s.Series)))
	}
	return fmt.Sprintf("%s by %s", v, strings.ToLower(humanize(s.X)))
}

// xLabel is the spec's x label or the column's, with "(UTC)" on time axes.
func xLabel(s Spec, xc column) string {
	l := s.XLabel
	if l == "" {
		l = humanize(xc.name)
	}
	if xc.kind == colTime && !strings.Contains(l, "UTC") {
		l += " (UTC)"
	}
	return l
}

// yLabel is the spec's y label (or the one value column's name) with the
// unit.
func yLabel(s Spec) string {
	l := s.YLabel
	if l == "" && len(s.Y) == 1 {
		l = withoutUnit(humanize(s.Y[0]), s.Unit)
	}
	switch {
	case s.Unit == "":
		return l
	case l == "":
		return s.Unit
	case strings.EqualFold(l, s.Unit), strings.Contains(l, "("+s.Unit+")"):
		return l
	}
	return l + " (" + s.Unit + ")"
}

// seriesLabel names a series in a legend: series values as they are,
// value columns humanized.
func seriesLabel(name string, s Spec) string {
	if s.Series != "" {
		return name
	}
	return withoutUnit(humanize(name), s.Unit)
}

// capLine is the one-line note under the title when something was not
// drawn.
func capLine(n notes, o Options) string {
	var parts []string
	if o.unread > 0 {
		parts = append(parts, fmt.Sprintf("First %s rows read", plainNumber(float64(o.MaxRows))))
	}
	for _, s := range n.short {
		if s != "" {
			parts = append(parts, s)
		}
	}
	return strings.Join(parts, "; ")
}
