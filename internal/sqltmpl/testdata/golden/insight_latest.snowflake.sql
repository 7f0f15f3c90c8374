-- insight_latest, snowflake, rendered at 2026-03-31T12:00:00Z
-- params: {"limit":100}
-- arg 1: string ""
-- arg 2: string ""
-- arg 3: string ""
-- arg 4: string ""
-- arg 5: string ""
-- arg 6: string ""
-- arg 7: int64 100
SELECT
    subject AS "subject",
    metric AS "metric",
    MAX_BY(TO_JSON(value), ts) AS "value",
    MAX(ts) AS "ts",
    COUNT(*) AS "points"
FROM insight_atoms
WHERE (? = '' OR subject = ?)
  AND (? = '' OR STARTSWITH(subject, ?))
  AND (? = '' OR metric = ?)
GROUP BY 1, 2
ORDER BY 4 DESC, 1, 2
LIMIT ?
