-- cost_by_day.sql: cost per time bucket and model (the model feature of
-- the event carrying the cost), the $5 costliest models by name and the
-- rest summed as 'other'.
--   $4 bucket  VARCHAR  hour, day or week
--   $5 series  BIGINT   models drawn by name
, c AS (
    SELECT date_trunc($4, ts) AS bucket,
        coalesce(nullif(json_extract_string(feature_json, 'model'), ''), '(no model)') AS model,
        -revenue_impact AS cost
    FROM ev
    WHERE revenue_impact IS NOT NULL
),
top AS (
    SELECT model FROM c GROUP BY model ORDER BY sum(cost) DESC, model LIMIT $5
)
SELECT bucket,
    CASE WHEN model IN (SELECT model FROM top) THEN model ELSE 'other' END AS model,
    sum(cost) AS cost_usd
FROM c
GROUP BY ALL
ORDER BY bucket, model
