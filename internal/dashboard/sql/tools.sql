-- tools.sql: per tool (name and server), calls, failed calls and latency
-- percentiles of duration_ms, most called first, at most $4 rows. A call
-- failed when success is false or it has a non-empty error; calls without
-- a numeric duration_ms count but have no latency.
, calls AS (
    SELECT coalesce(nullif(f[1], ''), '(unknown)') AS tool,
        coalesce(f[2], '') AS server,
        lower(coalesce(f[3], '')) = 'false' OR coalesce(f[5], '') <> '' AS failed,
        TRY_CAST(f[4] AS DOUBLE) AS duration_ms,
        ts
    FROM (
        SELECT ts, json_extract_string(feature_json,
            list_value('tool', 'server', 'success', 'duration_ms', 'error')) AS f
        FROM ev
        WHERE activity = 'called_tool'
    )
)
SELECT CASE WHEN server = '' THEN tool ELSE tool || ' @' || server END AS tool,
    count(*) AS calls,
    count(*) FILTER (WHERE failed) AS errors,
    count(*) FILTER (WHERE failed) / count(*) AS error_rate,
    quantile_cont(duration_ms, 0.5) AS p50_ms,
    quantile_cont(duration_ms, 0.95) AS p95_ms,
    quantile_cont(duration_ms, 0.99) AS p99_ms,
    max(duration_ms) AS max_ms,
    max(ts) AS last_call
FROM calls
GROUP BY tool, server
ORDER BY calls DESC, tool
LIMIT $4
