-- session_list, duckdb, rendered at 2026-03-31T12:00:00Z
-- params: {"days":7,"limit":50}
-- arg 1: time.Time 2026-03-24T12:00:00Z
-- arg 2: time.Time 2026-03-31T12:00:00Z
-- arg 3: string ""
-- arg 4: string ""
-- arg 5: int64 50
WITH ev AS (
    -- The features this reads, parsed once per event: one
    -- json_extract_string of a list costs a third of a ->> per key.
    SELECT ts, activity, revenue_impact, f[1] AS session_id, f[2] AS project,
        activity = 'called_tool' AND (lower(coalesce(f[3], '')) = 'false' OR coalesce(f[4], '') <> '') AS failed
    FROM (
        SELECT ts, activity, revenue_impact,
            json_extract_string(feature_json, list_value('session_id', 'project', 'success', 'error')) AS f
        FROM claude_stream
        WHERE ts >= ? AND ts < ?
    )
    WHERE f[1] IS NOT NULL
),
sessions AS (
    SELECT
        session_id,
        coalesce(arg_min(project, CASE WHEN project IS NOT NULL THEN ts END), '') AS project,
        min(ts) AS started,
        max(ts) AS ended,
        (epoch(max(ts)) - epoch(min(ts))) / 60 AS minutes,
        count(*) AS events,
        CAST(sum(CASE WHEN activity = 'submitted_prompt' THEN 1 ELSE 0 END) AS BIGINT) AS prompts,
        CAST(sum(CASE WHEN activity = 'called_tool' THEN 1 ELSE 0 END) AS BIGINT) AS tool_calls,
        CAST(sum(CASE WHEN failed THEN 1 ELSE 0 END) AS BIGINT) AS tool_errors,
        round(sum(CASE WHEN revenue_impact < 0 THEN -revenue_impact ELSE 0 END), 6) AS cost_usd
    FROM ev
    GROUP BY session_id
)
SELECT session_id, project, started, ended, minutes, events, prompts, tool_calls, tool_errors, cost_usd
FROM sessions
WHERE (? = '' OR project = ?)
ORDER BY started DESC, session_id
LIMIT ?
