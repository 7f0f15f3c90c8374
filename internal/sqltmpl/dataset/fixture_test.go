package dataset

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/activitybi/activitybi/internal/event"
	"github.com/activitybi/activitybi/internal/warehouse"
	"github.com/activitybi/activitybi/internal/warehouse/duckdb"
)

// t0 is the fixture's origin; rows are placed at whole minutes after it.
var t0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

func at(min int) time.Time { return t0.Add(time.Duration(min) * time.Minute) }

type row struct {
	id, customer, activity string
	min                    int
	features               string
	revenue                *float64
}

func money(v float64) *float64 { return &v }

// The fixture stream, in the order the tests reason about it. alice's
// submitted_prompt (the usual cohort) occurs three times, so "in between"
// has three windows: (1, 10], (10, 20] and (20, ...). a15 is a called_tool
// at the same instant as the prompt a06 (before/after are strict; in
// between is (ts, next ts], so a15 belongs to a02's window). a14 is late:
// it arrives in a second load, and every later called_tool of alice moves
// up one occurrence. bob's and carol's rows interleave in time with
// alice's: a relationship that ignored the customer would pick them.
//
//	min  id   activity            features                       occ  revenue
//	  0  a01  started_session     client=desktop cwd=<hostile>    1
//	  1  a02  submitted_prompt    model=opus chars=120            1
//	  2  a03  called_tool         tool=Bash ms=300                1
//	  3  a04  called_tool         tool=Read ms=40                 2
//	  4  a05  completed_response  tokens=500 cached=false         1   -0.5
//	 10  a06  submitted_prompt    model=sonnet chars=30           2
//	 10  a15  called_tool         tool=Grep ms=15                 3
//	 11  a07  completed_response  tokens=80                       2   -0.1
//	 12  a14  called_tool         tool=Read ms=60 (late)          4
//	 20  a08  submitted_prompt    model=opus chars=400            3
//	 21  a09  called_tool         tool=Bash ms=1200               5
//	 22  a10  called_tool         tool=Edit ms=90                 6
//	 23  a11  called_tool         tool=Bash ms=500                7
//	 25  a12  completed_response  tokens=900 cached=true          3   -1.2
//	 30  a13  ended_session                                       1
//
//	  5  b01  submitted_prompt    model=haiku chars=5   (bob)
//	  6  b02  called_tool         tool=Bash ms=7        (bob)
//	 15  b03  called_tool         tool=Write ms=8       (bob)
//	 16  b04  completed_response  tokens=10  -0.01      (bob)
//	  7  c01  called_tool         tool=Bash ms=9        (carol)
var (
	fixtureFirst = []row{
		{"a01", "alice", "started_session", 0, `{"client":"desktop","cwd":"/home/o'brien/\"x\"; DROP TABLE claude_stream; --"}`, nil},
		{"a02", "alice", "submitted_prompt", 1, `{"model":"opus","chars":120}`, nil},
		{"a03", "alice", "called_tool", 2, `{"tool":"Bash","ms":300}`, nil},
		{"a04", "alice", "called_tool", 3, `{"tool":"Read","ms":40}`, nil},
		{"a05", "alice", "completed_response", 4, `{"tokens":500,"cached":false}`, money(-0.5)},
		{"a06", "alice", "submitted_prompt", 10, `{"model":"sonnet","chars":30}`, nil},
		{"a15", "alice", "called_tool", 10, `{"tool":"Grep","ms":15}`, nil},
		{"a07", "alice", "completed_response", 11, `{"tokens":80}`, money(-0.1)},
		{"a08", "alice", "submitted_prompt", 20, `{"model":"opus","chars":400}`, nil},
		{"a09", "alice", "called_tool", 21, `{"tool":"Bash","ms":1200}`, nil},
		{"a10", "alice", "called_tool", 22, `{"tool":"Edit","ms":90}`, nil},
		{"a11", "alice", "called_tool", 23, `{"tool":"Bash","ms":500}`, nil},
		{"a12", "alice", "completed_response", 25, `{"tokens":900,"cached":true}`, money(-1.2)},
		{"a13", "alice", "ended_session", 30, `{}`, nil},
		{"b01", "bob", "submitted_prompt", 5, `{"model":"haiku","chars":5}`, nil},
		{"b02", "bob", "called_tool", 6, `{"tool":"Bash","ms":7}`, nil},
		{"b03", "bob", "called_tool", 15, `{"tool":"Write","ms":8}`, nil},
		{"b04", "bob", "completed_response", 16, `{"tokens":10}`, money(-0.01)},
		{"c01", "carol", "called_tool", 7, `{"tool":"Bash","ms":9}`, nil},
	}
	fixtureLate = []row{
		{"a14", "alice", "called_tool", 12, `{"tool":"Read","ms":60}`, nil},
	}
)

func events(rows []row) []event.Event {
	evs := make([]event.Event, len(rows))
	for i, r := range rows {
		evs[i] = event.Event{ActivityID: r.id, TS: at(r.min), Customer: r.customer, Activity: r.activity,
			Features: json.RawMessage(r.features), RevenueImpact: r.revenue, ReceivedAt: at(40), Source: event.SourceMCP}
		if err := event.Validate(&evs[i], at(40)); err != nil {
			panic(err)
		}
	}
	return evs
}

// openFixture returns a migrated warehouse in t.TempDir() holding the
// fixture, loaded in two batches (the second one late), and its path.
func openFixture(tb testing.TB) (*duckdb.DB, string) {
	tb.Helper()
	ctx := context.Background()
	path := filepath.Join(tb.TempDir(), "w.duckdb")
	db, err := duckdb.Open(ctx, duckdb.Options{Path: path})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	if _, err := db.Migrate(ctx); err != nil {
		tb.Fatal(err)
	}
	for _, b := range [][]row{fixtureFirst, fixtureLate} {
		if _, err := db.Load(ctx, &warehouse.Batch{Events: events(b)}); err != nil {
			tb.Fatal(err)
		}
	}
	return db, path
}
