/*
name: sessions_over_time
description: >-
  Sessions per time bucket (hour, day, week or month): sessions active in
  the bucket, sessions started, prompts submitted and responses completed.
  Use it for "how many sessions per day", "how many prompts per week", "am
  I using Claude more than last month". A list of the sessions themselves is
  session_list.
reads: >-
  Every event of the window: activity and the feature session_id. A session
  is active in a bucket when one of its events (with that session_id) is in
  it; events without session_id count in prompts and responses but not in
  sessions. Buckets without events are absent.
timeout: 30s
window: {days: 30}
bucket: {default: day}
params:
  - name: project
    type: string
    optional: true
    description: Only events whose project feature is this (exact name). Default all.
columns:
  - {name: bucket, type: TIMESTAMP, description: "Start of the time bucket (UTC)."}
  - {name: sessions, type: BIGINT, description: Distinct session_id values among the bucket's events.}
  - {name: started_sessions, type: BIGINT, description: started_session events in the bucket.}
  - {name: prompts, type: BIGINT, description: submitted_prompt events in the bucket.}
  - {name: responses, type: BIGINT, description: completed_response events in the bucket.}
card: {kind: line, x: bucket, y: [sessions, prompts]}
*/

-- dialect: duckdb
WITH ev AS (
    -- session_id and project, parsed once per event.
    SELECT ts, activity, f[1] AS session_id, f[2] AS project
    FROM (
        SELECT ts, activity, json_extract_string(feature_json, list_value('session_id', 'project')) AS f
        FROM claude_stream
        WHERE ts >= $window_start AND ts < $window_end
    )
)
SELECT
    date_trunc(/* SLOT: bucket */'day'/* END */, ts) AS bucket,
    count(DISTINCT session_id) AS sessions,
    CAST(sum(CASE WHEN activity = 'started_session' THEN 1 ELSE 0 END) AS BIGINT) AS started_sessions,
    CAST(sum(CASE WHEN activity = 'submitted_prompt' THEN 1 ELSE 0 END) AS BIGINT) AS prompts,
    CAST(sum(CASE WHEN activity = 'completed_response' THEN 1 ELSE 0 END) AS BIGINT) AS responses
FROM ev
WHERE ($project = '' OR project = $project)
GROUP BY bucket
ORDER BY bucket

-- dialect: snowflake
SELECT
    DATE_TRUNC(/* SLOT: bucket */'day'/* END */, ts) AS "bucket",
    COUNT(DISTINCT feature_json:session_id::string) AS "sessions",
    SUM(IFF(activity = 'started_session', 1, 0)) AS "started_sessions",
    SUM(IFF(activity = 'submitted_prompt', 1, 0)) AS "prompts",
    SUM(IFF(activity = 'completed_response', 1, 0)) AS "responses"
FROM claude_stream
WHERE ts >= $window_start AND ts < $window_end
  AND ($project = '' OR feature_json:project::string = $project)
GROUP BY 1
ORDER BY 1
