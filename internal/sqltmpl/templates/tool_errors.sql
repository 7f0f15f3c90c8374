/*
name: tool_errors
description: >-
  The most recent failed tool calls, newest first: when, which tool and MCP
  server, the error text (first 500 characters), the session and how long
  the call took. Use it for "why did X fail", "what errors did I get
  today", "show the last failures of tool Y". Counts and rates per tool are
  in tool_stats.
reads: >-
  called_tool events: features tool, server, success, error, duration_ms,
  session_id. A call failed when success is false or error is non-empty.
timeout: 30s
window: {days: 7}
params:
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
    default: 50
    min: 1
    max: 500
    description: At most this many failures, newest first.
columns:
  - {name: ts, type: TIMESTAMP, description: When the call was logged (UTC).}
  - {name: tool, type: VARCHAR, description: "Tool name; (unknown) when the event named none."}
  - {name: server, type: VARCHAR, description: MCP server of the tool; empty for built-in tools.}
  - {name: error, type: VARCHAR, description: "The error text, at most 500 characters; empty when only success=false was logged."}
  - {name: session_id, type: VARCHAR, description: The session the call belongs to; empty when unknown.}
  - {name: duration_ms, type: DOUBLE, description: Call duration in milliseconds; NULL when not logged.}
card: {kind: table}
*/

-- dialect: duckdb
SELECT
    ts,
    coalesce(feature_json->>'tool', '(unknown)') AS tool,
    coalesce(feature_json->>'server', '') AS server,
    left(coalesce(feature_json->>'error', ''), 500) AS error,
    coalesce(feature_json->>'session_id', '') AS session_id,
    TRY_CAST(feature_json->>'duration_ms' AS DOUBLE) AS duration_ms
FROM claude_stream
WHERE activity = 'called_tool'
  AND ts >= $window_start AND ts < $window_end
  AND (lower(coalesce(feature_json->>'success', '')) = 'false'
       OR coalesce(feature_json->>'error', '') <> '')
  AND ($tool = '' OR (feature_json->>'tool') = $tool)
  AND ($server = '' OR (feature_json->>'server') = $server)
ORDER BY ts DESC, activity_id DESC
LIMIT $limit

-- dialect: snowflake
SELECT
    ts AS "ts",
    COALESCE(feature_json:tool::string, '(unknown)') AS "tool",
    COALESCE(feature_json:server::string, '') AS "server",
    LEFT(COALESCE(feature_json:error::string, ''), 500) AS "error",
    COALESCE(feature_json:session_id::string, '') AS "session_id",
    TRY_TO_DOUBLE(feature_json:duration_ms::string) AS "duration_ms"
FROM claude_stream
WHERE activity = 'called_tool'
  AND ts >= $window_start AND ts < $window_end
  AND (LOWER(COALESCE(feature_json:success::string, '')) = 'false'
       OR COALESCE(feature_json:error::string, '') <> '')
  AND ($tool = '' OR feature_json:tool::string = $tool)
  AND ($server = '' OR feature_json:server::string = $server)
ORDER BY ts DESC, activity_id DESC
LIMIT $limit
