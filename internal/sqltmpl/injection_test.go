package sqltmpl

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/activitybi/activitybi/internal/event"
	"github.com/activitybi/activitybi/internal/warehouse"
)

// injectionPayloads are strings an attacker (or a confused model) might
// put in a parameter: SQL breaking out of a literal, comments, stacked
// statements, placeholders and template syntax, engine commands, look-alike
// quotes, control characters and very long strings.
var injectionPayloads = []string{
	`'; DROP TABLE claude_stream; --`,
	`' OR 1=1 --`,
	`' OR '1'='1`,
	`") OR ("1"="1`,
	`'; DELETE FROM claude_stream WHERE '1'='1`,
	`1; SELECT * FROM insight_atoms`,
	`' UNION SELECT customer, activity FROM claude_stream --`,
	`admin'--`,
	`/* comment */ Bash`,
	`Bash' /*`,
	`*/ OR 1=1 /*`,
	`-- comment`,
	`$1`,
	`?`,
	`?, ?); DROP TABLE audit_log; --`,
	`$window_start`,
	`/* SLOT: by */ 1 /* END */`,
	`' || getvariable('activitybi_customer') || '`,
	`'; SET VARIABLE activitybi_customer = 'bob'; --`,
	`'; ATTACH '/tmp/x.duckdb' AS x; --`,
	`'; COPY claude_stream TO '/tmp/out.csv'; --`,
	`'; INSTALL httpfs; LOAD httpfs; --`,
	`'; PRAGMA database_list; --`,
	`'; COMMIT; DROP TABLE claude_stream; --`,
	`\'; DROP TABLE claude_stream; --`,
	`read_csv('/etc/passwd')`,
	`main.claude_stream`,
	"\u2019 OR 1=1 --",                 // right single quotation mark
	"\u02bc OR \u02bc1\u02bc=\u02bc1",  // modifier letter apostrophe
	"\uff07; DROP TABLE claude_stream", // fullwidth apostrophe
	`%' OR 'x' LIKE '%`,
	`%`,
	`_`,
	`''''''`,
	`"; DROP TABLE "claude_stream`,
	strings.Repeat("'", 255),
	"BobTool",   // another customer's tool: a filter on it finds nothing of alice's
	"bobserver", // and another customer's server
	// Refused with a clear error (control characters, too long):
	"\x00' OR 1=1 --",
	"Bash\x00",
	"a\nb'; DROP TABLE claude_stream; --",
	"x\u2028y",
	strings.Repeat("A' OR 1=1 -- ", 30),
}

// othersOnly are payloads that name bob's data: alice has no rows with them.
var othersOnly = map[string]bool{"BobTool": true, "bobserver": true}

// storable reports whether a string parameter accepts s (the checks every
// string parameter of the library shares; the pattern-checked ones refuse
// more).
func storable(s string) bool {
	_, err := Default().Render("tool_stats", mustJSON(map[string]any{"tool": s}), DuckDB, fxNow)
	return err == nil
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// injectionFixture is the usual fixture plus, for alice and for bob, one
// failed slow tool call, one response and one insight per storable payload,
// with the payload as tool, server, model, project, session_id and subject.
func injectionFixture(t *testing.T) (db interface {
	CustomerQuery(context.Context, string, string, []any, int) (*warehouse.Table, error)
	Stats(context.Context) (warehouse.Stats, error)
	Query(context.Context, string, int) (*warehouse.Table, error)
}, insightOK map[string]bool) {
	d := fixture(t)
	insightOK = map[string]bool{}
	ts := fxNow.Add(-2 * time.Hour)
	for _, customer := range []string{"alice", "bob"} {
		var b warehouse.Batch
		duration := 20000.0
		if customer == "bob" {
			duration = 99999
		}
		for i, p := range injectionPayloads {
			if !storable(p) || customer == "alice" && othersOnly[p] {
				continue
			}
			f := map[string]any{"tool": p, "server": p, "session_id": p, "project": p, "success": false, "error": "e", "duration_ms": duration}
			r := map[string]any{"model": p, "project": p, "session_id": p, "first_token_ms": duration, "latency_ms": duration}
			cost := -1.0
			for j, in := range []event.Input{
				{ActivityID: fmt.Sprintf("inj-%d-t", i), TS: &ts, Activity: "called_tool", Features: mustJSON(f)},
				{ActivityID: fmt.Sprintf("inj-%d-r", i), TS: &ts, Activity: "completed_response", Features: mustJSON(r), RevenueImpact: &cost},
			} {
				e, err := event.Normalize(in, event.Defaults{Customer: customer, Source: event.SourceMCP, Now: func() time.Time { return fxNow }})
				if err != nil {
					t.Fatalf("payload %d event %d: %v", i, j, err)
				}
				b.Events = append(b.Events, e)
			}
			x, err := event.NormalizeInsight(event.InsightInput{
				AtomID: fmt.Sprintf("inj-%d", i), TS: &ts, Subject: p, Metric: "injected", Value: json.RawMessage(`1`),
			}, event.Defaults{Customer: customer, Source: event.SourceMCP, Now: func() time.Time { return fxNow }})
			if err == nil {
				b.Insights = append(b.Insights, x)
				insightOK[p] = true
			}
		}
		if _, err := d.Load(context.Background(), &b); err != nil {
			t.Fatal(err)
		}
	}
	return d, insightOK
}

// Every payload in every string parameter of every template either is
// refused with a clear error naming the parameter, or runs and is matched
// as a value: the rows that come back are exactly the ones carrying that
// string (none of bob's), and the warehouse is unchanged afterwards.
func TestInjection(t *testing.T) {
	t.Parallel()
	if len(injectionPayloads) < 30 {
		t.Fatalf("%d payloads; the corpus has at least 30", len(injectionPayloads))
	}
	db, insightOK := injectionFixture(t)
	ctx := context.Background()
	before, err := db.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	countsBefore := tableCounts(t, db)
	lib := Default()
	var ran, refused int
	for _, tp := range lib.List() {
		for _, p := range tp.Params {
			if p.Type != TypeString {
				continue
			}
			for _, payload := range injectionPayloads {
				params := map[string]any{p.Name: payload}
				if tp.Name == "insight_series" && p.Name != "metric" {
					params["metric"] = "injected"
				}
				what := fmt.Sprintf("%s %s=%q", tp.Name, p.Name, clip(payload))
				r, err := lib.Render(tp.Name, mustJSON(params), DuckDB, fxNow)
				if err != nil {
					refused++
					var ipe *InvalidParamsError
					if !errors.Is(err, ErrInvalidParams) || !errors.As(err, &ipe) || len(ipe.Problems) != 1 || ipe.Problems[0].Param != p.Name {
						t.Errorf("%s: refused without naming the parameter: %v", what, err)
					}
					if storable(payload) && p.Pattern == "" {
						t.Errorf("%s: a storable value was refused: %v", what, err)
					}
					continue
				}
				if strings.Contains(r.SQL, payload) && len(payload) > 2 {
					t.Errorf("%s: the payload is in the SQL text", what)
				}
				ran++
				tb, err := db.CustomerQuery(ctx, "alice", r.SQL, r.Args, 1000)
				if err != nil {
					t.Errorf("%s: %v", what, err)
					continue
				}
				noBobExcept(t, what, tb, payload)
				// alice logged every storable payload as a tool, server,
				// model, project, session and subject (unless the subject
				// is not a valid one), never as a metric.
				insightTemplate := strings.HasPrefix(tp.Name, "insight_")
				wantEmpty := othersOnly[payload] || insightTemplate && (p.Name == "metric" || !insightOK[payload])
				checkMatched(t, what, tp, p.Name, payload, tb, wantEmpty)
			}
		}
	}
	t.Logf("%d payloads: %d renders ran, %d refused", len(injectionPayloads), ran, refused)
	after, err := db.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if before != after {
		t.Errorf("warehouse changed: %+v -> %+v", before, after)
	}
	if got := tableCounts(t, db); got != countsBefore {
		t.Errorf("row counts changed: %s -> %s", countsBefore, got)
	}
}

// noBobExcept is noBob for results that may echo payload (which can
// contain "bob"): bob's rows are told apart by his durations.
func noBobExcept(t *testing.T, what string, tb *warehouse.Table, payload string) {
	t.Helper()
	for _, row := range tb.Rows {
		for _, v := range row {
			switch v := v.(type) {
			case string:
				if v != payload && strings.Contains(strings.ToLower(v), "bob") && !strings.Contains(v, payload) {
					t.Errorf("%s: bob's data in alice's result: %v", what, row)
				}
			case float64:
				if v == 99999 || v == 9.99 {
					t.Errorf("%s: bob's data in alice's result: %v", what, row)
				}
			}
		}
	}
}

// checkMatched: the payload filtered as a value. Rows echo it in the
// parameter's column when the template has one; alice's rows carrying it
// are found unless she has none (wantEmpty).
func checkMatched(t *testing.T, what string, tp *Template, param, payload string, tb *warehouse.Table, wantEmpty bool) {
	t.Helper()
	if wantEmpty {
		if len(tb.Rows) != 0 {
			t.Errorf("%s: rows for a value alice never logged: %v", what, tb.Rows)
		}
		return
	}
	if len(tb.Rows) == 0 {
		t.Errorf("%s: no rows, though alice logged that value", what)
		return
	}
	col := param
	if param == "subject_prefix" {
		col = "subject"
	}
	for i, c := range tb.Columns {
		if c.Name != col {
			continue
		}
		for _, row := range tb.Rows {
			s, _ := row[i].(string)
			if param == "subject_prefix" && !strings.HasPrefix(s, payload) || param != "subject_prefix" && s != payload {
				t.Errorf("%s: row with %s %q", what, col, s)
			}
		}
	}
}

// tableCounts reads the row count of every table through the analyst path.
func tableCounts(t *testing.T, db interface {
	Query(context.Context, string, int) (*warehouse.Table, error)
}) string {
	t.Helper()
	tb, err := db.Query(context.Background(), `SELECT
		(SELECT count(*) FROM claude_stream), (SELECT count(*) FROM insight_atoms),
		(SELECT count(*) FROM audit_log), (SELECT count(*) FROM query_tickets),
		(SELECT count(*) FROM context_cache), (SELECT count(*) FROM artifacts)`, 1)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprint(tb.Rows)
}
