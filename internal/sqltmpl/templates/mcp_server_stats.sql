/*
name: mcp_server_stats
description: >-
  Tool calls per MCP server: how many distinct tools were called, how many
  calls, how many failed, the error rate, and call duration percentiles
  p50/p95/p99 in milliseconds. Use it for "which MCP server is slow or
  unreliable" and "how much do I use server X". Built-in tools without a
  server are grouped under (built-in). Per tool: tool_stats.
reads: >-
  called_tool events: features server, tool, duration_ms, success, error. A
  call failed when success is false or error is non-empty.
timeout: 30s
window: {days: 7}
params:
  - name: server
    type: string
    optional: true
    description: Only this MCP server (exact name). Default all servers.
  - name: limit
    type: int
    default: 50
    min: 1
    max: 1000
    description: At most this many servers, most-called first.
columns:
  - {name: server, type: VARCHAR, description: "MCP server name; (built-in) for tools the event named no server for."}
  - {name: tools, type: BIGINT, description: Distinct tools of the server that were called.}
  - {name: calls, type: BIGINT, description: Calls in the window.}
  - {name: errors, type: BIGINT, description: Failed calls.}
  - {name: error_rate, type: DOUBLE, description: "errors / calls, from 0 to 1."}
  - {name: p50_ms, type: DOUBLE, description: Median call duration in milliseconds.}
  - {name: p95_ms, type: DOUBLE, description: 95th percentile of call duration in milliseconds.}
  - {name: p99_ms, type: DOUBLE, description: 99th percentile of call duration in milliseconds.}
card: {kind: bar, x: server, y: [calls, errors]}
*/

-- dialect: duckdb
WITH calls AS (
    -- The features this reads, parsed once per event: one
    -- json_extract_string of a list costs a third of a ->> per key.
    SELECT
        coalesce(nullif(f[1], ''), '(built-in)') AS server,
        f[2] AS tool,
        TRY_CAST(f[3] AS DOUBLE) AS duration_ms,
        CASE WHEN lower(coalesce(f[4], '')) = 'false' OR coalesce(f[5], '') <> '' THEN 1 ELSE 0 END AS failed
    FROM (
        SELECT json_extract_string(feature_json, list_value('server', 'tool', 'duration_ms', 'success', 'error')) AS f
        FROM claude_stream
        WHERE activity = 'called_tool'
          AND ts >= $window_start AND ts < $window_end
    )
)
SELECT
    server,
    count(DISTINCT tool) AS tools,
    count(*) AS calls,
    CAST(sum(failed) AS BIGINT) AS errors,
    CAST(sum(failed) AS DOUBLE) / count(*) AS error_rate,
    quantile_cont(duration_ms, 0.5) AS p50_ms,
    quantile_cont(duration_ms, 0.95) AS p95_ms,
    quantile_cont(duration_ms, 0.99) AS p99_ms
FROM calls
WHERE ($server = '' OR server = $server)
GROUP BY server
ORDER BY calls DESC, server
LIMIT $limit

-- dialect: snowflake
WITH calls AS (
    SELECT
        COALESCE(NULLIF(feature_json:server::string, ''), '(built-in)') AS server,
        feature_json:tool::string AS tool,
        TRY_TO_DOUBLE(feature_json:duration_ms::string) AS duration_ms,
        IFF(LOWER(COALESCE(feature_json:success::string, '')) = 'false'
            OR COALESCE(feature_json:error::string, '') <> '', 1, 0) AS failed
    FROM claude_stream
    WHERE activity = 'called_tool'
      AND ts >= $window_start AND ts < $window_end
)
SELECT
    server AS "server",
    COUNT(DISTINCT tool) AS "tools",
    COUNT(*) AS "calls",
    SUM(failed) AS "errors",
    SUM(failed) / COUNT(*) AS "error_rate",
    PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY duration_ms) AS "p50_ms",
    PERCENTILE_CONT(0.95) WITHIN GROUP (ORDER BY duration_ms) AS "p95_ms",
    PERCENTILE_CONT(0.99) WITHIN GROUP (ORDER BY duration_ms) AS "p99_ms"
FROM calls
WHERE ($server = '' OR server = $server)
GROUP BY server
ORDER BY "calls" DESC, "server"
LIMIT $limit
