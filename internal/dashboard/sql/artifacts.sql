-- artifacts.sql: the artifacts (rendered cards, result files) created in
-- the range, newest first, at most $3 rows; as tickets.sql.
SELECT artifact_id, url, content_type, size_bytes, created_at, expires_at
FROM artifacts
WHERE created_at >= $1 AND created_at < $2
ORDER BY created_at DESC, artifact_id
LIMIT $3
