/*
name: slow_tool_calls
description: >-
  Individual tool calls that took longer than a threshold (default 10s),
  slowest first: when, which tool and MCP server, how long, whether it
  failed, and the session. Use it for "which calls were slow", "what took
  more than a minute", or to find the outliers behind a high p99 in
  tool_stats.
reads: >-
  called_tool events: features tool, server, duration_ms, success, error,
  session_id. Calls without duration_ms are not read.
timeout: 30s
window: {days: 7}
params:
  - name: slower_than
    type: duration
    default: 10s
    min: 0
    max: 86400
    description: 'Only calls that took longer than this, e.g. "500ms", "10s", "2m".'
  - name: tool
    type: string
    optional: true
    description: Only this tool (exact name). Default all tools.
  - name: limit
    type: int
    default: 50
    min: 1
    max: 500
    description: At most this many calls, slowest first.
columns:
  - {name: ts, type: TIMESTAMP, description: When the call was logged (UTC).}
  - {name: tool, type: VARCHAR, description: "Tool name; (unknown) when the event named none."}
  - {name: server, type: VARCHAR, description: MCP server of the tool; empty for built-in tools.}
  - {name: duration_ms, type: DOUBLE, description: Call duration in milliseconds.}
  - {name: failed, type: BOOLEAN, description: "True when the call failed (success false or an error)."}
  - {name: session_id, type: VARCHAR, description: The session the call belongs to; empty when unknown.}
card: {kind: table}
*/

-- dialect: duckdb
WITH calls AS (
    -- The features this reads, parsed once per event: one
    -- json_extract_string of a list costs a third of a ->> per key.
    SELECT
        ts,
        activity_id,
        coalesce(f[1], '(unknown)') AS tool,
        coalesce(f[2], '') AS server,
        TRY_CAST(f[3] AS DOUBLE) AS duration_ms,
        (lower(coalesce(f[4], '')) = 'false' OR coalesce(f[5], '') <> '') AS failed,
        coalesce(f[6], '') AS session_id
    FROM (
        SELECT ts, activity_id,
            json_extract_string(feature_json, list_value('tool', 'server', 'duration_ms', 'success', 'error', 'session_id')) AS f
        FROM claude_stream
        WHERE activity = 'called_tool'
          AND ts >= $window_start AND ts < $window_end
    )
)
SELECT ts, tool, server, duration_ms, failed, session_id
FROM calls
WHERE duration_ms > $slower_than * 1000
  AND ($tool = '' OR tool = $tool)
ORDER BY duration_ms DESC, ts DESC, activity_id DESC
LIMIT $limit

-- dialect: snowflake
WITH calls AS (
    SELECT
        ts,
        activity_id,
        COALESCE(feature_json:tool::string, '(unknown)') AS tool,
        COALESCE(feature_json:server::string, '') AS server,
        TRY_TO_DOUBLE(feature_json:duration_ms::string) AS duration_ms,
        (LOWER(COALESCE(feature_json:success::string, '')) = 'false'
            OR COALESCE(feature_json:error::string, '') <> '') AS failed,
        COALESCE(feature_json:session_id::string, '') AS session_id
    FROM claude_stream
    WHERE activity = 'called_tool'
      AND ts >= $window_start AND ts < $window_end
)
SELECT ts AS "ts", tool AS "tool", server AS "server", duration_ms AS "duration_ms",
    failed AS "failed", session_id AS "session_id"
FROM calls
WHERE duration_ms > $slower_than * 1000
  AND ($tool = '' OR tool = $tool)
ORDER BY duration_ms DESC, ts DESC, activity_id DESC
LIMIT $limit
