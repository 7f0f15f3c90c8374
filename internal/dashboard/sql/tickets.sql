-- tickets.sql: the query tickets created in the range, newest first, at
-- most $3 rows. Runs through CustomerQuery (query_tickets holds only the
-- customer's rows); every value is bound:
--   $1 from TIMESTAMP, $2 to TIMESTAMP, $3 limit BIGINT
-- params is the request as submitted (template or dataset, parameters);
-- result_url is "artifact:<id>" for a result kept in the artifact store
-- (then result_artifact is the id, linked to /artifacts/<id>), else a file
-- path in the core's directory, which is not read.
SELECT ticket_id, template, params::VARCHAR AS params, state, stage, progress, error,
    CASE WHEN starts_with(result_url, 'artifact:') THEN substr(result_url, 10) END AS result_artifact,
    created_at, started_at, finished_at, expires_at,
    epoch_ms(finished_at) - epoch_ms(started_at) AS run_ms,
    result_rows, result_bytes, sampled, sample_rate, truncated
FROM query_tickets
WHERE created_at >= $1 AND created_at < $2
ORDER BY created_at DESC, ticket_id
LIMIT $3
