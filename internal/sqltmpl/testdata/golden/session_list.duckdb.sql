-- session_list, duckdb, rendered at 2026-03-31T12:00:00Z
-- params: {"days":7,"limit":50}
-- arg 1: time.Time 2026-03-24T12:00:00Z
-- arg 2: time.Time 2026-03-31T12:00:00Z
-- arg 3: string ""
-- arg 4: string ""
-- arg 5: int64 50
WITH ev AS (
    SELECT
        ts,
        activity,
        revenue_impact,
        feature_json->>'session_id' AS session_id,
        feature_json->>'project' AS project,
        activity = 'called_tool'
            AND (lower(coalesce(feature_json->>'success', '')) = 'false'
                 OR coalesce(feature_json->>'error', '') <> '') AS failed
    FROM claude_stream
    WHERE ts >= ? AND ts < ?
      AND (feature_json->>'session_id') IS NOT NULL
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
