-- insights.sql: insight atoms of the range per subject and metric: how
-- many, the latest value with its provenance, and the numeric values in
-- time order for a sparkline. Runs through CustomerQuery (insight_atoms
-- holds only the customer's rows); every value is bound:
--   $1 from   TIMESTAMP
--   $2 to     TIMESTAMP
--   $3 scope  VARCHAR    '' for all; else subjects naming no project and
--                        project:<scope>
--   $4 limit  BIGINT     series shown, most recently updated first
-- The provenance hash is joined to the query ticket that computed it,
-- when that ticket is still stored.
WITH a AS (
    SELECT subject, metric, value, ts, provenance_query_hash, _verified, _source
    FROM insight_atoms
    WHERE ts >= $1 AND ts < $2
      AND ($3 = '' OR subject = 'project:' || $3 OR NOT starts_with(subject, 'project:'))
),
s AS (
    SELECT subject, metric,
        count(*) AS atoms,
        max(ts) AS last_ts,
        arg_max(value::VARCHAR, ts) AS last_value,
        arg_max(provenance_query_hash, ts) AS provenance,
        arg_max(_verified, ts) AS verified,
        arg_max(_source, ts) AS source,
        to_json(list(TRY_CAST(value::VARCHAR AS DOUBLE) ORDER BY ts)
            FILTER (WHERE json_type(value) IN ('BIGINT', 'UBIGINT', 'DOUBLE'))) AS points
    FROM a
    GROUP BY subject, metric
    ORDER BY last_ts DESC, subject, metric
    LIMIT $4
)
SELECT s.*, t.ticket_id, t.template
FROM s
LEFT JOIN (
    SELECT query_hash, arg_max(ticket_id, created_at) AS ticket_id, arg_max(template, created_at) AS template
    FROM query_tickets GROUP BY query_hash
) t ON t.query_hash = s.provenance
ORDER BY s.last_ts DESC, s.subject, s.metric
