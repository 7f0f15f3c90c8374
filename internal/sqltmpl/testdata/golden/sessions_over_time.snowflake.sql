-- sessions_over_time, snowflake, rendered at 2026-03-31T12:00:00Z
-- params: {"bucket":"day","days":30}
-- arg 1: time.Time 2026-03-01T12:00:00Z
-- arg 2: time.Time 2026-03-31T12:00:00Z
-- arg 3: string ""
-- arg 4: string ""
-- slot bucket=hour: 'hour'
-- slot bucket=day: 'day'
-- slot bucket=week: 'week'
-- slot bucket=month: 'month'
SELECT
    DATE_TRUNC('day', ts) AS "bucket",
    COUNT(DISTINCT feature_json:session_id::string) AS "sessions",
    SUM(IFF(activity = 'started_session', 1, 0)) AS "started_sessions",
    SUM(IFF(activity = 'submitted_prompt', 1, 0)) AS "prompts",
    SUM(IFF(activity = 'completed_response', 1, 0)) AS "responses"
FROM claude_stream
WHERE ts >= ? AND ts < ?
  AND (? = '' OR feature_json:project::string = ?)
GROUP BY 1
ORDER BY 1
