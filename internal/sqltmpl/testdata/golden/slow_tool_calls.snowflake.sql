-- slow_tool_calls, snowflake, rendered at 2026-03-31T12:00:00Z
-- params: {"days":7,"limit":50,"slower_than":"10s"}
-- arg 1: time.Time 2026-03-24T12:00:00Z
-- arg 2: time.Time 2026-03-31T12:00:00Z
-- arg 3: float64 10
-- arg 4: string ""
-- arg 5: string ""
-- arg 6: int64 50
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
      AND ts >= ? AND ts < ?
)
SELECT ts AS "ts", tool AS "tool", server AS "server", duration_ms AS "duration_ms",
    failed AS "failed", session_id AS "session_id"
FROM calls
WHERE duration_ms > ? * 1000
  AND (? = '' OR tool = ?)
ORDER BY duration_ms DESC, ts DESC, activity_id DESC
LIMIT ?
