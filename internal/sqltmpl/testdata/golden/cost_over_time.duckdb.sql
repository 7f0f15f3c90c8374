-- cost_over_time, duckdb, rendered at 2026-03-31T12:00:00Z
-- params: {"bucket":"day","by":"model","days":30,"limit":5000}
-- arg 1: time.Time 2026-03-01T12:00:00Z
-- arg 2: time.Time 2026-03-31T12:00:00Z
-- arg 3: int64 5000
-- slot bucket=hour: 'hour'
-- slot bucket=day: 'day'
-- slot bucket=week: 'week'
-- slot bucket=month: 'month'
-- slot by=model: coalesce(model, '(none)')
-- slot by=project: coalesce(project, '(none)')
-- slot by=activity: activity
-- slot by=all: 'all'
WITH ev AS MATERIALIZED (
    -- The features this reads, parsed once per event: one
    -- json_extract_string of a list costs a third of a ->> per key.
    SELECT ts, activity, revenue_impact,
        f[1] AS model, f[2] AS tool, f[3] AS session_id, f[4] AS own_project,
        TRY_CAST(f[5] AS BIGINT) AS input_tokens,
        TRY_CAST(f[6] AS BIGINT) AS output_tokens,
        TRY_CAST(f[7] AS BIGINT) AS cache_read_tokens,
        TRY_CAST(f[8] AS BIGINT) AS cache_creation_tokens
    FROM (
        SELECT ts, activity, revenue_impact,
            json_extract_string(feature_json, list_value('model', 'tool', 'session_id', 'project',
                'input_tokens', 'output_tokens', 'cache_read_input_tokens', 'cache_creation_input_tokens')) AS f
        FROM claude_stream
        WHERE ts >= ? AND ts < ?
          -- Parse only events that can matter: a cost, a *_tokens key or
          -- a project (a plain text search, ~6x cheaper than parsing
          -- every event; a key written with \u escapes would be missed).
          AND (revenue_impact IS NOT NULL
               OR contains(feature_json::VARCHAR, '_tokens"')
               OR contains(feature_json::VARCHAR, '"project"'))
    )
),
session_projects AS (
    -- Each session's first project, for its events that name none (a
    -- join: a window partitioned by session costs several times more).
    SELECT session_id, arg_min(own_project, ts) AS session_project
    FROM ev
    WHERE session_id IS NOT NULL AND own_project IS NOT NULL
    GROUP BY session_id
),
attributed AS (
    SELECT ev.*, coalesce(own_project, session_project) AS project
    FROM ev LEFT JOIN session_projects USING (session_id)
    WHERE revenue_impact IS NOT NULL OR input_tokens IS NOT NULL OR output_tokens IS NOT NULL
       OR cache_read_tokens IS NOT NULL OR cache_creation_tokens IS NOT NULL
)
SELECT
    date_trunc('day', ts) AS bucket,
    coalesce(model, '(none)') AS series,
    round(sum(CASE WHEN revenue_impact < 0 THEN -revenue_impact ELSE 0 END), 6) AS cost_usd,
    CAST(coalesce(sum(input_tokens), 0) AS BIGINT) AS input_tokens,
    CAST(coalesce(sum(output_tokens), 0) AS BIGINT) AS output_tokens
FROM attributed
GROUP BY bucket, series
ORDER BY bucket, cost_usd DESC, series
LIMIT ?
