package warehouse

import (
	"context"
	"time"
)

// TicketRow is one query ticket as the query engine (internal/query) keeps
// it across restarts, in the query_tickets table (migrations 0001 and 0004).
// Times are UTC; a zero time is stored as NULL.
type TicketRow struct {
	TicketID   string
	CustomerID string
	QueryHash  string
	// Template is the template name, or "dataset" for a dataset spec.
	Template string
	// Request is the submitted request as JSON (template or dataset, and
	// params): enough to tell a person what was asked. It is stored in the
	// params column.
	Request    []byte
	State      string
	Progress   float64
	Stage      string
	Error      string
	Principal  string
	CreatedAt  time.Time
	StartedAt  time.Time
	FinishedAt time.Time
	ExpiresAt  time.Time
	Rows       int64
	Bytes      int64
	Sampled    bool
	SampleRate float64
	Truncated  bool
	// ResultPath is the result file in the engine's directory ("" when
	// there is none); stored in result_url.
	ResultPath string
	// Insights are the atom ids of insights that cite QueryHash.
	Insights []string
}

// TicketStore keeps query tickets across restarts of the core. The engine
// writes behind (batches of changed tickets, a few times a second), so a
// store's latency never reaches submit_query.
//
// DuckDB (duckdb/tickets.go): query_tickets in the warehouse file, written
// on the driver's single writer connection with one INSERT ... ON CONFLICT
// DO UPDATE per batch; the customer-scoped read (TicketHashKnown) goes
// through CustomerQuery, so it can only see that customer's rows.
//
// Snowflake (not built): the same table, a batch written with one MERGE on
// ticket_id (a hybrid table would suit the point reads best); the engine
// itself can then run in several replicas only once tickets also live in a
// shared store (Redis) that every replica reads, with Snowflake's async
// query ids as the handle of a running query, so a replica other than the
// one that submitted can answer for it.
type TicketStore interface {
	// SaveTickets inserts or replaces rows by ticket_id, all or none.
	SaveTickets(ctx context.Context, rows []TicketRow) error
	// LoadTickets returns every ticket not yet expired at now (expires_at
	// after now) and every ticket still queued or running (those of a run
	// that crashed), of every customer.
	LoadTickets(ctx context.Context, now time.Time) ([]TicketRow, error)
	// TicketHashKnown reports whether customer has a stored ticket with
	// this query hash, expired or not (provenance of insights outlives the
	// result).
	TicketHashKnown(ctx context.Context, customer, hash string) (bool, error)
	// DeleteTickets removes tickets created before cutoff and returns how
	// many it removed.
	DeleteTickets(ctx context.Context, createdBefore time.Time) (int64, error)
}
