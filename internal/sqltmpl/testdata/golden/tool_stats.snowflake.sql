-- tool_stats, snowflake, rendered at 2026-03-31T12:00:00Z
-- params: {"days":7,"limit":50,"min_calls":1}
-- arg 1: time.Time 2026-03-24T12:00:00Z
-- arg 2: time.Time 2026-03-31T12:00:00Z
-- arg 3: string ""
-- arg 4: string ""
-- arg 5: string ""
-- arg 6: string ""
-- arg 7: int64 1
-- arg 8: int64 50
WITH calls AS (
    SELECT
        COALESCE(feature_json:tool::string, '(unknown)') AS tool,
        COALESCE(feature_json:server::string, '') AS server,
        TRY_TO_DOUBLE(feature_json:duration_ms::string) AS duration_ms,
        IFF(LOWER(COALESCE(feature_json:success::string, '')) = 'false'
            OR COALESCE(feature_json:error::string, '') <> '', 1, 0) AS failed
    FROM claude_stream
    WHERE activity = 'called_tool'
      AND ts >= ? AND ts < ?
)
SELECT
    tool AS "tool",
    server AS "server",
    COUNT(*) AS "calls",
    SUM(failed) AS "errors",
    SUM(failed) / COUNT(*) AS "error_rate",
    PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY duration_ms) AS "p50_ms",
    PERCENTILE_CONT(0.95) WITHIN GROUP (ORDER BY duration_ms) AS "p95_ms",
    PERCENTILE_CONT(0.99) WITHIN GROUP (ORDER BY duration_ms) AS "p99_ms",
    MAX(duration_ms) AS "max_ms"
FROM calls
WHERE (? = '' OR tool = ?)
  AND (? = '' OR server = ?)
GROUP BY tool, server
HAVING COUNT(*) >= ?
ORDER BY "calls" DESC, "tool", "server"
LIMIT ?
