/*
name: activity_heatmap
description: >-
  Events by weekday and hour of day (UTC) over the window, for a heatmap of
  when work happens. Use it for "when during the week do I use Claude",
  "what hours am I most active", "when do tool calls happen". One activity
  only with the activity parameter.
reads: >-
  Every event of the window (or of one activity): ts and activity. Hours
  are UTC. Cells without events are absent.
timeout: 30s
window: {days: 28}
params:
  - name: activity
    type: string
    optional: true
    pattern: '^[a-z][a-z0-9]*(_[a-z0-9]+)+$'
    description: "Only this activity (verb_noun, e.g. submitted_prompt). Default all."
columns:
  - {name: weekday, type: BIGINT, description: "ISO weekday: 1 Monday to 7 Sunday."}
  - {name: hour, type: BIGINT, description: "Hour of the day, 0 to 23, UTC."}
  - {name: events, type: BIGINT, description: Events in that weekday and hour over the window.}
card: {kind: heatmap, x: hour, y: [events], series: weekday}
*/

-- dialect: duckdb
SELECT
    isodow(ts) AS weekday,
    hour(ts) AS hour,
    count(*) AS events
FROM claude_stream
WHERE ts >= $window_start AND ts < $window_end
  AND ($activity = '' OR activity = $activity)
GROUP BY weekday, hour
ORDER BY weekday, hour

-- dialect: snowflake
SELECT
    DAYOFWEEKISO(ts) AS "weekday",
    HOUR(ts) AS "hour",
    COUNT(*) AS "events"
FROM claude_stream
WHERE ts >= $window_start AND ts < $window_end
  AND ($activity = '' OR activity = $activity)
GROUP BY 1, 2
ORDER BY 1, 2
