-- ev.sql: the prelude of every statement over claude_stream: the events a
-- page shows. It runs through CustomerQuery, so claude_stream holds only
-- the signed-in customer's rows; every value is bound:
--   $1 from   TIMESTAMP  first ts shown
--   $2 to     TIMESTAMP  first ts not shown ([from, to))
--   $3 scope  VARCHAR    a project, or '' for every project
-- An event is in scope when its project feature is the scope, or when it
-- belongs to a session (session_id feature) in which some event of the
-- range names the project: tool calls and responses rarely carry the
-- project, the session's first event does. With no scope both conditions
-- fold away and no feature is parsed here.
WITH scope_sessions AS MATERIALIZED (
    SELECT DISTINCT json_extract_string(feature_json, 'session_id') AS sid
    FROM claude_stream
    WHERE $3 <> '' AND ts >= $1 AND ts < $2
      AND json_extract_string(feature_json, 'project') = $3
),
ev AS (
    SELECT ts, activity, feature_json, revenue_impact, _received_at, _source
    FROM claude_stream
    WHERE ts >= $1 AND ts < $2
      AND ($3 = ''
           OR json_extract_string(feature_json, 'project') = $3
           OR json_extract_string(feature_json, 'session_id') IN (SELECT sid FROM scope_sessions))
)
