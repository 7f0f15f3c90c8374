-- cost_by_model.sql: per model, responses, tokens and cost, costliest
-- first, at most $4 rows.
SELECT model,
    count(*) FILTER (WHERE activity = 'completed_response') AS responses,
    coalesce(sum(input_tokens), 0) AS input_tokens,
    coalesce(sum(output_tokens), 0) AS output_tokens,
    coalesce(-sum(revenue_impact), 0) AS cost_usd
FROM (
    SELECT activity, revenue_impact,
        coalesce(nullif(f.model, ''), '(no model)') AS model,
        TRY_CAST(f.input_tokens AS BIGINT) AS input_tokens,
        TRY_CAST(f.output_tokens AS BIGINT) AS output_tokens
    FROM (
        SELECT activity, revenue_impact,
            json_transform(feature_json, '{"model": "VARCHAR", "input_tokens": "VARCHAR", "output_tokens": "VARCHAR"}') AS f
        FROM ev
        WHERE revenue_impact IS NOT NULL OR activity = 'completed_response'
    )
)
GROUP BY model
ORDER BY cost_usd DESC, model
LIMIT $4
