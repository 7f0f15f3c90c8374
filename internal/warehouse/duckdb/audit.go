package duckdb

import (
	"context"
	"fmt"
	"strings"

	"github.com/activitybi/activitybi/internal/warehouse"
)

var _ warehouse.AuditLister = (*DB)(nil)

// auditSelect is the fixed head of an audit listing; auditSQL adds one
// fixed condition per filter that is set, each with its value bound. No
// filter value is ever part of the text: the statement is chosen from 2^7
// fixed shapes, which keeps "at" bounds as plain comparisons DuckDB pushes
// into the scan (zonemaps prune row groups outside --since/--until).
const auditSelect = `SELECT "at", principal, customer_id, action, target, rows, bytes, duration_ms,
    outcome, detail, audit_id, _source, _received_at
FROM audit_log`

// auditSQL returns the listing statement for f (validated) and its
// arguments. Times travel as microseconds since the epoch (UTC), as in
// load.go, so no session time zone can shift them.
func auditSQL(f warehouse.AuditFilter) (string, []any) {
	var conds []string
	var args []any
	if !f.Since.IsZero() {
		conds = append(conds, `"at" >= make_timestamp(?::BIGINT)`)
		args = append(args, f.Since.UTC().UnixMicro())
	}
	if !f.Until.IsZero() {
		conds = append(conds, `"at" < make_timestamp(?::BIGINT)`)
		args = append(args, f.Until.UTC().UnixMicro())
	}
	for _, c := range []struct{ col, v string }{
		{"customer_id", f.Customer}, {"principal", f.Principal}, {"action", f.Action},
		{"outcome", f.Outcome}, {"target", f.Target},
	} {
		if c.v != "" {
			conds = append(conds, c.col+" = ?::VARCHAR")
			args = append(args, c.v)
		}
	}
	q := auditSelect
	if len(conds) > 0 {
		q += "\nWHERE " + strings.Join(conds, "\n  AND ")
	}
	// One row past the limit tells the reader that more matched.
	q += "\nORDER BY \"at\" DESC, audit_id DESC\nLIMIT ?::BIGINT"
	args = append(args, int64(f.EffectiveLimit()+1))
	return q, args
}

// Audit lists audit_log rows matching f, newest first. It goes through
// Query's path (the statement check, a READ ONLY transaction, the query
// timeout, the reader pool), with the filter values bound.
func (db *DB) Audit(ctx context.Context, f warehouse.AuditFilter) (*warehouse.Table, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	done, err := db.reader()
	if err != nil {
		return nil, err
	}
	defer done()
	ctx, cancel := context.WithTimeout(ctx, db.opts.QueryTimeout)
	defer cancel()
	conn, err := db.sqlDB.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	defer conn.Close()
	q, args := auditSQL(f)
	return db.readOnly(ctx, conn, readSpec{what: "audit", q: q, args: args, maxRows: f.EffectiveLimit(), mode: analystMode})
}
