-- insight_latest, duckdb, rendered at 2026-03-31T12:00:00Z
-- params: {"limit":100}
-- arg 1: string ""
-- arg 2: string ""
-- arg 3: string ""
-- arg 4: string ""
-- arg 5: string ""
-- arg 6: string ""
-- arg 7: int64 100
SELECT
    subject,
    metric,
    arg_max(value::VARCHAR, ts) AS value,
    max(ts) AS ts,
    count(*) AS points
FROM insight_atoms
WHERE (? = '' OR subject = ?)
  AND (? = '' OR starts_with(subject, ?))
  AND (? = '' OR metric = ?)
GROUP BY subject, metric
ORDER BY ts DESC, subject, metric
LIMIT ?
