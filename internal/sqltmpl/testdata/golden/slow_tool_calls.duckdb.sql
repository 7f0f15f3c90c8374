-- slow_tool_calls, duckdb, rendered at 2026-03-31T12:00:00Z
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
        coalesce(feature_json->>'tool', '(unknown)') AS tool,
        coalesce(feature_json->>'server', '') AS server,
        TRY_CAST(feature_json->>'duration_ms' AS DOUBLE) AS duration_ms,
        (lower(coalesce(feature_json->>'success', '')) = 'false'
            OR coalesce(feature_json->>'error', '') <> '') AS failed,
        coalesce(feature_json->>'session_id', '') AS session_id
    FROM claude_stream
    WHERE activity = 'called_tool'
      AND ts >= ? AND ts < ?
)
SELECT ts, tool, server, duration_ms, failed, session_id
FROM calls
WHERE duration_ms > ? * 1000
  AND (? = '' OR tool = ?)
ORDER BY duration_ms DESC, ts DESC, activity_id DESC
LIMIT ?
