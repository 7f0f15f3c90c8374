-- failures.sql: the latest $4 failed tool calls (success false, or a
-- non-empty error feature), newest first.
SELECT ts, tool, error
FROM (
    SELECT ts,
        coalesce(nullif(f[1], ''), '(unknown)')
            || CASE WHEN coalesce(f[2], '') = '' THEN '' ELSE ' @' || f[2] END AS tool,
        lower(coalesce(f[3], '')) = 'false' OR coalesce(f[4], '') <> '' AS failed,
        coalesce(f[4], '') AS error
    FROM (
        SELECT ts, json_extract_string(feature_json, list_value('tool', 'server', 'success', 'error')) AS f
        FROM ev
        WHERE activity = 'called_tool'
    )
)
WHERE failed
ORDER BY ts DESC
LIMIT $4
