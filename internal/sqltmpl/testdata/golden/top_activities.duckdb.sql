-- top_activities, duckdb, rendered at 2026-03-31T12:00:00Z
-- params: {"days":30,"limit":20}
-- arg 1: time.Time 2026-03-01T12:00:00Z
-- arg 2: time.Time 2026-03-31T12:00:00Z
-- arg 3: int64 20
SELECT
    activity,
    count(*) AS events,
    count(*) / sum(count(*)) OVER () AS share,
    min(ts) AS first_ts,
    max(ts) AS last_ts,
    round(sum(CASE WHEN revenue_impact < 0 THEN -revenue_impact ELSE 0 END), 6) AS cost_usd
FROM claude_stream
WHERE ts >= ? AND ts < ?
GROUP BY activity
ORDER BY events DESC, activity
LIMIT ?
