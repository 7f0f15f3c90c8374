-- tool_errors, duckdb, rendered at 2026-03-31T12:00:00Z
-- params: {"days":7,"limit":50}
-- arg 1: time.Time 2026-03-24T12:00:00Z
-- arg 2: time.Time 2026-03-31T12:00:00Z
-- arg 3: string ""
-- arg 4: string ""
-- arg 5: string ""
-- arg 6: string ""
-- arg 7: int64 50
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
          AND ts >= ? AND ts < ?
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
  AND (? = '' OR tool = ?)
  AND (? = '' OR server = ?)
ORDER BY ts DESC, activity_id DESC
LIMIT ?
