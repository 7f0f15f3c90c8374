package card

import (
	"math"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
)

// tickGap is the least white space between two horizontal tick labels.
const tickGap = vg.Length(10)

// niceSteps are the mantissas of axis steps: 1, 2, 2.5, 5 times a power of
// ten, the steps people count in.
var niceSteps = []float64{1, 2, 2.5, 5}

// niceScale returns ticks from lo to hi (extended outwards to whole steps)
// with at most maxN ticks, the smallest nice step that fits. integer data
// never gets a fractional step.
func niceScale(lo, hi float64, maxN int, integer bool) (ticks []float64, step float64) {
	if maxN < 2 {
		maxN = 2
	}
	if math.IsNaN(lo) || math.IsNaN(hi) || math.IsInf(hi-lo, 0) {
		lo, hi = 0, 1 // not reachable with num's values; never loop on it
	}
	if !(hi > lo) {
		// One value: a range around it (or 0..1 for zero).
		switch {
		case lo == 0:
			lo, hi = 0, 1
		case lo > 0:
			lo, hi = 0, lo
		default:
			hi = 0
		}
	}
	raw := (hi - lo) / float64(maxN-1)
	exp := math.Floor(math.Log10(raw))
	for ; ; exp++ {
		for _, m := range niceSteps {
			step = m * math.Pow(10, exp)
			if integer && (step < 1 || step != math.Trunc(step)) {
				continue
			}
			first := math.Floor(lo/step + 1e-9)
			last := math.Ceil(hi/step - 1e-9)
			// Tick indexes must be exact integers: past 2^53 a float64
			// index no longer changes when incremented (values near 1e18
			// a few units apart), so a coarser step is taken instead.
			if math.Abs(first) >= 1<<53 || math.Abs(last) >= 1<<53 {
				continue
			}
			if n := int(last-first) + 1; n <= maxN {
				ticks = make([]float64, 0, n)
				// Round away float noise (3 * 0.2 = 0.6000000000000001).
				p := math.Pow(10, float64(min(decimalsOf(step), 15)))
				for k := range n {
					i := first + float64(k)
					v := math.Round(i*step*p) / p
					if v == 0 {
						v = 0 // no -0
					}
					ticks = append(ticks, v)
				}
				return ticks, step
			}
		}
	}
}

// valueAxis sets up a numeric axis over [lo, hi] with at most maxN ticks;
// the axis range becomes the outer ticks, so the top gridline bounds the
// data.
func valueAxis(a *plot.Axis, lo, hi float64, maxN int, integer bool) {
	ticks, step := niceScale(lo, hi, maxN, integer)
	labels := tickLabels(ticks, step)
	a.Min, a.Max = ticks[0], ticks[len(ticks)-1]
	ts := make(plot.ConstantTicks, len(ticks))
	for i, v := range ticks {
		ts[i] = plot.Tick{Value: v, Label: labels[i]}
	}
	a.Tick.Marker = ts
}

// numberXAxis picks ticks for a numeric x axis whose labels do not overlap
// in a plot width of w points.
func numberXAxis(a *plot.Axis, lo, hi float64, integer bool, sty text.Style, w vg.Length) {
	for n := 10; n >= 2; n-- {
		ticks, step := niceScale(lo, hi, n, integer)
		labels := tickLabels(ticks, step)
		span := ticks[len(ticks)-1] - ticks[0]
		spacing := w * vg.Length(step/span)
		if widest(sty, labels)+tickGap <= spacing || n == 2 {
			a.Min, a.Max = ticks[0], ticks[len(ticks)-1]
			ts := make(plot.ConstantTicks, len(ticks))
			for i, v := range ticks {
				ts[i] = plot.Tick{Value: v, Label: labels[i]}
			}
			a.Tick.Marker = ts
			return
		}
	}
}

func widest(sty text.Style, labels []string) vg.Length {
	var w vg.Length
	for _, l := range labels {
		w = max(w, sty.Width(l))
	}
	return w
}

// timeStep is one candidate spacing of a date axis with the label format
// that suits it.
type timeStep struct {
	d      time.Duration // fixed steps (seconds to weeks)
	months int           // calendar steps (months, years)
	layout string
}

// timeSteps from fine to coarse. Sub-day labels show the date instead of
// the time at midnight, so a multi-day hourly axis still says which day.
var timeSteps = []timeStep{
	{d: time.Second, layout: "15:04:05"},
	{d: 5 * time.Second, layout: "15:04:05"},
	{d: 15 * time.Second, layout: "15:04:05"},
	{d: 30 * time.Second, layout: "15:04:05"},
	{d: time.Minute, layout: "15:04"},
	{d: 5 * time.Minute, layout: "15:04"},
	{d: 15 * time.Minute, layout: "15:04"},
	{d: 30 * time.Minute, layout: "15:04"},
	{d: time.Hour, layout: "15:04"},
	{d: 3 * time.Hour, layout: "15:04"},
	{d: 6 * time.Hour, layout: "15:04"},
	{d: 12 * time.Hour, layout: "15:04"},
	{d: 24 * time.Hour, layout: "Jan 2"},
	{d: 2 * 24 * time.Hour, layout: "Jan 2"},
	{d: 7 * 24 * time.Hour, layout: "Jan 2"}, // Mondays
	{d: 14 * 24 * time.Hour, layout: "Jan 2"},
	{months: 1, layout: "Jan 2006"},
	{months: 3, layout: "Jan 2006"},
	{months: 6, layout: "Jan 2006"},
	{months: 12, layout: "2006"},
	{months: 24, layout: "2006"},
	{months: 60, layout: "2006"},
	{months: 120, layout: "2006"},
	{months: 1200, layout: "2006"},
}

// timeTicks returns the ticks of step s within [lo, hi] (Unix seconds).
func timeTicks(s timeStep, lo, hi float64) []plot.Tick {
	from, to := timeAt(lo), timeAt(hi)
	var t time.Time
	if s.months == 0 {
		step := int64(s.d / time.Second)
		sec := from.Unix()
		start := sec - mod(sec, step)
		if s.d == 7*24*time.Hour || s.d == 14*24*time.Hour {
			// Weeks start on Monday (1970-01-05 was one).
			const monday = 4 * 86400
			start = sec - mod(sec-monday, step)
		}
		t = time.Unix(start, 0).UTC()
	} else {
		m := (from.Year()*12 + int(from.Month()) - 1)
		m -= mod(m, s.months)
		t = time.Date(m/12, time.Month(m%12+1), 1, 0, 0, 0, 0, time.UTC)
	}
	multiYear := from.Year() != to.Year()
	var ticks []plot.Tick
	for i := 0; !t.After(to) && i < 1000; i++ {
		if !t.Before(from) {
			layout := s.layout
			if s.d > 0 && s.d < 24*time.Hour && t.Hour() == 0 && t.Minute() == 0 && t.Second() == 0 {
				layout = "Jan 2"
			}
			if layout == "Jan 2" && multiYear && (len(ticks) == 0 || t.Year() != timeAt(ticks[len(ticks)-1].Value).Year()) {
				layout = "Jan 2, 2006"
			}
			ticks = append(ticks, plot.Tick{Value: unixSec(t), Label: t.Format(layout)})
		}
		if s.months == 0 {
			t = t.Add(s.d)
		} else {
			t = t.AddDate(0, s.months, 0)
		}
	}
	return ticks
}

// unixSec and timeAt convert between times and axis positions (Unix
// seconds as float64: microsecond precision today, and no overflow for the
// years 1 to 9999 that DATE and TIMESTAMP hold, unlike UnixNano).
func unixSec(t time.Time) float64 {
	return float64(t.Unix()) + float64(t.Nanosecond())/1e9
}

func timeAt(sec float64) time.Time {
	whole := math.Floor(sec)
	return time.Unix(int64(whole), int64((sec-whole)*1e9)).UTC()
}

func mod[T int | int64](a, b T) T {
	m := a % b
	if m < 0 {
		m += b
	}
	return m
}

// timeXAxis picks the finest date step whose labels fit a plot width of w
// points without overlapping, and pads a single instant to a sensible
// range.
func timeXAxis(a *plot.Axis, lo, hi float64, sty text.Style, w vg.Length) {
	if !(hi > lo) {
		pad := 3600.0
		if math.Mod(lo, 86400) == 0 {
			pad = 86400
		}
		lo, hi = lo-pad, hi+pad
	}
	a.Min, a.Max = lo, hi
	for _, s := range timeSteps {
		approx := float64(s.d / time.Second)
		if s.months > 0 {
			approx = float64(s.months) * 30 * 86400
		}
		if (hi-lo)/approx > 200 {
			continue // far too many ticks; skip the work of making them
		}
		ticks := timeTicks(s, lo, hi)
		if len(ticks) == 0 {
			continue
		}
		if len(ticks) > 1 {
			spacing := w * vg.Length((ticks[1].Value-ticks[0].Value)/(hi-lo))
			var ws vg.Length
			for _, t := range ticks {
				ws = max(ws, sty.Width(t.Label))
			}
			if ws+tickGap > spacing {
				continue
			}
		}
		a.Tick.Marker = plot.ConstantTicks(ticks)
		return
	}
	// A range beyond a millennium step: label the ends.
	a.Tick.Marker = plot.ConstantTicks{
		{Value: lo, Label: timeAt(lo).Format("2006")},
		{Value: hi, Label: timeAt(hi).Format("2006")},
	}
}
