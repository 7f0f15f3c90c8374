-- artifacts.sql: the artifacts (rendered cards, result files) created in
-- the range, newest first, at most $3 rows; as tickets.sql. A row without
-- sha256 is still being written and is never served, so it is not listed.
-- url is the blob's key, not an address: the core serves an artifact at
-- /artifacts/{artifact_id}.
SELECT artifact_id, name, kind, content_type, size_bytes, created_at, expires_at
FROM artifacts
WHERE created_at >= $1 AND created_at < $2 AND sha256 IS NOT NULL
ORDER BY created_at DESC, artifact_id
LIMIT $3
