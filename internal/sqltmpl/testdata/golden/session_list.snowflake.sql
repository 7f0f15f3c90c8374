-- session_list, snowflake, rendered at 2026-03-31T12:00:00Z
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
        feature_json:session_id::string AS session_id,
        feature_json:project::string AS project,
        activity = 'called_tool'
            AND (LOWER(COALESCE(feature_json:success::string, '')) = 'false'
                 OR COALESCE(feature_json:error::string, '') <> '') AS failed
    FROM claude_stream
    WHERE ts >= ? AND ts < ?
      AND feature_json:session_id::string IS NOT NULL
),
sessions AS (
    SELECT
        session_id,
        COALESCE(MIN_BY(project, IFF(project IS NULL, NULL, ts)), '') AS project,
        MIN(ts) AS started,
        MAX(ts) AS ended,
        DATEDIFF('millisecond', MIN(ts), MAX(ts)) / 60000.0 AS minutes,
        COUNT(*) AS events,
        SUM(IFF(activity = 'submitted_prompt', 1, 0)) AS prompts,
        SUM(IFF(activity = 'called_tool', 1, 0)) AS tool_calls,
        SUM(IFF(failed, 1, 0)) AS tool_errors,
        ROUND(SUM(IFF(revenue_impact < 0, -revenue_impact, 0)), 6) AS cost_usd
    FROM ev
    GROUP BY session_id
)
SELECT session_id AS "session_id", project AS "project", started AS "started", ended AS "ended",
    minutes AS "minutes", events AS "events", prompts AS "prompts", tool_calls AS "tool_calls",
    tool_errors AS "tool_errors", cost_usd AS "cost_usd"
FROM sessions
WHERE (? = '' OR project = ?)
ORDER BY started DESC, session_id
LIMIT ?
