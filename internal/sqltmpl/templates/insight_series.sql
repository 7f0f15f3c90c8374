/*
name: insight_series
description: >-
  A time series of logged insights: for one metric, per subject, the
  numeric values aggregated per time bucket (hour, day, week or month) with avg,
  min, max, sum, last or count. Use it for "how did the p95 latency I noted
  for Bash change", "my daily_usd insights per week", "trend of metric X".
  The latest value of every insight (numbers or not) is insight_latest.
reads: >-
  insight_atoms: subject, metric, ts and value. Only numeric values are
  aggregated; strings, booleans and objects are skipped. Buckets without
  values are absent.
timeout: 30s
window: {days: 30}
bucket: {default: day}
params:
  - name: metric
    type: string
    pattern: '^[a-z][a-z0-9_.:-]*$'
    description: "The metric (exact, e.g. p95_latency_ms; insight_latest lists the metrics there are). Required: values of different metrics do not combine."
  - name: subject
    type: string
    optional: true
    description: "Only this subject (exact, e.g. tool:Bash). Default all."
  - name: subject_prefix
    type: string
    optional: true
    description: "Only subjects starting with this (e.g. tool: for every tool). Default all."
  - name: agg
    type: enum
    default: avg
    values: [avg, min, max, sum, last, count]
    description: "How a bucket's values combine: avg, min, max, sum, last (the latest by ts) or count."
    fragments:
      duckdb:
        avg: "avg(num)"
        min: "min(num)"
        max: "max(num)"
        sum: "sum(num)"
        last: "arg_max(num, ts)"
        count: "CAST(count(*) AS DOUBLE)"
      snowflake:
        avg: "AVG(num)"
        min: "MIN(num)"
        max: "MAX(num)"
        sum: "SUM(num)"
        last: "MAX_BY(num, ts)"
        count: "CAST(COUNT(*) AS DOUBLE)"
  - name: limit
    type: int
    default: 5000
    min: 1
    max: 10000
    description: At most this many rows (bucket and series), earliest buckets first.
columns:
  - {name: bucket, type: TIMESTAMP, description: "Start of the time bucket (UTC)."}
  - {name: subject, type: VARCHAR, description: "The insight's subject, e.g. tool:Bash."}
  - {name: metric, type: VARCHAR, description: "The insight's metric, e.g. p95_latency_ms."}
  - {name: series, type: VARCHAR, description: "subject and metric as one series name: subject/metric."}
  - {name: value, type: DOUBLE, description: "The bucket's values combined by agg."}
  - {name: points, type: BIGINT, description: Numeric values in the bucket.}
card: {kind: line, x: bucket, y: [value], series: series}
*/

-- dialect: duckdb
WITH atoms AS (
    SELECT subject, metric, ts, TRY_CAST(value::VARCHAR AS DOUBLE) AS num
    FROM insight_atoms
    WHERE ts >= $window_start AND ts < $window_end
      AND ($subject = '' OR subject = $subject)
      AND ($subject_prefix = '' OR starts_with(subject, $subject_prefix))
      AND metric = $metric
)
SELECT
    date_trunc(/* SLOT: bucket */'day'/* END */, ts) AS bucket,
    subject,
    metric,
    subject || '/' || metric AS series,
    /* SLOT: agg */avg(num)/* END */ AS value,
    count(*) AS points
FROM atoms
WHERE num IS NOT NULL
GROUP BY bucket, subject, metric
ORDER BY bucket, subject, metric
LIMIT $limit

-- dialect: snowflake
WITH atoms AS (
    SELECT subject, metric, ts,
        IFF(TYPEOF(value) IN ('INTEGER', 'DECIMAL', 'DOUBLE'), value::float, NULL) AS num
    FROM insight_atoms
    WHERE ts >= $window_start AND ts < $window_end
      AND ($subject = '' OR subject = $subject)
      AND ($subject_prefix = '' OR STARTSWITH(subject, $subject_prefix))
      AND metric = $metric
)
SELECT
    DATE_TRUNC(/* SLOT: bucket */'day'/* END */, ts) AS "bucket",
    subject AS "subject",
    metric AS "metric",
    subject || '/' || metric AS "series",
    /* SLOT: agg */AVG(num)/* END */ AS "value",
    COUNT(*) AS "points"
FROM atoms
WHERE num IS NOT NULL
GROUP BY 1, 2, 3
ORDER BY 1, 2, 3
LIMIT $limit
