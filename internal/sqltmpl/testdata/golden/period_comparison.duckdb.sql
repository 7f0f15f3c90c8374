-- period_comparison, duckdb, rendered at 2026-03-31T12:00:00Z
-- params: {"by":"all","days":7,"limit":50,"metric":"events"}
-- arg 1: time.Time 2026-03-24T12:00:00Z
-- arg 2: time.Time 2026-03-17T12:00:00Z
-- arg 3: time.Time 2026-03-31T12:00:00Z
-- arg 4: int64 50
-- slot metric=events: CAST(count(*) AS DOUBLE)
-- slot metric=sessions: CAST(count(DISTINCT session_id) AS DOUBLE)
-- slot metric=prompts: CAST(sum(CASE WHEN activity = 'submitted_prompt' THEN 1 ELSE 0 END) AS DOUBLE)
-- slot metric=responses: CAST(sum(CASE WHEN activity = 'completed_response' THEN 1 ELSE 0 END) AS DOUBLE)
-- slot metric=tool_calls: CAST(sum(CASE WHEN activity = 'called_tool' THEN 1 ELSE 0 END) AS DOUBLE)
-- slot metric=tool_errors: CAST(sum(CASE WHEN failed THEN 1 ELSE 0 END) AS DOUBLE)
-- slot metric=cost_usd: round(sum(CASE WHEN revenue_impact < 0 THEN -revenue_impact ELSE 0 END), 6)
-- slot metric=input_tokens: CAST(coalesce(sum(input_tokens), 0) AS DOUBLE)
-- slot metric=output_tokens: CAST(coalesce(sum(output_tokens), 0) AS DOUBLE)
-- slot by=all: 'all'
-- slot by=activity: activity
-- slot by=tool: coalesce(tool, '(none)')
-- slot by=server: coalesce(server, '(none)')
-- slot by=model: coalesce(model, '(none)')
-- slot by=project: coalesce(project, CASE WHEN session_id IS NOT NULL THEN max(project) OVER (PARTITION BY session_id) END, '(none)')
WITH w AS (
    -- The features this reads, parsed once per event: one
    -- json_extract_string of a list costs a third of a ->> per key.
    SELECT
        activity,
        revenue_impact,
        f[1] AS session_id,
        f[2] AS tool,
        f[3] AS server,
        f[4] AS model,
        f[5] AS project,
        TRY_CAST(f[6] AS BIGINT) AS input_tokens,
        TRY_CAST(f[7] AS BIGINT) AS output_tokens,
        activity = 'called_tool' AND (lower(coalesce(f[8], '')) = 'false' OR coalesce(f[9], '') <> '') AS failed,
        is_current
    FROM (
        SELECT activity, revenue_impact, ts >= ? AS is_current,
            json_extract_string(feature_json, list_value('session_id', 'tool', 'server', 'model', 'project',
                'input_tokens', 'output_tokens', 'success', 'error')) AS f
        FROM claude_stream
        WHERE ts >= ? AND ts < ?
    )
),
d AS (
    -- The group of each event; by project, an event without one takes
    -- its session's (a window, so computed only then).
    SELECT *, 'all' AS dimension
    FROM w
),
per_period AS (
    SELECT
        dimension,
        is_current,
        CAST(count(*) AS DOUBLE) AS v
    FROM d
    GROUP BY dimension, is_current
),
pivoted AS (
    SELECT
        dimension,
        coalesce(max(CASE WHEN is_current THEN v END), 0) AS current_value,
        coalesce(max(CASE WHEN NOT is_current THEN v END), 0) AS previous_value
    FROM per_period
    GROUP BY dimension
)
SELECT
    dimension,
    current_value,
    previous_value,
    current_value - previous_value AS change,
    CASE WHEN previous_value = 0 THEN NULL
         ELSE (current_value - previous_value) / previous_value END AS change_pct
FROM pivoted
ORDER BY current_value DESC, dimension
LIMIT ?
