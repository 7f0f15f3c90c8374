-- tools.sql: per tool (name and server), calls, failed calls and latency
-- percentiles of duration_ms, most called first, at most $4 rows. A call
-- failed when success is false or it has a non-empty error; calls without
-- a numeric duration_ms count but have no latency.
, calls AS (
    SELECT coalesce(nullif(f.tool, ''), '(unknown)') AS tool,
        coalesce(f.server, '') AS server,
        lower(coalesce(f.success, '')) = 'false' OR coalesce(f.error, '') <> '' AS failed,
        TRY_CAST(f.duration_ms AS DOUBLE) AS duration_ms,
        ts
    FROM (
        SELECT ts, json_transform(feature_json, '{"tool": "VARCHAR", "server": "VARCHAR", "success": "VARCHAR",
            "duration_ms": "VARCHAR", "error": "VARCHAR"}') AS f
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
