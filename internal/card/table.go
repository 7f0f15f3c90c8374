package card

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/activitybi/activitybi/internal/warehouse"
)

// Table layout, in points.
const (
	rowHeight    = vg.Length(18)
	cellPad      = vg.Length(6)
	minCellWidth = vg.Length(24)  // a column's least width, however short its text
	minColWidth  = vg.Length(48)  // wide columns are cut down to no less; then columns are dropped
	maxColWidth  = vg.Length(220) // longer text is cut with an ellipsis
)

type tableData struct {
	cols  []column
	cells [][]string // [row][col], formatted
	right []bool     // numbers are right-aligned
	total int        // rows in the result
	notes notes
}

// decimalsFor is how many decimals a number cell needs: none for whole
// numbers, at most two from 1 up, three significant digits below 1 (at
// most six decimals).
func decimalsFor(v float64) int {
	a := math.Abs(v)
	switch {
	case v == math.Trunc(v):
		return 0
	case a >= 1:
		return decimalsOf(mustParse(strconv.FormatFloat(a-math.Trunc(a), 'f', 2, 64)))
	}
	return min(decimalsOf(mustParse(sigDigits(a, 3))), 6)
}

// tableNumber formats a number cell with thousands separators and the
// column's decimals, so that the digits line up.
func tableNumber(v float64, dec int) string {
	if math.Abs(v) >= 1e15 {
		return strconv.FormatFloat(v, 'g', 4, 64)
	}
	return thousands(strconv.FormatFloat(v, 'f', dec, 64))
}

func readTable(t *warehouse.Table, s Spec, o Options) (*tableData, error) {
	cs := newColumns(t)
	d := &tableData{total: len(t.Rows)}
	if len(s.Y) == 0 {
		d.cols = cs.cols
	} else {
		for i, y := range s.Y {
			c, err := cs.get(fmt.Sprintf("y[%d]", i), y)
			if err != nil {
				return nil, err
			}
			d.cols = append(d.cols, c)
		}
	}
	nr := len(t.Rows)
	if nr > o.MaxTableRows {
		nr = o.MaxTableRows
		d.notes.cap(limitTableRows, fmt.Sprintf("First %d of %s rows", nr, plainNumber(float64(len(t.Rows)))),
			"%s not shown: a table card shows at most %d rows; order and limit them in SQL.", count(len(t.Rows)-nr, "row", "rows"), o.MaxTableRows)
	}
	if len(d.cols) > 0 && nr*len(d.cols) > o.MaxTableCells {
		keep := max(o.MaxTableCells/len(d.cols), 1)
		d.notes.cap(limitTableCells, fmt.Sprintf("First %d of %s rows", keep, plainNumber(float64(len(t.Rows)))),
			"%s not shown: at most %d cells (%d columns x %d rows).", count(nr-keep, "more row", "more rows"), o.MaxTableCells, len(d.cols), keep)
		nr = keep
	}
	// Times in a column share one precision, and numbers one number of
	// decimals, so that they line up.
	prec := make([]timePrecision, len(d.cols))
	decs := make([]int, len(d.cols))
	for ci, c := range d.cols {
		var ts []time.Time
		for _, r := range t.Rows[:nr] {
			if c.idx >= len(r) {
				continue
			}
			switch c.kind {
			case colTime:
				if tv, ok := timeOf(r[c.idx]); ok {
					ts = append(ts, tv)
				}
			case colNumber:
				if f, ok := num(r[c.idx]); ok {
					decs[ci] = max(decs[ci], decimalsFor(f))
				}
			}
		}
		prec[ci] = timePrecisionOf(ts...)
	}
	d.right = make([]bool, len(d.cols))
	for ci, c := range d.cols {
		d.right[ci] = c.kind == colNumber
	}
	for _, r := range t.Rows[:nr] {
		row := make([]string, len(d.cols))
		for ci, c := range d.cols {
			var v any
			if c.idx < len(r) {
				v = r[c.idx]
			}
			switch {
			case v == nil:
				row[ci] = ""
			case c.kind == colNumber:
				if f, ok := num(v); ok {
					row[ci] = tableNumber(f, decs[ci])
				} else {
					row[ci] = labelOf(v)
				}
			case c.kind == colTime:
				if tv, ok := timeOf(v); ok {
					row[ci] = formatTime(tv, prec[ci])
				} else {
					row[ci] = labelOf(v)
				}
			default:
				row[ci] = labelOf(v)
			}
		}
		d.cells = append(d.cells, row)
	}
	return d, nil
}

func buildTable(t *warehouse.Table, s Spec, o Options) (*picture, error) {
	d, err := readTable(t, s, o)
	if err != nil {
		return nil, err
	}
	title := cardTitle(s)
	if len(d.cells) == 0 || len(d.cols) == 0 {
		return noData(s, title, d.notes, 0), nil
	}
	w, _ := s.size()
	head := textStyle(bold, cellSize, ink)
	body := textStyle(sans, cellSize, ink)

	// Column widths: each column's widest cell, within bounds; then shrink
	// the wide ones to fit, and drop the columns that still do not.
	avail := vg.Length(w) - 2*pad
	widths := make([]vg.Length, len(d.cols))
	for ci, c := range d.cols {
		wd := head.Width(c.name)
		for _, r := range d.cells {
			wd = max(wd, body.Width(r[ci]))
		}
		widths[ci] = min(max(wd+2*cellPad, minCellWidth), maxColWidth)
	}
	shown := fitColumns(widths, avail)
	if shown < len(d.cols) {
		d.notes.cap(limitTableCols, fmt.Sprintf("%d of %d columns", shown, len(d.cols)),
			"%s not shown for lack of width: %s (the Markdown has them).", count(len(d.cols)-shown, "column", "columns"), colNames(d.cols[shown:]))
	}
	widths = widths[:shown]
	// Spread what is left over the columns, so the table spans the card.
	if extra := avail - sum(widths); extra > 0 {
		for i := range widths {
			widths[i] += extra / vg.Length(len(widths))
		}
	}

	f := frame{title: title, subtitle: capLine(d.notes, o)}
	// The height follows the rows unless the spec fixes it; a fixed height
	// draws the rows that fit.
	chrome := 2*pad + textStyle(bold, titleSize, ink).Height(title) + 8
	if f.subtitle != "" {
		chrome += textStyle(sans, subtitleSize, inkMuted).Height(f.subtitle) + 4
	}
	rows := len(d.cells)
	h := s.Height
	if h == 0 {
		h = int(math.Ceil(float64(chrome + rowHeight*vg.Length(rows+1))))
		h = max(h, MinHeight)
	} else if fit := int((vg.Length(h) - chrome) / rowHeight); fit-1 < rows {
		rows = max(fit-1, 0)
		d.notes.cap(limitTableRows, "", "%s not shown: the card's height fits %d.", count(len(d.cells)-rows, "more row", "more rows"), rows)
	}
	pic := &picture{w: vg.Points(float64(w)), h: vg.Points(float64(h)), notes: d.notes.list, capped: d.notes.capped, hits: d.notes.hits}
	pic.md = tableSummary(d, title, o.MarkdownRows)
	pic.draw = func(c draw.Canvas) {
		area := f.draw(c)
		y := area.Max.Y
		// Header.
		c.FillPolygon(headerFill, rect(area.Min.X, y-rowHeight, area.Min.X+sum(widths), y))
		drawRow(c, head, area.Min.X, y, widths, d.right, colNamesOf(d.cols[:len(widths)]))
		y -= rowHeight
		for ri := range rows {
			if ri%2 == 1 {
				c.FillPolygon(stripe, rect(area.Min.X, y-rowHeight, area.Min.X+sum(widths), y))
			}
			drawRow(c, body, area.Min.X, y, widths, d.right, d.cells[ri][:len(widths)])
			y -= rowHeight
		}
		c.StrokeLine2(draw.LineStyle{Color: axisColor, Width: 0.75}, area.Min.X, y, area.Min.X+sum(widths), y)
	}
	return pic, nil
}

// fitColumns caps every column at one level, the highest at which they fit
// avail (so narrow columns keep their width and only wide ones are cut),
// never below minColWidth, and returns how many columns fit at that level.
// The spare width is then spread over the columns by the caller.
func fitColumns(widths []vg.Length, avail vg.Length) int {
	if sum(widths) <= avail {
		return len(widths)
	}
	capped := func(level vg.Length) vg.Length {
		var s vg.Length
		for _, w := range widths {
			s += min(w, level)
		}
		return s
	}
	lo, hi := minColWidth, maxColWidth
	for range 30 {
		m := (lo + hi) / 2
		if capped(m) <= avail {
			lo = m
		} else {
			hi = m
		}
	}
	for i := range widths {
		widths[i] = min(widths[i], lo)
	}
	n := len(widths)
	for n > 1 && sum(widths[:n]) > avail {
		n--
	}
	return n
}

func sum(ws []vg.Length) vg.Length {
	var s vg.Length
	for _, w := range ws {
		s += w
	}
	return s
}

func drawRow(c draw.Canvas, sty text.Style, x, top vg.Length, widths []vg.Length, right []bool, cells []string) {
	sty.YAlign = draw.YCenter
	mid := top - rowHeight/2
	for ci, w := range widths {
		txt := fitText(sty, cells[ci], w-2*cellPad)
		if right[ci] {
			sty.XAlign = draw.XRight
			c.FillText(sty, vg.Point{X: x + w - cellPad, Y: mid}, txt)
		} else {
			sty.XAlign = draw.XLeft
			c.FillText(sty, vg.Point{X: x + cellPad, Y: mid}, txt)
		}
		x += w
	}
}

func colNamesOf(cs []column) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = cleanText(c.name)
	}
	return out
}

func colNames(cs []column) string {
	names := colNamesOf(cs)
	if len(names) > 5 {
		names = append(names[:5], "…")
	}
	return strings.Join(names, ", ")
}

// maxMarkdownColumns bounds the columns of a table card's Markdown.
const maxMarkdownColumns = 12

func tableSummary(d *tableData, title string, maxRows int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s × %s", mdTitle(title), count(d.total, "row", "rows"), count(len(d.cols), "column", "columns"))
	n := min(len(d.cells), maxRows)
	if n < d.total {
		fmt.Fprintf(&b, "; the first %d below", n)
	}
	nc := min(len(d.cols), maxMarkdownColumns)
	if nc < len(d.cols) {
		fmt.Fprintf(&b, ", their first %d columns", nc)
	}
	b.WriteString(".\n\n|")
	for _, c := range d.cols[:nc] {
		b.WriteString(" " + mdEscape(truncRunes(c.name, 40)) + " |")
	}
	b.WriteString("\n|")
	for ci := range d.cols[:nc] {
		if d.right[ci] {
			b.WriteString(" ---: |")
		} else {
			b.WriteString(" --- |")
		}
	}
	b.WriteString("\n")
	for _, r := range d.cells[:n] {
		b.WriteString("|")
		for _, v := range r[:nc] {
			b.WriteString(" " + mdEscape(truncRunes(v, 60)) + " |")
		}
		b.WriteString("\n")
	}
	return b.String()
}
