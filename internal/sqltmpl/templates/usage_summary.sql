/*
name: usage_summary
description: >-
  The headline numbers of the window next to the window of the same length
  just before it, one row per metric: events, sessions, prompts, responses,
  tool calls, tool errors, input and output tokens, cost in USD, with the
  relative change. Use it for "summarize my usage this week", "how does this
  month compare to last month", a dashboard's KPI tiles. One metric broken
  down by tool, model, project...: period_comparison.
reads: >-
  Every event of the window and of the previous window: activity,
  revenue_impact (cost is the sum of negative revenue_impact, in USD) and the
  features session_id, success, error, input_tokens, output_tokens.
timeout: 30s
window: {days: 7, max_days: 1830}
columns:
  - {name: metric, type: VARCHAR, description: "events, sessions, prompts, responses, tool_calls, tool_errors, input_tokens, output_tokens or cost_usd."}
  - {name: current_value, type: DOUBLE, description: "The metric in the window [from, to)."}
  - {name: previous_value, type: DOUBLE, description: The metric in the window of the same length just before.}
  - {name: change_pct, type: DOUBLE, description: "(current_value - previous_value) / previous_value (0.25 = +25%); NULL when previous_value is 0."}
card: {kind: kpi, x: metric, y: [current_value]}
*/

-- dialect: duckdb
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
        SELECT activity, revenue_impact, ts >= $window_start AS is_current,
            json_extract_string(feature_json, list_value('session_id', 'input_tokens', 'output_tokens', 'success', 'error')) AS f
        FROM claude_stream
        WHERE ts >= $prev_start AND ts < $window_end
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

-- dialect: snowflake
WITH w AS (
    SELECT
        activity,
        revenue_impact,
        feature_json:session_id::string AS session_id,
        TRY_TO_NUMBER(feature_json:input_tokens::string) AS input_tokens,
        TRY_TO_NUMBER(feature_json:output_tokens::string) AS output_tokens,
        activity = 'called_tool'
            AND (LOWER(COALESCE(feature_json:success::string, '')) = 'false'
                 OR COALESCE(feature_json:error::string, '') <> '') AS failed,
        ts >= $window_start AS is_current
    FROM claude_stream
    WHERE ts >= $prev_start AND ts < $window_end
),
totals AS (
    -- One row, whatever the data: an aggregate without GROUP BY.
    SELECT
        CAST(COALESCE(SUM(CASE WHEN is_current THEN 1 ELSE 0 END), 0) AS DOUBLE) AS events_cur,
        CAST(COALESCE(SUM(CASE WHEN is_current THEN 0 ELSE 1 END), 0) AS DOUBLE) AS events_prev,
        CAST(COUNT(DISTINCT CASE WHEN is_current THEN session_id END) AS DOUBLE) AS sessions_cur,
        CAST(COUNT(DISTINCT CASE WHEN NOT is_current THEN session_id END) AS DOUBLE) AS sessions_prev,
        CAST(COALESCE(SUM(CASE WHEN is_current AND activity = 'submitted_prompt' THEN 1 ELSE 0 END), 0) AS DOUBLE) AS prompts_cur,
        CAST(COALESCE(SUM(CASE WHEN NOT is_current AND activity = 'submitted_prompt' THEN 1 ELSE 0 END), 0) AS DOUBLE) AS prompts_prev,
        CAST(COALESCE(SUM(CASE WHEN is_current AND activity = 'completed_response' THEN 1 ELSE 0 END), 0) AS DOUBLE) AS responses_cur,
        CAST(COALESCE(SUM(CASE WHEN NOT is_current AND activity = 'completed_response' THEN 1 ELSE 0 END), 0) AS DOUBLE) AS responses_prev,
        CAST(COALESCE(SUM(CASE WHEN is_current AND activity = 'called_tool' THEN 1 ELSE 0 END), 0) AS DOUBLE) AS tool_calls_cur,
        CAST(COALESCE(SUM(CASE WHEN NOT is_current AND activity = 'called_tool' THEN 1 ELSE 0 END), 0) AS DOUBLE) AS tool_calls_prev,
        CAST(COALESCE(SUM(CASE WHEN is_current AND failed THEN 1 ELSE 0 END), 0) AS DOUBLE) AS tool_errors_cur,
        CAST(COALESCE(SUM(CASE WHEN NOT is_current AND failed THEN 1 ELSE 0 END), 0) AS DOUBLE) AS tool_errors_prev,
        CAST(COALESCE(SUM(CASE WHEN is_current THEN input_tokens END), 0) AS DOUBLE) AS input_tokens_cur,
        CAST(COALESCE(SUM(CASE WHEN NOT is_current THEN input_tokens END), 0) AS DOUBLE) AS input_tokens_prev,
        CAST(COALESCE(SUM(CASE WHEN is_current THEN output_tokens END), 0) AS DOUBLE) AS output_tokens_cur,
        CAST(COALESCE(SUM(CASE WHEN NOT is_current THEN output_tokens END), 0) AS DOUBLE) AS output_tokens_prev,
        round(COALESCE(SUM(CASE WHEN is_current AND revenue_impact < 0 THEN -revenue_impact END), 0), 6) AS cost_usd_cur,
        round(COALESCE(SUM(CASE WHEN NOT is_current AND revenue_impact < 0 THEN -revenue_impact END), 0), 6) AS cost_usd_prev
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
    metric AS "metric",
    current_value AS "current_value",
    previous_value AS "previous_value",
    IFF(previous_value = 0, NULL, (current_value - previous_value) / previous_value) AS "change_pct"
FROM rows_by_metric
ORDER BY ord
