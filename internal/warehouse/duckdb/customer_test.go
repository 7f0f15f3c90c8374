package duckdb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/activitybi/activitybi/internal/event"
	"github.com/activitybi/activitybi/internal/warehouse"
)

var ct0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// loadTwo loads n events for each of the customers and one quarantined
// record.
func loadTwo(t *testing.T, db *DB, n map[string]int) {
	t.Helper()
	var evs []event.Event
	for c, k := range n {
		for i := 0; i < k; i++ {
			evs = append(evs, testEvent(c, "called_tool", fmt.Sprintf("%s-%d", c, i), ct0.Add(time.Duration(i)*time.Second)))
		}
	}
	_, err := db.Load(context.Background(), &warehouse.Batch{Events: evs,
		Quarantine: []warehouse.QuarantineRecord{{Segment: "s", Offset: 1, Reason: "bad", Raw: []byte("x")}}})
	if err != nil {
		t.Fatal(err)
	}
}

func scalar(t *testing.T, conn *sql.Conn, q string, args ...any) any {
	t.Helper()
	var v any
	if err := conn.QueryRowContext(context.Background(), q, args...).Scan(&v); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return v
}

// TestCustomerConnectionShadows looks inside a customer connection: every
// table of the main schema has a temp view of the same name, an unqualified
// name resolves to the view (DuckDB searches the temp catalog first), the
// views follow the connection's variable and are empty without it.
func TestCustomerConnectionShadows(t *testing.T) {
	t.Parallel()
	db := setup(t)
	loadTwo(t, db, map[string]int{"alice": 3, "bob": 2})
	ctx := context.Background()
	conn, err := db.customerConn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	var main, temp []string
	rows, err := conn.QueryContext(ctx, `SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main' AND NOT temporary ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var s string
		rows.Scan(&s)
		main = append(main, s)
	}
	rows.Close()
	rows, err = conn.QueryContext(ctx, `SELECT view_name FROM duckdb_views() WHERE temporary AND NOT internal ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var s string
		rows.Scan(&s)
		temp = append(temp, s)
	}
	rows.Close()
	if len(main) < 10 || !reflect.DeepEqual(main, temp) {
		t.Fatalf("main tables %v\ntemp views  %v; want one view per table", main, temp)
	}

	cat := scalar(t, conn, `SELECT current_database()`).(string)
	qualified := fmt.Sprintf(`SELECT count(*) FROM %s.main.claude_stream`, quoteIdent(cat))
	// Without the variable the views are empty (fail closed).
	if n := scalar(t, conn, `SELECT count(*) FROM claude_stream`); n != int64(0) {
		t.Fatalf("unset customer: claude_stream has %v rows; want 0", n)
	}
	if _, err := conn.ExecContext(ctx, setCustomer, "alice"); err != nil {
		t.Fatal(err)
	}
	if n := scalar(t, conn, `SELECT count(*) FROM claude_stream`); n != int64(3) {
		t.Fatalf("alice: unqualified claude_stream has %v rows; want 3 (the temp view)", n)
	}
	// The table behind it is all there: the name resolved to the view.
	if n := scalar(t, conn, qualified); n != int64(5) {
		t.Fatalf("%s = %v; want 5", qualified, n)
	}
	if n := scalar(t, conn, `SELECT count(*) FROM upload_quarantine`); n != int64(0) {
		t.Fatalf("upload_quarantine view has %v rows; want 0", n)
	}
	// The filter is pushed into the scan as a constant, as a literal would be.
	var plan strings.Builder
	rows, err = conn.QueryContext(ctx, `EXPLAIN SELECT count(*) FROM claude_stream`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var k, v string
		rows.Scan(&k, &v)
		plan.WriteString(v)
	}
	rows.Close()
	if !strings.Contains(plan.String(), "customer='alice'") {
		t.Errorf("plan does not filter the scan on customer='alice':\n%s", plan.String())
	}
	if _, err := conn.ExecContext(ctx, resetCustomer); err != nil {
		t.Fatal(err)
	}
	// The same qualified name is refused through CustomerQuery, in every spelling.
	for _, q := range []string{qualified, fmt.Sprintf(`SELECT count(*) FROM %s.claude_stream`, cat),
		fmt.Sprintf(`SELECT * FROM claude_stream WHERE customer IN (SELECT customer FROM %s.main.claude_stream)`, cat)} {
		_, err := db.CustomerQuery(ctx, "alice", q, nil, 0)
		var u *warehouse.UnsafeSQLError
		if !errors.As(err, &u) {
			t.Errorf("CustomerQuery(%q): %v; want a refusal", q, err)
		}
	}
}

// TestCustomerQueryPoolOfOne runs customers one after another on a single
// connection, each after a failure of the previous one: nothing of the
// previous customer survives, and the connection is unset between calls.
func TestCustomerQueryPoolOfOne(t *testing.T) {
	t.Parallel()
	db := openTest(t, Options{QueryTimeout: 300 * time.Millisecond})
	if _, err := db.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	db.custMu.Lock()
	db.cust.SetMaxOpenConns(1)
	db.custMu.Unlock()
	loadTwo(t, db, map[string]int{"alice": 3, "bob": 2})
	who := `SELECT customer, count(*) FROM claude_stream GROUP BY customer`
	expect := func(c string, n int64) {
		t.Helper()
		tab, err := db.CustomerQuery(context.Background(), c, who, nil, 0)
		if err != nil {
			t.Fatalf("%s: %v", c, err)
		}
		if want := [][]any{{c, n}}; !reflect.DeepEqual(tab.Rows, want) {
			t.Fatalf("%s saw %v; want %v", c, tab.Rows, want)
		}
	}
	unset := func(after string) {
		t.Helper()
		conn, err := db.customerConn(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if v := scalar(t, conn, `SELECT getvariable('`+customerVariable+`')`); v != nil {
			t.Fatalf("after %s the idle connection's customer is %v; want unset", after, v)
		}
		if n := scalar(t, conn, `SELECT count(*) FROM claude_stream`); n != int64(0) {
			t.Fatalf("after %s the idle connection sees %v rows", after, n)
		}
	}
	failures := []struct {
		name string
		ctx  func() (context.Context, context.CancelFunc)
		sql  string
	}{
		{"RuntimeError", background, `SELECT CAST(activity AS INTEGER) FROM claude_stream`},
		{"ErrorFunction", background, `SELECT error('boom ' || customer) FROM claude_stream`},
		{"UnknownColumn", background, `SELECT nope FROM claude_stream`},
		{"SyntaxError", background, `SELECT FROM WHERE`},
		{"Refused", background, `SELECT * FROM main.claude_stream`},
		{"Timeout", background, `SELECT count(*) FROM claude_stream, range(10000000000000) r`},
		{"CancelledMidway", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 50*time.Millisecond)
		}, `SELECT count(*) FROM claude_stream, range(10000000000000) r`},
	}
	expect("alice", 3)
	unset("alice")
	for _, f := range failures {
		ctx, cancel := f.ctx()
		_, err := db.CustomerQuery(ctx, "alice", f.sql, nil, 0)
		cancel()
		if err == nil {
			t.Fatalf("%s: succeeded; want an error", f.name)
		}
		unset(f.name)
		expect("bob", 2)
		unset("bob")
		expect("alice", 3)
	}
	if n := db.cust.Stats().OpenConnections; n > 1 {
		t.Fatalf("%d customer connections open; want at most 1", n)
	}
}

func background() (context.Context, context.CancelFunc) {
	return context.WithCancel(context.Background())
}

// TestCustomerQueryBinds covers DuckDB-specific bindings: lists, and a
// timestamp bound in a time zone other than UTC.
func TestCustomerQueryBinds(t *testing.T) {
	t.Parallel()
	db := setup(t)
	loadTwo(t, db, map[string]int{"alice": 4, "bob": 2})
	ctx := context.Background()
	cases := []struct {
		name, sql string
		args      []any
		want      any
	}{
		{"ListContains", `SELECT count(*) FROM claude_stream WHERE list_contains(?, activity_id)`, []any{[]string{"alice-0", "alice-2", "bob-0"}}, int64(2)},
		{"Any", `SELECT count(*) FROM claude_stream WHERE activity_id = ANY(?)`, []any{[]any{"alice-1", "bob-1"}}, int64(1)},
		{"LocalTime", `SELECT count(*) FROM claude_stream WHERE ts >= ?`, []any{ct0.Add(2 * time.Second).In(time.FixedZone("X", 9*3600))}, int64(2)},
		{"Int32", `SELECT count(*) FROM claude_stream WHERE _activity_occurrence = ?`, []any{int32(4)}, int64(1)},
	}
	for _, c := range cases {
		tab, err := db.CustomerQuery(ctx, "alice", c.sql, c.args, 0)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if tab.Rows[0][0] != c.want {
			t.Errorf("%s: %v; want %v", c.name, tab.Rows[0][0], c.want)
		}
	}
}

// TestCustomerQueryMigrate: before the schema exists a customer table's name
// fails (it never reaches anything unfiltered); after Migrate the renewed
// pool shadows the new tables.
func TestCustomerQueryMigrate(t *testing.T) {
	t.Parallel()
	db := openTest(t, Options{})
	ctx := context.Background()
	_, err := db.CustomerQuery(ctx, "alice", `SELECT count(*) FROM claude_stream`, nil, 0)
	if err == nil || !strings.Contains(err.Error(), "migrated") {
		t.Fatalf("CustomerQuery before Migrate: %v; want an error naming migrations", err)
	}
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	loadTwo(t, db, map[string]int{"alice": 1, "bob": 2})
	tab, err := db.CustomerQuery(ctx, "alice", `SELECT count(*) FROM claude_stream`, nil, 0)
	if err != nil || tab.Rows[0][0] != int64(1) {
		t.Fatalf("after Migrate: %+v, %v; want 1", tab, err)
	}
}

// TestCustomerQueryReadOnly: a read-only warehouse (a second process) has
// customer connections too; temp views live outside the file.
func TestCustomerQueryReadOnly(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "w.duckdb")
	db, err := Open(ctx, Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	loadTwo(t, db, map[string]int{"alice": 1, "bob": 2})
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	ro := openTest(t, Options{Path: path, ReadOnly: true})
	tab, err := ro.CustomerQuery(ctx, "bob", `SELECT customer, count(*) FROM claude_stream GROUP BY customer`, nil, 0)
	if err != nil || !reflect.DeepEqual(tab.Rows, [][]any{{"bob", int64(2)}}) {
		t.Fatalf("read-only CustomerQuery: %+v, %v", tab, err)
	}
}

// TestCustomerQueryOddDatabaseName: the views name the database, whose name
// comes from the file name; quotes in it are quoted.
func TestCustomerQueryOddDatabaseName(t *testing.T) {
	t.Parallel()
	db := openTest(t, Options{Path: filepath.Join(t.TempDir(), `my "wh"; DROP TABLE x.duckdb`)})
	if _, err := db.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	loadTwo(t, db, map[string]int{"alice": 2, "bob": 1})
	tab, err := db.CustomerQuery(context.Background(), "alice", `SELECT count(*) FROM claude_stream`, nil, 0)
	if err != nil || tab.Rows[0][0] != int64(2) {
		t.Fatalf("CustomerQuery: %+v, %v", tab, err)
	}
}

// TestCustomerCheckCache: a statement that passed is not parsed again; a
// refused one is never cached, and analyst statements are not cached.
func TestCustomerCheckCache(t *testing.T) {
	t.Parallel()
	db := setup(t)
	ctx := context.Background()
	ok := `SELECT count(*) FROM claude_stream`
	bad := `SELECT count(*) FROM main.claude_stream`
	for i := 0; i < 2; i++ {
		if _, err := db.CustomerQuery(ctx, "alice", ok, nil, 0); err != nil {
			t.Fatal(err)
		}
		if _, err := db.CustomerQuery(ctx, "alice", bad, nil, 0); err == nil {
			t.Fatal("refused statement ran")
		}
		if _, err := db.Query(ctx, `SELECT 42`, 0); err != nil {
			t.Fatal(err)
		}
	}
	if !db.checked.has(ok) || db.checked.has(bad) || db.checked.has(`SELECT 42`) {
		t.Fatalf("cache %v", db.checked.ok)
	}
	var c checkedCache
	for i := 0; i < checkedCacheSize+10; i++ {
		c.add(fmt.Sprint(i))
	}
	if len(c.ok) > checkedCacheSize {
		t.Fatalf("cache grew to %d", len(c.ok))
	}
}

// TestCustomerQueryLiterals: list, struct, map and row literals and AT TIME
// ZONE are written by DuckDB's parser as main-qualified functions; a customer
// query may use them. A function qualified by the statement itself is still
// refused, unless it is one of those.
func TestCustomerQueryLiterals(t *testing.T) {
	t.Parallel()
	db := setup(t)
	loadTwo(t, db, map[string]int{"alice": 3, "bob": 2})
	ctx := context.Background()
	ok := []struct {
		name, sql string
		want      any
	}{
		{"List", `SELECT len([1, 2, 3]) + count(*) FROM claude_stream`, int64(6)},
		{"Quantiles", `SELECT len(quantile_cont(_activity_occurrence, [0.5, 0.95])) FROM claude_stream`, int64(2)},
		{"Struct", `SELECT max({'n': _activity_occurrence}.n) FROM claude_stream`, int64(3)},
		{"Map", `SELECT (MAP {'a': 7})['a'] FROM claude_stream LIMIT 1`, int64(7)},
		{"RowIn", `SELECT count(*) FROM claude_stream WHERE (customer, activity) IN (SELECT customer, activity FROM claude_stream)`, int64(3)},
		{"AtTimeZone", `SELECT count(ts AT TIME ZONE 'UTC') FROM claude_stream`, int64(3)},
	}
	for _, c := range ok {
		tab, err := db.CustomerQuery(ctx, "alice", c.sql, nil, 0)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if got := tab.Rows[0][0]; got != c.want {
			t.Errorf("%s: %v (%T); want %v", c.name, got, got, c.want)
		}
	}
	for _, q := range []string{
		`SELECT main.len([1]) FROM claude_stream`,
		`SELECT system.main.list_value(1) FROM claude_stream`,
	} {
		_, err := db.CustomerQuery(ctx, "alice", q, nil, 0)
		var u *warehouse.UnsafeSQLError
		if !errors.As(err, &u) || !strings.Contains(err.Error(), "qualified") {
			t.Errorf("%s: %v; want a refusal of the qualified function", q, err)
		}
	}
}
