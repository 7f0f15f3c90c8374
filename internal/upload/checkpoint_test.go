package upload

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/activitybi/activitybi/internal/warehouse/duckdb"
)

// TestRunCheckpointsWhenIdle: with the DuckDB driver, Run folds the WAL
// into the database file once it has caught up (and the WAL holds at least
// the driver's IdleCheckpointBytes), not after each full batch of a
// backlog, and counts it; Drain does not checkpoint.
func TestRunCheckpointsWhenIdle(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "w.duckdb")
	db, err := duckdb.Open(context.Background(), duckdb.Options{Path: path, IdleCheckpointBytes: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	spoolDir := filepath.Join(dir, "spool")
	u, err := New(Options{SpoolDir: spoolDir, Warehouse: db, Registerer: reg, PollInterval: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	walSize := func() int64 {
		fi, err := os.Stat(path + ".wal")
		if os.IsNotExist(err) {
			return 0
		}
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	done := map[string]string{"outcome": "done"}

	writeN(t, spoolDir, "d", 300)
	drain(t, u)
	if walSize() == 0 {
		t.Fatal("no WAL after Drain: something checkpointed")
	}
	if n := counter(t, reg, "activitybi_upload_idle_checkpoints_total", done); n != 0 {
		t.Fatalf("Drain ran %v idle checkpoints", n)
	}

	// A backlog of ten full batches and a last one that is not full.
	writeN(t, spoolDir, "r", 1050)
	reg = prometheus.NewRegistry()
	u, err = New(Options{SpoolDir: spoolDir, Warehouse: db, Registerer: reg, PollInterval: 5 * time.Millisecond, BatchMaxRecords: 100})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error)
	go func() { errc <- u.Run(ctx) }()
	deadline := time.Now().Add(30 * time.Second)
	for counter(t, reg, "activitybi_upload_idle_checkpoints_total", done) == 0 || u.Status().Inserted != 1050 {
		if time.Now().After(deadline) {
			t.Fatalf("no idle checkpoint: status %+v", u.Status())
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // more idle looks
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	// After the last batch, and perhaps once more for the offsets of the
	// deleted segment forgotten after it; never after the full batches.
	if n := counter(t, reg, "activitybi_upload_idle_checkpoints_total", done); n > 2 {
		t.Fatalf("%v idle checkpoints for one backlog", n)
	}
	if n := counter(t, reg, "activitybi_upload_idle_checkpoints_total", map[string]string{"outcome": "failed"}); n != 0 {
		t.Fatalf("%v idle checkpoints failed", n)
	}
	// Nothing was loaded after the last checkpoint, so the WAL is empty.
	if n := walSize(); n != 0 {
		t.Fatalf("WAL holds %d bytes after an idle checkpoint", n)
	}
	tab, err := db.Query(context.Background(), "SELECT count(*) FROM claude_stream", 1)
	if err != nil {
		t.Fatal(err)
	}
	if got := tab.Rows[0][0]; got != int64(1350) {
		t.Fatalf("rows %v, want 1350", got)
	}
}
