-- 0001: the activity stream and the seed tables.
--
-- Names are lowercase snake_case; later migrations add columns, never rename.

-- claude_stream holds exactly the ActivitySchema v2.0 columns, in the spec's
-- order, followed by implementation columns (prefixed with _, ignored by the
-- spec). customer is NOT NULL because it is part of the primary key: rows of
-- an anonymous-only visitor (anonymous_customer_id set, no customer) store
-- the empty string '' there, and anonymous_customer_id identifies them.
-- Uniqueness is per customer so that one customer's ids can neither collide
-- with nor suppress another's.
CREATE TABLE claude_stream (
    activity_id           VARCHAR   NOT NULL,
    ts                    TIMESTAMP NOT NULL, -- UTC, no time zone
    customer              VARCHAR   NOT NULL, -- '' for anonymous-only rows
    activity              VARCHAR   NOT NULL,
    anonymous_customer_id VARCHAR,
    feature_json          JSON      NOT NULL,
    revenue_impact        DOUBLE,
    link                  VARCHAR,
    -- 1-based rank by (ts, activity_id) within (customer, activity).
    _activity_occurrence  BIGINT,
    -- ts of the next row of the same (customer, activity); NULL for the last.
    _activity_repeated_at TIMESTAMP,
    _received_at          TIMESTAMP NOT NULL,
    _source               VARCHAR   NOT NULL,
    PRIMARY KEY (customer, activity_id)
);

-- stream_partitions is the loader's summary of every (customer, activity)
-- partition of claude_stream: how many rows it has and which row is last in
-- (ts, activity_id) order. It lets a load number in-order arrivals and find
-- the previous last row without reading the partition.
CREATE TABLE stream_partitions (
    customer VARCHAR   NOT NULL,
    activity VARCHAR   NOT NULL,
    n        BIGINT    NOT NULL, -- rows in the partition
    first_ts TIMESTAMP NOT NULL, -- smallest ts
    last_ts  TIMESTAMP NOT NULL, -- ts of the last row in (ts, activity_id) order
    last_id  VARCHAR   NOT NULL, -- activity_id of that row
    PRIMARY KEY (customer, activity)
);

CREATE TABLE insight_atoms (
    atom_id               VARCHAR   NOT NULL PRIMARY KEY,
    customer_id           VARCHAR   NOT NULL,
    subject               VARCHAR   NOT NULL,
    metric                VARCHAR   NOT NULL,
    value                 JSON,
    provenance_query_hash VARCHAR,
    ts                    TIMESTAMP NOT NULL,
    _verified             BOOLEAN   NOT NULL DEFAULT false,
    _received_at          TIMESTAMP
);

CREATE TABLE context_cache (
    customer_id VARCHAR   NOT NULL,
    scope       VARCHAR   NOT NULL DEFAULT '',
    context     JSON      NOT NULL,
    updated_at  TIMESTAMP NOT NULL,
    version     BIGINT    NOT NULL,
    PRIMARY KEY (customer_id, scope)
);

CREATE TABLE artifacts (
    artifact_id  VARCHAR   NOT NULL PRIMARY KEY,
    customer_id  VARCHAR   NOT NULL,
    url          VARCHAR   NOT NULL,
    size_bytes   BIGINT,
    content_type VARCHAR,
    created_at   TIMESTAMP NOT NULL,
    expires_at   TIMESTAMP
);

CREATE TABLE query_tickets (
    ticket_id    VARCHAR   NOT NULL PRIMARY KEY,
    customer_id  VARCHAR   NOT NULL,
    query_hash   VARCHAR   NOT NULL,
    template     VARCHAR,
    params       JSON,
    state        VARCHAR   NOT NULL,
    progress     DOUBLE,
    error        VARCHAR,
    created_at   TIMESTAMP NOT NULL,
    started_at   TIMESTAMP,
    finished_at  TIMESTAMP,
    result_rows  BIGINT,
    result_bytes BIGINT,
    result_url   VARCHAR
);

CREATE TABLE audit_log (
    "at"        TIMESTAMP NOT NULL, -- quoted: AT is a keyword in DuckDB
    principal   VARCHAR   NOT NULL,
    customer_id VARCHAR,
    action      VARCHAR   NOT NULL,
    target      VARCHAR,
    rows        BIGINT,
    bytes       BIGINT,
    duration_ms BIGINT,
    outcome     VARCHAR   NOT NULL,
    detail      VARCHAR
);

-- upload_offsets is the uploader's committed position per spool segment,
-- written in the same transaction as the rows (exactly-once).
CREATE TABLE upload_offsets (
    segment    VARCHAR   NOT NULL PRIMARY KEY,
    "offset"   BIGINT    NOT NULL,
    records    BIGINT    NOT NULL,
    closed     BOOLEAN   NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

-- upload_quarantine keeps records that could not be loaded, with the reason.
-- raw is BLOB, not VARCHAR: a corrupt record is arbitrary bytes, and DuckDB's
-- VARCHAR rejects invalid UTF-8 (read it as text with decode(raw)). The
-- primary key makes a retried batch unable to quarantine a record twice.
CREATE TABLE upload_quarantine (
    segment        VARCHAR   NOT NULL,
    "offset"       BIGINT    NOT NULL,
    kind           VARCHAR   NOT NULL,
    reason         VARCHAR   NOT NULL,
    raw            BLOB,
    quarantined_at TIMESTAMP NOT NULL,
    PRIMARY KEY (segment, "offset")
);
