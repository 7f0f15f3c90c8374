-- spec: {"cohort":{"activity":"submitted_prompt","occurrence":"all","features":["model"]},"append":[{"activity":"called_tool","relationship":"first_ever","features":["tool"],"as":"first_ever_called_tool"},{"activity":"called_tool","relationship":"last_ever","as":"last_ever_called_tool"},{"activity":"called_tool","relationship":"first_before","as":"first_before_called_tool"},{"activity":"called_tool","relationship":"last_before","features":["tool","revenue_impact"],"as":"last_before_called_tool"},{"activity":"called_tool","relationship":"first_after","as":"first_after_called_tool"},{"activity":"called_tool","relationship":"last_after","as":"last_after_called_tool"},{"activity":"completed_response","relationship":"first_in_between","features":["tokens"],"as":"response"},{"activity":"completed_response","relationship":"last_in_between","as":"last_response"}],"limit":1000}
-- columns: activity_id, ts, customer, model, first_ever_called_tool_ts, first_ever_called_tool_tool, last_ever_called_tool_ts, first_before_called_tool_ts, last_before_called_tool_ts, last_before_called_tool_tool, last_before_called_tool_revenue_impact, first_after_called_tool_ts, last_after_called_tool_ts, response_ts, response_tokens, last_response_ts
-- args: ["submitted_prompt","called_tool","called_tool","completed_response","completed_response","model","tool","tool","tokens","called_tool","called_tool","called_tool","called_tool","called_tool","called_tool","completed_response","completed_response",1000]
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
append_4 AS (
  SELECT customer, activity_id, match_occ
  FROM (
    SELECT customer, activity_id, cohort_row,
      max(a_val) OVER (PARTITION BY customer ORDER BY ts, cohort_row DESC ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS match_occ
    FROM (
      SELECT customer, activity_id, ts, 1 AS cohort_row, CAST(NULL AS BIGINT) AS a_val
      FROM cohort
      UNION ALL
      SELECT s.customer, s.activity_id, s.ts, 0 AS cohort_row, s._activity_occurrence AS a_val
      FROM claude_stream AS s
      WHERE s.activity = ?
    ) AS u
  ) AS w
  WHERE cohort_row = 1
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
    ) AS u
  ) AS w
  WHERE cohort_row = 1
),
append_7 AS (
  SELECT customer, owner_occ, min(a_val) AS match_occ
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
append_8 AS (
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
    ) AS u
  ) AS w
  WHERE cohort_row = 0 AND owner_occ IS NOT NULL
  GROUP BY customer, owner_occ
)
SELECT c.activity_id AS "activity_id", c.ts AS "ts", c.customer AS "customer",
  json_extract_string(c.feature_json, ?) AS "model",
  a1.ts AS "first_ever_called_tool_ts",
  json_extract_string(a1.feature_json, ?) AS "first_ever_called_tool_tool",
  a2.ts AS "last_ever_called_tool_ts",
  a3.ts AS "first_before_called_tool_ts",
  a4.ts AS "last_before_called_tool_ts",
  json_extract_string(a4.feature_json, ?) AS "last_before_called_tool_tool",
  a4.revenue_impact AS "last_before_called_tool_revenue_impact",
  a5.ts AS "first_after_called_tool_ts",
  a6.ts AS "last_after_called_tool_ts",
  a7.ts AS "response_ts",
  json_extract_string(a7.feature_json, ?) AS "response_tokens",
  a8.ts AS "last_response_ts"
FROM cohort AS c
LEFT JOIN claude_stream AS a1 ON a1.customer = c.customer
  AND a1.activity = ?
  AND a1._activity_occurrence = 1
LEFT JOIN claude_stream AS a2 ON a2.customer = c.customer
  AND a2.activity = ?
  AND a2._activity_repeated_at IS NULL
LEFT JOIN claude_stream AS a3 ON a3.customer = c.customer
  AND a3.activity = ?
  AND a3._activity_occurrence = 1
  AND a3.ts < c.ts
LEFT JOIN append_4 AS x4 ON x4.customer = c.customer AND x4.activity_id = c.activity_id
LEFT JOIN claude_stream AS a4 ON a4.customer = c.customer
  AND a4.activity = ?
  AND a4._activity_occurrence = x4.match_occ
LEFT JOIN append_5 AS x5 ON x5.customer = c.customer AND x5.activity_id = c.activity_id
LEFT JOIN claude_stream AS a5 ON a5.customer = c.customer
  AND a5.activity = ?
  AND a5._activity_occurrence = x5.match_occ
LEFT JOIN claude_stream AS a6 ON a6.customer = c.customer
  AND a6.activity = ?
  AND a6._activity_repeated_at IS NULL
  AND a6.ts > c.ts
LEFT JOIN append_7 AS x7 ON x7.customer = c.customer AND x7.owner_occ = c.occ
LEFT JOIN claude_stream AS a7 ON a7.customer = c.customer
  AND a7.activity = ?
  AND a7._activity_occurrence = x7.match_occ
LEFT JOIN append_8 AS x8 ON x8.customer = c.customer AND x8.owner_occ = c.occ
LEFT JOIN claude_stream AS a8 ON a8.customer = c.customer
  AND a8.activity = ?
  AND a8._activity_occurrence = x8.match_occ
ORDER BY c.customer, c.ts, c.activity_id
LIMIT ?
