-- sessions_over_time, duckdb, rendered at 2026-03-31T12:00:00Z
-- params: {"bucket":"day","days":30}
-- arg 1: time.Time 2026-03-01T12:00:00Z
-- arg 2: time.Time 2026-03-31T12:00:00Z
-- arg 3: string ""
-- arg 4: string ""
-- slot bucket=hour: 'hour'
-- slot bucket=day: 'day'
-- slot bucket=week: 'week'
-- slot bucket=month: 'month'
WITH ev AS (
    -- session_id and project, parsed once per event.
    SELECT ts, activity, f[1] AS session_id, f[2] AS project
    FROM (
        SELECT ts, activity, json_extract_string(feature_json, list_value('session_id', 'project')) AS f
        FROM claude_stream
        WHERE ts >= ? AND ts < ?
    )
)
SELECT
    date_trunc('day', ts) AS bucket,
    count(DISTINCT session_id) AS sessions,
    CAST(sum(CASE WHEN activity = 'started_session' THEN 1 ELSE 0 END) AS BIGINT) AS started_sessions,
    CAST(sum(CASE WHEN activity = 'submitted_prompt' THEN 1 ELSE 0 END) AS BIGINT) AS prompts,
    CAST(sum(CASE WHEN activity = 'completed_response' THEN 1 ELSE 0 END) AS BIGINT) AS responses
FROM ev
WHERE (? = '' OR project = ?)
GROUP BY bucket
ORDER BY bucket
