-- mcp_server_stats, snowflake, rendered at 2026-03-31T12:00:00Z
-- params: {"days":7,"limit":50}
-- arg 1: time.Time 2026-03-24T12:00:00Z
-- arg 2: time.Time 2026-03-31T12:00:00Z
-- arg 3: string ""
-- arg 4: string ""
-- arg 5: int64 50
WITH calls AS (
    SELECT
        COALESCE(NULLIF(feature_json:server::string, ''), '(built-in)') AS server,
        feature_json:tool::string AS tool,
        TRY_TO_DOUBLE(feature_json:duration_ms::string) AS duration_ms,
        IFF(LOWER(COALESCE(feature_json:success::string, '')) = 'false'
            OR COALESCE(feature_json:error::string, '') <> '', 1, 0) AS failed
    FROM claude_stream
    WHERE activity = 'called_tool'
      AND ts >= ? AND ts < ?
)
SELECT
    server AS "server",
    COUNT(DISTINCT tool) AS "tools",
    COUNT(*) AS "calls",
    SUM(failed) AS "errors",
    SUM(failed) / COUNT(*) AS "error_rate",
    PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY duration_ms) AS "p50_ms",
    PERCENTILE_CONT(0.95) WITHIN GROUP (ORDER BY duration_ms) AS "p95_ms",
    PERCENTILE_CONT(0.99) WITHIN GROUP (ORDER BY duration_ms) AS "p99_ms"
FROM calls
WHERE (? = '' OR server = ?)
GROUP BY server
ORDER BY "calls" DESC, "server"
LIMIT ?
