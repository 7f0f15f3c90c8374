package card

import (
	"math"
	"strconv"
	"strings"
	"time"
)

// currencySymbols are the units drawn as a prefix ("$12.30") rather than a
// suffix ("412 ms").
var currencySymbols = map[string]string{"USD": "$", "$": "$", "EUR": "€", "€": "€", "GBP": "£", "£": "£"}

// withUnit formats v for a person: thousands separators, a sensible number
// of decimals, millions and up compacted (1.23M), and the unit.
func withUnit(v float64, unit string) string {
	if sym, ok := currencySymbols[strings.ToUpper(unit)]; ok {
		sign := ""
		if v < 0 {
			sign, v = "-", -v
		}
		var s string
		switch {
		case v >= 1e6:
			s = compact(v, 3)
		case v >= 1 || v == 0:
			s = thousands(strconv.FormatFloat(v, 'f', 2, 64))
		default:
			s = sigDigits(v, 3)
		}
		return sign + sym + s
	}
	s := plainNumber(v)
	switch unit {
	case "":
		return s
	case "%":
		return s + "%"
	}
	return s + " " + unit
}

// plainNumber formats v without a unit.
func plainNumber(v float64) string {
	a := math.Abs(v)
	switch {
	case a >= 1e6:
		return compact(v, 3)
	case v == math.Trunc(v):
		return thousands(strconv.FormatFloat(v, 'f', 0, 64))
	case a >= 1000:
		return thousands(strconv.FormatFloat(v, 'f', 0, 64))
	case a >= 1:
		return trimZeros(strconv.FormatFloat(v, 'f', 2, 64))
	}
	return sigDigits(v, 3)
}

// sigDigits formats a number below 1 with n significant digits.
func sigDigits(v float64, n int) string {
	if v == 0 {
		return "0"
	}
	d := n - 1 - int(math.Floor(math.Log10(math.Abs(v))))
	if d < 0 {
		d = 0
	}
	return trimZeros(strconv.FormatFloat(v, 'f', d, 64))
}

// compact formats |v| >= 1000 with a suffix and n significant digits:
// 1234 -> 1.23k, 5.6e6 -> 5.6M.
func compact(v float64, n int) string {
	scale, suffix := suffixFor(math.Abs(v))
	x := v / scale
	d := n - 1 - int(math.Floor(math.Log10(math.Abs(x))))
	if d < 0 {
		d = 0
	}
	return trimZeros(strconv.FormatFloat(x, 'f', d, 64)) + suffix
}

// suffixFor returns the largest SI-like scale not above a.
func suffixFor(a float64) (float64, string) {
	switch {
	case a >= 1e12:
		return 1e12, "T"
	case a >= 1e9:
		return 1e9, "B"
	case a >= 1e6:
		return 1e6, "M"
	case a >= 1e3:
		return 1e3, "k"
	}
	return 1, ""
}

// thousands puts commas into the integer part of a formatted number.
func thousands(s string) string {
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	intPart, frac, hasFrac := strings.Cut(s, ".")
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, c := range intPart {
		if i > 0 && (len(intPart)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if hasFrac {
		b.WriteByte('.')
		b.WriteString(frac)
	}
	return b.String()
}

func trimZeros(s string) string {
	if !strings.Contains(s, ".") {
		return s
	}
	s = strings.TrimRight(s, "0")
	s = strings.TrimSuffix(s, ".")
	if s == "-0" {
		return "0"
	}
	return s
}

// pct formats a relative change: +12%, -3.4%, +0.1%.
func pct(ratio float64) string {
	p := ratio * 100
	var s string
	if math.Abs(p) >= 10 {
		s = strconv.FormatFloat(math.Round(p), 'f', 0, 64)
	} else {
		s = trimZeros(strconv.FormatFloat(p, 'f', 1, 64))
	}
	if s == "-0" {
		s = "0"
	}
	if p > 0 && s != "0" {
		s = "+" + s
	}
	return s + "%"
}

// tickLabels formats axis ticks compactly (1.2k, 3.4M) with the decimals
// their step needs, so neighbouring labels always differ.
func tickLabels(vals []float64, step float64) []string {
	maxAbs := 0.0
	for _, v := range vals {
		maxAbs = math.Max(maxAbs, math.Abs(v))
	}
	scale, suffix := suffixFor(maxAbs)
	dec := decimalsOf(step / scale)
	if dec > 2 || (dec > 0 && maxAbs < 10_000) {
		// Steps far below the scale (1,000, 1,001) read better in full
		// than as 1k, 1.001k, and so do small thousands (200 ... 1,000,
		// not 0.2k ... 1k).
		scale, suffix = 1, ""
		dec = decimalsOf(step)
	}
	out := make([]string, len(vals))
	for i, v := range vals {
		x := v / scale
		if math.Abs(x) < step/scale*1e-9 { // float noise around zero
			out[i] = "0"
			continue
		}
		s := strconv.FormatFloat(x, 'f', dec, 64)
		if scale == 1 {
			s = thousands(s)
		}
		out[i] = trimZeros(s) + suffix
	}
	return out
}

// decimalsOf returns how many decimals show a nice step exactly (0.25 ->
// 2, 5 -> 0).
func decimalsOf(step float64) int {
	if step <= 0 || math.IsNaN(step) || math.IsInf(step, 0) {
		return 0
	}
	// Round away float noise such as 0.30000000000000004.
	s := strconv.FormatFloat(mustParse(strconv.FormatFloat(step, 'g', 8, 64)), 'f', -1, 64)
	_, frac, ok := strings.Cut(s, ".")
	if !ok {
		return 0
	}
	return min(len(frac), 6)
}

func mustParse(s string) float64 {
	f, _ := strconv.ParseFloat(s, 64)
	return f
}

// timePrecision is the finest unit a set of times needs to be told apart.
type timePrecision int

const (
	precDay timePrecision = iota
	precMinute
	precSecond
	precMilli
)

func timePrecisionOf(ts ...time.Time) timePrecision {
	p := precDay
	for _, t := range ts {
		switch {
		case t.Nanosecond() != 0:
			return precMilli
		case t.Second() != 0:
			p = max(p, precSecond)
		case t.Hour() != 0 || t.Minute() != 0:
			p = max(p, precMinute)
		}
	}
	return p
}

// formatTime writes t in UTC for summaries and tables (ISO-like, so that it
// sorts and reads the same everywhere).
func formatTime(t time.Time, p timePrecision) string {
	t = t.UTC()
	switch p {
	case precDay:
		return t.Format("2006-01-02")
	case precMinute:
		return t.Format("2006-01-02 15:04")
	case precSecond:
		return t.Format("2006-01-02 15:04:05")
	}
	return t.Format("2006-01-02 15:04:05.000")
}
