-- activity.sql: events per time bucket and activity, the $5 most frequent
-- activities by name and the rest summed as 'other'.
--   $4 bucket  VARCHAR  hour, day or week (date_trunc's part)
--   $5 series  BIGINT   activities drawn by name
, counts AS (
    SELECT date_trunc($4, ts) AS bucket, activity, count(*) AS n
    FROM ev
    GROUP BY ALL
),
top AS (
    SELECT activity FROM counts GROUP BY activity ORDER BY sum(n) DESC, activity LIMIT $5
)
SELECT bucket,
    CASE WHEN activity IN (SELECT activity FROM top) THEN activity ELSE 'other' END AS activity,
    sum(n) AS events
FROM counts
GROUP BY ALL
ORDER BY bucket, activity
