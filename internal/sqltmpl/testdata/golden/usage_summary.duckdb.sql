-- usage_summary, duckdb, rendered at 2026-03-31T12:00:00Z
-- params: {"days":7}
-- arg 1: time.Time 2026-03-24T12:00:00Z
-- arg 2: time.Time 2026-03-17T12:00:00Z
-- arg 3: time.Time 2026-03-31T12:00:00Z
WITH w AS (
    -- The features this reads, parsed once per event: one
    -- json_extract_string of a list costs a third of a ->> per key.
    SELECT
        activity,
        revenue_impact,
        f[1] AS session_id,
        TRY_CAST(f[2] AS BIGINT) AS input_tokens,
        TRY_CAST(f[3] AS BIGINT) AS output_tokens,
        activity = 'called_tool' AND (lower(coalesce(f[4], '')) = 'false' OR coalesce(f[5], '') <> '') AS failed,
        is_current
    FROM (
        SELECT activity, revenue_impact, ts >= ? AS is_current,
            json_extract_string(feature_json, list_value('session_id', 'input_tokens', 'output_tokens', 'success', 'error')) AS f
        FROM claude_stream
        WHERE ts >= ? AND ts < ?
    )
),
totals AS (
    -- One row, whatever the data: an aggregate without GROUP BY.
    SELECT
        CAST(coalesce(sum(CASE WHEN is_current THEN 1 ELSE 0 END), 0) AS DOUBLE) AS events_cur,
        CAST(coalesce(sum(CASE WHEN is_current THEN 0 ELSE 1 END), 0) AS DOUBLE) AS events_prev,
        CAST(count(DISTINCT CASE WHEN is_current THEN session_id END) AS DOUBLE) AS sessions_cur,
        CAST(count(DISTINCT CASE WHEN NOT is_current THEN session_id END) AS DOUBLE) AS sessions_prev,
        CAST(coalesce(sum(CASE WHEN is_current AND activity = 'submitted_prompt' THEN 1 ELSE 0 END), 0) AS DOUBLE) AS prompts_cur,
        CAST(coalesce(sum(CASE WHEN NOT is_current AND activity = 'submitted_prompt' THEN 1 ELSE 0 END), 0) AS DOUBLE) AS prompts_prev,
        CAST(coalesce(sum(CASE WHEN is_current AND activity = 'completed_response' THEN 1 ELSE 0 END), 0) AS DOUBLE) AS responses_cur,
        CAST(coalesce(sum(CASE WHEN NOT is_current AND activity = 'completed_response' THEN 1 ELSE 0 END), 0) AS DOUBLE) AS responses_prev,
        CAST(coalesce(sum(CASE WHEN is_current AND activity = 'called_tool' THEN 1 ELSE 0 END), 0) AS DOUBLE) AS tool_calls_cur,
        CAST(coalesce(sum(CASE WHEN NOT is_current AND activity = 'called_tool' THEN 1 ELSE 0 END), 0) AS DOUBLE) AS tool_calls_prev,
        CAST(coalesce(sum(CASE WHEN is_current AND failed THEN 1 ELSE 0 END), 0) AS DOUBLE) AS tool_errors_cur,
        CAST(coalesce(sum(CASE WHEN NOT is_current AND failed THEN 1 ELSE 0 END), 0) AS DOUBLE) AS tool_errors_prev,
        CAST(coalesce(sum(CASE WHEN is_current THEN input_tokens END), 0) AS DOUBLE) AS input_tokens_cur,
        CAST(coalesce(sum(CASE WHEN NOT is_current THEN input_tokens END), 0) AS DOUBLE) AS input_tokens_prev,
        CAST(coalesce(sum(CASE WHEN is_current THEN output_tokens END), 0) AS DOUBLE) AS output_tokens_cur,
        CAST(coalesce(sum(CASE WHEN NOT is_current THEN output_tokens END), 0) AS DOUBLE) AS output_tokens_prev,
        round(coalesce(sum(CASE WHEN is_current AND revenue_impact < 0 THEN -revenue_impact END), 0), 6) AS cost_usd_cur,
        round(coalesce(sum(CASE WHEN NOT is_current AND revenue_impact < 0 THEN -revenue_impact END), 0), 6) AS cost_usd_prev
    FROM w
),
rows_by_metric AS (
    SELECT 1 AS ord, 'events' AS metric, events_cur AS current_value, events_prev AS previous_value FROM totals
    UNION ALL
    SELECT 2 AS ord, 'sessions' AS metric, sessions_cur AS current_value, sessions_prev AS previous_value FROM totals
    UNION ALL
    SELECT 3 AS ord, 'prompts' AS metric, prompts_cur AS current_value, prompts_prev AS previous_value FROM totals
    UNION ALL
    SELECT 4 AS ord, 'responses' AS metric, responses_cur AS current_value, responses_prev AS previous_value FROM totals
    UNION ALL
    SELECT 5 AS ord, 'tool_calls' AS metric, tool_calls_cur AS current_value, tool_calls_prev AS previous_value FROM totals
    UNION ALL
    SELECT 6 AS ord, 'tool_errors' AS metric, tool_errors_cur AS current_value, tool_errors_prev AS previous_value FROM totals
    UNION ALL
    SELECT 7 AS ord, 'input_tokens' AS metric, input_tokens_cur AS current_value, input_tokens_prev AS previous_value FROM totals
    UNION ALL
    SELECT 8 AS ord, 'output_tokens' AS metric, output_tokens_cur AS current_value, output_tokens_prev AS previous_value FROM totals
    UNION ALL
    SELECT 9 AS ord, 'cost_usd' AS metric, cost_usd_cur AS current_value, cost_usd_prev AS previous_value FROM totals
)
SELECT
    metric,
    current_value,
    previous_value,
    CASE WHEN previous_value = 0 THEN NULL
         ELSE (current_value - previous_value) / previous_value END AS change_pct
FROM rows_by_metric
ORDER BY ord
