-- tool_latency_over_time, snowflake, rendered at 2026-03-31T12:00:00Z
-- params: {"bucket":"day","days":7}
-- arg 1: time.Time 2026-03-24T12:00:00Z
-- arg 2: time.Time 2026-03-31T12:00:00Z
-- arg 3: string ""
-- arg 4: string ""
-- arg 5: string ""
-- arg 6: string ""
-- slot bucket=hour: 'hour'
-- slot bucket=day: 'day'
-- slot bucket=week: 'week'
-- slot bucket=month: 'month'
SELECT
    DATE_TRUNC('day', ts) AS "bucket",
    COUNT(*) AS "calls",
    PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY TRY_TO_DOUBLE(feature_json:duration_ms::string)) AS "p50_ms",
    PERCENTILE_CONT(0.95) WITHIN GROUP (ORDER BY TRY_TO_DOUBLE(feature_json:duration_ms::string)) AS "p95_ms",
    PERCENTILE_CONT(0.99) WITHIN GROUP (ORDER BY TRY_TO_DOUBLE(feature_json:duration_ms::string)) AS "p99_ms"
FROM claude_stream
WHERE activity = 'called_tool'
  AND ts >= ? AND ts < ?
  AND (? = '' OR feature_json:tool::string = ?)
  AND (? = '' OR feature_json:server::string = ?)
GROUP BY 1
ORDER BY 1
