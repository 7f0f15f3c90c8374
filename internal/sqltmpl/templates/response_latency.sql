/*
name: response_latency
description: >-
  Response latency per model: time to first token and time to the complete
  response, each as p50/p95/p99 in milliseconds, with the number of
  responses. Use it for "how fast is Claude responding", "which model is
  slowest", "first-token latency of model X". Over time:
  response_latency_over_time.
reads: >-
  completed_response events: features model, first_token_ms, and latency_ms
  (or duration_ms when latency_ms is absent) for the complete response.
  Responses without a latency count in responses but not in its
  percentiles.
timeout: 30s
window: {days: 7}
params:
  - name: model
    type: string
    optional: true
    description: "Only this model (exact name, e.g. claude-sonnet-4-5). Default all models."
  - name: limit
    type: int
    default: 50
    min: 1
    max: 1000
    description: At most this many models, most responses first.
columns:
  - {name: model, type: VARCHAR, description: "The model; (unknown) when the event named none."}
  - {name: responses, type: BIGINT, description: Responses in the window.}
  - {name: first_token_p50_ms, type: DOUBLE, description: Median time to first token in milliseconds.}
  - {name: first_token_p95_ms, type: DOUBLE, description: 95th percentile of time to first token in milliseconds.}
  - {name: first_token_p99_ms, type: DOUBLE, description: 99th percentile of time to first token in milliseconds.}
  - {name: response_p50_ms, type: DOUBLE, description: Median time to the complete response in milliseconds.}
  - {name: response_p95_ms, type: DOUBLE, description: 95th percentile of time to the complete response in milliseconds.}
  - {name: response_p99_ms, type: DOUBLE, description: 99th percentile of time to the complete response in milliseconds.}
card: {kind: bar, x: model, y: [first_token_p95_ms, response_p95_ms]}
*/

-- dialect: duckdb
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
          AND ts >= $window_start AND ts < $window_end
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
WHERE ($model = '' OR model = $model)
GROUP BY model
ORDER BY responses DESC, model
LIMIT $limit

-- dialect: snowflake
WITH responses AS (
    SELECT
        COALESCE(feature_json:model::string, '(unknown)') AS model,
        TRY_TO_DOUBLE(feature_json:first_token_ms::string) AS first_token_ms,
        COALESCE(TRY_TO_DOUBLE(feature_json:latency_ms::string),
                 TRY_TO_DOUBLE(feature_json:duration_ms::string)) AS response_ms
    FROM claude_stream
    WHERE activity = 'completed_response'
      AND ts >= $window_start AND ts < $window_end
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
WHERE ($model = '' OR model = $model)
GROUP BY model
ORDER BY "responses" DESC, "model"
LIMIT $limit
