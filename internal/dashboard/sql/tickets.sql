-- tickets.sql: the query tickets created in the range, newest first, at
-- most $3 rows. Runs through CustomerQuery (query_tickets holds only the
-- customer's rows); every value is bound:
--   $1 from TIMESTAMP, $2 to TIMESTAMP, $3 limit BIGINT, $4 now TIMESTAMP
-- params is the request as submitted (template or dataset, parameters);
-- result_url is "artifact:<id>" for a result kept in the artifact store
-- (then result_artifact is the id, linked to /artifacts/<id>, while the
-- core still serves that artifact: written and not expired, as in
-- artifacts.sql), else a file path in the core's directory, which is not
-- read.
SELECT ticket_id, template, params::VARCHAR AS params, state, stage, progress, error,
    CASE WHEN starts_with(result_url, 'artifact:') AND EXISTS (
        SELECT 1 FROM artifacts a
        WHERE a.artifact_id = substr(result_url, 10) AND a.sha256 IS NOT NULL AND a.expires_at > $4
    ) THEN substr(result_url, 10) END AS result_artifact,
    created_at, started_at, finished_at, expires_at,
    epoch_ms(finished_at) - epoch_ms(started_at) AS run_ms,
    result_rows, result_bytes, sampled, sample_rate, truncated
FROM query_tickets
WHERE created_at >= $1 AND created_at < $2
ORDER BY created_at DESC, ticket_id
LIMIT $3
