package main

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/activitybi/activitybi/internal/sqltmpl"
)

// runInProcess runs the command in this process (no core, no data dir:
// `templates` needs neither) and returns stdout, stderr and the exit code.
func runInProcess(args ...string) (string, string, int) {
	var out, errb bytes.Buffer
	code := run(args, strings.NewReader(""), &out, &errb)
	return out.String(), errb.String(), code
}

func TestTemplatesList(t *testing.T) {
	t.Parallel()
	out, errs, code := runInProcess("templates")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	list := sqltmpl.Default().List()
	for _, tp := range list {
		// The name with the first sentence of its description, and its
		// parameters on the next line.
		re := regexp.MustCompile(`(?m)^` + tp.Name + ` +\S.*\n +params: ` + regexp.QuoteMeta(tp.Signature()) + `$`)
		if !re.MatchString(out) {
			t.Errorf("no entry for %s in:\n%s", tp.Name, out)
		}
	}
	if !strings.Contains(out, "tool_stats") || !strings.Contains(out, "days=7 from? to? tool? server? min_calls=1 limit=50") {
		t.Errorf("tool_stats's entry is missing:\n%s", out)
	}
	if !strings.HasSuffix(out, "\n19 templates; `activitybi templates NAME` shows one.\n") || len(list) != 19 {
		t.Errorf("footer or count (%d templates):\n%s", len(list), out)
	}
	if errs != "" {
		t.Errorf("stderr: %s", errs)
	}
}

func TestTemplatesJSON(t *testing.T) {
	t.Parallel()
	out, errs, code := runInProcess("templates", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var all []struct {
		Name           string
		Description    string
		Reads          string
		TimeoutSeconds float64 `json:"timeout_seconds"`
		Params         []struct {
			Name, Type, Description string
			Default                 any
			Optional                bool
			Min, Max                *float64
			Values                  []string
		}
		Columns []sqltmpl.Column
		Card    sqltmpl.CardDefault
	}
	if err := json.Unmarshal([]byte(out), &all); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if len(all) != len(sqltmpl.Default().List()) {
		t.Fatalf("%d templates in the JSON", len(all))
	}
	for _, tp := range all {
		if tp.Description == "" || tp.Reads == "" || tp.TimeoutSeconds <= 0 || len(tp.Columns) == 0 || tp.Card.Kind == "" {
			t.Errorf("%s: incomplete metadata: %+v", tp.Name, tp)
		}
	}
	// One template's JSON is that object alone.
	out, _, code = runInProcess("templates", "period_comparison", "--json")
	var one map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &one) != nil || one["name"] != "period_comparison" {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	params := one["params"].([]any)
	metric := params[3].(map[string]any)
	if metric["name"] != "metric" || metric["type"] != "enum" || metric["default"] != "events" || len(metric["values"].([]any)) != 9 {
		t.Errorf("metric param: %v", metric)
	}
}

func TestTemplatesShow(t *testing.T) {
	t.Parallel()
	out, errs, code := runInProcess("templates", "slow_tool_calls")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	tp, _ := sqltmpl.Default().Get("slow_tool_calls")
	src, _ := tp.SQL(sqltmpl.DuckDB)
	for _, want := range []string{
		"slow_tool_calls\n\nIndividual tool calls that took longer than a threshold",
		"\nReads: called_tool events: features tool, server, duration_ms,",
		"\nTimeout: 30s\nCard: table\n",
		"\nParameters:\n",
		"  days         int        default 7, 1..3660",
		"  from         timestamp  optional",
		"  slower_than  duration   default 10s, 0..86400 s",
		"  tool         string     optional, <= 255 chars",
		"\nColumns:\n  ts           TIMESTAMP  When the call was logged (UTC).\n",
		"\nSQL (duckdb; $name is a bound value):\n" + src + "\n",
		"WHERE duration_ms > $slower_than * 1000",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("lacks %q:\n%s", want, out)
		}
	}

	out, _, code = runInProcess("templates", "tool_calls_over_time", "--dialect", "snowflake")
	for _, want := range []string{
		"Card: stacked_bar (x bucket, y calls, series series)",
		"  by      enum       default tool, tool|server|all",
		"SQL (snowflake; $name is a bound value):\n",
		`DATE_TRUNC(/* SLOT: bucket */'day'/* END */, ts) AS "bucket"`,
	} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("exit %d, lacks %q:\n%s", code, want, out)
		}
	}
}

func TestTemplatesErrors(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"templates", "tool_stat"}, `activitybi: unknown template "tool_stat"; the templates are: activity_heatmap, activity_over_time, `},
		{[]string{"templates", "tool_stats", "--dialect", "postgres"}, `activitybi: --dialect: "postgres" is not one of duckdb, snowflake`},
		{[]string{"templates", "a", "b"}, `activitybi: accepts at most 1 arg(s), received 2`},
	} {
		out, errs, code := runInProcess(c.args...)
		if code != 1 || out != "" || !strings.HasPrefix(errs, c.want) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 1 and %q", c.args, code, out, errs, c.want)
		}
	}
}
