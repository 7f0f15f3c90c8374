-- 0003: audit_log rows come through the spool, keyed by audit_id.
--
-- Every data access (a query ticket, a result fetch, get_context, analyst
-- SQL, a listing of this log) is appended by the process that served it to
-- its spool as a record of kind "audit" and loaded by the uploader in the
-- same transaction as its offsets, like events and insights. audit_id is the
-- record's ULID; the primary key makes a batch that is loaded again (a
-- COMMIT whose outcome was unknown, say) store each access once. DuckDB
-- cannot add a primary key to a table, so the table is rebuilt (create, copy,
-- drop, rename, all in the migration's transaction), keeping every column of
-- migration 1. Rows written before this migration (none are: nothing wrote
-- the table) would get a generated id.
--
-- customer_id is NULL for an analyst's access across all customers
-- (`activitybi sql`); a customer's connection therefore never sees those
-- rows. _received_at is when the spool accepted the record, _source where it
-- was written (mcp, cli, api, ...).
--
-- No secondary index: `activitybi audit` reads the newest rows first with
-- optional equality filters; rows arrive in time order, so zonemaps on "at"
-- already prune a --since/--until scan, and DuckDB uses an ART index only for
-- highly selective point lookups (bench/audit.md measures both).
CREATE TABLE audit_log_0003 (
    audit_id     VARCHAR   NOT NULL PRIMARY KEY,
    "at"         TIMESTAMP NOT NULL, -- UTC; quoted: AT is a keyword in DuckDB
    principal    VARCHAR   NOT NULL,
    customer_id  VARCHAR,            -- NULL: across all customers (analyst)
    action       VARCHAR   NOT NULL,
    target       VARCHAR,
    rows         BIGINT,
    bytes        BIGINT,
    duration_ms  BIGINT,
    outcome      VARCHAR   NOT NULL,
    detail       VARCHAR,
    _received_at TIMESTAMP,
    _source      VARCHAR
);

INSERT INTO audit_log_0003 (audit_id, "at", principal, customer_id, action, target,
    rows, bytes, duration_ms, outcome, detail)
SELECT 'migrated-' || uuid()::VARCHAR, "at", principal, customer_id, action, target,
    rows, bytes, duration_ms, outcome, detail
FROM audit_log;

DROP TABLE audit_log;

ALTER TABLE audit_log_0003 RENAME TO audit_log;
