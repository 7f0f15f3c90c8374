-- tool_errors, duckdb, rendered at 2026-03-31T12:00:00Z
-- params: {"days":7,"limit":50}
-- arg 1: time.Time 2026-03-24T12:00:00Z
-- arg 2: time.Time 2026-03-31T12:00:00Z
-- arg 3: string ""
-- arg 4: string ""
-- arg 5: string ""
-- arg 6: string ""
-- arg 7: int64 50
SELECT
    ts,
    coalesce(feature_json->>'tool', '(unknown)') AS tool,
    coalesce(feature_json->>'server', '') AS server,
    left(coalesce(feature_json->>'error', ''), 500) AS error,
    coalesce(feature_json->>'session_id', '') AS session_id,
    TRY_CAST(feature_json->>'duration_ms' AS DOUBLE) AS duration_ms
FROM claude_stream
WHERE activity = 'called_tool'
  AND ts >= ? AND ts < ?
  AND (lower(coalesce(feature_json->>'success', '')) = 'false'
       OR coalesce(feature_json->>'error', '') <> '')
  AND (? = '' OR (feature_json->>'tool') = ?)
  AND (? = '' OR (feature_json->>'server') = ?)
ORDER BY ts DESC, activity_id DESC
LIMIT ?
