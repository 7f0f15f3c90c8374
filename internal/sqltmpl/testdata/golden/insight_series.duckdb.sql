-- insight_series, duckdb, rendered at 2026-03-31T12:00:00Z
-- params: {"agg":"avg","bucket":"day","days":30,"limit":5000,"metric":"p95_latency_ms"}
-- arg 1: time.Time 2026-03-01T12:00:00Z
-- arg 2: time.Time 2026-03-31T12:00:00Z
-- arg 3: string ""
-- arg 4: string ""
-- arg 5: string ""
-- arg 6: string ""
-- arg 7: string "p95_latency_ms"
-- arg 8: int64 5000
-- slot bucket=hour: 'hour'
-- slot bucket=day: 'day'
-- slot bucket=week: 'week'
-- slot bucket=month: 'month'
-- slot agg=avg: avg(num)
-- slot agg=min: min(num)
-- slot agg=max: max(num)
-- slot agg=sum: sum(num)
-- slot agg=last: arg_max(num, ts)
-- slot agg=count: CAST(count(*) AS DOUBLE)
WITH atoms AS (
    SELECT subject, metric, ts, TRY_CAST(value::VARCHAR AS DOUBLE) AS num
    FROM insight_atoms
    WHERE ts >= ? AND ts < ?
      AND (? = '' OR subject = ?)
      AND (? = '' OR starts_with(subject, ?))
      AND metric = ?
)
SELECT
    date_trunc('day', ts) AS bucket,
    subject,
    metric,
    subject || '/' || metric AS series,
    avg(num) AS value,
    count(*) AS points
FROM atoms
WHERE num IS NOT NULL
GROUP BY bucket, subject, metric
ORDER BY bucket, subject, metric
LIMIT ?
