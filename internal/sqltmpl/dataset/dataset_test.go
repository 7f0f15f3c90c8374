package dataset

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	_ "github.com/duckdb/duckdb-go/v2"

	"github.com/activitybi/activitybi/internal/warehouse"
	"github.com/activitybi/activitybi/internal/warehouse/duckdb"
)

// Cohort rows of the fixture, as the dataset's first three columns.
var (
	p02 = []any{"a02", at(1), "alice"}
	p06 = []any{"a06", at(10), "alice"}
	p08 = []any{"a08", at(20), "alice"}
	r05 = []any{"a05", at(4), "alice"}
	r07 = []any{"a07", at(11), "alice"}
	r12 = []any{"a12", at(25), "alice"}
)

// r is a cohort row followed by appended values.
func r(cohort []any, vals ...any) []any { return append(append([]any(nil), cohort...), vals...) }

// none is an appended first/last row that is not there: ts, tool, ms.
var none = []any{nil, nil, nil}

// dataset decodes and compiles spec and runs it for alice through the
// customer read path.
func dataset(t *testing.T, db *duckdb.DB, spec string) *warehouse.Table {
	t.Helper()
	s, err := Decode([]byte(spec))
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	c, err := Compile(s, DialectDuckDB)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	tb, err := db.CustomerQuery(context.Background(), "alice", c.SQL, c.Args, 0)
	if err != nil {
		t.Fatalf("CustomerQuery: %v\n%s", err, c.SQL)
	}
	if len(tb.Columns) != len(c.Columns) {
		t.Fatalf("result has %d columns, Compiled.Columns %d", len(tb.Columns), len(c.Columns))
	}
	for i, col := range tb.Columns {
		if col.Name != c.Columns[i] {
			t.Errorf("column %d is %q, Compiled.Columns says %q", i, col.Name, c.Columns[i])
		}
	}
	return tb
}

// sameRows compares result rows with expected ones: float64 within 1e-9,
// everything else exactly.
func sameRows(t *testing.T, got, want [][]any) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d rows, want %d:\n got %s\nwant %s", len(got), len(want), fmtRows(got), fmtRows(want))
	}
	for i := range got {
		if len(got[i]) != len(want[i]) {
			t.Fatalf("row %d has %d values, want %d:\n got %v\nwant %v", i, len(got[i]), len(want[i]), got[i], want[i])
		}
		for j := range got[i] {
			if !sameValue(got[i][j], want[i][j]) {
				t.Errorf("row %d column %d = %v (%T), want %v (%T)\n got %v\nwant %v", i, j, got[i][j], got[i][j], want[i][j], want[i][j], got[i], want[i])
			}
		}
	}
}

func sameValue(g, w any) bool {
	switch w := w.(type) {
	case float64:
		gf, ok := g.(float64)
		return ok && math.Abs(gf-w) < 1e-9
	case int:
		return g == int64(w)
	case time.Time:
		gt, ok := g.(time.Time)
		return ok && gt.Equal(w)
	}
	return g == w
}

func fmtRows(rows [][]any) string {
	var b strings.Builder
	for _, r := range rows {
		b.WriteString("\n  [")
		for i, v := range r {
			if i > 0 {
				b.WriteString(" ")
			}
			if tv, ok := v.(time.Time); ok {
				fmt.Fprintf(&b, "+%dm", int(tv.Sub(t0).Minutes()))
				continue
			}
			fmt.Fprintf(&b, "%v", v)
		}
		b.WriteString("]")
	}
	return b.String()
}

func rows(rs ...[]any) [][]any { return rs }

// relCase is one dataset and its rows, worked out by hand from the fixture
// table in fixture_test.go.
type relCase struct {
	name string
	spec string
	want [][]any
}

const promptCohort = `"cohort":{"activity":"submitted_prompt"}`

func tools(rel string, extra string) string {
	return `{` + promptCohort + `,"append":[{"activity":"called_tool","relationship":"` + rel + `","features":["tool","ms"]` + extra + `}]}`
}

func agg(rel, extra string) string {
	return `{` + promptCohort + `,"append":[{"activity":"called_tool","relationship":"` + rel + `"` + extra + `}]}`
}

// TestRelationships runs every relationship, with and without filters, on
// the fixture. Cohort: alice's prompts a02 (+1), a06 (+10), a08 (+20).
// Appended: called_tool, whose rows for alice are, in order,
// a03 +2 Bash 300, a04 +3 Read 40, a15 +10 Grep 15, a14 +12 Read 60 (late),
// a09 +21 Bash 1200, a10 +22 Edit 90, a11 +23 Bash 500.
func TestRelationships(t *testing.T) {
	t.Parallel()
	db, _ := openFixture(t)
	cases := []relCase{
		{"first_ever", tools(FirstEver, ""), rows(
			r(p02, at(2), "Bash", "300"), r(p06, at(2), "Bash", "300"), r(p08, at(2), "Bash", "300"))},
		{"last_ever", tools(LastEver, ""), rows(
			r(p02, at(23), "Bash", "500"), r(p06, at(23), "Bash", "500"), r(p08, at(23), "Bash", "500"))},
		// The first call (+2) is after a02 (+1).
		{"first_before", tools(FirstBefore, ""), rows(
			r(p02, none...), r(p06, at(2), "Bash", "300"), r(p08, at(2), "Bash", "300"))},
		// a15 at +10 is not before a06 at +10; the late a14 is a08's.
		{"last_before", tools(LastBefore, ""), rows(
			r(p02, none...), r(p06, at(3), "Read", "40"), r(p08, at(12), "Read", "60"))},
		// a15 at +10 is not after a06 at +10 either.
		{"first_after", tools(FirstAfter, ""), rows(
			r(p02, at(2), "Bash", "300"), r(p06, at(12), "Read", "60"), r(p08, at(21), "Bash", "1200"))},
		{"last_after", tools(LastAfter, ""), rows(
			r(p02, at(23), "Bash", "500"), r(p06, at(23), "Bash", "500"), r(p08, at(23), "Bash", "500"))},
		// Windows (1,10], (10,20], (20,...).
		{"first_in_between", tools(FirstInBetween, ""), rows(
			r(p02, at(2), "Bash", "300"), r(p06, at(12), "Read", "60"), r(p08, at(21), "Bash", "1200"))},
		// a15 at +10 closes a02's window (the end is inclusive).
		{"last_in_between", tools(LastInBetween, ""), rows(
			r(p02, at(10), "Grep", "15"), r(p06, at(12), "Read", "60"), r(p08, at(23), "Bash", "500"))},
		{"aggregate_before", agg(AggregateBefore, ""), rows(r(p02, 0), r(p06, 2), r(p08, 4))},
		{"aggregate_after", agg(AggregateAfter, ""), rows(r(p02, 7), r(p06, 4), r(p08, 3))},
		{"aggregate_in_between", agg(AggregateInBetween, ""), rows(r(p02, 3), r(p06, 1), r(p08, 3))},
		{"aggregate_all_ever", agg(AggregateAllEver, ""), rows(r(p02, 7), r(p06, 7), r(p08, 7))},

		// Aggregates of a feature and of revenue_impact.
		{"aggregate_in_between sum ms", agg(AggregateInBetween, `,"aggregate":"sum","of":"ms"`), rows(
			r(p02, 355.0), r(p06, 60.0), r(p08, 1790.0))},
		{"aggregate_before avg ms", agg(AggregateBefore, `,"aggregate":"avg","of":"ms"`), rows(
			r(p02, nil), r(p06, 170.0), r(p08, 103.75))},
		{"aggregate_after min ms", agg(AggregateAfter, `,"aggregate":"min","of":"ms"`), rows(
			r(p02, 15.0), r(p06, 60.0), r(p08, 90.0))},
		{"aggregate_all_ever max ms", agg(AggregateAllEver, `,"aggregate":"max","of":"ms"`), rows(
			r(p02, 1200.0), r(p06, 1200.0), r(p08, 1200.0))},
		{"aggregate_all_ever count of a feature nobody has", agg(AggregateAllEver, `,"of":"nope"`), rows(
			r(p02, 0), r(p06, 0), r(p08, 0))},
		{"aggregate_in_between sum revenue_impact",
			`{` + promptCohort + `,"append":[{"activity":"completed_response","relationship":"aggregate_in_between","aggregate":"sum","of":"revenue_impact","as":"cost"}]}`,
			rows(r(p02, -0.5), r(p06, -0.1), r(p08, -1.2))},
		{"aggregate_all_ever sum revenue_impact",
			`{` + promptCohort + `,"append":[{"activity":"completed_response","relationship":"aggregate_all_ever","aggregate":"sum","of":"revenue_impact","as":"cost"}]}`,
			rows(r(p02, -1.8), r(p06, -1.8), r(p08, -1.8))},

		// Appended filters: the appended activity is "called_tool that
		// passes them".
		{"first_after tool=Bash", tools(FirstAfter, `,"filters":[{"feature":"tool","op":"eq","value":"Bash"}]`), rows(
			r(p02, at(2), "Bash", "300"), r(p06, at(21), "Bash", "1200"), r(p08, at(21), "Bash", "1200"))},
		{"last_before tool in Read,Grep", tools(LastBefore, `,"filters":[{"feature":"tool","op":"in","value":["Read","Grep"]}]`), rows(
			r(p02, none...), r(p06, at(3), "Read", "40"), r(p08, at(12), "Read", "60"))},
		{"first_ever ms>100", tools(FirstEver, `,"filters":[{"feature":"ms","op":"gt","value":100}]`), rows(
			r(p02, at(2), "Bash", "300"), r(p06, at(2), "Bash", "300"), r(p08, at(2), "Bash", "300"))},
		{"first_ever ms<50", tools(FirstEver, `,"filters":[{"feature":"ms","op":"lt","value":50}]`), rows(
			r(p02, at(3), "Read", "40"), r(p06, at(3), "Read", "40"), r(p08, at(3), "Read", "40"))},
		{"last_ever tool!=Bash", tools(LastEver, `,"filters":[{"feature":"tool","op":"ne","value":"Bash"}]`), rows(
			r(p02, at(22), "Edit", "90"), r(p06, at(22), "Edit", "90"), r(p08, at(22), "Edit", "90"))},
		{"first_before tool contains ea", tools(FirstBefore, `,"filters":[{"feature":"tool","op":"contains","value":"ea"}]`), rows(
			r(p02, none...), r(p06, at(3), "Read", "40"), r(p08, at(3), "Read", "40"))},
		// The last Read is a14 at +12: after a02 and a06, not a08.
		{"last_after tool=Read", tools(LastAfter, `,"filters":[{"feature":"tool","op":"eq","value":"Read"}]`), rows(
			r(p02, at(12), "Read", "60"), r(p06, at(12), "Read", "60"), r(p08, none...))},
		{"first_in_between tool=Bash", tools(FirstInBetween, `,"filters":[{"feature":"tool","op":"eq","value":"Bash"}]`), rows(
			r(p02, at(2), "Bash", "300"), r(p06, none...), r(p08, at(21), "Bash", "1200"))},
		{"last_in_between ms>=60", tools(LastInBetween, `,"filters":[{"feature":"ms","op":"gte","value":60}]`), rows(
			r(p02, at(2), "Bash", "300"), r(p06, at(12), "Read", "60"), r(p08, at(23), "Bash", "500"))},
		{"aggregate_in_between tool=Bash", agg(AggregateInBetween, `,"filters":[{"feature":"tool","op":"eq","value":"Bash"}]`), rows(
			r(p02, 1), r(p06, 0), r(p08, 2))},
		{"aggregate_before ms<=60", agg(AggregateBefore, `,"filters":[{"feature":"ms","op":"lte","value":60}]`), rows(
			r(p02, 0), r(p06, 1), r(p08, 3))},
		{"aggregate_after tool in Bash,Edit", agg(AggregateAfter, `,"filters":[{"feature":"tool","op":"in","value":["Bash","Edit"]}]`), rows(
			r(p02, 4), r(p06, 3), r(p08, 3))},
		{"aggregate_all_ever tool=Read sum ms", agg(AggregateAllEver, `,"aggregate":"sum","of":"ms","filters":[{"feature":"tool","op":"eq","value":"Read"}]`), rows(
			r(p02, 100.0), r(p06, 100.0), r(p08, 100.0))},

		// The cohort activity appended to itself.
		{"previous prompt",
			`{` + promptCohort + `,"append":[{"activity":"submitted_prompt","relationship":"last_before","features":["model"],"as":"prev"}]}`,
			rows(r(p02, nil, nil), r(p06, at(1), "opus"), r(p08, at(10), "sonnet"))},
		{"next prompt",
			`{` + promptCohort + `,"append":[{"activity":"submitted_prompt","relationship":"first_after","features":["model"],"as":"next"}]}`,
			rows(r(p02, at(10), "sonnet"), r(p06, at(20), "opus"), r(p08, nil, nil))},
		// (ts, next ts] holds the next occurrence itself.
		{"next prompt in between",
			`{` + promptCohort + `,"append":[{"activity":"submitted_prompt","relationship":"first_in_between","as":"next"}]}`,
			rows(r(p02, at(10)), r(p06, at(20)), r(p08, nil))},

		// Another cohort: alice's responses a05 (+4), a07 (+11), a12 (+25).
		{"responses last_after tool",
			`{"cohort":{"activity":"completed_response"},"append":[{"activity":"called_tool","relationship":"last_after","as":"t"}]}`,
			rows(r(r05, at(23)), r(r07, at(23)), r(r12, nil))},
		// No appended rows in a window: the count is 0, not NULL.
		{"responses aggregate_in_between ended_session",
			`{"cohort":{"activity":"completed_response"},"append":[{"activity":"ended_session","relationship":"aggregate_in_between","as":"ends"}]}`,
			rows(r(r05, 0), r(r07, 0), r(r12, 1))},
		{"responses cohort features",
			`{"cohort":{"activity":"completed_response","features":["tokens","revenue_impact","link","absent"]}}`,
			rows(r(r05, "500", -0.5, nil, nil), r(r07, "80", -0.1, nil, nil), r(r12, "900", -1.2, nil, nil))},
		// A JSON boolean compares as the text true/false; ne keeps rows
		// without the feature.
		{"responses cached=true", `{"cohort":{"activity":"completed_response","filters":[{"feature":"cached","op":"eq","value":true}]}}`,
			rows(r12)},
		{"responses cached=false", `{"cohort":{"activity":"completed_response","filters":[{"feature":"cached","op":"eq","value":false}]}}`,
			rows(r05)},
		{"responses cached!=true", `{"cohort":{"activity":"completed_response","filters":[{"feature":"cached","op":"ne","value":true}]}}`,
			rows(r05, r07)},
		{"responses revenue_impact<-0.3", `{"cohort":{"activity":"completed_response","filters":[{"feature":"revenue_impact","op":"lt","value":-0.3}]}}`,
			rows(r05, r12)},
		{"activity nobody logged",
			`{"cohort":{"activity":"submitted_prompt"},"append":[{"activity":"never_happened","relationship":"first_after","features":["x"]},{"activity":"never_happened","relationship":"aggregate_all_ever","as":"n"}]}`,
			rows(r(p02, nil, nil, 0), r(p06, nil, nil, 0), r(p08, nil, nil, 0))},
	}
	// A relationship depends on the cohort row (and the next row of the
	// cohort activity), not on which rows the cohort keeps: with another
	// occurrence mode or a window, each prompt keeps the row worked out
	// above for it.
	modes := []struct {
		name, cohort string
		keep         []int // indexes into the prompt rows a02, a06, a08
	}{
		{"first", `"cohort":{"activity":"submitted_prompt","occurrence":"first"}`, []int{0}},
		{"last", `"cohort":{"activity":"submitted_prompt","occurrence":"last"}`, []int{2}},
		{"nth 2", `"cohort":{"activity":"submitted_prompt","occurrence":"nth","nth":2}`, []int{1}},
		{"from +5", `"cohort":{"activity":"submitted_prompt","from":"2026-03-01T10:05:00Z"}`, []int{1, 2}},
		{"to +20", `"cohort":{"activity":"submitted_prompt","to":"2026-03-01T10:20:00Z"}`, []int{0, 1}},
	}
	seen := map[string]bool{}
	for _, c := range cases {
		seen[strings.Fields(c.name)[0]] = true
		t.Run(c.name, func(t *testing.T) {
			sameRows(t, dataset(t, db, c.spec).Rows, c.want)
			if !strings.HasPrefix(c.spec, "{"+promptCohort) {
				return
			}
			for _, m := range modes {
				var want [][]any
				for _, i := range m.keep {
					want = append(want, c.want[i])
				}
				t.Run(m.name, func(t *testing.T) {
					sameRows(t, dataset(t, db, strings.Replace(c.spec, promptCohort, m.cohort, 1)).Rows, want)
				})
			}
		})
	}
	for _, rel := range Relationships() {
		if !seen[rel] {
			t.Errorf("relationship %s has no case", rel)
		}
	}
}

// TestCohortOccurrence checks every occurrence mode, the time window and
// cohort filters, with an in-between count (alice's calls per prompt
// window) that shows which windows the cohort uses.
func TestCohortOccurrence(t *testing.T) {
	t.Parallel()
	db, _ := openFixture(t)
	count := `,"append":[{"activity":"called_tool","relationship":"aggregate_in_between","as":"calls"}]}`
	spec := func(cohort string) string {
		return `{"cohort":{"activity":"submitted_prompt"` + cohort + `}` + count
	}
	cases := []relCase{
		{"all", spec(``), rows(r(p02, 3), r(p06, 1), r(p08, 3))},
		{"all explicit", spec(`,"occurrence":"all"`), rows(r(p02, 3), r(p06, 1), r(p08, 3))},
		{"first", spec(`,"occurrence":"first"`), rows(r(p02, 3))},
		{"last", spec(`,"occurrence":"last"`), rows(r(p08, 3))},
		{"nth 2", spec(`,"occurrence":"nth","nth":2`), rows(r(p06, 1))},
		{"nth 4", spec(`,"occurrence":"nth","nth":4`), rows()},
		// from inclusive, to exclusive.
		{"window", spec(`,"from":"2026-03-01T10:05:00Z","to":"2026-03-01T10:21:00Z"`), rows(r(p06, 1), r(p08, 3))},
		{"window to is exclusive", spec(`,"to":"2026-03-01T10:20:00Z"`), rows(r(p02, 3), r(p06, 1))},
		{"window from is inclusive", spec(`,"from":"2026-03-01T11:20:00+01:00"`), rows(r(p08, 3))},
		// The first prompt is before the window: nobody's first is in it.
		{"first in window", spec(`,"occurrence":"first","from":"2026-03-01T10:05:00Z"`), rows()},
		{"last before window end", spec(`,"occurrence":"last","to":"2026-03-01T10:20:00Z"`), rows()},
		// Filtered cohorts: occurrences and windows among opus prompts
		// a02 (1, 20] and a08 (20, ...).
		{"model=opus", spec(`,"filters":[{"feature":"model","op":"eq","value":"opus"}]`), rows(r(p02, 4), r(p08, 3))},
		{"model=opus first", spec(`,"occurrence":"first","filters":[{"feature":"model","op":"eq","value":"opus"}]`), rows(r(p02, 4))},
		{"model=opus last", spec(`,"occurrence":"last","filters":[{"feature":"model","op":"eq","value":"opus"}]`), rows(r(p08, 3))},
		{"model=opus nth 2", spec(`,"occurrence":"nth","nth":2,"filters":[{"feature":"model","op":"eq","value":"opus"}]`), rows(r(p08, 3))},
		{"model=opus nth 3", spec(`,"occurrence":"nth","nth":3,"filters":[{"feature":"model","op":"eq","value":"opus"}]`), rows()},
		{"model=opus window", spec(`,"from":"2026-03-01T10:02:00Z","filters":[{"feature":"model","op":"eq","value":"opus"}]`), rows(r(p08, 3))},
		// Only a06 passes: its window is (10, ...), all four later calls.
		{"model!=opus", spec(`,"filters":[{"feature":"model","op":"ne","value":"opus"}]`), rows(r(p06, 4))},
		{"chars>=120", spec(`,"filters":[{"feature":"chars","op":"gte","value":120}]`), rows(r(p02, 4), r(p08, 3))},
		{"chars<100", spec(`,"filters":[{"feature":"chars","op":"lt","value":100}]`), rows(r(p06, 4))},
		{"chars in 30,400", spec(`,"filters":[{"feature":"chars","op":"in","value":[30,400]}]`), rows(r(p06, 1), r(p08, 3))},
		{"model >= p (text)", spec(`,"filters":[{"feature":"model","op":"gte","value":"p"}]`), rows(r(p06, 4))},
		{"two filters", spec(`,"filters":[{"feature":"model","op":"eq","value":"opus"},{"feature":"chars","op":"gt","value":200}]`), rows(r(p08, 3))},
		{"limit", `{"cohort":{"activity":"submitted_prompt"},"limit":2` + count, rows(r(p02, 3), r(p06, 1))},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sameRows(t, dataset(t, db, c.spec).Rows, c.want)
		})
	}
}

// allAppends are every relationship, split in two specs (MaxAppends).
var allAppends = [2]string{
	`{"activity":"called_tool","relationship":"first_ever","features":["tool"]},
	 {"activity":"called_tool","relationship":"last_ever","filters":[{"feature":"tool","op":"eq","value":"Bash"}]},
	 {"activity":"called_tool","relationship":"first_before"},
	 {"activity":"called_tool","relationship":"last_before","features":["ms"]},
	 {"activity":"submitted_prompt","relationship":"first_after"},
	 {"activity":"completed_response","relationship":"last_after"}`,
	`{"activity":"called_tool","relationship":"first_in_between"},
	 {"activity":"called_tool","relationship":"last_in_between"},
	 {"activity":"called_tool","relationship":"aggregate_before"},
	 {"activity":"completed_response","relationship":"aggregate_after","aggregate":"sum","of":"revenue_impact"},
	 {"activity":"called_tool","relationship":"aggregate_in_between","aggregate":"avg","of":"ms"},
	 {"activity":"submitted_prompt","relationship":"aggregate_all_ever"}`,
}

// TestAppendsKeepCohortRows: for every occurrence mode and cohort, the
// cohort rows (the first three columns, in order) are the same with and
// without every relationship appended.
func TestAppendsKeepCohortRows(t *testing.T) {
	t.Parallel()
	db, _ := openFixture(t)
	for _, cohort := range []string{
		`{"activity":"submitted_prompt"}`,
		`{"activity":"called_tool"}`,
		`{"activity":"called_tool","filters":[{"feature":"tool","op":"ne","value":"Read"}]}`,
		`{"activity":"submitted_prompt","occurrence":"first"}`,
		`{"activity":"called_tool","occurrence":"last"}`,
		`{"activity":"called_tool","occurrence":"nth","nth":3}`,
		`{"activity":"called_tool","occurrence":"nth","nth":2,"filters":[{"feature":"tool","op":"eq","value":"Bash"}]}`,
		`{"activity":"completed_response","from":"2026-03-01T10:05:00Z"}`,
	} {
		base := dataset(t, db, `{"cohort":`+cohort+`}`)
		if len(base.Rows) == 0 {
			t.Fatalf("%s: no cohort rows; the check would prove nothing", cohort)
		}
		for _, apps := range allAppends {
			got := dataset(t, db, `{"cohort":`+cohort+`,"append":[`+apps+`]}`)
			var cut [][]any
			for _, row := range got.Rows {
				cut = append(cut, row[:3])
			}
			sameRows(t, cut, base.Rows)
		}
	}
}

// TestOtherCustomersNeverAppear runs every relationship for alice and for
// bob: each sees only their own rows, and bob's values are his own.
func TestOtherCustomersNeverAppear(t *testing.T) {
	t.Parallel()
	db, _ := openFixture(t)
	ctx := context.Background()
	for _, apps := range allAppends {
		s, err := Decode([]byte(`{"cohort":{"activity":"called_tool"},"append":[` + apps + `]}`))
		if err != nil {
			t.Fatal(err)
		}
		c, err := Compile(s, DialectDuckDB)
		if err != nil {
			t.Fatal(err)
		}
		counts := map[string]int{"alice": 7, "bob": 2, "carol": 1, "dave": 0}
		for cust, n := range counts {
			tb, err := db.CustomerQuery(ctx, cust, c.SQL, c.Args, 0)
			if err != nil {
				t.Fatal(err)
			}
			if len(tb.Rows) != n {
				t.Errorf("%s: %d rows, want %d", cust, len(tb.Rows), n)
			}
			for _, row := range tb.Rows {
				if row[2] != cust || !strings.HasPrefix(row[0].(string), cust[:1]) {
					t.Errorf("%s sees %v", cust, row)
				}
			}
		}
	}
	// bob: prompt b01 (+5), calls b02 (+6, Bash 7) and b03 (+15, Write
	// 8), response b04 (+16, -0.01). alice's and carol's calls at +2..+23
	// are all around his.
	b01 := []any{"b01", at(5), "bob"}
	got := dataset2(t, db, "bob", `{"cohort":{"activity":"submitted_prompt"},"append":[
		{"activity":"called_tool","relationship":"last_before","as":"lb"},
		{"activity":"called_tool","relationship":"first_after","features":["tool"],"as":"fa"},
		{"activity":"called_tool","relationship":"last_in_between","features":["ms"],"as":"lib"},
		{"activity":"called_tool","relationship":"aggregate_all_ever","aggregate":"sum","of":"ms","as":"ms"},
		{"activity":"called_tool","relationship":"aggregate_before","as":"before"},
		{"activity":"completed_response","relationship":"aggregate_after","aggregate":"sum","of":"revenue_impact","as":"cost"}]}`)
	sameRows(t, got.Rows, rows(r(b01, nil, at(6), "Bash", at(15), "8", 15.0, 0, -0.01)))
}

func dataset2(t *testing.T, db *duckdb.DB, customer, spec string) *warehouse.Table {
	t.Helper()
	s, err := Decode([]byte(spec))
	if err != nil {
		t.Fatal(err)
	}
	c, err := Compile(s, DialectDuckDB)
	if err != nil {
		t.Fatal(err)
	}
	tb, err := db.CustomerQuery(context.Background(), customer, c.SQL, c.Args, 0)
	if err != nil {
		t.Fatal(err)
	}
	return tb
}

// TestManyCustomersTable runs datasets on the whole table, as an analyst
// on Snowflake would (no customer views): the joins on customer alone keep
// each cohort row to its own customer's rows. The file is opened directly
// once the warehouse is closed.
func TestManyCustomersTable(t *testing.T) {
	t.Parallel()
	db, path := openFixture(t)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	raw, err := sql.Open("duckdb", path+"?access_mode=READ_ONLY")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	run := func(spec string) [][]any {
		t.Helper()
		s, err := Decode([]byte(spec))
		if err != nil {
			t.Fatal(err)
		}
		c, err := Compile(s, DialectDuckDB)
		if err != nil {
			t.Fatal(err)
		}
		rs, err := raw.Query(c.SQL, c.Args...)
		if err != nil {
			t.Fatalf("%v\n%s", err, c.SQL)
		}
		defer rs.Close()
		var out [][]any
		for rs.Next() {
			vals := make([]any, len(c.Columns))
			ptrs := make([]any, len(vals))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rs.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			out = append(out, vals)
		}
		if err := rs.Err(); err != nil {
			t.Fatal(err)
		}
		return out
	}
	b01 := []any{"b01", at(5), "bob"}
	// Ordered by customer, ts. carol has no prompt.
	got := run(`{"cohort":{"activity":"submitted_prompt"},"append":[
		{"activity":"called_tool","relationship":"last_before","features":["tool"],"as":"lb"},
		{"activity":"called_tool","relationship":"first_after","features":["tool"],"as":"fa"},
		{"activity":"called_tool","relationship":"aggregate_in_between","as":"n"},
		{"activity":"called_tool","relationship":"first_ever","as":"fe"},
		{"activity":"called_tool","relationship":"aggregate_all_ever","as":"all"}]}`)
	sameRows(t, got, rows(
		r(p02, nil, nil, at(2), "Bash", 3, at(2), 7),
		r(p06, at(3), "Read", at(12), "Read", 1, at(2), 7),
		r(p08, at(12), "Read", at(21), "Bash", 3, at(2), 7),
		r(b01, nil, nil, at(6), "Bash", 2, at(6), 2),
	))
	// Every customer's called_tool rows, with the previous call of the
	// same customer; carol's only call has none.
	got = run(`{"cohort":{"activity":"called_tool","occurrence":"first"},"append":[
		{"activity":"called_tool","relationship":"first_after","features":["tool"],"as":"next"}]}`)
	sameRows(t, got, rows(
		r([]any{"a03", at(2), "alice"}, at(3), "Read"),
		r([]any{"b02", at(6), "bob"}, at(15), "Write"),
		r([]any{"c01", at(7), "carol"}, nil, nil),
	))
}
