-- tool_calls.sql: tool calls per time bucket and tool, the $5 most called
-- tools by name (tool @server) and the rest summed as 'other'.
--   $4 bucket  VARCHAR  hour, day or week
--   $5 series  BIGINT   tools drawn by name
, calls AS (
    SELECT date_trunc($4, ts) AS bucket,
        coalesce(nullif(f.tool, ''), '(unknown)')
            || CASE WHEN coalesce(f.server, '') = '' THEN '' ELSE ' @' || f.server END AS tool
    FROM (
        SELECT ts, json_transform(feature_json, '{"tool": "VARCHAR", "server": "VARCHAR"}') AS f
        FROM ev
        WHERE activity = 'called_tool'
    )
),
top AS (
    SELECT tool FROM calls GROUP BY tool ORDER BY count(*) DESC, tool LIMIT $5
)
SELECT bucket,
    CASE WHEN tool IN (SELECT tool FROM top) THEN tool ELSE 'other' END AS tool,
    count(*) AS calls
FROM calls
GROUP BY ALL
ORDER BY bucket, tool
