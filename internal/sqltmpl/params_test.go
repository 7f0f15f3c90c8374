package sqltmpl

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// typedTemplate has a parameter of every type, to check conversions one by
// one; its SQL only selects the values back.
const typedTemplate = `/*
name: typed
description: A template with a parameter of every type, for the tests of parameter conversion and messages.
reads: nothing but its parameters
timeout: 5s
window: {days: 7, max_days: 30}
bucket: {default: day}
params:
  - {name: s, type: string, optional: true, max_len: 5, description: a short string}
  - {name: p, type: string, default: ab_cd, pattern: '^[a-z]+_[a-z]+$', description: a patterned string}
  - {name: i, type: int, default: 3, min: -2, max: 10, description: an integer}
  - {name: f, type: float, default: 0.5, min: 0, max: 1, description: a fraction}
  - {name: b, type: bool, default: false, description: a flag}
  - {name: ts, type: timestamp, default: '2026-01-01', description: a time}
  - {name: d, type: duration, default: 90s, min: 1, max: 86400, description: a duration}
  - {name: e, type: enum, default: x, values: [x, y], description: a bound enum}
  - {name: req, type: int, min: 0, max: 5, description: a required integer}
columns:
  - {name: v, type: VARCHAR, description: a value}
*/
-- dialect: duckdb
SELECT date_trunc(/* SLOT: bucket */'day'/* END */, $window_start) AS v, $s, $p, $i, $f, $b, $ts, $d, $e, $req, $window_end
-- dialect: snowflake
SELECT DATE_TRUNC(/* SLOT: bucket */'day'/* END */, $window_start) AS "v", $s, $p, $i, $f, $b, $ts, $d, $e, $req, $window_end
`

func typedLibrary(t *testing.T) *Library {
	t.Helper()
	l, err := LoadFS(fstest.MapFS{"typed.sql": {Data: []byte(typedTemplate)}})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// Every kind of bad input gets the exact message a person (or Claude) can
// act on, all problems of a call at once.
func TestParamProblems(t *testing.T) {
	t.Parallel()
	lib := typedLibrary(t)
	long := strings.Repeat("x", 6)
	cases := []struct {
		name, params string
		want         string // the error after "template typed: invalid parameters: "
	}{
		{"missing required", `{}`, `req: is required (int: a required integer)`},
		{"null is absent", `{"req": null}`, `req: is required (int: a required integer)`},
		{"unknown", `{"req": 1, "colour": "red"}`, `colour: unknown parameter; typed takes: days, from, to, bucket, s, p, i, f, b, ts, d, e, req`},
		{"unknown, not a name", "{\"req\": 1, \"a b\\n\": 1}", `"a b\n": unknown parameter; typed takes: days, from, to, bucket, s, p, i, f, b, ts, d, e, req`},
		{"given twice", `{"req": 1, "req": 2}`, `req: is given twice`},
		{"int as string", `{"req": "1"}`, `req: must be an integer, got a string ("1")`},
		{"int with fraction", `{"req": 1.5}`, `req: must be an integer, got 1.5`},
		{"int written as float", `{"req": 1.0, "i": -2}`, ``},
		{"int too big", `{"req": 1e300}`, `req: must be an integer, got 1e300`},
		{"int below", `{"req": 1, "i": -3}`, `i: -3 is out of range: it must be between -2 and 10`},
		{"int above", `{"req": 6}`, `req: 6 is out of range: it must be between 0 and 5`},
		{"float as bool", `{"req": 1, "f": true}`, `f: must be a number, got a boolean (true)`},
		{"float above", `{"req": 1, "f": 1.01}`, `f: 1.01 is out of range: it must be between 0 and 1`},
		{"bool as string", `{"req": 1, "b": "true"}`, `b: must be true or false, got a string ("true")`},
		{"string as number", `{"req": 1, "s": 5}`, `s: must be a string, got a number (5)`},
		{"string as object", `{"req": 1, "s": {"a": 1}}`, `s: must be a string, got an object`},
		{"string too long", `{"req": 1, "s": "` + long + `"}`, `s: is 6 characters; the limit is 5`},
		{"string length in characters", `{"req": 1, "s": "ééééé"}`, ``},
		{"NUL byte", `{"req": 1, "s": "a\u0000b"}`, `s: contains control characters (a NUL byte, a tab or a line break, ...); it must be one printable line`},
		{"line break", `{"req": 1, "s": "a\nb"}`, `s: contains control characters (a NUL byte, a tab or a line break, ...); it must be one printable line`},
		{"pattern", `{"req": 1, "p": "Ab cd"}`, `p: "Ab cd" does not match ^[a-z]+_[a-z]+$`},
		{"enum", `{"req": 1, "e": "z"}`, `e: "z" is not one of x, y`},
		{"enum as number", `{"req": 1, "e": 1}`, `e: must be one of x, y (a string), got a number (1)`},
		{"bucket", `{"req": 1, "bucket": "minute"}`, `bucket: "minute" is not one of hour, day, week, month`},
		{"timestamp", `{"req": 1, "ts": "yesterday"}`, `ts: "yesterday" is not a timestamp: use RFC 3339 (2026-03-01T09:00:00Z) or a date (2026-03-01), UTC`},
		{"timestamp too early", `{"req": 1, "ts": "1969-12-31"}`, `ts: 1969-12-31T00:00:00Z is outside 1970-01-01 to 2200-01-01`},
		{"duration", `{"req": 1, "d": "soon"}`, `d: "soon" is not a duration: use e.g. "500ms", "90s", "15m", "2h", "1d" or a number of seconds`},
		{"duration below", `{"req": 1, "d": "500ms"}`, `d: 500ms is out of range: it must be between 1 and 86400 seconds`},
		{"duration above", `{"req": 1, "d": "1d1s"}`, `d: 24h0m1s is out of range: it must be between 1 and 86400 seconds`},
		{"duration as bool", `{"req": 1, "d": false}`, `d: must be a duration such as "90s", "2h" or a number of seconds, got a boolean (false)`},
		{"days out of range", `{"req": 1, "days": 31}`, `days: 31 is out of range: it must be between 1 and 30`},
		{"days and from", `{"req": 1, "days": 3, "from": "2026-03-30"}`, `days: give either days or from, not both`},
		{"from after to", `{"req": 1, "from": "2026-03-30", "to": "2026-03-29"}`, `from: 2026-03-30T00:00:00Z is not before the window's end 2026-03-29T00:00:00Z`},
		{"from in the future", `{"req": 1, "from": "2026-04-01"}`, `from: 2026-04-01T00:00:00Z is not before the window's end 2026-03-31T12:00:00Z`},
		{"window too long", `{"req": 1, "from": "2026-01-01"}`, `from: the window from 2026-01-01T00:00:00Z to 2026-03-31T12:00:00Z is 89.5 days; the limit is 30`},
		{"not an object", `[1, 2]`, `the parameters must be a JSON object such as {"days": 7}, not an array`},
		{"a string", `"days=7"`, `the parameters must be a JSON object such as {"days": 7}, not a string`},
		{"broken JSON", `{"req": 1`, `the parameters are not valid JSON: it ends too early`},
		{"trailing data", `{"req": 1} {}`, `the parameters must be one JSON object; there is more after it`},
		{"invalid UTF-8", "{\"req\": 1, \"s\": \"\xff\"}", `the parameters are not valid UTF-8`},
		{
			"every problem at once", `{"zz": 1, "aa": 2, "i": "x", "s": "toolong", "e": "q"}`,
			`aa: unknown parameter; typed takes: days, from, to, bucket, s, p, i, f, b, ts, d, e, req; ` +
				`zz: unknown parameter; typed takes: days, from, to, bucket, s, p, i, f, b, ts, d, e, req; ` +
				`s: is 7 characters; the limit is 5; i: must be an integer, got a string ("x"); e: "q" is not one of x, y; ` +
				`req: is required (int: a required integer)`,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := lib.Render("typed", json.RawMessage(c.params), DuckDB, fxNow)
			if c.want == "" {
				if err != nil {
					t.Fatalf("%s: %v", c.params, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("%s: no error, want %s", c.params, c.want)
			}
			if !errors.Is(err, ErrInvalidParams) {
				t.Errorf("%v does not wrap ErrInvalidParams", err)
			}
			var ipe *InvalidParamsError
			if !errors.As(err, &ipe) || ipe.Template != "typed" {
				t.Errorf("%T is not an *InvalidParamsError of typed", err)
			}
			if got := strings.TrimPrefix(err.Error(), "template typed: invalid parameters: "); got != c.want {
				t.Errorf("%s:\n got %s\nwant %s", c.params, got, c.want)
			}
		})
	}
}

// The parameters are checked before they are parsed: an object over
// MaxParamsBytes is refused whole.
func TestParamsTooLarge(t *testing.T) {
	t.Parallel()
	big := `{"tool": "` + strings.Repeat("x", MaxParamsBytes) + `"}`
	_, err := Default().Render("tool_stats", json.RawMessage(big), DuckDB, fxNow)
	want := "template tool_stats: invalid parameters: the parameters are 16396 bytes; the limit is 16384 (16 KiB)"
	if err == nil || err.Error() != want || !errors.Is(err, ErrInvalidParams) {
		t.Fatalf("got %v, want %s", err, want)
	}
}

func TestUnknownTemplate(t *testing.T) {
	t.Parallel()
	lib := Default()
	var names []string
	for _, tp := range lib.List() {
		names = append(names, tp.Name)
	}
	want := `unknown template "tool_stat"; the templates are: ` + strings.Join(names, ", ")
	for _, f := range []func() error{
		func() error { _, err := lib.Render("tool_stat", nil, DuckDB, fxNow); return err },
		func() error { _, err := lib.Get("tool_stat"); return err },
	} {
		err := f()
		if err == nil || err.Error() != want || !errors.Is(err, ErrUnknownTemplate) || errors.Is(err, ErrInvalidParams) {
			t.Errorf("got %v, want %s (ErrUnknownTemplate)", err, want)
		}
	}
	if _, err := lib.Render("tool_stats", nil, Dialect("postgres"), fxNow); err == nil ||
		err.Error() != `template tool_stats: dialect "postgres" is not one of duckdb, snowflake` {
		t.Errorf("unknown dialect: %v", err)
	}
}

// What a valid call binds and how it is normalized.
func TestRenderValues(t *testing.T) {
	t.Parallel()
	lib := typedLibrary(t)
	r, err := lib.Render("typed", json.RawMessage(
		`{"req": 2, "s": "héllo", "i": -1.0, "f": 1, "b": true, "ts": "2026-03-01T10:00:00.1234567+02:00", "d": "12h30m", "e": "y", "to": "2026-03-30", "bucket": "week"}`),
		Snowflake, fxNow)
	if err != nil {
		t.Fatal(err)
	}
	ts := time.Date(2026, 3, 1, 8, 0, 0, 123456000, time.UTC)
	to := time.Date(2026, 3, 30, 0, 0, 0, 0, time.UTC)
	from := to.Add(-7 * 24 * time.Hour)
	wantArgs := []any{from, "héllo", "ab_cd", int64(-1), 1.0, true, ts, 45000.0, "y", int64(2), to}
	if !reflect.DeepEqual(r.Args, wantArgs) {
		t.Errorf("args\n got %#v\nwant %#v", r.Args, wantArgs)
	}
	wantParams := map[string]any{"days": int64(7), "to": to, "bucket": "week", "s": "héllo", "p": "ab_cd",
		"i": int64(-1), "f": 1.0, "b": true, "ts": ts, "d": "12h30m0s", "e": "y", "req": int64(2)}
	if !reflect.DeepEqual(r.Params, wantParams) {
		t.Errorf("params\n got %#v\nwant %#v", r.Params, wantParams)
	}
	wantSQL := `SELECT DATE_TRUNC('week', ?) AS "v", ?, ?, ?, ?, ?, ?, ?, ?, ?, ?`
	if r.SQL != wantSQL {
		t.Errorf("sql\n got %s\nwant %s", r.SQL, wantSQL)
	}
	if !r.WindowStart.Equal(from) || !r.WindowEnd.Equal(to) || r.Timeout != 5*time.Second || r.Template != "typed" {
		t.Errorf("window %s..%s timeout %s template %s", r.WindowStart, r.WindowEnd, r.Timeout, r.Template)
	}

	// Defaults, a from instead of days, "" for an optional string.
	r, err = lib.Render("typed", json.RawMessage(`{"req": 0, "s": "", "from": "2026-03-29T00:00:00Z"}`), DuckDB, fxNow)
	if err != nil {
		t.Fatal(err)
	}
	from = time.Date(2026, 3, 29, 0, 0, 0, 0, time.UTC)
	jan := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	wantArgs = []any{from, "", "ab_cd", int64(3), 0.5, false, jan, 90.0, "x", int64(0), fxNow}
	if !reflect.DeepEqual(r.Args, wantArgs) {
		t.Errorf("args\n got %#v\nwant %#v", r.Args, wantArgs)
	}
	wantParams = map[string]any{"from": from, "bucket": "day", "p": "ab_cd", "i": int64(3), "f": 0.5,
		"b": false, "ts": jan, "d": "1m30s", "e": "x", "req": int64(0)}
	if !reflect.DeepEqual(r.Params, wantParams) {
		t.Errorf("params\n got %#v\nwant %#v", r.Params, wantParams)
	}
}

// Too many buckets for the window is refused with what to do instead.
func TestMaxBuckets(t *testing.T) {
	t.Parallel()
	_, err := Default().Render("tool_calls_over_time", json.RawMessage(`{"bucket": "hour", "days": 365}`), DuckDB, fxNow)
	want := "template tool_calls_over_time: invalid parameters: bucket: hour buckets over 365.0 days are about 8760 rows per series; the limit is 5000: choose a longer bucket or a shorter window"
	if err == nil || err.Error() != want {
		t.Fatalf("got %v\nwant %s", err, want)
	}
	if _, err := Default().Render("tool_calls_over_time", json.RawMessage(`{"bucket": "day", "days": 3660}`), DuckDB, fxNow); err != nil {
		t.Fatal(err)
	}
}

// Refusals are counted by reason, once per kind per call.
func TestRejectionMetrics(t *testing.T) {
	t.Parallel()
	lib := typedLibrary(t)
	reg := prometheus.NewRegistry()
	if err := lib.Register(reg); err != nil {
		t.Fatal(err)
	}
	if err := lib.Register(reg); err != nil {
		t.Fatalf("registering twice: %v", err)
	}
	for _, p := range []string{`{"x": 1, "y": 2}`, `{"req": 9}`, `[`, `{"req": 1}`, `{"req": 1, "days": 99}`} {
		_, _ = lib.Render("typed", json.RawMessage(p), DuckDB, fxNow)
	}
	_, _ = lib.Render("nope", nil, DuckDB, fxNow)
	for reason, want := range map[string]float64{
		ReasonUnknownParam: 1, ReasonMissing: 1, ReasonOutOfRange: 2, ReasonMalformed: 1,
		ReasonUnknownTemplate: 1, ReasonWindow: 0, ReasonTooLong: 0,
	} {
		if got := testutil.ToFloat64(lib.metrics.rejections.WithLabelValues(reason)); got != want {
			t.Errorf("rejections{reason=%s} = %v, want %v", reason, got, want)
		}
	}
	if got := testutil.ToFloat64(lib.metrics.renders); got != 1 {
		t.Errorf("renders = %v, want 1", got)
	}
}
