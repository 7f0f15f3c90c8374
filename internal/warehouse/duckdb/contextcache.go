package duckdb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/activitybi/activitybi/internal/warehouse"
)

var _ warehouse.ContextStore = (*DB)(nil)

// The memory store's materialized contexts (warehouse.ContextStore). A row
// is read through CustomerQuery by the store itself; here are the write and
// the cross-customer summary that the store's refresh uses to pick
// customers and to skip those with nothing new.

// putContext upserts on (customer_id, scope) unless the stored row is at
// least as new: two builds finishing out of order leave the later one.
const putContext = `INSERT INTO context_cache (customer_id, scope, context, updated_at, version)
VALUES (?, ?, ?::JSON, ?, ?)
ON CONFLICT (customer_id, scope) DO UPDATE SET
    context = excluded.context, updated_at = excluded.updated_at, version = excluded.version
WHERE excluded.updated_at > context_cache.updated_at`

// maxContextRow bounds a row's JSON: the memory builder's limits keep a
// context far below it (tens to hundreds of KB), so a bigger one is a bug.
const maxContextRow = 16 << 20

// PutContext writes r unless a row at least as new is stored.
func (db *DB) PutContext(ctx context.Context, r warehouse.ContextRow) (bool, error) {
	switch {
	case r.UpdatedAt.IsZero():
		return false, errors.New("put context: UpdatedAt is required")
	case len(r.Context) == 0 || !json.Valid(r.Context):
		return false, errors.New("put context: Context is not JSON")
	case len(r.Context) > maxContextRow:
		return false, fmt.Errorf("put context: Context is %d bytes, more than %d", len(r.Context), maxContextRow)
	}
	if err := checkCustomer(r.Customer); err != nil {
		return false, fmt.Errorf("put context: %w", err)
	}
	db.writeMu.Lock()
	defer db.writeMu.Unlock()
	conn, err := db.writable()
	if err != nil {
		return false, err
	}
	res, err := conn.ExecContext(ctx, putContext, r.Customer, r.Scope, string(r.Context),
		r.UpdatedAt.UTC().Truncate(time.Microsecond), r.Version)
	if err != nil {
		return false, fmt.Errorf("put context: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("put context: %w", err)
	}
	return n > 0, nil
}

// customerActivity: stream_partitions has a row per (customer, activity)
// with its count and last ts (Load keeps it in the same transaction as the
// rows), so the event side reads thousands of rows, not the stream;
// insight_atoms is small (a few per session) and aggregated whole.
const customerActivity = `WITH ev AS (
    SELECT customer, sum(n)::BIGINT AS events, max(last_ts) AS last_event
    FROM stream_partitions
    WHERE customer <> ''
    GROUP BY customer
), ins AS (
    SELECT customer_id AS customer, count(*)::BIGINT AS insights,
        max(greatest(ts, coalesce(_received_at, ts))) AS last_insight
    FROM insight_atoms
    WHERE customer_id <> ''
    GROUP BY customer_id
), act AS (
    SELECT coalesce(ev.customer, ins.customer) AS customer,
        coalesce(ev.events, 0) AS events, ev.last_event,
        coalesce(ins.insights, 0) AS insights, ins.last_insight
    FROM ev FULL OUTER JOIN ins ON ev.customer = ins.customer
)
SELECT customer, events, last_event, insights, last_insight
FROM act
WHERE last_event >= ? OR last_insight >= ? OR customer IN (SELECT unnest(?::VARCHAR[]))
ORDER BY greatest(coalesce(last_event, TIMESTAMP '1970-01-01'),
                  coalesce(last_insight, TIMESTAMP '1970-01-01')) DESC, customer
LIMIT ?`

// CustomerActivity returns the recently active customers and the ones
// named in also, most recently active first.
func (db *DB) CustomerActivity(ctx context.Context, since time.Time, also []string, limit int) ([]warehouse.CustomerActivity, error) {
	if limit < 0 {
		return nil, fmt.Errorf("customer activity: limit must not be negative, got %d", limit)
	}
	lim := int64(limit)
	if limit == 0 {
		lim = math.MaxInt64
	}
	if also == nil {
		also = []string{}
	}
	done, err := db.reader()
	if err != nil {
		return nil, err
	}
	defer done()
	since = since.UTC()
	rows, err := db.sqlDB.QueryContext(ctx, customerActivity, since, since, also, lim)
	if err != nil {
		return nil, fmt.Errorf("customer activity: %w", err)
	}
	defer rows.Close()
	var out []warehouse.CustomerActivity
	for rows.Next() {
		var a warehouse.CustomerActivity
		var lastEv, lastIns *time.Time
		if err := rows.Scan(&a.Customer, &a.Events, &lastEv, &a.Insights, &lastIns); err != nil {
			return nil, fmt.Errorf("customer activity: %w", err)
		}
		if lastEv != nil {
			a.LastEvent = lastEv.UTC()
		}
		if lastIns != nil {
			a.LastInsight = lastIns.UTC()
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("customer activity: %w", err)
	}
	return out, nil
}
