-- artifacts.sql: the artifacts (rendered cards, result files) created in
-- the range, newest first, at most $3 rows; as tickets.sql. A row without
-- sha256 is still being written and is never served, so it is not listed;
-- nor is one that has expired ($4 is now): the core no longer serves it,
-- though the sweep (every few minutes) may not have deleted it yet.
-- url is the blob's key, not an address: the core serves an artifact at
-- /artifacts/{artifact_id}.
SELECT artifact_id, name, kind, content_type, size_bytes, created_at, expires_at
FROM artifacts
WHERE created_at >= $1 AND created_at < $2 AND sha256 IS NOT NULL AND expires_at > $4
ORDER BY created_at DESC, artifact_id
LIMIT $3
