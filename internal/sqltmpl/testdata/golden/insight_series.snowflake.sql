-- insight_series, snowflake, rendered at 2026-03-31T12:00:00Z
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
-- slot agg=avg: AVG(num)
-- slot agg=min: MIN(num)
-- slot agg=max: MAX(num)
-- slot agg=sum: SUM(num)
-- slot agg=last: MAX_BY(num, ts)
-- slot agg=count: CAST(COUNT(*) AS DOUBLE)
WITH atoms AS (
    SELECT subject, metric, ts,
        IFF(TYPEOF(value) IN ('INTEGER', 'DECIMAL', 'DOUBLE'), value::float, NULL) AS num
    FROM insight_atoms
    WHERE ts >= ? AND ts < ?
      AND (? = '' OR subject = ?)
      AND (? = '' OR STARTSWITH(subject, ?))
      AND metric = ?
)
SELECT
    DATE_TRUNC('day', ts) AS "bucket",
    subject AS "subject",
    metric AS "metric",
    subject || '/' || metric AS "series",
    AVG(num) AS "value",
    COUNT(*) AS "points"
FROM atoms
WHERE num IS NOT NULL
GROUP BY 1, 2, 3
ORDER BY 1, 2, 3
LIMIT ?
