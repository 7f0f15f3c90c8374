/*
name: usage_cost
description: >-
  Token use and cost in USD grouped by model, project, tool, activity,
  session or day: input, output and cache tokens and the cost, most
  expensive first. Use it for "what did I spend this month", "which model
  costs most", "cost per project", "tokens by tool". Cost over time as a
  chart: cost_over_time.
reads: >-
  Events of the window that carry a cost or tokens: revenue_impact (cost is
  the sum of negative revenue_impact, in USD) and the features
  input_tokens, output_tokens, cache_read_input_tokens,
  cache_creation_input_tokens (usually on completed_response), model,
  tool, project and session_id. An event without project takes its
  session's first project. Groups without a name are (none).
timeout: 30s
window: {days: 30}
params:
  - name: by
    type: enum
    default: model
    values: [model, project, tool, activity, session, day]
    description: "What to group by: model, project, tool, activity, session (session_id) or day (YYYY-MM-DD, UTC)."
    fragments:
      duckdb:
        model: "coalesce(model, '(none)')"
        project: "coalesce(project, '(none)')"
        tool: "coalesce(tool, '(none)')"
        activity: "activity"
        session: "coalesce(session_id, '(none)')"
        day: "strftime(date_trunc('day', ts), '%Y-%m-%d')"
      snowflake:
        model: "COALESCE(model, '(none)')"
        project: "COALESCE(project, '(none)')"
        tool: "COALESCE(tool, '(none)')"
        activity: "activity"
        session: "COALESCE(session_id, '(none)')"
        day: "TO_CHAR(DATE_TRUNC('day', ts), 'YYYY-MM-DD')"
  - name: limit
    type: int
    default: 50
    min: 1
    max: 1000
    description: At most this many groups, most expensive first.
columns:
  - {name: dimension, type: VARCHAR, description: "The group: a model, project, tool, activity, session_id or day, by the by parameter."}
  - {name: events, type: BIGINT, description: Events with a cost or tokens in the group.}
  - {name: input_tokens, type: BIGINT, description: Sum of input_tokens.}
  - {name: output_tokens, type: BIGINT, description: Sum of output_tokens.}
  - {name: cache_read_tokens, type: BIGINT, description: Sum of cache_read_input_tokens.}
  - {name: cache_creation_tokens, type: BIGINT, description: Sum of cache_creation_input_tokens.}
  - {name: cost_usd, type: DOUBLE, description: "Cost in USD (sum of -revenue_impact where negative), rounded to 1e-6."}
card: {kind: bar, x: dimension, y: [cost_usd]}
*/

-- dialect: duckdb
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
        WHERE ts >= $window_start AND ts < $window_end
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
    /* SLOT: by */coalesce(model, '(none)')/* END */ AS dimension,
    count(*) AS events,
    CAST(coalesce(sum(input_tokens), 0) AS BIGINT) AS input_tokens,
    CAST(coalesce(sum(output_tokens), 0) AS BIGINT) AS output_tokens,
    CAST(coalesce(sum(cache_read_tokens), 0) AS BIGINT) AS cache_read_tokens,
    CAST(coalesce(sum(cache_creation_tokens), 0) AS BIGINT) AS cache_creation_tokens,
    round(sum(CASE WHEN revenue_impact < 0 THEN -revenue_impact ELSE 0 END), 6) AS cost_usd
FROM attributed
GROUP BY dimension
ORDER BY cost_usd DESC, events DESC, dimension
LIMIT $limit

-- dialect: snowflake
WITH ev AS (
    SELECT
        ts,
        activity,
        revenue_impact,
        feature_json:model::string AS model,
        feature_json:tool::string AS tool,
        feature_json:session_id::string AS session_id,
        feature_json:project::string AS own_project,
        TRY_TO_NUMBER(feature_json:input_tokens::string) AS input_tokens,
        TRY_TO_NUMBER(feature_json:output_tokens::string) AS output_tokens,
        TRY_TO_NUMBER(feature_json:cache_read_input_tokens::string) AS cache_read_tokens,
        TRY_TO_NUMBER(feature_json:cache_creation_input_tokens::string) AS cache_creation_tokens
    FROM claude_stream
    WHERE ts >= $window_start AND ts < $window_end
),
attributed AS (
    -- The session's first project for events that name none.
    SELECT ev.*,
        COALESCE(own_project, IFF(session_id IS NULL, NULL,
            FIRST_VALUE(own_project) IGNORE NULLS OVER (PARTITION BY session_id ORDER BY ts
                ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING))) AS project
    FROM ev
)
SELECT
    /* SLOT: by */COALESCE(model, '(none)')/* END */ AS "dimension",
    COUNT(*) AS "events",
    COALESCE(SUM(input_tokens), 0) AS "input_tokens",
    COALESCE(SUM(output_tokens), 0) AS "output_tokens",
    COALESCE(SUM(cache_read_tokens), 0) AS "cache_read_tokens",
    COALESCE(SUM(cache_creation_tokens), 0) AS "cache_creation_tokens",
    ROUND(SUM(IFF(revenue_impact < 0, -revenue_impact, 0)), 6) AS "cost_usd"
FROM attributed
WHERE revenue_impact IS NOT NULL OR input_tokens IS NOT NULL OR output_tokens IS NOT NULL
   OR cache_read_tokens IS NOT NULL OR cache_creation_tokens IS NOT NULL
GROUP BY 1
ORDER BY "cost_usd" DESC, "events" DESC, "dimension"
LIMIT $limit
