package duckdb

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/activitybi/activitybi/internal/warehouse"
)

// Query tickets (warehouse.TicketStore) live in query_tickets (migrations
// 0001 and 0004). The engine writes them behind, in batches; a batch is one
// statement on the writer connection: the rows travel as parallel bound
// lists that DuckDB unnests, as the loader does for insights, so a batch
// costs one round trip whatever its size. Times are bound as microseconds
// since the epoch and made into TIMESTAMPs by make_timestamp (a bound
// time.Time cast to TIMESTAMP would follow the session's time zone); 0 is
// NULL, as are empty strings in the optional text columns.

var _ warehouse.TicketStore = (*DB)(nil)

const saveTicketsSQL = `INSERT INTO query_tickets (ticket_id, customer_id, query_hash, template, params,
    state, progress, error, created_at, started_at, finished_at, result_rows, result_bytes, result_url,
    principal, stage, sampled, sample_rate, truncated, expires_at, insights)
SELECT unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), nullif(unnest(?::VARCHAR[]), ''),
    nullif(unnest(?::VARCHAR[]), '')::JSON,
    unnest(?::VARCHAR[]), unnest(?::DOUBLE[]), nullif(unnest(?::VARCHAR[]), ''),
    make_timestamp(unnest(?::BIGINT[])), make_timestamp(nullif(unnest(?::BIGINT[]), 0)),
    make_timestamp(nullif(unnest(?::BIGINT[]), 0)),
    unnest(?::BIGINT[]), unnest(?::BIGINT[]), nullif(unnest(?::VARCHAR[]), ''),
    unnest(?::VARCHAR[]), nullif(unnest(?::VARCHAR[]), ''), unnest(?::BOOLEAN[]), unnest(?::DOUBLE[]),
    unnest(?::BOOLEAN[]), make_timestamp(nullif(unnest(?::BIGINT[]), 0)), unnest(?::VARCHAR[])::JSON
ON CONFLICT (ticket_id) DO UPDATE SET
    query_hash = excluded.query_hash, template = excluded.template, params = excluded.params,
    state = excluded.state, progress = excluded.progress, error = excluded.error,
    started_at = excluded.started_at, finished_at = excluded.finished_at,
    result_rows = excluded.result_rows, result_bytes = excluded.result_bytes,
    result_url = excluded.result_url, principal = excluded.principal, stage = excluded.stage,
    sampled = excluded.sampled, sample_rate = excluded.sample_rate, truncated = excluded.truncated,
    expires_at = excluded.expires_at, insights = excluded.insights`

// SaveTickets inserts or replaces the rows by ticket_id in one statement.
// A ticket's customer_id and created_at never change, so a replace keeps
// them; everything else is the row's.
func (db *DB) SaveTickets(ctx context.Context, rows []warehouse.TicketRow) error {
	if len(rows) == 0 {
		return nil
	}
	n := len(rows)
	var (
		ids, customers, hashes, templates, requests = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		states, errs, paths, principals, stages     = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		insights                                    = make([]string, n)
		progress, rates                             = make([]float64, n), make([]float64, n)
		created, started, finished, expires         = make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
		nrows, nbytes                               = make([]int64, n), make([]int64, n)
		sampled, truncated                          = make([]bool, n), make([]bool, n)
	)
	seen := make(map[string]bool, n)
	for i, r := range rows {
		if r.TicketID == "" || r.CustomerID == "" {
			return fmt.Errorf("save tickets: row %d has no ticket id or customer", i)
		}
		if seen[r.TicketID] {
			// ON CONFLICT DO UPDATE cannot touch one row twice in a
			// statement; the caller sends each ticket once.
			return fmt.Errorf("save tickets: ticket %s appears twice in one batch", r.TicketID)
		}
		seen[r.TicketID] = true
		if r.CreatedAt.IsZero() {
			return fmt.Errorf("save tickets: ticket %s has no created_at", r.TicketID)
		}
		ids[i], customers[i], hashes[i], templates[i] = r.TicketID, r.CustomerID, r.QueryHash, r.Template
		if len(r.Request) > 0 {
			if !json.Valid(r.Request) {
				return fmt.Errorf("save tickets: ticket %s: request is not JSON", r.TicketID)
			}
			requests[i] = string(r.Request)
		}
		states[i], errs[i], paths[i], principals[i], stages[i] = r.State, r.Error, r.ResultPath, r.Principal, r.Stage
		ins := r.Insights
		if ins == nil {
			ins = []string{}
		}
		b, err := json.Marshal(ins)
		if err != nil {
			return fmt.Errorf("save tickets: %w", err)
		}
		insights[i] = string(b)
		progress[i], rates[i] = r.Progress, r.SampleRate
		created[i], started[i], finished[i], expires[i] = micros(r.CreatedAt), micros(r.StartedAt), micros(r.FinishedAt), micros(r.ExpiresAt)
		nrows[i], nbytes[i] = r.Rows, r.Bytes
		sampled[i], truncated[i] = r.Sampled, r.Truncated
	}

	db.writeMu.Lock()
	defer db.writeMu.Unlock()
	conn, err := db.writable()
	if err != nil {
		return err
	}
	_, err = conn.ExecContext(ctx, saveTicketsSQL, ids, customers, hashes, templates, requests,
		states, progress, errs, created, started, finished, nrows, nbytes, paths,
		principals, stages, sampled, rates, truncated, expires, insights)
	if err != nil {
		return fmt.Errorf("save tickets: %w", err)
	}
	return nil
}

// micros is t as microseconds since the epoch, 0 for the zero time.
func micros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

const loadTicketsSQL = `SELECT ticket_id, customer_id, query_hash, coalesce(template, ''),
    coalesce(params::VARCHAR, ''), state, coalesce(progress, -1), coalesce(error, ''),
    epoch_us(created_at), coalesce(epoch_us(started_at), 0), coalesce(epoch_us(finished_at), 0),
    coalesce(result_rows, 0), coalesce(result_bytes, 0), coalesce(result_url, ''),
    coalesce(principal, ''), coalesce(stage, ''), coalesce(sampled, false), coalesce(sample_rate, 0),
    coalesce(truncated, false), coalesce(epoch_us(expires_at), 0), coalesce(insights::VARCHAR, '[]')
FROM query_tickets
WHERE expires_at > make_timestamp(?::BIGINT) OR state IN ('queued', 'running')
ORDER BY created_at, ticket_id`

// LoadTickets reads every ticket not expired at now, and every ticket left
// queued or running, of every customer (the engine's start; not a
// customer's read, so it runs on the analyst pool).
func (db *DB) LoadTickets(ctx context.Context, now time.Time) ([]warehouse.TicketRow, error) {
	done, err := db.reader()
	if err != nil {
		return nil, err
	}
	defer done()
	rows, err := db.sqlDB.QueryContext(ctx, loadTicketsSQL, now.UnixMicro())
	if err != nil {
		return nil, fmt.Errorf("load tickets: %w", err)
	}
	defer rows.Close()
	var out []warehouse.TicketRow
	for rows.Next() {
		var r warehouse.TicketRow
		var req, insights string
		var created, started, finished, expires int64
		if err := rows.Scan(&r.TicketID, &r.CustomerID, &r.QueryHash, &r.Template, &req, &r.State,
			&r.Progress, &r.Error, &created, &started, &finished, &r.Rows, &r.Bytes, &r.ResultPath,
			&r.Principal, &r.Stage, &r.Sampled, &r.SampleRate, &r.Truncated, &expires, &insights); err != nil {
			return nil, fmt.Errorf("load tickets: %w", err)
		}
		if req != "" {
			r.Request = []byte(req)
		}
		r.CreatedAt, r.StartedAt, r.FinishedAt, r.ExpiresAt = fromMicros(created), fromMicros(started), fromMicros(finished), fromMicros(expires)
		if err := json.Unmarshal([]byte(insights), &r.Insights); err != nil {
			return nil, fmt.Errorf("load tickets: ticket %s: insights: %w", r.TicketID, err)
		}
		if len(r.Insights) == 0 {
			r.Insights = nil
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load tickets: %w", err)
	}
	return out, nil
}

func fromMicros(us int64) time.Time {
	if us == 0 {
		return time.Time{}
	}
	return time.UnixMicro(us).UTC()
}

// TicketHashKnown looks for a ticket of customer with this hash through
// CustomerQuery, so the answer can only come from that customer's rows.
func (db *DB) TicketHashKnown(ctx context.Context, customer, hash string) (bool, error) {
	t, err := db.CustomerQuery(ctx, customer, `SELECT 1 FROM query_tickets WHERE query_hash = ? LIMIT 1`, []any{hash}, 1)
	if err != nil {
		return false, fmt.Errorf("ticket hash: %w", err)
	}
	return len(t.Rows) > 0, nil
}

// DeleteTickets removes tickets created before cutoff.
func (db *DB) DeleteTickets(ctx context.Context, createdBefore time.Time) (int64, error) {
	db.writeMu.Lock()
	defer db.writeMu.Unlock()
	conn, err := db.writable()
	if err != nil {
		return 0, err
	}
	res, err := conn.ExecContext(ctx, `DELETE FROM query_tickets WHERE created_at < make_timestamp(?::BIGINT)`, createdBefore.UnixMicro())
	if err != nil {
		return 0, fmt.Errorf("delete tickets: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("delete tickets: %w", err)
	}
	return n, nil
}
