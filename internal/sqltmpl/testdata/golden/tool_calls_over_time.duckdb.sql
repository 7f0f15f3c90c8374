-- tool_calls_over_time, duckdb, rendered at 2026-03-31T12:00:00Z
-- params: {"bucket":"day","by":"tool","days":7,"limit":5000}
-- arg 1: time.Time 2026-03-24T12:00:00Z
-- arg 2: time.Time 2026-03-31T12:00:00Z
-- arg 3: string ""
-- arg 4: string ""
-- arg 5: string ""
-- arg 6: string ""
-- arg 7: int64 5000
-- slot bucket=hour: 'hour'
-- slot bucket=day: 'day'
-- slot bucket=week: 'week'
-- slot bucket=month: 'month'
-- slot by=tool: coalesce(feature_json->>'tool', '(unknown)')
-- slot by=server: coalesce(nullif(feature_json->>'server', ''), '(built-in)')
-- slot by=all: 'all'
SELECT
    date_trunc('day', ts) AS bucket,
    coalesce(feature_json->>'tool', '(unknown)') AS series,
    count(*) AS calls,
    CAST(sum(CASE WHEN lower(coalesce(feature_json->>'success', '')) = 'false'
                   OR coalesce(feature_json->>'error', '') <> '' THEN 1 ELSE 0 END) AS BIGINT) AS errors
FROM claude_stream
WHERE activity = 'called_tool'
  AND ts >= ? AND ts < ?
  AND (? = '' OR (feature_json->>'tool') = ?)
  AND (? = '' OR (feature_json->>'server') = ?)
GROUP BY bucket, series
ORDER BY bucket, calls DESC, series
LIMIT ?
