-- 0005: what the artifact store keeps about an artifact besides 0001's columns.
--
-- url holds the blob's key relative to the artifact store's bucket (not a
-- fetchable URL: the core serves an artifact at /artifacts/{artifact_id}).
-- name is the file name offered on download (may be NULL), kind says what
-- the artifact is (card_png, card_svg, query_result, ...), sha256 is the hex
-- digest of the content and the HTTP ETag; it is NULL while the blob is being
-- written, and such a row is never served (see warehouse.ArtifactRow).
ALTER TABLE artifacts ADD COLUMN name VARCHAR;
ALTER TABLE artifacts ADD COLUMN kind VARCHAR;
ALTER TABLE artifacts ADD COLUMN sha256 VARCHAR;
