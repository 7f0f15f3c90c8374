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
WITH calls AS (
    -- The features this reads, parsed once per event: one
    -- json_extract_string of a list costs a third of a ->> per key.
    SELECT ts, activity_id, f[1] AS tool, f[2] AS server, f[3] AS success, f[4] AS error,
        f[5] AS session_id, TRY_CAST(f[6] AS DOUBLE) AS duration_ms
    FROM (
        SELECT ts, activity_id,
            json_extract_string(feature_json, list_value('tool', 'server', 'success', 'error', 'session_id', 'duration_ms')) AS f
        FROM claude_stream
        WHERE activity = 'called_tool'
          AND ts >= $window_start AND ts < $window_end
    )
)
SELECT
    ts,
    coalesce(tool, '(unknown)') AS tool,
    coalesce(server, '') AS server,
    left(coalesce(error, ''), 500) AS error,
    coalesce(session_id, '') AS session_id,
    duration_ms
FROM calls
WHERE (lower(coalesce(success, '')) = 'false' OR coalesce(error, '') <> '')
  AND ($tool = '' OR tool = $tool)
  AND ($server = '' OR server = $server)
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
