-- tool_calls_over_time, snowflake, rendered at 2026-03-31T12:00:00Z
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
-- slot by=tool: COALESCE(feature_json:tool::string, '(unknown)')
-- slot by=server: COALESCE(NULLIF(feature_json:server::string, ''), '(built-in)')
-- slot by=all: 'all'
SELECT
    DATE_TRUNC('day', ts) AS "bucket",
    COALESCE(feature_json:tool::string, '(unknown)') AS "series",
    COUNT(*) AS "calls",
    SUM(IFF(LOWER(COALESCE(feature_json:success::string, '')) = 'false'
            OR COALESCE(feature_json:error::string, '') <> '', 1, 0)) AS "errors"
FROM claude_stream
WHERE activity = 'called_tool'
  AND ts >= ? AND ts < ?
  AND (? = '' OR feature_json:tool::string = ?)
  AND (? = '' OR feature_json:server::string = ?)
GROUP BY 1, 2
ORDER BY 1, 3 DESC, 2
LIMIT ?
