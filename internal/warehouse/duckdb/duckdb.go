// Package duckdb is the embedded warehouse driver: one DuckDB file owned by
// one process (the core, `activitybi serve`), loaded through the Appender and
// queried read-only by analysts.
//
// Every database this driver opens has enable_external_access=false and a
// locked configuration, so no SQL that ever runs in this process can read or
// write files, ATTACH, INSTALL or LOAD. That is the structural guard behind
// Query; the statement check in safesql.go only gives clear refusals.
//
// Connections: one dedicated writer connection (it holds the TEMP staging
// tables) serialized by writeMu, two loader connections on which Prepare
// fills appenders and Load then runs those batches' transactions (under
// writeMu too; load_prepare.go), a small pool for readers, and a pool of
// customer connections whose table names resolve to per-customer views
// (customer.go). Load, Migrate and ForgetOffsets take writeMu; Query,
// CustomerQuery, Offsets and Stats do not.
//
// Lock order: writeMu, then closeMu, then custMu. prepMu and a loader
// connection's mu (load_prepare.go) are never held together; when writeMu
// is held too, it was taken first.
package duckdb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/duckdb/duckdb-go/v2"

	"github.com/activitybi/activitybi/internal/warehouse"
)

var (
	_ warehouse.Driver   = (*DB)(nil)
	_ warehouse.Preparer = (*DB)(nil)
)

// DefaultThreads is DuckDB's thread count when Options.Threads is 0:
// warehouse.ThreadsFor(runtime.NumCPU()), one less than the machine's CPUs
// and at least 1.
var DefaultThreads = warehouse.ThreadsFor(runtime.NumCPU())

// minPoolThreads is the thread count below which the connection pools stop
// shrinking: a query's calling thread runs it even with threads=1, so three
// readers still run three queries at once. It keeps the pools at the size
// they had when the default was a fixed 2 threads.
const minPoolThreads = 2

// poolConns is the size of each connection pool (the writer plus readers,
// and the customer pool) for a thread count.
func poolConns(threads int) int { return max(threads, minPoolThreads) + 2 }

const (
	// dirMode is the permission of the warehouse directory: the data is
	// private to the user running activitybi.
	dirMode = 0o700

	// DefaultMemoryLimit bounds DuckDB's buffer pool; DuckDB's own default
	// is 80% of RAM, far above the core's memory target.
	DefaultMemoryLimit = "512MB"
	// DefaultQueryTimeout bounds one analyst query.
	DefaultQueryTimeout = 60 * time.Second

	// orFilterThreshold lets a hash join push up to this many distinct
	// build-side values into the probe-side scan as an IN filter, which is
	// checked against zonemaps. Load's point updates (previous last rows,
	// anchors of late events) rely on it to touch only the row groups that
	// hold those rows; DuckDB's default is 50.
	orFilterThreshold = 4096
)

// Options configure Open. The zero value of each field means its default.
type Options struct {
	// Path is the .duckdb file; required. Its directory is created with
	// mode 0700 if missing.
	Path string
	// ReadOnly opens the file with access_mode=READ_ONLY, for a second
	// process that reads while no core holds the file. Load, Migrate and
	// ForgetOffsets then fail. Default false (read-write).
	ReadOnly bool
	// MemoryLimit is DuckDB's memory_limit, e.g. "512MB". Default "512MB".
	MemoryLimit string
	// Threads is DuckDB's thread count (the calling thread included), a
	// global setting that applies to loads and queries alike. Default
	// DefaultThreads: max(1, NumCPU-1), see ThreadsFor.
	Threads int
	// CheckpointThreshold is DuckDB's checkpoint_threshold: the WAL size
	// at which a commit also checkpoints. Default "64MB"
	// (DefaultCheckpointThreshold; see load_checkpoint.go for why it is
	// above DuckDB's 16MB).
	CheckpointThreshold string
	// StorageVersion is DuckDB's storage_compatibility_version: the file
	// format a new warehouse file is created with (an existing file keeps
	// its own). Default "v1.5.0" (DefaultStorageVersion).
	StorageVersion string
	// IdleCheckpointBytes is the WAL size from which IdleCheckpoint
	// checkpoints. Default 4 MiB (DefaultIdleCheckpointBytes).
	IdleCheckpointBytes int64
	// QueryTimeout bounds each Query; on expiry the statement is
	// interrupted. Default 60s.
	QueryTimeout time.Duration
	// Logger receives debug logs of loads and migrations. Default: discard.
	Logger *slog.Logger
}

func (o *Options) setDefaults() error {
	if o.Path == "" {
		return errors.New("duckdb: Options.Path is required")
	}
	if strings.ContainsAny(o.Path, "?#") {
		return fmt.Errorf("duckdb: path %q must not contain '?' or '#'", o.Path)
	}
	if o.MemoryLimit == "" {
		o.MemoryLimit = DefaultMemoryLimit
	}
	if o.CheckpointThreshold == "" {
		o.CheckpointThreshold = DefaultCheckpointThreshold
	}
	if o.StorageVersion == "" {
		o.StorageVersion = DefaultStorageVersion
	}
	if o.IdleCheckpointBytes == 0 {
		o.IdleCheckpointBytes = DefaultIdleCheckpointBytes
	}
	if o.IdleCheckpointBytes < 0 {
		return fmt.Errorf("duckdb: IdleCheckpointBytes must be positive, got %d", o.IdleCheckpointBytes)
	}
	if o.Threads == 0 {
		o.Threads = DefaultThreads
	}
	if o.Threads < 0 {
		return fmt.Errorf("duckdb: Threads must be positive, got %d", o.Threads)
	}
	if o.QueryTimeout == 0 {
		o.QueryTimeout = DefaultQueryTimeout
	}
	if o.QueryTimeout < 0 {
		return fmt.Errorf("duckdb: QueryTimeout must be positive, got %s", o.QueryTimeout)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return nil
}

// LockedError is returned by Open when another process holds the database
// file. The usual cause is a running core.
type LockedError struct {
	Path string
	Err  error // DuckDB's error, naming the process that holds the lock
}

func (e *LockedError) Error() string {
	return "warehouse " + e.Path + " is locked by another process (is `activitybi serve` running?)"
}

func (e *LockedError) Unwrap() error { return e.Err }

// DB is the DuckDB warehouse driver. It is safe for concurrent use; loads
// are serialized.
type DB struct {
	opts      Options
	path      string
	log       *slog.Logger
	connector *duckdb.Connector
	sqlDB     *sql.DB

	// writeMu serializes every write; it guards writer and the fields below.
	writeMu sync.Mutex
	writer  *sql.Conn // nil in read-only mode
	staged  bool      // the writer's TEMP staging tables exist
	closed  bool
	// parts mirrors stream_partitions (nil: not read yet); see
	// partitionStates.
	parts map[partKey]partState

	// prepMu guards the loaders' holder, gen and busy, prepGen and
	// prepClosed (load_prepare.go).
	prepMu     sync.Mutex
	loaders    [loaderConns]*loaderConn
	prepGen    uint64
	prepClosed bool

	// closeMu guards closing against readers starting (RLock while reading).
	closeMu  sync.RWMutex
	isClosed bool

	// custMu guards cust, the pool of customer connections (customer.go):
	// taking a connection holds RLock, Migrate swaps in a new pool.
	custMu sync.RWMutex
	cust   *sql.DB
	// checked caches statements that passed the customer-mode check.
	checked checkedCache

	// testHookAfterInsert, when set by a test, runs inside Load's
	// transaction after the rows are inserted; an error aborts the load.
	testHookAfterInsert func() error
	// preparedLoads counts Loads that ran on a loader connection with
	// rows Prepare appended (for tests and the debug log).
	preparedLoads atomic.Int64
}

// openPaths stops one process from opening the same file twice: DuckDB would
// hand both the same cached instance, and two drivers would then each think
// they are the only writer.
var (
	openPathsMu sync.Mutex
	openPaths   = map[string]bool{}
)

// Open opens (creating if needed) the warehouse file. It does not migrate:
// call Migrate before the first Load.
func Open(ctx context.Context, opts Options) (*DB, error) {
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(opts.Path)
	if err != nil {
		return nil, fmt.Errorf("duckdb: resolve path: %w", err)
	}
	if !opts.ReadOnly {
		if err := os.MkdirAll(filepath.Dir(abs), dirMode); err != nil {
			return nil, fmt.Errorf("duckdb: create warehouse directory: %w", err)
		}
	}

	openPathsMu.Lock()
	if openPaths[abs] {
		openPathsMu.Unlock()
		return nil, fmt.Errorf("warehouse %s is already open in this process", abs)
	}
	openPaths[abs] = true
	openPathsMu.Unlock()
	release := func() {
		openPathsMu.Lock()
		delete(openPaths, abs)
		openPathsMu.Unlock()
	}

	q := url.Values{}
	if opts.ReadOnly {
		q.Set("access_mode", "READ_ONLY")
	}
	q.Set("memory_limit", opts.MemoryLimit)
	q.Set("threads", strconv.Itoa(opts.Threads))
	q.Set("enable_external_access", "false")
	q.Set("dynamic_or_filter_threshold", strconv.Itoa(orFilterThreshold))
	q.Set("checkpoint_threshold", opts.CheckpointThreshold)
	q.Set("storage_compatibility_version", opts.StorageVersion)
	// These options are all applied when the database is created (in no
	// particular order: the driver walks a map); lock_configuration then
	// refuses every SET, so no statement can turn external access back on
	// (TestOpenOptions checks both settings on every run).
	q.Set("lock_configuration", "true")
	connector, err := duckdb.NewConnector(abs+"?"+q.Encode(), nil)
	if err != nil {
		release()
		if isLockError(err) {
			return nil, &LockedError{Path: abs, Err: err}
		}
		return nil, fmt.Errorf("duckdb: open %s: %w", abs, err)
	}
	sqlDB := sql.OpenDB(connector)
	// One writer connection plus readers; DuckDB parallelizes inside a
	// query, so more readers than threads would only queue.
	// The loader connections (load_prepare.go) come on top.
	sqlDB.SetMaxOpenConns(poolConns(opts.Threads) + loaderConns)
	sqlDB.SetMaxIdleConns(poolConns(opts.Threads) + loaderConns)
	sqlDB.SetConnMaxIdleTime(0)
	sqlDB.SetConnMaxLifetime(0)

	db := &DB{opts: opts, path: abs, log: opts.Logger, connector: connector, sqlDB: sqlDB,
		cust: newCustomerPool(connector, poolConns(opts.Threads))}
	if !opts.ReadOnly {
		db.writer, err = sqlDB.Conn(ctx)
		if err == nil {
			err = db.openLoaders(ctx)
		}
		if err != nil {
			for _, lc := range db.loaders {
				if lc != nil {
					closeConn(lc.conn)
				}
			}
			if db.writer != nil {
				db.writer.Close()
			}
			db.cust.Close()
			sqlDB.Close()
			release()
			return nil, fmt.Errorf("duckdb: writer connection: %w", err)
		}
	}
	db.log.Debug("warehouse opened", "path", abs, "read_only", opts.ReadOnly,
		"memory_limit", opts.MemoryLimit, "threads", opts.Threads)
	return db, nil
}

// isLockError recognizes DuckDB's "Could not set lock on file" IO error,
// raised when another process holds the file (the lock is an fcntl lock, so
// it is only ever held by another process).
func isLockError(err error) bool {
	return strings.Contains(err.Error(), "Could not set lock on file")
}

// Path is the absolute path of the database file.
func (db *DB) Path() string { return db.path }

// Close checkpoints the WAL into the database file and releases it. It waits
// for a running Load and for running queries.
func (db *DB) Close() error {
	db.writeMu.Lock()
	defer db.writeMu.Unlock()
	if db.closed {
		return nil
	}
	db.closed = true
	db.closeMu.Lock()
	db.isClosed = true
	db.closeMu.Unlock()

	var errs []error
	db.closeLoaders()
	if db.writer != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		if _, err := db.writer.ExecContext(ctx, "CHECKPOINT"); err != nil {
			errs = append(errs, fmt.Errorf("checkpoint: %w", err))
		}
		cancel()
		if err := db.writer.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	db.custMu.Lock()
	if err := db.cust.Close(); err != nil {
		errs = append(errs, err)
	}
	db.custMu.Unlock()
	if err := db.sqlDB.Close(); err != nil {
		errs = append(errs, err)
	}
	openPathsMu.Lock()
	delete(openPaths, db.path)
	openPathsMu.Unlock()
	return errors.Join(errs...)
}

// writable returns the writer connection or why there is none. writeMu held.
func (db *DB) writable() (*sql.Conn, error) {
	if db.closed {
		return nil, warehouse.ErrClosed
	}
	if db.writer == nil {
		return nil, fmt.Errorf("warehouse %s is open read-only", db.path)
	}
	return db.writer, nil
}

// reader starts a read; the returned func ends it. Reads fail after Close.
func (db *DB) reader() (func(), error) {
	db.closeMu.RLock()
	if db.isClosed {
		db.closeMu.RUnlock()
		return nil, warehouse.ErrClosed
	}
	return db.closeMu.RUnlock, nil
}
