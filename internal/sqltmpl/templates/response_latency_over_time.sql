/*
name: response_latency_over_time
description: >-
  Time to first token and time to the complete response per time bucket
  (hour, day, week or month), as p50/p95/p99 in milliseconds, for one model
  or all. Use it for "is Claude getting slower", "first-token latency by
  hour today", "latency trend of model X this month". Per model as a
  snapshot: response_latency.
reads: >-
  completed_response events: features model, first_token_ms, and latency_ms
  (or duration_ms when latency_ms is absent). Buckets without responses are
  absent.
timeout: 30s
window: {days: 7}
bucket: {default: day}
params:
  - name: model
    type: string
    optional: true
    description: "Only this model (exact name, e.g. claude-sonnet-4-5). Default all models together."
columns:
  - {name: bucket, type: TIMESTAMP, description: "Start of the time bucket (UTC)."}
  - {name: responses, type: BIGINT, description: Responses in the bucket.}
  - {name: first_token_p50_ms, type: DOUBLE, description: Median time to first token in milliseconds.}
  - {name: first_token_p95_ms, type: DOUBLE, description: 95th percentile of time to first token in milliseconds.}
  - {name: first_token_p99_ms, type: DOUBLE, description: 99th percentile of time to first token in milliseconds.}
  - {name: response_p50_ms, type: DOUBLE, description: Median time to the complete response in milliseconds.}
  - {name: response_p95_ms, type: DOUBLE, description: 95th percentile of time to the complete response in milliseconds.}
  - {name: response_p99_ms, type: DOUBLE, description: 99th percentile of time to the complete response in milliseconds.}
card: {kind: line, x: bucket, y: [first_token_p95_ms, response_p95_ms]}
*/

-- dialect: duckdb
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
          AND ts >= $window_start AND ts < $window_end
    )
)
SELECT
    date_trunc(/* SLOT: bucket */'day'/* END */, ts) AS bucket,
    count(*) AS responses,
    quantile_cont(first_token_ms, 0.5) AS first_token_p50_ms,
    quantile_cont(first_token_ms, 0.95) AS first_token_p95_ms,
    quantile_cont(first_token_ms, 0.99) AS first_token_p99_ms,
    quantile_cont(response_ms, 0.5) AS response_p50_ms,
    quantile_cont(response_ms, 0.95) AS response_p95_ms,
    quantile_cont(response_ms, 0.99) AS response_p99_ms
FROM responses
WHERE ($model = '' OR model = $model)
GROUP BY bucket
ORDER BY bucket

-- dialect: snowflake
WITH responses AS (
    SELECT
        DATE_TRUNC(/* SLOT: bucket */'day'/* END */, ts) AS bucket,
        TRY_TO_DOUBLE(feature_json:first_token_ms::string) AS first_token_ms,
        COALESCE(TRY_TO_DOUBLE(feature_json:latency_ms::string),
                 TRY_TO_DOUBLE(feature_json:duration_ms::string)) AS response_ms
    FROM claude_stream
    WHERE activity = 'completed_response'
      AND ts >= $window_start AND ts < $window_end
      AND ($model = '' OR feature_json:model::string = $model)
)
SELECT
    bucket AS "bucket",
    COUNT(*) AS "responses",
    PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY first_token_ms) AS "first_token_p50_ms",
    PERCENTILE_CONT(0.95) WITHIN GROUP (ORDER BY first_token_ms) AS "first_token_p95_ms",
    PERCENTILE_CONT(0.99) WITHIN GROUP (ORDER BY first_token_ms) AS "first_token_p99_ms",
    PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY response_ms) AS "response_p50_ms",
    PERCENTILE_CONT(0.95) WITHIN GROUP (ORDER BY response_ms) AS "response_p95_ms",
    PERCENTILE_CONT(0.99) WITHIN GROUP (ORDER BY response_ms) AS "response_p99_ms"
FROM responses
GROUP BY bucket
ORDER BY bucket
