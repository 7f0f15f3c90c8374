-- period_comparison, snowflake, rendered at 2026-03-31T12:00:00Z
-- params: {"by":"all","days":7,"limit":50,"metric":"events"}
-- arg 1: time.Time 2026-03-24T12:00:00Z
-- arg 2: time.Time 2026-03-17T12:00:00Z
-- arg 3: time.Time 2026-03-31T12:00:00Z
-- arg 4: int64 50
-- slot metric=events: CAST(COUNT(*) AS DOUBLE)
-- slot metric=sessions: CAST(COUNT(DISTINCT session_id) AS DOUBLE)
-- slot metric=prompts: CAST(SUM(IFF(activity = 'submitted_prompt', 1, 0)) AS DOUBLE)
-- slot metric=responses: CAST(SUM(IFF(activity = 'completed_response', 1, 0)) AS DOUBLE)
-- slot metric=tool_calls: CAST(SUM(IFF(activity = 'called_tool', 1, 0)) AS DOUBLE)
-- slot metric=tool_errors: CAST(SUM(IFF(failed, 1, 0)) AS DOUBLE)
-- slot metric=cost_usd: ROUND(SUM(IFF(revenue_impact < 0, -revenue_impact, 0)), 6)
-- slot metric=input_tokens: CAST(COALESCE(SUM(input_tokens), 0) AS DOUBLE)
-- slot metric=output_tokens: CAST(COALESCE(SUM(output_tokens), 0) AS DOUBLE)
-- slot by=all: 'all'
-- slot by=activity: activity
-- slot by=tool: COALESCE(tool, '(none)')
-- slot by=server: COALESCE(server, '(none)')
-- slot by=model: COALESCE(model, '(none)')
-- slot by=project: COALESCE(project, IFF(session_id IS NOT NULL, MAX(project) OVER (PARTITION BY session_id), NULL), '(none)')
WITH w AS (
    SELECT
        activity,
        revenue_impact,
        feature_json:session_id::string AS session_id,
        feature_json:tool::string AS tool,
        feature_json:server::string AS server,
        feature_json:model::string AS model,
        feature_json:project::string AS project,
        TRY_TO_NUMBER(feature_json:input_tokens::string) AS input_tokens,
        TRY_TO_NUMBER(feature_json:output_tokens::string) AS output_tokens,
        activity = 'called_tool'
            AND (LOWER(COALESCE(feature_json:success::string, '')) = 'false'
                 OR COALESCE(feature_json:error::string, '') <> '') AS failed,
        ts >= ? AS is_current
    FROM claude_stream
    WHERE ts >= ? AND ts < ?
),
d AS (
    SELECT w.*, 'all' AS dimension
    FROM w
),
per_period AS (
    SELECT
        dimension,
        is_current,
        CAST(COUNT(*) AS DOUBLE) AS v
    FROM d
    GROUP BY 1, 2
),
pivoted AS (
    SELECT
        dimension,
        COALESCE(MAX(IFF(is_current, v, NULL)), 0) AS current_value,
        COALESCE(MAX(IFF(NOT is_current, v, NULL)), 0) AS previous_value
    FROM per_period
    GROUP BY dimension
)
SELECT
    dimension AS "dimension",
    current_value AS "current_value",
    previous_value AS "previous_value",
    current_value - previous_value AS "change",
    IFF(previous_value = 0, NULL, (current_value - previous_value) / previous_value) AS "change_pct"
FROM pivoted
ORDER BY current_value DESC, dimension
LIMIT ?
