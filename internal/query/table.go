package query

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/activitybi/activitybi/internal/warehouse"
)

// Table returns up to maxRows rows of a succeeded ticket's result as a
// warehouse.Table with typed values (times as time.Time, integers as int64,
// other numbers as float64), for the card renderer. It reads the result
// file whole (it is bounded by the byte cap) and writes no audit entry of
// its own: the caller records what it made of the rows (a rendered card).
// Table.Truncated is set when the result holds more than maxRows rows or
// was itself truncated at the byte cap.
func (e *Engine) Table(ctx context.Context, customer, id string, maxRows int) (*warehouse.Table, *Ticket, error) {
	e.mu.Lock()
	t, err := e.lookup(customer, id)
	if err != nil {
		e.mu.Unlock()
		return nil, nil, err
	}
	snap := t.snapshot()
	e.mu.Unlock()
	switch snap.State {
	case StateQueued, StateRunning:
		return nil, snap, fmt.Errorf("%w: ticket %s is %s; wait for it with get_query_status", ErrNotReady, snap.ID, snap.State)
	case StateFailed, StateCancelled, StateExpired:
		return nil, snap, fmt.Errorf("%w: ticket %s is %s", ErrNoResult, snap.ID, snap.State)
	}
	data, err := e.readResult(ctx, customer, snap)
	if err != nil {
		return nil, snap, fmt.Errorf("query: read result of %s: %w", snap.ID, err)
	}
	p, err := parsePage(data, 0, maxRows, math.MaxInt)
	if err != nil {
		return nil, snap, fmt.Errorf("query: read result of %s: %w", snap.ID, err)
	}
	tab := &warehouse.Table{Columns: p.Columns, Rows: make([][]any, len(p.Rows)),
		Truncated: p.NextOffset >= 0 || p.Truncated}
	for i, r := range p.Rows {
		row := make([]any, len(r))
		for j, v := range r {
			row[j] = typed(v, p.Columns[j].Type)
		}
		tab.Rows[i] = row
	}
	return tab, snap, nil
}

// typed turns a result file's JSON value back into the Go value the
// warehouse returned, by the column's engine type.
func typed(v any, typ string) any {
	switch x := v.(type) {
	case json.Number:
		if isIntegerType(typ) {
			if n, err := x.Int64(); err == nil {
				return n
			}
		}
		if f, err := x.Float64(); err == nil {
			return f
		}
		return x.String()
	case string:
		if isTimeType(typ) {
			for _, layout := range []string{time.RFC3339Nano, "2006-01-02"} {
				if ts, err := time.Parse(layout, x); err == nil {
					return ts.UTC()
				}
			}
		}
		return x
	}
	return v
}

func isIntegerType(typ string) bool {
	switch strings.ToUpper(typ) {
	case "BIGINT", "INTEGER", "SMALLINT", "TINYINT", "HUGEINT", "UBIGINT", "UINTEGER", "USMALLINT", "UTINYINT", "INT", "NUMBER":
		return true
	}
	return false
}

func isTimeType(typ string) bool {
	t := strings.ToUpper(typ)
	return t == "DATE" || strings.HasPrefix(t, "TIMESTAMP")
}
