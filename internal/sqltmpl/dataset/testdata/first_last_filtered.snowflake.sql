-- spec: {"cohort":{"activity":"submitted_prompt","occurrence":"all"},"append":[{"activity":"called_tool","relationship":"first_ever","filters":[{"feature":"tool","op":"eq","value":"Bash"}],"as":"first_bash"},{"activity":"called_tool","relationship":"last_ever","filters":[{"feature":"tool","op":"eq","value":"Bash"}],"as":"last_bash"},{"activity":"called_tool","relationship":"first_before","filters":[{"feature":"tool","op":"eq","value":"Bash"}],"as":"fb"},{"activity":"called_tool","relationship":"last_after","filters":[{"feature":"tool","op":"eq","value":"Bash"}],"as":"la"},{"activity":"called_tool","relationship":"first_after","filters":[{"feature":"ms","op":"gt","value":1000}],"as":"slow"}],"limit":1000}
-- columns: activity_id, ts, customer, first_bash_ts, last_bash_ts, fb_ts, la_ts, slow_ts
-- args: ["submitted_prompt","called_tool","tool","Bash","called_tool","tool","Bash","called_tool","tool","Bash","called_tool","tool","Bash","called_tool","ms",1000,"called_tool","called_tool","called_tool","called_tool","called_tool",1000]
WITH cohort_stream AS (
  SELECT s.customer, s.activity_id, s.ts, s._activity_occurrence AS occ,
    s._activity_repeated_at AS next_ts, s.feature_json, s.revenue_impact, s.link
  FROM claude_stream AS s
  WHERE s.activity = ?
),
cohort AS (
  SELECT customer, activity_id, ts, occ, feature_json, revenue_impact, link
  FROM cohort_stream
),
append_1 AS (
  SELECT s.customer, min(s._activity_occurrence) AS match_occ
  FROM claude_stream AS s
  WHERE s.activity = ?
    AND GET(s.feature_json, ?)::VARCHAR = ?
  GROUP BY s.customer
),
append_2 AS (
  SELECT s.customer, max(s._activity_occurrence) AS match_occ
  FROM claude_stream AS s
  WHERE s.activity = ?
    AND GET(s.feature_json, ?)::VARCHAR = ?
  GROUP BY s.customer
),
append_3 AS (
  SELECT s.customer, min(s._activity_occurrence) AS match_occ
  FROM claude_stream AS s
  WHERE s.activity = ?
    AND GET(s.feature_json, ?)::VARCHAR = ?
  GROUP BY s.customer
),
append_4 AS (
  SELECT s.customer, max(s._activity_occurrence) AS match_occ
  FROM claude_stream AS s
  WHERE s.activity = ?
    AND GET(s.feature_json, ?)::VARCHAR = ?
  GROUP BY s.customer
),
append_5 AS (
  SELECT customer, activity_id, match_occ
  FROM (
    SELECT customer, activity_id, cohort_row,
      min(a_val) OVER (PARTITION BY customer ORDER BY ts DESC, cohort_row DESC ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS match_occ
    FROM (
      SELECT customer, activity_id, ts, 1 AS cohort_row, CAST(NULL AS BIGINT) AS a_val
      FROM cohort
      UNION ALL
      SELECT s.customer, s.activity_id, s.ts, 0 AS cohort_row, s._activity_occurrence AS a_val
      FROM claude_stream AS s
      WHERE s.activity = ?
        AND TRY_TO_DOUBLE(GET(s.feature_json, ?)::VARCHAR) > ?
    ) AS u
  ) AS w
  WHERE cohort_row = 1
)
SELECT c.activity_id AS "activity_id", c.ts AS "ts", c.customer AS "customer",
  a1.ts AS "first_bash_ts",
  a2.ts AS "last_bash_ts",
  a3.ts AS "fb_ts",
  a4.ts AS "la_ts",
  a5.ts AS "slow_ts"
FROM cohort AS c
LEFT JOIN append_1 AS x1 ON x1.customer = c.customer
LEFT JOIN claude_stream AS a1 ON a1.customer = c.customer
  AND a1.activity = ?
  AND a1._activity_occurrence = x1.match_occ
LEFT JOIN append_2 AS x2 ON x2.customer = c.customer
LEFT JOIN claude_stream AS a2 ON a2.customer = c.customer
  AND a2.activity = ?
  AND a2._activity_occurrence = x2.match_occ
LEFT JOIN append_3 AS x3 ON x3.customer = c.customer
LEFT JOIN claude_stream AS a3 ON a3.customer = c.customer
  AND a3.activity = ?
  AND a3._activity_occurrence = x3.match_occ
  AND a3.ts < c.ts
LEFT JOIN append_4 AS x4 ON x4.customer = c.customer
LEFT JOIN claude_stream AS a4 ON a4.customer = c.customer
  AND a4.activity = ?
  AND a4._activity_occurrence = x4.match_occ
  AND a4.ts > c.ts
LEFT JOIN append_5 AS x5 ON x5.customer = c.customer AND x5.activity_id = c.activity_id
LEFT JOIN claude_stream AS a5 ON a5.customer = c.customer
  AND a5.activity = ?
  AND a5._activity_occurrence = x5.match_occ
ORDER BY c.customer, c.ts, c.activity_id
LIMIT ?
