/*
name: session_list
description: >-
  Sessions of the window, most recent first: start, end, length, events,
  prompts, tool calls, failed tool calls, cost in USD and the project. Use it
  for "what did I work on yesterday", "my longest or most expensive
  sessions", "sessions in project X". Counts per day are in
  sessions_over_time.
reads: >-
  Events with the feature session_id (events without one belong to no
  session and are not read): activity, ts, revenue_impact and the features
  project, success, error. A session's project is the first project any of
  its events names.
timeout: 30s
window: {days: 7}
params:
  - name: project
    type: string
    optional: true
    description: Only sessions in this project (exact name). Default all.
  - name: limit
    type: int
    default: 50
    min: 1
    max: 1000
    description: At most this many sessions, most recent first.
columns:
  - {name: session_id, type: VARCHAR, description: The session_id feature.}
  - {name: project, type: VARCHAR, description: "The session's project; empty when no event named one."}
  - {name: started, type: TIMESTAMP, description: First event of the session in the window (UTC).}
  - {name: ended, type: TIMESTAMP, description: Last event of the session in the window (UTC).}
  - {name: minutes, type: DOUBLE, description: "ended - started, in minutes."}
  - {name: events, type: BIGINT, description: Events of the session.}
  - {name: prompts, type: BIGINT, description: submitted_prompt events.}
  - {name: tool_calls, type: BIGINT, description: called_tool events.}
  - {name: tool_errors, type: BIGINT, description: Failed tool calls (success false or an error).}
  - {name: cost_usd, type: DOUBLE, description: "Cost in USD (sum of -revenue_impact where negative)."}
card: {kind: table}
*/

-- dialect: duckdb
WITH ev AS (
    -- The features this reads, parsed once per event: one
    -- json_extract_string of a list costs a third of a ->> per key.
    SELECT ts, activity, revenue_impact, f[1] AS session_id, f[2] AS project,
        activity = 'called_tool' AND (lower(coalesce(f[3], '')) = 'false' OR coalesce(f[4], '') <> '') AS failed
    FROM (
        SELECT ts, activity, revenue_impact,
            json_extract_string(feature_json, list_value('session_id', 'project', 'success', 'error')) AS f
        FROM claude_stream
        WHERE ts >= $window_start AND ts < $window_end
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
WHERE ($project = '' OR project = $project)
ORDER BY started DESC, session_id
LIMIT $limit

-- dialect: snowflake
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
    WHERE ts >= $window_start AND ts < $window_end
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
WHERE ($project = '' OR project = $project)
ORDER BY started DESC, session_id
LIMIT $limit
