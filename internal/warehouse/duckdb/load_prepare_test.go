package duckdb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
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

// TestPreparedDependsOnBatchOnly: a batch prepared before other batches of
// its partitions commit gets its occurrence numbers from the state at its
// load, not at its preparation — as the uploader's batch built ahead does —
// both through its loader's appender and, after a failed attempt, through
// the writer's.
func TestPreparedDependsOnBatchOnly(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := setup(t)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	first := &warehouse.Batch{Events: []event.Event{testEvent("a", "x_y", "a1", at(1)), testEvent("a", "x_y", "a2", at(2))}}
	// Prepared while nothing is stored. By the time it loads, partition a
	// holds rows up to minute 3, so a0 makes a late; b is new; c holds one
	// row before c5.
	ahead := &warehouse.Batch{Events: []event.Event{
		testEvent("a", "x_y", "a5", at(5)),
		testEvent("a", "x_y", "a0", at(0)), // late once first is stored
		testEvent("b", "x_y", "b1", at(1)),
		testEvent("a", "x_y", "a5", at(9)), // repeated within the batch: the first wins
		testEvent("c", "x_y", "c5", at(5)),
		testEvent("c", "x_y", "c6", at(6)),
	}}
	db.Prepare(first)
	db.Prepare(ahead)
	if _, err := db.Load(ctx, first); err != nil {
		t.Fatal(err)
	}
	// Rows of partitions a and c commit between the preparation and the
	// load, not prepared.
	if _, err := db.Load(ctx, &warehouse.Batch{Events: []event.Event{testEvent("a", "x_y", "a3", at(3)), testEvent("c", "x_y", "c3", at(3))}}); err != nil {
		t.Fatal(err)
	}
	res, err := db.Load(ctx, ahead)
	if err != nil || res.Inserted != 5 || res.Duplicates != 1 {
		t.Fatalf("Load = %+v, %v", res, err)
	}
	if n := db.preparedLoads.Load(); n != 2 {
		t.Fatalf("%d loads took their rows from a loader's appender; want 2", n)
	}
	as := []occRow{{"a0", 1, "01"}, {"a1", 2, "02"}, {"a2", 3, "03"}, {"a3", 4, "05"}, {"a5", 5, "-"}}
	cs := []occRow{{"c3", 1, "05"}, {"c5", 2, "06"}, {"c6", 3, "-"}}
	want := slices.Concat(as, []occRow{{"b1", 1, "-"}}, cs)
	if got := readOcc(t, db); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("rows %v\nwant %v", got, want)
	}

	// A prepared batch whose first attempt fails after its rows went in
	// is retried without its appender (the rows were used up), after c
	// grew meanwhile.
	retry := &warehouse.Batch{Events: []event.Event{testEvent("c", "x_y", "c9", at(9)), testEvent("d", "x_y", "d1", at(1))}}
	db.Prepare(retry)
	boom := errors.New("boom")
	db.testHookAfterInsert = func() error { return boom }
	if _, err := db.Load(ctx, retry); !errors.Is(err, boom) {
		t.Fatalf("Load with failing hook: %v", err)
	}
	db.testHookAfterInsert = nil
	if _, err := db.Load(ctx, &warehouse.Batch{Events: []event.Event{testEvent("c", "x_y", "c7", at(7))}}); err != nil {
		t.Fatal(err)
	}
	if res, err := db.Load(ctx, retry); err != nil || res.Inserted != 2 {
		t.Fatalf("retry = %+v, %v", res, err)
	}
	if n := db.preparedLoads.Load(); n != 3 {
		t.Fatalf("%d loads took their rows from a loader's appender; want 3 (the retry appends itself)", n)
	}
	cs = []occRow{{"c3", 1, "05"}, {"c5", 2, "06"}, {"c6", 3, "07"}, {"c7", 4, "09"}, {"c9", 5, "-"}}
	want = slices.Concat(as, []occRow{{"b1", 1, "-"}}, cs, []occRow{{"d1", 1, "-"}})
	if got := readOcc(t, db); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("rows %v\nwant %v", got, want)
	}

	// A prepared batch holding an event stored meanwhile (re-sent) takes
	// the trial-insert path and stores only the new ones.
	resent := &warehouse.Batch{Events: []event.Event{testEvent("b", "x_y", "b1", at(1)), testEvent("b", "x_y", "b2", at(4))}}
	db.Prepare(resent)
	if res, err := db.Load(ctx, resent); err != nil || res.Inserted != 1 || res.Duplicates != 1 {
		t.Fatalf("re-sent = %+v, %v", res, err)
	}
	want = slices.Concat(as, []occRow{{"b1", 1, "04"}, {"b2", 2, "-"}}, cs, []occRow{{"d1", 1, "-"}})
	if got := readOcc(t, db); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("rows %v\nwant %v", got, want)
	}
}

// TestPreparedNeverLoaded: preparations that are never loaded (a caller
// that drops its batch) give their loaders up to newer ones, the older of
// two first; a dropped batch loaded after all stores its rows once, and
// Close releases loaders that still hold rows.
func TestPreparedNeverLoaded(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := setup(t)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	batch := func(id string, m int) *warehouse.Batch {
		return &warehouse.Batch{Events: []event.Event{testEvent("a", "x_y", id, t0.Add(time.Duration(m)*time.Minute))}}
	}
	b1, b2, b3, b4 := batch("e1", 1), batch("e2", 2), batch("e3", 3), batch("e4", 4)
	for _, b := range []*warehouse.Batch{b1, b2, b3} {
		db.Prepare(b)
	}
	// b3 took b1's loader; b2 kept its own.
	for _, b := range []*warehouse.Batch{b2, b3, b1} {
		if _, err := db.Load(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	if n := db.preparedLoads.Load(); n != 2 {
		t.Fatalf("%d loads took their rows from a loader's appender; want 2 (b1's was taken)", n)
	}
	want := []occRow{{"e1", 1, "02"}, {"e2", 2, "03"}, {"e3", 3, "-"}}
	if got := readOcc(t, db); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("rows %v\nwant %v", got, want)
	}
	// b4 is never loaded: Close must drop its rows, not insert them.
	db.Prepare(b4)
	path := db.Path()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db2 := openTest(t, Options{Path: path})
	tab, err := db2.Query(ctx, "SELECT count(*) FROM claude_stream", 0)
	if err != nil || tab.Rows[0][0] != int64(3) {
		t.Fatalf("rows after reopening: %v, %v; want 3", tab, err)
	}
}

// TestPreparedRowsOnlyInTheirLoad: rows waiting in a loader's appender
// cannot go in outside their Load (as DuckDB's automatic flush of a full
// appender would try): not before any load, and not after a load on the
// same connection left its partition counts behind.
func TestPreparedRowsOnlyInTheirLoad(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := setup(t)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	batch := func(id string) *warehouse.Batch {
		return &warehouse.Batch{Events: []event.Event{testEvent("a", "x_y", id, t0)}}
	}
	flushOutside := func(b *warehouse.Batch) error {
		t.Helper()
		lc := b.Prepared.(*preparedBatch).loader
		if lc == nil || lc.app == nil {
			t.Fatal("the batch got no loader")
		}
		return lc.conn.Raw(func(any) error { return lc.app.Flush() })
	}
	count := func() int64 {
		t.Helper()
		tab, err := db.Query(ctx, "SELECT count(*) FROM claude_stream", 0)
		if err != nil {
			t.Fatal(err)
		}
		return tab.Rows[0][0].(int64)
	}
	b1 := batch("e1")
	db.Prepare(b1)
	if err := flushOutside(b1); err == nil || count() != 0 {
		t.Fatalf("flush before any load: %v, %d rows", err, count())
	}
	// b2 takes the other loader and loads through it; b3 then takes that
	// loader again.
	b2, b3 := batch("e2"), batch("e3")
	db.Prepare(b2)
	l2 := b2.Prepared.(*preparedBatch).loader
	if _, err := db.Load(ctx, b2); err != nil || db.preparedLoads.Load() != 1 {
		t.Fatalf("Load: %v; %d prepared loads", err, db.preparedLoads.Load())
	}
	db.Prepare(b3)
	if l3 := b3.Prepared.(*preparedBatch).loader; l3 == nil || l3 != l2 {
		t.Fatal("b3 did not get the loader b2 loaded through")
	}
	if err := flushOutside(b3); err == nil || count() != 1 {
		t.Fatalf("flush after a load on the same connection: %v, %d rows; want an error and 1 row", err, count())
	}
	// Counts that do not cover a row's partition fail the insert rather
	// than store the row without an occurrence number.
	l1 := b1.Prepared.(*preparedBatch).loader
	if _, err := l1.conn.ExecContext(ctx, "SET VARIABLE "+loadBasesVar+" = []::BIGINT[]"); err != nil {
		t.Fatal(err)
	}
	if err := flushOutside(b1); err == nil || count() != 1 {
		t.Fatalf("flush with no count for the row's partition: %v, %d rows; want an error and 1 row", err, count())
	}
}

// TestPrepareBesideLoad prepares each batch while the one before it loads,
// as the uploader does, with ids shared by neighbouring batches, partitions
// every batch touches and preparations abandoned now and then: every id is
// stored once and every occurrence column equals a recomputation over the
// whole table.
func TestPrepareBesideLoad(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := setup(t)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	batch := func(i int) *warehouse.Batch {
		var evs []event.Event
		for j := range 300 {
			k := i*250 + j // the last 50 are the next batch's first 50
			evs = append(evs, testEvent(fmt.Sprintf("c%d", k%3), fmt.Sprintf("a_%d", k%4), fmt.Sprintf("id%06d", k), t0.Add(time.Duration(k)*time.Second)))
		}
		return &warehouse.Batch{Events: evs, Offsets: []warehouse.Offset{{Segment: "s", Offset: int64(i + 1), Records: int64(i + 1)}}}
	}
	const batches = 31
	cur := batch(0)
	db.Prepare(cur)
	for i := 1; i < batches; i++ {
		next := batch(i)
		done := make(chan struct{})
		go func() { defer close(done); db.Prepare(next) }()
		if i%7 == 0 {
			<-done
			db.Prepare(batch(i + 100)) // never loaded
		}
		if _, err := db.Load(ctx, cur); err != nil {
			t.Fatal(err)
		}
		<-done
		cur = next
	}
	if _, err := db.Load(ctx, cur); err != nil {
		t.Fatal(err)
	}
	if n := db.preparedLoads.Load(); n < batches/2 {
		t.Errorf("only %d of %d loads used prepared rows", n, batches)
	}
	tab, err := db.Query(ctx, `SELECT count(*) FILTER (WHERE _activity_occurrence IS DISTINCT FROM rn OR _activity_repeated_at IS DISTINCT FROM nx),
    count(*), count(DISTINCT activity_id)
FROM (SELECT *, row_number() OVER w AS rn, lead(ts) OVER w AS nx FROM claude_stream
      WINDOW w AS (PARTITION BY customer, activity ORDER BY ts, activity_id))`, 0)
	if err != nil {
		t.Fatal(err)
	}
	const ids = (batches-1)*250 + 300
	if got := fmt.Sprint(tab.Rows[0]); got != fmt.Sprint([]any{int64(0), int64(ids), int64(ids)}) {
		t.Fatalf("wrong occurrence columns, rows, distinct ids: %s; want [0 %d %d]", got, ids, ids)
	}
}

// TestPreparedLargeBatch: a batch of preparedMaxRows rows is prepared ahead
// (DuckDB does not flush the appender by itself on the way) and loads
// through its loader.
func TestPreparedLargeBatch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := setup(t)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	feat := json.RawMessage(`{"k":"` + strings.Repeat("x", 200) + `"}`)
	evs := make([]event.Event, preparedMaxRows)
	for i := range evs {
		evs[i] = testEvent("a", fmt.Sprintf("act_%d", i%50), fmt.Sprintf("id%06d", i), t0.Add(time.Duration(i)*time.Millisecond))
		evs[i].Features = feat
	}
	b := &warehouse.Batch{Events: evs}
	db.Prepare(b)
	if b.Prepared.(*preparedBatch).loader == nil {
		t.Fatal("the batch got no loader")
	}
	if _, err := db.Load(ctx, b); err != nil || db.preparedLoads.Load() != 1 {
		t.Fatalf("Load: %v; %d prepared loads, want 1", err, db.preparedLoads.Load())
	}
	tab, err := db.Query(ctx, "SELECT count(*), count(_activity_occurrence), max(_activity_occurrence) FROM claude_stream", 0)
	if err != nil || fmt.Sprint(tab.Rows[0]) != fmt.Sprint([]any{int64(preparedMaxRows), int64(preparedMaxRows), int64(preparedMaxRows / 50)}) {
		t.Fatalf("rows, occurrences, max occurrence: %v, %v", tab, err)
	}
}

// TestCloseDuringPrepare: Close waits for a Prepare filling a loader, and a
// Load afterwards fails.
func TestCloseDuringPrepare(t *testing.T) {
	t.Parallel()
	db := openTest(t, Options{})
	if _, err := db.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	evs := make([]event.Event, 50_000)
	for i := range evs {
		evs[i] = testEvent("a", "x_y", fmt.Sprintf("id%06d", i), t0.Add(time.Duration(i)*time.Millisecond))
	}
	b := &warehouse.Batch{Events: evs}
	done := make(chan struct{})
	go func() { defer close(done); db.Prepare(b) }()
	time.Sleep(5 * time.Millisecond)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	<-done
	if _, err := db.Load(context.Background(), b); err == nil {
		t.Fatal("Load after Close succeeded")
	}
}

// TestCancelledPreparedLoad: a prepared load cancelled after its insert
// stores nothing, and the retry (which appends itself) stores the batch
// with the right occurrence numbers.
func TestCancelledPreparedLoad(t *testing.T) {
	t.Parallel()
	db := setup(t)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	evs := make([]event.Event, 50_000)
	for i := range evs {
		evs[i] = testEvent("a", "x_y", fmt.Sprintf("id%06d", i), t0.Add(time.Duration(i)*time.Millisecond))
	}
	b := &warehouse.Batch{Events: evs, Offsets: []warehouse.Offset{{Segment: "s", Offset: 1, Records: 1}}}
	db.Prepare(b)
	ctx, cancel := context.WithCancel(context.Background())
	db.testHookAfterInsert = func() error { cancel(); return ctx.Err() }
	if _, err := db.Load(ctx, b); err == nil {
		t.Fatal("cancelled Load succeeded")
	}
	db.testHookAfterInsert = nil
	bg := context.Background()
	tab, err := db.Query(bg, "SELECT (SELECT count(*) FROM claude_stream), (SELECT count(*) FROM upload_offsets)", 0)
	if err != nil || fmt.Sprint(tab.Rows[0]) != "[0 0]" {
		t.Fatalf("rows and offsets after the cancelled load: %v, %v; want 0, 0", tab, err)
	}
	if _, err := db.Load(bg, b); err != nil {
		t.Fatal(err)
	}
	tab, err = db.Query(bg, "SELECT count(*), max(_activity_occurrence) FROM claude_stream", 0)
	if err != nil || fmt.Sprint(tab.Rows[0]) != "[50000 50000]" {
		t.Fatalf("rows and max occurrence after the retry: %v, %v", tab, err)
	}
}
