/*
name: tool_latency_over_time
description: >-
  Tool call duration percentiles p50/p95/p99 (milliseconds) and call counts
  per time bucket (hour, day, week or month), for one tool, one MCP server,
  or all tools together. Use it for "is tool X getting slower", "latency of
  server Y this week by day". A snapshot per tool is tool_stats.
reads: >-
  called_tool events: features tool, server, duration_ms. Calls without
  duration_ms count in calls but not in the percentiles. Buckets without
  calls are absent.
timeout: 30s
window: {days: 7}
bucket: {default: day}
params:
  - name: tool
    type: string
    optional: true
    description: Only this tool (exact name). Default all tools together.
  - name: server
    type: string
    optional: true
    description: Only tools of this MCP server (exact name). Default all servers.
columns:
  - {name: bucket, type: TIMESTAMP, description: "Start of the time bucket (UTC)."}
  - {name: calls, type: BIGINT, description: Calls in the bucket.}
  - {name: p50_ms, type: DOUBLE, description: Median call duration in milliseconds.}
  - {name: p95_ms, type: DOUBLE, description: 95th percentile of call duration in milliseconds.}
  - {name: p99_ms, type: DOUBLE, description: 99th percentile of call duration in milliseconds.}
card: {kind: line, x: bucket, y: [p50_ms, p95_ms, p99_ms]}
*/

-- dialect: duckdb
WITH calls AS (
    -- The features this reads, parsed once per event: one
    -- json_extract_string of a list costs a third of a ->> per key.
    SELECT ts, f[1] AS tool, f[2] AS server, TRY_CAST(f[3] AS DOUBLE) AS duration_ms
    FROM (
        SELECT ts, json_extract_string(feature_json, list_value('tool', 'server', 'duration_ms')) AS f
        FROM claude_stream
        WHERE activity = 'called_tool'
          AND ts >= $window_start AND ts < $window_end
    )
)
SELECT
    date_trunc(/* SLOT: bucket */'day'/* END */, ts) AS bucket,
    count(*) AS calls,
    quantile_cont(duration_ms, 0.5) AS p50_ms,
    quantile_cont(duration_ms, 0.95) AS p95_ms,
    quantile_cont(duration_ms, 0.99) AS p99_ms
FROM calls
WHERE ($tool = '' OR tool = $tool)
  AND ($server = '' OR server = $server)
GROUP BY bucket
ORDER BY bucket

-- dialect: snowflake
SELECT
    DATE_TRUNC(/* SLOT: bucket */'day'/* END */, ts) AS "bucket",
    COUNT(*) AS "calls",
    PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY TRY_TO_DOUBLE(feature_json:duration_ms::string)) AS "p50_ms",
    PERCENTILE_CONT(0.95) WITHIN GROUP (ORDER BY TRY_TO_DOUBLE(feature_json:duration_ms::string)) AS "p95_ms",
    PERCENTILE_CONT(0.99) WITHIN GROUP (ORDER BY TRY_TO_DOUBLE(feature_json:duration_ms::string)) AS "p99_ms"
FROM claude_stream
WHERE activity = 'called_tool'
  AND ts >= $window_start AND ts < $window_end
  AND ($tool = '' OR feature_json:tool::string = $tool)
  AND ($server = '' OR feature_json:server::string = $server)
GROUP BY 1
ORDER BY 1
