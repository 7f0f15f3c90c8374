package duckdb

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"sync"
	goUnsafe "unsafe"

	"github.com/duckdb/duckdb-go/v2"

	"github.com/activitybi/activitybi/internal/event"
	"github.com/activitybi/activitybi/internal/warehouse"
)

// Work done ahead: a Load holds writeMu from its first statement to its
// COMMIT, and part of the work it did there depends on the batch alone:
// dedup, grouping the events by partition and sorting each group, and
// handing every value to the appender (AppendRow, a cgo call per string
// value). In a CPU profile of a 1M-event drain that was ~1.3 s of the ~5.4 s
// its loads took back to back (bench/README.md, "Session 12"). Prepare
// does it for a batch before Load is called — the uploader calls it on the
// batch it builds ahead while the previous batch commits, so the work runs
// on the other CPU.
//
// The appender's rows are what DuckDB's INSERT reads when the appender is
// flushed, inside the load's transaction; filling it needs a connection but
// no transaction. So Prepare fills a query appender on a loader connection
// of its own (two of them, taken in turn: one loads a batch while the other
// is filled with the next), and the Load of that batch runs its whole
// transaction on that connection. What needs the stored state stays in
// Load: the partitions' counts and last rows (db.parts), hence each row's
// occurrence number. The appended rows carry the number within the batch's
// partition (1, 2, ...) and their partition's index, and the INSERT adds
// the partition's stored count, bound by Load as a list in a connection
// variable (or NULLs both columns for a late partition, which is
// renumbered afterwards). _activity_repeated_at is the next ts in the
// partition within the batch, known ahead; for a partition's previous last
// row it is set by the UPDATE that follows, as without Prepare.
//
// A preparation that is never loaded (the uploader drops a batch built
// ahead when the batch before it fails) keeps its loader until a later
// Prepare takes the loader back; Load of such a batch, or a second Load of
// a batch after a failed one, appends the rows itself on the writer
// connection, and Load of a batch whose Events were replaced since Prepare
// ignores the preparation altogether. What a Load stores never depends on
// whether Prepare ran.

// loaderConns is the number of loader connections (see above).
const loaderConns = 2

// loadBasesVar is the connection variable through which Load tells the
// prepared INSERT each partition's stored count (-1 for a late partition).
const loadBasesVar = "activitybi_load_bases"

// appendQueryPrepared inserts the rows of a prepared appender: as
// appendQuery, with occ the row's number within its partition in the batch
// and part the partition's 1-based index into loadBasesVar.
//
// The rows must go in only inside their Load's transaction, after Load
// has set loadBasesVar (and Load resets it afterwards). DuckDB's appender
// also flushes by itself once it holds enough rows; should that ever
// happen while Prepare fills it, outside any transaction, the INSERT fails
// on the unset variable instead of committing rows without their offsets,
// and the load appends them itself. (Prepare also leaves batches larger
// than preparedMaxRows to Load, well below DuckDB's automatic flush at
// 204,800 rows.)
const appendQueryPrepared = `INSERT INTO claude_stream (activity_id, ts, customer, activity,
    anonymous_customer_id, feature_json, revenue_impact, link,
    _activity_occurrence, _activity_repeated_at, _received_at, _source)
SELECT activity_id, ts, customer, activity, anonymous_customer_id,
    feature_json::JSON, revenue_impact, link,
    CASE WHEN base IS NULL THEN error('` + preparedGuardMsg + `')
         WHEN base >= 0 THEN occ + base END,
    CASE WHEN base >= 0 THEN rep END, received_at, source
FROM (SELECT *, list_extract(getvariable('` + loadBasesVar + `'), part) AS base FROM appended_rows)`

// preparedGuardMsg is the error of a prepared row inserted without its
// partition's count (see appendQueryPrepared).
const preparedGuardMsg = "activitybi: prepared rows flushed outside their load"

// preparedMaxRows is the largest batch (after dedup) whose rows Prepare
// appends ahead.
const preparedMaxRows = 100_000

// appendWidth is the number of values per appended row (appendColumns);
// occSlot and repSlot are the occurrence values, partSlot the partition
// index of a prepared row.
const (
	appendWidth = 12
	occSlot     = 8
	repSlot     = 9
	partSlot    = 12
)

// preparedBatch is the part of a Load that depends only on the batch.
type preparedBatch struct {
	// events is the Batch.Events it was made from; Load uses the
	// preparation only if the batch still holds that same slice.
	events []event.Event
	evs    []*event.Event // dedupBatch(events)
	groups []partGroup    // groupPartitions(evs)
	// loader holds evs in its appender while loader.holder is this
	// preparation; nil if Prepare found no loader free.
	loader *loaderConn
}

// loaderConn is a connection that Prepare fills an appender on and Load
// then runs that batch's transaction on.
type loaderConn struct {
	// Guarded by DB.prepMu.
	holder *preparedBatch // whose rows app holds; nil if none
	gen    uint64         // DB.prepGen when holder took it
	busy   bool           // being filled or loading: no one else may take it

	// mu is held while the connection is used (filled, loading, closed);
	// busy makes it uncontended except against Close.
	mu     sync.Mutex
	conn   *sql.Conn
	app    *duckdb.Appender // holder's rows, not flushed yet
	closed bool
}

// Prepare does the part of a Load of b that needs neither the writer lock
// nor the stored state — dedup of the events, grouping them by partition
// in (ts, activity_id) order, and appending their values to an appender of
// a loader connection — and keeps it in b.Prepared for Load. It may run
// while another batch loads; b must not be used by anyone else meanwhile,
// and the caller should Load the batches it prepares in the order it
// prepared them (an older preparation not loaded yet may lose its loader
// to a newer one, which makes its Load do the work itself). A Load of a
// batch whose Events slice was replaced after Prepare (the uploader does
// that when it quarantines a rejected record) ignores b.Prepared.
func (db *DB) Prepare(b *warehouse.Batch) {
	p := prepareBatch(b.Events)
	b.Prepared = p
	if len(p.evs) == 0 || len(p.evs) > preparedMaxRows {
		return
	}
	lc := db.takeLoader(p)
	if lc == nil {
		return
	}
	err := lc.fill(p)
	db.prepMu.Lock()
	lc.busy = false
	if err != nil {
		lc.holder = nil
		p.loader = nil
		db.log.Debug("warehouse prepare: appender not filled; the load will append itself", "err", err)
	}
	db.prepMu.Unlock()
}

func prepareBatch(events []event.Event) *preparedBatch {
	evs := dedupBatch(events)
	return &preparedBatch{events: events, evs: evs, groups: groupPartitions(evs)}
}

// preparedFor returns b's preparation if Prepare made it from the events b
// holds now, else makes one (without a loader).
func preparedFor(b *warehouse.Batch) *preparedBatch {
	if p, ok := b.Prepared.(*preparedBatch); ok && sameSlice(p.events, b.Events) {
		return p
	}
	return prepareBatch(b.Events)
}

// sameSlice reports whether a and b are the same slice (same array, same
// length).
func sameSlice(a, b []event.Event) bool {
	return len(a) == len(b) && goUnsafe.SliceData(a) == goUnsafe.SliceData(b)
}

// takeLoader returns a loader for p, marked busy and held by p: a free
// one, else the one held by the oldest preparation not being loaded (its
// rows fill then discards; p is newer than every holder). nil when every
// loader is in use, or the database is read-only or closed.
func (db *DB) takeLoader(p *preparedBatch) *loaderConn {
	db.prepMu.Lock()
	defer db.prepMu.Unlock()
	if db.prepClosed || db.writer == nil {
		return nil
	}
	var lc *loaderConn
	var old *loaderConn
	for i := range db.loaders {
		c := db.loaders[i]
		if c == nil || c.busy {
			continue // retired (endLoad), or in use
		}
		if c.holder == nil {
			lc = c
			break
		}
		if old == nil || c.gen < old.gen {
			old = c // every holder is older than p
		}
	}
	if lc == nil {
		if old == nil {
			return nil
		}
		lc = old
		lc.holder.loader = nil
	}
	db.prepGen++
	lc.holder, lc.gen, lc.busy = p, db.prepGen, true
	p.loader = lc
	return lc
}

// fill appends p's rows to a new appender on lc. lc is busy.
func (lc *loaderConn) fill(p *preparedBatch) error {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	if lc.closed {
		return warehouse.ErrClosed
	}
	if lc.app != nil {
		// Rows of a preparation that was never loaded.
		lc.discard()
	}
	types, err := appendTypes()
	if err != nil {
		return err
	}
	it, err := duckdb.NewTypeInfo(duckdb.TYPE_INTEGER)
	if err != nil {
		return err
	}
	types = append(types, it)
	return lc.conn.Raw(func(dc any) error {
		a, err := duckdb.NewQueryAppender(dc.(driver.Conn), appendQueryPrepared, "appended_rows", types,
			append(appendColumns[:len(appendColumns):len(appendColumns)], "part"))
		if err != nil {
			return err
		}
		row := make([]driver.Value, appendWidth+1)
		// Rows in batch order; each one's number and next ts within its
		// partition come from the sorted groups.
		occ := make([]int32, len(p.evs))
		part := make([]int32, len(p.evs))
		next := make([]int32, len(p.evs))
		for g, grp := range p.groups {
			for j, i := range grp.idx {
				occ[i], part[i], next[i] = int32(j+1), int32(g+1), -1
				if j+1 < len(grp.idx) {
					next[i] = int32(grp.idx[j+1])
				}
			}
		}
		for i, e := range p.evs {
			eventValues(row, e)
			row[occSlot] = int64(occ[i])
			if next[i] >= 0 {
				row[repSlot] = p.evs[next[i]].TS
			} else {
				row[repSlot] = nil
			}
			row[partSlot] = part[i]
			if err := a.AppendRow(row...); err != nil {
				_ = a.Clear()
				_ = a.Close()
				return err
			}
		}
		lc.app = a
		return nil
	})
}

// discard drops the appender's rows. lc.mu held.
func (lc *loaderConn) discard() {
	if lc.app == nil {
		return
	}
	_ = lc.conn.Raw(func(any) error {
		_ = lc.app.Clear()
		return lc.app.Close()
	})
	lc.app = nil
}

// claimLoader returns p's loader, busy and locked, if p still holds it and
// its rows; nil otherwise. writeMu held.
func (db *DB) claimLoader(p *preparedBatch) *loaderConn {
	db.prepMu.Lock()
	lc := p.loader
	if lc == nil || lc.holder != p || lc.busy {
		db.prepMu.Unlock()
		return nil
	}
	lc.busy = true
	db.prepMu.Unlock()
	lc.mu.Lock()
	if lc.closed || lc.app == nil {
		closed := lc.closed
		lc.mu.Unlock()
		db.releaseLoader(lc, closed)
		return nil
	}
	return lc
}

// releaseLoader makes lc free for the next Prepare after a load on it (or
// a claim that found it unusable); a retired lc is dropped (Prepare then
// has one loader fewer, and loads it cannot prepare append themselves).
// lc.mu must not be held.
func (db *DB) releaseLoader(lc *loaderConn, retired bool) {
	db.prepMu.Lock()
	if lc.holder != nil {
		lc.holder.loader = nil
	}
	lc.holder, lc.busy = nil, false
	if retired {
		for i := range db.loaders {
			if db.loaders[i] == lc {
				db.loaders[i] = nil
			}
		}
	}
	db.prepMu.Unlock()
}

// flushPrepared inserts the rows of lc's appender, in the transaction
// running on lc.conn, with each partition's stored count from bases (-1:
// late). The caller resets the variable after the load (endLoad).
func flushPrepared(ctx context.Context, lc *loaderConn, bases []int64) error {
	if _, err := lc.conn.ExecContext(ctx, "SET VARIABLE "+loadBasesVar+" = ?::BIGINT[]", bases); err != nil {
		return fmt.Errorf("insert rows: bind partition counts: %w", err)
	}
	a := lc.app
	lc.app = nil
	return lc.conn.Raw(func(any) error { return a.CloseWithCancel(ctx) })
}

// endLoad ends a load on lc, whatever its outcome: rows still in the
// appender (the load failed before they went in) are dropped and the
// partition counts unset, so that nothing else can insert them. If the
// counts cannot be unset, lc is closed and endLoad reports it retired.
// lc.mu held.
func (db *DB) endLoad(ctx context.Context, lc *loaderConn) (retired bool) {
	lc.discard()
	if _, err := lc.conn.ExecContext(context.WithoutCancel(ctx), "RESET VARIABLE "+loadBasesVar); err != nil {
		db.log.Warn("warehouse load: reset loader variable; closing the loader", "err", err)
		lc.closed = true
		closeConn(lc.conn)
		return true
	}
	return false
}

// openLoaders opens the loader connections; Open calls it in read-write
// mode. They are opened up front, beside the writer, so that readers never
// hold the connections they need.
func (db *DB) openLoaders(ctx context.Context) error {
	for i := range db.loaders {
		conn, err := db.sqlDB.Conn(ctx)
		if err != nil {
			return fmt.Errorf("loader connection: %w", err)
		}
		db.loaders[i] = &loaderConn{conn: conn}
	}
	return nil
}

// closeConn closes the DuckDB connection of c itself: (*sql.Conn).Close
// alone would hand it to the pool, and a loader's connection, with its
// variable or a broken transaction, must not serve readers.
func closeConn(c *sql.Conn) {
	_ = c.Raw(func(any) error { return driver.ErrBadConn })
	_ = c.Close()
}

// closeLoaders drops every loader's rows and closes its connection.
func (db *DB) closeLoaders() {
	db.prepMu.Lock()
	db.prepClosed = true
	loaders := db.loaders
	db.prepMu.Unlock()
	for _, lc := range loaders {
		if lc == nil {
			continue
		}
		lc.mu.Lock()
		if lc.closed {
			lc.mu.Unlock()
			continue
		}
		lc.discard()
		lc.closed = true
		closeConn(lc.conn)
		lc.mu.Unlock()
	}
}

// emptyObject is feature_json for an event without features. The appender
// only reads it.
var emptyObject = []byte("{}")

// eventValues sets dst (appendWidth values, in appendColumns order) to e's
// values; the occurrence slots are left as they are.
func eventValues(dst []driver.Value, e *event.Event) {
	dst[0] = e.ActivityID
	dst[1] = e.TS
	dst[2] = e.Customer
	dst[3] = e.Activity
	dst[4] = nullString(e.AnonymousCustomerID)
	// As []byte, not string: the appender copies either into DuckDB's
	// vector with the same C call, and a string would be one more copy of
	// every feature_json (the event owns its bytes; event.Decode copies
	// them out of the read buffer).
	if f := e.Features; len(f) > 0 {
		dst[5] = []byte(f)
	} else {
		dst[5] = emptyObject
	}
	if e.RevenueImpact != nil {
		dst[6] = *e.RevenueImpact
	} else {
		dst[6] = nil
	}
	dst[7] = nullString(e.Link)
	dst[10] = e.ReceivedAt
	dst[11] = e.Source
}

// setOccurrence sets the occurrence slots of dst from r.
func setOccurrence(dst []driver.Value, r *stageRow) {
	if r.occ > 0 {
		dst[occSlot] = r.occ
	} else {
		dst[occSlot] = nil
	}
	if r.rep.IsZero() {
		dst[repSlot] = nil
	} else {
		dst[repSlot] = r.rep
	}
}
