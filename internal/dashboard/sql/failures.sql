-- failures.sql: the latest $4 failed tool calls (success false, or a
-- non-empty error feature), newest first.
SELECT ts, tool, error
FROM (
    SELECT ts,
        coalesce(nullif(f.tool, ''), '(unknown)')
            || CASE WHEN coalesce(f.server, '') = '' THEN '' ELSE ' @' || f.server END AS tool,
        lower(coalesce(f.success, '')) = 'false' OR coalesce(f.error, '') <> '' AS failed,
        coalesce(f.error, '') AS error
    FROM (
        SELECT ts, json_transform(feature_json, '{"tool": "VARCHAR", "server": "VARCHAR", "success": "VARCHAR", "error": "VARCHAR"}') AS f
        FROM ev
        WHERE activity = 'called_tool'
    )
)
WHERE failed
ORDER BY ts DESC
LIMIT $4
