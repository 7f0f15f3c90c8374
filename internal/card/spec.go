package card

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Kind is what a card draws.
type Kind string

// The card kinds.
const (
	KindLine       Kind = "line"        // one or more series over x (time, number or category)
	KindBar        Kind = "bar"         // one bar per x category; several series side by side
	KindStackedBar Kind = "stacked_bar" // one bar per x category, series stacked
	KindTable      Kind = "table"       // the rows themselves
	KindKPI        Kind = "kpi"         // one big number with its change vs the previous value
	KindHeatmap    Kind = "heatmap"     // x by series grid coloured by value
)

// kinds is the accepted set in the order error messages list it.
var kinds = []Kind{KindLine, KindBar, KindStackedBar, KindTable, KindKPI, KindHeatmap}

// Kinds returns every accepted kind.
func Kinds() []Kind { return append([]Kind(nil), kinds...) }

// Limits of a spec. They bound what one card can ask for, so that a spec
// (which may come from an LLM through render_card) cannot make a render
// slow or a picture unreadable.
const (
	// MaxYColumns is the most value columns a spec may name: one colour per
	// column from the 8-colour Okabe-Ito palette.
	MaxYColumns = 8
	// MaxSpecBytes bounds the JSON ParseSpec reads.
	MaxSpecBytes = 16 << 10
	// MaxTitleRunes bounds Title; longer titles are refused, not cut, so
	// that the author sees why.
	MaxTitleRunes = 200
	// MaxLabelRunes bounds XLabel, YLabel and column names in a spec.
	MaxLabelRunes = 100
	// MaxUnitRunes bounds Unit ("ms", "USD", "events").
	MaxUnitRunes = 20

	// DefaultWidth and DefaultHeight are a card's size in points (1/72 in)
	// when the spec gives 0: 8 x 5 in, a 16:10 card that holds about 60
	// bars or a week of hourly points with readable labels.
	DefaultWidth  = 576
	DefaultHeight = 360
	// DefaultKPIWidth and DefaultKPIHeight are a kpi card's size: a tile
	// for one number, its change and a sparkline.
	DefaultKPIWidth  = 360
	DefaultKPIHeight = 200
	// MinWidth and MinHeight are the smallest size that still fits a title,
	// axes with labels and a plot area.
	MinWidth  = 240
	MinHeight = 160
	// MaxWidth and MaxHeight bound the canvas (and so the PNG's pixels and
	// the render time).
	MaxWidth  = 2400
	MaxHeight = 2400
)

// ErrInvalidSpec marks every error caused by the spec: a malformed or
// unknown field, an unknown kind, a field the kind does not use, or columns
// that the result does not have or that have the wrong type. It is the
// caller's to fix and never retryable.
var ErrInvalidSpec = errors.New("invalid card spec")

// Spec says what to draw from a query result.
type Spec struct {
	Kind  Kind   `json:"kind"`
	Title string `json:"title,omitempty"`
	// X is the column for the x axis (line), the categories (bar,
	// stacked_bar) or the heatmap's columns; for a kpi, optionally the
	// column that orders the rows (time).
	X string `json:"x,omitempty"`
	// Y are the value columns. kpi and heatmap: exactly one. table: the
	// columns to show, in order (empty = all).
	Y []string `json:"y,omitempty"`
	// Series is the column whose values split the rows into series (line,
	// bar, stacked_bar; Y then has one column) or the heatmap's rows.
	Series string `json:"series,omitempty"`
	// XLabel and YLabel name the axes; empty = derived from the columns.
	XLabel string `json:"x_label,omitempty"`
	YLabel string `json:"y_label,omitempty"`
	// Unit of the values ("ms", "USD", "events", "%"); shown in the y axis
	// label, the KPI and the summary.
	Unit string `json:"unit,omitempty"`
	// Delta (kpi) is the column holding the previous period's value. Without
	// it a kpi of several rows compares the last row with the first.
	Delta string `json:"delta,omitempty"`
	// Width and Height in points; 0 = DefaultWidth, DefaultHeight (a kpi:
	// DefaultKPIWidth, DefaultKPIHeight; a table's height follows its
	// rows).
	Width  int `json:"width,omitempty"`
	Height int `json:"height,omitempty"`
}

// ParseSpec decodes a spec strictly: one JSON object, no unknown fields,
// a known kind, and the fields that kind needs. Every error wraps
// ErrInvalidSpec and says what is accepted.
func ParseSpec(raw json.RawMessage) (Spec, error) {
	var s Spec
	if len(raw) > MaxSpecBytes {
		return s, specErr("spec is %d bytes, more than the %d accepted", len(raw), MaxSpecBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return Spec{}, specErr("%s", jsonProblem(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return Spec{}, specErr("spec must be a single JSON object; found more after it")
	}
	if len(s.Y) == 0 {
		s.Y = nil // "y": [] means no columns named, as an absent y does
	}
	if err := s.Validate(); err != nil {
		return Spec{}, err
	}
	return s, nil
}

// specFields lists the JSON fields of Spec for error messages.
const specFields = "kind, title, x, y, series, x_label, y_label, unit, delta, width, height"

// jsonProblem turns a decoding error into a sentence about the spec.
func jsonProblem(err error) string {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te):
		want := te.Type.String()
		switch te.Field {
		case "y":
			want = `an array of column names, e.g. ["count"]`
		case "width", "height":
			want = "a whole number of points"
		default:
			if te.Type.Kind().String() == "string" {
				want = "a string"
			}
		}
		if te.Field == "" {
			return fmt.Sprintf("spec must be a JSON object, not %s", te.Value)
		}
		return fmt.Sprintf("field %q must be %s, not %s", te.Field, want, te.Value)
	case errors.As(err, &se):
		return fmt.Sprintf("spec is not valid JSON at byte %d: %v", se.Offset, err)
	case errors.Is(err, io.EOF):
		return "spec is empty; want a JSON object like {\"kind\":\"line\",\"x\":\"day\",\"y\":[\"events\"]}"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "spec is not valid JSON: it ends early"
	}
	msg := err.Error()
	if f, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		return fmt.Sprintf("unknown field %s; the fields are %s", f, specFields)
	}
	return strings.TrimPrefix(msg, "json: ")
}

func specErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidSpec, fmt.Sprintf(format, args...))
}

func kindList() string {
	var b strings.Builder
	for i, k := range kinds {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(string(k))
	}
	return b.String()
}

// Validate checks the spec on its own (Render also checks it against the
// result's columns). Errors wrap ErrInvalidSpec.
func (s Spec) Validate() error {
	known := false
	for _, k := range kinds {
		if s.Kind == k {
			known = true
		}
	}
	if !known {
		if s.Kind == "" {
			return specErr("kind is missing; the kinds are %s", kindList())
		}
		return specErr("unknown kind %q; the kinds are %s", cut(string(s.Kind), 40), kindList())
	}
	for _, f := range []struct {
		name, v string
		max     int
	}{
		{"title", s.Title, MaxTitleRunes},
		{"x", s.X, MaxLabelRunes},
		{"series", s.Series, MaxLabelRunes},
		{"x_label", s.XLabel, MaxLabelRunes},
		{"y_label", s.YLabel, MaxLabelRunes},
		{"unit", s.Unit, MaxUnitRunes},
		{"delta", s.Delta, MaxLabelRunes},
	} {
		if err := checkText(f.name, f.v, f.max); err != nil {
			return err
		}
	}
	if len(s.Y) > MaxYColumns {
		return specErr("y names %d columns; at most %d are drawn (one colour each)", len(s.Y), MaxYColumns)
	}
	seen := map[string]bool{}
	for i, y := range s.Y {
		if y == "" {
			return specErr("y[%d] is empty; want a column name", i)
		}
		if err := checkText(fmt.Sprintf("y[%d]", i), y, MaxLabelRunes); err != nil {
			return err
		}
		if seen[y] {
			return specErr("y names column %q twice", y)
		}
		seen[y] = true
	}
	if s.Width != 0 && (s.Width < MinWidth || s.Width > MaxWidth) {
		return specErr("width %d is outside %d..%d points (0 = %d)", s.Width, MinWidth, MaxWidth, DefaultWidth)
	}
	if s.Height != 0 && (s.Height < MinHeight || s.Height > MaxHeight) {
		return specErr("height %d is outside %d..%d points (0 = %d)", s.Height, MinHeight, MaxHeight, DefaultHeight)
	}

	k := s.Kind
	unused := func(field, v, uses string) error {
		if v != "" {
			return specErr("%s does not use %s; a %s card uses %s", k, field, k, uses)
		}
		return nil
	}
	switch k {
	case KindLine, KindBar, KindStackedBar:
		uses := "x, y (value columns) and optionally series, x_label, y_label, unit"
		if s.X == "" {
			return specErr("%s needs x, the column for the %s", k, map[Kind]string{KindLine: "x axis", KindBar: "categories", KindStackedBar: "categories"}[k])
		}
		if len(s.Y) == 0 {
			return specErr("%s needs y, the value column(s)", k)
		}
		if s.Series != "" && len(s.Y) != 1 {
			return specErr("%s with series splits one value column into series; y names %d (use one y with series, or several y without it)", k, len(s.Y))
		}
		if err := unused("delta", s.Delta, uses); err != nil {
			return err
		}
	case KindTable:
		uses := "y (the columns to show, in order; empty = all) and title"
		for _, f := range [][2]string{{"x", s.X}, {"series", s.Series}, {"delta", s.Delta}, {"x_label", s.XLabel}, {"y_label", s.YLabel}, {"unit", s.Unit}} {
			if err := unused(f[0], f[1], uses); err != nil {
				return err
			}
		}
	case KindKPI:
		uses := "y (one value column), optionally delta (previous value), x (orders the rows), unit"
		if len(s.Y) != 1 {
			return specErr("kpi needs exactly one y column, the value; y names %d", len(s.Y))
		}
		for _, f := range [][2]string{{"series", s.Series}, {"x_label", s.XLabel}, {"y_label", s.YLabel}} {
			if err := unused(f[0], f[1], uses); err != nil {
				return err
			}
		}
	case KindHeatmap:
		uses := "x (columns), series (rows), one y (cell value), optionally x_label, y_label, unit"
		if s.X == "" || s.Series == "" || len(s.Y) != 1 {
			return specErr("heatmap needs x (the grid's columns), series (its rows) and exactly one y (the cell value)")
		}
		if err := unused("delta", s.Delta, uses); err != nil {
			return err
		}
	}
	return nil
}

// checkText refuses text that cannot be drawn or read: invalid UTF-8,
// control characters, or more than max runes.
func checkText(field, v string, max int) error {
	if !utf8.ValidString(v) {
		return specErr("%s is not valid UTF-8", field)
	}
	if n := utf8.RuneCountInString(v); n > max {
		return specErr("%s is %d characters; at most %d", field, n, max)
	}
	for _, r := range v {
		if unicode.IsControl(r) || r == 0xFFFE || r == 0xFFFF {
			return specErr("%s contains the control character %U; use plain text", field, r)
		}
	}
	return nil
}

// cut shortens s to at most n runes for an error message.
func cut(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n]) + "…"
}

// size returns the canvas size in points.
func (s Spec) size() (w, h int) {
	w, h = s.Width, s.Height
	dw, dh := DefaultWidth, DefaultHeight
	if s.Kind == KindKPI {
		dw, dh = DefaultKPIWidth, DefaultKPIHeight
	}
	if w == 0 {
		w = dw
	}
	if h == 0 {
		h = dh
	}
	return w, h
}
