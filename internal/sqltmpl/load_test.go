package sqltmpl

import (
	"encoding/json"
	"strings"
	"testing"
	"testing/fstest"
)

func TestEmbeddedLibrary(t *testing.T) {
	t.Parallel()
	l, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	if n := len(l.List()); n < 15 {
		t.Errorf("%d templates; the library promises at least 15", n)
	}
	for i, tp := range l.List() {
		if i > 0 && l.List()[i-1].Name >= tp.Name {
			t.Errorf("List is not sorted by name at %s", tp.Name)
		}
		for _, d := range Dialects {
			if src, ok := tp.SQL(d); !ok || src == "" {
				t.Errorf("%s has no %s SQL", tp.Name, d)
			}
		}
		if got, err := l.Get(tp.Name); err != nil || got != tp {
			t.Errorf("Get(%s) = %v, %v", tp.Name, got, err)
		}
		// The description Claude reads mentions no customer: templates
		// never name one.
		if strings.Contains(strings.ToLower(tp.Description+tp.Reads), "customer") {
			t.Errorf("%s: description talks about customers", tp.Name)
		}
	}
	if Default() != Default() {
		t.Error("Default is not one library")
	}
}

// A template's metadata, as JSON, is what list_templates and
// `activitybi templates --json` show.
func TestTemplateJSON(t *testing.T) {
	t.Parallel()
	tp, err := Default().Get("tool_calls_over_time")
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(tp)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Name, Description, Reads string
		TimeoutSeconds           float64 `json:"timeout_seconds"`
		Params                   []map[string]any
		Columns                  []Column
		Card                     CardDefault
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got.Name != "tool_calls_over_time" || got.TimeoutSeconds != 30 || len(got.Columns) != 4 || got.Card.Kind != CardStackedBar ||
		got.Card.Series != "series" || !strings.Contains(got.Description, "Tool calls") || got.Reads == "" {
		t.Errorf("%s", b)
	}
	var names []string
	for _, p := range got.Params {
		names = append(names, p["name"].(string))
	}
	if strings.Join(names, " ") != "days from to bucket by tool server limit" {
		t.Errorf("params %v", names)
	}
	by := got.Params[4]
	if by["type"] != "enum" || by["default"] != "tool" || len(by["values"].([]any)) != 3 {
		t.Errorf("by: %v", by)
	}
	if strings.Contains(string(b), "coalesce") {
		t.Errorf("the JSON shows SQL fragments: %s", b)
	}
	if s := tp.Signature(); s != "days=7 from? to? bucket=day by=tool tool? server? limit=5000" {
		t.Errorf("Signature() = %q", s)
	}
}

// validTemplate is a small template that loads; the cases below break it
// one way each.
const validTemplate = `/*
name: t
description: A template for the loader's tests, long enough to pass the description rule.
reads: called_tool events
window: {days: 7}
params:
  - {name: tool, type: string, optional: true, description: a tool}
  - name: by
    type: enum
    default: tool
    values: [tool, all]
    description: grouping
    fragments:
      all: {tool: "feature_json->>'tool'", all: "'all'"}
columns:
  - {name: g, type: VARCHAR, description: the group}
  - {name: n, type: BIGINT, description: the count}
card: {kind: bar, x: g, y: [n]}
*/

-- dialect: duckdb
SELECT /* SLOT: by */'all'/* END */ AS g, count(*) AS n
FROM claude_stream
WHERE ts >= $window_start AND ts < $window_end AND ($tool = '' OR (feature_json->>'tool') = $tool)
GROUP BY g;

-- dialect: snowflake
SELECT /* SLOT: by */'all'/* END */ AS "g", COUNT(*) AS "n"
FROM claude_stream
WHERE ts >= $window_start AND ts < $window_end AND ($tool = '' OR feature_json:tool::string = $tool)
GROUP BY 1
`

// Load fails loudly, naming the file and the problem, on every mismatch
// between metadata and SQL.
func TestLoadRefusesMismatches(t *testing.T) {
	t.Parallel()
	if _, err := LoadFS(fstest.MapFS{"t.sql": {Data: []byte(validTemplate)}}); err != nil {
		t.Fatalf("the valid template: %v", err)
	}
	cases := []struct {
		name, old, new, want string
	}{
		{"undeclared value", "$tool = '' OR (feature_json", "$tol = '' OR (feature_json", "duckdb: $tol is not a parameter (parameters: days, from, to, tool, by)"},
		{"unused parameter", "($tool = '' OR (feature_json->>'tool') = $tool)", "true", "duckdb: parameter tool is declared but not used"},
		{"undeclared slot", "SELECT /* SLOT: by */'all'/* END */ AS g", "SELECT /* SLOT: grp */'all'/* END */ AS g", "duckdb: slot grp is not a parameter"},
		{"slot of a string", "AS g, count(*) AS n", "AS g, /* SLOT: tool */1/* END */ AS n", "slot tool: parameter tool has no fragments"},
		{"value without fragment", `all: {tool: "feature_json->>'tool'", all: "'all'"}`, `duckdb: {tool: "feature_json->>'tool'", all: "'all'"}
      snowflake: {all: "'all'"}`, `snowflake: slot by: no fragment for value "tool"`},
		{"enum bound as a value", "AS g, count(*) AS n", "AS g, $by AS n", "$by: enum by maps to SQL fragments, so it is a slot"},
		{"positional parameter", "$tool = '' OR (feature_json", "? = '' OR (feature_json", "duckdb: line 3: ? in a template: name the value ($name)"},
		{"second statement", "GROUP BY g;", "GROUP BY g; SELECT 1", "duckdb: line 4: ; before the end: a section is exactly one statement"},
		{"stray dollar", "count(*) AS n", "count($1) AS n", `duckdb: line 1: $ must start a value name such as $days (got "$1) AS n")`},
		{"unclosed slot", "'all'/* END */ AS g, count", "'all' AS g, count", "duckdb: line 3: value $window_start inside slot by"},
		{"slot never closed", "GROUP BY g;", "GROUP BY g /* SLOT: by */", "duckdb: line 4: slot by is never closed with /* END */"},
		{"slot inside a slot", "'all'/* END */ AS g", "'all' /* SLOT: by */ AS g", "duckdb: line 1: slot by opened inside slot by (line 1)"},
		{"end without slot", "AS g, count(*) AS n", "AS g, count(*) /* END */ AS n", "duckdb: line 1: /* END */ without an open slot"},
		{"value in a slot", "SELECT /* SLOT: by */'all'/* END */ AS g", "SELECT /* SLOT: by */$tool/* END */ AS g", "value $tool inside slot by"},
		{"unterminated string", "AS g, count(*) AS n", "AS g, 'oops AS n", "duckdb: line 3: unterminated '"},
		{"default out of range", "  - {name: tool, type: string, optional: true, description: a tool}", "  - {name: tool, type: string, optional: true, description: a tool}\n  - {name: lim, type: int, default: 0, min: 1, max: 9, description: x}", "param lim: default 0: 0 is out of range: it must be between 1 and 9"},
		{"int without range", "  - {name: tool, type: string, optional: true, description: a tool}", "  - {name: tool, type: string, optional: true, description: a tool}\n  - {name: lim, type: int, default: 3, description: x}", "param lim: a number needs min and max"},
		{"optional int", "  - {name: tool, type: string, optional: true, description: a tool}", "  - {name: tool, type: string, optional: true, description: a tool}\n  - {name: lim, type: int, optional: true, min: 1, max: 2, description: x}", "param lim: an optional int needs a default"},
		{"enum default not a value", "default: tool\n", "default: tools\n", `param by: default "tools": "tools" is not one of tool, all`},
		{"fragment with a comment", `all: "'all'"}`, `all: "'all' -- x"}`, "param by: fragments.all.all contains a comment"},
		{"fragment with a value", `all: "'all'"}`, `all: "?"}`, "param by: fragments.all.all contains ?"},
		{"name not the file's", "name: t\n", "name: u\n", `name "u" must be the file's name "t"`},
		{"missing dialect", "-- dialect: snowflake", "-- dialect: postgres", "-- dialect: postgres is not one of duckdb, snowflake"},
		{"unknown card column", "card: {kind: bar, x: g, y: [n]}", "card: {kind: bar, x: g, y: [count]}", `card names column "count", which is not a column`},
		{"unknown column type", "{name: n, type: BIGINT,", "{name: n, type: INTEGER,", `column n: type "INTEGER" is not one of`},
		{"window not read", "ts >= $window_start AND ts < $window_end AND ($tool", "($tool", "duckdb: a windowed template reads ts >= $window_start AND ts < $window_end"},
		{"short description", "description: A template for the loader's tests, long enough to pass the description rule.", "description: Tools.", "description is 6 characters"},
		{"unknown metadata key", "reads: called_tool events", "reads: called_tool events\ncolour: red", "field colour not found"},
		{"reserved name", "  - {name: tool, type: string, optional: true, description: a tool}", "  - {name: tool, type: string, optional: true, description: a tool}\n  - {name: window_start, type: string, optional: true, description: x}", "param window_start: the name is reserved"},
		{"timeout too long", "reads: called_tool events", "reads: called_tool events\ntimeout: 1h", "timeout 1h0m0s must be positive and at most 5m0s"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if !strings.Contains(validTemplate, c.old) {
				t.Fatalf("the valid template has no %q", c.old)
			}
			src := strings.Replace(validTemplate, c.old, c.new, 1)
			_, err := LoadFS(fstest.MapFS{"t.sql": {Data: []byte(src)}})
			if err == nil {
				t.Fatalf("loaded; want an error containing %q", c.want)
			}
			if !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "t.sql") {
				t.Errorf("error\n %v\nlacks %q (or the file name)", err, c.want)
			}
		})
	}
}

func TestCompileSQL(t *testing.T) {
	t.Parallel()
	c, err := compileSQL("SELECT '$not', \"$x\" -- $nor ?\n, $a, /* $nor ? */ $b, $a /* SLOT: s */'d'/* END */;\n")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(c.binds, ",") != "a,b" || !c.slots["s"] {
		t.Errorf("binds %v slots %v", c.binds, c.slots)
	}
	var b strings.Builder
	for _, p := range c.pieces {
		switch p.kind {
		case pieceText:
			b.WriteString(p.text)
		case pieceBind:
			b.WriteString("<" + p.name + ">")
		case pieceSlot:
			b.WriteString("[" + p.name + "]")
		}
	}
	if want := "SELECT '$not', \"$x\" -- $nor ?\n, <a>, /* $nor ? */ <b>, <a> [s]"; b.String() != want {
		t.Errorf("pieces\n got %q\nwant %q", b.String(), want)
	}
}
