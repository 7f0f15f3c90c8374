package duckdb

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"
)

// Checkpoints: DuckDB writes each commit to the WAL and folds the WAL into
// the database file (a checkpoint: row groups compressed and written, the
// primary-key index written out) once the WAL passes checkpoint_threshold.
// That checkpoint runs inside the COMMIT of whichever load crossed the
// threshold, so at DuckDB's default of 16 MiB a backlog drain paid 200-370
// ms every third or fourth 20,000-event batch (bench/README.md). The driver
// opens the file with a higher threshold (DefaultCheckpointThreshold), so a
// backlog is loaded with few checkpoints, and IdleCheckpoint lets the
// uploader fold the WAL in once it has caught up, from a quarter of the
// size DuckDB would wait for: in steady traffic the WAL stays smaller than
// before, and the higher threshold is only a backstop while there is a
// backlog.
//
// Durability does not change: a commit is durable once its WAL write is
// fsynced, whether or not a checkpoint follows; a crash with a large WAL
// only makes the next open replay more of it.

const (
	// DefaultCheckpointThreshold is DuckDB's checkpoint_threshold as the
	// driver opens it: the WAL size at which a commit checkpoints, reached
	// only while the uploader works through a backlog. Rows not yet
	// checkpointed are held uncompressed in memory: at 128MB a backlog
	// drain raised the core's RSS by about 150 MB, so 64MB is the
	// compromise (about 340,000 events: 200,000 leave 38 MB of WAL).
	DefaultCheckpointThreshold = "64MB"

	// DefaultStorageVersion is the file format of a new warehouse file.
	// DuckDB's default (v0.10.2, readable by every DuckDB since) keeps
	// the primary-key index in its old layout, so each checkpoint converts
	// the index back to that layout (ART TransformToDeprecated in a CPU
	// profile); v1.5.0 stores it as it is held in memory. Such a file is
	// readable by DuckDB 1.5 and later only; activitybi ships its own DuckDB.
	// A file created earlier keeps its version.
	DefaultStorageVersion = "v1.5.0"

	// DefaultIdleCheckpointBytes is the WAL size from which
	// IdleCheckpoint checkpoints: a quarter of DuckDB's own 16 MiB, since
	// rows not yet checkpointed are held uncompressed in memory. At 10K
	// events/s that is a checkpoint every second or two, between batches;
	// it took the core's peak RSS from 197 to 184 MB in one pair of runs
	// (bench/README.md).
	DefaultIdleCheckpointBytes = 4 << 20

	// walSuffix names the WAL beside the database file.
	walSuffix = ".wal"
)

// IdleCheckpoint checkpoints the WAL into the database file if it holds at
// least Options.IdleCheckpointBytes, and reports whether it did. The
// uploader calls it when it has caught up (upload.IdleCheckpointer); a load
// that comes in meanwhile waits for it, as it would have for the automatic
// checkpoint in its own commit.
func (db *DB) IdleCheckpoint(ctx context.Context) (bool, error) {
	size, err := db.walSize()
	if err != nil || size < db.opts.IdleCheckpointBytes {
		return false, err
	}
	db.writeMu.Lock()
	defer db.writeMu.Unlock()
	conn, err := db.writable()
	if err != nil {
		return false, err
	}
	start := time.Now()
	if _, err := conn.ExecContext(ctx, "CHECKPOINT"); err != nil {
		return false, fmt.Errorf("checkpoint: %w", err)
	}
	db.log.Debug("warehouse idle checkpoint", "wal_bytes", size, "took", time.Since(start))
	return true, nil
}

// walSize is the size of the WAL file; 0 when there is none (everything
// is checkpointed).
func (db *DB) walSize() (int64, error) {
	fi, err := os.Stat(db.path + walSuffix)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("checkpoint: %w", err)
	}
	return fi.Size(), nil
}
