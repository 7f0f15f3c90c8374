-- tickets.sql: the query tickets created in the range, newest first, at
-- most $3 rows. Runs through CustomerQuery (query_tickets holds only the
-- customer's rows); every value is bound:
--   $1 from TIMESTAMP, $2 to TIMESTAMP, $3 limit BIGINT
SELECT ticket_id, template, params::VARCHAR AS params, state, progress, error,
    created_at, started_at, finished_at,
    epoch_ms(finished_at) - epoch_ms(started_at) AS run_ms,
    result_rows, result_bytes, result_url
FROM query_tickets
WHERE created_at >= $1 AND created_at < $2
ORDER BY created_at DESC, ticket_id
LIMIT $3
