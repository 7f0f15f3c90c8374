-- tickets.sql: the query tickets created in the range, newest first, at
-- most $3 rows. Runs through CustomerQuery (query_tickets holds only the
-- customer's rows); every value is bound:
--   $1 from TIMESTAMP, $2 to TIMESTAMP, $3 limit BIGINT
-- params is the request as submitted (template or dataset, parameters);
-- result_url, the result file's path in the core's directory, is not read.
SELECT ticket_id, template, params::VARCHAR AS params, state, stage, progress, error,
    created_at, started_at, finished_at, expires_at,
    epoch_ms(finished_at) - epoch_ms(started_at) AS run_ms,
    result_rows, result_bytes, sampled, sample_rate, truncated
FROM query_tickets
WHERE created_at >= $1 AND created_at < $2
ORDER BY created_at DESC, ticket_id
LIMIT $3
