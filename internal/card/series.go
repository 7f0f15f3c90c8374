package card

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/activitybi/activitybi/internal/warehouse"
)

// seriesSet tracks series met in row order, with the total of each, so that
// a cap keeps the largest.
type seriesSet struct {
	index  map[string]int
	names  []string
	totals []float64 // sum of |value|
	rows   []int
}

func newSeriesSet() *seriesSet { return &seriesSet{index: map[string]int{}} }

func (s *seriesSet) id(name string) int {
	if i, ok := s.index[name]; ok {
		return i
	}
	s.index[name] = len(s.names)
	s.names = append(s.names, name)
	s.totals = append(s.totals, 0)
	s.rows = append(s.rows, 0)
	return len(s.names) - 1
}

// keep returns the series to draw, in the order first met: all of them, or
// the max with the largest totals (ties: first met). dropped are the
// others' names and rows.
func (s *seriesSet) keep(max int) (keep []int, droppedNames []string, droppedRows int) {
	order := make([]int, len(s.names))
	for i := range order {
		order[i] = i
	}
	if len(order) <= max {
		return order, nil, 0
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(s.totals[b], s.totals[a]) })
	keep = slices.Clone(order[:max])
	slices.Sort(keep)
	dropped := slices.Clone(order[max:])
	slices.Sort(dropped)
	for _, i := range dropped {
		droppedNames = append(droppedNames, s.names[i])
		droppedRows += s.rows[i]
	}
	return keep, droppedNames, droppedRows
}

// notes collects a card's caveats and the limits it hit.
type notes struct {
	list   []string
	short  []string // what the picture says under its title when capped
	capped bool
	hits   []string
}

func (n *notes) add(format string, args ...any) {
	n.list = append(n.list, fmt.Sprintf(format, args...))
}

func (n *notes) cap(limit, short, format string, args ...any) {
	n.capped = true
	n.short = append(n.short, short)
	n.hits = append(n.hits, limit)
	n.add(format, args...)
}

func (n *notes) seriesDropped(names []string, rows, max int) {
	if len(names) == 0 {
		return
	}
	shown := names
	if len(shown) > 3 {
		shown = shown[:3]
	}
	q := make([]string, len(shown))
	for i, s := range shown {
		q[i] = truncRunes(s, 30)
	}
	more := ""
	if len(names) > len(shown) {
		more = ", …"
	}
	n.cap(limitSeries, fmt.Sprintf("Top %d series of %s drawn", max, plainNumber(float64(max+len(names)))), "%s more series not drawn (%s rows; at most %d series, the largest by total): %s%s.",
		plainNumber(float64(len(names))), plainNumber(float64(rows)), max, strings.Join(q, ", "), more)
}

func count(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return plainNumber(float64(n)) + " " + many
}

// categories are the x values of a bar chart or a heatmap axis, in the
// result's order or, for numbers and times, ascending.
type categories struct {
	col     column
	index   map[catKey]int
	dropped map[catKey]struct{} // categories met after max were taken
	keys    []string            // text of a text category
	vals    []float64           // position of a number/time category
	times   []time.Time
	labels  []string // drawn
	md      []string // in the summary
	order   []int    // draw position -> id, after finish
	pos     []int    // id -> draw position
}

// catKey identifies a category without formatting it (a result may have
// 100,000 rows): its text, or its position on an ordered axis.
type catKey struct {
	text string
	pos  float64
}

func newCategories(c column) *categories {
	return &categories{col: c, index: map[catKey]int{}, dropped: map[catKey]struct{}{}}
}

// id returns the category of v, adding it when there is room; ok is false
// for a value that has no place (a NULL or non-number on an ordered axis)
// and full is true when the category is new and max are taken.
func (cs *categories) id(v any, max int) (id int, ok, full bool) {
	var key catKey
	var t time.Time
	switch cs.col.kind {
	case colTime:
		var good bool
		if t, good = timeOf(v); !good {
			return 0, false, false
		}
		key.pos = unixSec(t)
	case colNumber:
		var good bool
		if key.pos, good = num(v); !good {
			return 0, false, false
		}
	default:
		key.text = labelOf(v)
	}
	if i, seen := cs.index[key]; seen {
		return i, true, false
	}
	if len(cs.keys) >= max {
		cs.dropped[key] = struct{}{}
		return 0, true, true
	}
	cs.index[key] = len(cs.keys)
	cs.keys = append(cs.keys, key.text)
	cs.vals = append(cs.vals, key.pos)
	cs.times = append(cs.times, t)
	return len(cs.keys) - 1, true, false
}

// finish orders ordered categories ascending and makes the labels.
func (cs *categories) finish() {
	n := len(cs.keys)
	cs.order = make([]int, n)
	for i := range cs.order {
		cs.order[i] = i
	}
	if cs.col.kind != colCategory {
		slices.SortStableFunc(cs.order, func(a, b int) int { return cmp.Compare(cs.vals[a], cs.vals[b]) })
	}
	cs.pos = make([]int, n)
	for p, id := range cs.order {
		cs.pos[id] = p
	}
	cs.labels = make([]string, n)
	cs.md = make([]string, n)
	switch cs.col.kind {
	case colTime:
		layout := categoryTimeLayout(cs.times)
		prec := timePrecisionOf(cs.times...)
		for i, t := range cs.times {
			cs.labels[i] = t.Format(layout)
			cs.md[i] = formatTime(t, prec)
		}
	case colNumber:
		for i, v := range cs.vals {
			cs.labels[i] = plainNumber(v)
			cs.md[i] = cs.labels[i]
		}
	default:
		for i, k := range cs.keys {
			cs.labels[i] = k
			cs.md[i] = k
		}
	}
}

// drawn returns the labels in draw order.
func (cs *categories) drawn() []string {
	out := make([]string, len(cs.order))
	for p, id := range cs.order {
		out[p] = cs.labels[id]
	}
	return out
}

// categoryTimeLayout picks one label format for a set of category times:
// months for month starts, days, or times of day.
func categoryTimeLayout(ts []time.Time) string {
	if len(ts) == 0 {
		return "Jan 2"
	}
	multiYear, multiDay, monthStarts := false, false, true
	for _, t := range ts {
		multiYear = multiYear || t.Year() != ts[0].Year()
		multiDay = multiDay || t.YearDay() != ts[0].YearDay() || t.Year() != ts[0].Year()
		monthStarts = monthStarts && t.Day() == 1
	}
	switch timePrecisionOf(ts...) {
	case precDay:
		switch {
		case monthStarts && len(ts) > 1:
			return "Jan 2006"
		case multiYear:
			return "Jan 2, 2006"
		}
		return "Jan 2"
	case precMinute:
		if multiDay {
			return "Jan 2 15:04"
		}
		return "15:04"
	}
	if multiDay {
		return "Jan 2 15:04:05"
	}
	return "15:04:05"
}

// gridData is a value per (series, category): bar charts (series are the
// y columns or the values of the series column) and heatmaps (series are
// the rows).
type gridData struct {
	cats  *categories
	names []string    // series in draw order
	vals  [][]float64 // [series][draw position]
	has   [][]bool
	rows  int // rows drawn
	notes notes
}

// cellKey identifies a cell while reading, before series are capped.
type cellKey struct{ s, c int }

// readGrid reads the cells of t. sc is the series column (nil: the y
// columns are the series). Series beyond maxSeries are dropped, the
// largest kept when rank is set, else the first met.
func readGrid(t *warehouse.Table, xc column, ys []column, sc *column, maxCats, maxSeries int, rank bool, one, many string) *gridData {
	g := &gridData{cats: newCategories(xc)}
	ss := newSeriesSet()
	if sc == nil {
		for _, y := range ys {
			ss.id(y.name)
		}
	}
	var rowCats *categories // heatmap rows are categories too: ordered, capped
	if sc != nil && !rank {
		rowCats = newCategories(*sc)
	}
	cells := map[cellKey]float64{}
	var noX, noSeries, noValue, dups, catRows int
	rowsDroppedRow := 0
	for _, r := range t.Rows {
		if len(r) != len(t.Columns) {
			continue
		}
		c, ok, full := g.cats.id(r[xc.idx], maxCats)
		if !ok {
			noX++
			continue
		}
		if full {
			catRows++
			continue
		}
		for yi, y := range ys {
			var s int
			switch {
			case rowCats != nil:
				id, ok, full := rowCats.id(r[sc.idx], maxCats)
				if !ok {
					noSeries++
					continue
				}
				if full {
					rowsDroppedRow++
					continue
				}
				s = id
			case sc != nil:
				s = ss.id(labelOf(r[sc.idx]))
			default:
				s = yi
			}
			v, ok := num(r[y.idx])
			if !ok {
				noValue++
				continue
			}
			k := cellKey{s, c}
			if _, seen := cells[k]; seen {
				dups++
				continue
			}
			cells[k] = v
			if rowCats == nil {
				ss.totals[s] += math.Abs(v)
				ss.rows[s]++
			}
		}
	}
	g.cats.finish()
	var keep []int
	if rowCats != nil {
		rowCats.finish()
		keep = rowCats.order
		g.names = make([]string, len(keep))
		for i, id := range keep {
			g.names[i] = rowCats.labels[id]
		}
	} else {
		var dropped []string
		var droppedRows int
		keep, dropped, droppedRows = ss.keep(maxSeries)
		g.notes.seriesDropped(dropped, droppedRows, maxSeries)
		for _, i := range keep {
			g.names = append(g.names, ss.names[i])
		}
	}
	n := len(g.cats.keys)
	g.vals = make([][]float64, len(keep))
	g.has = make([][]bool, len(keep))
	for si, s := range keep {
		g.vals[si] = make([]float64, n)
		g.has[si] = make([]bool, n)
		for c := range n {
			if v, ok := cells[cellKey{s, c}]; ok {
				p := g.cats.pos[c]
				g.vals[si][p], g.has[si][p] = v, true
				g.rows++
			}
		}
	}
	if catRows > 0 {
		g.notes.cap(limitCategories, fmt.Sprintf("First %d of %s %s drawn", maxCats, plainNumber(float64(maxCats+len(g.cats.dropped))), many), "%s not drawn (%s; at most %d %s, the first met in the result's order).",
			count(len(g.cats.dropped), "more "+one, "more "+many), count(catRows, "row", "rows"), maxCats, many)
	}
	if rowsDroppedRow > 0 {
		g.notes.cap(limitCategories, fmt.Sprintf("First %d rows drawn", maxCats), "%s not drawn (heatmap rows beyond the first %d).", count(rowsDroppedRow, "row", "rows"), maxCats)
	}
	if noX > 0 {
		g.notes.add("%s skipped: %s is empty or not a %s.", count(noX, "row", "rows"), xc.name, xc.kind)
	}
	if noSeries > 0 {
		g.notes.add("%s skipped: %s is empty or not a %s.", count(noSeries, "row", "rows"), sc.name, sc.kind)
	}
	if noValue > 0 {
		g.notes.add("%s without a number not drawn.", count(noValue, "value", "values"))
	}
	if dups > 0 {
		g.notes.add("%s repeat a cell already drawn and were ignored; aggregate in SQL (GROUP BY) so that each cell has one row.", count(dups, "row", "rows"))
	}
	return g
}
