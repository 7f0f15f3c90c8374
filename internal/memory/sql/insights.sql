-- insights.sql: per (subject, metric) of one customer's insight atoms, the
-- latest value, how many atoms there are, and the numeric trend over the
-- window; facts (subjects user and project:*) and other insights are bounded
-- separately, most recently updated first.
--
-- Runs through CustomerQuery (insight_atoms holds only the customer's rows);
-- every value is bound:
--   $1 scope         VARCHAR    '' for none; with a scope, other projects'
--                               subjects are left out
--   $2 trend_since   TIMESTAMP  the trend compares values from here on
--   $3 max_facts     BIGINT
--   $4 max_insights  BIGINT
-- Columns: subject, metric, fact, value (JSON text), ts, n, first_num,
-- first_ts, last_num, points, scope_subjects (atoms on project:<scope>,
-- the same on every row).
--
-- Cost: one scan of the customer's atoms and one hash aggregate, no JSON
-- parse: ~8 ms for 10,000 atoms (BenchmarkBuild's customer), of which ~5 ms
-- is DuckDB's fixed cost of planning and running it.
WITH atoms AS (
    SELECT atom_id, subject, metric, value, ts,
        -- A number's JSON text casts to DOUBLE; strings (quoted), booleans
        -- and objects do not (and need no JSON parse to find out).
        TRY_CAST(value::VARCHAR AS DOUBLE) AS num
    FROM insight_atoms
    WHERE $1 = '' OR subject = 'user' OR subject = 'project:' || $1
        OR NOT starts_with(subject, 'project:')
),
g AS (
    SELECT subject, metric,
        subject = 'user' OR starts_with(subject, 'project:') AS fact,
        -- Latest by ts (a struct key (ts, atom_id) to break ties of the
        -- same microsecond costs ~2 ms per 10,000 atoms: ties pick any).
        arg_max(value::VARCHAR, ts) AS value,
        max(ts) AS ts,
        count(*) AS n,
        arg_min(num, ts) FILTER (WHERE ts >= $2 AND num IS NOT NULL) AS first_num,
        min(ts) FILTER (WHERE ts >= $2 AND num IS NOT NULL) AS first_ts,
        arg_max(num, ts) FILTER (WHERE ts >= $2 AND num IS NOT NULL) AS last_num,
        count(num) FILTER (WHERE ts >= $2) AS points
    FROM atoms
    GROUP BY subject, metric
)
SELECT subject, metric, fact, value, ts, n, first_num, first_ts, last_num, points,
    sum(CASE WHEN $1 <> '' AND subject = 'project:' || $1 THEN n ELSE 0 END) OVER () AS scope_subjects
FROM g
QUALIFY row_number() OVER (PARTITION BY fact ORDER BY ts DESC, subject, metric)
    <= CASE WHEN fact THEN $3 ELSE $4 END
ORDER BY fact DESC, ts DESC, subject, metric
