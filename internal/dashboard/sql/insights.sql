-- insights.sql: insight atoms of the range per subject and metric: how
-- many, the latest value with its provenance, and the numeric values in
-- time order for a sparkline. Runs through CustomerQuery (insight_atoms
-- holds only the customer's rows); every value is bound:
--   $1 from   TIMESTAMP
--   $2 to     TIMESTAMP
--   $3 scope  VARCHAR    '' for all; else subjects naming no project and
--                        project:<scope>
--   $4 limit  BIGINT     series shown, most recently updated first
--   $5 points BIGINT     numeric values a trend keeps at most (plus its
--                        first): a longer one is cut into $5 runs of
--                        equal length and the last value of each kept,
--                        so a value logged every minute costs the page no
--                        more than one logged daily
-- The provenance hash is joined to the query ticket that computed it,
-- when that ticket is still stored.
WITH a AS (
    SELECT atom_id, subject, metric, value, ts, provenance_query_hash, _verified, _source
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
        arg_max(_source, ts) AS source
    FROM a
    GROUP BY subject, metric
    ORDER BY last_ts DESC, subject, metric
    LIMIT $4
),
n AS (
    SELECT subject, metric, TRY_CAST(value::VARCHAR AS DOUBLE) AS v,
        row_number() OVER (PARTITION BY subject, metric ORDER BY ts, atom_id) AS i,
        count(*) OVER (PARTITION BY subject, metric) AS k
    FROM a
    WHERE json_type(value) IN ('BIGINT', 'UBIGINT', 'DOUBLE')
      AND (subject, metric) IN (SELECT (subject, metric) FROM s)
),
p AS (
    SELECT subject, metric, to_json(list(v ORDER BY i)) AS points, max(k) > $5 AS points_sampled
    FROM n
    WHERE k <= $5 OR i = 1 OR i = k OR (i - 1) * $5 // k <> i * $5 // k
    GROUP BY subject, metric
)
SELECT s.*, p.points, coalesce(p.points_sampled, false) AS points_sampled, t.ticket_id, t.template
FROM s
LEFT JOIN p ON p.subject = s.subject AND p.metric = s.metric
LEFT JOIN (
    SELECT query_hash, arg_max(ticket_id, created_at) AS ticket_id, arg_max(template, created_at) AS template
    FROM query_tickets GROUP BY query_hash
) t ON t.query_hash = s.provenance
ORDER BY s.last_ts DESC, s.subject, s.metric
