-- mcp_server_stats, duckdb, rendered at 2026-03-31T12:00:00Z
-- params: {"days":7,"limit":50}
-- arg 1: time.Time 2026-03-24T12:00:00Z
-- arg 2: time.Time 2026-03-31T12:00:00Z
-- arg 3: string ""
-- arg 4: string ""
-- arg 5: int64 50
WITH calls AS (
    -- The features this reads, parsed once per event: one
    -- json_extract_string of a list costs a third of a ->> per key.
    SELECT
        coalesce(nullif(f[1], ''), '(built-in)') AS server,
        f[2] AS tool,
        TRY_CAST(f[3] AS DOUBLE) AS duration_ms,
        CASE WHEN lower(coalesce(f[4], '')) = 'false' OR coalesce(f[5], '') <> '' THEN 1 ELSE 0 END AS failed
    FROM (
        SELECT json_extract_string(feature_json, list_value('server', 'tool', 'duration_ms', 'success', 'error')) AS f
        FROM claude_stream
        WHERE activity = 'called_tool'
          AND ts >= ? AND ts < ?
    )
)
SELECT
    server,
    count(DISTINCT tool) AS tools,
    count(*) AS calls,
    CAST(sum(failed) AS BIGINT) AS errors,
    CAST(sum(failed) AS DOUBLE) / count(*) AS error_rate,
    quantile_cont(duration_ms, 0.5) AS p50_ms,
    quantile_cont(duration_ms, 0.95) AS p95_ms,
    quantile_cont(duration_ms, 0.99) AS p99_ms
FROM calls
WHERE (? = '' OR server = ?)
GROUP BY server
ORDER BY calls DESC, server
LIMIT ?
