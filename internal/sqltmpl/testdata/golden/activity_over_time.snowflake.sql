-- activity_over_time, snowflake, rendered at 2026-03-31T12:00:00Z
-- params: {"bucket":"day","days":30,"limit":5000}
-- arg 1: time.Time 2026-03-01T12:00:00Z
-- arg 2: time.Time 2026-03-31T12:00:00Z
-- arg 3: string ""
-- arg 4: string ""
-- arg 5: int64 5000
-- slot bucket=hour: 'hour'
-- slot bucket=day: 'day'
-- slot bucket=week: 'week'
-- slot bucket=month: 'month'
SELECT
    DATE_TRUNC('day', ts) AS "bucket",
    activity AS "activity",
    COUNT(*) AS "events"
FROM claude_stream
WHERE ts >= ? AND ts < ?
  AND (? = '' OR activity = ?)
GROUP BY 1, 2
ORDER BY 1, 3 DESC, 2
LIMIT ?
