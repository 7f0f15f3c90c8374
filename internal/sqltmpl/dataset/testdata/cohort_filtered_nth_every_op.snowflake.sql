-- spec: {"cohort":{"activity":"called_tool","occurrence":"nth","nth":2,"filters":[{"feature":"cmd","op":"contains","value":"git "},{"feature":"link","op":"contains","value":"https://"},{"feature":"ms","op":"gt","value":10},{"feature":"ms","op":"gte","value":10.5},{"feature":"ms","op":"in","value":[1,2]},{"feature":"ms","op":"lt","value":10000},{"feature":"ok","op":"eq","value":true},{"feature":"revenue_impact","op":"lt","value":-0.5},{"feature":"server","op":"lte","value":"m"},{"feature":"tool","op":"eq","value":"Bash"},{"feature":"tool","op":"in","value":["Bash","Edit","Read"]},{"feature":"tool","op":"ne","value":"Read"}]},"limit":1000}
-- columns: activity_id, ts, customer
-- args: ["called_tool","cmd","git ","https://","ms",10,"ms",10.5,"ms",1,2,"ms",10000,"ok","true",-0.5,"server","m","tool","Bash","tool","Bash","Edit","Read","tool","Read",2,1000]
WITH cohort_stream AS (
  SELECT s.customer, s.activity_id, s.ts, s._activity_occurrence AS occ,
    s._activity_repeated_at AS next_ts, s.feature_json, s.revenue_impact, s.link
  FROM claude_stream AS s
  WHERE s.activity = ?
    AND contains(GET(s.feature_json, ?)::VARCHAR, ?)
    AND contains(s.link, ?)
    AND TRY_TO_DOUBLE(GET(s.feature_json, ?)::VARCHAR) > ?
    AND TRY_TO_DOUBLE(GET(s.feature_json, ?)::VARCHAR) >= ?
    AND TRY_TO_DOUBLE(GET(s.feature_json, ?)::VARCHAR) IN (?, ?)
    AND TRY_TO_DOUBLE(GET(s.feature_json, ?)::VARCHAR) < ?
    AND GET(s.feature_json, ?)::VARCHAR = ?
    AND s.revenue_impact < ?
    AND GET(s.feature_json, ?)::VARCHAR <= ?
    AND GET(s.feature_json, ?)::VARCHAR = ?
    AND GET(s.feature_json, ?)::VARCHAR IN (?, ?, ?)
    AND GET(s.feature_json, ?)::VARCHAR IS DISTINCT FROM ?
),
cohort AS (
  SELECT customer, activity_id, ts, occ, feature_json, revenue_impact, link
  FROM (
    SELECT customer, activity_id, ts, occ, feature_json, revenue_impact, link,
      row_number() OVER (PARTITION BY customer ORDER BY occ) AS pick
    FROM cohort_stream
  ) AS r
  WHERE pick = ?
)
SELECT c.activity_id AS "activity_id", c.ts AS "ts", c.customer AS "customer"
FROM cohort AS c
ORDER BY c.customer, c.ts, c.activity_id
LIMIT ?
