package warehouse

import (
	"context"
	"encoding/json"
	"time"
)

// ContextRow is one row of context_cache: a customer's materialized context
// for one scope ("" for the whole customer), as the memory store
// (internal/memory.Store) built it. The warehouse never looks inside
// Context; the store decides when a row is fresh enough to answer a
// get_context and writes a new one when it rebuilds.
type ContextRow struct {
	Customer string          // customer_id
	Scope    string          // scope; "" for the whole customer
	Context  json.RawMessage // context: the memory.Context as JSON
	// Version changes exactly when the content changes (cursors of
	// get_context are tied to it); the store keeps it when a rebuild finds
	// the same content.
	Version int64
	// UpdatedAt is when the build that made Context read the warehouse
	// (UTC, microseconds). A write never replaces a row with a newer
	// UpdatedAt, so a slow build cannot overwrite a later one.
	UpdatedAt time.Time
}

// CustomerActivity summarizes what a customer has in the warehouse, enough
// to tell cheaply whether its context can have changed: counts only grow
// while rows are only added, so equal counts and last times mean no row
// arrived in between.
type CustomerActivity struct {
	Customer  string
	Events    int64     // rows in claude_stream
	LastEvent time.Time // latest ts of its events; zero when none
	Insights  int64     // rows in insight_atoms
	// LastInsight is the latest time an insight of its was recorded or
	// received (the later of ts and _received_at); zero when none.
	LastInsight time.Time
}

// ContextStore is what a warehouse offers the memory store besides
// CustomerQuery (through which the store reads a customer's row, so that it
// can only ever see that customer's). It is separate from Driver because
// only the core's memory store uses it.
//
// DuckDB (duckdb/contextcache.go): PutContext is one upsert on the writer
// connection under writeMu (it queues behind a running Load; a row is tens
// of KB and the write well under a millisecond on its own), guarded so that
// an older UpdatedAt never replaces a newer one. CustomerActivity reads
// stream_partitions (a row per customer and activity, kept by Load: no scan
// of claude_stream) and aggregates insight_atoms, on a reader connection.
//
// Snowflake (how it will do it): context_cache with context as VARIANT,
// written by a single-row MERGE on (customer_id, scope) with bound values
// (`... USING (SELECT ?, ?, PARSE_JSON(?), ?, ?) ... WHEN MATCHED AND
// s.updated_at > t.updated_at THEN UPDATE ... WHEN NOT MATCHED THEN
// INSERT`) under the service role, from every server replica (the guard on
// updated_at makes concurrent replicas harmless). The row is read through
// CustomerQuery, i.e. the secure view under the row access policy.
// CustomerActivity reads a per-customer summary table that the triggered
// task merging claude_stream and insight_atoms keeps (counts and last
// times), since a GROUP BY over the stream would scan it.
type ContextStore interface {
	// PutContext inserts the row, or replaces the row of the same customer
	// and scope when its UpdatedAt is older than r's. It reports whether r
	// was written (false: a row at least as new was there).
	PutContext(ctx context.Context, r ContextRow) (bool, error)

	// CustomerActivity returns the customers with an event or an insight
	// at or after since, plus every customer named in also whatever its
	// last activity (those without any row are left out), most recently
	// active first, at most limit (0: no limit). Anonymous-only rows
	// (customer "") are not a customer.
	CustomerActivity(ctx context.Context, since time.Time, also []string, limit int) ([]CustomerActivity, error)
}
