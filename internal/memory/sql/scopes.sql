-- scopes.sql: the scopes a customer's recent events and insights name, most
-- recently seen first, for the error that answers an unknown scope. Only on
-- that error path.
--   $1 read_since  TIMESTAMP  as events.sql
--   $2 max_events  BIGINT     as events.sql
--   $3 max_scopes  BIGINT
WITH base AS MATERIALIZED (
    SELECT ts, feature_json
    FROM claude_stream
    WHERE ts >= $1
    ORDER BY ts DESC, activity_id DESC
    LIMIT $2
),
named AS (
    SELECT unnest(list_value(f[1], f[2], f[3])) AS scope, ts
    FROM (SELECT ts, json_extract_string(feature_json, list_value('project', 'workspace', 'cwd')) AS f FROM base)
    UNION ALL
    SELECT substr(subject, 9), ts FROM insight_atoms WHERE starts_with(subject, 'project:')
)
SELECT scope, max(ts) AS last_seen
FROM named
WHERE scope IS NOT NULL AND scope <> ''
GROUP BY scope
ORDER BY last_seen DESC, scope
LIMIT $3
