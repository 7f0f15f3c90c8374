package duckdb

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/activitybi/activitybi/internal/event"
	"github.com/activitybi/activitybi/internal/warehouse"
)

func init() {
	// -update rewrites golden files. Registered here only if no other
	// test file of the package did (package variables initialise before
	// any init runs, so a `var update = flag.Bool(...)` elsewhere wins).
	if flag.Lookup("update") == nil {
		flag.Bool("update", false, "rewrite the golden files in testdata/")
	}
}

func updating() bool {
	f := flag.Lookup("update")
	return f != nil && f.Value.String() == "true"
}

var auditT0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func auditRow(id string, at time.Time, principal, customer, action, outcome string) event.Audit {
	return event.Audit{AuditID: id, At: at, Principal: principal, Customer: customer, Action: action,
		Target: "t-" + id, Rows: 1, Bytes: 10, DurationMS: 2, Outcome: outcome, Detail: "detail " + id,
		ReceivedAt: at, Source: event.SourceCLI}
}

// TestAuditLoadedOnce: audit rows commit with their batch's offsets; the
// same batch loaded again (a retry after a COMMIT whose outcome was unknown)
// adds nothing, and an id repeated within a batch is stored once.
func TestAuditLoadedOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := setup(t)
	analyst := auditRow("A1", auditT0, "analyst:alice", "", event.ActionRanSQL, event.OutcomeOK)
	analyst.Target, analyst.Detail = "", ""
	b := &warehouse.Batch{
		Audit: []event.Audit{analyst,
			auditRow("A2", auditT0.Add(time.Second), "tok_1", "bob", event.ActionGotContext, event.OutcomeOK),
			auditRow("A2", auditT0.Add(time.Hour), "tok_9", "bob", event.ActionGotContext, event.OutcomeError)},
		Offsets: []warehouse.Offset{{Segment: "s1", Offset: 300, Records: 3}},
	}
	res, err := db.Load(ctx, b)
	if err != nil || res.AuditInserted != 2 {
		t.Fatalf("Load = %+v, %v; want 2 audit rows in", res, err)
	}
	res, err = db.Load(ctx, b)
	if err != nil || res.AuditInserted != 0 {
		t.Fatalf("Load again = %+v, %v; want nothing new", res, err)
	}
	tab, err := db.Query(ctx, `SELECT audit_id, "at", principal, customer_id, action, target, rows, bytes, duration_ms,
    outcome, detail, _received_at, _source FROM audit_log ORDER BY audit_id`, 0)
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprint(tab.Rows)
	want := "[[A1 2026-03-01 12:00:00 +0000 UTC analyst:alice <nil> ran_sql <nil> 1 10 2 ok <nil> 2026-03-01 12:00:00 +0000 UTC cli]" +
		" [A2 2026-03-01 12:00:01 +0000 UTC tok_1 bob got_context t-A2 1 10 2 ok detail A2 2026-03-01 12:00:01 +0000 UTC cli]]"
	if got != want {
		t.Fatalf("audit_log\n got %s\nwant %s", got, want)
	}
	offs, err := db.Offsets(ctx)
	if err != nil || offs["s1"].Offset != 300 {
		t.Fatalf("offsets %v, %v", offs, err)
	}
}

// TestAuditRolledBackWithBatch: audit rows of a batch that fails after
// they went in are not kept, and the retried batch stores them once.
func TestAuditRolledBackWithBatch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := setup(t)
	b := &warehouse.Batch{
		Events:  []event.Event{testEvent("bob", "called_tool", "e1", auditT0)},
		Audit:   []event.Audit{auditRow("A1", auditT0, "tok_1", "bob", event.ActionFetchedResult, event.OutcomeOK)},
		Offsets: []warehouse.Offset{{Segment: "s", Offset: 10, Records: 2}},
	}
	boom := errors.New("boom")
	db.testHookAfterInsert = func() error { return boom }
	if _, err := db.Load(ctx, b); !errors.Is(err, boom) {
		t.Fatalf("Load with failing hook: %v", err)
	}
	db.testHookAfterInsert = nil
	if n := countAudit(t, db); n != 0 {
		t.Fatalf("%d audit rows after a rolled-back load", n)
	}
	if res, err := db.Load(ctx, b); err != nil || res.AuditInserted != 1 || res.Inserted != 1 {
		t.Fatalf("retry = %+v, %v", res, err)
	}
	if n := countAudit(t, db); n != 1 {
		t.Fatalf("%d audit rows after the retry; want 1", n)
	}
}

func countAudit(t *testing.T, db *DB) int64 {
	t.Helper()
	tab, err := db.Query(context.Background(), `SELECT count(*) FROM audit_log`, 0)
	if err != nil {
		t.Fatal(err)
	}
	return tab.Rows[0][0].(int64)
}

// TestAuditHiddenFromOtherCustomers: a customer's connection sees its own
// audit rows only, never another customer's nor the analyst's.
func TestAuditHiddenFromOtherCustomers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := setup(t)
	if _, err := db.Load(ctx, &warehouse.Batch{Audit: []event.Audit{
		auditRow("A1", auditT0, "analyst:root", "", event.ActionRanSQL, event.OutcomeOK),
		auditRow("A2", auditT0, "tok_1", "bob", event.ActionGotContext, event.OutcomeOK),
		auditRow("A3", auditT0, "tok_2", "carol", event.ActionGotContext, event.OutcomeOK),
	}}); err != nil {
		t.Fatal(err)
	}
	tab, err := db.CustomerQuery(ctx, "bob", `SELECT audit_id FROM audit_log ORDER BY 1`, nil, 0)
	if err != nil || fmt.Sprint(tab.Rows) != "[[A2]]" {
		t.Fatalf("bob sees %v, %v; want only A2", tab, err)
	}
}

// loadAuditFixture stores a small log: 3 principals, 2 customers and the
// analyst, every action and outcome used below, one row per minute, plus
// a row whose values are SQL injection payloads.
func loadAuditFixture(t *testing.T, db *DB) {
	t.Helper()
	var rows []event.Audit
	for i := range 30 {
		customer := []string{"alice", "bob", ""}[i%3]
		action := event.ActionGotContext
		if customer == "" {
			action = event.ActionRanSQL
		}
		outcome := event.OutcomeOK
		if i%5 == 0 {
			outcome = event.OutcomeRefused
		}
		rows = append(rows, auditRow(fmt.Sprintf("R%02d", i), auditT0.Add(time.Duration(i)*time.Minute),
			[]string{"tok_a", "tok_b", "analyst:root"}[i%3], customer, action, outcome))
	}
	evil := auditRow("EVIL", auditT0.Add(-time.Hour), `x' OR '1'='1`, `bob'; DROP TABLE audit_log; --`,
		event.ActionFetchedResult, event.OutcomeOK)
	evil.Target = `"); SELECT * FROM claude_stream; --`
	rows = append(rows, evil)
	if _, err := db.Load(context.Background(), &warehouse.Batch{Audit: rows}); err != nil {
		t.Fatal(err)
	}
}

func ids(tab *warehouse.Table) string {
	var out []string
	for _, r := range tab.Rows {
		out = append(out, r[10].(string))
	}
	return strings.Join(out, ",")
}

func TestAuditFilters(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := setup(t)
	loadAuditFixture(t, db)
	min := func(n int) time.Time { return auditT0.Add(time.Duration(n) * time.Minute) }
	cases := map[string]struct {
		f         warehouse.AuditFilter
		want      string
		truncated bool
	}{
		"newest first, limited": {warehouse.AuditFilter{Limit: 3}, "R29,R28,R27", true},
		"since inclusive":       {warehouse.AuditFilter{Since: min(27)}, "R29,R28,R27", false},
		"until exclusive":       {warehouse.AuditFilter{Until: min(1)}, "R00,EVIL", false},
		"window":                {warehouse.AuditFilter{Since: min(10), Until: min(13)}, "R12,R11,R10", false},
		"customer":              {warehouse.AuditFilter{Customer: "alice", Since: min(20)}, "R27,R24,R21", false},
		"principal":             {warehouse.AuditFilter{Principal: "analyst:root", Limit: 2}, "R29,R26", true},
		"action":                {warehouse.AuditFilter{Action: event.ActionRanSQL, Until: min(6)}, "R05,R02", false},
		"outcome":               {warehouse.AuditFilter{Outcome: event.OutcomeRefused}, "R25,R20,R15,R10,R05,R00", false},
		"target":                {warehouse.AuditFilter{Target: "t-R07"}, "R07", false},
		"all at once":           {warehouse.AuditFilter{Customer: "bob", Principal: "tok_b", Action: event.ActionGotContext, Outcome: event.OutcomeOK, Since: min(4), Until: min(8)}, "R07,R04", false},
		"nothing":               {warehouse.AuditFilter{Customer: "nobody"}, "", false},
		// Values are bound: a payload matches only a row holding
		// exactly that text, and changes no statement.
		"injected customer":  {warehouse.AuditFilter{Customer: `bob'; DROP TABLE audit_log; --`}, "EVIL", false},
		"injected principal": {warehouse.AuditFilter{Principal: `x' OR '1'='1`}, "EVIL", false},
		"injected target":    {warehouse.AuditFilter{Target: `"); SELECT * FROM claude_stream; --`}, "EVIL", false},
		"or-true is text":    {warehouse.AuditFilter{Customer: `' OR 1=1 --`}, "", false},
	}
	for name, tc := range cases {
		tab, err := db.Audit(ctx, tc.f)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if got := ids(tab); got != tc.want || tab.Truncated != tc.truncated {
			t.Errorf("%s: got %q truncated=%v; want %q truncated=%v", name, got, tab.Truncated, tc.want, tc.truncated)
		}
	}
	if n := countAudit(t, db); n != 31 {
		t.Fatalf("%d rows after the listings; want 31", n)
	}
	tab, err := db.Audit(ctx, warehouse.AuditFilter{Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	var cols []string
	for _, c := range tab.Columns {
		cols = append(cols, c.Name)
	}
	if strings.Join(cols, ",") != strings.Join(warehouse.AuditColumns, ",") {
		t.Fatalf("columns %v; want %v", cols, warehouse.AuditColumns)
	}
}

func TestAuditFilterRefused(t *testing.T) {
	t.Parallel()
	db := setup(t)
	for name, tc := range map[string]struct {
		f    warehouse.AuditFilter
		want string
	}{
		"negative limit":  {warehouse.AuditFilter{Limit: -1}, "limit -1: must be between 1 and 100000 (0 = 100)"},
		"limit too large": {warehouse.AuditFilter{Limit: warehouse.MaxAuditLimit + 1}, "limit 100001"},
		"empty window":    {warehouse.AuditFilter{Since: auditT0, Until: auditT0}, "since 2026-03-01T12:00:00Z is not before until"},
		"unknown action":  {warehouse.AuditFilter{Action: "ran_sq"}, `action "ran_sq": not a known action (known: cancelled_query`},
		"unknown outcome": {warehouse.AuditFilter{Outcome: "OK"}, `outcome "OK": not one of ok, refused`},
		"long principal":  {warehouse.AuditFilter{Principal: strings.Repeat("p", 256)}, "principal: is 256 characters; the limit is 255"},
		"bad utf-8":       {warehouse.AuditFilter{Target: "\xff"}, "target: is not valid UTF-8"},
		"control":         {warehouse.AuditFilter{Customer: "a\nb"}, "customer: contains control characters"},
	} {
		_, err := db.Audit(context.Background(), tc.f)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "audit filter: ") {
			t.Errorf("%s: error %v; want it to contain %q", name, err, tc.want)
		}
	}
}

// TestAuditSQLGolden: the statements a listing runs, with their arguments.
// No filter value appears in the text. Run with -update to rewrite.
func TestAuditSQLGolden(t *testing.T) {
	t.Parallel()
	for name, f := range map[string]warehouse.AuditFilter{
		"none": {},
		"all": {Since: auditT0, Until: auditT0.Add(time.Hour), Customer: "bob'--", Principal: "analyst:eve", Action: event.ActionRanSQL,
			Outcome: event.OutcomeOK, Target: "9f86d081884c7d65", Limit: 5},
		"customer": {Customer: "alice"},
	} {
		q, args := auditSQL(f)
		got := q + "\n-- args: " + fmt.Sprintf("%#v", args) + "\n"
		path := filepath.Join("testdata", "audit", name+".sql")
		if updating() {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%s: %v (run with -update to create it)", name, err)
		}
		if got != string(want) {
			t.Errorf("%s: statement\n%s\nwant\n%s", name, got, want)
		}
		for _, v := range []string{f.Customer, f.Principal, f.Target} {
			if v != "" && strings.Contains(q, v) {
				t.Errorf("%s: value %q is in the statement text", name, v)
			}
		}
	}
}

// TestMigration3KeepsAuditRows: a warehouse at version 2 holding audit rows
// (nothing wrote them then, but the table existed) is rebuilt keyed by
// audit_id without losing or changing a row.
func TestMigration3KeepsAuditRows(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openTest(t, Options{})
	ms, err := loadMigrations(migrationFS)
	if err != nil {
		t.Fatal(err)
	}
	c := db.writer
	for _, q := range []string{createMigrationsTable, ms[0].sql, ms[1].sql,
		`INSERT INTO schema_migrations VALUES (1, now()::TIMESTAMP), (2, now()::TIMESTAMP)`,
		`INSERT INTO audit_log VALUES (TIMESTAMP '2026-01-01 00:00:00.000001', 'analyst:a', NULL, 'ran_sql', 'abc', 1, 2, 3, 'ok', 'SELECT 1')`,
	} {
		if _, err := c.ExecContext(ctx, q); err != nil {
			t.Fatalf("%.60s: %v", q, err)
		}
	}
	applied, err := db.Migrate(ctx)
	if err != nil || len(applied) == 0 || applied[0] != 3 {
		t.Fatalf("Migrate from version 2 = %v, %v", applied, err)
	}
	tab, err := db.Query(ctx, `SELECT audit_id LIKE 'migrated-%', "at", principal, customer_id, action, target, rows, bytes,
    duration_ms, outcome, detail, _received_at, _source FROM audit_log`, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(tab.Rows); got != "[[true 2026-01-01 00:00:00.000001 +0000 UTC analyst:a <nil> ran_sql abc 1 2 3 ok SELECT 1 <nil> <nil>]]" {
		t.Fatalf("rows after migration %s", got)
	}
	var pk string
	err = db.sqlDB.QueryRowContext(ctx, `SELECT constraint_column_names::VARCHAR FROM duckdb_constraints()
WHERE table_name = 'audit_log' AND constraint_type = 'PRIMARY KEY'`).Scan(&pk)
	if err != nil || pk != "[audit_id]" {
		t.Fatalf("audit_log primary key %q, %v", pk, err)
	}
}
