package duckdb

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/duckdb/duckdb-go/v2"

	"github.com/activitybi/activitybi/internal/warehouse"
)

// Query runs one analyst SELECT (see safesql.go) in a READ ONLY transaction
// on a pooled connection, interrupted when ctx ends or QueryTimeout passes.
// With maxRows > 0 the statement is wrapped as
// SELECT * FROM (<sql>) LIMIT maxRows+1, so DuckDB stops early and the extra
// row tells that the result was truncated.
func (db *DB) Query(ctx context.Context, q string, maxRows int) (*warehouse.Table, error) {
	done, err := db.reader()
	if err != nil {
		return nil, err
	}
	defer done()
	if maxRows < 0 {
		return nil, fmt.Errorf("query: maxRows must not be negative, got %d", maxRows)
	}
	ctx, cancel := context.WithTimeout(ctx, db.opts.QueryTimeout)
	defer cancel()
	conn, err := db.sqlDB.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("query: %w", err)
	}
	defer conn.Close()
	return db.readOnly(ctx, conn, readSpec{what: "query", q: q, maxRows: maxRows, mode: analystMode})
}

// readSpec is one checked read: Query's and CustomerQuery's.
type readSpec struct {
	what    string // error prefix
	q       string
	args    []any
	maxRows int
	mode    checkMode
	// setup, if set, runs on the connection after the statement passed
	// the check and before the transaction begins.
	setup func() error
}

// readOnly checks r.q, wraps it for maxRows, and reads it in a READ ONLY
// transaction on conn, which it rolls back. ctx carries the timeout.
func (db *DB) readOnly(ctx context.Context, conn *sql.Conn, r readSpec) (*warehouse.Table, error) {
	if err := db.check(ctx, conn, r.q, r.mode); err != nil {
		return nil, err
	}
	run := r.q
	if r.maxRows > 0 {
		// The wrapped text is checked again, so what runs is always a
		// checked single SELECT. Should wrapping fail to parse (a trailing
		// comment after a semicolon, say), the statement runs unwrapped
		// and reading stops after maxRows+1 rows.
		w := fmt.Sprintf("SELECT * FROM (\n%s\n) AS analyst_query LIMIT %d", trimStatementEnd(r.q), r.maxRows+1)
		if db.check(ctx, conn, w, r.mode) == nil {
			run = w
		}
	}
	if r.setup != nil {
		if err := r.setup(); err != nil {
			return nil, fmt.Errorf("%s: %w", r.what, err)
		}
	}

	if _, err := conn.ExecContext(ctx, "BEGIN TRANSACTION READ ONLY"); err != nil {
		return nil, fmt.Errorf("%s: begin: %w", r.what, err)
	}
	defer func() {
		// A connection whose transaction could not be ended must not go
		// back to the pool.
		if _, err := conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK"); err != nil {
			discard(conn)
		}
	}()
	t, err := readTable(ctx, conn, run, r.args, r.maxRows)
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil, fmt.Errorf("%s: interrupted after %s (timeout): %w", r.what, db.opts.QueryTimeout, err)
		}
		return nil, fmt.Errorf("%s: %w", r.what, err)
	}
	return t, nil
}

// discard makes database/sql close conn instead of returning it to its pool
// (driver.ErrBadConn from Raw marks the connection bad).
func discard(conn *sql.Conn) {
	_ = conn.Raw(func(any) error { return driver.ErrBadConn })
}

// trimStatementEnd drops trailing white space and semicolons.
func trimStatementEnd(q string) string {
	return strings.TrimRight(q, " \t\r\n;")
}

func readTable(ctx context.Context, conn *sql.Conn, q string, args []any, maxRows int) (*warehouse.Table, error) {
	rows, err := conn.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cts, err := rows.ColumnTypes()
	if err != nil {
		return nil, err
	}
	t := &warehouse.Table{Columns: make([]warehouse.Column, len(cts)), Rows: [][]any{}}
	for i, ct := range cts {
		t.Columns[i] = warehouse.Column{Name: ct.Name(), Type: ct.DatabaseTypeName()}
	}
	for rows.Next() {
		if maxRows > 0 && len(t.Rows) == maxRows {
			t.Truncated = true
			break
		}
		vals := make([]any, len(cts))
		ptrs := make([]any, len(cts))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		for i, v := range vals {
			vals[i] = goValue(v)
		}
		t.Rows = append(t.Rows, vals)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return t, nil
}

// goValue converts a driver value to one of the Table value types: string,
// int64, float64, bool, time.Time, nil, or a decoded JSON value ([]any,
// map[string]any). Lists and structs are converted element by element.
func goValue(v any) any {
	switch v := v.(type) {
	case nil, string, int64, float64, bool:
		return v
	case time.Time:
		return v.UTC()
	case []byte:
		return string(v)
	case int8:
		return int64(v)
	case int16:
		return int64(v)
	case int32:
		return int64(v)
	case int:
		return int64(v)
	case uint8:
		return int64(v)
	case uint16:
		return int64(v)
	case uint32:
		return int64(v)
	case uint64:
		if v <= 1<<63-1 {
			return int64(v)
		}
		return fmt.Sprint(v)
	case float32:
		return float64(v)
	case *big.Int:
		if v.IsInt64() {
			return v.Int64()
		}
		return v.String()
	case duckdb.Decimal:
		return v.Float64()
	case duckdb.UUID:
		return v.String()
	case *duckdb.UUID:
		return v.String()
	case duckdb.Interval:
		return fmt.Sprintf("P%dM%dDT%gS", v.Months, v.Days, float64(v.Micros)/1e6)
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = goValue(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[k] = goValue(e)
		}
		return out
	case duckdb.Map:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[fmt.Sprint(goValue(k))] = goValue(e)
		}
		return out
	}
	return fmt.Sprint(v)
}
