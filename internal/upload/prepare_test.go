package upload

import (
	"context"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/activitybi/activitybi/internal/spool"
	"github.com/activitybi/activitybi/internal/warehouse"
	"github.com/activitybi/activitybi/internal/warehouse/duckdb"
)

// prepWatch wraps the DuckDB driver to see when Prepare runs.
type prepWatch struct {
	*duckdb.DB
	prepares     atomic.Int64
	prepared     chan struct{} // closed at the first Prepare
	loads        atomic.Int64
	loadPrepared atomic.Int64 // Loads of a batch that was prepared
	notOverlap   atomic.Int64 // first Loads that saw no Prepare while they ran
}

func (w *prepWatch) Prepare(b *warehouse.Batch) {
	if w.prepares.Add(1) == 1 {
		close(w.prepared)
	}
	w.DB.Prepare(b)
}

func (w *prepWatch) Load(ctx context.Context, b *warehouse.Batch) (warehouse.LoadResult, error) {
	if w.loads.Add(1) == 1 {
		// The batch after this one is built ahead and must be prepared
		// while this Load runs, not after it.
		select {
		case <-w.prepared:
		case <-time.After(10 * time.Second):
			w.notOverlap.Add(1)
		}
	}
	if b.Prepared != nil {
		w.loadPrepared.Add(1)
	}
	return w.DB.Load(ctx, b)
}

// TestPreparesBatchBuiltAhead: with a backlog, each batch after the first
// is built and prepared (warehouse.Preparer) while the one before it
// loads, and everything is stored once.
func TestPreparesBatchBuiltAhead(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db := openMigrated(t, dir)
	w := &prepWatch{DB: db, prepared: make(chan struct{})}
	spoolDir := filepath.Join(dir, "spool")
	u, err := New(Options{SpoolDir: spoolDir, Warehouse: w, BatchMaxRecords: 100})
	if err != nil {
		t.Fatal(err)
	}
	writeN(t, spoolDir, "a", 350)
	drain(t, u)
	if n := w.notOverlap.Load(); n != 0 {
		t.Fatal("the batch built ahead was not prepared while the first batch loaded")
	}
	// 4 batches (100, 100, 100, 50); the three after the first were built
	// ahead and prepared.
	if l, p, lp := w.loads.Load(), w.prepares.Load(), w.loadPrepared.Load(); l != 4 || p != 3 || lp != 3 {
		t.Fatalf("loads %d, prepares %d, loads of prepared batches %d; want 4, 3, 3", l, p, lp)
	}
	st := u.Status()
	if st.Inserted != 350 || st.Duplicates != 0 {
		t.Fatalf("status %+v", st)
	}
	tab, err := db.Query(context.Background(), "SELECT count(DISTINCT activity_id), max(_activity_occurrence) FROM claude_stream", 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := tab.Rows[0]; got[0] != int64(350) || got[1] != int64(350) {
		t.Fatalf("distinct ids, max occurrence = %v; want 350, 350", got)
	}
}

// TestPoisonDropsPreparation: a prepared batch whose one event the
// warehouse rejects is quarantined, and the preparation (holding that
// event) is not loaded with it: poison drops it, and the driver would not
// use it for the emptied batch either.
func TestPoisonDropsPreparation(t *testing.T) {
	t.Parallel()
	u, b := setup(t)
	u.opts.BatchMaxRecords = 1
	writeN(t, b.dir, "p", 3)
	b.db.mu.Lock()
	b.db.rejectID = "p1"
	b.db.mu.Unlock()
	drain(t, u)
	if got := b.count(t, "claude_stream"); got != 2 {
		t.Fatalf("rows %d, want 2", got)
	}
	if got := b.count(t, "claude_stream WHERE activity_id = 'p1'"); got != 0 {
		t.Fatal("the rejected event was stored")
	}
	if got := b.count(t, "upload_quarantine"); got != 1 {
		t.Fatalf("quarantined %d, want 1", got)
	}
	if u.Status().Quarantined != 1 {
		t.Fatalf("status %+v", u.Status())
	}
}

// tidyWatch wraps the DuckDB driver to see whether a commit's tidy-up
// (publish, delete segments, forget their offsets) overlaps the next load.
type tidyWatch struct {
	*duckdb.DB
	loads       atomic.Int64
	secondLoad  chan struct{} // closed when the second Load starts
	forgets     atomic.Int64
	notParallel atomic.Int64 // first ForgetOffsets that saw no second Load start
}

func (w *tidyWatch) Load(ctx context.Context, b *warehouse.Batch) (warehouse.LoadResult, error) {
	if w.loads.Add(1) == 2 {
		close(w.secondLoad)
	}
	return w.DB.Load(ctx, b)
}

func (w *tidyWatch) ForgetOffsets(ctx context.Context, segments []string) error {
	if w.forgets.Add(1) == 1 {
		select {
		case <-w.secondLoad:
		case <-time.After(10 * time.Second):
			w.notParallel.Add(1)
		}
	}
	return w.DB.ForgetOffsets(ctx, segments)
}

// TestTidyBesideNextLoad: with a backlog, the segments a batch finished are
// deleted and forgotten while the next batch loads, and by the time Drain
// returns every segment is deleted and its offset forgotten.
func TestTidyBesideNextLoad(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db := openMigrated(t, dir)
	w := &tidyWatch{DB: db, secondLoad: make(chan struct{})}
	spoolDir := filepath.Join(dir, "spool")
	u, err := New(Options{SpoolDir: spoolDir, Warehouse: w, BatchMaxRecords: 100})
	if err != nil {
		t.Fatal(err)
	}
	// The first batch is segment a, whole: it finishes a with more to come.
	writeN(t, spoolDir, "a", 100)
	writeN(t, spoolDir, "b", 250)
	drain(t, u)
	if w.notParallel.Load() != 0 {
		t.Fatal("segment a was forgotten before the next batch started loading")
	}
	segs, err := spool.ListSegments(spoolDir)
	if err != nil || len(segs) != 0 {
		t.Fatalf("segments left after Drain: %v, %v", segs, err)
	}
	if offs, err := db.Offsets(context.Background()); err != nil || len(offs) != 0 {
		t.Fatalf("offsets left after Drain: %v, %v", offs, err)
	}
	if len(u.offsets) != 0 {
		t.Fatalf("uploader still holds offsets %v", u.offsets)
	}
	c, err := spool.ReadCommitted(spoolDir)
	if err != nil || len(c) != 0 {
		t.Fatalf("published committed offsets %v, %v; want none", c, err)
	}
	if st := u.Status(); st.Inserted != 350 {
		t.Fatalf("status %+v", st)
	}
}

// openMigrated opens a migrated DuckDB warehouse in dir, closed at cleanup.
func openMigrated(t *testing.T, dir string) *duckdb.DB {
	t.Helper()
	db, err := duckdb.Open(context.Background(), duckdb.Options{Path: filepath.Join(dir, "w.duckdb")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return db
}
