/*
name: activity_over_time
description: >-
  Events per time bucket (hour, day, week or month) and activity, e.g.
  prompts, responses, tool calls and sessions started per day. Use it for
  "how active was I this month", "prompts per day", "when did I use Claude
  most". One activity only with the activity parameter. Sessions as such
  are in sessions_over_time; the busiest activities overall in
  top_activities.
reads: >-
  Every event of the window (any activity); only ts and activity. Buckets
  without events are absent.
timeout: 30s
window: {days: 30}
bucket: {default: day}
params:
  - name: activity
    type: string
    optional: true
    pattern: '^[a-z][a-z0-9]*(_[a-z0-9]+)+$'
    description: "Only this activity (verb_noun, e.g. submitted_prompt, called_tool). Default all."
  - name: limit
    type: int
    default: 5000
    min: 1
    max: 10000
    description: At most this many rows (bucket and activity), earliest buckets first.
columns:
  - {name: bucket, type: TIMESTAMP, description: "Start of the time bucket (UTC)."}
  - {name: activity, type: VARCHAR, description: "The activity (verb_noun)."}
  - {name: events, type: BIGINT, description: Events of that activity in the bucket.}
card: {kind: stacked_bar, x: bucket, y: [events], series: activity}
*/

-- dialect: duckdb
SELECT
    date_trunc(/* SLOT: bucket */'day'/* END */, ts) AS bucket,
    activity,
    count(*) AS events
FROM claude_stream
WHERE ts >= $window_start AND ts < $window_end
  AND ($activity = '' OR activity = $activity)
GROUP BY bucket, activity
ORDER BY bucket, events DESC, activity
LIMIT $limit

-- dialect: snowflake
SELECT
    DATE_TRUNC(/* SLOT: bucket */'day'/* END */, ts) AS "bucket",
    activity AS "activity",
    COUNT(*) AS "events"
FROM claude_stream
WHERE ts >= $window_start AND ts < $window_end
  AND ($activity = '' OR activity = $activity)
GROUP BY 1, 2
ORDER BY 1, 3 DESC, 2
LIMIT $limit
