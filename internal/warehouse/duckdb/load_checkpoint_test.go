package duckdb

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/activitybi/activitybi/internal/event"
	"github.com/activitybi/activitybi/internal/warehouse"
)

// checkpointEvents makes n in-order events of one partition.
func checkpointEvents(n, from int) []event.Event {
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	evs := make([]event.Event, n)
	for i := range evs {
		evs[i] = testEvent("acme", "called_tool", fmt.Sprintf("ev-%06d", from+i), t0.Add(time.Duration(from+i)*time.Millisecond))
	}
	return evs
}

func TestCheckpointOptions(t *testing.T) {
	t.Parallel()
	db := openTest(t, Options{})
	var thr string
	if err := db.sqlDB.QueryRow(`SELECT current_setting('checkpoint_threshold')::VARCHAR`).Scan(&thr); err != nil {
		t.Fatal(err)
	}
	// DuckDB prints 64MB as "61.0 MiB" (64,000,000 bytes).
	if thr != "61.0 MiB" {
		t.Fatalf("checkpoint_threshold = %q, want 61.0 MiB (64MB)", thr)
	}
	if db.opts.IdleCheckpointBytes != DefaultIdleCheckpointBytes {
		t.Fatalf("IdleCheckpointBytes default %d", db.opts.IdleCheckpointBytes)
	}
	_, err := Open(context.Background(), Options{Path: filepath.Join(t.TempDir(), "w.duckdb"), IdleCheckpointBytes: -1})
	if err == nil || !strings.Contains(err.Error(), "IdleCheckpointBytes must be positive") {
		t.Fatalf("negative IdleCheckpointBytes: %v", err)
	}
}

// TestIdleCheckpoint loads rows (which stay in the WAL, far below the
// automatic threshold), then checks that IdleCheckpoint leaves a WAL below
// its size alone, folds a larger one into the file, and that every row is
// still there, also after reopening.
func TestIdleCheckpoint(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "w.duckdb")
	db, err := Open(ctx, Options{Path: path, IdleCheckpointBytes: 1 << 40})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Load(ctx, &warehouse.Batch{Events: checkpointEvents(2000, 0)}); err != nil {
		t.Fatal(err)
	}
	wal := func() int64 {
		t.Helper()
		fi, err := os.Stat(path + walSuffix)
		if os.IsNotExist(err) {
			return 0
		}
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	before := wal()
	if before == 0 {
		t.Fatal("no WAL after a load: the load checkpointed by itself")
	}
	ran, err := db.IdleCheckpoint(ctx)
	if err != nil || ran {
		t.Fatalf("IdleCheckpoint below its size: ran=%v err=%v", ran, err)
	}
	if got := wal(); got != before {
		t.Fatalf("WAL changed from %d to %d bytes without a checkpoint", before, got)
	}

	db.opts.IdleCheckpointBytes = before // at the size: checkpoint
	// A reader in the middle of a transaction does not stop it.
	rd, err := db.sqlDB.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rd.ExecContext(ctx, "BEGIN TRANSACTION READ ONLY"); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := rd.QueryRowContext(ctx, "SELECT count(*) FROM claude_stream").Scan(&n); err != nil || n != 2000 {
		t.Fatalf("reader count %d, %v", n, err)
	}
	ran, err = db.IdleCheckpoint(ctx)
	if err != nil || !ran {
		t.Fatalf("IdleCheckpoint at its size: ran=%v err=%v", ran, err)
	}
	if err := rd.QueryRowContext(ctx, "SELECT count(*) FROM claude_stream").Scan(&n); err != nil || n != 2000 {
		t.Fatalf("reader count after the checkpoint %d, %v", n, err)
	}
	rd.ExecContext(ctx, "COMMIT")
	rd.Close()
	if got := wal(); got >= before {
		t.Fatalf("WAL %d bytes after the checkpoint, was %d", got, before)
	}

	// Loads go on after it, occurrences continue, and all of it survives a reopen.
	if _, err := db.Load(ctx, &warehouse.Batch{Events: checkpointEvents(1000, 2000)}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openTest(t, Options{Path: path})
	var maxOcc int64
	if err := db.sqlDB.QueryRow(`SELECT count(*), max(_activity_occurrence) FROM claude_stream`).Scan(&n, &maxOcc); err != nil {
		t.Fatal(err)
	}
	if n != 3000 || maxOcc != 3000 {
		t.Fatalf("after reopen: %d rows, max occurrence %d; want 3000, 3000", n, maxOcc)
	}
	if _, err := db.IdleCheckpoint(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestIdleCheckpointClosed: after Close (which checkpoints) there is no
// WAL, and IdleCheckpoint has nothing to do.
func TestIdleCheckpointClosed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, err := Open(ctx, Options{Path: filepath.Join(t.TempDir(), "w.duckdb"), IdleCheckpointBytes: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Load(ctx, &warehouse.Batch{Events: checkpointEvents(10, 0)}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	// Close checkpointed, so there is no WAL and nothing to do.
	if ran, err := db.IdleCheckpoint(ctx); ran || err != nil {
		t.Fatalf("IdleCheckpoint after Close: ran=%v err=%v", ran, err)
	}
}

// TestStorageVersion: a new file gets DefaultStorageVersion; a file created
// with DuckDB's old default keeps its version when the driver opens it with
// the new default, and loads and checkpoints into it go on.
func TestStorageVersion(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	version := func(db *DB) string {
		t.Helper()
		var tags string
		if err := db.sqlDB.QueryRow(`SELECT tags['storage_version'] FROM duckdb_databases() WHERE NOT internal AND database_name NOT IN ('temp', 'system')`).Scan(&tags); err != nil {
			t.Fatal(err)
		}
		return tags
	}
	fresh := setup(t)
	if got := version(fresh); got != "v1.5.0+" {
		t.Fatalf("new file storage version %q, want v1.5.0+", got)
	}

	path := filepath.Join(t.TempDir(), "old.duckdb")
	old, err := Open(ctx, Options{Path: path, StorageVersion: "v0.10.2"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := old.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := old.Load(ctx, &warehouse.Batch{Events: checkpointEvents(500, 0)}); err != nil {
		t.Fatal(err)
	}
	before := version(old)
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}
	db := openTest(t, Options{Path: path, IdleCheckpointBytes: 1})
	if got := version(db); got != before || got == "v1.5.0+" {
		t.Fatalf("reopened old file has storage version %q, created with %q", got, before)
	}
	if _, err := db.Load(ctx, &warehouse.Batch{Events: checkpointEvents(500, 500)}); err != nil {
		t.Fatal(err)
	}
	if ran, err := db.IdleCheckpoint(ctx); err != nil || !ran {
		t.Fatalf("IdleCheckpoint on the old file: ran=%v err=%v", ran, err)
	}
	var n, maxOcc int64
	if err := db.sqlDB.QueryRow(`SELECT count(*), max(_activity_occurrence) FROM claude_stream`).Scan(&n, &maxOcc); err != nil {
		t.Fatal(err)
	}
	if n != 1000 || maxOcc != 1000 {
		t.Fatalf("%d rows, max occurrence %d; want 1000, 1000", n, maxOcc)
	}
}
