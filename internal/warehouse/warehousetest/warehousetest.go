// Package warehousetest is the conformance suite every warehouse.Driver must
// pass (the pattern of River's riverdrivertest). A driver's own tests call
// Run with a function that opens a fresh, empty, unmigrated warehouse.
//
// The suite only speaks the Driver interface and plain SQL through Query and
// CustomerQuery, so it imports no driver: the same assertions hold the
// embedded DuckDB driver and the Snowflake driver to one contract.
package warehousetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/activitybi/activitybi/internal/event"
	"github.com/activitybi/activitybi/internal/warehouse"
)

// Open returns a fresh, empty, unmigrated warehouse. It closes the driver
// with t.Cleanup.
type Open func(t *testing.T) warehouse.Driver

// Run runs the whole suite. Subtests run in parallel, each on its own
// warehouse.
func Run(t *testing.T, open func(t *testing.T) warehouse.Driver) {
	tests := []struct {
		name string
		fn   func(t *testing.T, open Open)
	}{
		{"MigrateIdempotent", testMigrate},
		{"LoadInserts", testLoadInserts},
		{"DedupWithinBatch", testDedupWithinBatch},
		{"DedupAcrossBatches", testDedupAcrossBatches},
		{"SameIDTwoCustomers", testSameIDTwoCustomers},
		{"OccurrenceInOrder", testOccurrenceInOrder},
		{"OccurrenceLateAndTies", testOccurrenceLateAndTies},
		{"OccurrenceRandomized", testOccurrenceRandomized},
		{"Quarantine", testQuarantine},
		{"FailingLoadCommitsNothing", testFailingLoad},
		{"InsightsStored", testInsightsStored},
		{"InsightsRetryStoresNothingTwice", testInsightsRetry},
		{"InsightSameIDTwoCustomers", testInsightSameIDTwoCustomers},
		{"InsightDedupWithinBatch", testInsightDedupWithinBatch},
		{"MixedBatchIsAtomic", testMixedBatchAtomic},
		{"Offsets", testOffsets},
		{"QueryRefusesUnsafe", testQueryRefusesUnsafe},
		{"QueryAnswers", testQueryAnswers},
		{"CustomerQueryIsolates", testCustomerQueryIsolates},
		{"CustomerQueryRefuses", testCustomerQueryRefuses},
		{"CustomerQueryInternalTables", testCustomerQueryInternalTables},
		{"CustomerQueryHostileCustomers", testCustomerQueryHostileCustomers},
		{"CustomerQueryArgs", testCustomerQueryArgs},
		{"CustomerQueryAfterFailure", testCustomerQueryAfterFailure},
		{"CustomerQueryConcurrent", testCustomerQueryConcurrent},
		{"Stats", testStats},
		{"Closed", testClosed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, open)
		})
	}
}

// setup opens and migrates a warehouse.
func setup(t *testing.T, open Open) warehouse.Driver {
	t.Helper()
	d := open(t)
	if _, err := d.Migrate(context.Background()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return d
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// ev builds a valid event.
func ev(customer, activity, id string, ts time.Time) event.Event {
	return event.Event{
		ActivityID: id,
		TS:         ts,
		Customer:   customer,
		Activity:   activity,
		Features:   json.RawMessage(`{"tool":"search"}`),
		ReceivedAt: ts.Add(time.Second),
		Source:     event.SourceMCP,
	}
}

func load(t *testing.T, d warehouse.Driver, b *warehouse.Batch) warehouse.LoadResult {
	t.Helper()
	res, err := d.Load(context.Background(), b)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return res
}

func query(t *testing.T, d warehouse.Driver, sql string) *warehouse.Table {
	t.Helper()
	tab, err := d.Query(context.Background(), sql, 0)
	if err != nil {
		t.Fatalf("Query(%q): %v", sql, err)
	}
	return tab
}

func stats(t *testing.T, d warehouse.Driver) warehouse.Stats {
	t.Helper()
	s, err := d.Stats(context.Background())
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	return s
}

func testMigrate(t *testing.T, open Open) {
	ctx := context.Background()
	d := open(t)
	if v, err := d.SchemaVersion(ctx); err != nil || v != 0 {
		t.Fatalf("SchemaVersion before Migrate = %d, %v; want 0, nil", v, err)
	}
	applied, err := d.Migrate(ctx)
	if err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	if len(applied) == 0 || applied[0] != 1 {
		t.Fatalf("first Migrate applied %v; want versions from 1", applied)
	}
	for i, v := range applied {
		if v != i+1 {
			t.Fatalf("applied %v: versions must be 1, 2, ... in order", applied)
		}
	}
	again, err := d.Migrate(ctx)
	if err != nil || len(again) != 0 {
		t.Fatalf("second Migrate = %v, %v; want nothing applied", again, err)
	}
	v, err := d.SchemaVersion(ctx)
	if err != nil || v != applied[len(applied)-1] {
		t.Fatalf("SchemaVersion = %d, %v; want %d", v, err, applied[len(applied)-1])
	}
	// The ActivitySchema columns, exactly, in order, then ours.
	tab := query(t, d, `SELECT activity_id, ts, customer, activity, anonymous_customer_id, feature_json,
       revenue_impact, link, _activity_occurrence, _activity_repeated_at, _received_at, _source
FROM claude_stream`)
	if len(tab.Columns) != 12 || len(tab.Rows) != 0 {
		t.Fatalf("claude_stream: %d columns, %d rows; want 12 columns, no rows", len(tab.Columns), len(tab.Rows))
	}
	tab = query(t, d, selectInsights)
	if len(tab.Columns) != 10 || len(tab.Rows) != 0 {
		t.Fatalf("insight_atoms: %d columns, %d rows; want 10 columns, no rows", len(tab.Columns), len(tab.Rows))
	}
	for _, table := range []string{"insight_atoms", "context_cache", "artifacts", "query_tickets",
		"audit_log", "upload_offsets", "upload_quarantine", "schema_migrations"} {
		query(t, d, "SELECT count(*) FROM "+table)
	}
}

// streamRow is a claude_stream row as the suite reads it back.
type streamRow struct {
	ActivityID, Customer, Activity, Anon, Link, Source string
	TS, ReceivedAt                                     time.Time
	Features                                           any
	Revenue                                            any
	Occ                                                int64
	Rep                                                *time.Time
}

const selectStream = `SELECT activity_id, ts, customer, activity, anonymous_customer_id, feature_json,
       revenue_impact, link, _activity_occurrence, _activity_repeated_at, _received_at, _source
FROM claude_stream ORDER BY customer, activity, ts, activity_id`

func readStream(t *testing.T, d warehouse.Driver) []streamRow {
	t.Helper()
	tab := query(t, d, selectStream)
	out := make([]streamRow, len(tab.Rows))
	for i, r := range tab.Rows {
		s := streamRow{
			ActivityID: str(r[0]), TS: tm(t, r[1]), Customer: str(r[2]), Activity: str(r[3]),
			Anon: str(r[4]), Features: r[5], Revenue: r[6], Link: str(r[7]),
			ReceivedAt: tm(t, r[10]), Source: str(r[11]),
		}
		if r[8] != nil {
			n, ok := r[8].(int64)
			if !ok {
				t.Fatalf("_activity_occurrence is %T, want int64", r[8])
			}
			s.Occ = n
		}
		if r[9] != nil {
			rep := tm(t, r[9])
			s.Rep = &rep
		}
		out[i] = s
	}
	return out
}

func str(v any) string {
	if v == nil {
		return ""
	}
	if s, ok := v.(string); ok {
		return s
	}
	return fmt.Sprint(v)
}

func tm(t *testing.T, v any) time.Time {
	t.Helper()
	x, ok := v.(time.Time)
	if !ok {
		t.Fatalf("got %T (%v), want time.Time", v, v)
	}
	return x.UTC()
}

func testLoadInserts(t *testing.T, open Open) {
	d := setup(t, open)
	rev := -0.0125
	a := ev("alice", "called_tool", "01A", t0)
	a.RevenueImpact = &rev
	a.Link = "https://example.com/x"
	a.Features = json.RawMessage(`{"tool":"search","latency_ms":12,"ok":true}`)
	b := ev("", "started_session", "01B", t0.Add(time.Microsecond))
	b.AnonymousCustomerID = "anon-7"
	b.Source = event.SourceHook
	res := load(t, d, &warehouse.Batch{Events: []event.Event{a, b}})
	if res.Inserted != 2 || res.Duplicates != 0 {
		t.Fatalf("Load = %+v; want 2 inserted", res)
	}
	rows := readStream(t, d)
	if len(rows) != 2 {
		t.Fatalf("%d rows, want 2", len(rows))
	}
	anon, got := rows[0], rows[1] // '' sorts first
	want := streamRow{ActivityID: "01A", TS: t0, Customer: "alice", Activity: "called_tool",
		Link: "https://example.com/x", Source: "mcp", ReceivedAt: t0.Add(time.Second),
		Features: map[string]any{"tool": "search", "latency_ms": float64(12), "ok": true},
		Revenue:  rev, Occ: 1}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("row\n got %+v\nwant %+v", got, want)
	}
	if anon.Customer != "" || anon.Anon != "anon-7" || anon.Source != "hook" || anon.Revenue != nil ||
		anon.Link != "" || !anon.TS.Equal(t0.Add(time.Microsecond)) || anon.Occ != 1 || anon.Rep != nil {
		t.Errorf("anonymous row %+v: want customer '', anonymous_customer_id anon-7, NULL revenue and link", anon)
	}
}

func testDedupWithinBatch(t *testing.T, open Open) {
	d := setup(t, open)
	first := ev("alice", "called_tool", "X1", t0)
	first.Features = json.RawMessage(`{"v":"first"}`)
	second := ev("alice", "called_tool", "X1", t0.Add(time.Hour))
	second.Features = json.RawMessage(`{"v":"second"}`)
	other := ev("alice", "called_tool", "X2", t0.Add(time.Minute))
	res := load(t, d, &warehouse.Batch{Events: []event.Event{first, other, second}})
	if res.Inserted != 2 || res.Duplicates != 1 {
		t.Fatalf("Load = %+v; want 2 inserted, 1 duplicate", res)
	}
	rows := readStream(t, d)
	if len(rows) != 2 || rows[0].ActivityID != "X1" || !rows[0].TS.Equal(t0) ||
		!reflect.DeepEqual(rows[0].Features, map[string]any{"v": "first"}) {
		t.Fatalf("rows %+v: want the first X1 kept", rows)
	}
	checkOccurrences(t, d, []event.Event{first, other})
}

func testDedupAcrossBatches(t *testing.T, open Open) {
	d := setup(t, open)
	b := &warehouse.Batch{Events: []event.Event{
		ev("alice", "called_tool", "A1", t0),
		ev("alice", "called_tool", "A2", t0.Add(time.Second)),
		ev("bob", "called_tool", "B1", t0),
	}}
	if res := load(t, d, b); res.Inserted != 3 {
		t.Fatalf("first Load = %+v; want 3 inserted", res)
	}
	before := readStream(t, d)
	res := load(t, d, b)
	if res.Inserted != 0 || res.Duplicates != 3 {
		t.Fatalf("retried Load = %+v; want 0 inserted, 3 duplicates", res)
	}
	if after := readStream(t, d); !reflect.DeepEqual(before, after) {
		t.Fatalf("a retried batch changed the table:\nbefore %+v\nafter  %+v", before, after)
	}
	// A re-sent event with a changed payload is still the stored one; the
	// new events of the batch go in and are numbered correctly.
	resent := ev("alice", "called_tool", "A1", t0.Add(time.Hour))
	resent.Features = json.RawMessage(`{"v":"changed"}`)
	fresh := ev("alice", "called_tool", "A3", t0.Add(2*time.Second))
	res = load(t, d, &warehouse.Batch{Events: []event.Event{resent, fresh}})
	if res.Inserted != 1 || res.Duplicates != 1 {
		t.Fatalf("mixed Load = %+v; want 1 inserted, 1 duplicate", res)
	}
	checkOccurrences(t, d, append(slices.Clone(b.Events), fresh))
}

func testSameIDTwoCustomers(t *testing.T, open Open) {
	d := setup(t, open)
	res := load(t, d, &warehouse.Batch{Events: []event.Event{
		ev("alice", "called_tool", "SAME", t0),
		ev("bob", "called_tool", "SAME", t0),
	}})
	if res.Inserted != 2 {
		t.Fatalf("Load = %+v; want both rows", res)
	}
	// Neither suppresses the other in a later batch either.
	res = load(t, d, &warehouse.Batch{Events: []event.Event{ev("carol", "called_tool", "SAME", t0)}})
	if res.Inserted != 1 {
		t.Fatalf("Load for a third customer = %+v; want 1 inserted", res)
	}
	rows := readStream(t, d)
	if len(rows) != 3 {
		t.Fatalf("%d rows, want 3", len(rows))
	}
	for _, r := range rows {
		if r.Occ != 1 || r.Rep != nil {
			t.Errorf("%s/%s: occurrence %d, repeated_at %v; want 1, NULL (partitions are per customer)", r.Customer, r.ActivityID, r.Occ, r.Rep)
		}
	}
}

func testOccurrenceInOrder(t *testing.T, open Open) {
	d := setup(t, open)
	var all []event.Event
	for b := 0; b < 4; b++ {
		var batch []event.Event
		for i := 0; i < 5; i++ {
			n := b*5 + i
			batch = append(batch, ev("alice", "called_tool", fmt.Sprintf("T%03d", n), t0.Add(time.Duration(n)*time.Minute)))
			batch = append(batch, ev("alice", "submitted_prompt", fmt.Sprintf("P%03d", n), t0.Add(time.Duration(n)*time.Minute+time.Second)))
		}
		load(t, d, &warehouse.Batch{Events: batch})
		all = append(all, batch...)
		checkOccurrences(t, d, all)
	}
	rows := readStream(t, d)
	if rows[0].Occ != 1 || rows[19].Occ != 20 || rows[19].Rep != nil || !rows[0].Rep.Equal(t0.Add(time.Minute)) {
		t.Fatalf("called_tool: first %+v last %+v", rows[0], rows[19])
	}
}

func testOccurrenceLateAndTies(t *testing.T, open Open) {
	d := setup(t, open)
	var all []event.Event
	step := func(evs ...event.Event) {
		t.Helper()
		load(t, d, &warehouse.Batch{Events: evs})
		all = append(all, evs...)
		checkOccurrences(t, d, all)
	}
	step(ev("alice", "called_tool", "M", t0.Add(10*time.Minute)), ev("alice", "called_tool", "N", t0.Add(20*time.Minute)))
	step(ev("alice", "called_tool", "L", t0.Add(5*time.Minute)))                                                           // late, before everything
	step(ev("alice", "called_tool", "O", t0.Add(15*time.Minute)))                                                          // late, in the middle
	step(ev("alice", "called_tool", "A", t0.Add(20*time.Minute)))                                                          // tie with the last, smaller id: late
	step(ev("alice", "called_tool", "Z", t0.Add(20*time.Minute)))                                                          // tie with the last, larger id: in order
	step(ev("alice", "called_tool", "B", t0.Add(10*time.Minute)), ev("alice", "called_tool", "C", t0.Add(10*time.Minute))) // ties inside a batch and with stored
	step(ev("alice", "called_tool", "Q", t0.Add(30*time.Minute)), ev("alice", "called_tool", "K", t0.Add(time.Minute)))    // one late, one in order
	step(ev("alice", "called_tool", "Y", t0.Add(-time.Hour*24*365)))                                                       // very late: anchor search has nothing before
	step(ev("alice", "called_tool", "X", t0.Add(-time.Hour*24*300)))                                                       // late with an anchor far behind
}

func testOccurrenceRandomized(t *testing.T, open Open) {
	d := setup(t, open)
	rng := rand.New(rand.NewPCG(20260301, 7))
	customers := []string{"alice", "bob", "carol", ""}
	activities := []string{"called_tool", "submitted_prompt", "started_session"}
	var all []event.Event // everything sent, in order (duplicates included)
	clock := t0
	id := 0
	for batch := 0; batch < 40; batch++ {
		n := 1 + rng.IntN(120)
		var evs []event.Event
		for i := 0; i < n; i++ {
			r := rng.Float64()
			switch {
			case r < 0.08 && len(all) > 0: // re-send a stored or pending event, maybe changed
				e := all[rng.IntN(len(all))]
				if rng.IntN(2) == 0 {
					e.TS = e.TS.Add(time.Duration(rng.IntN(3600)) * time.Second)
					e.Features = json.RawMessage(`{"resent":true}`)
				}
				evs = append(evs, e)
				continue
			case r < 0.12 && len(evs) > 0: // duplicate inside the batch
				evs = append(evs, evs[rng.IntN(len(evs))])
				continue
			}
			id++
			c := customers[rng.IntN(len(customers))]
			a := activities[rng.IntN(len(activities))]
			var ts time.Time
			switch r2 := rng.Float64(); {
			case r2 < 0.15: // late, up to a day back
				ts = clock.Add(-time.Duration(rng.IntN(86400)) * time.Second)
			case r2 < 0.25 && len(all) > 0: // tie with an earlier ts
				ts = all[rng.IntN(len(all))].TS
			default:
				clock = clock.Add(time.Duration(rng.IntN(5000)) * time.Millisecond)
				ts = clock
			}
			// Ids are random, so that ties in ts are broken by an order
			// unrelated to arrival.
			aid := fmt.Sprintf("%08x-%d", rng.Uint32(), id)
			if rng.IntN(40) == 0 && len(all) > 0 { // same id, other customer or activity
				aid = all[rng.IntN(len(all))].ActivityID
			}
			e := ev(c, a, aid, ts)
			if c == "" {
				e.AnonymousCustomerID = fmt.Sprintf("anon-%d", rng.IntN(3))
			}
			evs = append(evs, e)
		}
		load(t, d, &warehouse.Batch{Events: evs})
		all = append(all, evs...)
		if batch%5 == 4 || batch == 39 {
			checkOccurrences(t, d, all)
		}
	}
}

// checkOccurrences compares the table with an oracle computed in Go from
// every event sent: the first of each (customer, activity_id) is stored;
// occurrence is the 1-based rank by (ts, activity_id) within (customer,
// activity); repeated_at is the next row's ts, NULL for the last.
func checkOccurrences(t *testing.T, d warehouse.Driver, sent []event.Event) {
	t.Helper()
	type key struct{ c, id string }
	stored := map[key]event.Event{}
	var order []key
	for _, e := range sent {
		k := key{e.Customer, e.ActivityID}
		if _, ok := stored[k]; !ok {
			stored[k] = e
			order = append(order, k)
		}
	}
	parts := map[[2]string][]event.Event{}
	for _, k := range order {
		e := stored[k]
		p := [2]string{e.Customer, e.Activity}
		parts[p] = append(parts[p], e)
	}
	type want struct {
		ts  time.Time
		occ int64
		rep *time.Time
	}
	wants := map[key]want{}
	for _, es := range parts {
		sort.Slice(es, func(i, j int) bool {
			if !es[i].TS.Equal(es[j].TS) {
				return es[i].TS.Before(es[j].TS)
			}
			return es[i].ActivityID < es[j].ActivityID
		})
		for i, e := range es {
			w := want{ts: e.TS, occ: int64(i + 1)}
			if i+1 < len(es) {
				next := es[i+1].TS
				w.rep = &next
			}
			wants[key{e.Customer, e.ActivityID}] = w
		}
	}
	rows := readStream(t, d)
	if len(rows) != len(wants) {
		t.Fatalf("%d rows stored, oracle says %d", len(rows), len(wants))
	}
	bad := 0
	for _, r := range rows {
		w, ok := wants[key{r.Customer, r.ActivityID}]
		switch {
		case !ok:
			t.Errorf("unexpected row %s/%s", r.Customer, r.ActivityID)
		case !r.TS.Equal(w.ts) || r.Occ != w.occ || !eqTime(r.Rep, w.rep):
			t.Errorf("%q/%s/%s ts %s: occurrence %d repeated_at %s; want ts %s occurrence %d repeated_at %s",
				r.Customer, r.Activity, r.ActivityID, r.TS.Format(time.RFC3339Nano), r.Occ, fmtTime(r.Rep),
				w.ts.Format(time.RFC3339Nano), w.occ, fmtTime(w.rep))
		default:
			continue
		}
		if bad++; bad > 10 {
			t.FailNow()
		}
	}
	if bad > 0 {
		t.FailNow()
	}
}

func eqTime(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return a.Equal(*b)
}

func fmtTime(p *time.Time) string {
	if p == nil {
		return "NULL"
	}
	return p.Format(time.RFC3339Nano)
}

func testQuarantine(t *testing.T, open Open) {
	d := setup(t, open)
	raw := []byte("{\"activity\":\"called_tool\",\xff\xfe torn")
	b := &warehouse.Batch{
		Quarantine: []warehouse.QuarantineRecord{
			{Segment: "seg-1", Offset: 100, Kind: "event", Reason: "bad checksum", Raw: raw, At: t0},
			{Segment: "seg-1", Offset: 200, Kind: "", Reason: "unreadable", Raw: []byte("x"), At: t0},
		},
		Offsets: []warehouse.Offset{{Segment: "seg-1", Offset: 300, Records: 2}},
	}
	if res := load(t, d, b); res.Quarantined != 2 {
		t.Fatalf("Load = %+v; want 2 quarantined", res)
	}
	if res := load(t, d, b); res.Quarantined != 0 {
		t.Fatalf("retried Load = %+v; want 0 quarantined", res)
	}
	tab := query(t, d, `SELECT segment, "offset", kind, reason, raw, quarantined_at FROM upload_quarantine ORDER BY "offset"`)
	if len(tab.Rows) != 2 {
		t.Fatalf("%d quarantine rows, want 2 (a retried batch must not double them)", len(tab.Rows))
	}
	r := tab.Rows[0]
	if str(r[0]) != "seg-1" || r[1] != int64(100) || str(r[2]) != "event" || str(r[3]) != "bad checksum" ||
		str(r[4]) != string(raw) || !tm(t, r[5]).Equal(t0) {
		t.Fatalf("quarantine row %#v: want seg-1, 100, event, bad checksum, the raw bytes, %s", r, t0)
	}
	if s := stats(t, d); s.QuarantineRows != 2 {
		t.Fatalf("Stats.QuarantineRows = %d, want 2", s.QuarantineRows)
	}
}

// snapshot is everything a Load may change.
type snapshot struct {
	stream     []streamRow
	insights   []insightRow
	quarantine *warehouse.Table
	offsets    map[string]warehouse.Offset
}

func snap(t *testing.T, d warehouse.Driver) snapshot {
	t.Helper()
	offs, err := d.Offsets(context.Background())
	if err != nil {
		t.Fatalf("Offsets: %v", err)
	}
	return snapshot{
		stream:     readStream(t, d),
		insights:   readInsights(t, d),
		quarantine: query(t, d, `SELECT segment, "offset", reason FROM upload_quarantine ORDER BY segment, "offset"`),
		offsets:    offs,
	}
}

func testFailingLoad(t *testing.T, open Open) {
	d := setup(t, open)
	base := []event.Event{ev("alice", "called_tool", "A1", t0), ev("alice", "called_tool", "A2", t0.Add(time.Minute))}
	load(t, d, &warehouse.Batch{Events: base, Offsets: []warehouse.Offset{{Segment: "seg-1", Offset: 10, Records: 2}}})
	before := snap(t, d)

	// A batch that does everything a batch does (new rows in order and
	// late, quarantine, offsets) and fails.
	failing := func(bad event.Event) *warehouse.Batch {
		return &warehouse.Batch{
			Events: []event.Event{
				ev("alice", "called_tool", "A3", t0.Add(2*time.Minute)),
				ev("alice", "called_tool", "A0", t0.Add(-time.Minute)),
				ev("bob", "called_tool", "B1", t0),
				bad,
			},
			Quarantine: []warehouse.QuarantineRecord{{Segment: "seg-1", Offset: 11, Kind: "event", Reason: "drift", Raw: []byte("{}")}},
			Offsets:    []warehouse.Offset{{Segment: "seg-1", Offset: 99, Records: 9}, {Segment: "seg-2", Offset: 5, Records: 1}},
		}
	}
	badJSON := ev("bob", "called_tool", "B2", t0.Add(time.Second))
	badJSON.Features = json.RawMessage(`{"unterminated":`)
	cases := []struct {
		name     string
		ctx      func() context.Context
		b        *warehouse.Batch
		rejected bool // the error must match warehouse.ErrRecordRejected (or must not)
	}{
		{"InvalidFeatureJSON", context.Background, failing(badJSON), true},
		{"CancelledContext", func() context.Context {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return ctx
		}, failing(ev("bob", "called_tool", "B3", t0)), false},
	}
	for _, c := range cases {
		_, err := d.Load(c.ctx(), c.b)
		if err == nil {
			t.Fatalf("%s: Load succeeded; want an error", c.name)
		}
		if got := errors.Is(err, warehouse.ErrRecordRejected); got != c.rejected {
			t.Fatalf("%s: errors.Is(err, ErrRecordRejected) = %v, want %v (err: %v)", c.name, got, c.rejected, err)
		}
		if after := snap(t, d); !reflect.DeepEqual(before, after) {
			t.Fatalf("%s: a failed Load changed the warehouse:\nbefore %+v\nafter  %+v", c.name, before, after)
		}
	}
	// The driver keeps working, and the same batch minus the bad event loads.
	ok := failing(ev("bob", "called_tool", "B4", t0.Add(time.Hour)))
	res := load(t, d, ok)
	if res.Inserted != 4 || res.Quarantined != 1 {
		t.Fatalf("Load after failures = %+v; want 4 inserted, 1 quarantined", res)
	}
	checkOccurrences(t, d, append(slices.Clone(base), ok.Events...))
	offs, _ := d.Offsets(context.Background())
	if offs["seg-1"].Offset != 99 || offs["seg-2"].Offset != 5 {
		t.Fatalf("offsets %+v", offs)
	}
}

func testOffsets(t *testing.T, open Open) {
	ctx := context.Background()
	d := setup(t, open)
	offs, err := d.Offsets(ctx)
	if err != nil || len(offs) != 0 {
		t.Fatalf("Offsets on an empty warehouse = %v, %v", offs, err)
	}
	load(t, d, &warehouse.Batch{Offsets: []warehouse.Offset{
		{Segment: "a", Offset: 10, Records: 1},
		{Segment: "b", Offset: 20, Records: 2, Closed: true},
	}})
	load(t, d, &warehouse.Batch{Offsets: []warehouse.Offset{
		{Segment: "a", Offset: 15, Records: 3},
		{Segment: "c", Offset: 1 << 40, Records: 1 << 33},
	}})
	want := map[string]warehouse.Offset{
		"a": {Segment: "a", Offset: 15, Records: 3},
		"b": {Segment: "b", Offset: 20, Records: 2, Closed: true},
		"c": {Segment: "c", Offset: 1 << 40, Records: 1 << 33},
	}
	if offs, err = d.Offsets(ctx); err != nil || !reflect.DeepEqual(offs, want) {
		t.Fatalf("Offsets = %+v, %v; want %+v", offs, err, want)
	}
	if err := d.ForgetOffsets(ctx, []string{"b", "missing"}); err != nil {
		t.Fatalf("ForgetOffsets: %v", err)
	}
	if err := d.ForgetOffsets(ctx, nil); err != nil {
		t.Fatalf("ForgetOffsets(nil): %v", err)
	}
	delete(want, "b")
	if offs, err = d.Offsets(ctx); err != nil || !reflect.DeepEqual(offs, want) {
		t.Fatalf("Offsets after ForgetOffsets = %+v, %v; want %+v", offs, err, want)
	}
	if s := stats(t, d); s.Segments != 2 {
		t.Fatalf("Stats.Segments = %d, want 2", s.Segments)
	}
}

// unsafeStatements are refused by Query and by CustomerQuery.
var unsafeStatements = []struct{ name, sql string }{
	{"Insert", `INSERT INTO claude_stream (activity_id, ts, customer, activity, feature_json, _received_at, _source) VALUES ('x', now(), 'c', 'a_b', '{}', now(), 'mcp')`},
	{"Update", `UPDATE claude_stream SET customer = 'mallory'`},
	{"Delete", `DELETE FROM claude_stream`},
	{"Truncate", `TRUNCATE claude_stream`},
	{"CreateTable", `CREATE TABLE evil (x INTEGER)`},
	{"CreateTableAs", `CREATE TABLE evil AS SELECT * FROM claude_stream`},
	{"DropTable", `DROP TABLE claude_stream`},
	{"Alter", `ALTER TABLE claude_stream ADD COLUMN x INTEGER`},
	{"SelectThenDrop", `SELECT 1; DROP TABLE claude_stream`},
	{"TwoSelects", `SELECT 1; SELECT 2`},
	{"CommitThenDrop", `COMMIT; DROP TABLE claude_stream`},
	{"Begin", `BEGIN TRANSACTION`},
	{"Attach", `ATTACH '/tmp/other.duckdb' AS other`},
	{"Detach", `DETACH other`},
	{"CopyTo", `COPY claude_stream TO '/tmp/out.csv'`},
	{"CopyFrom", `COPY claude_stream FROM '/etc/passwd'`},
	{"CopySelect", `COPY (SELECT * FROM claude_stream) TO '/tmp/out.parquet'`},
	{"Pragma", `PRAGMA enable_profiling`},
	{"Set", `SET enable_external_access = true`},
	{"Reset", `RESET memory_limit`},
	{"Install", `INSTALL httpfs`},
	{"Load", `LOAD httpfs`},
	{"Call", `CALL pragma_version()`},
	{"Export", `EXPORT DATABASE '/tmp/dump'`},
	{"ReadCSV", `SELECT * FROM read_csv('/etc/passwd')`},
	{"ReadCSVAuto", `SELECT * FROM read_csv_auto('/etc/passwd')`},
	{"ReadJSON", `SELECT * FROM read_json('/etc/hosts')`},
	{"ReadNDJSON", `SELECT * FROM read_ndjson('/etc/hosts')`},
	{"ReadParquet", `SELECT * FROM read_parquet('/tmp/x.parquet')`},
	{"ParquetScan", `SELECT * FROM parquet_scan('/tmp/x.parquet')`},
	{"ReadText", `SELECT * FROM read_text('/etc/passwd')`},
	{"ReadBlob", `SELECT * FROM read_blob('/etc/passwd')`},
	{"Glob", `SELECT * FROM glob('/etc/*')`},
	{"SniffCSV", `SELECT * FROM sniff_csv('/etc/passwd')`},
	{"IcebergScan", `SELECT * FROM iceberg_scan('s3://bucket/table')`},
	{"DeltaScan", `SELECT * FROM delta_scan('s3://bucket/table')`},
	{"FilePathAsTable", `SELECT * FROM '/etc/passwd'`},
	{"URLAsTable", `SELECT * FROM 'https://example.com/data.csv'`},
	{"QueryFunction", `SELECT * FROM query('SELECT 1')`},
	{"ReadCSVInSubquery", `SELECT count(*) FROM claude_stream WHERE customer IN (SELECT column0 FROM read_csv('/etc/passwd'))`},
	{"ReadCSVInCTE", `WITH f AS (SELECT * FROM read_csv('/etc/passwd')) SELECT * FROM f`},
	{"ReadCSVInJoin", `SELECT * FROM claude_stream JOIN read_text('/etc/passwd') ON true`},
	{"Nextval", `SELECT nextval('some_sequence')`},
	{"Setseed", `SELECT setseed(0.5)`},
	{"WriteLog", `SELECT write_log('x')`},
	{"Empty", `   `},
	{"OnlyComment", `-- nothing`},
}

func testQueryRefusesUnsafe(t *testing.T, open Open) {
	d := setup(t, open)
	load(t, d, &warehouse.Batch{Events: []event.Event{ev("alice", "called_tool", "A1", t0)}})
	cases := unsafeStatements
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := d.Query(context.Background(), c.sql, 10)
			var u *warehouse.UnsafeSQLError
			if !errors.As(err, &u) {
				t.Fatalf("Query(%q) error = %v; want *warehouse.UnsafeSQLError", c.sql, err)
			}
			if u.Reason == "" {
				t.Fatalf("Query(%q): refusal without a reason", c.sql)
			}
		})
	}
	// Nothing above changed anything.
	rows := readStream(t, d)
	if len(rows) != 1 || rows[0].Customer != "alice" {
		t.Fatalf("after refused statements the stream is %+v", rows)
	}
}

func testQueryAnswers(t *testing.T, open Open) {
	d := setup(t, open)
	ctx := context.Background()
	var evs []event.Event
	for i := 0; i < 5; i++ {
		e := ev("alice", "called_tool", fmt.Sprintf("A%d", i), t0.Add(time.Duration(i)*time.Minute))
		e.Features = json.RawMessage(fmt.Sprintf(`{"tool":"t%d","ms":%d}`, i%2, i*10))
		evs = append(evs, e)
	}
	evs = append(evs, ev("bob", "submitted_prompt", "B0", t0))
	load(t, d, &warehouse.Batch{Events: evs})

	tab, err := d.Query(ctx, `SELECT customer, count(*) AS n, min(ts) AS first_ts
FROM claude_stream GROUP BY customer ORDER BY customer;`, 0)
	if err != nil {
		t.Fatalf("Query: %v", err)
	}
	if len(tab.Columns) != 3 || tab.Columns[0].Name != "customer" || tab.Columns[1].Name != "n" || tab.Truncated {
		t.Fatalf("columns %+v truncated %v", tab.Columns, tab.Truncated)
	}
	want := [][]any{{"alice", int64(5), t0}, {"bob", int64(1), t0}}
	if !reflect.DeepEqual(tab.Rows, want) {
		t.Fatalf("rows %#v\nwant %#v", tab.Rows, want)
	}

	// maxRows caps and says so; a trailing comment and semicolon are fine.
	tab, err = d.Query(ctx, "SELECT activity_id, feature_json FROM claude_stream WHERE customer = 'alice' ORDER BY ts -- newest last\n;", 2)
	if err != nil {
		t.Fatalf("Query with maxRows: %v", err)
	}
	if len(tab.Rows) != 2 || !tab.Truncated || tab.Rows[1][0] != "A1" {
		t.Fatalf("maxRows 2: rows %#v truncated %v; want A0, A1 and truncated", tab.Rows, tab.Truncated)
	}
	if f, ok := tab.Rows[1][1].(map[string]any); !ok || f["tool"] != "t1" || f["ms"] != float64(10) {
		t.Fatalf("feature_json came back as %#v; want the decoded object", tab.Rows[1][1])
	}
	tab, err = d.Query(ctx, "SELECT activity_id FROM claude_stream WHERE customer = 'alice'", 5)
	if err != nil || len(tab.Rows) != 5 || tab.Truncated {
		t.Fatalf("maxRows equal to the row count: %d rows, truncated %v, %v", len(tab.Rows), tab.Truncated, err)
	}
	// A CTE with a window function.
	tab, err = d.Query(ctx, `WITH x AS (
  SELECT activity_id, _activity_occurrence AS occ,
         lag(ts) OVER (PARTITION BY customer ORDER BY ts) AS prev
  FROM claude_stream WHERE customer = 'alice')
SELECT count(*) AS with_prev FROM x WHERE prev IS NOT NULL`, 0)
	if err != nil || len(tab.Rows) != 1 || tab.Rows[0][0] != int64(4) {
		t.Fatalf("CTE query: %+v, %v", tab, err)
	}
	// Errors in a valid, safe statement are plain errors, not refusals.
	_, err = d.Query(ctx, "SELECT no_such_column FROM claude_stream", 0)
	var u *warehouse.UnsafeSQLError
	if err == nil || errors.As(err, &u) {
		t.Fatalf("bad column: error %v; want a plain error", err)
	}
	if !strings.Contains(strings.ToLower(err.Error()), "no_such_column") {
		t.Fatalf("bad column: error %q does not name the column", err)
	}
}

func testStats(t *testing.T, open Open) {
	d := setup(t, open)
	if s := stats(t, d); s.StreamRows != 0 || s.SchemaVersion == 0 {
		t.Fatalf("Stats on an empty warehouse = %+v", s)
	}
	load(t, d, &warehouse.Batch{
		Events:     []event.Event{ev("a", "called_tool", "1", t0), ev("b", "called_tool", "1", t0)},
		Quarantine: []warehouse.QuarantineRecord{{Segment: "s", Offset: 1, Reason: "bad", Raw: []byte("?")}},
		Offsets:    []warehouse.Offset{{Segment: "s", Offset: 2, Records: 3}},
	})
	s := stats(t, d)
	v, _ := d.SchemaVersion(context.Background())
	if s.StreamRows != 2 || s.QuarantineRows != 1 || s.Segments != 1 || s.SchemaVersion != v {
		t.Fatalf("Stats = %+v; want 2 rows, 1 quarantined, 1 segment, version %d", s, v)
	}
}

func testClosed(t *testing.T, open Open) {
	d := setup(t, open)
	if err := d.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	ctx := context.Background()
	if _, err := d.Load(ctx, &warehouse.Batch{}); !errors.Is(err, warehouse.ErrClosed) {
		t.Errorf("Load after Close: %v; want ErrClosed", err)
	}
	if _, err := d.Query(ctx, "SELECT 1", 0); !errors.Is(err, warehouse.ErrClosed) {
		t.Errorf("Query after Close: %v; want ErrClosed", err)
	}
	if _, err := d.CustomerQuery(ctx, "alice", "SELECT 1", nil, 0); !errors.Is(err, warehouse.ErrClosed) {
		t.Errorf("CustomerQuery after Close: %v; want ErrClosed", err)
	}
	if _, err := d.Offsets(ctx); !errors.Is(err, warehouse.ErrClosed) {
		t.Errorf("Offsets after Close: %v; want ErrClosed", err)
	}
	if err := d.Close(); err != nil {
		t.Errorf("second Close: %v; want nil", err)
	}
}

// insightRow is an insight_atoms row as the suite reads it back; Value is
// the decoded JSON value (Query decodes JSON columns).
type insightRow struct {
	AtomID, Customer, Subject, Metric, Hash, Source string
	Value                                           any
	TS, ReceivedAt                                  time.Time
	Verified                                        bool
}

const selectInsights = `SELECT atom_id, customer_id, subject, metric, value, provenance_query_hash,
       ts, _verified, _received_at, _source
FROM insight_atoms ORDER BY customer_id, atom_id`

func readInsights(t *testing.T, d warehouse.Driver) []insightRow {
	t.Helper()
	tab := query(t, d, selectInsights)
	out := make([]insightRow, len(tab.Rows))
	for i, r := range tab.Rows {
		v, ok := r[7].(bool)
		if !ok {
			t.Fatalf("_verified is %T, want bool", r[7])
		}
		out[i] = insightRow{AtomID: str(r[0]), Customer: str(r[1]), Subject: str(r[2]), Metric: str(r[3]),
			Value: r[4], Hash: str(r[5]), TS: tm(t, r[6]), Verified: v, ReceivedAt: tm(t, r[8]), Source: str(r[9])}
	}
	return out
}

// ins builds a valid insight.
func ins(customer, id, value string, ts time.Time) event.Insight {
	return event.Insight{
		AtomID:     id,
		TS:         ts,
		Customer:   customer,
		Subject:    "tool:Bash",
		Metric:     "p95_latency_ms",
		Value:      json.RawMessage(value),
		ReceivedAt: ts.Add(time.Second),
		Source:     event.SourceMCP,
	}
}

// wantInsight is x as readInsights returns it.
func wantInsight(t *testing.T, x event.Insight) insightRow {
	t.Helper()
	var v any
	if err := json.Unmarshal(x.Value, &v); err != nil {
		t.Fatalf("test insight value %s: %v", x.Value, err)
	}
	return insightRow{AtomID: x.AtomID, Customer: x.Customer, Subject: x.Subject, Metric: x.Metric,
		Hash: x.ProvenanceQueryHash, Source: x.Source, Value: v, TS: x.TS, ReceivedAt: x.ReceivedAt, Verified: x.Verified}
}

func wantInsights(t *testing.T, xs ...event.Insight) []insightRow {
	t.Helper()
	out := make([]insightRow, len(xs))
	for i, x := range xs {
		out[i] = wantInsight(t, x)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Customer != out[j].Customer {
			return out[i].Customer < out[j].Customer
		}
		return out[i].AtomID < out[j].AtomID
	})
	return out
}

func testInsightsStored(t *testing.T, open Open) {
	d := setup(t, open)
	num := ins("alice", "I1", `412.5`, t0)
	num.ProvenanceQueryHash = "0123456789abcdef0123456789abcdef"
	text := ins("alice", "I2", `"rising \"fast\" <&>"`, t0.Add(time.Microsecond))
	text.Subject, text.Metric, text.Source = "project:billing", "trend", event.SourceAPI
	flag := ins("alice", "I3", `true`, t0.Add(time.Hour))
	flag.Subject, flag.Metric, flag.Verified = "user", "prefers.dark_mode", true
	obj := ins("bob", "I4", `{"p50":120,"p95":412,"tools":["Bash","Read"],"by":{"model":"sonnet"}}`, t0.Add(-24*time.Hour))
	obj.Subject, obj.Metric = "tool:Read", "latency:ms"
	batch := []event.Insight{num, text, flag, obj}
	res := load(t, d, &warehouse.Batch{Insights: batch})
	if res.InsightsInserted != 4 || res.InsightDuplicates != 0 || res.Inserted != 0 || res.Duplicates != 0 {
		t.Fatalf("Load = %+v; want 4 insights inserted, no events", res)
	}
	if got, want := readInsights(t, d), wantInsights(t, batch...); !reflect.DeepEqual(got, want) {
		t.Fatalf("insight_atoms\n got %+v\nwant %+v", got, want)
	}
	if rows := readStream(t, d); len(rows) != 0 {
		t.Fatalf("insights reached claude_stream: %+v", rows)
	}
	if s := stats(t, d); s.InsightRows != 4 || s.StreamRows != 0 {
		t.Fatalf("Stats = %+v; want 4 insight rows, no stream rows", s)
	}
}

func testInsightsRetry(t *testing.T, open Open) {
	d := setup(t, open)
	b := &warehouse.Batch{
		Events:   []event.Event{ev("alice", "logged_insight", "E1", t0)},
		Insights: []event.Insight{ins("alice", "I1", `1`, t0), ins("alice", "I2", `2`, t0), ins("bob", "I1", `3`, t0)},
		Offsets:  []warehouse.Offset{{Segment: "seg-1", Offset: 10, Records: 4}},
	}
	if res := load(t, d, b); res.InsightsInserted != 3 || res.Inserted != 1 {
		t.Fatalf("first Load = %+v; want 3 insights and 1 event inserted", res)
	}
	before := snap(t, d)
	res := load(t, d, b)
	if res.InsightsInserted != 0 || res.InsightDuplicates != 3 || res.Inserted != 0 || res.Duplicates != 1 {
		t.Fatalf("retried Load = %+v; want nothing inserted, 3 insight and 1 event duplicates", res)
	}
	if after := snap(t, d); !reflect.DeepEqual(before, after) {
		t.Fatalf("a retried batch changed the warehouse:\nbefore %+v\nafter  %+v", before, after)
	}
	// A re-sent insight with a changed value is still the stored one; a new
	// one in the same batch goes in.
	changed := ins("alice", "I1", `{"changed":true}`, t0.Add(time.Hour))
	fresh := ins("alice", "I3", `4`, t0)
	res = load(t, d, &warehouse.Batch{Insights: []event.Insight{changed, fresh}})
	if res.InsightsInserted != 1 || res.InsightDuplicates != 1 {
		t.Fatalf("mixed Load = %+v; want 1 insight inserted, 1 duplicate", res)
	}
	if got, want := readInsights(t, d), wantInsights(t, append(slices.Clone(b.Insights), fresh)...); !reflect.DeepEqual(got, want) {
		t.Fatalf("insight_atoms\n got %+v\nwant %+v", got, want)
	}
}

func testInsightSameIDTwoCustomers(t *testing.T, open Open) {
	d := setup(t, open)
	a, b := ins("alice", "SAME", `1`, t0), ins("bob", "SAME", `2`, t0)
	if res := load(t, d, &warehouse.Batch{Insights: []event.Insight{a, b}}); res.InsightsInserted != 2 || res.InsightDuplicates != 0 {
		t.Fatalf("Load = %+v; want both rows", res)
	}
	// Neither suppresses the other in a later batch either.
	c := ins("carol", "SAME", `3`, t0)
	if res := load(t, d, &warehouse.Batch{Insights: []event.Insight{c}}); res.InsightsInserted != 1 {
		t.Fatalf("Load for a third customer = %+v; want 1 inserted", res)
	}
	if got, want := readInsights(t, d), wantInsights(t, a, b, c); !reflect.DeepEqual(got, want) {
		t.Fatalf("insight_atoms\n got %+v\nwant %+v", got, want)
	}
}

func testInsightDedupWithinBatch(t *testing.T, open Open) {
	d := setup(t, open)
	first := ins("alice", "X1", `"first"`, t0)
	other := ins("alice", "X2", `2`, t0)
	second := ins("alice", "X1", `"second"`, t0.Add(time.Hour))
	third := ins("alice", "X1", `"third"`, t0.Add(2*time.Hour))
	res := load(t, d, &warehouse.Batch{Insights: []event.Insight{first, other, second, third}})
	if res.InsightsInserted != 2 || res.InsightDuplicates != 2 {
		t.Fatalf("Load = %+v; want 2 inserted, 2 duplicates", res)
	}
	if got, want := readInsights(t, d), wantInsights(t, first, other); !reflect.DeepEqual(got, want) {
		t.Fatalf("insight_atoms\n got %+v\nwant %+v (the first X1 kept)", got, want)
	}
}

// testMixedBatchAtomic: a batch of events, insights, quarantine records and
// offsets either commits whole or leaves nothing, whichever part fails.
func testMixedBatchAtomic(t *testing.T, open Open) {
	d := setup(t, open)
	load(t, d, &warehouse.Batch{
		Events:   []event.Event{ev("alice", "called_tool", "A1", t0)},
		Insights: []event.Insight{ins("alice", "I1", `1`, t0)},
		Offsets:  []warehouse.Offset{{Segment: "seg-1", Offset: 10, Records: 2}},
	})
	before := snap(t, d)
	mixed := func(badEvent, badInsight bool) *warehouse.Batch {
		b := &warehouse.Batch{
			Events: []event.Event{ev("alice", "called_tool", "A2", t0.Add(time.Minute)),
				ev("alice", "called_tool", "A0", t0.Add(-time.Minute)), ev("bob", "logged_insight", "B1", t0)},
			Insights: []event.Insight{ins("alice", "I2", `{"k":"v"}`, t0), ins("bob", "I1", `"x"`, t0),
				ins("alice", "I1", `9`, t0)}, // the last is a duplicate of a stored one
			Quarantine: []warehouse.QuarantineRecord{{Segment: "seg-1", Offset: 11, Kind: "insight", Reason: "drift", Raw: []byte("{}")}},
			Offsets:    []warehouse.Offset{{Segment: "seg-1", Offset: 99, Records: 9}, {Segment: "seg-2", Offset: 5, Records: 1}},
		}
		if badEvent {
			b.Events[2].Features = json.RawMessage(`{"unterminated":`)
		}
		if badInsight {
			b.Insights[1].Value = json.RawMessage(`{"unterminated":`)
		}
		return b
	}
	cases := []struct {
		name     string
		ctx      func() context.Context
		b        *warehouse.Batch
		rejected bool
	}{
		{"InvalidFeatureJSON", context.Background, mixed(true, false), true},
		{"InvalidInsightValue", context.Background, mixed(false, true), true},
		{"CancelledContext", func() context.Context {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return ctx
		}, mixed(false, false), false},
	}
	for _, c := range cases {
		_, err := d.Load(c.ctx(), c.b)
		if err == nil {
			t.Fatalf("%s: Load succeeded; want an error", c.name)
		}
		if got := errors.Is(err, warehouse.ErrRecordRejected); got != c.rejected {
			t.Fatalf("%s: errors.Is(err, ErrRecordRejected) = %v, want %v (err: %v)", c.name, got, c.rejected, err)
		}
		if after := snap(t, d); !reflect.DeepEqual(before, after) {
			t.Fatalf("%s: a failed Load changed the warehouse:\nbefore %+v\nafter  %+v", c.name, before, after)
		}
	}
	ok := mixed(false, false)
	res := load(t, d, ok)
	if res.Inserted != 3 || res.InsightsInserted != 2 || res.InsightDuplicates != 1 || res.Quarantined != 1 {
		t.Fatalf("Load after failures = %+v; want 3 events, 2 insights (1 duplicate), 1 quarantined", res)
	}
	if got, want := readInsights(t, d), wantInsights(t, ins("alice", "I1", `1`, t0), ok.Insights[0], ok.Insights[1]); !reflect.DeepEqual(got, want) {
		t.Fatalf("insight_atoms\n got %+v\nwant %+v", got, want)
	}
	offs, _ := d.Offsets(context.Background())
	if offs["seg-1"].Offset != 99 || offs["seg-2"].Offset != 5 {
		t.Fatalf("offsets %+v", offs)
	}
}
