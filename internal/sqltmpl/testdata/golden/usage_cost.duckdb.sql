-- usage_cost, duckdb, rendered at 2026-03-31T12:00:00Z
-- params: {"by":"model","days":30,"limit":50}
-- arg 1: time.Time 2026-03-01T12:00:00Z
-- arg 2: time.Time 2026-03-31T12:00:00Z
-- arg 3: int64 50
-- slot by=model: coalesce(model, '(none)')
-- slot by=project: coalesce(project, '(none)')
-- slot by=tool: coalesce(tool, '(none)')
-- slot by=activity: activity
-- slot by=session: coalesce(session_id, '(none)')
-- slot by=day: strftime(date_trunc('day', ts), '%Y-%m-%d')
WITH ev AS (
    SELECT
        ts,
        activity,
        revenue_impact,
        feature_json->>'model' AS model,
        feature_json->>'tool' AS tool,
        feature_json->>'session_id' AS session_id,
        feature_json->>'project' AS own_project,
        TRY_CAST(feature_json->>'input_tokens' AS BIGINT) AS input_tokens,
        TRY_CAST(feature_json->>'output_tokens' AS BIGINT) AS output_tokens,
        TRY_CAST(feature_json->>'cache_read_input_tokens' AS BIGINT) AS cache_read_tokens,
        TRY_CAST(feature_json->>'cache_creation_input_tokens' AS BIGINT) AS cache_creation_tokens
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
    coalesce(model, '(none)') AS dimension,
    count(*) AS events,
    CAST(coalesce(sum(input_tokens), 0) AS BIGINT) AS input_tokens,
    CAST(coalesce(sum(output_tokens), 0) AS BIGINT) AS output_tokens,
    CAST(coalesce(sum(cache_read_tokens), 0) AS BIGINT) AS cache_read_tokens,
    CAST(coalesce(sum(cache_creation_tokens), 0) AS BIGINT) AS cache_creation_tokens,
    round(sum(CASE WHEN revenue_impact < 0 THEN -revenue_impact ELSE 0 END), 6) AS cost_usd
FROM attributed
WHERE revenue_impact IS NOT NULL OR input_tokens IS NOT NULL OR output_tokens IS NOT NULL
   OR cache_read_tokens IS NOT NULL OR cache_creation_tokens IS NOT NULL
GROUP BY dimension
ORDER BY cost_usd DESC, events DESC, dimension
LIMIT ?
