-- tool_errors, snowflake, rendered at 2026-03-31T12:00:00Z
-- params: {"days":7,"limit":50}
-- arg 1: time.Time 2026-03-24T12:00:00Z
-- arg 2: time.Time 2026-03-31T12:00:00Z
-- arg 3: string ""
-- arg 4: string ""
-- arg 5: string ""
-- arg 6: string ""
-- arg 7: int64 50
SELECT
    ts AS "ts",
    COALESCE(feature_json:tool::string, '(unknown)') AS "tool",
    COALESCE(feature_json:server::string, '') AS "server",
    LEFT(COALESCE(feature_json:error::string, ''), 500) AS "error",
    COALESCE(feature_json:session_id::string, '') AS "session_id",
    TRY_TO_DOUBLE(feature_json:duration_ms::string) AS "duration_ms"
FROM claude_stream
WHERE activity = 'called_tool'
  AND ts >= ? AND ts < ?
  AND (LOWER(COALESCE(feature_json:success::string, '')) = 'false'
       OR COALESCE(feature_json:error::string, '') <> '')
  AND (? = '' OR feature_json:tool::string = ?)
  AND (? = '' OR feature_json:server::string = ?)
ORDER BY ts DESC, activity_id DESC
LIMIT ?
