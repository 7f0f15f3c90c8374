/*
name: tool_calls_over_time
description: >-
  Tool calls and failed calls per time bucket (hour, day, week or month),
  split by tool, by MCP server, or all together. Use it for "how many tool
  calls per day", "which tools did I use most this week, day by day",
  "errors per hour today". For latency over time use
  tool_latency_over_time.
reads: >-
  called_tool events: features tool, server, success, error. A call failed
  when success is false or error is non-empty. Buckets without calls are
  absent.
timeout: 30s
window: {days: 7}
bucket: {default: day}
params:
  - name: by
    type: enum
    default: tool
    values: [tool, server, all]
    description: "Split into series by tool, by MCP server, or all: one series."
    fragments:
      duckdb:
        tool: "coalesce(tool, '(unknown)')"
        server: "coalesce(nullif(server, ''), '(built-in)')"
        all: "'all'"
      snowflake:
        tool: "COALESCE(feature_json:tool::string, '(unknown)')"
        server: "COALESCE(NULLIF(feature_json:server::string, ''), '(built-in)')"
        all: "'all'"
  - name: tool
    type: string
    optional: true
    description: Only this tool (exact name). Default all tools.
  - name: server
    type: string
    optional: true
    description: Only tools of this MCP server (exact name). Default all servers.
  - name: limit
    type: int
    default: 5000
    min: 1
    max: 10000
    description: At most this many rows (bucket and series), earliest buckets first.
columns:
  - {name: bucket, type: TIMESTAMP, description: "Start of the time bucket (UTC)."}
  - {name: series, type: VARCHAR, description: "The tool, the server ((built-in) for none) or all, by the by parameter."}
  - {name: calls, type: BIGINT, description: Calls in the bucket.}
  - {name: errors, type: BIGINT, description: Failed calls in the bucket.}
card: {kind: stacked_bar, x: bucket, y: [calls], series: series}
*/

-- dialect: duckdb
WITH calls AS (
    -- The features this reads, parsed once per event: one
    -- json_extract_string of a list costs a third of a ->> per key.
    SELECT ts, f[1] AS tool, f[2] AS server,
        CASE WHEN lower(coalesce(f[3], '')) = 'false' OR coalesce(f[4], '') <> '' THEN 1 ELSE 0 END AS failed
    FROM (
        SELECT ts, json_extract_string(feature_json, list_value('tool', 'server', 'success', 'error')) AS f
        FROM claude_stream
        WHERE activity = 'called_tool'
          AND ts >= $window_start AND ts < $window_end
    )
)
SELECT
    date_trunc(/* SLOT: bucket */'day'/* END */, ts) AS bucket,
    /* SLOT: by */coalesce(tool, '(unknown)')/* END */ AS series,
    count(*) AS calls,
    CAST(sum(failed) AS BIGINT) AS errors
FROM calls
WHERE ($tool = '' OR tool = $tool)
  AND ($server = '' OR server = $server)
GROUP BY bucket, series
ORDER BY bucket, calls DESC, series
LIMIT $limit

-- dialect: snowflake
SELECT
    DATE_TRUNC(/* SLOT: bucket */'day'/* END */, ts) AS "bucket",
    /* SLOT: by */COALESCE(feature_json:tool::string, '(unknown)')/* END */ AS "series",
    COUNT(*) AS "calls",
    SUM(IFF(LOWER(COALESCE(feature_json:success::string, '')) = 'false'
            OR COALESCE(feature_json:error::string, '') <> '', 1, 0)) AS "errors"
FROM claude_stream
WHERE activity = 'called_tool'
  AND ts >= $window_start AND ts < $window_end
  AND ($tool = '' OR feature_json:tool::string = $tool)
  AND ($server = '' OR feature_json:server::string = $server)
GROUP BY 1, 2
ORDER BY 1, 3 DESC, 2
LIMIT $limit
