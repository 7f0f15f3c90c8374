// Package warehouse defines the one provider-side interface of activitybi:
// the Driver that stores the activity stream and answers read-only queries.
// Two drivers implement it — duckdb (embedded, the default) and snowflake
// (production) — and both must pass the conformance suite in warehousetest.
//
// Every method's comment says how the DuckDB driver does it and how the
// Snowflake driver will, so that the interface stays honest for both.
package warehouse

import (
	"context"
	"errors"
	"time"

	"github.com/activitybi/activitybi/internal/event"
)

// Driver is a warehouse. Implementations are safe for concurrent use.
// The uploader is the only caller of Load for a given data directory.
type Driver interface {
	// Migrate applies every pending schema migration in order, each in its
	// own transaction, recording it in the schema_migrations table. It
	// returns the versions it applied (none when up to date).
	// DuckDB: embedded .sql files executed in a transaction.
	// Snowflake: the same versions with Snowflake DDL (VARIANT, clustering
	// keys, row access policy on customer), run with a role that owns the
	// schema; DDL auto-commits there, so each migration is idempotent
	// (CREATE ... IF NOT EXISTS) and its version row is written last.
	Migrate(ctx context.Context) (applied []int, err error)

	// SchemaVersion returns the highest applied migration (0 for none).
	SchemaVersion(ctx context.Context) (int, error)

	// Load stores one uploader batch atomically: the events (deduplicated on
	// (customer, activity_id) against the table and within the batch, the
	// first one winning), the insights (into insight_atoms, deduplicated the
	// same way on (customer_id, atom_id)), the quarantined records (a record
	// already stored at the same segment and offset is not stored again),
	// and the new read offsets of the segments the batch came from. Either
	// all of it commits or none of it does, so a crash at any point neither
	// loses nor duplicates rows; after a failed Load the driver stays usable
	// and the same batch may be retried. Events must have passed
	// event.Validate and insights event.ValidateInsight; a feature_json or
	// an insight value that is not JSON fails the whole Load.
	//
	// Occurrence columns are maintained by Load, per partition (customer,
	// activity) in the order (ts, activity_id): _activity_occurrence is the
	// row's 1-based rank, _activity_repeated_at the ts of the next row (NULL
	// for the last). Rows of an anonymous-only visitor store customer = ''
	// (the column is part of the primary key, so NOT NULL) and therefore
	// share one partition per activity. Maintenance is incremental: only the
	// partitions the batch touches are updated, and only from the earliest
	// new ts on; a batch of in-order events touches just its new rows and the
	// previous last row of each partition, whatever the table's size.
	// DuckDB: one transaction — rows appended straight into claude_stream
	// (the primary-key index rejects stored duplicates; a batch holding
	// re-sent events is retried with only its new events, found by INSERT
	// ... ON CONFLICT DO NOTHING RETURNING), occurrence update, quarantine
	// insert, offsets upsert; see duckdb/load.go.
	// Snowflake: rows go through a Snowpipe Streaming channel per segment
	// with the segment offset as the offset token (exactly-once is the
	// channel's committed offset token); dedup is a MERGE from the landing
	// table into claude_stream by a triggered task that also maintains the
	// occurrence columns for the touched partitions; Offsets reads the
	// channel's committed offset token.
	//
	// Insights are rare (a few per session), and a batch without them pays
	// nothing for them.
	// DuckDB: in the same transaction, one INSERT INTO insight_atoms ...
	// ON CONFLICT DO NOTHING of the batch's insights, deduplicated in Go
	// first (first wins); the rows it reports are the inserted ones, the
	// rest are duplicates.
	// Snowflake: as for events: a segment's insights go through a Snowpipe
	// Streaming channel into an insight landing table with the segment
	// offset as the offset token (a segment's committed offset is then the
	// lower of its two channels' tokens), and the triggered task MERGEs
	// them into insight_atoms on (customer_id, atom_id) WHEN NOT MATCHED
	// THEN INSERT, the first by (segment, offset) winning.
	Load(ctx context.Context, b *Batch) (LoadResult, error)

	// Offsets returns the committed read offset of every segment the
	// uploader has loaded from and not yet forgotten.
	// DuckDB: SELECT from upload_offsets. Snowflake: bulk-channel-status.
	Offsets(ctx context.Context) (map[string]Offset, error)

	// ForgetOffsets drops the offsets of segments that were deleted from the
	// spool after being fully committed.
	// DuckDB: DELETE FROM upload_offsets. Snowflake: drop the channels.
	ForgetOffsets(ctx context.Context, segments []string) error

	// Query runs one read-only SQL statement written by an analyst (the
	// `activitybi sql` command) and returns at most maxRows rows (0 means no
	// limit); Table.Truncated says that more rows existed. Anything but
	// exactly one read-only statement is refused with an *UnsafeSQLError
	// before it runs: writes and DDL, several statements, transaction
	// control, ATTACH, COPY, PRAGMA/SET/RESET, INSTALL/LOAD, CALL, EXPORT,
	// and table functions outside a small allow-list (file and remote
	// readers in particular). A statement that is safe but wrong (a syntax
	// error, an unknown column) fails with an ordinary error. The statement
	// has a timeout; cancelling ctx interrupts it. JSON values come back
	// decoded, binary values as strings.
	// DuckDB: the statement is parsed by DuckDB itself (json_serialize_sql)
	// and its syntax tree checked, then run in a READ ONLY transaction on a
	// database opened with external access disabled and its configuration
	// locked.
	// Snowflake: a role with SELECT grants only, a statement timeout, and
	// MULTI_STATEMENT_COUNT=1.
	Query(ctx context.Context, sql string, maxRows int) (*Table, error)

	// CustomerQuery is the one read path for SQL that we write (the memory
	// builder behind get_context, the SafeSQL templates; never an LLM's
	// text) on behalf of exactly one customer. It runs one read-only
	// statement q with its values bound from args (placeholders ? or $1,
	// $2, ...; nil binds NULL; string, int64, float64, bool and time.Time
	// values as such) and returns at most maxRows rows, with Query's
	// timeout, cancellation, truncation and value decoding.
	//
	// Isolation is structural, not the statement's job: q runs where every
	// customer table (claude_stream by customer; insight_atoms,
	// context_cache, artifacts, query_tickets and audit_log by customer_id)
	// holds only that customer's rows, so a statement without any
	// `WHERE customer = ?` — or with a wrong one — still sees nothing of
	// another customer. Tables without a customer's rows (upload_offsets,
	// upload_quarantine, schema_migrations, stream_partitions, catalog and
	// system views) cannot be read. q may name tables only by their bare
	// names: a schema or catalog (main.claude_stream, "main"."x", temp.x,
	// db.main.x), a table that is not a customer table, DESCRIBE/SHOW/
	// SUMMARIZE, and everything Query refuses are refused with an
	// *UnsafeSQLError before anything runs. customer must be non-empty
	// valid UTF-8 without NUL bytes; it is never part of the SQL text.
	// Customer queries never disturb Query: the analyst still sees every
	// customer's rows.
	// DuckDB: a separate pool of connections on the same database; each
	// connection shadows every table of the main schema with a TEMP VIEW of
	// the same name (unqualified names resolve to the temp catalog first),
	// filtered with `customer_column = getvariable('activitybi_customer')`
	// for customer tables and empty for the rest. A call sets that
	// connection-local variable with a bound parameter (SET VARIABLE ... =
	// ?), runs the statement in a READ ONLY transaction, rolls back and
	// resets the variable (unset, the views are empty); a connection whose
	// reset fails is discarded. The checker of Query runs in a customer
	// mode that admits only bare names of customer tables or of the
	// statement's own CTEs. See duckdb/customer.go.
	// Snowflake: a session per call from a pool, under a role that can
	// read nothing but secure views of the customer tables, kept in a
	// schema of their own that is the session's default (so bare names
	// resolve to them, and a qualified name reaches nothing the role may
	// read), with MULTI_STATEMENT_COUNT=1 and STATEMENT_TIMEOUT_IN_SECONDS.
	// The customer is set with a bound `SET activitybi_customer = ?` and
	// the row access policy on each customer table (or, should a policy
	// body not be allowed to read session variables, each secure view's
	// WHERE clause) compares the row's customer column with
	// $activitybi_customer; UNSET ends the call. The statement is checked
	// first so that the same statements are refused with an
	// *UnsafeSQLError; there the grants, not the check, are the boundary.
	CustomerQuery(ctx context.Context, customer string, q string, args []any, maxRows int) (*Table, error)

	// Stats returns row counts and sizes for status output and tests.
	// DuckDB: COUNT(*) per table. Snowflake: INFORMATION_SCHEMA.TABLES.
	Stats(ctx context.Context) (Stats, error)

	// Close flushes and releases the warehouse (DuckDB: checkpoint).
	Close() error
}

// Batch is one uploader transaction. Any part may be empty: a batch of only
// offsets advances the uploader past records it skipped.
type Batch struct {
	Events []event.Event
	// Insights are rows for insight_atoms (spool records of kind insight).
	Insights []event.Insight
	// Audit are rows for audit_log (spool records of kind audit), stored
	// once per audit_id in the same transaction; see AuditLister.
	Audit      []event.Audit
	Quarantine []QuarantineRecord
	// Offsets are the segment positions after this batch's records.
	Offsets []Offset
	// Prepared is work a driver did on this batch ahead of Load (see
	// Preparer); nil means none. Only the driver that set it reads it, and
	// a Load does the work itself whenever Prepared is not its own or the
	// batch's Events were replaced since.
	Prepared any
}

// Preparer is implemented by a driver that can do part of a Load's work
// before the Load, without its writer lock and while another batch loads:
// the uploader calls Prepare on the batch it builds ahead while the
// previous one commits, so that work leaves the critical path. Prepare
// depends on the batch alone (never on stored state, which the batch
// loading meanwhile changes), keeps what it made in b.Prepared and cannot
// fail; what a Load stores is the same with or without it, and the caller
// must not change the batch after Prepare except by replacing a slice.
// DuckDB: deduplicates the events (first wins), groups them by occurrence
// partition in (ts, activity_id) order and appends them to a query
// appender on a connection of its own, with each row's number within its
// partition in the batch; Load runs the batch's transaction on that
// connection and binds the partitions' stored counts, which the appender's
// INSERT adds (duckdb/load_prepare.go). Stored state and the transaction
// stay in Load.
// Snowflake: deduplicates the events the same way and serializes the
// batch's rows into the NDJSON body of the Snowpipe Streaming append
// requests (one per channel, i.e. per segment, with the batch's offset
// tokens), so that Load only sends them; the MERGE that maintains the
// occurrence columns runs in the warehouse either way.
type Preparer interface {
	Prepare(b *Batch)
}

// Offset is the uploader's committed position in one spool segment.
type Offset struct {
	Segment string // segment name (spool.SegmentID), stable across close/rename
	Offset  int64  // byte offset just after the last committed record
	Records int64  // records committed from this segment so far (loaded + quarantined)
	// Closed is true once the segment is closed and fully committed; the
	// uploader may then delete it.
	Closed bool
}

// QuarantineRecord is a record that reached the uploader but could not be
// loaded: corrupt bytes, a payload that no longer fits the schema, an event
// or insight that fails validation. It is kept with the reason, never dropped.
type QuarantineRecord struct {
	Segment string
	Offset  int64
	Kind    string // spool record kind, "" if unreadable
	Reason  string
	Raw     []byte    // the record's bytes as read, not necessarily UTF-8
	At      time.Time // when it was quarantined; zero means now
}

// LoadResult counts what a Load did.
type LoadResult struct {
	Inserted    int // new rows in claude_stream
	Duplicates  int // events not inserted: already stored, or repeated within the batch
	Quarantined int // newly stored quarantine records (a retried record counts 0)
	// InsightsInserted counts new rows in insight_atoms.
	InsightsInserted int
	// InsightDuplicates counts insights not inserted: already stored (same
	// customer_id and atom_id), or repeated within the batch.
	InsightDuplicates int
	// AuditInserted counts new rows in audit_log; AuditSkipped the audit
	// records a sink does not store by design (upload.RemoteSink); the rest
	// of Batch.Audit were stored already.
	AuditInserted, AuditSkipped int
}

// Stats are row counts of the main tables.
type Stats struct {
	StreamRows     int64
	InsightRows    int64 // rows in insight_atoms
	QuarantineRows int64
	Segments       int64 // segments with a committed offset
	SchemaVersion  int
}

// Column describes one result column.
type Column struct {
	Name string
	Type string // the engine's type name, e.g. VARCHAR, TIMESTAMP, BIGINT
}

// Table is a query result: columns and rows of Go values (string, int64,
// float64, bool, time.Time, nil, or a decoded JSON value).
type Table struct {
	Columns   []Column
	Rows      [][]any
	Truncated bool // more rows existed than were returned
}

// UnsafeSQLError says why analyst SQL was refused. It is the caller's fault
// and never retryable.
type UnsafeSQLError struct {
	Reason string
}

func (e *UnsafeSQLError) Error() string { return "refused: " + e.Reason }

// ErrClosed is returned by a driver after Close.
var ErrClosed = errors.New("warehouse closed")

// ErrRecordRejected marks a Load error caused by the data of a record (a
// value the table cannot hold: a failed conversion, an out-of-range number,
// invalid JSON), not by the warehouse's state. The same record fails again,
// so the uploader isolates it and quarantines it with the reason. Every other
// Load error (I/O, memory, locks, a closed connection) is retried as it is,
// without touching the records.
// DuckDB: errors of type Conversion, OutOfRange, InvalidInput, MismatchType
// or Constraint. Snowflake: per-row errors reported by Snowpipe Streaming.
var ErrRecordRejected = errors.New("record rejected by the warehouse")
