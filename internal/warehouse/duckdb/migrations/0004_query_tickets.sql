-- 0004: query tickets keep what the query engine needs across a restart.
--
-- 0001 created query_tickets with the question (template, params: the
-- request as JSON) and the outcome (state, times, result size, result_url,
-- which holds the result file's path in the data directory). The engine also
-- needs who submitted it (principal: a token id, "stdio", ...), the stage
-- message shown with the state, whether the result was sampled and at what
-- rate, whether it was cut at the byte cap, when its result expires, and the
-- insights that cite its query hash (a JSON array of atom ids).
--
-- The table is rebuilt (create, copy, drop, rename, in the migration's
-- transaction) rather than altered: DuckDB's ALTER TABLE ... ADD COLUMN
-- changes a configuration option inside a transaction, which the driver's
-- locked configuration refuses. Rows of an earlier run keep every column.
CREATE TABLE query_tickets_0004 (
    ticket_id    VARCHAR   NOT NULL PRIMARY KEY,
    customer_id  VARCHAR   NOT NULL,
    query_hash   VARCHAR   NOT NULL,
    template     VARCHAR,            -- template name, or "dataset"
    params       JSON,               -- the request as submitted
    state        VARCHAR   NOT NULL, -- queued running succeeded failed cancelled expired
    progress     DOUBLE,
    error        VARCHAR,
    created_at   TIMESTAMP NOT NULL, -- UTC, as every time below
    started_at   TIMESTAMP,
    finished_at  TIMESTAMP,
    result_rows  BIGINT,
    result_bytes BIGINT,
    result_url   VARCHAR,
    principal    VARCHAR,
    stage        VARCHAR,
    sampled      BOOLEAN   DEFAULT false,
    sample_rate  DOUBLE,
    truncated    BOOLEAN   DEFAULT false,
    expires_at   TIMESTAMP,          -- the result is removed after it
    insights     JSON                -- atom ids of insights citing query_hash
);

INSERT INTO query_tickets_0004 (ticket_id, customer_id, query_hash, template, params, state,
    progress, error, created_at, started_at, finished_at, result_rows, result_bytes, result_url)
SELECT ticket_id, customer_id, query_hash, template, params, state,
    progress, error, created_at, started_at, finished_at, result_rows, result_bytes, result_url
FROM query_tickets;

DROP TABLE query_tickets;

ALTER TABLE query_tickets_0004 RENAME TO query_tickets;
