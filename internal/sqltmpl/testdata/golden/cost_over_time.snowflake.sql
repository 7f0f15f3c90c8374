-- cost_over_time, snowflake, rendered at 2026-03-31T12:00:00Z
-- params: {"bucket":"day","by":"model","days":30,"limit":5000}
-- arg 1: time.Time 2026-03-01T12:00:00Z
-- arg 2: time.Time 2026-03-31T12:00:00Z
-- arg 3: int64 5000
-- slot bucket=hour: 'hour'
-- slot bucket=day: 'day'
-- slot bucket=week: 'week'
-- slot bucket=month: 'month'
-- slot by=model: COALESCE(model, '(none)')
-- slot by=project: COALESCE(project, '(none)')
-- slot by=activity: activity
-- slot by=all: 'all'
WITH ev AS (
    SELECT
        ts,
        activity,
        revenue_impact,
        feature_json:model::string AS model,
        feature_json:session_id::string AS session_id,
        feature_json:project::string AS own_project,
        TRY_TO_NUMBER(feature_json:input_tokens::string) AS input_tokens,
        TRY_TO_NUMBER(feature_json:output_tokens::string) AS output_tokens,
        TRY_TO_NUMBER(feature_json:cache_read_input_tokens::string) AS cache_read_tokens,
        TRY_TO_NUMBER(feature_json:cache_creation_input_tokens::string) AS cache_creation_tokens
    FROM claude_stream
    WHERE ts >= ? AND ts < ?
),
attributed AS (
    -- The session's first project for events that name none.
    SELECT ev.*,
        COALESCE(own_project, IFF(session_id IS NULL, NULL,
            FIRST_VALUE(own_project) IGNORE NULLS OVER (PARTITION BY session_id ORDER BY ts
                ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING))) AS project
    FROM ev
)
SELECT
    DATE_TRUNC('day', ts) AS "bucket",
    COALESCE(model, '(none)') AS "series",
    ROUND(SUM(IFF(revenue_impact < 0, -revenue_impact, 0)), 6) AS "cost_usd",
    COALESCE(SUM(input_tokens), 0) AS "input_tokens",
    COALESCE(SUM(output_tokens), 0) AS "output_tokens"
FROM attributed
WHERE revenue_impact IS NOT NULL OR input_tokens IS NOT NULL OR output_tokens IS NOT NULL
   OR cache_read_tokens IS NOT NULL OR cache_creation_tokens IS NOT NULL
GROUP BY 1, 2
ORDER BY 1, 3 DESC, 2
LIMIT ?
