-- response_latency, snowflake, rendered at 2026-03-31T12:00:00Z
-- params: {"days":7,"limit":50}
-- arg 1: time.Time 2026-03-24T12:00:00Z
-- arg 2: time.Time 2026-03-31T12:00:00Z
-- arg 3: string ""
-- arg 4: string ""
-- arg 5: int64 50
WITH responses AS (
    SELECT
        COALESCE(feature_json:model::string, '(unknown)') AS model,
        TRY_TO_DOUBLE(feature_json:first_token_ms::string) AS first_token_ms,
        COALESCE(TRY_TO_DOUBLE(feature_json:latency_ms::string),
                 TRY_TO_DOUBLE(feature_json:duration_ms::string)) AS response_ms
    FROM claude_stream
    WHERE activity = 'completed_response'
      AND ts >= ? AND ts < ?
)
SELECT
    model AS "model",
    COUNT(*) AS "responses",
    PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY first_token_ms) AS "first_token_p50_ms",
    PERCENTILE_CONT(0.95) WITHIN GROUP (ORDER BY first_token_ms) AS "first_token_p95_ms",
    PERCENTILE_CONT(0.99) WITHIN GROUP (ORDER BY first_token_ms) AS "first_token_p99_ms",
    PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY response_ms) AS "response_p50_ms",
    PERCENTILE_CONT(0.95) WITHIN GROUP (ORDER BY response_ms) AS "response_p95_ms",
    PERCENTILE_CONT(0.99) WITHIN GROUP (ORDER BY response_ms) AS "response_p99_ms"
FROM responses
WHERE (? = '' OR model = ?)
GROUP BY model
ORDER BY "responses" DESC, "model"
LIMIT ?
