package query

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/activitybi/activitybi/internal/event"
	"github.com/activitybi/activitybi/internal/warehouse"
	"github.com/activitybi/activitybi/internal/warehouse/duckdb"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the golden file (go test -update rewrites it):\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

// The DuckDB driver is the engine's Runner and store.
var (
	_ Runner                = (*duckdb.DB)(nil)
	_ warehouse.TicketStore = (*duckdb.DB)(nil)
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// fixture is what the test warehouse holds: per customer, per activity,
// how many events.
var fixture = map[string]map[string]int{
	"alice": {"called_tool": 1500, "submitted_prompt": 400, "started_session": 7},
	"bob":   {"called_tool": 30, "completed_response": 5},
}

// openWarehouse opens a migrated DuckDB in t.TempDir() holding fixture.
func openWarehouse(t testing.TB) *duckdb.DB {
	t.Helper()
	ctx := context.Background()
	db, err := duckdb.Open(ctx, duckdb.Options{Path: filepath.Join(t.TempDir(), "w.duckdb")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	var evs []event.Event
	for customer, acts := range fixture {
		for act, n := range acts {
			for i := range n {
				ts := t0.Add(time.Duration(i) * time.Second)
				evs = append(evs, event.Event{ActivityID: fmt.Sprintf("%s-%s-%05d", customer, act, i), TS: ts,
					Customer: customer, Activity: act, ReceivedAt: ts, Source: event.SourceMCP,
					Features: json.RawMessage(fmt.Sprintf(`{"tool":"t%d","duration_ms":%d}`, i%7, 10+i%300))})
			}
		}
	}
	if _, err := db.Load(ctx, &warehouse.Batch{Events: evs}); err != nil {
		t.Fatal(err)
	}
	return db
}

// Templates of the test compiler. Each is a statement over the customer's
// rows (or, for the slow and wide ones, over range()).
var templates = map[string]struct {
	sql     string
	timeout time.Duration
}{
	// by_activity counts the customer's events per activity.
	"by_activity": {sql: `SELECT activity, count(*) AS n FROM claude_stream GROUP BY ALL ORDER BY activity`},
	// count_of counts one activity (params: {"activity": "..."}).
	"count_of": {sql: `SELECT count(*) AS n FROM claude_stream WHERE activity = ?`},
	// events lists every event with some padding: alice's 1907 rows are
	// about 600 KB, over the tests' 64 KiB cap.
	"events": {sql: `SELECT activity_id, ts, activity, feature_json->>'tool' AS tool, repeat('x', 200) AS pad FROM claude_stream ORDER BY ts, activity_id`},
	// wide has more rows than MaxResultRows.
	"wide": {sql: `SELECT range AS i, range % 97 AS g FROM range(300000)`},
	// slow runs for minutes unless stopped.
	"slow": {sql: `SELECT count(*) AS n FROM range(100000000000) r, claude_stream c WHERE (r.range + c._activity_occurrence) % 7 = 3`, timeout: 10 * time.Minute},
	// broken fails in the warehouse.
	"broken": {sql: `SELECT no_such_column FROM claude_stream`},
}

// compile is the test compiler: templates by name; params are an object
// whose canonical form (encoding/json sorts keys) goes into the key.
func compile(req Request, now time.Time) (*Compiled, error) {
	if req.Dataset != nil {
		return nil, fmt.Errorf("%w: this test compiler has no datasets", ErrInvalidRequest)
	}
	tp, ok := templates[req.Template]
	if !ok {
		return nil, fmt.Errorf("%w: no template %q", ErrInvalidRequest, req.Template)
	}
	params := map[string]any{}
	if len(req.Params) > 0 {
		if err := json.Unmarshal(req.Params, &params); err != nil {
			return nil, fmt.Errorf("%w: params: %v", ErrInvalidRequest, err)
		}
	}
	canon, _ := json.Marshal(params)
	c := &Compiled{SQL: tp.sql, Timeout: tp.timeout, Name: req.Template, Key: []byte(req.Template + "\x00" + string(canon))}
	if req.Template == "count_of" {
		act, _ := params["activity"].(string)
		if act == "" {
			return nil, fmt.Errorf("%w: count_of needs params.activity, a string", ErrInvalidRequest)
		}
		c.Args = []any{act}
	}
	if d, ok := params["timeout_ms"].(float64); ok {
		c.Timeout = time.Duration(d) * time.Millisecond
	}
	return c, nil
}

// bundle is what a test gets besides the engine.
type bundle struct {
	db    *duckdb.DB
	reg   *prometheus.Registry
	dir   string
	mu    sync.Mutex
	audit []AuditEntry
}

func (b *bundle) audits() []AuditEntry {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]AuditEntry(nil), b.audit...)
}

// newEngine makes an engine over db with test defaults (a 64 KiB cap,
// generous budgets) and opts on top; it does not run it.
func newEngine(t testing.TB, db *duckdb.DB, opts Options) (*Engine, *bundle) {
	t.Helper()
	b := &bundle{db: db, reg: prometheus.NewRegistry(), dir: filepath.Join(t.TempDir(), "results")}
	if opts.Runner == nil {
		opts.Runner = db
	}
	if opts.Compile == nil {
		opts.Compile = compile
	}
	if opts.Dir == "" {
		opts.Dir = b.dir
	}
	b.dir = opts.Dir
	if opts.ResultCap == 0 {
		opts.ResultCap = 64 << 10
	}
	if opts.Budget == (Budget{}) {
		opts.Budget = Budget{PerMinute: 1000, Concurrent: 1000, EngineSecondsPerDay: 100000}
	}
	if opts.Registry == nil {
		opts.Registry = b.reg
	}
	if opts.Audit == nil {
		opts.Audit = func(a AuditEntry) {
			b.mu.Lock()
			b.audit = append(b.audit, a)
			b.mu.Unlock()
		}
	}
	e, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return e, b
}

// run runs e until the test ends (and waits for Run to return).
func run(t testing.TB, e *Engine) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// setup is a running engine over a fresh fixture warehouse.
func setup(t *testing.T, opts Options) (*Engine, *bundle) {
	t.Helper()
	db := openWarehouse(t)
	if opts.Store == nil {
		opts.Store = db
	}
	e, b := newEngine(t, db, opts)
	run(t, e)
	return e, b
}

func submit(t testing.TB, e *Engine, customer, template string, params string) *Ticket {
	t.Helper()
	req := Request{Template: template}
	if params != "" {
		req.Params = json.RawMessage(params)
	}
	tk, err := e.Submit(context.Background(), customer, "test", req)
	if err != nil {
		t.Fatalf("Submit %s: %v", template, err)
	}
	return tk
}

// waitFinal waits (up to 30 s) for a final state.
func waitFinal(t testing.TB, e *Engine, customer, id string) *Ticket {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		tk, err := e.Wait(context.Background(), customer, id, 5*time.Second, nil)
		if err != nil {
			t.Fatalf("Wait %s: %v", id, err)
		}
		if tk.State.Final() {
			return tk
		}
		if time.Now().After(deadline) {
			t.Fatalf("ticket %s still %s (%s)", id, tk.State, tk.Stage)
		}
	}
}

// waitState polls until the ticket is in state s.
func waitState(t testing.TB, e *Engine, customer, id string, s State) *Ticket {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		tk, err := e.Status(context.Background(), customer, id)
		if err != nil {
			t.Fatal(err)
		}
		if tk.State == s {
			return tk
		}
		if tk.State.Final() || time.Now().After(deadline) {
			t.Fatalf("ticket %s is %s (%s), want %s", id, tk.State, tk.Error, s)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// allRows pages through a result.
func allRows(t testing.TB, e *Engine, customer, id string, limit int) (*Page, [][]any) {
	t.Helper()
	var rows [][]any
	var first *Page
	for off := 0; off >= 0; {
		p, err := e.Result(context.Background(), customer, id, off, limit)
		if err != nil {
			t.Fatal(err)
		}
		if first == nil {
			first = p
		}
		if p.NextOffset >= 0 && p.NextOffset != off+len(p.Rows) {
			t.Fatalf("page at %d with %d rows says next %d", off, len(p.Rows), p.NextOffset)
		}
		rows = append(rows, p.Rows...)
		off = p.NextOffset
	}
	return first, rows
}
