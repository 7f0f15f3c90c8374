-- activity_heatmap, snowflake, rendered at 2026-03-31T12:00:00Z
-- params: {"days":28}
-- arg 1: time.Time 2026-03-03T12:00:00Z
-- arg 2: time.Time 2026-03-31T12:00:00Z
-- arg 3: string ""
-- arg 4: string ""
SELECT
    DAYOFWEEKISO(ts) AS "weekday",
    HOUR(ts) AS "hour",
    COUNT(*) AS "events"
FROM claude_stream
WHERE ts >= ? AND ts < ?
  AND (? = '' OR activity = ?)
GROUP BY 1, 2
ORDER BY 1, 2
