package duckdb

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/activitybi/activitybi/internal/event"
	"github.com/activitybi/activitybi/internal/warehouse"
	"github.com/activitybi/activitybi/internal/warehouse/warehousetest"
)

// preparing is the driver as the uploader uses it on a batch built ahead:
// every Load is preceded by Prepare.
type preparing struct{ *DB }

func (p preparing) Load(ctx context.Context, b *warehouse.Batch) (warehouse.LoadResult, error) {
	p.Prepare(b)
	if b.Prepared == nil {
		return warehouse.LoadResult{}, errors.New("Prepare left b.Prepared nil")
	}
	return p.DB.Load(ctx, b)
}

// TestConformancePrepared runs the conformance suite with every batch
// prepared before its Load: dedup, occurrences (late rows, ties, re-sent
// events), quarantine and failed loads must come out as without Prepare.
func TestConformancePrepared(t *testing.T) {
	warehousetest.Run(t, func(t *testing.T) warehouse.Driver {
		return preparing{openTest(t, Options{})}
	})
}

type occRow struct {
	id  string
	occ int64
	rep string
}

func readOcc(t *testing.T, db *DB) []occRow {
	t.Helper()
	tab, err := db.Query(context.Background(), `SELECT activity_id, _activity_occurrence,
    coalesce(strftime(_activity_repeated_at, '%M'), '-') FROM claude_stream ORDER BY customer, activity, ts, activity_id`, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []occRow
	for _, r := range tab.Rows {
		out = append(out, occRow{r[0].(string), r[1].(int64), r[2].(string)})
	}
	return out
}

// TestPreparedIgnoredWhenEventsReplaced: a preparation is used only for the
// events it was made from. The uploader replaces Events when it quarantines
// a rejected record; a Load that used the old preparation would store the
// old events.
func TestPreparedIgnoredWhenEventsReplaced(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := setup(t)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	b := &warehouse.Batch{Events: []event.Event{testEvent("a", "x_y", "old1", t0), testEvent("a", "x_y", "old2", t0.Add(time.Minute))}}
	db.Prepare(b)
	// Same length, another array: the check must not go by length alone.
	b.Events = []event.Event{testEvent("a", "x_y", "new1", t0.Add(2*time.Minute)), testEvent("b", "x_y", "new2", t0)}
	res, err := db.Load(ctx, b)
	if err != nil || res.Inserted != 2 {
		t.Fatalf("Load = %+v, %v", res, err)
	}
	got := readOcc(t, db)
	want := []occRow{{"new1", 1, "-"}, {"new2", 1, "-"}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("rows %v, want %v", got, want)
	}
	// Emptied, as poison leaves it (events gone, a quarantine record
	// instead): nothing of the preparation is stored either.
	b2 := &warehouse.Batch{Events: []event.Event{testEvent("c", "x_y", "c1", t0)}}
	db.Prepare(b2)
	b2.Events = nil
	if res, err := db.Load(ctx, b2); err != nil || res.Inserted != 0 {
		t.Fatalf("Load of the emptied batch = %+v, %v", res, err)
	}
	if got := readOcc(t, db); len(got) != 2 {
		t.Fatalf("rows %v after loading an emptied batch", got)
	}
}

// TestPreparedDependsOnBatchOnly: a batch prepared before another batch of
// the same partitions commits, and loaded after it (and again after a
// failed attempt), gets its occurrence numbers from the state at its load,
// not at its preparation — as the uploader's batch built ahead does.
func TestPreparedDependsOnBatchOnly(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := setup(t)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	first := &warehouse.Batch{Events: []event.Event{testEvent("a", "x_y", "a1", at(1)), testEvent("a", "x_y", "a2", at(2))}}
	// Prepared while nothing is stored. By the time it loads, partition a
	// holds rows up to minute 3, so a0 makes a late; b is new.
	ahead := &warehouse.Batch{Events: []event.Event{
		testEvent("a", "x_y", "a5", at(5)),
		testEvent("a", "x_y", "a0", at(0)), // late once first is stored
		testEvent("b", "x_y", "b1", at(1)),
		testEvent("a", "x_y", "a5", at(9)), // repeated within the batch: the first wins
		testEvent("c", "x_y", "c5", at(5)), // in order, numbered 1 by the failed attempt, 2 by the retry
	}}
	db.Prepare(first)
	db.Prepare(ahead)
	if _, err := db.Load(ctx, first); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	db.testHookAfterInsert = func() error { return boom }
	if _, err := db.Load(ctx, ahead); !errors.Is(err, boom) {
		t.Fatalf("Load with failing hook: %v", err)
	}
	db.testHookAfterInsert = nil
	// Rows of partitions a and c commit between the failed attempt and
	// the retry of the same prepared batch.
	if _, err := db.Load(ctx, &warehouse.Batch{Events: []event.Event{testEvent("a", "x_y", "a3", at(3)), testEvent("c", "x_y", "c3", at(3))}}); err != nil {
		t.Fatal(err)
	}
	res, err := db.Load(ctx, ahead)
	if err != nil || res.Inserted != 4 || res.Duplicates != 1 {
		t.Fatalf("retry = %+v, %v", res, err)
	}
	got := readOcc(t, db)
	as := []occRow{{"a0", 1, "01"}, {"a1", 2, "02"}, {"a2", 3, "03"}, {"a3", 4, "05"}, {"a5", 5, "-"}}
	cs := []occRow{{"c3", 1, "05"}, {"c5", 2, "-"}}
	want := slices.Concat(as, []occRow{{"b1", 1, "-"}}, cs)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("rows %v\nwant %v", got, want)
	}
	// A prepared batch holding an event stored meanwhile (re-sent) takes
	// the trial-insert path and stores only the new ones.
	resent := &warehouse.Batch{Events: []event.Event{testEvent("b", "x_y", "b1", at(1)), testEvent("b", "x_y", "b2", at(4))}}
	db.Prepare(resent)
	if res, err := db.Load(ctx, resent); err != nil || res.Inserted != 1 || res.Duplicates != 1 {
		t.Fatalf("re-sent = %+v, %v", res, err)
	}
	got = readOcc(t, db)
	want = slices.Concat(as, []occRow{{"b1", 1, "04"}, {"b2", 2, "-"}}, cs)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("rows %v\nwant %v", got, want)
	}
}
