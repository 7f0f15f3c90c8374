package duckdb

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/activitybi/activitybi/internal/event"
	"github.com/activitybi/activitybi/internal/warehouse"
)

// readContext reads a customer's row the way the memory store does: through
// CustomerQuery, so only that customer's rows are visible.
func readContext(t *testing.T, db *DB, customer, scope string) (string, int64, time.Time, bool) {
	t.Helper()
	tab, err := db.CustomerQuery(context.Background(), customer,
		`SELECT context::VARCHAR, version, updated_at FROM context_cache WHERE scope = ?`, []any{scope}, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(tab.Rows) == 0 {
		return "", 0, time.Time{}, false
	}
	if len(tab.Rows) > 1 {
		t.Fatalf("%d rows for one (customer, scope)", len(tab.Rows))
	}
	r := tab.Rows[0]
	return r[0].(string), r[1].(int64), r[2].(time.Time), true
}

func TestPutContext(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := setup(t)
	t0 := time.Date(2026, 5, 1, 12, 0, 0, 123456789, time.UTC)
	put := func(customer, scope, body string, version int64, at time.Time) bool {
		t.Helper()
		ok, err := db.PutContext(ctx, warehouse.ContextRow{Customer: customer, Scope: scope,
			Context: json.RawMessage(body), Version: version, UpdatedAt: at})
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if !put("alice", "", `{"facts":["a1"]}`, 1, t0) || !put("bob", "", `{"facts":["b1"]}`, 1, t0) || !put("alice", "proj", `{"facts":["ap"]}`, 7, t0) {
		t.Fatal("first writes must be written")
	}
	// Newer replaces; older or equal does not (a slow build finishing late).
	if !put("alice", "", `{"facts":["a2"]}`, 2, t0.Add(time.Second)) {
		t.Fatal("a newer row was not written")
	}
	if put("alice", "", `{"facts":["old"]}`, 3, t0) || put("alice", "", `{"facts":["same"]}`, 3, t0.Add(time.Second)) {
		t.Fatal("an older or equally old row replaced a newer one")
	}
	body, v, at, ok := readContext(t, db, "alice", "")
	if !ok || body != `{"facts":["a2"]}` || v != 2 || !at.Equal(t0.Add(time.Second).Truncate(time.Microsecond)) {
		t.Fatalf("alice's row = %q v%d %s %v", body, v, at, ok)
	}
	if body, _, _, _ := readContext(t, db, "bob", ""); body != `{"facts":["b1"]}` {
		t.Fatalf("bob's row = %q", body)
	}
	if body, v, _, _ := readContext(t, db, "alice", "proj"); body != `{"facts":["ap"]}` || v != 7 {
		t.Fatalf("alice's proj row = %q v%d", body, v)
	}
	// A customer sees only its own rows, whatever the scope.
	if _, _, _, ok := readContext(t, db, "carol", ""); ok {
		t.Fatal("carol sees a row")
	}
	for name, r := range map[string]warehouse.ContextRow{
		"no time":     {Customer: "a", Context: json.RawMessage(`{}`), Version: 1},
		"not json":    {Customer: "a", Context: json.RawMessage(`{`), Version: 1, UpdatedAt: t0},
		"no customer": {Context: json.RawMessage(`{}`), Version: 1, UpdatedAt: t0},
	} {
		if _, err := db.PutContext(ctx, r); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestCustomerActivity(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := setup(t)
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	var evs []event.Event
	add := func(customer string, n int, last time.Time) {
		for i := range n {
			evs = append(evs, testEvent(customer, "called_tool", fmt.Sprintf("%s-%d", customer, i), last.Add(-time.Duration(i)*time.Minute)))
		}
	}
	add("recent", 5, now.Add(-time.Hour))
	add("older", 3, now.Add(-10*24*time.Hour))
	add("", 2, now) // anonymous-only rows: no customer
	evs[len(evs)-1].AnonymousCustomerID, evs[len(evs)-2].AnonymousCustomerID = "anon", "anon"
	ins := []event.Insight{
		{AtomID: "1", TS: now.Add(-30 * 24 * time.Hour), Customer: "insightful", Subject: "user", Metric: "m",
			Value: json.RawMessage(`1`), ReceivedAt: now.Add(-2 * time.Hour), Source: event.SourceMCP},
		{AtomID: "2", TS: now.Add(-40 * 24 * time.Hour), Customer: "older", Subject: "user", Metric: "m",
			Value: json.RawMessage(`2`), ReceivedAt: now.Add(-40 * 24 * time.Hour), Source: event.SourceMCP},
	}
	if _, err := db.Load(ctx, &warehouse.Batch{Events: evs, Insights: ins}); err != nil {
		t.Fatal(err)
	}
	got, err := db.CustomerActivity(ctx, now.Add(-24*time.Hour), nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := []warehouse.CustomerActivity{
		{Customer: "recent", Events: 5, LastEvent: now.Add(-time.Hour)},
		// an old insight received recently is recent activity
		{Customer: "insightful", Insights: 1, LastInsight: now.Add(-2 * time.Hour)},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("active in the last day:\n got %+v\nwant %+v", got, want)
	}
	// also names customers whatever their activity; unknown ones are absent.
	got, err = db.CustomerActivity(ctx, now.Add(-24*time.Hour), []string{"older", "nobody"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[2].Customer != "older" || got[2].Events != 3 || got[2].Insights != 1 ||
		!got[2].LastEvent.Equal(now.Add(-10*24*time.Hour)) {
		t.Fatalf("with also: %+v", got)
	}
	// limit keeps the most recent.
	got, err = db.CustomerActivity(ctx, time.Time{}, nil, 1)
	if err != nil || len(got) != 1 || got[0].Customer != "recent" {
		t.Fatalf("limit 1: %+v %v", got, err)
	}
	// A new event moves the counts: that is how the store tells a change.
	if _, err := db.Load(ctx, &warehouse.Batch{Events: []event.Event{testEvent("recent", "called_tool", "new", now)}}); err != nil {
		t.Fatal(err)
	}
	got, _ = db.CustomerActivity(ctx, now.Add(-time.Minute), nil, 0)
	if len(got) != 1 || got[0].Events != 6 || !got[0].LastEvent.Equal(now) {
		t.Fatalf("after a new event: %+v", got)
	}
}
