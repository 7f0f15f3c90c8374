package card

import (
	"fmt"
	"math"
	"strings"
	"time"
	"unicode"

	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// The summaries are short Markdown for a person reading the dashboard or a
// model reading a tool result: what the card shows, the key numbers, the
// trend and what changed last. Numbers are formatted as on the card.

// change describes the move from a to b: "up 12%", "down 3.4%", "about the
// same (+0.4%)".
func change(a, b float64) string {
	switch {
	case a == b:
		return "unchanged"
	case a == 0 && b > 0:
		return "up from 0"
	case a == 0:
		return "down from 0"
	}
	r := (b - a) / math.Abs(a)
	switch {
	case math.Abs(r) < 0.01:
		return "about the same (" + pct(r) + ")"
	case r > 0:
		return "up " + strings.TrimPrefix(pct(r), "+")
	}
	return "down " + strings.TrimPrefix(pct(r), "-")
}

// mdEscape keeps a label from breaking Markdown: pipes (tables), the
// characters that start emphasis, code or links, and HTML. Underscores
// inside a word (tool_name, mcp__x__y) cannot start emphasis, so only those
// at a word's edge are escaped.
func mdEscape(s string) string {
	r := []rune(cleanText(s))
	word := func(i int) bool { return i >= 0 && i < len(r) && (unicode.IsLetter(r[i]) || unicode.IsDigit(r[i])) }
	var b strings.Builder
	for i, c := range r {
		switch c {
		case '\\', '|', '*', '`', '[', ']':
			b.WriteByte('\\')
		case '_':
			// The run of underscores this one is in.
			lo, hi := i, i
			for lo > 0 && r[lo-1] == '_' {
				lo--
			}
			for hi < len(r)-1 && r[hi+1] == '_' {
				hi++
			}
			if !word(lo-1) || !word(hi+1) {
				b.WriteByte('\\')
			}
		case '<':
			b.WriteString("&lt;")
			continue
		case '>':
			b.WriteString("&gt;")
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}

func mdTitle(title string) string { return "**" + mdEscape(title) + "**" }

// mdCode writes column names as code: they are identifiers, and a code
// span needs no escapes (a backtick in a name becomes a quote).
func mdCode(names ...string) string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = "`" + strings.ReplaceAll(cleanText(n), "`", "'") + "`"
	}
	return strings.Join(out, ", ")
}

// xFormatter formats x positions of a line for the summary.
func (d *lineData) xFormatter() func(float64) string {
	switch {
	case d.cats != nil:
		return func(x float64) string { return mdEscape(d.cats.md[int(x)]) }
	case d.xc.kind == colTime:
		var ts []time.Time
		for _, p := range d.pts {
			for _, q := range p {
				ts = append(ts, timeAt(q.x))
			}
		}
		prec := timePrecisionOf(ts...)
		return func(x float64) string { return formatTime(timeAt(x), prec) }
	}
	return plainNumber
}

func lineSummary(d *lineData, s Spec, title string) string {
	fx := d.xFormatter()
	var b strings.Builder
	xlo, xhi := math.Inf(1), math.Inf(-1)
	for _, p := range d.pts {
		for _, q := range p {
			xlo, xhi = math.Min(xlo, q.x), math.Max(xhi, q.x)
		}
	}
	fmt.Fprintf(&b, "%s: line chart of %s by %s", mdTitle(title), mdCode(s.Y...), mdCode(s.X))
	if len(d.names) > 1 {
		fmt.Fprintf(&b, ", %d series", len(d.names))
	}
	fmt.Fprintf(&b, ", %s to %s", fx(xlo), fx(xhi))
	if d.xc.kind == colTime && strings.Contains(fx(xlo)+fx(xhi), ":") {
		b.WriteString(" UTC")
	}
	b.WriteString(".\n")
	for i, pts := range d.pts {
		var good []pt
		for _, q := range pts {
			if q.ok {
				good = append(good, q)
			}
		}
		name := mdEscape(seriesLabel(d.names[i], s))
		if len(good) == 0 {
			fmt.Fprintf(&b, "- %s: no values.\n", name)
			continue
		}
		last := good[len(good)-1]
		fmt.Fprintf(&b, "- %s: %s at %s", name, withUnit(last.y, s.Unit), fx(last.x))
		if len(good) == 1 {
			b.WriteString(" (one point).\n")
			continue
		}
		prev, first := good[len(good)-2], good[0]
		fmt.Fprintf(&b, ", %s from the previous point (%s); %s since %s (%s)",
			change(prev.y, last.y), withUnit(prev.y, s.Unit), change(first.y, last.y), fx(first.x), withUnit(first.y, s.Unit))
		lo, hi := good[0], good[0]
		for _, q := range good {
			if q.y < lo.y {
				lo = q
			}
			if q.y > hi.y {
				hi = q
			}
		}
		fmt.Fprintf(&b, ". Low %s at %s, high %s at %s.\n", withUnit(lo.y, s.Unit), fx(lo.x), withUnit(hi.y, s.Unit), fx(hi.x))
	}
	return b.String()
}

// share formats part/total as a percentage without a sign.
func share(part, total float64) string {
	if total <= 0 {
		return ""
	}
	return strings.TrimPrefix(pct(part/total), "+")
}

func barSummary(g *gridData, s Spec, title string) string {
	var b strings.Builder
	cats := g.cats
	n := len(cats.keys)
	label := func(p int) string { return mdEscape(cats.md[cats.order[p]]) }
	kind := "bar chart"
	if s.Kind == KindStackedBar {
		kind = "stacked bar chart"
	}
	fmt.Fprintf(&b, "%s: %s of %s by %s", mdTitle(title), kind, mdCode(s.Y...), mdCode(s.X))
	if s.Series != "" {
		fmt.Fprintf(&b, " and %s", mdCode(s.Series))
	}
	fmt.Fprintf(&b, ", %s", count(n, "category", "categories"))
	if len(g.names) > 1 {
		fmt.Fprintf(&b, ", %d series", len(g.names))
	}
	totals := make([]float64, n) // per category, over series
	has := make([]bool, n)
	sTotals := make([]float64, len(g.names))
	grand, allPos := 0.0, true
	for si := range g.names {
		for p := range n {
			if g.has[si][p] {
				v := g.vals[si][p]
				totals[p] += v
				has[p] = true
				sTotals[si] += v
				grand += v
				allPos = allPos && v >= 0
			}
		}
	}
	additive := s.Kind == KindStackedBar || len(g.names) == 1
	if additive {
		fmt.Fprintf(&b, "; total %s", withUnit(grand, s.Unit))
	}
	b.WriteString(".\n")
	// Ranked categories by their total (one series: their value).
	var ranked []int
	for p := range n {
		if has[p] {
			ranked = append(ranked, p)
		}
	}
	sortByDesc(ranked, totals)
	if additive && len(ranked) > 0 {
		var top []string
		for _, p := range ranked[:min(3, len(ranked))] {
			t := label(p) + " " + withUnit(totals[p], s.Unit)
			if allPos && grand > 0 {
				t += " (" + share(totals[p], grand) + ")"
			}
			top = append(top, t)
		}
		fmt.Fprintf(&b, "- Highest: %s.\n", strings.Join(top, ", "))
		if len(ranked) > 3 {
			p := ranked[len(ranked)-1]
			fmt.Fprintf(&b, "- Lowest: %s %s.\n", label(p), withUnit(totals[p], s.Unit))
		}
	}
	if len(g.names) > 1 {
		var parts []string
		for si, name := range g.names {
			hi, lo := -1, -1
			for p := range n {
				if !g.has[si][p] {
					continue
				}
				if hi < 0 || g.vals[si][p] > g.vals[si][hi] {
					hi = p
				}
				if lo < 0 || g.vals[si][p] < g.vals[si][lo] {
					lo = p
				}
			}
			t := mdEscape(seriesLabel(name, s))
			switch {
			case additive:
				// Stacked: the series add up, so their totals and shares
				// mean something.
				t += " " + withUnit(sTotals[si], s.Unit)
				if allPos && grand > 0 {
					t += " (" + share(sTotals[si], grand) + ")"
				}
			case hi >= 0:
				// Side by side (p50 beside p95): only each one's own
				// highest and lowest.
				t += fmt.Sprintf(" highest at %s (%s), lowest at %s (%s)", label(hi), withUnit(g.vals[si][hi], s.Unit), label(lo), withUnit(g.vals[si][lo], s.Unit))
			}
			parts = append(parts, t)
		}
		if additive {
			fmt.Fprintf(&b, "- By series (total): %s.\n", strings.Join(parts, "; "))
		} else {
			fmt.Fprintf(&b, "- By series: %s.\n", strings.Join(parts, "; "))
		}
	}
	// What changed: on an ordered axis, the last category against the one
	// before.
	if cats.col.kind != colCategory && additive && len(ranked) >= 2 {
		last, prev := -1, -1
		for p := n - 1; p >= 0; p-- {
			if has[p] {
				if last < 0 {
					last = p
				} else {
					prev = p
					break
				}
			}
		}
		fmt.Fprintf(&b, "- Latest, %s: %s, %s from %s (%s).\n", label(last), withUnit(totals[last], s.Unit),
			change(totals[prev], totals[last]), label(prev), withUnit(totals[prev], s.Unit))
	}
	return b.String()
}

// sortByDesc orders idx by v[idx] descending, ties in their order.
func sortByDesc(idx []int, v []float64) {
	for i := 1; i < len(idx); i++ {
		for j := i; j > 0 && v[idx[j]] > v[idx[j-1]]; j-- {
			idx[j], idx[j-1] = idx[j-1], idx[j]
		}
	}
}

// noData is the card of a result with nothing to draw: its title and
// "No data", never an error.
func noData(s Spec, title string, n notes, rows int) *picture {
	w, h := s.size()
	if s.Kind == KindTable && s.Height == 0 {
		h = MinHeight
	}
	why := "The query returned no rows."
	if rows > 0 {
		why = fmt.Sprintf("None of the %s has a value to draw.", count(rows, "row", "rows"))
	}
	f := frame{title: title}
	pic := &picture{
		w: vg.Points(float64(w)), h: vg.Points(float64(h)),
		md:     fmt.Sprintf("%s: no data. %s\n", mdTitle(title), why),
		notes:  n.list,
		noData: true,
	}
	pic.draw = func(c draw.Canvas) {
		body := f.draw(c)
		sty := textStyle(bold, noDataSize, inkMuted)
		sty.XAlign, sty.YAlign = draw.XCenter, draw.YCenter
		mid := body.Center()
		c.FillText(sty, vg.Point{X: mid.X, Y: mid.Y + 9}, "No data")
		sub := textStyle(sans, subtitleSize, inkMuted)
		sub.XAlign, sub.YAlign = draw.XCenter, draw.YCenter
		c.FillText(sub, vg.Point{X: mid.X, Y: mid.Y - 9}, fitText(sub, why, body.Max.X-body.Min.X))
	}
	return pic
}
