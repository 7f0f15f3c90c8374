package duckdb

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/activitybi/activitybi/internal/event"
	"github.com/activitybi/activitybi/internal/warehouse"
)

// Prepared batches (upload.Preparer). While the uploader works through a
// backlog it reads the next batch while the current one commits; Prepare
// then does the part of that batch's Load that does not depend on what is
// stored, on a pool connection and outside writeMu, so on the core the
// commit leaves free:
//
//   - the events are deduplicated within the batch (dedupBatch);
//   - their occurrence values are planned as if every partition were empty:
//     the rank within the batch, and repeated_at from the next row of the
//     batch (planOccurrences with no stored state);
//   - the rows are appended into a table of an in-memory database attached
//     to the same DuckDB instance (prepCatalog), so every connection sees
//     it and nothing of it reaches the WAL.
//
// Load then takes the stored states as always. If every partition of the
// batch is in order (the normal case for a live stream), the planned values
// are the in-batch ones plus the partition's stored row count, and one
// INSERT ... SELECT from the prepared table stores the rows; the appending
// (the Go side of the Appender, a cgo call per value, and DuckDB's copy of
// the chunks) is off the critical path. A batch with a late partition, or
// with events already stored, goes the unprepared way with the same events.
// Either way Load drops the prepared table.
//
// The attached database is the process's own memory, which
// enable_external_access (off) does not cover. A customer statement cannot
// name it: CustomerQuery's check admits bare names of customer tables only
// (TestPreparedTableOutOfCustomerReach). An analyst's Query can read a
// prepared batch while it exists, as it can read claude_stream.

// prepCatalog names the in-memory database holding prepared batches.
const prepCatalog = "activitybi_prep"

// prepared is one prepared batch: its deduplicated events and the table
// holding them with their in-batch occurrence values.
type prepared struct {
	db    *DB
	table string // prepCatalog.main.batch_N
	evs   []*event.Event
	// src and n identify the batch's events at Prepare; Load uses the
	// preparation only for the same slice.
	src  *event.Event
	n    int
	once sync.Once
}

var _ warehouse.Prepared = (*prepared)(nil)

// Release drops the prepared table. It runs once; later calls do nothing.
func (p *prepared) Release() {
	p.once.Do(func() {
		p.db.prepHeld.Add(-1)
		done, err := p.db.reader()
		if err != nil {
			return // closed: the in-memory database went with the instance
		}
		defer done()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := p.db.sqlDB.ExecContext(ctx, "DROP TABLE IF EXISTS "+p.table); err != nil {
			p.db.log.Warn("warehouse: drop a prepared batch", "table", p.table, "err", err)
		}
	})
}

// Prepare prepares b's events for Load (see above) and sets b.Prepared.
// A batch without events is left alone.
func (db *DB) Prepare(ctx context.Context, b *warehouse.Batch) error {
	if b.Prepared != nil {
		b.Prepared.Release()
		b.Prepared = nil
	}
	if len(b.Events) == 0 {
		return nil
	}
	if db.opts.ReadOnly {
		return fmt.Errorf("prepare: warehouse %s is open read-only", db.path)
	}
	done, err := db.reader()
	if err != nil {
		return err
	}
	defer done()
	conn, err := db.sqlDB.Conn(ctx)
	if err != nil {
		return fmt.Errorf("prepare: connection: %w", err)
	}
	defer conn.Close()
	if err := db.attachPrep(ctx, conn); err != nil {
		return err
	}
	evs := dedupBatch(b.Events)
	plan := planOccurrences(evs, nil)
	name := fmt.Sprintf("batch_%d", db.prepSeq.Add(1))
	p := &prepared{db: db, table: prepCatalog + ".main." + name, evs: evs, src: &b.Events[0], n: len(b.Events)}
	db.prepHeld.Add(1)
	if _, err := conn.ExecContext(ctx, "CREATE TABLE "+p.table+" "+stageColumns); err != nil {
		p.Release()
		return fmt.Errorf("prepare: create table: %w", err)
	}
	if err := appendRows(ctx, conn, plan.rows, appendInto{prepCatalog, "main", name}); err != nil {
		p.Release()
		return fmt.Errorf("prepare: append rows: %w", err)
	}
	b.Prepared = p
	return nil
}

// PreparedHeld is the number of prepared batches not yet released.
func (db *DB) PreparedHeld() int { return int(db.prepHeld.Load()) }

// attachPrep attaches the in-memory database of prepared batches, once.
func (db *DB) attachPrep(ctx context.Context, conn *sql.Conn) error {
	db.prepMu.Lock()
	defer db.prepMu.Unlock()
	if db.prepAttached {
		return nil
	}
	if _, err := conn.ExecContext(ctx, "ATTACH IF NOT EXISTS ':memory:' AS "+prepCatalog); err != nil {
		return fmt.Errorf("prepare: attach %s: %w", prepCatalog, err)
	}
	db.prepAttached = true
	return nil
}

// takePrepared clears b.Prepared and returns it if it is this driver's
// preparation of b's events, else releases it and returns nil.
func (db *DB) takePrepared(b *warehouse.Batch) *prepared {
	pr := b.Prepared
	if pr == nil {
		return nil
	}
	b.Prepared = nil
	p, ok := pr.(*prepared)
	if !ok || p.db != db || p.n != len(b.Events) || p.n == 0 || p.src != &b.Events[0] {
		pr.Release()
		return nil
	}
	return p
}

// insertPrepared inserts a prepared table's rows into claude_stream, their
// occurrences shifted by each partition's stored row count (before).
func insertPrepared(ctx context.Context, conn *sql.Conn, table string, before map[partKey]partState) error {
	var cs, as []string
	var ns []int64
	for k, s := range before {
		if s.n > 0 {
			cs, as, ns = append(cs, k.customer), append(as, k.activity), append(ns, s.n)
		}
	}
	var q strings.Builder
	q.WriteString(`INSERT INTO claude_stream (activity_id, ts, customer, activity,
    anonymous_customer_id, feature_json, revenue_impact, link,
    _activity_occurrence, _activity_repeated_at, _received_at, _source)
SELECT s.activity_id, s.ts, s.customer, s.activity, s.anonymous_customer_id,
    s.feature_json::JSON, s.revenue_impact, s.link, `)
	var args []any
	if len(cs) == 0 {
		q.WriteString("s.occ, s.rep, s.received_at, s.source\nFROM " + table + " s")
	} else {
		q.WriteString("s.occ + coalesce(b.n, 0), s.rep, s.received_at, s.source\nFROM " + table + ` s
LEFT JOIN (SELECT unnest(?::VARCHAR[]) AS customer, unnest(?::VARCHAR[]) AS activity, unnest(?::BIGINT[]) AS n) b
  ON s.customer = b.customer AND s.activity = b.activity`)
		args = []any{cs, as, ns}
	}
	_, err := conn.ExecContext(ctx, q.String(), args...)
	return err
}
