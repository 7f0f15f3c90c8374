-- response_latency_over_time, duckdb, rendered at 2026-03-31T12:00:00Z
-- params: {"bucket":"day","days":7}
-- arg 1: time.Time 2026-03-24T12:00:00Z
-- arg 2: time.Time 2026-03-31T12:00:00Z
-- arg 3: string ""
-- arg 4: string ""
-- slot bucket=hour: 'hour'
-- slot bucket=day: 'day'
-- slot bucket=week: 'week'
-- slot bucket=month: 'month'
WITH responses AS (
    -- The features this reads, parsed once per event: one
    -- json_extract_string of a list costs a third of a ->> per key.
    SELECT
        ts,
        f[1] AS model,
        TRY_CAST(f[2] AS DOUBLE) AS first_token_ms,
        coalesce(TRY_CAST(f[3] AS DOUBLE), TRY_CAST(f[4] AS DOUBLE)) AS response_ms
    FROM (
        SELECT ts, json_extract_string(feature_json, list_value('model', 'first_token_ms', 'latency_ms', 'duration_ms')) AS f
        FROM claude_stream
        WHERE activity = 'completed_response'
          AND ts >= ? AND ts < ?
    )
)
SELECT
    date_trunc('day', ts) AS bucket,
    count(*) AS responses,
    quantile_cont(first_token_ms, 0.5) AS first_token_p50_ms,
    quantile_cont(first_token_ms, 0.95) AS first_token_p95_ms,
    quantile_cont(first_token_ms, 0.99) AS first_token_p99_ms,
    quantile_cont(response_ms, 0.5) AS response_p50_ms,
    quantile_cont(response_ms, 0.95) AS response_p95_ms,
    quantile_cont(response_ms, 0.99) AS response_p99_ms
FROM responses
WHERE (? = '' OR model = ?)
GROUP BY bucket
ORDER BY bucket
