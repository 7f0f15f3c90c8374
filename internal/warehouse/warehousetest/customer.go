package warehousetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/activitybi/activitybi/internal/event"
	"github.com/activitybi/activitybi/internal/warehouse"
)

// CustomerQuery's contract: whatever the statement says, it sees only its
// customer's rows; names that could step around that are refused.

// customerFixture is alice's and bob's rows plus an anonymous visitor's.
type customerFixture struct {
	alice, bob []event.Event
}

// loadCustomers loads alice (5 events over two activities, 2 insights), bob
// (3 events, 1 insight), an anonymous-only row, a quarantined record and an
// offset, so that every table has something to leak.
func loadCustomers(t *testing.T, d warehouse.Driver) customerFixture {
	t.Helper()
	var f customerFixture
	for i := 0; i < 5; i++ {
		act := "called_tool"
		if i >= 3 {
			act = "submitted_prompt"
		}
		e := ev("alice", act, fmt.Sprintf("A%d", i), t0.Add(time.Duration(i)*time.Minute))
		rev := -0.01 * float64(i+1)
		e.RevenueImpact = &rev
		f.alice = append(f.alice, e)
	}
	for i := 0; i < 3; i++ {
		// bob reuses alice's ids: ids are per customer.
		f.bob = append(f.bob, ev("bob", "called_tool", fmt.Sprintf("A%d", i), t0.Add(time.Duration(i)*time.Minute)))
	}
	anon := ev("", "started_session", "X1", t0)
	anon.AnonymousCustomerID = "visitor-1"
	evs := append(append(append([]event.Event{}, f.alice...), f.bob...), anon)
	load(t, d, &warehouse.Batch{
		Events:     evs,
		Insights:   []event.Insight{ins("alice", "I1", `1`, t0), ins("alice", "I2", `2`, t0), ins("bob", "I1", `3`, t0)},
		Quarantine: []warehouse.QuarantineRecord{{Segment: "seg-1", Offset: 7, Kind: "event", Reason: "drift", Raw: []byte(`{"customer":"bob"}`)}},
		Offsets:    []warehouse.Offset{{Segment: "seg-1", Offset: 100, Records: 10}},
	})
	return f
}

func customerQuery(t *testing.T, d warehouse.Driver, customer, q string, args ...any) *warehouse.Table {
	t.Helper()
	tab, err := d.CustomerQuery(context.Background(), customer, q, args, 0)
	if err != nil {
		t.Fatalf("CustomerQuery(%q, %q): %v", customer, q, err)
	}
	return tab
}

func wantRows(t *testing.T, what string, tab *warehouse.Table, want [][]any) {
	t.Helper()
	if !reflect.DeepEqual(tab.Rows, want) {
		t.Fatalf("%s: rows %#v\nwant %#v", what, tab.Rows, want)
	}
}

func testCustomerQueryIsolates(t *testing.T, open Open) {
	d := setup(t, open)
	loadCustomers(t, d)
	// Each statement forgets (or gets wrong) the customer filter; each
	// must see alice's rows only.
	cases := []struct {
		name, sql string
		want      [][]any
	}{
		{"Count", `SELECT count(*) FROM claude_stream`, [][]any{{int64(5)}}},
		{"Customers", `SELECT DISTINCT customer FROM claude_stream`, [][]any{{"alice"}}},
		{"WrongFilter", `SELECT count(*) FROM claude_stream WHERE customer = 'bob' OR customer = ''`, [][]any{{int64(0)}}},
		{"SelfJoin", `SELECT DISTINCT a.customer, b.customer FROM claude_stream a JOIN claude_stream b ON a.activity_id = b.activity_id`,
			[][]any{{"alice", "alice"}}},
		{"CrossJoinCount", `SELECT count(*) FROM claude_stream a CROSS JOIN claude_stream b`, [][]any{{int64(25)}}},
		{"Subquery", `SELECT (SELECT count(*) FROM claude_stream), (SELECT count(DISTINCT customer) FROM claude_stream)`,
			[][]any{{int64(5), int64(1)}}},
		{"InSubquery", `SELECT count(*) FROM claude_stream WHERE customer IN (SELECT customer FROM claude_stream WHERE customer <> 'alice')`,
			[][]any{{int64(0)}}},
		{"CTE", `WITH everything AS (SELECT * FROM claude_stream) SELECT customer, count(*) FROM everything GROUP BY customer`,
			[][]any{{"alice", int64(5)}}},
		{"NestedCTE", `WITH a AS (SELECT customer FROM claude_stream), b AS (SELECT customer FROM a UNION ALL SELECT customer_id FROM insight_atoms)
SELECT customer, count(*) FROM b GROUP BY customer`, [][]any{{"alice", int64(7)}}},
		{"Union", `SELECT customer FROM claude_stream UNION SELECT customer_id FROM insight_atoms`, [][]any{{"alice"}}},
		{"Window", `SELECT DISTINCT customer, count(*) OVER () AS n FROM claude_stream`, [][]any{{"alice", int64(5)}}},
		{"WindowPartition", `SELECT activity, max(rn) FROM (SELECT activity, row_number() OVER (PARTITION BY activity ORDER BY ts) AS rn FROM claude_stream) x GROUP BY activity ORDER BY activity`,
			[][]any{{"called_tool", int64(3)}, {"submitted_prompt", int64(2)}}},
		{"Insights", `SELECT customer_id, count(*) FROM insight_atoms GROUP BY customer_id`, [][]any{{"alice", int64(2)}}},
		{"OtherCustomerTables", `SELECT (SELECT count(*) FROM context_cache), (SELECT count(*) FROM artifacts),
       (SELECT count(*) FROM query_tickets), (SELECT count(*) FROM audit_log)`, [][]any{{int64(0), int64(0), int64(0), int64(0)}}},
		{"RecursiveCTE", `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < (SELECT count(*) FROM claude_stream)) SELECT max(i) FROM n`,
			[][]any{{int64(5)}}},
		{"UpperCaseName", `SELECT count(*) FROM CLAUDE_STREAM`, [][]any{{int64(5)}}},
		{"QuotedName", `SELECT count(*) FROM "claude_stream"`, [][]any{{int64(5)}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wantRows(t, c.name, customerQuery(t, d, "alice", c.sql), c.want)
		})
	}
	wantRows(t, "bob", customerQuery(t, d, "bob", `SELECT customer, count(*) FROM claude_stream GROUP BY customer`),
		[][]any{{"bob", int64(3)}})
	wantRows(t, "carol (no rows)", customerQuery(t, d, "carol", `SELECT count(*) FROM claude_stream`), [][]any{{int64(0)}})

	// maxRows caps and says so, as for Query.
	tab, err := d.CustomerQuery(context.Background(), "alice", `SELECT activity_id FROM claude_stream ORDER BY ts`, nil, 2)
	if err != nil || len(tab.Rows) != 2 || !tab.Truncated || tab.Rows[1][0] != "A1" {
		t.Fatalf("maxRows 2: %+v, %v; want A0, A1 and truncated", tab, err)
	}
	if len(tab.Columns) != 1 || tab.Columns[0].Name != "activity_id" {
		t.Fatalf("columns %+v", tab.Columns)
	}
	// Errors in a safe statement are plain errors.
	_, err = d.CustomerQuery(context.Background(), "alice", `SELECT no_such_column FROM claude_stream`, nil, 0)
	var u *warehouse.UnsafeSQLError
	if err == nil || errors.As(err, &u) || !strings.Contains(strings.ToLower(err.Error()), "no_such_column") {
		t.Fatalf("bad column: %v; want a plain error naming the column", err)
	}
	// The analyst's Query still sees everyone.
	wantRows(t, "Query after CustomerQuery", query(t, d, `SELECT customer, count(*) FROM claude_stream GROUP BY customer ORDER BY customer`),
		[][]any{{"", int64(1)}, {"alice", int64(5)}, {"bob", int64(3)}})
}

// customerRefused name a table with a schema or catalog, read what is not a
// customer table, or try to change whose rows the views show; a customer
// query refuses every one of them (and everything in unsafeStatements).
var customerRefused = []struct{ name, sql string }{
	{"Schema", `SELECT * FROM main.claude_stream`},
	{"QuotedSchema", `SELECT * FROM "main"."claude_stream"`},
	{"CatalogSchema", `SELECT * FROM memory.main.claude_stream`},
	{"Temp", `SELECT * FROM temp.claude_stream`},
	{"TempMain", `SELECT * FROM temp.main.claude_stream`},
	{"PublicSchema", `SELECT * FROM public.claude_stream`},
	{"InSubquery", `SELECT count(*) FROM claude_stream WHERE customer IN (SELECT customer FROM main.claude_stream)`},
	{"InCTE", `WITH x AS (SELECT * FROM main.claude_stream) SELECT * FROM x`},
	{"InJoin", `SELECT * FROM claude_stream c JOIN main.insight_atoms i ON c.customer = i.customer_id`},
	{"InUnion", `SELECT customer FROM claude_stream UNION ALL SELECT customer FROM main.claude_stream`},
	{"InformationSchema", `SELECT * FROM information_schema.tables`},
	{"SystemCatalog", `SELECT * FROM system.main.duckdb_tables`},
	{"CatalogView", `SELECT * FROM duckdb_tables`},
	{"SqliteMaster", `SELECT * FROM sqlite_master`},
	{"UnknownTable", `SELECT * FROM no_such_table`},
	{"CTEOutOfScope", `SELECT * FROM (WITH x AS (SELECT 1 AS one) SELECT * FROM x) a, x`},
	{"CTEForwardReference", `WITH a AS (SELECT * FROM upload_offsets), upload_offsets AS (SELECT 1 AS one) SELECT * FROM a`},
	// A recursive CTE sees itself only in its recursive branch: in the
	// anchor the name is the catalog's (found in review, session 8).
	{"RecursiveCTEAnchorCatalogView", "WITH RECURSIVE duckdb_tables AS (SELECT * FROM duckdb_tables UNION ALL SELECT * FROM duckdb_tables WHERE false)\nSELECT table_name, estimated_size FROM duckdb_tables"},
	{"RecursiveCTEAnchorPgClass", `WITH RECURSIVE pg_class AS (SELECT * FROM pg_class UNION ALL SELECT * FROM pg_class WHERE false) SELECT relname, reltuples FROM pg_class`},
	{"RecursiveCTEAnchorInternalTable", `WITH RECURSIVE upload_offsets AS (SELECT * FROM upload_offsets UNION ALL SELECT * FROM upload_offsets WHERE false) SELECT * FROM upload_offsets`},
	{"Describe", `DESCRIBE claude_stream`},
	{"ShowTables", `SHOW TABLES`},
	{"Summarize", `SUMMARIZE claude_stream`},
	{"QualifiedFunction", `SELECT main.lower(customer) FROM claude_stream`},
	{"SetVariable", `SET VARIABLE activitybi_customer = 'bob'`},
	{"SetSessionVariable", `SET activitybi_customer = 'bob'`},
	{"ResetVariable", `RESET VARIABLE activitybi_customer`},
	{"SetThenSelect", `SET VARIABLE activitybi_customer = 'bob'; SELECT * FROM claude_stream`},
}

func testCustomerQueryRefuses(t *testing.T, open Open) {
	d := setup(t, open)
	loadCustomers(t, d)
	before := snap(t, d)
	cases := append(append([]struct{ name, sql string }{}, customerRefused...), unsafeStatements...)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tab, err := d.CustomerQuery(context.Background(), "alice", c.sql, nil, 10)
			var u *warehouse.UnsafeSQLError
			if !errors.As(err, &u) {
				t.Fatalf("CustomerQuery(%q) = %+v, %v; want *warehouse.UnsafeSQLError", c.sql, tab, err)
			}
			if u.Reason == "" {
				t.Fatalf("CustomerQuery(%q): refusal without a reason", c.sql)
			}
		})
	}
	if after := snap(t, d); !reflect.DeepEqual(before, after) {
		t.Fatalf("refused customer statements changed the warehouse:\nbefore %+v\nafter  %+v", before, after)
	}
}

// testCustomerQueryInternalTables: tables without a customer's rows are
// refused or read as empty, never read.
func testCustomerQueryInternalTables(t *testing.T, open Open) {
	d := setup(t, open)
	loadCustomers(t, d)
	for _, table := range []string{"upload_quarantine", "upload_offsets", "schema_migrations", "stream_partitions"} {
		for _, q := range []string{
			"SELECT * FROM " + table,
			"SELECT count(*) FROM claude_stream WHERE EXISTS (SELECT 1 FROM " + table + ")",
		} {
			tab, err := d.CustomerQuery(context.Background(), "bob", q, nil, 0)
			var u *warehouse.UnsafeSQLError
			switch {
			case errors.As(err, &u):
			case err != nil:
				t.Fatalf("CustomerQuery(%q): %v; want a refusal or no rows", q, err)
			case strings.HasPrefix(q, "SELECT * ") && len(tab.Rows) != 0,
				strings.HasPrefix(q, "SELECT count") && !reflect.DeepEqual(tab.Rows, [][]any{{int64(0)}}):
				t.Fatalf("CustomerQuery(%q) read %v", q, tab.Rows)
			}
		}
	}
}

// hostileCustomers are customer names that would break out of an SQL string
// literal, match as patterns, or look alike.
var hostileCustomers = []string{
	`o'brien`,
	`'; DROP TABLE claude_stream; --`,
	`alice' OR '1'='1`,
	`alice'--`,
	`back\slash\`,
	`\'`,
	`"double" "quotes"`,
	`%`,
	`_`,
	`*`,
	`$1`,
	`?`,
	`ALICE`,
	` alice`,
	`ünïcødé 客户 🚀`,
	"\u00e9",  // é, one code point
	"e\u0301", // é, e + combining accent: a different customer
	strings.Repeat("x'", 120),
}

func testCustomerQueryHostileCustomers(t *testing.T, open Open) {
	d := setup(t, open)
	loadCustomers(t, d)
	var evs []event.Event
	var insights []event.Insight
	for i, c := range hostileCustomers {
		for j := 0; j <= i%3; j++ {
			evs = append(evs, ev(c, "called_tool", fmt.Sprintf("H%d-%d", i, j), t0.Add(time.Duration(j)*time.Second)))
		}
		insights = append(insights, ins(c, "I1", `1`, t0))
	}
	for _, e := range evs {
		if err := event.Validate(&e, time.Now()); err != nil {
			t.Fatalf("test event for %q is invalid: %v", e.Customer, err)
		}
	}
	load(t, d, &warehouse.Batch{Events: evs, Insights: insights})
	for i, c := range hostileCustomers {
		want := [][]any{{c, int64(i%3 + 1)}}
		wantRows(t, fmt.Sprintf("stream of %q", c),
			customerQuery(t, d, c, `SELECT customer, count(*) FROM claude_stream GROUP BY customer`), want)
		wantRows(t, fmt.Sprintf("insights of %q", c),
			customerQuery(t, d, c, `SELECT customer_id, count(*) FROM insight_atoms GROUP BY customer_id`), [][]any{{c, int64(1)}})
	}
	// Nothing was dropped along the way.
	if s := stats(t, d); s.StreamRows != int64(9+len(evs)) {
		t.Fatalf("Stats = %+v; want %d stream rows", s, 9+len(evs))
	}
	// Customers no row can carry are errors, not empty answers.
	for _, c := range []string{"", "a\x00b", "\xff\xfe"} {
		if _, err := d.CustomerQuery(context.Background(), c, `SELECT count(*) FROM claude_stream`, nil, 0); err == nil {
			t.Errorf("CustomerQuery with customer %q succeeded; want an error", c)
		}
	}
}

func testCustomerQueryArgs(t *testing.T, open Open) {
	d := setup(t, open)
	loadCustomers(t, d)
	hostile := `it's "quoted" \ '; DROP TABLE claude_stream; --`
	cases := []struct {
		name, sql string
		args      []any
		want      [][]any
	}{
		{"String", `SELECT count(*) FROM claude_stream WHERE activity = ?`, []any{"called_tool"}, [][]any{{int64(3)}}},
		{"Dollar", `SELECT count(*) FROM claude_stream WHERE activity = $1 OR activity_id = $1`, []any{"submitted_prompt"}, [][]any{{int64(2)}}},
		{"TwoDollars", `SELECT count(*) FROM claude_stream WHERE activity = $2 AND activity_id <> $1`, []any{"A0", "called_tool"}, [][]any{{int64(2)}}},
		{"Timestamps", `SELECT count(*) FROM claude_stream WHERE ts >= ? AND ts < ?`, []any{t0.Add(time.Minute), t0.Add(3 * time.Minute)}, [][]any{{int64(2)}}},
		{"TimestampEqual", `SELECT activity_id FROM claude_stream WHERE ts = ?`, []any{t0.Add(4 * time.Minute)}, [][]any{{"A4"}}},
		{"Null", `SELECT count(*) FROM claude_stream WHERE ? IS NULL`, []any{nil}, [][]any{{int64(5)}}},
		{"NullMatchesNothing", `SELECT count(*) FROM claude_stream WHERE activity = ?`, []any{nil}, [][]any{{int64(0)}}},
		{"Int", `SELECT count(*) FROM claude_stream WHERE _activity_occurrence <= ?`, []any{int64(2)}, [][]any{{int64(4)}}},
		{"Float", `SELECT count(*) FROM claude_stream WHERE revenue_impact < ?`, []any{-0.025}, [][]any{{int64(3)}}},
		{"Bool", `SELECT count(*) FROM claude_stream WHERE ?`, []any{false}, [][]any{{int64(0)}}},
		{"HostileValue", `SELECT count(*) FROM claude_stream WHERE activity_id <> ?`, []any{hostile}, [][]any{{int64(5)}}},
		{"InjectionInValue", `SELECT count(*) FROM claude_stream WHERE customer = ?`, []any{"bob' OR '1'='1"}, [][]any{{int64(0)}}},
		{"OtherCustomerAsValue", `SELECT count(*) FROM claude_stream WHERE customer = ?`, []any{"bob"}, [][]any{{int64(0)}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wantRows(t, c.name, customerQuery(t, d, "alice", c.sql, c.args...), c.want)
		})
	}
	// A bound string comes back exactly.
	tab := customerQuery(t, d, "alice", `SELECT CAST(? AS VARCHAR) AS s`, hostile)
	if len(tab.Rows) != 1 || tab.Rows[0][0] != hostile {
		t.Fatalf("bound string came back as %#v", tab.Rows)
	}
	// Too few arguments is an error, not a refusal.
	_, err := d.CustomerQuery(context.Background(), "alice", `SELECT count(*) FROM claude_stream WHERE activity = ? AND ts > ?`, []any{"x"}, 0)
	var u *warehouse.UnsafeSQLError
	if err == nil || errors.As(err, &u) {
		t.Fatalf("missing argument: %v; want a plain error", err)
	}
	if s := stats(t, d); s.StreamRows != 9 {
		t.Fatalf("Stats = %+v after bound hostile values; want 9 rows", s)
	}
}

// testCustomerQueryAfterFailure: a statement that fails in any way leaves
// nothing of its customer behind for the next call.
func testCustomerQueryAfterFailure(t *testing.T, open Open) {
	d := setup(t, open)
	loadCustomers(t, d)
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	failures := []struct {
		name string
		ctx  context.Context
		sql  string
	}{
		{"RuntimeError", context.Background(), `SELECT CAST(activity AS INTEGER) FROM claude_stream`},
		{"SyntaxError", context.Background(), `SELECT FROM WHERE claude_stream`},
		{"UnknownColumn", context.Background(), `SELECT nope FROM claude_stream`},
		{"Refused", context.Background(), `SELECT * FROM main.claude_stream`},
		{"Cancelled", cancelled, `SELECT count(*) FROM claude_stream`},
	}
	for _, f := range failures {
		if _, err := d.CustomerQuery(f.ctx, "alice", f.sql, nil, 0); err == nil {
			t.Fatalf("%s: CustomerQuery succeeded; want an error", f.name)
		}
		wantRows(t, "bob after alice's "+f.name,
			customerQuery(t, d, "bob", `SELECT customer, count(*) FROM claude_stream GROUP BY customer`), [][]any{{"bob", int64(3)}})
		wantRows(t, "alice after "+f.name,
			customerQuery(t, d, "alice", `SELECT customer, count(*) FROM claude_stream GROUP BY customer`), [][]any{{"alice", int64(5)}})
	}
}

// testCustomerQueryConcurrent: goroutines alternating customers on one
// driver each only ever see their own rows.
func testCustomerQueryConcurrent(t *testing.T, open Open) {
	d := setup(t, open)
	loadCustomers(t, d)
	const goroutines, rounds = 8, 25
	want := map[string][][]any{"alice": {{"alice", int64(5)}}, "bob": {{"bob", int64(3)}}}
	var wg sync.WaitGroup
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < rounds; i++ {
				c := "alice"
				if (g+i)%2 == 1 {
					c = "bob"
				}
				q := `SELECT customer, count(*) FROM claude_stream GROUP BY customer`
				if i%3 == 0 {
					q = `SELECT c.customer, count(*) FROM claude_stream c JOIN insight_atoms i ON true GROUP BY c.customer`
				}
				tab, err := d.CustomerQuery(context.Background(), c, q, nil, 0)
				if err != nil {
					t.Errorf("goroutine %d round %d (%s): %v", g, i, c, err)
					return
				}
				if len(tab.Rows) != 1 || tab.Rows[0][0] != c {
					t.Errorf("goroutine %d round %d: %s saw %v", g, i, c, tab.Rows)
					return
				}
				if i%3 != 0 && !reflect.DeepEqual(tab.Rows, want[c]) {
					t.Errorf("goroutine %d round %d: %s saw %v, want %v", g, i, c, tab.Rows, want[c])
					return
				}
			}
		}()
	}
	wg.Wait()
}
