/*
name: period_comparison
description: >-
  Period-over-period change: one metric (events, sessions, prompts,
  responses, tool calls, tool errors, cost or tokens) in the window against
  the window of the same length just before it, overall or per activity,
  tool, MCP server, model or project, with the absolute and relative
  change. Use it for "did I spend more this week than last week", "which
  tools are used more than last month", "are errors up". Every headline
  metric at once: usage_summary.
reads: >-
  Every event of the window and of the previous window: activity,
  revenue_impact (cost is the sum of negative revenue_impact, in USD) and the
  features session_id, tool, server, model, project, success, error,
  input_tokens, output_tokens. Groups without a name are (none). By
  project, an event without its own project counts under its session's
  (from any event of that session in the two windows, the session start's
  as a rule), as usage_cost does, so a session is not split between its
  project and (none).
timeout: 30s
window: {days: 7, max_days: 1830}
params:
  - name: metric
    type: enum
    default: events
    values: [events, sessions, prompts, responses, tool_calls, tool_errors, cost_usd, input_tokens, output_tokens]
    description: "What to compare: events, sessions (distinct session_id), prompts, responses, tool_calls, tool_errors, cost_usd, input_tokens or output_tokens."
    fragments:
      duckdb:
        events: "CAST(count(*) AS DOUBLE)"
        sessions: "CAST(count(DISTINCT session_id) AS DOUBLE)"
        prompts: "CAST(sum(CASE WHEN activity = 'submitted_prompt' THEN 1 ELSE 0 END) AS DOUBLE)"
        responses: "CAST(sum(CASE WHEN activity = 'completed_response' THEN 1 ELSE 0 END) AS DOUBLE)"
        tool_calls: "CAST(sum(CASE WHEN activity = 'called_tool' THEN 1 ELSE 0 END) AS DOUBLE)"
        tool_errors: "CAST(sum(CASE WHEN failed THEN 1 ELSE 0 END) AS DOUBLE)"
        cost_usd: "round(sum(CASE WHEN revenue_impact < 0 THEN -revenue_impact ELSE 0 END), 6)"
        input_tokens: "CAST(coalesce(sum(input_tokens), 0) AS DOUBLE)"
        output_tokens: "CAST(coalesce(sum(output_tokens), 0) AS DOUBLE)"
      snowflake:
        events: "CAST(COUNT(*) AS DOUBLE)"
        sessions: "CAST(COUNT(DISTINCT session_id) AS DOUBLE)"
        prompts: "CAST(SUM(IFF(activity = 'submitted_prompt', 1, 0)) AS DOUBLE)"
        responses: "CAST(SUM(IFF(activity = 'completed_response', 1, 0)) AS DOUBLE)"
        tool_calls: "CAST(SUM(IFF(activity = 'called_tool', 1, 0)) AS DOUBLE)"
        tool_errors: "CAST(SUM(IFF(failed, 1, 0)) AS DOUBLE)"
        cost_usd: "ROUND(SUM(IFF(revenue_impact < 0, -revenue_impact, 0)), 6)"
        input_tokens: "CAST(COALESCE(SUM(input_tokens), 0) AS DOUBLE)"
        output_tokens: "CAST(COALESCE(SUM(output_tokens), 0) AS DOUBLE)"
  - name: by
    type: enum
    default: all
    values: [all, activity, tool, server, model, project]
    description: "Compare overall (all) or per activity, tool, MCP server, model or project."
    fragments:
      duckdb:
        all: "'all'"
        activity: "activity"
        tool: "coalesce(tool, '(none)')"
        server: "coalesce(server, '(none)')"
        model: "coalesce(model, '(none)')"
        project: "coalesce(project, CASE WHEN session_id IS NOT NULL THEN max(project) OVER (PARTITION BY session_id) END, '(none)')"
      snowflake:
        all: "'all'"
        activity: "activity"
        tool: "COALESCE(tool, '(none)')"
        server: "COALESCE(server, '(none)')"
        model: "COALESCE(model, '(none)')"
        project: "COALESCE(project, IFF(session_id IS NOT NULL, MAX(project) OVER (PARTITION BY session_id), NULL), '(none)')"
  - name: limit
    type: int
    default: 50
    min: 1
    max: 1000
    description: At most this many groups, largest current value first.
columns:
  - {name: dimension, type: VARCHAR, description: "The group (all, or an activity, tool, server, model or project, by the by parameter)."}
  - {name: current_value, type: DOUBLE, description: "The metric in the window [from, to)."}
  - {name: previous_value, type: DOUBLE, description: The metric in the window of the same length just before.}
  - {name: change, type: DOUBLE, description: current_value - previous_value.}
  - {name: change_pct, type: DOUBLE, description: "change / previous_value (0.25 = +25%); NULL when previous_value is 0."}
card: {kind: bar, x: dimension, y: [current_value, previous_value]}
*/

-- dialect: duckdb
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
        SELECT activity, revenue_impact, ts >= $window_start AS is_current,
            json_extract_string(feature_json, list_value('session_id', 'tool', 'server', 'model', 'project',
                'input_tokens', 'output_tokens', 'success', 'error')) AS f
        FROM claude_stream
        WHERE ts >= $prev_start AND ts < $window_end
    )
),
d AS (
    -- The group of each event; by project, an event without one takes
    -- its session's (a window, so computed only then).
    SELECT *, /* SLOT: by */'all'/* END */ AS dimension
    FROM w
),
per_period AS (
    SELECT
        dimension,
        is_current,
        /* SLOT: metric */CAST(count(*) AS DOUBLE)/* END */ AS v
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
LIMIT $limit

-- dialect: snowflake
WITH w AS (
    SELECT
        activity,
        revenue_impact,
        feature_json:session_id::string AS session_id,
        feature_json:tool::string AS tool,
        feature_json:server::string AS server,
        feature_json:model::string AS model,
        feature_json:project::string AS project,
        TRY_TO_NUMBER(feature_json:input_tokens::string) AS input_tokens,
        TRY_TO_NUMBER(feature_json:output_tokens::string) AS output_tokens,
        activity = 'called_tool'
            AND (LOWER(COALESCE(feature_json:success::string, '')) = 'false'
                 OR COALESCE(feature_json:error::string, '') <> '') AS failed,
        ts >= $window_start AS is_current
    FROM claude_stream
    WHERE ts >= $prev_start AND ts < $window_end
),
d AS (
    SELECT w.*, /* SLOT: by */'all'/* END */ AS dimension
    FROM w
),
per_period AS (
    SELECT
        dimension,
        is_current,
        /* SLOT: metric */CAST(COUNT(*) AS DOUBLE)/* END */ AS v
    FROM d
    GROUP BY 1, 2
),
pivoted AS (
    SELECT
        dimension,
        COALESCE(MAX(IFF(is_current, v, NULL)), 0) AS current_value,
        COALESCE(MAX(IFF(NOT is_current, v, NULL)), 0) AS previous_value
    FROM per_period
    GROUP BY dimension
)
SELECT
    dimension AS "dimension",
    current_value AS "current_value",
    previous_value AS "previous_value",
    current_value - previous_value AS "change",
    IFF(previous_value = 0, NULL, (current_value - previous_value) / previous_value) AS "change_pct"
FROM pivoted
ORDER BY current_value DESC, dimension
LIMIT $limit
