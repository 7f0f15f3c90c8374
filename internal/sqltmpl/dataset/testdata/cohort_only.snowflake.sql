-- spec: {"cohort":{"activity":"submitted_prompt","occurrence":"all"},"limit":1000}
-- columns: activity_id, ts, customer
-- args: ["submitted_prompt",1000]
WITH cohort_stream AS (
  SELECT s.customer, s.activity_id, s.ts, s._activity_occurrence AS occ,
    s._activity_repeated_at AS next_ts, s.feature_json, s.revenue_impact, s.link
  FROM claude_stream AS s
  WHERE s.activity = ?
),
cohort AS (
  SELECT customer, activity_id, ts, occ, feature_json, revenue_impact, link
  FROM cohort_stream
)
SELECT c.activity_id AS "activity_id", c.ts AS "ts", c.customer AS "customer"
FROM cohort AS c
ORDER BY c.customer, c.ts, c.activity_id
LIMIT ?
