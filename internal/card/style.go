package card

import (
	"fmt"
	"image/color"

	xfont "golang.org/x/image/font"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// Fonts: Liberation Sans, embedded in gonum/plot (no system fonts are
// read, so every machine draws the same glyphs). It is metric-compatible
// with Arial, which the SVG names as the fallback.
var (
	sans = font.Font{Typeface: "Liberation", Variant: "Sans"}
	bold = font.Font{Typeface: "Liberation", Variant: "Sans", Weight: xfont.WeightBold}
)

// Type sizes in points. At the default 8 x 5 in card the smallest (tick
// labels) is about 12 CSS px.
const (
	titleSize    = 14
	subtitleSize = 9.5
	labelSize    = 10
	tickSize     = 9.5
	legendSize   = 9.5
	cellSize     = 9.5
	kpiSize      = 44
	kpiDeltaSize = 15
	noDataSize   = 13
	pad          = vg.Length(14) // card margin
)

// Okabe-Ito, the colour-blind-safe palette (Okabe & Ito 2008), ordered so
// that the first colours differ most in lightness and hue; yellow, weak on
// white, comes late.
var palette = []color.RGBA{
	{0x00, 0x72, 0xB2, 0xff}, // blue
	{0xE6, 0x9F, 0x00, 0xff}, // orange
	{0x00, 0x9E, 0x73, 0xff}, // bluish green
	{0xD5, 0x5E, 0x00, 0xff}, // vermillion
	{0xCC, 0x79, 0xA7, 0xff}, // reddish purple
	{0x56, 0xB4, 0xE9, 0xff}, // sky blue
	{0xF0, 0xE4, 0x42, 0xff}, // yellow
	{0x00, 0x00, 0x00, 0xff}, // black
}

// Neutral colours of the frame.
var (
	ink        = color.RGBA{0x1f, 0x1f, 0x1f, 0xff} // title, numbers
	inkSoft    = color.RGBA{0x4d, 0x4d, 0x4d, 0xff} // axis labels, ticks
	inkMuted   = color.RGBA{0x75, 0x75, 0x75, 0xff} // notes
	gridColor  = color.RGBA{0xe3, 0xe3, 0xe3, 0xff}
	axisColor  = color.RGBA{0x9e, 0x9e, 0x9e, 0xff}
	zeroColor  = color.RGBA{0x6e, 0x6e, 0x6e, 0xff}
	stripe     = color.RGBA{0xf6, 0xf6, 0xf6, 0xff} // table zebra rows
	headerFill = color.RGBA{0xea, 0xea, 0xea, 0xff}
	emptyCell  = color.RGBA{0xf2, 0xf2, 0xf2, 0xff} // heatmap cell without a value
	white      = color.RGBA{0xff, 0xff, 0xff, 0xff}
)

func seriesColor(i int) color.RGBA { return palette[i%len(palette)] }

// textStyle is a left-aligned, top-anchored style.
func textStyle(f font.Font, size vg.Length, c color.Color) text.Style {
	return text.Style{
		Color:   c,
		Font:    font.From(f, size),
		XAlign:  draw.XLeft,
		YAlign:  draw.YTop,
		Handler: plot.DefaultTextHandler,
	}
}

// fitText cuts s with an ellipsis until it is at most w wide.
func fitText(sty text.Style, s string, w vg.Length) string {
	if sty.Width(s) <= w {
		return s
	}
	r := []rune(s)
	lo, hi := 0, len(r) // binary search on the kept prefix
	for lo < hi {
		m := (lo + hi + 1) / 2
		if sty.Width(string(r[:m])+"…") <= w {
			lo = m
		} else {
			hi = m - 1
		}
	}
	if lo == 0 {
		return ""
	}
	return string(r[:lo]) + "…"
}

// legendItem is one entry of a legend: a swatch (a line for line charts,
// a square otherwise) and a name.
type legendItem struct {
	name  string
	color color.Color
	line  bool
}

// frame is what every card has around its body: a title, an optional
// muted subtitle (notes such as a cap) and a legend that flows in rows
// under them, never over the data.
type frame struct {
	title    string
	subtitle string
	legend   []legendItem
}

// maxLegendName bounds a legend entry's text (runes); a legend takes at
// most one row per legendRowHeight of card height, and never more than
// maxLegendRows.
const (
	maxLegendName   = 28
	maxLegendRows   = 3
	legendRowHeight = 80
)

// draw paints the frame on a white canvas and returns the canvas left for
// the body.
func (f frame) draw(c draw.Canvas) draw.Canvas {
	inner := draw.Crop(c, pad, -pad, pad, -pad)
	x, y := inner.Min.X, inner.Max.Y
	w := inner.Max.X - inner.Min.X
	if f.title != "" {
		sty := textStyle(bold, titleSize, ink)
		c.FillText(sty, vg.Point{X: x, Y: y}, fitText(sty, f.title, w))
		y -= sty.Height(f.title) + 4
	}
	if f.subtitle != "" {
		sty := textStyle(sans, subtitleSize, inkMuted)
		c.FillText(sty, vg.Point{X: x, Y: y}, fitText(sty, f.subtitle, w))
		y -= sty.Height(f.subtitle) + 4
	}
	if len(f.legend) > 0 {
		sty := textStyle(sans, legendSize, inkSoft)
		h := sty.Height("Ag")
		const sw, gap, itemGap = vg.Length(12), vg.Length(5), vg.Length(16)
		y -= 2
		lx := x
		row := 1
		rows := min(max(int((c.Max.Y-c.Min.Y)/legendRowHeight), 1), maxLegendRows)
		more := func(n int) string { return fmt.Sprintf("+%d more", n) }
		for i, it := range f.legend {
			name := fitText(sty, truncRunes(it.name, maxLegendName), w-sw-gap)
			iw := sw + gap + sty.Width(name)
			if lx > x && lx+iw > x+w {
				lx = x
				y -= h + 4
				row++
			}
			if row == rows {
				// The last row: keep room to say how many more there are
				// rather than let the legend eat the chart.
				need := iw
				if i < len(f.legend)-1 {
					need += itemGap + sty.Width(more(len(f.legend)-i-1))
				}
				if lx+need > x+w {
					c.FillText(sty, vg.Point{X: lx, Y: y}, more(len(f.legend)-i))
					break
				}
			}
			mid := y - h/2
			if it.line {
				c.StrokeLine2(draw.LineStyle{Color: it.color, Width: 2.5}, lx, mid, lx+sw, mid)
			} else {
				c.FillPolygon(it.color, rect(lx+1, mid-4.5, lx+sw-2, mid+4.5))
			}
			c.FillText(sty, vg.Point{X: lx + sw + gap, Y: y}, name)
			lx += iw + itemGap
		}
		y -= h + 6
	}
	if y < inner.Max.Y {
		y -= 4
	}
	inner.Max.Y = y
	return inner
}

// rect is the closed polygon of a rectangle.
func rect(x0, y0, x1, y1 vg.Length) []vg.Point {
	return []vg.Point{{X: x0, Y: y0}, {X: x1, Y: y0}, {X: x1, Y: y1}, {X: x0, Y: y1}}
}

// newPlot returns a plot styled for cards: no title or legend of its own
// (the frame draws them), light horizontal gridlines, no y axis line, a
// grey x axis, Liberation Sans throughout.
func newPlot() *plot.Plot {
	p := plot.New()
	p.BackgroundColor = nil
	for _, a := range []*plot.Axis{&p.X, &p.Y} {
		a.Label.TextStyle = textStyle(sans, labelSize, inkSoft)
		a.Label.TextStyle.XAlign = draw.XCenter
		a.Label.TextStyle.YAlign = draw.YBottom
		a.Label.Padding = 6
		a.Tick.Label.Font = font.From(sans, tickSize)
		a.Tick.Label.Color = inkSoft
		a.Tick.Label.Handler = plot.DefaultTextHandler
		a.Padding = 0
	}
	// gonum draws a y tick label one descent above its tick; this centres
	// it on the gridline (or the heatmap row) instead.
	ys := p.Y.Tick.Label
	ys.YAlign = draw.YAlignment(-0.5 - float64(ys.FontExtents().Descent/ys.Height("0")))
	p.Y.Tick.Label = ys
	p.Y.LineStyle.Width = 0
	p.Y.Tick.Length = 0
	p.Y.Tick.LineStyle.Width = 0
	p.X.LineStyle = draw.LineStyle{Color: axisColor, Width: 0.75}
	p.X.Tick.LineStyle = draw.LineStyle{Color: axisColor, Width: 0.75}
	p.X.Tick.Length = 4
	return p
}
