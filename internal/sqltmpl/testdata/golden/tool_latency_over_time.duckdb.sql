-- tool_latency_over_time, duckdb, rendered at 2026-03-31T12:00:00Z
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
    date_trunc('day', ts) AS bucket,
    count(*) AS calls,
    quantile_cont(TRY_CAST(feature_json->>'duration_ms' AS DOUBLE), 0.5) AS p50_ms,
    quantile_cont(TRY_CAST(feature_json->>'duration_ms' AS DOUBLE), 0.95) AS p95_ms,
    quantile_cont(TRY_CAST(feature_json->>'duration_ms' AS DOUBLE), 0.99) AS p99_ms
FROM claude_stream
WHERE activity = 'called_tool'
  AND ts >= ? AND ts < ?
  AND (? = '' OR (feature_json->>'tool') = ?)
  AND (? = '' OR (feature_json->>'server') = ?)
GROUP BY bucket
ORDER BY bucket
