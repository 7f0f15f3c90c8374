/*
name: insight_latest
description: >-
  The latest value of every logged insight (per subject and metric, of any
  time), with when it was logged and how many values there are. Use it for
  "what have I noted about tool X", "which insights exist", "the current
  value of metric Y". Values are JSON text (a number, a string, true/false
  or an object). Numeric trends over time are in insight_series.
reads: >-
  insight_atoms: subject, metric, value, ts (all of them; no window).
timeout: 30s
params:
  - name: subject
    type: string
    optional: true
    description: "Only this subject (exact, e.g. tool:Bash or user). Default all."
  - name: subject_prefix
    type: string
    optional: true
    description: "Only subjects starting with this (e.g. project: for every project). Default all."
  - name: metric
    type: string
    optional: true
    pattern: '^[a-z][a-z0-9_.:-]*$'
    description: "Only this metric (exact, e.g. p95_latency_ms). Default all."
  - name: limit
    type: int
    default: 100
    min: 1
    max: 1000
    description: At most this many insights, most recently updated first.
columns:
  - {name: subject, type: VARCHAR, description: "The insight's subject, e.g. tool:Bash."}
  - {name: metric, type: VARCHAR, description: "The insight's metric, e.g. p95_latency_ms."}
  - {name: value, type: VARCHAR, description: "The latest value as JSON text."}
  - {name: ts, type: TIMESTAMP, description: When the latest value was logged (UTC).}
  - {name: points, type: BIGINT, description: How many values this subject and metric have.}
card: {kind: table}
*/

-- dialect: duckdb
SELECT
    subject,
    metric,
    arg_max(value::VARCHAR, ts) AS value,
    max(ts) AS ts,
    count(*) AS points
FROM insight_atoms
WHERE ($subject = '' OR subject = $subject)
  AND ($subject_prefix = '' OR starts_with(subject, $subject_prefix))
  AND ($metric = '' OR metric = $metric)
GROUP BY subject, metric
ORDER BY ts DESC, subject, metric
LIMIT $limit

-- dialect: snowflake
SELECT
    subject AS "subject",
    metric AS "metric",
    MAX_BY(TO_JSON(value), ts) AS "value",
    MAX(ts) AS "ts",
    COUNT(*) AS "points"
FROM insight_atoms
WHERE ($subject = '' OR subject = $subject)
  AND ($subject_prefix = '' OR STARTSWITH(subject, $subject_prefix))
  AND ($metric = '' OR metric = $metric)
GROUP BY 1, 2
ORDER BY 4 DESC, 1, 2
LIMIT $limit
