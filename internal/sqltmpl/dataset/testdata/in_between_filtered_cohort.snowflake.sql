-- spec: {"cohort":{"activity":"submitted_prompt","occurrence":"all","filters":[{"feature":"model","op":"eq","value":"opus"}]},"append":[{"activity":"called_tool","relationship":"aggregate_in_between","aggregate":"count","as":"calls"},{"activity":"called_tool","relationship":"last_in_between","features":["tool"],"filters":[{"feature":"tool","op":"ne","value":"Read"}],"as":"last_tool"}],"limit":1000}
-- columns: activity_id, ts, customer, calls_count, last_tool_ts, last_tool_tool
-- args: ["submitted_prompt","model","opus","called_tool","called_tool","tool","Read","tool","called_tool",1000]
WITH cohort_stream AS (
  SELECT s.customer, s.activity_id, s.ts, s._activity_occurrence AS occ,
    s._activity_repeated_at AS next_ts, s.feature_json, s.revenue_impact, s.link
  FROM claude_stream AS s
  WHERE s.activity = ?
    AND GET(s.feature_json, ?)::VARCHAR = ?
),
cohort AS (
  SELECT customer, activity_id, ts, occ, feature_json, revenue_impact, link
  FROM cohort_stream
),
append_1 AS (
  SELECT customer, owner_occ, count(a_val) AS agg_value
  FROM (
    SELECT customer, cohort_row, a_val,
      max(owner) OVER (PARTITION BY customer ORDER BY ts, cohort_row ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS owner_occ
    FROM (
      SELECT customer, ts, 1 AS cohort_row, occ AS owner, CAST(NULL AS BIGINT) AS a_val
      FROM cohort_stream
      UNION ALL
      SELECT s.customer, s.ts, 0 AS cohort_row, CAST(NULL AS BIGINT) AS owner, s._activity_occurrence AS a_val
      FROM claude_stream AS s
      WHERE s.activity = ?
    ) AS u
  ) AS w
  WHERE cohort_row = 0 AND owner_occ IS NOT NULL
  GROUP BY customer, owner_occ
),
append_2 AS (
  SELECT customer, owner_occ, max(a_val) AS match_occ
  FROM (
    SELECT customer, cohort_row, a_val,
      max(owner) OVER (PARTITION BY customer ORDER BY ts, cohort_row ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS owner_occ
    FROM (
      SELECT customer, ts, 1 AS cohort_row, occ AS owner, CAST(NULL AS BIGINT) AS a_val
      FROM cohort_stream
      UNION ALL
      SELECT s.customer, s.ts, 0 AS cohort_row, CAST(NULL AS BIGINT) AS owner, s._activity_occurrence AS a_val
      FROM claude_stream AS s
      WHERE s.activity = ?
        AND GET(s.feature_json, ?)::VARCHAR IS DISTINCT FROM ?
    ) AS u
  ) AS w
  WHERE cohort_row = 0 AND owner_occ IS NOT NULL
  GROUP BY customer, owner_occ
)
SELECT c.activity_id AS "activity_id", c.ts AS "ts", c.customer AS "customer",
  coalesce(x1.agg_value, 0) AS "calls_count",
  a2.ts AS "last_tool_ts",
  GET(a2.feature_json, ?)::VARCHAR AS "last_tool_tool"
FROM cohort AS c
LEFT JOIN append_1 AS x1 ON x1.customer = c.customer AND x1.owner_occ = c.occ
LEFT JOIN append_2 AS x2 ON x2.customer = c.customer AND x2.owner_occ = c.occ
LEFT JOIN claude_stream AS a2 ON a2.customer = c.customer
  AND a2.activity = ?
  AND a2._activity_occurrence = x2.match_occ
ORDER BY c.customer, c.ts, c.activity_id
LIMIT ?
