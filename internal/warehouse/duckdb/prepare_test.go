package duckdb

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/activitybi/activitybi/internal/event"
	"github.com/activitybi/activitybi/internal/warehouse"
	"github.com/activitybi/activitybi/internal/warehouse/warehousetest"
)

// preparing is the driver with every Load prepared first, as the uploader
// prepares each batch it reads ahead during a backlog.
type preparing struct {
	*DB
	prepared *atomic.Int64 // Loads that inserted from a prepared table
}

func (p preparing) Load(ctx context.Context, b *warehouse.Batch) (warehouse.LoadResult, error) {
	if err := p.DB.Prepare(ctx, b); err != nil {
		return warehouse.LoadResult{}, err
	}
	before := p.DB.preparedLoads.Load()
	res, err := p.DB.Load(ctx, b)
	if p.DB.preparedLoads.Load() > before {
		p.prepared.Add(1)
	}
	return res, err
}

// TestConformancePrepared runs the whole conformance suite with every batch
// prepared: what Load stores must not depend on it. The in-order batches
// go the prepared way, the rest (late partitions, stored duplicates) the
// unprepared one; both happen in the suite.
func TestConformancePrepared(t *testing.T) {
	var prepared atomic.Int64
	t.Run("suite", func(t *testing.T) {
		warehousetest.Run(t, func(t *testing.T) warehouse.Driver {
			return preparing{DB: openTest(t, Options{}), prepared: &prepared}
		})
	})
	if prepared.Load() == 0 {
		t.Fatal("no load inserted from a prepared table")
	}
	t.Logf("%d loads inserted from a prepared table", prepared.Load())
}

// TestPreparedTablesDropped: after loads (prepared in order, late, with
// stored duplicates) and a preparation that was released unused, no
// prepared table is left.
func TestPreparedTablesDropped(t *testing.T) {
	ctx := context.Background()
	db := setup(t)
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	ev := func(id string, ts time.Time) event.Event {
		return event.Event{ActivityID: id, TS: ts, Customer: "alice", Activity: "ran_tests",
			Features: []byte(`{"n":1}`), ReceivedAt: ts, Source: event.SourceMCP}
	}
	p := preparing{DB: db, prepared: new(atomic.Int64)}
	batches := [][]event.Event{
		{ev("a1", base), ev("a2", base.Add(time.Second))},                      // in order
		{ev("a3", base.Add(2*time.Second))},                                    // in order, after stored rows
		{ev("a0", base.Add(-time.Second))},                                     // late
		{ev("a3", base.Add(2*time.Second)), ev("a4", base.Add(3*time.Second))}, // a stored duplicate
	}
	for i, evs := range batches {
		if _, err := p.Load(ctx, &warehouse.Batch{Events: evs}); err != nil {
			t.Fatalf("batch %d: %v", i, err)
		}
	}
	if got := p.prepared.Load(); got != 2 {
		t.Fatalf("%d loads used the prepared rows, want 2 (the in-order batches without stored duplicates)", got)
	}
	// Prepared, then changed before the load: the load must not use it.
	b := &warehouse.Batch{Events: []event.Event{ev("a5", base.Add(4*time.Second))}}
	if err := db.Prepare(ctx, b); err != nil {
		t.Fatal(err)
	}
	b.Events = []event.Event{ev("a6", base.Add(5*time.Second))}
	before := db.preparedLoads.Load()
	if _, err := db.Load(ctx, b); err != nil {
		t.Fatal(err)
	}
	if db.preparedLoads.Load() != before {
		t.Fatal("a load used rows prepared for other events")
	}
	// Prepared, then released without a load.
	b = &warehouse.Batch{Events: []event.Event{ev("a7", base.Add(6*time.Second))}}
	if err := db.Prepare(ctx, b); err != nil {
		t.Fatal(err)
	}
	b.Prepared.Release()
	b.Prepared.Release() // twice is harmless

	tab, err := db.Query(ctx, "SELECT activity_id, _activity_occurrence FROM claude_stream ORDER BY ts", 100)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range tab.Rows {
		got = append(got, r[0].(string))
	}
	if strings.Join(got, ",") != "a0,a1,a2,a3,a4,a6" {
		t.Fatalf("stored %v", got)
	}
	var left int64
	if err := db.sqlDB.QueryRowContext(ctx, "SELECT count(*) FROM duckdb_tables() WHERE database_name = '"+prepCatalog+"'").Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left != 0 || db.PreparedHeld() != 0 {
		t.Fatalf("%d prepared tables left, %d preparations held", left, db.PreparedHeld())
	}
}

// TestPreparedTableOutOfCustomerReach: while a batch is prepared, a customer
// statement cannot read it, by a qualified or a bare name.
func TestPreparedTableOutOfCustomerReach(t *testing.T) {
	ctx := context.Background()
	db := setup(t)
	ts := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	b := &warehouse.Batch{Events: []event.Event{{ActivityID: "b1", TS: ts, Customer: "bob", Activity: "ran_tests",
		Features: []byte(`{}`), ReceivedAt: ts, Source: event.SourceMCP}}}
	if err := db.Prepare(ctx, b); err != nil {
		t.Fatal(err)
	}
	defer b.Prepared.Release()
	table := b.Prepared.(*prepared).table
	name := table[strings.LastIndexByte(table, '.')+1:]
	for _, q := range []string{"SELECT * FROM " + table, "SELECT * FROM " + name, "SELECT * FROM " + prepCatalog + "." + name} {
		if tab, err := db.CustomerQuery(ctx, "alice", q, nil, 10); err == nil {
			t.Errorf("%s: answered %v", q, tab.Rows)
		}
	}
}
