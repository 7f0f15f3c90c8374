package card

import (
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/activitybi/activitybi/internal/warehouse"
)

// colKind is how a column is drawn.
type colKind int

const (
	colCategory colKind = iota // labels in row order
	colNumber                  // a linear numeric axis
	colTime                    // a date/time axis, UTC
)

func (k colKind) String() string {
	switch k {
	case colNumber:
		return "number"
	case colTime:
		return "time"
	}
	return "text"
}

// column is a resolved result column.
type column struct {
	idx  int
	name string
	typ  string
	kind colKind
}

// columns indexes a result's columns by name.
type columns struct {
	t    *warehouse.Table
	cols []column
}

func newColumns(t *warehouse.Table) columns {
	cs := columns{t: t, cols: make([]column, len(t.Columns))}
	for i, c := range t.Columns {
		cs.cols[i] = column{idx: i, name: c.Name, typ: c.Type, kind: kindOfColumn(t, i)}
	}
	return cs
}

// list names the result's columns with their types, for error messages.
func (cs columns) list() string {
	if len(cs.cols) == 0 {
		return "the result has no columns"
	}
	var b strings.Builder
	b.WriteString("the result's columns are ")
	for i, c := range cs.cols {
		if i > 0 {
			b.WriteString(", ")
		}
		if i == 12 {
			fmt.Fprintf(&b, "and %d more", len(cs.cols)-i)
			break
		}
		b.WriteString(cut(c.name, 40))
		if c.typ != "" {
			b.WriteString(" " + c.typ)
		} else {
			b.WriteString(" (" + c.kind.String() + ")")
		}
	}
	return b.String()
}

// get resolves the column named by a spec field: the exact name, else the
// one column whose name matches ignoring case (SQL folds unquoted names).
// want, when not empty, are the kinds the role accepts.
func (cs columns) get(field, name string, want ...colKind) (column, error) {
	var found []column
	for _, c := range cs.cols {
		if c.name == name {
			found = append(found, c)
		}
	}
	if len(found) == 0 {
		for _, c := range cs.cols {
			if strings.EqualFold(c.name, name) {
				found = append(found, c)
			}
		}
	}
	switch {
	case len(found) == 0:
		return column{}, specErr("%s: no column %q in the result; %s", field, name, cs.list())
	case len(found) > 1:
		return column{}, specErr("%s: the result has %d columns named %q; give them distinct names with AS", field, len(found), name)
	}
	c := found[0]
	if len(want) > 0 {
		ok := false
		for _, k := range want {
			ok = ok || c.kind == k
		}
		if !ok {
			return column{}, specErr("%s: column %q is %s (%s) but must be a number; %s", field, name, c.kind, typeName(c), cs.list())
		}
	}
	return c, nil
}

func typeName(c column) string {
	if c.typ != "" {
		return c.typ
	}
	return "no type given"
}

// kindOfColumn decides how column i is drawn: by the engine's type name
// when it is one we know, else by its values (a Table built in Go, or a
// type such as JSON whose values may be anything).
func kindOfColumn(t *warehouse.Table, i int) colKind {
	if k, ok := kindOfType(t.Columns[i].Type); ok {
		return k
	}
	seen := false
	k := colCategory
	for _, r := range t.Rows {
		if i >= len(r) || r[i] == nil {
			continue
		}
		var vk colKind
		switch r[i].(type) {
		case int64, float64, int, int32, float32, uint64, json.Number:
			vk = colNumber
		case time.Time:
			vk = colTime
		default:
			return colCategory
		}
		if seen && vk != k {
			return colCategory
		}
		k, seen = vk, true
	}
	return k
}

// kindOfType maps DuckDB (and Snowflake) type names.
func kindOfType(typ string) (colKind, bool) {
	t := strings.ToUpper(strings.TrimSpace(typ))
	if i := strings.IndexByte(t, '('); i >= 0 {
		t = t[:i]
	}
	switch t {
	case "TINYINT", "SMALLINT", "INTEGER", "INT", "BIGINT", "HUGEINT",
		"UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT", "UHUGEINT",
		"FLOAT", "REAL", "DOUBLE", "DECIMAL", "NUMERIC", "NUMBER", "FLOAT4", "FLOAT8", "INT4", "INT8":
		return colNumber, true
	case "DATE", "TIMESTAMP", "TIMESTAMP_S", "TIMESTAMP_MS", "TIMESTAMP_NS", "TIMESTAMPTZ",
		"TIMESTAMP WITH TIME ZONE", "TIMESTAMP_NTZ", "TIMESTAMP_LTZ", "TIMESTAMP_TZ", "DATETIME":
		return colTime, true
	case "VARCHAR", "TEXT", "STRING", "CHAR", "BOOLEAN", "BOOL", "UUID", "ENUM", "BLOB", "INTERVAL", "TIME":
		return colCategory, true
	}
	return colCategory, false
}

// num converts a value of a number column; false for NULL and for what is
// not a finite number.
func num(v any) (float64, bool) {
	var f float64
	switch v := v.(type) {
	case int64:
		f = float64(v)
	case float64:
		f = v
	case int:
		f = float64(v)
	case int32:
		f = float64(v)
	case float32:
		f = float64(v)
	case uint64:
		f = float64(v)
	case *big.Int:
		if v == nil {
			return 0, false
		}
		f, _ = new(big.Float).SetInt(v).Float64()
	case json.Number:
		var err error
		if f, err = v.Float64(); err != nil {
			return 0, false
		}
	case string:
		// HUGEINT and UBIGINT values beyond int64 come back as text.
		var err error
		if f, err = strconv.ParseFloat(strings.TrimSpace(v), 64); err != nil {
			return 0, false
		}
	default:
		return 0, false
	}
	if math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > maxMagnitude {
		return 0, false
	}
	return f, true
}

// maxMagnitude bounds the numbers a card draws: beyond it (a quintillion,
// about int64's range) a value is treated as missing and counted as such,
// so that no range, tick step or sum can overflow.
const maxMagnitude = 1e18

// timeOf converts a value of a time column to UTC; false for NULL and for
// what is not a time.
func timeOf(v any) (time.Time, bool) {
	switch v := v.(type) {
	case time.Time:
		return v.UTC(), true
	case string:
		for _, layout := range []string{time.RFC3339Nano, "2006-01-02 15:04:05.999999999", "2006-01-02"} {
			if t, err := time.Parse(layout, v); err == nil {
				return t.UTC(), true
			}
		}
	}
	return time.Time{}, false
}

// xval converts an x value of a number or time column to an axis position
// (time as Unix seconds).
func xval(c column, v any) (float64, bool) {
	if c.kind == colTime {
		t, ok := timeOf(v)
		if !ok {
			return 0, false
		}
		return unixSec(t), true
	}
	return num(v)
}

// labelOf renders any value as one line of text: categories, series names,
// table cells.
func labelOf(v any) string {
	var s string
	switch v := v.(type) {
	case nil:
		return "(null)"
	case string:
		s = v
	case time.Time:
		s = formatTime(v.UTC(), timePrecisionOf(v.UTC()))
	case bool:
		s = strconv.FormatBool(v)
	case int64:
		s = strconv.FormatInt(v, 10)
	case float64:
		s = strconv.FormatFloat(v, 'g', -1, 64)
	default:
		if f, ok := num(v); ok {
			s = strconv.FormatFloat(f, 'g', -1, 64)
			break
		}
		// Decoded JSON: maps marshal with sorted keys, so this is
		// deterministic.
		b, err := json.Marshal(v)
		if err != nil {
			s = fmt.Sprint(v)
		} else {
			s = string(b)
		}
	}
	return cleanText(s)
}

// cleanText makes s safe to draw on one line and to put in SVG (XML):
// invalid UTF-8 and the non-characters U+FFFE and U+FFFF become U+FFFD,
// control characters (newlines, tabs) become spaces.
func cleanText(s string) string {
	clean := utf8.ValidString(s)
	if clean {
		for _, r := range s {
			if unicode.IsControl(r) || nonCharacter(r) {
				clean = false
				break
			}
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for _, r := range strings.ToValidUTF8(s, "\uFFFD") {
		switch {
		case unicode.IsControl(r):
			r = ' '
		case nonCharacter(r):
			r = '\uFFFD'
		}
		b.WriteRune(r)
	}
	return b.String()
}

// nonCharacter reports the code points XML 1.0 does not allow in text
// besides the control characters.
func nonCharacter(r rune) bool { return r == 0xFFFE || r == 0xFFFF }

// truncRunes cuts s to n runes with an ellipsis.
func truncRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// humanize turns a column name into an axis label: "p95_latency_ms" ->
// "P95 latency ms".
func humanize(name string) string {
	s := strings.TrimSpace(strings.ReplaceAll(cleanText(name), "_", " "))
	if s == "" {
		return s
	}
	r, n := utf8.DecodeRuneInString(s)
	return string(unicode.ToUpper(r)) + s[n:]
}

// values resolves the value columns of a spec: numbers, each named once
// (y ["a", "A"] names one column twice when the match ignores case).
func (cs columns) values(ys []string) ([]column, error) {
	out := make([]column, len(ys))
	for i, y := range ys {
		c, err := cs.get(fmt.Sprintf("y[%d]", i), y, colNumber)
		if err != nil {
			return nil, err
		}
		for j := range i {
			if out[j].idx == c.idx {
				return nil, specErr("y[%d] and y[%d] both name column %q", j, i, c.name)
			}
		}
		out[i] = c
	}
	return out, nil
}

// withoutUnit drops a trailing unit from a humanized value name, since the
// label adds the unit in parentheses: "Latency ms" with ms -> "Latency",
// "Net usd" with USD -> "Net". A name that is only the unit stays.
func withoutUnit(label, unit string) string {
	if unit == "" {
		return label
	}
	if rest, ok := cutSuffixFold(label, " "+unit); ok && strings.TrimSpace(rest) != "" {
		return rest
	}
	return label
}

func cutSuffixFold(s, suffix string) (string, bool) {
	if len(s) >= len(suffix) && strings.EqualFold(s[len(s)-len(suffix):], suffix) {
		return s[:len(s)-len(suffix)], true
	}
	return s, false
}
