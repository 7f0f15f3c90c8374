package dataset

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/activitybi/activitybi/internal/warehouse/duckdb"
)

// payloads are SQL injection attempts and other hostile strings.
var payloads = []string{
	`'; DROP TABLE claude_stream; --`,
	`" OR 1=1 --`,
	`x') OR ('1'='1`,
	`alice' UNION SELECT * FROM claude_stream --`,
	`bob`,
	`customer`,
	`?`,
	`$1`,
	`:1`,
	`%s%d%v`,
	`\`,
	`\'`,
	`/* x */`,
	`-- x`,
	"a\nb; DROP TABLE x",
	"\u2019 OR \u20191\u2019=\u20191",
	`"; SELECT getvariable('activitybi_customer') --`,
	`json_extract_string(feature_json, 'x')`,
	"`x`",
	`{"a":1}`,
	`[1]`,
	`called_tool'; --`,
	`called_tool"`,
	`called_tool) OR (1=1`,
	`main.claude_stream`,
	`x" FROM claude_stream; --`,
	`a_b`,
	strings.Repeat(`'`, 300),
}

// setField sets one field of a spec held as JSON objects.
type field struct {
	name string
	set  func(spec map[string]any, v string)
}

func baseSpec() map[string]any {
	return map[string]any{
		"cohort": map[string]any{"activity": "submitted_prompt"},
		"append": []any{map[string]any{"activity": "called_tool", "relationship": "aggregate_all_ever"}},
	}
}

func cohortOf(s map[string]any) map[string]any { return s["cohort"].(map[string]any) }
func appendOf(s map[string]any) map[string]any { return s["append"].([]any)[0].(map[string]any) }

// stringFields are every string field of a spec.
var stringFields = []field{
	{"cohort.activity", func(s map[string]any, v string) { cohortOf(s)["activity"] = v }},
	{"cohort.occurrence", func(s map[string]any, v string) { cohortOf(s)["occurrence"] = v }},
	{"cohort.from", func(s map[string]any, v string) { cohortOf(s)["from"] = v }},
	{"cohort.to", func(s map[string]any, v string) { cohortOf(s)["to"] = v }},
	{"cohort.features[0]", func(s map[string]any, v string) { cohortOf(s)["features"] = []any{v} }},
	{"cohort.filters[0].feature", func(s map[string]any, v string) {
		cohortOf(s)["filters"] = []any{map[string]any{"feature": v, "op": "eq", "value": "x"}}
	}},
	{"cohort.filters[0].op", func(s map[string]any, v string) {
		cohortOf(s)["filters"] = []any{map[string]any{"feature": "model", "op": v, "value": "x"}}
	}},
	{"append[0].activity", func(s map[string]any, v string) { appendOf(s)["activity"] = v }},
	{"append[0].relationship", func(s map[string]any, v string) { appendOf(s)["relationship"] = v }},
	{"append[0].aggregate", func(s map[string]any, v string) { appendOf(s)["aggregate"] = v }},
	{"append[0].of", func(s map[string]any, v string) { appendOf(s)["of"] = v }},
	{"append[0].as", func(s map[string]any, v string) { appendOf(s)["as"] = v }},
	{"append[0].features[0]", func(s map[string]any, v string) {
		appendOf(s)["relationship"] = "first_after"
		appendOf(s)["features"] = []any{v}
	}},
	{"append[0].filters[0].feature", func(s map[string]any, v string) {
		appendOf(s)["filters"] = []any{map[string]any{"feature": v, "op": "eq", "value": "x"}}
	}},
}

// TestInjectionInNames puts every payload in every string field that is a
// name (activity, feature, operator, relationship, alias...): each is
// either refused with a message about that field, or it is a plain name
// (letters, digits, _) and the dataset runs as usual, the name bound or
// quoted.
func TestInjectionInNames(t *testing.T) {
	t.Parallel()
	db, _ := openFixture(t)
	ctx := context.Background()
	for _, f := range stringFields {
		for _, p := range payloads {
			s := baseSpec()
			f.set(s, p)
			raw, err := json.Marshal(s)
			if err != nil {
				t.Fatal(err)
			}
			spec, err := Decode(raw)
			if err != nil {
				var se *SpecError
				if !errors.As(err, &se) || len(se.Problems) != 1 || se.Problems[0].Path != f.name {
					t.Errorf("%s = %q: want one problem at %s, got %v", f.name, p, f.name, err)
				}
				if strings.ContainsAny(err.Error(), "\r\n") || len(p) > 40 && strings.Contains(err.Error(), p) {
					t.Errorf("%s = %q: the message echoes the payload raw or at length: %q", f.name, p, err)
				}
				continue
			}
			if !identRE.MatchString(p) {
				t.Errorf("%s = %q was accepted", f.name, p)
				continue
			}
			c, err := Compile(spec, DialectDuckDB)
			if err != nil {
				t.Fatalf("%s = %q: %v", f.name, p, err)
			}
			tb, err := db.CustomerQuery(ctx, "alice", c.SQL, c.Args, 0)
			if err != nil {
				t.Errorf("%s = %q: %v", f.name, p, err)
				continue
			}
			// A plain name means what it says: an activity nobody logged
			// has no rows, a feature no prompt has never equals "x".
			want := 3
			if f.name == "cohort.activity" || f.name == "cohort.filters[0].feature" {
				want = 0
			}
			if len(tb.Rows) != want || want > 0 && tb.Rows[0][2] != "alice" {
				t.Errorf("%s = %q: rows %v, want %d of alice's", f.name, p, tb.Rows, want)
			}
		}
	}
	assertStreamIntact(t, db)
}

// TestInjectionInValues puts every payload in filter values, for every
// operator, on the cohort and on an append: the statement text is the same
// as for a harmless value (the payload is only an argument), it runs, and
// it matches what the value means: no prompt's model is any payload.
func TestInjectionInValues(t *testing.T) {
	t.Parallel()
	db, _ := openFixture(t)
	ctx := context.Background()
	compile := func(op string, v any, onAppend bool) *Compiled {
		t.Helper()
		s := baseSpec()
		fs := []any{map[string]any{"feature": "model", "op": op, "value": v}}
		if onAppend {
			appendOf(s)["filters"] = fs
		} else {
			cohortOf(s)["filters"] = fs
		}
		raw, _ := json.Marshal(s)
		spec, err := Decode(raw)
		if err != nil {
			t.Fatalf("%s %q: %v", op, v, err)
		}
		c, err := Compile(spec, DialectDuckDB)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	for _, op := range []string{OpEq, OpNe, OpGt, OpGte, OpLt, OpLte, OpContains, OpIn} {
		for _, onAppend := range []bool{false, true} {
			harmless := any("x")
			if op == OpIn {
				harmless = []any{"x"}
			}
			ref := compile(op, harmless, onAppend)
			for _, p := range payloads {
				v := any(p)
				if op == OpIn {
					v = []any{p, "y"}
				}
				c := compile(op, v, onAppend)
				if op == OpIn {
					// One more placeholder for the second value.
					if strings.Replace(ref.SQL, "IN (?)", "IN (?, ?)", 1) != c.SQL {
						t.Errorf("%s %q: the statement changed with the value", op, p)
					}
				} else if c.SQL != ref.SQL {
					t.Errorf("%s %q: the statement changed with the value:\n%s", op, p, c.SQL)
				}
				if !slices.Contains(c.Args, any(p)) {
					t.Errorf("%s %q: the payload is not an argument: %v", op, p, c.Args)
				}
				tb, err := db.CustomerQuery(ctx, "alice", c.SQL, c.Args, 0)
				if err != nil {
					t.Fatalf("%s %q: %v", op, p, err)
				}
				want := 3 // appended filters never drop cohort rows
				if !onAppend {
					want = promptsMatching(op, p)
				}
				if len(tb.Rows) != want {
					t.Errorf("%s %q on the cohort=%v: %d rows, want %d", op, p, !onAppend, len(tb.Rows), want)
				}
			}
		}
	}
	assertStreamIntact(t, db)
}

// promptsMatching counts alice's prompts (models opus, sonnet, opus) that
// the filter keeps, comparing text as SQL does (byte order).
func promptsMatching(op, p string) int {
	n := 0
	for _, m := range []string{"opus", "sonnet", "opus"} {
		var keep bool
		switch op {
		case OpEq:
			keep = m == p
		case OpNe:
			keep = m != p
		case OpGt:
			keep = m > p
		case OpGte:
			keep = m >= p
		case OpLt:
			keep = m < p
		case OpLte:
			keep = m <= p
		case OpContains:
			keep = strings.Contains(m, p)
		case OpIn:
			keep = m == p || m == "y"
		}
		if keep {
			n++
		}
	}
	return n
}

// TestHostileValueMatches: a feature value full of SQL (quotes, a
// semicolon, DROP TABLE, a comment) is matched exactly as the value it is.
func TestHostileValueMatches(t *testing.T) {
	t.Parallel()
	db, _ := openFixture(t)
	for _, f := range []string{
		`{"feature":"cwd","op":"eq","value":"/home/o'brien/\"x\"; DROP TABLE claude_stream; --"}`,
		`{"feature":"cwd","op":"contains","value":"o'brien/\"x\"; DROP"}`,
		`{"feature":"cwd","op":"in","value":["nope","/home/o'brien/\"x\"; DROP TABLE claude_stream; --"]}`,
	} {
		tb := dataset(t, db, `{"cohort":{"activity":"started_session","features":["cwd"],"filters":[`+f+`]}}`)
		sameRows(t, tb.Rows, rows(r([]any{"a01", at(0), "alice"}, `/home/o'brien/"x"; DROP TABLE claude_stream; --`)))
	}
	tb := dataset(t, db, `{"cohort":{"activity":"started_session","filters":[{"feature":"cwd","op":"eq","value":"/home/o'brien/"}]}}`)
	sameRows(t, tb.Rows, nil)
	assertStreamIntact(t, db)
}

// TestInjectionInKeys: hostile JSON keys are unknown fields, shown quoted.
func TestInjectionInKeys(t *testing.T) {
	t.Parallel()
	for _, p := range payloads {
		raw, _ := json.Marshal(map[string]any{"cohort": map[string]any{"activity": "submitted_prompt", p: 1}})
		_, err := Decode(raw)
		var se *SpecError
		if !errors.As(err, &se) || len(se.Problems) != 1 || !strings.HasSuffix(se.Problems[0].Msg, "unknown field (known: activity, occurrence, nth, from, to, filters, features)") {
			t.Errorf("key %q: %v", p, err)
		}
		if strings.ContainsAny(err.Error(), "\r\n") {
			t.Errorf("key %q: raw newline in %q", p, err)
		}
	}
}

// assertStreamIntact checks that the fixture is all still there: 20 rows,
// 15 of them alice's.
func assertStreamIntact(t *testing.T, db *duckdb.DB) {
	t.Helper()
	tb, err := db.Query(context.Background(), `SELECT count(*), count(*) FILTER (WHERE customer = 'alice') FROM claude_stream`, 0)
	if err != nil {
		t.Fatal(err)
	}
	if tb.Rows[0][0] != int64(len(fixtureFirst)+len(fixtureLate)) || tb.Rows[0][1] != int64(15) {
		t.Errorf("claude_stream changed: %v", tb.Rows)
	}
}
