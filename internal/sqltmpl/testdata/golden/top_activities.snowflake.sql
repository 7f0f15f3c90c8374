-- top_activities, snowflake, rendered at 2026-03-31T12:00:00Z
-- params: {"days":30,"limit":20}
-- arg 1: time.Time 2026-03-01T12:00:00Z
-- arg 2: time.Time 2026-03-31T12:00:00Z
-- arg 3: int64 20
SELECT
    activity AS "activity",
    COUNT(*) AS "events",
    COUNT(*) / SUM(COUNT(*)) OVER () AS "share",
    MIN(ts) AS "first_ts",
    MAX(ts) AS "last_ts",
    ROUND(SUM(IFF(revenue_impact < 0, -revenue_impact, 0)), 6) AS "cost_usd"
FROM claude_stream
WHERE ts >= ? AND ts < ?
GROUP BY 1
ORDER BY 2 DESC, 1
LIMIT ?
