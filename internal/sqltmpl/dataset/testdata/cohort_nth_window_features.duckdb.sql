-- spec: {"cohort":{"activity":"called_tool","occurrence":"nth","nth":3,"from":"2026-03-01T00:00:00Z","to":"2026-03-31T22:00:00Z","features":["tool","ms","revenue_impact","link"]},"limit":50}
-- columns: activity_id, ts, customer, tool, ms, revenue_impact, link
-- args: ["called_tool",3,"2026-03-01T00:00:00Z","2026-03-31T22:00:00Z","tool","ms",50]
WITH cohort_stream AS (
  SELECT s.customer, s.activity_id, s.ts, s._activity_occurrence AS occ,
    s._activity_repeated_at AS next_ts, s.feature_json, s.revenue_impact, s.link
  FROM claude_stream AS s
  WHERE s.activity = ?
),
cohort AS (
  SELECT customer, activity_id, ts, occ, feature_json, revenue_impact, link
  FROM cohort_stream
  WHERE occ = ?
    AND ts >= ?
    AND ts < ?
)
SELECT c.activity_id AS "activity_id", c.ts AS "ts", c.customer AS "customer",
  json_extract_string(c.feature_json, ?) AS "tool",
  json_extract_string(c.feature_json, ?) AS "ms",
  c.revenue_impact AS "revenue_impact",
  c.link AS "link"
FROM cohort AS c
ORDER BY c.customer, c.ts, c.activity_id
LIMIT ?
