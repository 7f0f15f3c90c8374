package sqltmpl

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Rendered is a template rendered for one dialect: one statement with ?
// placeholders and the values to bind to them, in order.
type Rendered struct {
	Template string
	SQL      string // one statement, values as ? placeholders
	Args     []any  // string, int64, float64, bool, time.Time only
	// Params are the normalized parameters with defaults filled: the
	// canonical form of the question, for a query hash. Absent optional
	// parameters are left out; a window is days (relative to now) unless
	// from was given, so "the last 7 days" is the same question tomorrow.
	Params  map[string]any
	Timeout time.Duration
	// Columns and Card are the template's (shared: do not modify).
	Columns []Column
	Card    CardDefault
	// WindowStart and WindowEnd are the window the statement reads, zero
	// for a template without one.
	WindowStart, WindowEnd time.Time
}

// Render validates params (the JSON object of a tool call; empty or null
// means none) and renders the template for dialect d. now anchors relative
// windows (days=7 reads [now-7d, now)); it is passed in so that a render is
// a pure function of its inputs. Parameter problems are reported all at
// once in an *InvalidParamsError (errors.Is ErrInvalidParams); an unknown
// name is an *UnknownTemplateError (errors.Is ErrUnknownTemplate).
func (l *Library) Render(name string, params json.RawMessage, d Dialect, now time.Time) (*Rendered, error) {
	t, ok := l.byName[name]
	if !ok {
		l.metrics.byReason[ReasonUnknownTemplate].Inc()
		return nil, &UnknownTemplateError{Name: name, Known: l.names}
	}
	c, ok := t.sql[d]
	if !ok {
		return nil, fmt.Errorf("template %s: dialect %q is not one of duckdb, snowflake", name, d)
	}
	b, probs := t.bind(params, now)
	if len(probs) > 0 {
		seen := map[string]bool{}
		for _, p := range probs {
			if !seen[p.Reason] {
				seen[p.Reason] = true
				l.metrics.byReason[p.Reason].Inc()
			}
		}
		return nil, &InvalidParamsError{Template: name, Problems: probs}
	}
	r := &Rendered{
		Template: name, Params: b.norm, Timeout: t.Timeout, Columns: t.Columns, Card: t.Card,
		WindowStart: b.start, WindowEnd: b.end,
	}
	var sb strings.Builder
	sb.Grow(c.size + 64)
	for _, p := range c.pieces {
		switch p.kind {
		case pieceText:
			sb.WriteString(p.text)
		case pieceBind:
			sb.WriteByte('?')
			r.Args = append(r.Args, b.bound[p.name])
		case pieceSlot:
			// The value was checked against the enum's allow-list and
			// every value has a fragment (Load): only a fragment goes in.
			sb.WriteString(t.byName[p.name].fragments[d][b.norm[p.name].(string)])
		}
	}
	r.SQL = sb.String()
	l.metrics.renders.Inc()
	return r, nil
}

// binding is what a Render's parameters resolve to.
type binding struct {
	norm       map[string]any // Rendered.Params
	bound      map[string]any // $name -> value, derived values included
	start, end time.Time
}

// bind checks params against t and resolves them.
func (t *Template) bind(params json.RawMessage, now time.Time) (*binding, []Problem) {
	var probs []Problem
	add := func(param, reason, format string, args ...any) {
		probs = append(probs, Problem{Param: param, Msg: fmt.Sprintf(format, args...), Reason: reason})
	}
	if len(params) > MaxParamsBytes {
		add("", ReasonTooLarge, "the parameters are %d bytes; the limit is %d (%d KiB)", len(params), MaxParamsBytes, MaxParamsBytes>>10)
		return nil, probs
	}
	given, order, perr := decodeObject(params)
	if perr != nil {
		return nil, []Problem{*perr}
	}
	b := &binding{norm: make(map[string]any, len(t.Params)), bound: make(map[string]any, len(t.Params)+3)}
	// Unknown keys first, sorted, then keys given twice, then the
	// template's parameters in order.
	var unknown, twice []string
	for _, k := range order {
		if t.byName[k] == nil {
			unknown = append(unknown, k)
		}
		if given[k] == nil {
			twice = append(twice, k)
		}
	}
	sort.Strings(unknown)
	for _, k := range unknown {
		add(keyName(k), ReasonUnknownParam, "unknown parameter; %s takes: %s", t.Name, t.accepts)
	}
	for _, k := range twice {
		add(keyName(k), ReasonMalformed, "is given twice")
	}
	for i := range t.Params {
		p := &t.Params[i]
		raw, ok := given[p.Name]
		if ok && raw == nil {
			continue // given twice: reported above
		}
		if ok && !isNull(raw) {
			v, bv, prob := convert(p, raw)
			if prob != nil {
				prob.Param = p.Name
				probs = append(probs, *prob)
				continue
			}
			if p.Type == TypeString && v == "" && p.Optional {
				// "" is "no filter", the same question as leaving it out.
				b.bound[p.Name] = ""
				continue
			}
			b.norm[p.Name], b.bound[p.Name] = v, bv
			continue
		}
		switch {
		case p.Default != nil:
			b.norm[p.Name] = p.Default
			b.bound[p.Name] = boundDefault(p)
		case p.Optional:
			if p.Type == TypeString {
				b.bound[p.Name] = ""
			}
		default:
			add(p.Name, ReasonMissing, "is required (%s: %s)", p.Type, p.Description)
		}
	}
	if t.window != nil {
		probs = t.resolveWindow(b, given, now, probs)
	}
	return b, probs
}

// resolveWindow turns days, from and to into $window_start, $window_end
// and $prev_start, and checks the window's limits.
func (t *Template) resolveWindow(b *binding, given map[string]json.RawMessage, now time.Time, probs []Problem) []Problem {
	for _, p := range probs {
		if p.Param == paramDays || p.Param == paramFrom || p.Param == paramTo || p.Param == paramBucket {
			return probs // the window cannot be worked out; its own problems say why
		}
	}
	add := func(param, format string, args ...any) {
		probs = append(probs, Problem{Param: param, Msg: fmt.Sprintf(format, args...), Reason: ReasonWindow})
	}
	end := now.UTC().Truncate(time.Microsecond)
	if to, ok := b.bound[paramTo].(time.Time); ok {
		end = to
	}
	var start time.Time
	from, hasFrom := b.bound[paramFrom].(time.Time)
	daysGiven := given[paramDays] != nil && !isNull(given[paramDays])
	days := b.norm[paramDays].(int64)
	switch {
	case hasFrom && daysGiven:
		add(paramDays, "give either days or from, not both")
		return probs
	case hasFrom:
		start = from
		delete(b.norm, paramDays)
	default:
		start = end.Add(-time.Duration(days) * 24 * time.Hour)
	}
	if !start.Before(end) {
		add(paramFrom, "%s is not before the window's end %s", start.Format(time.RFC3339Nano), end.Format(time.RFC3339Nano))
		return probs
	}
	span := end.Sub(start)
	if maxSpan := time.Duration(t.window.MaxDays) * 24 * time.Hour; span > maxSpan {
		add(paramFrom, "the window from %s to %s is %.1f days; the limit is %d", start.Format(time.RFC3339), end.Format(time.RFC3339), span.Hours()/24, t.window.MaxDays)
		return probs
	}
	if t.bucket != nil {
		bk := b.norm[paramBucket].(string)
		if n := int64(span / bucketSizes[bk]); n > MaxBuckets {
			add(paramBucket, "%s buckets over %.1f days are about %d rows per series; the limit is %d: choose a longer bucket or a shorter window",
				bk, span.Hours()/24, n, MaxBuckets)
			return probs
		}
	}
	b.start, b.end = start, end
	b.bound[bindWindowStart] = start
	b.bound[bindWindowEnd] = end
	b.bound[bindPrevStart] = start.Add(-span)
	return probs
}

// decodeObject splits a JSON object into its members, keeping the order of
// the keys; a key given twice maps to nil. A problem is the whole input's.
func decodeObject(params json.RawMessage) (map[string]json.RawMessage, []string, *Problem) {
	trimmed := bytes.TrimSpace(params)
	if len(trimmed) == 0 || isNull(trimmed) {
		return nil, nil, nil
	}
	malformed := func(format string, args ...any) *Problem {
		for i, a := range args {
			if a == io.EOF || a == io.ErrUnexpectedEOF {
				args[i] = "it ends too early"
			}
		}
		return &Problem{Msg: fmt.Sprintf(format, args...), Reason: ReasonMalformed}
	}
	if !utf8.Valid(trimmed) {
		return nil, nil, malformed("the parameters are not valid UTF-8")
	}
	if trimmed[0] != '{' {
		return nil, nil, malformed("the parameters must be a JSON object such as {\"days\": 7}, not %s", jsonKind(trimmed))
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	dec.UseNumber()
	if _, err := dec.Token(); err != nil {
		return nil, nil, malformed("the parameters are not valid JSON: %v", err)
	}
	given := map[string]json.RawMessage{}
	var order []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, malformed("the parameters are not valid JSON: %v", err)
		}
		key, _ := tok.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, nil, malformed("the parameters are not valid JSON: %v", err)
		}
		if _, dup := given[key]; dup {
			if given[key] != nil {
				given[key] = nil
			}
			continue
		}
		given[key] = raw
		order = append(order, key)
	}
	if _, err := dec.Token(); err != nil {
		return nil, nil, malformed("the parameters are not valid JSON: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, nil, malformed("the parameters must be one JSON object; there is more after it")
	}
	return given, order, nil
}

func isNull(raw []byte) bool { return string(raw) == "null" }

// convert checks one JSON value against p and returns its normalized form
// (Rendered.Params) and the value to bind.
func convert(p *Param, raw json.RawMessage) (norm, bound any, prob *Problem) {
	fail := func(reason, format string, args ...any) (any, any, *Problem) {
		return nil, nil, &Problem{Param: p.Name, Msg: fmt.Sprintf(format, args...), Reason: reason}
	}
	kind := jsonKind(raw)
	switch p.Type {
	case TypeInt, TypeFloat:
		if kind != "a number" {
			return fail(ReasonWrongType, "must be %s, got %s", numberWord(p.Type), describe(raw))
		}
		s := string(raw)
		var f float64
		if p.Type == TypeInt {
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				f, err = strconv.ParseFloat(s, 64)
				if err != nil || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
					return fail(ReasonWrongType, "must be an integer, got %s", clip(s))
				}
				n = int64(f)
			}
			if prob := checkRange(p, float64(n), s); prob != nil {
				return nil, nil, prob
			}
			return n, n, nil
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsInf(f, 0) {
			return fail(ReasonOutOfRange, "%s is not a finite number", clip(s))
		}
		if prob := checkRange(p, f, s); prob != nil {
			return nil, nil, prob
		}
		return f, f, nil
	case TypeBool:
		switch string(raw) {
		case "true":
			return true, true, nil
		case "false":
			return false, false, nil
		}
		return fail(ReasonWrongType, "must be true or false, got %s", describe(raw))
	}
	if p.Type == TypeDuration && kind == "a number" {
		f, err := strconv.ParseFloat(string(raw), 64)
		if err != nil || math.Abs(f) > maxDurationSeconds {
			return fail(ReasonOutOfRange, "%s seconds is not a duration this can count", clip(string(raw)))
		}
		d := time.Duration(f * float64(time.Second))
		if prob := checkRange(p, d.Seconds(), clip(string(raw))); prob != nil {
			return nil, nil, prob
		}
		return d.String(), d.Seconds(), nil
	}
	// The rest are strings.
	if kind != "a string" {
		return fail(ReasonWrongType, "must be %s, got %s", stringWord(p), describe(raw))
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return fail(ReasonMalformed, "is not a valid JSON string: %v", err)
	}
	switch p.Type {
	case TypeString:
		maxLen := p.MaxLen
		if maxLen == 0 {
			maxLen = DefaultMaxLen
		}
		if n := utf8.RuneCountInString(s); n > maxLen {
			return fail(ReasonTooLong, "is %d characters; the limit is %d", n, maxLen)
		}
		if strings.ContainsFunc(s, unprintable) {
			return fail(ReasonNotAllowed, "contains control characters (a NUL byte, a tab or a line break, ...); it must be one printable line")
		}
		if p.pattern != nil && !p.pattern.MatchString(s) {
			return fail(ReasonNotAllowed, "%s does not match %s", quoteClip(s), p.Pattern)
		}
		return s, s, nil
	case TypeEnum:
		if !contains(p.Values, s) {
			return fail(ReasonNotAllowed, "%s is not one of %s", quoteClip(s), strings.Join(p.Values, ", "))
		}
		return s, s, nil
	case TypeTimestamp:
		ts, ok := parseTimestamp(s)
		if !ok {
			return fail(ReasonWrongType, "%s is not a timestamp: use RFC 3339 (2026-03-01T09:00:00Z) or a date (2026-03-01), UTC", quoteClip(s))
		}
		if ts.Before(MinTimestamp) || !ts.Before(MaxTimestamp) {
			return fail(ReasonOutOfRange, "%s is outside %s to %s", ts.Format(time.RFC3339Nano), MinTimestamp.Format("2006-01-02"), MaxTimestamp.Format("2006-01-02"))
		}
		return ts, ts, nil
	case TypeDuration:
		d, ok := parseDuration(s)
		if !ok {
			return fail(ReasonWrongType, "%s is not a duration: use e.g. \"500ms\", \"90s\", \"15m\", \"2h\", \"1d\" or a number of seconds", quoteClip(s))
		}
		if prob := checkRange(p, d.Seconds(), d.String()); prob != nil {
			return nil, nil, prob
		}
		return d.String(), d.Seconds(), nil
	}
	return fail(ReasonWrongType, "has an unknown type %s", p.Type)
}

// boundDefault is the value bound for p's default.
func boundDefault(p *Param) any {
	if p.Type == TypeDuration {
		d, _ := parseDuration(p.Default.(string))
		return d.Seconds()
	}
	return p.Default
}

func checkRange(p *Param, v float64, shown string) *Problem {
	unit := ""
	if p.Type == TypeDuration {
		unit = " seconds"
	}
	if (p.Min != nil && v < *p.Min) || (p.Max != nil && v > *p.Max) {
		return &Problem{Param: p.Name, Reason: ReasonOutOfRange,
			Msg: fmt.Sprintf("%s is out of range: it must be between %s and %s%s", clip(shown), fmtNum(*p.Min), fmtNum(*p.Max), unit)}
	}
	return nil
}

func parseTimestamp(s string) (time.Time, bool) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02"} {
		if ts, err := time.Parse(layout, s); err == nil {
			return ts.UTC().Truncate(time.Microsecond), true
		}
	}
	return time.Time{}, false
}

// maxDurationSeconds keeps a duration within time.Duration (292 years).
const maxDurationSeconds = float64(math.MaxInt64 / int64(time.Second))

// parseDuration accepts Go durations, a leading number of days ("1d12h"),
// and a bare number of seconds given as a string ("90").
func parseDuration(s string) (time.Duration, bool) {
	if s == "" || len(s) > 32 {
		return 0, false
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil && !strings.ContainsAny(s, "xXpP_") {
		if math.IsNaN(f) || math.Abs(f) > maxDurationSeconds {
			return 0, false
		}
		return time.Duration(f * float64(time.Second)), true
	}
	var days time.Duration
	if i := strings.IndexByte(s, 'd'); i > 0 {
		n, err := strconv.ParseUint(s[:i], 10, 16)
		if err != nil {
			return 0, false
		}
		days, s = time.Duration(n)*24*time.Hour, s[i+1:]
		if s == "" {
			return days, true
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 && days > 0 {
		return 0, false
	}
	return days + d, true
}

func unprintable(r rune) bool {
	return unicode.IsControl(r) || r == '\u2028' || r == '\u2029' || r == utf8.RuneError
}

func numberWord(t ParamType) string {
	if t == TypeInt {
		return "an integer"
	}
	return "a number"
}

func stringWord(p *Param) string {
	switch p.Type {
	case TypeEnum:
		return "one of " + strings.Join(p.Values, ", ") + " (a string)"
	case TypeTimestamp:
		return "a timestamp string (RFC 3339 or YYYY-MM-DD)"
	case TypeDuration:
		return "a duration such as \"90s\", \"2h\" or a number of seconds"
	}
	return "a string"
}

// jsonKind names the kind of a JSON value for messages.
func jsonKind(raw []byte) string {
	if len(raw) == 0 {
		return "nothing"
	}
	switch c := raw[0]; {
	case c == '"':
		return "a string"
	case c == '{':
		return "an object"
	case c == '[':
		return "an array"
	case c == 't' || c == 'f':
		return "a boolean"
	case c == 'n':
		return "null"
	case c == '-' || c >= '0' && c <= '9':
		return "a number"
	}
	return "not JSON"
}

// describe is a JSON value's kind and, for scalars, the value (clipped).
func describe(raw []byte) string {
	k := jsonKind(raw)
	switch k {
	case "a string", "a number", "a boolean":
		return k + " (" + clip(string(raw)) + ")"
	}
	return k
}

// clipLen bounds values quoted back in messages: a megabyte-long payload
// must not come back a megabyte long.
const clipLen = 40

func clip(s string) string {
	if utf8.RuneCountInString(s) <= clipLen {
		return s
	}
	r := []rune(s)
	return string(r[:clipLen]) + "…"
}

// keyName is a key as a problem names it: quoted unless it is a plain name.
func keyName(k string) string {
	if validName(k) {
		return k
	}
	return quoteClip(k)
}

// quoteClip quotes s, clipped, with control characters escaped.
func quoteClip(s string) string { return strconv.Quote(clip(s)) }

func fmtNum(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// formatValue prints a normalized parameter value.
func formatValue(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case int64:
		return strconv.FormatInt(v, 10)
	case float64:
		return fmtNum(v)
	case bool:
		return strconv.FormatBool(v)
	case time.Time:
		return v.Format(time.RFC3339Nano)
	}
	return fmt.Sprint(v)
}
