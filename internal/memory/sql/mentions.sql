-- mentions.sql: whether any event older than the bounded read names the
-- scope. Only on the unknown-scope path, when the bounded read was cut and
-- neither it nor an insight named the scope: it may scan the customer's
-- whole history (~150 ms per million events), and stops at the first match.
--   $1 scope   VARCHAR
--   $2 before  TIMESTAMP  only events up to this (the bounded read's start)
SELECT count(*) AS n FROM (
    SELECT 1
    FROM (
        SELECT json_extract_string(feature_json, list_value('project', 'workspace', 'cwd')) AS f
        FROM claude_stream
        WHERE ts <= $2
    )
    WHERE f[1] = $1 OR f[2] = $1 OR f[3] = $1
        OR ends_with(f[3], '/' || $1) OR ends_with(f[3], '\' || $1)
    LIMIT 1
)
