-- slow_tool_calls, duckdb, rendered at 2026-03-31T12:00:00Z
-- params: {"days":7,"limit":50,"slower_than":"10s"}
-- arg 1: time.Time 2026-03-24T12:00:00Z
-- arg 2: time.Time 2026-03-31T12:00:00Z
-- arg 3: float64 10
-- arg 4: string ""
-- arg 5: string ""
-- arg 6: int64 50
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
          AND ts >= ? AND ts < ?
    )
)
SELECT ts, tool, server, duration_ms, failed, session_id
FROM calls
WHERE duration_ms > ? * 1000
  AND (? = '' OR tool = ?)
ORDER BY duration_ms DESC, ts DESC, activity_id DESC
LIMIT ?
