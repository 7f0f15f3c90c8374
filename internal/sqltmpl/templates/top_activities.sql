/*
name: top_activities
description: >-
  The most frequent activities of the window with their share of all
  events, when each was first and last seen, and the cost they carry. Use
  it for "what do I do most", "which activities are logged", "what kinds of
  events are there" — also a good first question to see what data exists.
reads: >-
  Every event of the window: activity, ts and revenue_impact (cost is the
  sum of negative revenue_impact, in USD).
timeout: 30s
window: {days: 30}
params:
  - name: limit
    type: int
    default: 20
    min: 1
    max: 1000
    description: At most this many activities, most frequent first.
columns:
  - {name: activity, type: VARCHAR, description: "The activity (verb_noun)."}
  - {name: events, type: BIGINT, description: Events of that activity in the window.}
  - {name: share, type: DOUBLE, description: "events / all events of the window, from 0 to 1."}
  - {name: first_ts, type: TIMESTAMP, description: First event of that activity in the window (UTC).}
  - {name: last_ts, type: TIMESTAMP, description: Last event of that activity in the window (UTC).}
  - {name: cost_usd, type: DOUBLE, description: "Cost carried by those events in USD (sum of -revenue_impact where negative)."}
card: {kind: bar, x: activity, y: [events]}
*/

-- dialect: duckdb
SELECT
    activity,
    count(*) AS events,
    count(*) / sum(count(*)) OVER () AS share,
    min(ts) AS first_ts,
    max(ts) AS last_ts,
    round(sum(CASE WHEN revenue_impact < 0 THEN -revenue_impact ELSE 0 END), 6) AS cost_usd
FROM claude_stream
WHERE ts >= $window_start AND ts < $window_end
GROUP BY activity
ORDER BY events DESC, activity
LIMIT $limit

-- dialect: snowflake
SELECT
    activity AS "activity",
    COUNT(*) AS "events",
    COUNT(*) / SUM(COUNT(*)) OVER () AS "share",
    MIN(ts) AS "first_ts",
    MAX(ts) AS "last_ts",
    ROUND(SUM(IFF(revenue_impact < 0, -revenue_impact, 0)), 6) AS "cost_usd"
FROM claude_stream
WHERE ts >= $window_start AND ts < $window_end
GROUP BY 1
ORDER BY 2 DESC, 1
LIMIT $limit
