package duckdb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/activitybi/activitybi/internal/event"
	"github.com/activitybi/activitybi/internal/warehouse"
	"github.com/activitybi/activitybi/internal/warehouse/warehousetest"
)

// openTest opens a fresh warehouse in t.TempDir(), closed on cleanup.
func openTest(t *testing.T, opts Options) *DB {
	t.Helper()
	if opts.Path == "" {
		opts.Path = filepath.Join(t.TempDir(), "wh", "warehouse.duckdb")
	}
	db, err := Open(context.Background(), opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return db
}

func setup(t *testing.T) *DB {
	t.Helper()
	db := openTest(t, Options{})
	if _, err := db.Migrate(context.Background()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return db
}

func TestConformance(t *testing.T) {
	warehousetest.Run(t, func(t *testing.T) warehouse.Driver {
		return openTest(t, Options{})
	})
}

func TestThreadsFor(t *testing.T) {
	for _, c := range []struct{ ncpu, want int }{{0, 1}, {1, 1}, {2, 1}, {3, 2}, {8, 7}, {64, 63}} {
		if got := warehouse.ThreadsFor(c.ncpu); got != c.want {
			t.Errorf("ThreadsFor(%d) = %d, want %d", c.ncpu, got, c.want)
		}
	}
	// The pools keep at least the size they had with the old fixed 2
	// threads: a query's calling thread runs it even without workers.
	for _, c := range []struct{ threads, want int }{{1, 4}, {2, 4}, {7, 9}} {
		if got := poolConns(c.threads); got != c.want {
			t.Errorf("poolConns(%d) = %d, want %d", c.threads, got, c.want)
		}
	}
}

func TestOpenOptions(t *testing.T) {
	t.Parallel()
	if _, err := Open(context.Background(), Options{}); err == nil || !strings.Contains(err.Error(), "Path is required") {
		t.Fatalf("Open without a path: %v", err)
	}
	dir := filepath.Join(t.TempDir(), "a", "b")
	db := openTest(t, Options{Path: filepath.Join(dir, "w.duckdb")})
	fi, err := os.Stat(dir)
	if err != nil || fi.Mode().Perm() != dirMode {
		t.Fatalf("warehouse dir: %v, %v; want mode %o", fi.Mode(), err, dirMode)
	}
	var ext, locked, mem, threads string
	err = db.sqlDB.QueryRow(`SELECT current_setting('enable_external_access')::VARCHAR, current_setting('lock_configuration')::VARCHAR,
       current_setting('memory_limit')::VARCHAR, current_setting('threads')::VARCHAR`).Scan(&ext, &locked, &mem, &threads)
	if err != nil {
		t.Fatal(err)
	}
	if ext != "false" || locked != "true" || threads != strconv.Itoa(warehouse.ThreadsFor(runtime.NumCPU())) || !strings.HasPrefix(mem, "488") && !strings.HasPrefix(mem, "512") {
		t.Fatalf("settings external=%s locked=%s memory=%s threads=%s (NumCPU %d)", ext, locked, mem, threads, runtime.NumCPU())
	}
	// An explicit thread count is honoured, above and below the default.
	for _, n := range []int{1, 3} {
		db := openTest(t, Options{Path: filepath.Join(t.TempDir(), "w.duckdb"), Threads: n})
		var got string
		if err := db.sqlDB.QueryRow(`SELECT current_setting('threads')::VARCHAR`).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != strconv.Itoa(n) {
			t.Fatalf("Threads %d: DuckDB runs with threads=%s", n, got)
		}
	}
	// No connection can turn external access back on.
	if _, err := db.sqlDB.Exec(`SET enable_external_access = true`); err == nil {
		t.Fatal("SET enable_external_access succeeded on a locked configuration")
	}
	// Opening the same file twice in one process is refused.
	if _, err := Open(context.Background(), Options{Path: db.Path()}); err == nil || !strings.Contains(err.Error(), "already open in this process") {
		t.Fatalf("second Open in the same process: %v", err)
	}
}

// TestLockedByAnotherProcess opens the warehouse here and then, in a helper
// process (this test binary re-executed), opens it again.
func TestLockedByAnotherProcess(t *testing.T) {
	t.Parallel()
	db := setup(t)
	out, err := helper(t, "open", db.Path())
	if err == nil {
		t.Fatalf("helper opened a locked warehouse: %s", out)
	}
	want := "warehouse " + db.Path() + " is locked by another process (is `activitybi serve` running?)"
	if !strings.Contains(out, want) || !strings.Contains(out, "LockedError") {
		t.Fatalf("helper output %q; want %q as a *LockedError", out, want)
	}
	// A read-only open is refused too while a process writes.
	if out, err := helper(t, "readonly", db.Path()); err == nil || !strings.Contains(out, "is locked by another process") {
		t.Fatalf("read-only open of a locked warehouse: %v: %s", err, out)
	}
}

func TestReadOnly(t *testing.T) {
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
	e := testEvent("alice", "called_tool", "A1", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	if _, err := db.Load(ctx, &warehouse.Batch{Events: []event.Event{e}}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	// Another process reads while nobody writes.
	out, err := helper(t, "readonly", path)
	if err != nil || !strings.Contains(out, "rows=1") {
		t.Fatalf("read-only helper: %v: %s", err, out)
	}
	// And so can this one; writes are refused.
	ro := openTest(t, Options{Path: path, ReadOnly: true})
	tab, err := ro.Query(ctx, "SELECT count(*) FROM claude_stream", 0)
	if err != nil || tab.Rows[0][0] != int64(1) {
		t.Fatalf("read-only Query: %+v, %v", tab, err)
	}
	if _, err := ro.Load(ctx, &warehouse.Batch{Events: []event.Event{e}}); err == nil || !strings.Contains(err.Error(), "read-only") {
		t.Fatalf("Load on a read-only warehouse: %v", err)
	}
	if _, err := ro.Migrate(ctx); err == nil {
		t.Fatal("Migrate on a read-only warehouse succeeded")
	}
}

// helper runs this test binary as a helper process; see TestHelperProcess.
func helper(t *testing.T, mode, path string) (string, error) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), "WAREHOUSE_HELPER="+mode, "WAREHOUSE_PATH="+path)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestHelperProcess(t *testing.T) {
	mode := os.Getenv("WAREHOUSE_HELPER")
	if mode == "" {
		t.Skip("helper process only")
	}
	path := os.Getenv("WAREHOUSE_PATH")
	db, err := Open(context.Background(), Options{Path: path, ReadOnly: mode == "readonly"})
	if err != nil {
		var le *LockedError
		fmt.Printf("open failed: %v (LockedError=%v)\n", err, errors.As(err, &le))
		if errors.As(err, &le) {
			fmt.Println("LockedError")
		}
		os.Exit(3)
	}
	defer db.Close()
	s, err := db.Stats(context.Background())
	if err != nil {
		fmt.Println("stats:", err)
		os.Exit(4)
	}
	fmt.Printf("rows=%d\n", s.StreamRows)
}

func testEvent(customer, activity, id string, ts time.Time) event.Event {
	return event.Event{ActivityID: id, TS: ts, Customer: customer, Activity: activity,
		Features: json.RawMessage(`{"k":1}`), ReceivedAt: ts, Source: event.SourceMCP}
}

// TestLoadRollsBackAfterInsert fails a load after its rows went in, with
// late and in-order rows, quarantine and offsets, and checks that nothing of
// it stays and the driver keeps loading correctly.
func TestLoadRollsBackAfterInsert(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := setup(t)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	first := []event.Event{testEvent("a", "called_tool", "2", t0), testEvent("a", "called_tool", "3", t0.Add(time.Hour))}
	if _, err := db.Load(ctx, &warehouse.Batch{Events: first}); err != nil {
		t.Fatal(err)
	}
	second := &warehouse.Batch{
		Events: []event.Event{testEvent("a", "called_tool", "1", t0.Add(-time.Hour)), testEvent("a", "called_tool", "4", t0.Add(2*time.Hour))},
		Insights: []event.Insight{{AtomID: "I1", TS: t0, Customer: "a", Subject: "user", Metric: "m",
			Value: json.RawMessage(`1`), ReceivedAt: t0, Source: event.SourceMCP}},
		Quarantine: []warehouse.QuarantineRecord{{Segment: "s", Offset: 1, Reason: "x"}},
		Offsets:    []warehouse.Offset{{Segment: "s", Offset: 9, Records: 3}},
	}
	boom := errors.New("boom")
	db.testHookAfterInsert = func() error { return boom }
	if _, err := db.Load(ctx, second); !errors.Is(err, boom) {
		t.Fatalf("Load with failing hook: %v", err)
	}
	db.testHookAfterInsert = nil
	s, err := db.Stats(ctx)
	if err != nil || s.StreamRows != 2 || s.InsightRows != 0 || s.QuarantineRows != 0 || s.Segments != 0 {
		t.Fatalf("after a rolled-back load: %+v, %v", s, err)
	}
	if _, err := db.Load(ctx, second); err != nil {
		t.Fatal(err)
	}
	tab, err := db.Query(ctx, `SELECT activity_id, _activity_occurrence, _activity_repeated_at FROM claude_stream ORDER BY ts`, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range tab.Rows {
		if r[0] != fmt.Sprint(i+1) || r[1] != int64(i+1) {
			t.Fatalf("row %d = %v", i, r)
		}
	}
}

func TestQueryTimeout(t *testing.T) {
	t.Parallel()
	db := openTest(t, Options{QueryTimeout: 200 * time.Millisecond})
	start := time.Now()
	_, err := db.Query(context.Background(), `SELECT count(*) FROM range(1000000000000) a`, 0)
	if err == nil || !strings.Contains(err.Error(), "timeout") {
		t.Fatalf("long query: %v; want a timeout", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("interrupt took %s", d)
	}
	// The connection pool is still usable.
	if _, err := db.Query(context.Background(), `SELECT 1`, 0); err != nil {
		t.Fatalf("query after timeout: %v", err)
	}
}

func TestQueryValues(t *testing.T) {
	t.Parallel()
	db := openTest(t, Options{})
	tab, err := db.Query(context.Background(), `SELECT 1::TINYINT AS i8, 2::HUGEINT AS h, 1.5::DECIMAL(4,2) AS d,
  'x'::BLOB AS b, [1, 2] AS l, {'a': 1} AS s, '{"k":[1]}'::JSON AS j, DATE '2026-01-02' AS dt,
  TIMESTAMP '2026-01-02 03:04:05.123456' AS ts, NULL AS n, true AS ok, 2.5::FLOAT AS f,
  gen_random_uuid() IS NOT NULL AS u`, 0)
	if err != nil {
		t.Fatal(err)
	}
	r := tab.Rows[0]
	checks := []struct {
		i    int
		want any
	}{
		{0, int64(1)}, {1, int64(2)}, {2, 1.5}, {3, "x"}, {10, true}, {11, 2.5}, {9, nil},
	}
	for _, c := range checks {
		if fmt.Sprintf("%#v", r[c.i]) != fmt.Sprintf("%#v", c.want) {
			t.Errorf("column %s = %#v, want %#v", tab.Columns[c.i].Name, r[c.i], c.want)
		}
	}
	if l, ok := r[4].([]any); !ok || len(l) != 2 || l[0] != int64(1) {
		t.Errorf("list = %#v", r[4])
	}
	if j, ok := r[6].(map[string]any); !ok || fmt.Sprint(j["k"]) != "[1]" {
		t.Errorf("json = %#v", r[6])
	}
	if ts, ok := r[8].(time.Time); !ok || ts.Nanosecond() != 123456000 {
		t.Errorf("timestamp = %#v", r[8])
	}
	if tab.Columns[8].Type != "TIMESTAMP" || tab.Columns[0].Type != "TINYINT" {
		t.Errorf("column types %+v", tab.Columns)
	}
}

func TestLoadMigrations(t *testing.T) {
	t.Parallel()
	ms, err := loadMigrations(migrationFS)
	if err != nil || len(ms) == 0 || ms[0].version != 1 {
		t.Fatalf("embedded migrations: %v, %v", ms, err)
	}
	bad := map[string]fstest.MapFS{
		"BadName": {"migrations/1_init.sql": {Data: []byte("SELECT 1")}},
		"Gap":     {"migrations/0001_a.sql": {}, "migrations/0003_c.sql": {}},
		"Dup":     {"migrations/0001_a.sql": {}, "migrations/0001_b.sql": {}},
	}
	for name, fsys := range bad {
		if _, err := loadMigrations(fsys); err == nil {
			t.Errorf("%s: loadMigrations succeeded", name)
		}
	}
}

func TestPlanOccurrences(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	mk := func(c, a, id string, m int) *event.Event {
		e := testEvent(c, a, id, t0.Add(time.Duration(m)*time.Minute))
		return &e
	}
	evs := []*event.Event{
		mk("a", "x_y", "3", 3), mk("a", "x_y", "2", 2), // in order after stored (1, "1")
		mk("b", "x_y", "1", 1), // new partition
		mk("c", "x_y", "0", 0), // late: stored last is at minute 5
	}
	before := map[partKey]partState{
		{"a", "x_y"}: {n: 1, firstTS: t0.Add(time.Minute), lastTS: t0.Add(time.Minute), lastID: "1"},
		{"c", "x_y"}: {n: 2, firstTS: t0.Add(4 * time.Minute), lastTS: t0.Add(5 * time.Minute), lastID: "9"},
	}
	p := planOccurrences(evs, before)
	if p.rows[0].occ != 3 || !p.rows[0].rep.IsZero() || p.rows[1].occ != 2 || !p.rows[1].rep.Equal(t0.Add(3*time.Minute)) {
		t.Errorf("partition a: %+v %+v", p.rows[0], p.rows[1])
	}
	if p.rows[2].occ != 1 || p.rows[3].occ != 0 {
		t.Errorf("b: %+v, c: %+v", p.rows[2], p.rows[3])
	}
	if len(p.prevLast) != 1 || p.prevLast[0].activityID != "1" || !p.prevLast[0].rep.Equal(t0.Add(2*time.Minute)) {
		t.Errorf("prevLast %+v", p.prevLast)
	}
	if len(p.late) != 1 || p.late[0].key.customer != "c" || !p.late[0].lower.Equal(t0) || p.late[0].nBefore != 2 {
		t.Errorf("late %+v", p.late)
	}
	if s := p.after[partKey{"c", "x_y"}]; s.n != 3 || !s.firstTS.Equal(t0) || s.lastID != "9" {
		t.Errorf("c after %+v", s)
	}
	if s := p.after[partKey{"a", "x_y"}]; s.n != 3 || s.lastID != "3" || !s.firstTS.Equal(t0.Add(time.Minute)) {
		t.Errorf("a after %+v", s)
	}
}

// TestReadersDuringLoads runs queries while loads commit: readers use their
// own connections and see committed data only.
func TestReadersDuringLoads(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := setup(t)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	done := make(chan struct{})
	errc := make(chan error, 2)
	for r := 0; r < 2; r++ {
		go func() {
			var last int64
			for {
				select {
				case <-done:
					errc <- nil
					return
				default:
				}
				tab, err := db.Query(ctx, "SELECT count(*), count(DISTINCT _activity_occurrence) FROM claude_stream", 0)
				if err != nil {
					errc <- err
					return
				}
				n := tab.Rows[0][0].(int64)
				if n%100 != 0 || n < last {
					errc <- fmt.Errorf("saw %d rows after %d: a partial or reverted batch", n, last)
					return
				}
				last = n
			}
		}()
	}
	for b := 0; b < 20; b++ {
		var evs []event.Event
		for i := 0; i < 100; i++ {
			n := b*100 + i
			evs = append(evs, testEvent("a", "called_tool", fmt.Sprintf("%05d", n), t0.Add(time.Duration(n)*time.Second)))
		}
		if _, err := db.Load(ctx, &warehouse.Batch{Events: evs}); err != nil {
			t.Fatal(err)
		}
	}
	close(done)
	for r := 0; r < 2; r++ {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
}

// TestQueryPivot: a PIVOT without an IN list is several statements to DuckDB
// and is refused with a way out; with the values listed, in a subquery, it
// runs.
func TestQueryPivot(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := setup(t)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, err := db.Load(ctx, &warehouse.Batch{Events: []event.Event{
		testEvent("a", "called_tool", "1", t0), testEvent("a", "started_session", "2", t0),
	}}); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		"PIVOT claude_stream ON activity USING count(*) GROUP BY customer",
		"SELECT * FROM (PIVOT claude_stream ON activity USING count(*) GROUP BY customer)",
	} {
		_, err := db.Query(ctx, q, 0)
		var u *warehouse.UnsafeSQLError
		if !errors.As(err, &u) || !strings.Contains(u.Reason, "IN ('a', 'b')") {
			t.Fatalf("%s: %v", q, err)
		}
	}
	tab, err := db.Query(ctx, `SELECT * FROM (PIVOT claude_stream ON activity IN ('called_tool', 'started_session')
USING count(*) GROUP BY customer)`, 0)
	if err != nil || len(tab.Rows) != 1 || len(tab.Columns) != 3 {
		t.Fatalf("PIVOT subquery: %+v, %v", tab, err)
	}
}

// TestLoadCancelledMidway cancels the load's context after its rows went
// in: the statements after it fail, the transaction is rolled back, and the
// driver keeps loading.
func TestLoadCancelledMidway(t *testing.T) {
	t.Parallel()
	db := setup(t)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	b := &warehouse.Batch{
		Events:     []event.Event{testEvent("a", "called_tool", "1", t0), testEvent("a", "called_tool", "2", t0.Add(time.Second))},
		Quarantine: []warehouse.QuarantineRecord{{Segment: "s", Offset: 1, Reason: "x"}},
		Offsets:    []warehouse.Offset{{Segment: "s", Offset: 9, Records: 3}},
	}
	ctx, cancel := context.WithCancel(context.Background())
	db.testHookAfterInsert = func() error { cancel(); return nil }
	if _, err := db.Load(ctx, b); !errors.Is(err, context.Canceled) {
		t.Fatalf("Load cancelled midway: %v; want context.Canceled", err)
	}
	db.testHookAfterInsert = nil
	s, err := db.Stats(context.Background())
	if err != nil || s.StreamRows != 0 || s.QuarantineRows != 0 || s.Segments != 0 {
		t.Fatalf("after a cancelled load: %+v, %v", s, err)
	}
	res, err := db.Load(context.Background(), b)
	if err != nil || res.Inserted != 2 || res.Quarantined != 1 {
		t.Fatalf("Load after a cancelled one: %+v, %v", res, err)
	}
}

// TestInsightValueStoredVerbatim: the JSON text of an insight value is
// stored byte for byte as the event package compacted it (the conformance
// suite compares decoded values, which would hide a rewrite such as 12.50
// becoming 12.5).
func TestInsightValueStoredVerbatim(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := setup(t)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	values := []string{`12.50`, `12345678901234567890`, `1e3`, `"\u00e9<&>"`, `{"b":1,"a":[true,null]}`, `false`}
	var xs []event.Insight
	for i, v := range values {
		xs = append(xs, event.Insight{AtomID: fmt.Sprint(i), TS: t0, Customer: "c", Subject: "user", Metric: "m",
			Value: json.RawMessage(v), ReceivedAt: t0, Source: event.SourceMCP})
	}
	if res, err := db.Load(ctx, &warehouse.Batch{Insights: xs}); err != nil || res.InsightsInserted != len(values) {
		t.Fatalf("Load = %+v, %v", res, err)
	}
	tab, err := db.Query(ctx, `SELECT value::VARCHAR, provenance_query_hash IS NULL FROM insight_atoms ORDER BY atom_id`, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range values {
		if tab.Rows[i][0] != v || tab.Rows[i][1] != true {
			t.Errorf("value %d stored as %v (hash NULL: %v); want %s", i, tab.Rows[i][0], tab.Rows[i][1], v)
		}
	}
}

// TestMigration2KeepsInsights: a warehouse at version 1 holding insights is
// migrated to the per-customer key without losing or changing a row.
func TestMigration2KeepsInsights(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openTest(t, Options{})
	ms, err := loadMigrations(migrationFS)
	if err != nil {
		t.Fatal(err)
	}
	c := db.writer
	for _, q := range []string{createMigrationsTable, ms[0].sql,
		`INSERT INTO schema_migrations VALUES (1, now()::TIMESTAMP)`,
		`INSERT INTO insight_atoms (atom_id, customer_id, subject, metric, value, provenance_query_hash, ts, _verified, _received_at)
		 VALUES ('A', 'alice', 'user', 'm', '12.50', '0123456789abcdef', TIMESTAMP '2026-01-01 00:00:00.000001', true, TIMESTAMP '2026-01-01 00:00:01'),
		        ('B', 'bob', 'tool:Bash', 'n', '{"k":1}', NULL, TIMESTAMP '2026-01-02 00:00:00', false, NULL)`,
	} {
		if _, err := c.ExecContext(ctx, q); err != nil {
			t.Fatalf("%.60s: %v", q, err)
		}
	}
	applied, err := db.Migrate(ctx)
	if err != nil || len(applied) == 0 || applied[0] != 2 {
		t.Fatalf("Migrate from version 1 = %v, %v", applied, err)
	}
	const sel = `SELECT atom_id, customer_id, subject, metric, value::VARCHAR, provenance_query_hash, ts, _verified, _received_at, _source
FROM insight_atoms ORDER BY atom_id`
	tab, err := db.Query(ctx, sel, 0)
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprint(tab.Rows)
	want := "[[A alice user m 12.50 0123456789abcdef 2026-01-01 00:00:00.000001 +0000 UTC true 2026-01-01 00:00:01 +0000 UTC <nil>]" +
		" [B bob tool:Bash n {\"k\":1} <nil> 2026-01-02 00:00:00 +0000 UTC false <nil> <nil>]]"
	if got != want {
		t.Fatalf("rows after migration\n got %s\nwant %s", got, want)
	}
	// The key is per customer now: bob may use alice's id, alice may not reuse it.
	t0 := time.Date(2026, 1, 3, 0, 0, 0, 0, time.UTC)
	x := event.Insight{AtomID: "A", TS: t0, Customer: "bob", Subject: "user", Metric: "m", Value: json.RawMessage(`1`), ReceivedAt: t0, Source: event.SourceAPI}
	y := x
	y.Customer = "alice"
	res, err := db.Load(ctx, &warehouse.Batch{Insights: []event.Insight{x, y}})
	if err != nil || res.InsightsInserted != 1 || res.InsightDuplicates != 1 {
		t.Fatalf("Load after migration = %+v, %v; want bob's A inserted, alice's a duplicate", res, err)
	}
	var pk string
	err = db.sqlDB.QueryRowContext(ctx, `SELECT constraint_column_names::VARCHAR FROM duckdb_constraints()
WHERE table_name = 'insight_atoms' AND constraint_type = 'PRIMARY KEY'`).Scan(&pk)
	if err != nil || pk != "[customer_id, atom_id]" {
		t.Fatalf("insight_atoms primary key %q, %v; want [customer_id, atom_id]", pk, err)
	}
}
