/*
name: tool_stats
description: >-
  Tool calls per tool, with the MCP server the tool belongs to: how many
  calls, how many failed, the error rate, and call duration percentiles
  p50/p95/p99 and the maximum in milliseconds. Use it for "which tools are
  slow", "which tools fail most", "how often do I use X". For MCP servers as
  a whole use mcp_server_stats; for one tool's latency over time use
  tool_latency_over_time; for the failures themselves use tool_errors.
reads: >-
  called_tool events: features tool, server, duration_ms, success, error. A
  call failed when success is false or error is non-empty. Calls without
  duration_ms count in calls and errors but not in the percentiles.
timeout: 30s
window: {days: 7}
params:
  - name: tool
    type: string
    optional: true
    description: Only this tool (exact name, e.g. Bash). Default all tools.
  - name: server
    type: string
    optional: true
    description: Only tools of this MCP server (exact name). Default all servers.
  - name: min_calls
    type: int
    default: 1
    min: 1
    max: 1000000
    description: Leave out tools with fewer calls than this in the window.
  - name: limit
    type: int
    default: 50
    min: 1
    max: 1000
    description: At most this many rows, most-called tools first.
columns:
  - {name: tool, type: VARCHAR, description: "Tool name; (unknown) when the event named none."}
  - {name: server, type: VARCHAR, description: "MCP server of the tool; empty when the event named none (built-in tools)."}
  - {name: calls, type: BIGINT, description: Calls in the window.}
  - {name: errors, type: BIGINT, description: Failed calls.}
  - {name: error_rate, type: DOUBLE, description: "errors / calls, from 0 to 1."}
  - {name: p50_ms, type: DOUBLE, description: "Median call duration in milliseconds (NULL without durations)."}
  - {name: p95_ms, type: DOUBLE, description: 95th percentile of call duration in milliseconds.}
  - {name: p99_ms, type: DOUBLE, description: 99th percentile of call duration in milliseconds.}
  - {name: max_ms, type: DOUBLE, description: Longest call in milliseconds.}
card: {kind: bar, x: tool, y: [p50_ms, p95_ms, p99_ms]}
*/

-- dialect: duckdb
WITH calls AS (
    -- The features this reads, parsed once per event: one
    -- json_extract_string of a list costs a third of a ->> per key.
    SELECT
        coalesce(f[1], '(unknown)') AS tool,
        coalesce(f[2], '') AS server,
        TRY_CAST(f[3] AS DOUBLE) AS duration_ms,
        CASE WHEN lower(coalesce(f[4], '')) = 'false' OR coalesce(f[5], '') <> '' THEN 1 ELSE 0 END AS failed
    FROM (
        SELECT json_extract_string(feature_json, list_value('tool', 'server', 'duration_ms', 'success', 'error')) AS f
        FROM claude_stream
        WHERE activity = 'called_tool'
          AND ts >= $window_start AND ts < $window_end
    )
)
SELECT
    tool,
    server,
    count(*) AS calls,
    CAST(sum(failed) AS BIGINT) AS errors,
    CAST(sum(failed) AS DOUBLE) / count(*) AS error_rate,
    quantile_cont(duration_ms, 0.5) AS p50_ms,
    quantile_cont(duration_ms, 0.95) AS p95_ms,
    quantile_cont(duration_ms, 0.99) AS p99_ms,
    max(duration_ms) AS max_ms
FROM calls
WHERE ($tool = '' OR tool = $tool)
  AND ($server = '' OR server = $server)
GROUP BY tool, server
HAVING count(*) >= $min_calls
ORDER BY calls DESC, tool, server
LIMIT $limit

-- dialect: snowflake
WITH calls AS (
    SELECT
        COALESCE(feature_json:tool::string, '(unknown)') AS tool,
        COALESCE(feature_json:server::string, '') AS server,
        TRY_TO_DOUBLE(feature_json:duration_ms::string) AS duration_ms,
        IFF(LOWER(COALESCE(feature_json:success::string, '')) = 'false'
            OR COALESCE(feature_json:error::string, '') <> '', 1, 0) AS failed
    FROM claude_stream
    WHERE activity = 'called_tool'
      AND ts >= $window_start AND ts < $window_end
)
SELECT
    tool AS "tool",
    server AS "server",
    COUNT(*) AS "calls",
    SUM(failed) AS "errors",
    SUM(failed) / COUNT(*) AS "error_rate",
    PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY duration_ms) AS "p50_ms",
    PERCENTILE_CONT(0.95) WITHIN GROUP (ORDER BY duration_ms) AS "p95_ms",
    PERCENTILE_CONT(0.99) WITHIN GROUP (ORDER BY duration_ms) AS "p99_ms",
    MAX(duration_ms) AS "max_ms"
FROM calls
WHERE ($tool = '' OR tool = $tool)
  AND ($server = '' OR server = $server)
GROUP BY tool, server
HAVING COUNT(*) >= $min_calls
ORDER BY "calls" DESC, "tool", "server"
LIMIT $limit
