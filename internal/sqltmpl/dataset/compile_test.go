package dataset

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// goldenSpecs are the datasets whose SQL is pinned in testdata/, in both
// dialects. Together they take every branch of the compiler.
var goldenSpecs = []struct{ name, spec string }{
	{"cohort_only", `{"cohort":{"activity":"submitted_prompt"}}`},
	{"cohort_nth_window_features", `{"cohort":{"activity":"called_tool","occurrence":"nth","nth":3,
		"from":"2026-03-01T00:00:00Z","to":"2026-04-01T00:00:00+02:00",
		"features":["tool","ms","revenue_impact","link"]},"limit":50}`},
	{"cohort_first", `{"cohort":{"activity":"submitted_prompt","occurrence":"first"}}`},
	{"cohort_last", `{"cohort":{"activity":"submitted_prompt","occurrence":"last"}}`},
	{"cohort_filtered_first", `{"cohort":{"activity":"called_tool","occurrence":"first",
		"filters":[{"feature":"tool","op":"eq","value":"Bash"}]}}`},
	{"cohort_filtered_last", `{"cohort":{"activity":"called_tool","occurrence":"last",
		"filters":[{"feature":"tool","op":"eq","value":"Bash"}]}}`},
	{"cohort_filtered_nth_every_op", `{"cohort":{"activity":"called_tool","occurrence":"nth","nth":2,"filters":[
		{"feature":"tool","op":"eq","value":"Bash"},
		{"feature":"ok","op":"eq","value":true},
		{"feature":"tool","op":"ne","value":"Read"},
		{"feature":"ms","op":"gt","value":10},
		{"feature":"ms","op":"gte","value":10.5},
		{"feature":"ms","op":"lt","value":1e4},
		{"feature":"server","op":"lte","value":"m"},
		{"feature":"cmd","op":"contains","value":"git "},
		{"feature":"tool","op":"in","value":["Read","Edit","Bash"]},
		{"feature":"ms","op":"in","value":[1,2]},
		{"feature":"revenue_impact","op":"lt","value":-0.5},
		{"feature":"link","op":"contains","value":"https://"}]}}`},
	{"first_last_unfiltered", `{"cohort":{"activity":"submitted_prompt","features":["model"]},"append":[
		{"activity":"called_tool","relationship":"first_ever","features":["tool"]},
		{"activity":"called_tool","relationship":"last_ever"},
		{"activity":"called_tool","relationship":"first_before"},
		{"activity":"called_tool","relationship":"last_before","features":["tool","revenue_impact"]},
		{"activity":"called_tool","relationship":"first_after"},
		{"activity":"called_tool","relationship":"last_after"},
		{"activity":"completed_response","relationship":"first_in_between","features":["tokens"],"as":"response"},
		{"activity":"completed_response","relationship":"last_in_between","as":"last_response"}]}`},
	{"first_last_filtered", `{"cohort":{"activity":"submitted_prompt"},"append":[
		{"activity":"called_tool","relationship":"first_ever","filters":[{"feature":"tool","op":"eq","value":"Bash"}],"as":"first_bash"},
		{"activity":"called_tool","relationship":"last_ever","filters":[{"feature":"tool","op":"eq","value":"Bash"}],"as":"last_bash"},
		{"activity":"called_tool","relationship":"first_before","filters":[{"feature":"tool","op":"eq","value":"Bash"}],"as":"fb"},
		{"activity":"called_tool","relationship":"last_after","filters":[{"feature":"tool","op":"eq","value":"Bash"}],"as":"la"},
		{"activity":"called_tool","relationship":"first_after","filters":[{"feature":"ms","op":"gt","value":1000}],"as":"slow"}]}`},
	{"aggregates", `{"cohort":{"activity":"started_session"},"append":[
		{"activity":"called_tool","relationship":"aggregate_before"},
		{"activity":"called_tool","relationship":"aggregate_after","aggregate":"max","of":"ms"},
		{"activity":"completed_response","relationship":"aggregate_in_between","aggregate":"sum","of":"revenue_impact","as":"cost"},
		{"activity":"completed_response","relationship":"aggregate_in_between","aggregate":"avg","of":"tokens","as":"tokens"},
		{"activity":"called_tool","relationship":"aggregate_in_between","of":"error","as":"errors"},
		{"activity":"called_tool","relationship":"aggregate_all_ever","aggregate":"min","of":"ms",
			"filters":[{"feature":"tool","op":"eq","value":"Bash"}],"as":"fastest_bash"}]}`},
	{"in_between_filtered_cohort", `{"cohort":{"activity":"submitted_prompt","filters":[{"feature":"model","op":"eq","value":"opus"}]},"append":[
		{"activity":"called_tool","relationship":"aggregate_in_between","as":"calls"},
		{"activity":"called_tool","relationship":"last_in_between","filters":[{"feature":"tool","op":"ne","value":"Read"}],"features":["tool"],"as":"last_tool"}]}`},
}

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (go test -update rewrites it):\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

// render is a golden file: the canonical spec, the columns and the
// arguments as comments, then the statement.
func render(s *Spec, c *Compiled) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "-- spec: %s\n", s.Canonical())
	fmt.Fprintf(&b, "-- columns: %s\n", strings.Join(c.Columns, ", "))
	args, err := json.Marshal(c.Args)
	if err != nil {
		panic(err)
	}
	fmt.Fprintf(&b, "-- args: %s\n", args)
	b.WriteString(c.SQL)
	b.WriteString("\n")
	return b.Bytes()
}

func TestGoldenSQL(t *testing.T) {
	t.Parallel()
	for _, g := range goldenSpecs {
		s, err := Decode([]byte(g.spec))
		if err != nil {
			t.Fatalf("%s: %v", g.name, err)
		}
		for _, d := range []string{DialectDuckDB, DialectSnowflake} {
			c, err := Compile(s, d)
			if err != nil {
				t.Fatalf("%s %s: %v", g.name, d, err)
			}
			if n := strings.Count(c.SQL, "?"); n != len(c.Args) {
				t.Errorf("%s %s: %d placeholders, %d args", g.name, d, n, len(c.Args))
			}
			golden(t, g.name+"."+d+".sql", render(s, c))
		}
	}
}

// TestGoldenSQLRuns runs every golden DuckDB statement through the
// customer read path (its statement check included) on the fixture.
func TestGoldenSQLRuns(t *testing.T) {
	t.Parallel()
	db, _ := openFixture(t)
	for _, g := range goldenSpecs {
		s, err := Decode([]byte(g.spec))
		if err != nil {
			t.Fatal(err)
		}
		c, err := Compile(s, DialectDuckDB)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.CustomerQuery(context.Background(), "alice", c.SQL, c.Args, 0); err != nil {
			t.Errorf("%s: %v", g.name, err)
		}
	}
}

// snowflakeReads are the Snowflake feature reads and their DuckDB
// equivalents.
var snowflakeReads = []struct {
	re   *regexp.Regexp
	repl string
}{
	{regexp.MustCompile(`TRY_TO_DOUBLE\(GET\((\w+)\.feature_json, \?\)::VARCHAR\)`), `TRY_CAST(json_extract_string($1.feature_json, ?) AS DOUBLE)`},
	{regexp.MustCompile(`GET\((\w+)\.feature_json, \?\)::VARCHAR`), `json_extract_string($1.feature_json, ?)`},
}

// TestDialectsDifferOnlyInFeatureReads: the Snowflake statement is the
// DuckDB one (run and checked above) with the feature reads swapped, and
// takes the same arguments. No Snowflake can run here, so this is what
// carries the DuckDB results over.
func TestDialectsDifferOnlyInFeatureReads(t *testing.T) {
	t.Parallel()
	for _, g := range goldenSpecs {
		s, err := Decode([]byte(g.spec))
		if err != nil {
			t.Fatal(err)
		}
		dc, err := Compile(s, DialectDuckDB)
		if err != nil {
			t.Fatal(err)
		}
		sc, err := Compile(s, DialectSnowflake)
		if err != nil {
			t.Fatal(err)
		}
		swapped := sc.SQL
		for _, r := range snowflakeReads {
			swapped = r.re.ReplaceAllString(swapped, r.repl)
		}
		if swapped != dc.SQL {
			t.Errorf("%s: the Snowflake SQL differs from DuckDB's in more than feature reads:\n%s\n---\n%s", g.name, sc.SQL, dc.SQL)
		}
		if fmt.Sprint(sc.Args) != fmt.Sprint(dc.Args) || fmt.Sprint(sc.Columns) != fmt.Sprint(dc.Columns) {
			t.Errorf("%s: args or columns differ between dialects", g.name)
		}
	}
}

func TestCompileErrors(t *testing.T) {
	t.Parallel()
	s, err := Decode([]byte(`{"cohort":{"activity":"submitted_prompt"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Compile(s, "postgres"); err == nil || err.Error() != `compile dataset: unknown dialect "postgres" (duckdb or snowflake)` {
		t.Errorf("unknown dialect: %v", err)
	}
	if _, err := Compile(nil, DialectDuckDB); !errors.Is(err, ErrInvalidSpec) {
		t.Errorf("nil spec: %v", err)
	}
	// A spec built in code is validated like a decoded one.
	bad := &Spec{Cohort: Cohort{Activity: "submitted_prompt", Features: []string{"x; DROP TABLE claude_stream"}},
		Appends: []Append{{Activity: "called_tool", Relationship: "first_after", As: `a"b`}}}
	_, err = Compile(bad, DialectDuckDB)
	want := `compile dataset: invalid dataset spec: cohort.features[0]: "x; DROP TABLE claude_stream" is not a feature key (letters, digits and _, not starting with a digit, at most 64); ` +
		`append[0].as: "a\"b" is not a column prefix (letters, digits and _, not starting with a digit, at most 64)`
	if err == nil || err.Error() != want || !errors.Is(err, ErrInvalidSpec) {
		t.Errorf("bad spec in code:\n got %v\nwant %s", err, want)
	}
	// Compile does not change the caller's spec.
	ok := &Spec{Cohort: Cohort{Activity: "submitted_prompt", Filters: []Filter{{Feature: "b", Op: "eq", Value: 1}, {Feature: "a", Op: "eq", Value: "x"}}}}
	if _, err := Compile(ok, DialectDuckDB); err != nil {
		t.Fatal(err)
	}
	if ok.Limit != 0 || ok.Cohort.Occurrence != "" || ok.Cohort.Filters[0].Feature != "b" || ok.Cohort.Filters[0].Value != 1 {
		t.Errorf("Compile changed its input: %+v", ok)
	}
}

// TestCompileInCode: a spec built in Go with Go's own value types compiles
// to the same statement as the equivalent JSON.
func TestCompileInCode(t *testing.T) {
	t.Parallel()
	inCode := &Spec{Cohort: Cohort{Activity: "called_tool", Filters: []Filter{
		{Feature: "tool", Op: OpIn, Value: []string{"Read", "Bash"}},
		{Feature: "ms", Op: OpGt, Value: 10},
		{Feature: "ms", Op: OpIn, Value: []int{2, 1}},
	}}, Appends: []Append{{Activity: "completed_response", Relationship: AggregateInBetween, Aggregate: AggSum, Of: ColRevenueImpact}}}
	fromJSON, err := Decode([]byte(`{"cohort":{"activity":"called_tool","filters":[
		{"feature":"ms","op":"in","value":[1,2]},{"feature":"ms","op":"gt","value":10},
		{"feature":"tool","op":"in","value":["Bash","Read","Bash"]}]},
		"append":[{"activity":"completed_response","relationship":"aggregate_in_between","aggregate":"sum","of":"revenue_impact"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	a, err := Compile(inCode, DialectDuckDB)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Compile(fromJSON, DialectDuckDB)
	if err != nil {
		t.Fatal(err)
	}
	if a.SQL != b.SQL || fmt.Sprint(a.Args) != fmt.Sprint(b.Args) {
		t.Errorf("in code:\n%s\n%v\nfrom JSON:\n%s\n%v", a.SQL, a.Args, b.SQL, b.Args)
	}
}
