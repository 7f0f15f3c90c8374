package card

import (
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/activitybi/activitybi/internal/warehouse"
)

// Category axes.
const (
	// maxCategoryLabel bounds a category label (runes) so that a rotated
	// label cannot eat the plot.
	maxCategoryLabel = 22
	// barBand is the share of a category's width its bar (or group) takes.
	barBand = 0.72
	// maxValueLabels is the most bars that get their value written above
	// them.
	maxValueLabels = 16
)

// categoryAxis puts one tick per category at 0..n-1 on a plot width of w
// points so that no two labels overlap: all labels level when they fit,
// else (text) labels turned 45 degrees and, when even those do not fit,
// only every k-th label. Ordered categories (times, numbers) are thinned
// rather than turned: skipping some of a sequence loses nothing. It
// returns how far the first label reaches left of its tick.
func categoryAxis(a *plot.Axis, labels []string, w vg.Length, ordered bool) (overhang vg.Length) {
	n := len(labels)
	a.Min, a.Max = -0.5, float64(n)-0.5
	a.Tick.Length = 0
	sty := a.Tick.Label
	short := shortLabels(labels, maxCategoryLabel)
	band := w / vg.Length(max(n, 1))
	every := 1
	if !levelFits(sty, short, w) {
		if ordered {
			every = int(math.Ceil(float64((widest(sty, short) + tickGap/2) / band)))
		} else {
			sty.Rotation = math.Pi / 4
			sty.XAlign = draw.XRight
			sty.YAlign = draw.YTop
			// Turned labels are parallel lines one line height apart
			// across the diagonal.
			h := sty.Height("Ag") * 1.45
			every = int(math.Ceil(float64(h / band)))
			a.Tick.Label = sty
		}
	}
	every = max(every, 1)
	ts := make(plot.ConstantTicks, 0, n)
	for i := 0; i < n; i += every {
		ts = append(ts, plot.Tick{Value: float64(i), Label: short[i]})
	}
	a.Tick.Marker = ts
	if n > 0 {
		r := sty.Rectangle(short[0])
		overhang = -r.Min.X
	}
	return overhang
}

func shortLabels(labels []string, n int) []string {
	out := make([]string, len(labels))
	for i, l := range labels {
		out[i] = truncRunes(l, n)
	}
	return out
}

// levelFits says whether the labels fit level, one per category, in w.
func levelFits(sty text.Style, labels []string, w vg.Length) bool {
	return widest(sty, labels)+tickGap/2 <= w/vg.Length(max(len(labels), 1))
}

// minBarRow is the least height of a horizontal bar's row: a label's line.
const minBarRow = vg.Length(15)

func buildBar(t *warehouse.Table, s Spec, o Options) (*picture, error) {
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
	g := readGrid(t, xc, ys, sc, o.MaxCategories, o.MaxSeries, true, "category", "categories")
	title := cardTitle(s)
	if g.rows == 0 {
		return noData(s, title, g.notes, len(t.Rows)), nil
	}
	stacked := s.Kind == KindStackedBar
	w, h := s.size()
	f := frame{title: title, subtitle: capLine(g.notes, o)}
	if len(g.names) > 1 {
		for i, n := range g.names {
			f.legend = append(f.legend, legendItem{name: seriesLabel(n, s), color: seriesColor(i)})
		}
	}
	n := len(g.cats.keys)
	lo, hi := 0.0, 0.0
	integer := true
	for c := range n {
		pos, neg := 0.0, 0.0
		for si := range g.names {
			if !g.has[si][c] {
				continue
			}
			v := g.vals[si][c]
			integer = integer && v == math.Trunc(v)
			if !stacked {
				lo, hi = math.Min(lo, v), math.Max(hi, v)
				continue
			}
			if v >= 0 {
				pos += v
			} else {
				neg += v
			}
		}
		if stacked {
			lo, hi = math.Min(lo, neg), math.Max(hi, pos)
		}
	}
	labelled := len(g.names) == 1
	var all []float64
	for si := range g.names {
		for c := range n {
			if g.has[si][c] {
				all = append(all, g.vals[si][c])
			}
		}
	}
	format := valueFormat(all)
	pic := &picture{w: vg.Points(float64(w)), h: vg.Points(float64(h)), notes: g.notes.list, capped: g.notes.capped, hits: g.notes.hits}
	pic.md = barSummary(g, s, title)
	labels := g.cats.drawn()
	pic.draw = func(c draw.Canvas) {
		body := f.draw(c)
		p := newPlot()
		// Text categories whose labels do not fit level are drawn as
		// horizontal bars when their rows fit: every label level and
		// whole, which reads better than turned labels.
		valueAxis(&p.Y, lo, hi, yTickCount(body), integer)
		dc := p.DataCanvas(body)
		horizontal := xc.kind == colCategory &&
			!levelFits(p.X.Tick.Label, shortLabels(labels, maxCategoryLabel), dc.Max.X-dc.Min.X) &&
			(body.Max.Y-body.Min.Y-40)/vg.Length(n) >= minBarRow
		bp := barPlotter{g: g, stacked: stacked, horizontal: horizontal, format: format}
		if horizontal {
			bp.labels = labelled
			vlo, vhi := lo, hi
			if labelled {
				// Room for the value written after the longest bar.
				vhi += (hi - lo) * 0.1
				if lo < 0 {
					vlo -= (hi - lo) * 0.1
				}
			}
			p = newPlot()
			p.X.Label.Text = yLabel(s)
			p.Y.Label.Text = xLabel(s, xc)
			p.X.LineStyle.Width = 0
			p.X.Tick.Length = 0
			p.Y.Padding = 2
			rowAxis(&p.Y, labels, body.Max.Y-body.Min.Y)
			p.X.Min, p.X.Max = vlo, vhi // a first guess, for the width
			numberXAxis(&p.X, vlo, vhi, integer, p.X.Tick.Label, 400)
			dc = p.DataCanvas(body)
			numberXAxis(&p.X, vlo, vhi, integer, p.X.Tick.Label, dc.Max.X-dc.Min.X)
			p.Add(gridLines{axis: &p.X, vertical: true})
		} else {
			bp.labels = labelled && n <= maxValueLabels
			if bp.labels {
				// Head room for the value written above the tallest bar.
				vlo, vhi := lo, hi+(hi-lo)*0.08
				if lo < 0 {
					vlo -= (hi - lo) * 0.08
				}
				valueAxis(&p.Y, vlo, vhi, yTickCount(body), integer)
			}
			p.X.Label.Text = xLabel(s, xc)
			p.Y.Label.Text = yLabel(s)
			dc = p.DataCanvas(body)
			over := categoryAxis(&p.X, labels, dc.Max.X-dc.Min.X, xc.kind != colCategory)
			// A turned first label may reach past the card's margin: move
			// the plot right by as much.
			if left := dc.Min.X + (dc.Max.X-dc.Min.X)/vg.Length(2*n) - over; left < body.Min.X {
				body.Min.X += body.Min.X - left
				dc = p.DataCanvas(body)
				categoryAxis(&p.X, labels, dc.Max.X-dc.Min.X, xc.kind != colCategory)
			}
			p.Add(gridLines{axis: &p.Y})
		}
		p.Add(bp)
		p.Draw(body)
	}
	return pic, nil
}

// barPlotter draws grouped or stacked bars, vertical or horizontal; in a
// stack, positive values grow from zero one way and negative values the
// other, each in series order.
type barPlotter struct {
	g          *gridData
	stacked    bool
	labels     bool
	horizontal bool
	format     func(float64) string
}

func (b barPlotter) Plot(c draw.Canvas, p *plot.Plot) {
	tx, ty := p.Transforms(&c)
	n := len(b.g.cats.keys)
	ns := len(b.g.names)
	// pos maps category ci to its centre along the category axis, val a
	// value along the value axis; box makes a bar from category-axis
	// bounds (a, b) and value-axis bounds (v0, v1).
	pos := func(ci int) vg.Length { return tx(float64(ci)) }
	val := ty
	band := (tx(1) - tx(0)) * barBand
	box := func(a, bb, v0, v1 vg.Length) []vg.Point { return rect(a, v0, bb, v1) }
	if b.horizontal {
		pos = func(ci int) vg.Length { return ty(float64(n - 1 - ci)) }
		val = tx
		band = (ty(1) - ty(0)) * barBand
		box = func(a, bb, v0, v1 vg.Length) []vg.Point { return rect(v0, a, v1, bb) }
	}
	zero := val(0)
	lsty := textStyle(sans, tickSize, inkSoft)
	for ci := range n {
		mid := pos(ci)
		start := mid - band/2
		if b.stacked {
			up, down := 0.0, 0.0
			for si := range ns {
				if !b.g.has[si][ci] || b.g.vals[si][ci] == 0 {
					continue
				}
				v := b.g.vals[si][ci]
				base := &up
				if v < 0 {
					base = &down
				}
				v0, v1 := val(*base), val(*base+v)
				*base += v
				c.FillPolygon(seriesColor(si), c.ClipPolygonXY(box(start, start+band, v0, v1)))
				// A hairline of white between stacked segments.
				sep := draw.LineStyle{Color: white, Width: 0.5}
				if b.horizontal {
					c.StrokeLine2(sep, v1, start, v1, start+band)
				} else {
					c.StrokeLine2(sep, start, v1, start+band, v1)
				}
			}
			continue
		}
		gap := vg.Length(1)
		if ns == 1 {
			gap = 0
		}
		each := (band - gap*vg.Length(ns-1)) / vg.Length(ns)
		for si := range ns {
			if !b.g.has[si][ci] {
				continue
			}
			v := b.g.vals[si][ci]
			a := start + vg.Length(si)*(each+gap)
			if b.horizontal {
				// Series top to bottom, as in the legend.
				a = start + band - vg.Length(si+1)*each - vg.Length(si)*gap
			}
			c.FillPolygon(seriesColor(si), c.ClipPolygonXY(box(a, a+each, zero, val(v))))
			if !b.labels {
				continue
			}
			txt := b.format(v)
			switch {
			case b.horizontal:
				lsty.YAlign = draw.YCenter
				lsty.XAlign = draw.XLeft
				x := val(v) + 3
				if v < 0 {
					lsty.XAlign = draw.XRight
					x = val(v) - 3
				}
				c.FillText(lsty, vg.Point{X: x, Y: a + each/2}, txt)
			case lsty.Width(txt) <= (tx(1)-tx(0))*0.98:
				lsty.XAlign = draw.XCenter
				lsty.YAlign = draw.YBottom
				y := val(v) + 2
				if v < 0 {
					y = val(v) - 2
					lsty.YAlign = draw.YTop
				}
				c.FillText(lsty, vg.Point{X: a + each/2, Y: y}, txt)
			}
		}
	}
}

// compactValue writes a value in little room: 1,234 -> 1.23k.
func compactValue(v float64) string {
	if math.Abs(v) >= 1000 {
		return compact(v, 3)
	}
	return plainNumber(v)
}

// valueFormat returns the formatter for values written on a chart (bar
// ends, heatmap cells): compact from 10,000 up, else the decimals the
// most precise value needs, the same for all, so that they line up.
func valueFormat(vals []float64) func(float64) string {
	dec := 0
	for _, v := range vals {
		if math.Abs(v) >= 10000 {
			return compactValue
		}
		dec = max(dec, decimalsFor(v))
	}
	return func(v float64) string { return tableNumber(v, dec) }
}
