/*
name: cost_over_time
description: >-
  Cost in USD and tokens per time bucket (hour, day, week or month), split
  by model, project or activity, or all together. Use it for "daily spend
  this month", "cost per week by model", "is my spend going up". Totals
  per group without time: usage_cost.
reads: >-
  Events of the window that carry a cost or tokens: revenue_impact (cost is
  the sum of negative revenue_impact, in USD) and the features
  input_tokens, output_tokens, cache_read_input_tokens,
  cache_creation_input_tokens, model, project and session_id. An event
  without project takes its session's first project. Buckets without cost
  or tokens are absent.
timeout: 30s
window: {days: 30}
bucket: {default: day}
params:
  - name: by
    type: enum
    default: model
    values: [model, project, activity, all]
    description: "Split into series by model, project or activity, or all: one series."
    fragments:
      duckdb:
        model: "coalesce(model, '(none)')"
        project: "coalesce(project, '(none)')"
        activity: "activity"
        all: "'all'"
      snowflake:
        model: "COALESCE(model, '(none)')"
        project: "COALESCE(project, '(none)')"
        activity: "activity"
        all: "'all'"
  - name: limit
    type: int
    default: 5000
    min: 1
    max: 10000
    description: At most this many rows (bucket and series), earliest buckets first.
columns:
  - {name: bucket, type: TIMESTAMP, description: "Start of the time bucket (UTC)."}
  - {name: series, type: VARCHAR, description: "The model, project or activity ((none) when unnamed), or all."}
  - {name: cost_usd, type: DOUBLE, description: "Cost in USD (sum of -revenue_impact where negative), rounded to 1e-6."}
  - {name: input_tokens, type: BIGINT, description: Sum of input_tokens.}
  - {name: output_tokens, type: BIGINT, description: Sum of output_tokens.}
card: {kind: stacked_bar, x: bucket, y: [cost_usd], series: series}
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
    date_trunc(/* SLOT: bucket */'day'/* END */, ts) AS bucket,
    /* SLOT: by */coalesce(model, '(none)')/* END */ AS series,
    round(sum(CASE WHEN revenue_impact < 0 THEN -revenue_impact ELSE 0 END), 6) AS cost_usd,
    CAST(coalesce(sum(input_tokens), 0) AS BIGINT) AS input_tokens,
    CAST(coalesce(sum(output_tokens), 0) AS BIGINT) AS output_tokens
FROM attributed
GROUP BY bucket, series
ORDER BY bucket, cost_usd DESC, series
LIMIT $limit

-- dialect: snowflake
WITH ev AS (
    SELECT
        ts,
        activity,
        revenue_impact,
        feature_json:model::string AS model,
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
    DATE_TRUNC(/* SLOT: bucket */'day'/* END */, ts) AS "bucket",
    /* SLOT: by */COALESCE(model, '(none)')/* END */ AS "series",
    ROUND(SUM(IFF(revenue_impact < 0, -revenue_impact, 0)), 6) AS "cost_usd",
    COALESCE(SUM(input_tokens), 0) AS "input_tokens",
    COALESCE(SUM(output_tokens), 0) AS "output_tokens"
FROM attributed
WHERE revenue_impact IS NOT NULL OR input_tokens IS NOT NULL OR output_tokens IS NOT NULL
   OR cache_read_tokens IS NOT NULL OR cache_creation_tokens IS NOT NULL
GROUP BY 1, 2
ORDER BY 1, 3 DESC, 2
LIMIT $limit
