package memory

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

	"go.uber.org/goleak"

	"github.com/activitybi/activitybi/internal/event"
	"github.com/activitybi/activitybi/internal/memory/memorytest"
	"github.com/activitybi/activitybi/internal/warehouse"
	"github.com/activitybi/activitybi/internal/warehouse/duckdb"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	closeBig()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// openWarehouse opens a migrated DuckDB warehouse in a temporary directory.
func openWarehouse(tb testing.TB) *duckdb.DB {
	tb.Helper()
	ctx := context.Background()
	db, err := duckdb.Open(ctx, duckdb.Options{Path: filepath.Join(tb.TempDir(), "w.duckdb")})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	if _, err := db.Migrate(ctx); err != nil {
		tb.Fatal(err)
	}
	return db
}

// small fixture: the hand-made history of two customers, alice and bob,
// with a clock at smallNow. Every expected value in the golden files can
// be worked out from the lists below.
var smallNow = time.Date(2026, 3, 31, 12, 0, 0, 0, time.UTC)

func at(s string) time.Time {
	t, err := time.Parse("2006-01-02 15:04", s)
	if err != nil {
		panic(err)
	}
	return t
}

type fxEvent struct {
	ts       string
	activity string
	features string
	revenue  float64
}

type fxInsight struct {
	ts, subject, metric, value string
}

var aliceEvents = []fxEvent{
	// 40 days before smallNow: outside the 30-day window.
	{"2026-02-15 10:00", "started_session", `{"session_id":"s-old","project":"oldproj"}`, 0},
	{"2026-02-15 10:01", "called_tool", `{"session_id":"s-old","tool":"Grep","success":true,"duration_ms":5}`, 0},

	// Session s-1, by session_id, in billing.
	{"2026-03-30 09:00", "started_session", `{"session_id":"s-1","project":"billing","cwd":"/home/alice/src/billing"}`, 0},
	{"2026-03-30 09:01", "submitted_prompt", `{"session_id":"s-1","topic":"invoices"}`, 0},
	{"2026-03-30 09:02", "called_tool", `{"session_id":"s-1","tool":"Bash","server":"shell","success":true,"duration_ms":120}`, 0},
	{"2026-03-30 09:03", "called_tool", `{"session_id":"s-1","tool":"Read","server":"fs","success":true,"duration_ms":30}`, 0},
	{"2026-03-30 09:04", "called_tool", `{"session_id":"s-1","tool":"Bash","server":"shell","success":false,"duration_ms":900,"error":"exit status 1"}`, 0},
	{"2026-03-30 09:05", "completed_response", `{"session_id":"s-1","model":"claude-sonnet-4-5","input_tokens":1000,"output_tokens":200}`, -0.05},
	{"2026-03-30 09:10", "called_tool", `{"session_id":"s-1","tool":"Bash","server":"shell","success":true,"duration_ms":200}`, 0},
	{"2026-03-30 09:11", "completed_response", `{"session_id":"s-1","model":"claude-sonnet-4-5","input_tokens":500,"output_tokens":100}`, -0.03},

	// Two sessions without a session_id, split by a 60-minute pause; the
	// first names the website project, the second nothing.
	{"2026-03-31 08:00", "started_session", `{"project":"website"}`, 0},
	{"2026-03-31 08:05", "called_tool", `{"tool":"Edit","server":"fs","success":true,"duration_ms":50}`, 0},
	{"2026-03-31 08:20", "called_tool", `{"tool":"WebFetch","server":"fetch","success":false}`, 0},
	{"2026-03-31 08:30", "completed_response", `{"model":"claude-sonnet-4-5"}`, -0.02},
	{"2026-03-31 09:30", "submitted_prompt", `{"topic":"tests"}`, 0},
	{"2026-03-31 09:31", "called_tool", `{"tool":"Bash","server":"shell","duration_ms":30000,"error":"timeout after 30s"}`, 0},
	{"2026-03-31 09:40", "completed_response", `{"model":"claude-haiku-4-5"}`, -0.01},
}

var aliceInsights = []fxInsight{
	{"2026-02-01 10:00", "user", "prefers_language", `"python"`},
	{"2026-03-01 10:00", "user", "prefers_language", `"go"`},
	{"2026-03-10 10:00", "user", "editor", `"vim"`},
	{"2026-03-20 10:00", "project:billing", "deploy_cmd", `"make deploy"`},
	{"2026-03-21 10:00", "project:website", "framework", `"hugo"`},
	// 500 is before the window (2026-03-01 12:00): counted, not trended.
	{"2026-02-01 10:00", "tool:Bash", "p95_latency_ms", `500`},
	{"2026-03-05 10:00", "tool:Bash", "p95_latency_ms", `400`},
	{"2026-03-15 10:00", "tool:Bash", "p95_latency_ms", `450`},
	{"2026-03-25 10:00", "tool:Bash", "p95_latency_ms", `600`},
	{"2026-03-10 10:00", "tool:Read", "p95_latency_ms", `100`},
	{"2026-03-20 10:00", "tool:Read", "p95_latency_ms", `100.5`},
	{"2026-03-10 10:00", "tool:Edit", "error_rate", `0.2`},
	{"2026-03-28 10:00", "tool:Edit", "error_rate", `0.1`},
	{"2026-03-29 10:00", "model:claude-sonnet-4-5", "latency_ms", `{"p50":900,"p95":2400}`},
	{"2026-03-30 10:00", "cost", "daily_usd", `1.25`},
}

// bob uses a project named billing too, and his own names everywhere else:
// none of "bob", "Secret" or "secret" may appear in alice's context.
var bobEvents = []fxEvent{
	{"2026-03-31 10:00", "started_session", `{"session_id":"bob-s","project":"billing"}`, 0},
	{"2026-03-31 10:01", "called_tool", `{"session_id":"bob-s","tool":"SecretTool","server":"bobserver","success":false,"error":"bob-secret-error"}`, 0},
	{"2026-03-31 10:02", "completed_response", `{"session_id":"bob-s","model":"bob-model"}`, -9.99},
	{"2026-03-31 11:00", "started_session", `{"project":"secret-proj"}`, 0},
}

var bobInsights = []fxInsight{
	{"2026-03-31 10:00", "user", "prefers_language", `"bob-lang"`},
	{"2026-03-31 10:00", "project:billing", "deploy_cmd", `"bob secret deploy"`},
	{"2026-03-31 10:00", "project:secret-proj", "owner", `"bob"`},
	{"2026-03-31 10:00", "tool:SecretTool", "p95_latency_ms", `1`},
	{"2026-03-31 11:00", "tool:SecretTool", "p95_latency_ms", `99`},
}

func normalizeEvents(tb testing.TB, customer string, fx []fxEvent, now time.Time) []event.Event {
	tb.Helper()
	out := make([]event.Event, 0, len(fx))
	for i, f := range fx {
		ts := at(f.ts)
		in := event.Input{
			ActivityID: fmt.Sprintf("%s-%03d", customer, i), TS: &ts,
			Activity: f.activity, Features: json.RawMessage(f.features),
		}
		if f.revenue != 0 {
			r := f.revenue
			in.RevenueImpact = &r
		}
		e, err := event.Normalize(in, event.Defaults{Customer: customer, Source: event.SourceMCP, Now: func() time.Time { return now }})
		if err != nil {
			tb.Fatalf("event %d: %v", i, err)
		}
		out = append(out, e)
	}
	return out
}

func normalizeInsights(tb testing.TB, customer string, fx []fxInsight, now time.Time) []event.Insight {
	tb.Helper()
	out := make([]event.Insight, 0, len(fx))
	for i, f := range fx {
		ts := at(f.ts)
		x, err := event.NormalizeInsight(event.InsightInput{
			AtomID: fmt.Sprintf("%s-i%03d", customer, i), TS: &ts,
			Subject: f.subject, Metric: f.metric, Value: json.RawMessage(f.value),
		}, event.Defaults{Customer: customer, Source: event.SourceMCP, Now: func() time.Time { return now }})
		if err != nil {
			tb.Fatalf("insight %d: %v", i, err)
		}
		out = append(out, x)
	}
	return out
}

// smallFixture is a warehouse holding alice's and bob's histories, loaded
// in two batches (bob's first, so that neither customer's rows are all
// "first" in the table).
func smallFixture(tb testing.TB) *duckdb.DB {
	tb.Helper()
	db := openWarehouse(tb)
	ctx := context.Background()
	for _, b := range []*warehouse.Batch{
		{Events: normalizeEvents(tb, "bob", bobEvents, smallNow), Insights: normalizeInsights(tb, "bob", bobInsights, smallNow)},
		{Events: normalizeEvents(tb, "alice", aliceEvents, smallNow), Insights: normalizeInsights(tb, "alice", aliceInsights, smallNow)},
	} {
		if _, err := db.Load(ctx, b); err != nil {
			tb.Fatal(err)
		}
	}
	return db
}

// newBuilder is a Builder on w with the small fixture's clock.
func newBuilder(tb testing.TB, w Querier, mod func(*Options)) *Builder {
	tb.Helper()
	o := Options{Warehouse: w, Now: func() time.Time { return smallNow }}
	if mod != nil {
		mod(&o)
	}
	b, err := NewBuilder(o)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// The big fixture (memorytest.WriteBig): one customer ("big") with 1M
// events over the year before bigNow and 10,000 insight atoms, beside a
// small customer ("other"); built once per test binary and shared
// read-only.
const (
	bigEvents   = memorytest.BigEvents
	bigInsights = memorytest.BigInsights
)

var bigNow = memorytest.BigNow

var (
	bigOnce sync.Once
	bigDB   *duckdb.DB
	bigDir  string
	bigErr  error
	bigTook time.Duration
)

// bigFixture returns the shared big warehouse, building it on first use.
func bigFixture(tb testing.TB) *duckdb.DB {
	tb.Helper()
	bigOnce.Do(func() {
		start := time.Now()
		bigDB, bigDir, bigErr = buildBig()
		bigTook = time.Since(start)
	})
	if bigErr != nil {
		tb.Fatal(bigErr)
	}
	return bigDB
}

func buildBig() (*duckdb.DB, string, error) {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "memory-big-*")
	if err != nil {
		return nil, "", err
	}
	path := filepath.Join(dir, "big.duckdb")
	if err := memorytest.WriteBig(ctx, path); err != nil {
		return nil, dir, err
	}
	db, err := duckdb.Open(ctx, duckdb.Options{Path: path})
	return db, dir, err
}

func closeBig() {
	if bigDB != nil {
		bigDB.Close()
	}
	if bigDir != "" {
		os.RemoveAll(bigDir)
	}
}

// bigBuilder is a Builder on the big fixture with its clock.
func bigBuilder(tb testing.TB, mod func(*Options)) *Builder {
	tb.Helper()
	o := Options{Warehouse: bigFixture(tb), Now: func() time.Time { return bigNow }}
	if mod != nil {
		mod(&o)
	}
	b, err := NewBuilder(o)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}
