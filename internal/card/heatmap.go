package card

import (
	"fmt"
	"image/color"
	"math"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/activitybi/activitybi/internal/warehouse"
)

// sequential is the heatmap's colour scale, light (low) to dark (high):
// ColorBrewer Blues, whose lightness rises steadily, so it reads the same
// for every kind of colour blindness and in greyscale.
var sequential = []color.RGBA{
	{0xde, 0xeb, 0xf7, 0xff},
	{0xc6, 0xdb, 0xef, 0xff},
	{0x9e, 0xca, 0xe1, 0xff},
	{0x6b, 0xae, 0xd6, 0xff},
	{0x42, 0x92, 0xc6, 0xff},
	{0x21, 0x71, 0xb5, 0xff},
	{0x08, 0x51, 0x9c, 0xff},
	{0x08, 0x30, 0x6b, 0xff},
}

// scaleColor maps t in [0, 1] onto the scale, interpolating between stops.
func scaleColor(t float64) color.RGBA {
	if math.IsNaN(t) {
		t = 0
	}
	t = math.Max(0, math.Min(1, t))
	f := t * float64(len(sequential)-1)
	i := int(f)
	if i >= len(sequential)-1 {
		return sequential[len(sequential)-1]
	}
	a, b := sequential[i], sequential[i+1]
	u := f - float64(i)
	mix := func(x, y uint8) uint8 { return uint8(math.Round(float64(x) + (float64(y)-float64(x))*u)) }
	return color.RGBA{mix(a.R, b.R), mix(a.G, b.G), mix(a.B, b.B), 0xff}
}

// dark says whether white text reads better than ink on c.
func dark(c color.RGBA) bool {
	l := 0.2126*float64(c.R) + 0.7152*float64(c.G) + 0.0722*float64(c.B)
	return l < 140
}

// scaleWidth is the room on the right for the colour scale and its labels.
const scaleWidth = vg.Length(58)

func buildHeatmap(t *warehouse.Table, s Spec, o Options) (*picture, error) {
	cs := newColumns(t)
	xc, err := cs.get("x", s.X)
	if err != nil {
		return nil, err
	}
	sc, err := cs.get("series", s.Series)
	if err != nil {
		return nil, err
	}
	yc, err := cs.get("y[0]", s.Y[0], colNumber)
	if err != nil {
		return nil, err
	}
	g := readGrid(t, xc, []column{yc}, &sc, o.MaxCategories, 0, false, "column", "columns")
	title := cardTitle(s)
	if g.rows == 0 {
		return noData(s, title, g.notes, len(t.Rows)), nil
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	integer := true
	for r := range g.vals {
		for c, v := range g.vals[r] {
			if g.has[r][c] {
				lo, hi = math.Min(lo, v), math.Max(hi, v)
				integer = integer && v == math.Trunc(v)
			}
		}
	}
	w, h := s.size()
	f := frame{title: title, subtitle: capLine(g.notes, o)}
	pic := &picture{w: vg.Points(float64(w)), h: vg.Points(float64(h)), notes: g.notes.list, capped: g.notes.capped, hits: g.notes.hits}
	pic.md = heatmapSummary(g, s, title)
	pic.draw = func(c draw.Canvas) {
		body := f.draw(c)
		plotArea := body
		plotArea.Max.X -= scaleWidth
		p := newPlot()
		p.X.Label.Text = xLabel(s, xc)
		p.Y.Label.Text = s.YLabel
		if p.Y.Label.Text == "" {
			p.Y.Label.Text = humanize(sc.name)
		}
		p.X.LineStyle.Width = 0
		p.Y.Padding = 4
		rows := len(g.names)
		rowAxis(&p.Y, g.names, plotArea.Max.Y-plotArea.Min.Y)
		dc := p.DataCanvas(plotArea)
		categoryAxis(&p.X, g.cats.drawn(), dc.Max.X-dc.Min.X, xc.kind != colCategory)
		p.Add(cellPlotter{g: g, lo: lo, hi: hi, rows: rows})
		p.Draw(plotArea)
		dc = p.DataCanvas(plotArea)
		drawScale(c, body.Max.X-scaleWidth+12, dc.Min.Y, dc.Max.Y, lo, hi, integer, s.Unit)
	}
	return pic, nil
}

// rowAxis puts the heatmap's rows top (first) to bottom, every k-th label
// when they would not fit the height h.
func rowAxis(a *plot.Axis, names []string, h vg.Length) {
	n := len(names)
	a.Min, a.Max = -0.5, float64(n)-0.5
	lh := a.Tick.Label.Height("Ag") + 2
	every := max(int(math.Ceil(float64(lh*vg.Length(n)/h))), 1)
	var ts plot.ConstantTicks
	for i := 0; i < n; i += every {
		ts = append(ts, plot.Tick{Value: float64(n - 1 - i), Label: truncRunes(names[i], maxCategoryLabel)})
	}
	a.Tick.Marker = ts
}

// cellPlotter draws the grid; a cell without a value stays light grey, so
// it is not mistaken for a low value.
type cellPlotter struct {
	g      *gridData
	lo, hi float64
	rows   int
}

func (cp cellPlotter) Plot(c draw.Canvas, p *plot.Plot) {
	tx, ty := p.Transforms(&c)
	cw, ch := tx(1)-tx(0), ty(1)-ty(0)
	// A white gap between cells, thinner for small cells.
	gap := min(vg.Length(1.5), min(cw, ch)/8)
	vsty := textStyle(sans, tickSize-1, ink)
	vsty.XAlign, vsty.YAlign = draw.XCenter, draw.YCenter
	// Values are written in every cell or in none: a grid with numbers in
	// some cells only reads as if the others had none.
	var all []float64
	for r := range cp.g.vals {
		for ci, v := range cp.g.vals[r] {
			if cp.g.has[r][ci] {
				all = append(all, v)
			}
		}
	}
	format := valueFormat(all)
	write := vsty.Height("0")+2 <= ch-gap
	for _, v := range all {
		write = write && vsty.Width(format(v))+3 <= cw-gap
	}
	for r := range cp.g.vals {
		y := ty(float64(cp.rows - 1 - r))
		for ci := range cp.g.vals[r] {
			x := tx(float64(ci))
			box := rect(x-cw/2+gap/2, y-ch/2+gap/2, x+cw/2-gap/2, y+ch/2-gap/2)
			if !cp.g.has[r][ci] {
				c.FillPolygon(emptyCell, box)
				continue
			}
			v := cp.g.vals[r][ci]
			frac := 1.0
			if cp.hi > cp.lo {
				frac = (v - cp.lo) / (cp.hi - cp.lo)
			}
			col := scaleColor(frac)
			c.FillPolygon(col, box)
			if write {
				txt := format(v)
				if dark(col) {
					vsty.Color = white
				} else {
					vsty.Color = ink
				}
				c.FillText(vsty, vg.Point{X: x, Y: y}, txt)
			}
		}
	}
}

// drawScale draws the colour scale as a vertical bar from y0 to y1 with
// its low and high values (and the middle).
func drawScale(c draw.Canvas, x, y0, y1 vg.Length, lo, hi float64, integer bool, unit string) {
	const steps = 32
	const bw = vg.Length(10)
	h := y1 - y0
	for i := range steps {
		a := y0 + h*vg.Length(i)/steps
		b := y0 + h*vg.Length(i+1)/steps
		c.FillPolygon(scaleColor((float64(i)+0.5)/steps), rect(x, a, x+bw, b+0.3))
	}
	sty := textStyle(sans, tickSize, inkSoft)
	sty.YAlign = draw.YCenter
	// Nice values inside the range (50, 100, 150), or the ends when the
	// range holds fewer than two.
	nice, step := niceScale(lo, hi, 5, integer)
	var ticks []float64
	for _, v := range nice {
		if v >= lo && v <= hi {
			ticks = append(ticks, v)
		}
	}
	labels := tickLabels(ticks, step)
	if len(ticks) < 2 {
		ticks = []float64{lo, hi}
		labels = []string{compactValue(lo), compactValue(hi)}
		if hi == lo {
			ticks, labels = ticks[:1], labels[:1]
		}
	}
	for i, v := range ticks {
		y := y1
		if hi > lo {
			y = y0 + h*vg.Length((v-lo)/(hi-lo))
		}
		c.FillText(sty, vg.Point{X: x + bw + 4, Y: y}, labels[i])
	}
	if unit != "" {
		us := textStyle(sans, tickSize, inkSoft)
		us.YAlign = draw.YBottom
		c.FillText(us, vg.Point{X: x, Y: y1 + 4}, fitText(us, unit, scaleWidth-14))
	}
}

func heatmapSummary(g *gridData, s Spec, title string) string {
	var b strings.Builder
	cats := g.cats
	nc, nr := len(cats.keys), len(g.names)
	colLabel := func(p int) string { return mdEscape(cats.md[cats.order[p]]) }
	filled := 0
	total := 0.0
	type cell struct {
		r, c int
		v    float64
	}
	var lo, hi *cell
	rowSum := make([]float64, nr)
	colSum := make([]float64, nc)
	for r := range nr {
		for c := range nc {
			if !g.has[r][c] {
				continue
			}
			v := g.vals[r][c]
			filled++
			total += v
			rowSum[r] += v
			colSum[c] += v
			if lo == nil || v < lo.v {
				lo = &cell{r, c, v}
			}
			if hi == nil || v > hi.v {
				hi = &cell{r, c, v}
			}
		}
	}
	fmt.Fprintf(&b, "%s: heatmap of %s by %s (columns) and %s (rows), %d × %d cells, %d with a value; total %s.\n",
		mdTitle(title), mdCode(s.Y[0]), mdCode(s.X), mdCode(s.Series), nr, nc, filled, withUnit(total, s.Unit))
	fmt.Fprintf(&b, "- Highest: %s, %s = %s. Lowest: %s, %s = %s.\n",
		mdEscape(g.names[hi.r]), colLabel(hi.c), withUnit(hi.v, s.Unit), mdEscape(g.names[lo.r]), colLabel(lo.c), withUnit(lo.v, s.Unit))
	br, bc := 0, 0
	for r := range nr {
		if rowSum[r] > rowSum[br] {
			br = r
		}
	}
	for c := range nc {
		if colSum[c] > colSum[bc] {
			bc = c
		}
	}
	fmt.Fprintf(&b, "- Largest row: %s (%s in total); largest column: %s (%s).\n",
		mdEscape(g.names[br]), withUnit(rowSum[br], s.Unit), colLabel(bc), withUnit(colSum[bc], s.Unit))
	return b.String()
}
