-- cost_over_time, duckdb, rendered at 2026-03-31T12:00:00Z
-- params: {"bucket":"day","by":"model","days":30,"limit":5000}
-- arg 1: time.Time 2026-03-01T12:00:00Z
-- arg 2: time.Time 2026-03-31T12:00:00Z
-- arg 3: int64 5000
-- slot bucket=hour: 'hour'
-- slot bucket=day: 'day'
-- slot bucket=week: 'week'
-- slot bucket=month: 'month'
-- slot by=model: coalesce(model, '(none)')
-- slot by=project: coalesce(project, '(none)')
-- slot by=activity: activity
-- slot by=all: 'all'
WITH ev AS (
    SELECT
        ts,
        activity,
        revenue_impact,
        feature_json->>'model' AS model,
        feature_json->>'session_id' AS session_id,
        feature_json->>'project' AS own_project,
        TRY_CAST(feature_json->>'input_tokens' AS BIGINT) AS input_tokens,
        TRY_CAST(feature_json->>'output_tokens' AS BIGINT) AS output_tokens
    FROM claude_stream
    WHERE ts >= ? AND ts < ?
),
attributed AS (
    -- The session's first project for events that name none.
    SELECT *,
        coalesce(own_project, CASE WHEN session_id IS NOT NULL THEN
            arg_min(own_project, CASE WHEN own_project IS NOT NULL THEN ts END) OVER (PARTITION BY session_id) END) AS project
    FROM ev
)
SELECT
    date_trunc('day', ts) AS bucket,
    coalesce(model, '(none)') AS series,
    round(sum(CASE WHEN revenue_impact < 0 THEN -revenue_impact ELSE 0 END), 6) AS cost_usd,
    CAST(coalesce(sum(input_tokens), 0) AS BIGINT) AS input_tokens,
    CAST(coalesce(sum(output_tokens), 0) AS BIGINT) AS output_tokens
FROM attributed
WHERE revenue_impact IS NOT NULL OR input_tokens IS NOT NULL OR output_tokens IS NOT NULL
GROUP BY bucket, series
ORDER BY bucket, cost_usd DESC, series
LIMIT ?
