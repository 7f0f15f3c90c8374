-- tool_calls_over_time, duckdb, rendered at 2026-03-31T12:00:00Z
-- params: {"bucket":"day","by":"tool","days":7,"limit":5000}
-- arg 1: time.Time 2026-03-24T12:00:00Z
-- arg 2: time.Time 2026-03-31T12:00:00Z
-- arg 3: string ""
-- arg 4: string ""
-- arg 5: string ""
-- arg 6: string ""
-- arg 7: int64 5000
-- slot bucket=hour: 'hour'
-- slot bucket=day: 'day'
-- slot bucket=week: 'week'
-- slot bucket=month: 'month'
-- slot by=tool: coalesce(tool, '(unknown)')
-- slot by=server: coalesce(nullif(server, ''), '(built-in)')
-- slot by=all: 'all'
WITH calls AS (
    -- The features this reads, parsed once per event: one
    -- json_extract_string of a list costs a third of a ->> per key.
    SELECT ts, f[1] AS tool, f[2] AS server,
        CASE WHEN lower(coalesce(f[3], '')) = 'false' OR coalesce(f[4], '') <> '' THEN 1 ELSE 0 END AS failed
    FROM (
        SELECT ts, json_extract_string(feature_json, list_value('tool', 'server', 'success', 'error')) AS f
        FROM claude_stream
        WHERE activity = 'called_tool'
          AND ts >= ? AND ts < ?
    )
)
SELECT
    date_trunc('day', ts) AS bucket,
    coalesce(tool, '(unknown)') AS series,
    count(*) AS calls,
    CAST(sum(failed) AS BIGINT) AS errors
FROM calls
WHERE (? = '' OR tool = ?)
  AND (? = '' OR server = ?)
GROUP BY bucket, series
ORDER BY bucket, calls DESC, series
LIMIT ?
