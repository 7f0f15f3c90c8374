-- 0002: insight_atoms keyed per customer, and its _source column.
--
-- A caller-given atom_id is an idempotency key per customer, as activity_id
-- is in claude_stream: the primary key becomes (customer_id, atom_id), so one
-- customer's ids can neither collide with nor suppress another's. DuckDB
-- cannot alter a primary key, so the table is rebuilt: create the new one,
-- copy, drop the old, rename (all inside the migration's transaction).
--
-- value stays nullable only so that the copy can never fail; the loader
-- always sets it (a number, a string, a bool or a small object).
-- _source is where the insight entered the pipeline (mcp, api, ...); rows
-- stored before this migration have NULL there.
CREATE TABLE insight_atoms_0002 (
    atom_id               VARCHAR   NOT NULL,
    customer_id           VARCHAR   NOT NULL,
    subject               VARCHAR   NOT NULL,
    metric                VARCHAR   NOT NULL,
    value                 JSON,
    provenance_query_hash VARCHAR,
    ts                    TIMESTAMP NOT NULL, -- UTC, no time zone
    _verified             BOOLEAN   NOT NULL DEFAULT false,
    _received_at          TIMESTAMP,
    _source               VARCHAR,
    PRIMARY KEY (customer_id, atom_id)
);

INSERT INTO insight_atoms_0002 (atom_id, customer_id, subject, metric, value,
    provenance_query_hash, ts, _verified, _received_at)
SELECT atom_id, customer_id, subject, metric, value,
    provenance_query_hash, ts, _verified, _received_at
FROM insight_atoms;

DROP TABLE insight_atoms;

ALTER TABLE insight_atoms_0002 RENAME TO insight_atoms;
