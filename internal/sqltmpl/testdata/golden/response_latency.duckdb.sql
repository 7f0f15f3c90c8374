-- response_latency, duckdb, rendered at 2026-03-31T12:00:00Z
-- params: {"days":7,"limit":50}
-- arg 1: time.Time 2026-03-24T12:00:00Z
-- arg 2: time.Time 2026-03-31T12:00:00Z
-- arg 3: string ""
-- arg 4: string ""
-- arg 5: int64 50
WITH responses AS (
    -- The features this reads, parsed once per event: one
    -- json_extract_string of a list costs a third of a ->> per key.
    SELECT
        coalesce(f[1], '(unknown)') AS model,
        TRY_CAST(f[2] AS DOUBLE) AS first_token_ms,
        coalesce(TRY_CAST(f[3] AS DOUBLE), TRY_CAST(f[4] AS DOUBLE)) AS response_ms
    FROM (
        SELECT json_extract_string(feature_json, list_value('model', 'first_token_ms', 'latency_ms', 'duration_ms')) AS f
        FROM claude_stream
        WHERE activity = 'completed_response'
          AND ts >= ? AND ts < ?
    )
)
SELECT
    model,
    count(*) AS responses,
    quantile_cont(first_token_ms, 0.5) AS first_token_p50_ms,
    quantile_cont(first_token_ms, 0.95) AS first_token_p95_ms,
    quantile_cont(first_token_ms, 0.99) AS first_token_p99_ms,
    quantile_cont(response_ms, 0.5) AS response_p50_ms,
    quantile_cont(response_ms, 0.95) AS response_p95_ms,
    quantile_cont(response_ms, 0.99) AS response_p99_ms
FROM responses
WHERE (? = '' OR model = ?)
GROUP BY model
ORDER BY responses DESC, model
LIMIT ?
