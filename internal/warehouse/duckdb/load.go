package duckdb

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/duckdb/duckdb-go/v2"

	"github.com/activitybi/activitybi/internal/event"
	"github.com/activitybi/activitybi/internal/warehouse"
)

// Load algorithm (one transaction on the writer connection, or on the
// loader connection holding the batch's prepared rows):
//
//  1. quarantine rows: INSERT ... ON CONFLICT DO NOTHING (primary key
//     (segment, offset), so a retried batch adds nothing); offsets upserted.
//  2. events deduplicated in Go (first of each (customer, activity_id) wins)
//     and grouped by partition (done ahead, out of the lock, if the caller
//     called Prepare, which also appends the rows to an appender on a
//     loader connection: load_prepare.go); the touched partitions' states
//     read from stream_partitions, and occurrence values planned in Go
//     (occurrence.go).
//  3. rows appended straight into claude_stream by a query appender
//     (INSERT ... SELECT FROM the appended rows; for a prepared batch, the
//     loader's appender is flushed): the primary-key index
//     (ART) checks every row, so a row already stored fails the insert —
//     dedup against the table is an index probe per row, never a join over
//     the table. Such a failure means the batch holds re-sent events and the
//     planned numbers are off: the transaction is rolled back, a trial
//     insert (rolled back too) of the batch through load_stage with
//     ON CONFLICT DO NOTHING RETURNING tells which events are new, and the
//     load runs again with only those. Only batches with re-sent events pay
//     for that; ON CONFLICT DO NOTHING costs about three times a plain
//     insert, which is why it is not the common path.
//  4. previous last rows of in-order partitions and anchors of late
//     partitions get their _activity_repeated_at in one UPDATE joined on
//     (customer, activity_id, ts); the ts values reach the scan as an IN
//     filter (dynamic_or_filter_threshold) that zonemaps check, so only the
//     row groups holding those rows are read.
//  5. late partitions are renumbered from their earliest new ts (see
//     lateRecompute), and stream_partitions is updated in place.
//
// Insights (insight_atoms) go in right after the offsets, before the events,
// with one INSERT ... ON CONFLICT DO NOTHING (see insertInsights); a batch
// without insights skips it, so the event path above is unchanged. Audit
// rows (audit_log) follow the insights the same way (insertAudit).
//
// Cost: in-order loads touch the new rows, one stored row per touched
// partition and the partition summaries, independent of the table's size.
// A late row costs a scan of the row groups from its ts to the end of the
// table (zonemap-pruned on ts, so proportional to the data that arrived
// after it, not to the table), an update of its partition's rows from that
// ts on, and a backward search for the row just before it (usually one
// small zonemap-pruned scan).

// errStoredDuplicate says that some events of the batch were already stored.
var errStoredDuplicate = errors.New("batch holds events already stored")

const stageDDL = `CREATE OR REPLACE TEMP TABLE load_stage (
    activity_id           VARCHAR,
    ts                    TIMESTAMP,
    customer              VARCHAR,
    activity              VARCHAR,
    anonymous_customer_id VARCHAR,
    feature_json          VARCHAR,
    revenue_impact        DOUBLE,
    link                  VARCHAR,
    occ                   BIGINT,
    rep                   TIMESTAMP,
    received_at           TIMESTAMP,
    source                VARCHAR
)`

// insertFromStage moves the staged rows into claude_stream; freshEvents
// adds ON CONFLICT DO NOTHING RETURNING to learn which rows are new.
const insertFromStage = `INSERT INTO claude_stream (activity_id, ts, customer, activity,
    anonymous_customer_id, feature_json, revenue_impact, link,
    _activity_occurrence, _activity_repeated_at, _received_at, _source)
SELECT activity_id, ts, customer, activity, anonymous_customer_id,
    feature_json::JSON, revenue_impact, link, occ, rep, received_at, source
FROM temp.main.load_stage`

// Load stores one batch atomically; see the algorithm above.
func (db *DB) Load(ctx context.Context, b *warehouse.Batch) (warehouse.LoadResult, error) {
	db.writeMu.Lock()
	defer db.writeMu.Unlock()
	var res warehouse.LoadResult
	conn, err := db.writable()
	if err != nil {
		return res, err
	}
	if err := ctx.Err(); err != nil {
		return res, err
	}
	if !db.staged {
		if _, err := conn.ExecContext(ctx, stageDDL); err != nil {
			return res, fmt.Errorf("load: create staging table: %w", err)
		}
		db.staged = true
	}
	start := time.Now()
	p := preparedFor(b)
	lc := db.claimLoader(p)
	if lc != nil {
		db.preparedLoads.Add(1)
		// Prepared rows wait in lc's appender: the transaction runs on
		// lc's connection (load_prepare.go).
		res, err = db.loadTx(ctx, lc.conn, b, p.evs, p.groups, lc)
		retired := db.endLoad(ctx, lc)
		lc.mu.Unlock()
		db.releaseLoader(lc, retired)
	} else {
		res, err = db.loadTx(ctx, conn, b, p.evs, p.groups, nil)
	}
	if errors.Is(err, errStoredDuplicate) {
		var fresh []*event.Event
		fresh, err = db.freshEvents(ctx, conn, p.evs)
		if err != nil {
			return warehouse.LoadResult{}, fmt.Errorf("load: %w", err)
		}
		res, err = db.loadTx(ctx, conn, b, fresh, groupPartitions(fresh), nil)
		if errors.Is(err, errStoredDuplicate) {
			err = errors.New("stored rows changed between the trial insert and the load")
		}
	}
	if err != nil {
		if rejectedByData(err) {
			return warehouse.LoadResult{}, fmt.Errorf("load: %w: %w", warehouse.ErrRecordRejected, err)
		}
		return warehouse.LoadResult{}, fmt.Errorf("load: %w", err)
	}
	res.Duplicates = len(b.Events) - res.Inserted
	db.log.Debug("warehouse load", "events", len(b.Events), "inserted", res.Inserted,
		"duplicates", res.Duplicates, "insights", len(b.Insights), "insights_inserted", res.InsightsInserted,
		"audit", len(b.Audit), "audit_inserted", res.AuditInserted,
		"quarantined", res.Quarantined, "prepared", lc != nil, "took", time.Since(start))
	return res, nil
}

// loadTx runs one load transaction of b on conn with evs as its events
// (deduplicated within the batch, grouped as groups). With lc (whose
// connection is conn), evs are the rows waiting in lc's appender; without,
// they are appended here.
func (db *DB) loadTx(ctx context.Context, conn *sql.Conn, b *warehouse.Batch, evs []*event.Event, groups []partGroup, lc *loaderConn) (warehouse.LoadResult, error) {
	var res warehouse.LoadResult
	var tm loadTimes
	var after map[partKey]partState
	t0 := time.Now()
	err := inTx(ctx, conn, func() error {
		var err error
		if res.Quarantined, err = insertQuarantine(ctx, conn, b.Quarantine); err != nil {
			return err
		}
		if err := upsertOffsets(ctx, conn, b.Offsets); err != nil {
			return err
		}
		if len(b.Insights) > 0 {
			if res.InsightsInserted, err = insertInsights(ctx, conn, b.Insights); err != nil {
				return err
			}
			res.InsightDuplicates = len(b.Insights) - res.InsightsInserted
		}
		if len(b.Audit) > 0 {
			if res.AuditInserted, err = insertAudit(ctx, conn, b.Audit); err != nil {
				return err
			}
		}
		if len(evs) == 0 {
			return nil
		}
		tm.offsets = time.Since(t0)
		t := time.Now()
		before, err := db.partitionStates(ctx, conn, groups)
		if err != nil {
			return err
		}
		plan := planGroups(evs, groups, before, lc == nil)
		tm.plan, t = time.Since(t), time.Now()
		if lc != nil {
			err = flushPrepared(ctx, lc, plan.bases)
			if err != nil && strings.Contains(err.Error(), preparedGuardMsg) {
				// A broken invariant of ours, not a record the table
				// refuses: not %w, so the uploader never quarantines a
				// record for it (rejectedByData).
				err = fmt.Errorf("prepared rows: %v", err)
			}
		} else {
			err = appendRows(ctx, conn, plan.rows, true)
		}
		if err != nil {
			if isDuplicateKey(err) {
				return errStoredDuplicate
			}
			return fmt.Errorf("insert rows: %w", err)
		}
		tm.append, t = time.Since(t), time.Now()
		res.Inserted = len(evs)
		if db.testHookAfterInsert != nil {
			if err := db.testHookAfterInsert(); err != nil {
				return err
			}
		}
		anchors, err := lateRecompute(ctx, conn, plan.late)
		if err != nil {
			return err
		}
		if err := updateRepeatedAt(ctx, conn, append(plan.prevLast, anchors...)); err != nil {
			return err
		}
		if err := upsertPartitions(ctx, conn, plan.after, before); err != nil {
			return err
		}
		tm.occurrence, tm.commitStart = time.Since(t), time.Now()
		after = plan.after
		return nil
	})
	switch {
	case err == nil:
		for k, s := range after {
			db.parts[k] = s
		}
	case !tm.commitStart.IsZero():
		// The COMMIT itself failed: whether it took effect is unknown
		// to the cache, so reread stream_partitions next time.
		db.parts = nil
	}
	if err == nil && !tm.commitStart.IsZero() {
		db.log.Debug("warehouse load phases", "offsets", tm.offsets, "plan", tm.plan, "append", tm.append,
			"occurrence", tm.occurrence, "commit", time.Since(tm.commitStart))
	}
	return res, err
}

// loadTimes are the durations of a load's phases, for the debug log.
type loadTimes struct {
	// offsets covers BEGIN, quarantine, offsets, insights and audit rows.
	offsets, plan, append, occurrence time.Duration
	commitStart                       time.Time
}

// isDuplicateKey reports whether err is DuckDB's primary key violation. The
// appender reports it as text ("Failed to append: Duplicate key ...
// violates primary key constraint"), not as a typed constraint error.
func isDuplicateKey(err error) bool {
	return strings.Contains(err.Error(), "violates primary key constraint")
}

// freshEvents returns the events of evs that are not stored yet, by a trial
// insert whose RETURNING clause lists what the primary key let in. The trial
// is rolled back.
func (db *DB) freshEvents(ctx context.Context, conn *sql.Conn, evs []*event.Event) ([]*event.Event, error) {
	rows := make([]stageRow, len(evs))
	for i, e := range evs {
		rows[i].ev = e
	}
	if _, err := conn.ExecContext(ctx, "BEGIN TRANSACTION"); err != nil {
		return nil, fmt.Errorf("begin: %w", err)
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK") //nolint:errcheck // the trial is always undone
	if err := stage(ctx, conn, rows); err != nil {
		return nil, err
	}
	rs, err := conn.QueryContext(ctx, insertFromStage+" ON CONFLICT DO NOTHING RETURNING customer, activity_id")
	if err != nil {
		return nil, fmt.Errorf("trial insert: %w", err)
	}
	defer rs.Close()
	fresh := make(map[[2]string]bool)
	for rs.Next() {
		var c, id string
		if err := rs.Scan(&c, &id); err != nil {
			return nil, fmt.Errorf("trial insert: %w", err)
		}
		fresh[[2]string{c, id}] = true
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("trial insert: %w", err)
	}
	out := make([]*event.Event, 0, len(fresh))
	for _, e := range evs {
		if fresh[[2]string{e.Customer, e.ActivityID}] {
			out = append(out, e)
		}
	}
	return out, nil
}

// stage replaces the contents of load_stage with rows.
func stage(ctx context.Context, conn *sql.Conn, rows []stageRow) error {
	if _, err := conn.ExecContext(ctx, "DELETE FROM temp.main.load_stage"); err != nil {
		return fmt.Errorf("clear staging table: %w", err)
	}
	if err := appendRows(ctx, conn, rows, false); err != nil {
		return fmt.Errorf("stage rows: %w", err)
	}
	return nil
}

// appendQuery inserts the appended rows into claude_stream. A query
// appender (rather than a table appender) lets feature_json travel as
// VARCHAR and be cast to JSON by DuckDB, which validates it; the table
// appender would re-encode every value with encoding/json. Columns added by
// later migrations take their defaults.
const appendQuery = `INSERT INTO claude_stream (activity_id, ts, customer, activity,
    anonymous_customer_id, feature_json, revenue_impact, link,
    _activity_occurrence, _activity_repeated_at, _received_at, _source)
SELECT activity_id, ts, customer, activity, anonymous_customer_id,
    feature_json::JSON, revenue_impact, link, occ, rep, received_at, source
FROM appended_rows`

var appendColumns = []string{"activity_id", "ts", "customer", "activity", "anonymous_customer_id",
	"feature_json", "revenue_impact", "link", "occ", "rep", "received_at", "source"}

// appendTypes are the column types of appendColumns.
func appendTypes() ([]duckdb.TypeInfo, error) {
	ts := []duckdb.Type{duckdb.TYPE_VARCHAR, duckdb.TYPE_TIMESTAMP, duckdb.TYPE_VARCHAR, duckdb.TYPE_VARCHAR,
		duckdb.TYPE_VARCHAR, duckdb.TYPE_VARCHAR, duckdb.TYPE_DOUBLE, duckdb.TYPE_VARCHAR,
		duckdb.TYPE_BIGINT, duckdb.TYPE_TIMESTAMP, duckdb.TYPE_TIMESTAMP, duckdb.TYPE_VARCHAR}
	out := make([]duckdb.TypeInfo, len(ts))
	for i, t := range ts {
		ti, err := duckdb.NewTypeInfo(t)
		if err != nil {
			return nil, err
		}
		out[i] = ti
	}
	return out, nil
}

// appendRows appends rows with the Appender, in the current transaction,
// either straight into claude_stream (direct) or into load_stage. Into
// claude_stream, a row whose key is already stored fails the insert (the
// primary-key index checks every row), as does a feature_json that is not
// JSON.
func appendRows(ctx context.Context, conn *sql.Conn, rows []stageRow, direct bool) error {
	var types []duckdb.TypeInfo
	if direct {
		var err error
		if types, err = appendTypes(); err != nil {
			return err
		}
	}
	return conn.Raw(func(dc any) error {
		var a *duckdb.Appender
		var err error
		if direct {
			a, err = duckdb.NewQueryAppender(dc.(driver.Conn), appendQuery, "appended_rows", types, appendColumns)
		} else {
			a, err = duckdb.NewAppender(dc.(driver.Conn), "temp", "main", "load_stage")
		}
		if err != nil {
			return err
		}
		row := make([]driver.Value, appendWidth)
		for i := range rows {
			if i%4096 == 0 {
				if err := ctx.Err(); err != nil {
					_ = a.Clear()
					a.Close()
					return err
				}
			}
			r := &rows[i]
			eventValues(row, r.ev)
			setOccurrence(row, r)
			if err := a.AppendRow(row...); err != nil {
				_ = a.Clear()
				a.Close()
				return err
			}
		}
		if err := a.Close(); err != nil {
			_ = a.Clear()
			return err
		}
		return nil
	})
}

func nullString(s string) driver.Value {
	if s == "" {
		return nil
	}
	return s
}

// partitionStates returns the stored states of the partitions of groups.
// They come from db.parts, a copy of stream_partitions read on the first
// load and kept in step after each commit (only Load writes the table, and
// one process owns the file); it saves a query per load.
func (db *DB) partitionStates(ctx context.Context, conn *sql.Conn, groups []partGroup) (map[partKey]partState, error) {
	if db.parts == nil {
		all, err := readPartitions(ctx, conn)
		if err != nil {
			return nil, err
		}
		db.parts = all
	}
	out := make(map[partKey]partState, len(groups))
	for _, g := range groups {
		if s, ok := db.parts[g.key]; ok {
			out[g.key] = s
		}
	}
	return out, nil
}

func readPartitions(ctx context.Context, conn *sql.Conn) (map[partKey]partState, error) {
	rows, err := conn.QueryContext(ctx, `SELECT customer, activity, n, first_ts, last_ts, last_id FROM stream_partitions`)
	if err != nil {
		return nil, fmt.Errorf("read partitions: %w", err)
	}
	defer rows.Close()
	out := make(map[partKey]partState)
	for rows.Next() {
		var k partKey
		var s partState
		if err := rows.Scan(&k.customer, &k.activity, &s.n, &s.firstTS, &s.lastTS, &s.lastID); err != nil {
			return nil, fmt.Errorf("read partitions: %w", err)
		}
		s.firstTS, s.lastTS = s.firstTS.UTC(), s.lastTS.UTC()
		out[k] = s
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read partitions: %w", err)
	}
	return out, nil
}

func upsertPartitions(ctx context.Context, conn *sql.Conn, after map[partKey]partState, before map[partKey]partState) error {
	// Existing partitions are updated in place (their key columns, which
	// the primary-key index covers, do not change); new ones are inserted.
	// That is several times cheaper than INSERT ... ON CONFLICT DO UPDATE
	// or DELETE + INSERT, which both go through the index.
	var upd, ins partitionLists
	for k, s := range after {
		if _, ok := before[k]; ok {
			upd.add(k, s)
		} else {
			ins.add(k, s)
		}
	}
	if len(upd.cs) > 0 {
		_, err := conn.ExecContext(ctx, `UPDATE stream_partitions
SET n = u.n, first_ts = u.first_ts, last_ts = u.last_ts, last_id = u.last_id
FROM (SELECT unnest(?::VARCHAR[]) AS customer, unnest(?::VARCHAR[]) AS activity, unnest(?::BIGINT[]) AS n,
             make_timestamp(unnest(?::BIGINT[])) AS first_ts, make_timestamp(unnest(?::BIGINT[])) AS last_ts,
             unnest(?::VARCHAR[]) AS last_id) u
WHERE stream_partitions.customer = u.customer AND stream_partitions.activity = u.activity`,
			upd.cs, upd.as, upd.ns, upd.firsts, upd.lasts, upd.ids)
		if err != nil {
			return fmt.Errorf("update partitions: %w", err)
		}
	}
	if len(ins.cs) > 0 {
		_, err := conn.ExecContext(ctx, `INSERT INTO stream_partitions (customer, activity, n, first_ts, last_ts, last_id)
SELECT unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), unnest(?::BIGINT[]),
       make_timestamp(unnest(?::BIGINT[])), make_timestamp(unnest(?::BIGINT[])), unnest(?::VARCHAR[])`,
			ins.cs, ins.as, ins.ns, ins.firsts, ins.lasts, ins.ids)
		if err != nil {
			return fmt.Errorf("insert partitions: %w", err)
		}
	}
	return nil
}

// partitionLists are partition states as column lists, for unnest().
type partitionLists struct {
	cs, as, ids       []string
	ns, firsts, lasts []int64
}

func (l *partitionLists) add(k partKey, s partState) {
	l.cs, l.as, l.ids = append(l.cs, k.customer), append(l.as, k.activity), append(l.ids, s.lastID)
	l.ns, l.firsts, l.lasts = append(l.ns, s.n), append(l.firsts, s.firstTS.UnixMicro()), append(l.lasts, s.lastTS.UnixMicro())
}

// updateRepeatedAt applies point updates of _activity_repeated_at.
func updateRepeatedAt(ctx context.Context, conn *sql.Conn, ups []pointUpdate) error {
	if len(ups) == 0 {
		return nil
	}
	cs, ids := make([]string, len(ups)), make([]string, len(ups))
	tss, reps := make([]int64, len(ups)), make([]int64, len(ups))
	for i, u := range ups {
		cs[i], ids[i], tss[i], reps[i] = u.customer, u.activityID, u.ts.UnixMicro(), u.rep.UnixMicro()
	}
	r, err := conn.ExecContext(ctx, `UPDATE claude_stream SET _activity_repeated_at = u.rep
FROM (SELECT unnest(?::VARCHAR[]) AS customer, unnest(?::VARCHAR[]) AS activity_id,
             make_timestamp(unnest(?::BIGINT[])) AS ts, make_timestamp(unnest(?::BIGINT[])) AS rep) u
WHERE claude_stream.customer = u.customer AND claude_stream.activity_id = u.activity_id
  AND claude_stream.ts = u.ts`, cs, ids, tss, reps)
	if err != nil {
		return fmt.Errorf("update repeated_at: %w", err)
	}
	if n, err := r.RowsAffected(); err == nil && int(n) != len(ups) {
		return fmt.Errorf("update repeated_at: %d of %d rows found (stream_partitions out of step with claude_stream)", n, len(ups))
	}
	return nil
}

// tsLiteral renders t as a TIMESTAMP literal. Bounds on ts are literals, not
// parameters, so that the optimizer pushes them into the scan and zonemaps
// skip row groups; the values come from Go times, never from input text.
func tsLiteral(t time.Time) string {
	return "TIMESTAMP '" + t.UTC().Format("2006-01-02 15:04:05.999999") + "'"
}

// lateRecompute renumbers the late partitions from their earliest new ts and
// returns the point updates for their anchors (the stored row just before
// that ts, whose repeated_at becomes that ts).
//
// For a late partition with earliest new ts L, window W is every row with
// ts >= L. The stored rows of W are a suffix of the partition, so the rows
// before W number base = nBefore - (stored rows in W), and W is renumbered
// base+1, base+2, ... with repeated_at = the next ts in W. New rows are told
// from stored ones by their NULL occurrence (every committed row has one).
// The anchor, if base > 0, is the row with occurrence base; it is found by
// a backward search over growing ts windows, each pruned by zonemaps.
func lateRecompute(ctx context.Context, conn *sql.Conn, late []latePart) ([]pointUpdate, error) {
	if len(late) == 0 {
		return nil, nil
	}
	minLower := late[0].lower
	cs, as := make([]string, len(late)), make([]string, len(late))
	lowers, nbs := make([]int64, len(late)), make([]int64, len(late))
	for i, l := range late {
		cs[i], as[i], lowers[i], nbs[i] = l.key.customer, l.key.activity, l.lower.UnixMicro(), l.nBefore
		if l.lower.Before(minLower) {
			minLower = l.lower
		}
	}
	// Bases.
	rows, err := conn.QueryContext(ctx, `SELECT l.customer, l.activity, l.nb - count(c._activity_occurrence) AS base
FROM (SELECT unnest(?::VARCHAR[]) AS customer, unnest(?::VARCHAR[]) AS activity,
             make_timestamp(unnest(?::BIGINT[])) AS lower, unnest(?::BIGINT[]) AS nb) l
LEFT JOIN (SELECT customer, activity, ts, _activity_occurrence FROM claude_stream
           WHERE ts >= `+tsLiteral(minLower)+`) c
  ON c.customer = l.customer AND c.activity = l.activity AND c.ts >= l.lower
GROUP BY l.customer, l.activity, l.nb`, cs, as, lowers, nbs)
	if err != nil {
		return nil, fmt.Errorf("late rows: count window: %w", err)
	}
	bases := make(map[partKey]int64, len(late))
	for rows.Next() {
		var k partKey
		var base int64
		if err := rows.Scan(&k.customer, &k.activity, &base); err != nil {
			rows.Close()
			return nil, fmt.Errorf("late rows: count window: %w", err)
		}
		bases[k] = base
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("late rows: count window: %w", err)
	}
	bs := make([]int64, len(late))
	for i, l := range late {
		b, ok := bases[l.key]
		if !ok || b < 0 {
			return nil, fmt.Errorf("late rows: partition (%q, %q): bad window base %d", l.key.customer, l.key.activity, b)
		}
		bs[i] = b
	}
	// Renumber each window.
	_, err = conn.ExecContext(ctx, `UPDATE claude_stream SET _activity_occurrence = w.occ, _activity_repeated_at = w.rep
FROM (
    SELECT c.customer, c.activity_id, c.ts,
           l.base + row_number() OVER win AS occ,
           lead(c.ts) OVER win AS rep
    FROM (SELECT customer, activity, activity_id, ts FROM claude_stream WHERE ts >= `+tsLiteral(minLower)+`) c
    JOIN (SELECT unnest(?::VARCHAR[]) AS customer, unnest(?::VARCHAR[]) AS activity,
                 make_timestamp(unnest(?::BIGINT[])) AS lower, unnest(?::BIGINT[]) AS base) l
      ON c.customer = l.customer AND c.activity = l.activity AND c.ts >= l.lower
    WINDOW win AS (PARTITION BY c.customer, c.activity ORDER BY c.ts, c.activity_id)
) w
WHERE claude_stream.customer = w.customer AND claude_stream.activity_id = w.activity_id
  AND claude_stream.ts = w.ts AND claude_stream.ts >= `+tsLiteral(minLower)+`
  AND (claude_stream._activity_occurrence IS DISTINCT FROM w.occ
       OR claude_stream._activity_repeated_at IS DISTINCT FROM w.rep)`, cs, as, lowers, bs)
	if err != nil {
		return nil, fmt.Errorf("late rows: renumber: %w", err)
	}
	return findAnchors(ctx, conn, late, bs)
}

// findAnchors finds, for each late partition with base > 0, the row with
// occurrence base (the last row before the window). It searches backwards
// from the window's lower bound over spans that start at a few average gaps
// of the partition and double, so a dense partition is found in one small
// scan and the search ends at the partition's first ts at the latest.
func findAnchors(ctx context.Context, conn *sql.Conn, late []latePart, bases []int64) ([]pointUpdate, error) {
	type want struct {
		l    latePart
		base int64
		span time.Duration
	}
	var todo []want
	for i, l := range late {
		if bases[i] == 0 {
			continue
		}
		gap := time.Second
		if l.nBefore > 1 {
			if g := l.lastTS.Sub(l.firstTS) / time.Duration(l.nBefore-1); g > gap {
				gap = g
			}
		}
		todo = append(todo, want{l: l, base: bases[i], span: 8 * gap})
	}
	var out []pointUpdate
	for round := 0; len(todo) > 0; round++ {
		if round > 80 {
			return nil, errors.New("late rows: anchor search did not converge")
		}
		n := len(todo)
		cs, as := make([]string, n), make([]string, n)
		bs, froms, tos := make([]int64, n), make([]int64, n), make([]int64, n)
		minFrom, maxTo := todo[0].l.lower, todo[0].l.lower
		for i, w := range todo {
			from := w.l.lower.Add(-w.span)
			if from.Before(w.l.firstTS) {
				from = w.l.firstTS
			}
			cs[i], as[i], bs[i] = w.l.key.customer, w.l.key.activity, w.base
			froms[i], tos[i] = from.UnixMicro(), w.l.lower.UnixMicro()
			if from.Before(minFrom) {
				minFrom = from
			}
			if w.l.lower.After(maxTo) {
				maxTo = w.l.lower
			}
		}
		rows, err := conn.QueryContext(ctx, `SELECT c.customer, c.activity, c.activity_id, c.ts, a.lower
FROM (SELECT customer, activity, activity_id, ts, _activity_occurrence FROM claude_stream
      WHERE ts >= `+tsLiteral(minFrom)+` AND ts < `+tsLiteral(maxTo)+`) c
JOIN (SELECT unnest(?::VARCHAR[]) AS customer, unnest(?::VARCHAR[]) AS activity, unnest(?::BIGINT[]) AS base,
             make_timestamp(unnest(?::BIGINT[])) AS "from", make_timestamp(unnest(?::BIGINT[])) AS lower) a
  ON c.customer = a.customer AND c.activity = a.activity AND c._activity_occurrence = a.base
 AND c.ts >= a."from" AND c.ts < a.lower`, cs, as, bs, froms, tos)
		if err != nil {
			return nil, fmt.Errorf("late rows: find anchors: %w", err)
		}
		found := make(map[partKey]bool)
		for rows.Next() {
			var k partKey
			var u pointUpdate
			if err := rows.Scan(&k.customer, &k.activity, &u.activityID, &u.ts, &u.rep); err != nil {
				rows.Close()
				return nil, fmt.Errorf("late rows: find anchors: %w", err)
			}
			u.customer = k.customer
			u.ts, u.rep = u.ts.UTC(), u.rep.UTC()
			found[k] = true
			out = append(out, u)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("late rows: find anchors: %w", err)
		}
		next := todo[:0]
		for _, w := range todo {
			if found[w.l.key] {
				continue
			}
			if !w.l.lower.Add(-w.span).After(w.l.firstTS) {
				return nil, fmt.Errorf("late rows: partition (%q, %q): no row with occurrence %d (stream_partitions out of step with claude_stream)",
					w.l.key.customer, w.l.key.activity, w.base)
			}
			w.span *= 2
			next = append(next, w)
		}
		todo = next
	}
	return out, nil
}

// insertInsightsSQL stores insights from column lists (one unnest per
// column, zipped row by row). ON CONFLICT DO NOTHING on the primary key
// (customer_id, atom_id) skips insights already stored; which of two equal
// keys within one statement would win is not specified, so insertInsights
// removes repeats first. value travels as VARCHAR and is cast to JSON, which
// validates it; an empty provenance_query_hash is stored as NULL.
const insertInsightsSQL = `INSERT INTO insight_atoms (atom_id, customer_id, subject, metric, value,
    provenance_query_hash, ts, _verified, _received_at, _source)
SELECT unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), unnest(?::VARCHAR[]),
    unnest(?::VARCHAR[])::JSON, nullif(unnest(?::VARCHAR[]), ''), make_timestamp(unnest(?::BIGINT[])),
    unnest(?::BOOLEAN[]), make_timestamp(unnest(?::BIGINT[])), unnest(?::VARCHAR[])
ON CONFLICT DO NOTHING`

// insertInsights stores the insights not stored yet, the first of each
// (customer_id, atom_id) in the batch winning, and returns how many rows
// went in.
func insertInsights(ctx context.Context, conn *sql.Conn, xs []event.Insight) (int, error) {
	n := len(xs)
	ids, cs, subjects, metrics := make([]string, 0, n), make([]string, 0, n), make([]string, 0, n), make([]string, 0, n)
	values, hashes, sources := make([]string, 0, n), make([]string, 0, n), make([]string, 0, n)
	tss, recvs, verified := make([]int64, 0, n), make([]int64, 0, n), make([]bool, 0, n)
	seen := make(map[[2]string]bool, n)
	for i := range xs {
		x := &xs[i]
		k := [2]string{x.Customer, x.AtomID}
		if seen[k] {
			continue
		}
		seen[k] = true
		ids, cs, subjects, metrics = append(ids, x.AtomID), append(cs, x.Customer), append(subjects, x.Subject), append(metrics, x.Metric)
		values, hashes, sources = append(values, string(x.Value)), append(hashes, x.ProvenanceQueryHash), append(sources, x.Source)
		tss, recvs, verified = append(tss, x.TS.UnixMicro()), append(recvs, x.ReceivedAt.UnixMicro()), append(verified, x.Verified)
	}
	r, err := conn.ExecContext(ctx, insertInsightsSQL, ids, cs, subjects, metrics, values, hashes, tss, verified, recvs, sources)
	if err != nil {
		return 0, fmt.Errorf("insert insights: %w", err)
	}
	inserted, err := r.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("insert insights: %w", err)
	}
	return int(inserted), nil
}

// insertAuditSQL stores audit rows from column lists, as insertInsightsSQL
// does insights. ON CONFLICT DO NOTHING on the primary key audit_id makes a
// batch loaded again add nothing; empty customer_id, target and detail are
// stored as NULL (customer_id NULL: an analyst's access across all
// customers, which no customer's view of the table shows).
const insertAuditSQL = `INSERT INTO audit_log (audit_id, "at", principal, customer_id, action, target,
    rows, bytes, duration_ms, outcome, detail, _received_at, _source)
SELECT unnest(?::VARCHAR[]), make_timestamp(unnest(?::BIGINT[])), unnest(?::VARCHAR[]),
    nullif(unnest(?::VARCHAR[]), ''), unnest(?::VARCHAR[]), nullif(unnest(?::VARCHAR[]), ''),
    unnest(?::BIGINT[]), unnest(?::BIGINT[]), unnest(?::BIGINT[]), unnest(?::VARCHAR[]),
    nullif(unnest(?::VARCHAR[]), ''), make_timestamp(unnest(?::BIGINT[])), unnest(?::VARCHAR[])
ON CONFLICT DO NOTHING`

// insertAudit stores the audit rows not stored yet (the first of an
// audit_id repeated in the batch wins) and returns how many went in.
func insertAudit(ctx context.Context, conn *sql.Conn, as []event.Audit) (int, error) {
	n := len(as)
	ids, principals, cs, actions := make([]string, 0, n), make([]string, 0, n), make([]string, 0, n), make([]string, 0, n)
	targets, outcomes, details, sources := make([]string, 0, n), make([]string, 0, n), make([]string, 0, n), make([]string, 0, n)
	ats, rows, bytes, durs, recvs := make([]int64, 0, n), make([]int64, 0, n), make([]int64, 0, n), make([]int64, 0, n), make([]int64, 0, n)
	seen := make(map[string]bool, n)
	for i := range as {
		a := &as[i]
		if seen[a.AuditID] {
			continue
		}
		seen[a.AuditID] = true
		ids, principals, cs, actions = append(ids, a.AuditID), append(principals, a.Principal), append(cs, a.Customer), append(actions, a.Action)
		targets, outcomes, details, sources = append(targets, a.Target), append(outcomes, a.Outcome), append(details, a.Detail), append(sources, a.Source)
		ats, rows, bytes = append(ats, a.At.UnixMicro()), append(rows, a.Rows), append(bytes, a.Bytes)
		durs, recvs = append(durs, a.DurationMS), append(recvs, a.ReceivedAt.UnixMicro())
	}
	r, err := conn.ExecContext(ctx, insertAuditSQL, ids, ats, principals, cs, actions, targets,
		rows, bytes, durs, outcomes, details, recvs, sources)
	if err != nil {
		return 0, fmt.Errorf("insert audit rows: %w", err)
	}
	inserted, err := r.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("insert audit rows: %w", err)
	}
	return int(inserted), nil
}

// insertQuarantine stores quarantined records, ignoring ones already stored.
func insertQuarantine(ctx context.Context, conn *sql.Conn, qs []warehouse.QuarantineRecord) (int, error) {
	if len(qs) == 0 {
		return 0, nil
	}
	stmt, err := conn.PrepareContext(ctx, `INSERT INTO upload_quarantine
    (segment, "offset", kind, reason, raw, quarantined_at) VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT DO NOTHING`)
	if err != nil {
		return 0, fmt.Errorf("quarantine: %w", err)
	}
	defer stmt.Close()
	now := time.Now().UTC()
	var total int
	for _, q := range qs {
		at := q.At
		if at.IsZero() {
			at = now
		}
		raw := q.Raw
		if raw == nil {
			raw = []byte{}
		}
		r, err := stmt.ExecContext(ctx, q.Segment, q.Offset, q.Kind, q.Reason, raw, at.UTC())
		if err != nil {
			return 0, fmt.Errorf("quarantine %s@%d: %w", q.Segment, q.Offset, err)
		}
		n, _ := r.RowsAffected()
		total += int(n)
	}
	return total, nil
}

// upsertOffsets writes the batch's segment offsets; for a segment named
// twice the last one wins. Each offset is an UPDATE of its segment's row,
// and an INSERT only when there was none (a new segment): in DuckDB an
// INSERT ... ON CONFLICT DO UPDATE of one row cost about 3.5 ms against
// about 0.9 ms for the UPDATE (bench/warehouse.md), and a batch writes one
// or two offsets. upload_offsets changes only under writeMu (Load,
// ForgetOffsets), so nothing can insert the row between the two
// statements.
func upsertOffsets(ctx context.Context, conn *sql.Conn, offs []warehouse.Offset) error {
	if len(offs) == 0 {
		return nil
	}
	last := make(map[string]int, len(offs))
	for i, o := range offs {
		last[o.Segment] = i
	}
	for i, o := range offs {
		if last[o.Segment] != i {
			continue
		}
		r, err := conn.ExecContext(ctx, `UPDATE upload_offsets SET "offset" = ?, records = ?, closed = ?,
    updated_at = now()::TIMESTAMP WHERE segment = ?`, o.Offset, o.Records, o.Closed, o.Segment)
		if err != nil {
			return fmt.Errorf("offset %s: %w", o.Segment, err)
		}
		n, err := r.RowsAffected()
		if err != nil {
			return fmt.Errorf("offset %s: %w", o.Segment, err)
		}
		if n > 0 {
			continue
		}
		if _, err := conn.ExecContext(ctx, `INSERT INTO upload_offsets (segment, "offset", records, closed, updated_at)
VALUES (?, ?, ?, ?, now()::TIMESTAMP)`, o.Segment, o.Offset, o.Records, o.Closed); err != nil {
			return fmt.Errorf("offset %s: %w", o.Segment, err)
		}
	}
	return nil
}

// rejectedByData reports whether err is DuckDB refusing a value of the batch
// (see warehouse.ErrRecordRejected), as opposed to a problem of the engine.
func rejectedByData(err error) bool {
	var de *duckdb.Error
	if !errors.As(err, &de) {
		return false
	}
	switch de.Type {
	case duckdb.ErrorTypeConversion, duckdb.ErrorTypeOutOfRange, duckdb.ErrorTypeInvalidInput,
		duckdb.ErrorTypeMismatchType, duckdb.ErrorTypeConstraint:
		return true
	}
	// The appender reports a value it cannot cast as "Failed to append: ..."
	// without a typed prefix; recognise the casting failures in it.
	if strings.HasPrefix(de.Msg, "Failed to append") {
		for _, s := range []string{"Malformed JSON", "Conversion Error", "Could not convert", "out of range", "Invalid Input"} {
			if strings.Contains(de.Msg, s) {
				return true
			}
		}
	}
	return false
}
