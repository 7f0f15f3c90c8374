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
WITH calls AS (
    -- The features this reads, parsed once per event: one
    -- json_extract_string of a list costs a third of a ->> per key.
    SELECT ts, f[1] AS tool, f[2] AS server, TRY_CAST(f[3] AS DOUBLE) AS duration_ms
    FROM (
        SELECT ts, json_extract_string(feature_json, list_value('tool', 'server', 'duration_ms')) AS f
        FROM claude_stream
        WHERE activity = 'called_tool'
          AND ts >= ? AND ts < ?
    )
)
SELECT
    date_trunc('day', ts) AS bucket,
    count(*) AS calls,
    quantile_cont(duration_ms, 0.5) AS p50_ms,
    quantile_cont(duration_ms, 0.95) AS p95_ms,
    quantile_cont(duration_ms, 0.99) AS p99_ms
FROM calls
WHERE (? = '' OR tool = ?)
  AND (? = '' OR server = ?)
GROUP BY bucket
ORDER BY bucket
