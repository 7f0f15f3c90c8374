-- kpis.sql: the headline numbers of the range (one row).
-- sessions counts distinct session_id features (events without one are
-- in no session); a tool call failed when its success feature is false or
-- it has a non-empty error feature; cost is -revenue_impact (cost is
-- logged as a negative USD amount).
SELECT
    count(*) AS events,
    count(DISTINCT nullif(f[1], '')) AS sessions,
    count(*) FILTER (WHERE activity = 'submitted_prompt') AS prompts,
    count(*) FILTER (WHERE activity = 'completed_response') AS responses,
    count(*) FILTER (WHERE activity = 'called_tool') AS tool_calls,
    count(*) FILTER (WHERE activity = 'called_tool'
        AND (lower(coalesce(f[2], '')) = 'false' OR coalesce(f[3], '') <> '')) AS tool_errors,
    coalesce(-sum(revenue_impact), 0) AS cost_usd,
    coalesce(sum(TRY_CAST(f[4] AS BIGINT)), 0) AS input_tokens,
    coalesce(sum(TRY_CAST(f[5] AS BIGINT)), 0) AS output_tokens
FROM (
    SELECT activity, revenue_impact,
        json_extract_string(feature_json,
            list_value('session_id', 'success', 'error', 'input_tokens', 'output_tokens')) AS f
    FROM ev
)
