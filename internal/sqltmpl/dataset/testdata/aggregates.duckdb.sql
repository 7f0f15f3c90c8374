-- spec: {"cohort":{"activity":"started_session","occurrence":"all"},"append":[{"activity":"called_tool","relationship":"aggregate_before","aggregate":"count","as":"aggregate_before_called_tool"},{"activity":"called_tool","relationship":"aggregate_after","aggregate":"max","of":"ms","as":"aggregate_after_called_tool"},{"activity":"completed_response","relationship":"aggregate_in_between","aggregate":"sum","of":"revenue_impact","as":"cost"},{"activity":"completed_response","relationship":"aggregate_in_between","aggregate":"avg","of":"tokens","as":"tokens"},{"activity":"called_tool","relationship":"aggregate_in_between","aggregate":"count","of":"error","as":"errors"},{"activity":"called_tool","relationship":"aggregate_all_ever","aggregate":"min","of":"ms","filters":[{"feature":"tool","op":"eq","value":"Bash"}],"as":"fastest_bash"}],"limit":1000}
-- columns: activity_id, ts, customer, aggregate_before_called_tool_count, aggregate_after_called_tool_max, cost_sum, tokens_avg, errors_count, fastest_bash_min
-- args: ["started_session","called_tool","ms","called_tool","completed_response","tokens","completed_response","error","called_tool","ms","called_tool","tool","Bash",1000]
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
  SELECT customer, activity_id, agg_value
  FROM (
    SELECT customer, activity_id, cohort_row,
      count(a_val) OVER (PARTITION BY customer ORDER BY ts, cohort_row DESC ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS agg_value
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
append_2 AS (
  SELECT customer, activity_id, agg_value
  FROM (
    SELECT customer, activity_id, cohort_row,
      max(a_val) OVER (PARTITION BY customer ORDER BY ts DESC, cohort_row DESC ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS agg_value
    FROM (
      SELECT customer, activity_id, ts, 1 AS cohort_row, CAST(NULL AS DOUBLE) AS a_val
      FROM cohort
      UNION ALL
      SELECT s.customer, s.activity_id, s.ts, 0 AS cohort_row, TRY_CAST(json_extract_string(s.feature_json, ?) AS DOUBLE) AS a_val
      FROM claude_stream AS s
      WHERE s.activity = ?
    ) AS u
  ) AS w
  WHERE cohort_row = 1
),
append_3 AS (
  SELECT customer, owner_occ, sum(a_val) AS agg_value
  FROM (
    SELECT customer, cohort_row, a_val,
      max(owner) OVER (PARTITION BY customer ORDER BY ts, cohort_row ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS owner_occ
    FROM (
      SELECT customer, ts, 1 AS cohort_row, occ AS owner, CAST(NULL AS DOUBLE) AS a_val
      FROM cohort_stream
      UNION ALL
      SELECT s.customer, s.ts, 0 AS cohort_row, CAST(NULL AS BIGINT) AS owner, s.revenue_impact AS a_val
      FROM claude_stream AS s
      WHERE s.activity = ?
    ) AS u
  ) AS w
  WHERE cohort_row = 0 AND owner_occ IS NOT NULL
  GROUP BY customer, owner_occ
),
append_4 AS (
  SELECT customer, owner_occ, avg(a_val) AS agg_value
  FROM (
    SELECT customer, cohort_row, a_val,
      max(owner) OVER (PARTITION BY customer ORDER BY ts, cohort_row ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS owner_occ
    FROM (
      SELECT customer, ts, 1 AS cohort_row, occ AS owner, CAST(NULL AS DOUBLE) AS a_val
      FROM cohort_stream
      UNION ALL
      SELECT s.customer, s.ts, 0 AS cohort_row, CAST(NULL AS BIGINT) AS owner, TRY_CAST(json_extract_string(s.feature_json, ?) AS DOUBLE) AS a_val
      FROM claude_stream AS s
      WHERE s.activity = ?
    ) AS u
  ) AS w
  WHERE cohort_row = 0 AND owner_occ IS NOT NULL
  GROUP BY customer, owner_occ
),
append_5 AS (
  SELECT customer, owner_occ, count(a_val) AS agg_value
  FROM (
    SELECT customer, cohort_row, a_val,
      max(owner) OVER (PARTITION BY customer ORDER BY ts, cohort_row ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS owner_occ
    FROM (
      SELECT customer, ts, 1 AS cohort_row, occ AS owner, CAST(NULL AS VARCHAR) AS a_val
      FROM cohort_stream
      UNION ALL
      SELECT s.customer, s.ts, 0 AS cohort_row, CAST(NULL AS BIGINT) AS owner, json_extract_string(s.feature_json, ?) AS a_val
      FROM claude_stream AS s
      WHERE s.activity = ?
    ) AS u
  ) AS w
  WHERE cohort_row = 0 AND owner_occ IS NOT NULL
  GROUP BY customer, owner_occ
),
append_6 AS (
  SELECT s.customer, min(TRY_CAST(json_extract_string(s.feature_json, ?) AS DOUBLE)) AS agg_value
  FROM claude_stream AS s
  WHERE s.activity = ?
    AND json_extract_string(s.feature_json, ?) = ?
  GROUP BY s.customer
)
SELECT c.activity_id AS "activity_id", c.ts AS "ts", c.customer AS "customer",
  x1.agg_value AS "aggregate_before_called_tool_count",
  x2.agg_value AS "aggregate_after_called_tool_max",
  x3.agg_value AS "cost_sum",
  x4.agg_value AS "tokens_avg",
  coalesce(x5.agg_value, 0) AS "errors_count",
  x6.agg_value AS "fastest_bash_min"
FROM cohort AS c
LEFT JOIN append_1 AS x1 ON x1.customer = c.customer AND x1.activity_id = c.activity_id
LEFT JOIN append_2 AS x2 ON x2.customer = c.customer AND x2.activity_id = c.activity_id
LEFT JOIN append_3 AS x3 ON x3.customer = c.customer AND x3.owner_occ = c.occ
LEFT JOIN append_4 AS x4 ON x4.customer = c.customer AND x4.owner_occ = c.occ
LEFT JOIN append_5 AS x5 ON x5.customer = c.customer AND x5.owner_occ = c.occ
LEFT JOIN append_6 AS x6 ON x6.customer = c.customer
ORDER BY c.customer, c.ts, c.activity_id
LIMIT ?
