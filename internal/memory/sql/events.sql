-- events.sql: recent sessions, tool statistics and recent tool failures of
-- one customer, all computed from one bounded read of claude_stream.
--
-- Runs through CustomerQuery, so claude_stream holds only the customer's
-- rows; every value is bound:
--   $1 read_since    TIMESTAMP  events before this are not read
--   $2 max_events    BIGINT     at most this many events are read, latest first
--   $3 window_start  TIMESTAMP  tool statistics count calls from here on
--   $4 gap_us        BIGINT     among events without a session_id, a pause
--                               longer than this (microseconds) starts a new
--                               session
--   $5 scope         VARCHAR    '' for none
--   $6 max_sessions  BIGINT
--   $7 max_tools     BIGINT
--   $8 max_failures  BIGINT
-- It returns a row per session, tool and failure (bounded by $6, $7, $8)
-- and one row saying how many events were read, from when, and how many
-- of them name the scope.
--
-- Cost (a customer with 1M events over a year, 82,000 in the window, on 2
-- vCPUs): ~7 ms whatever the data (DuckDB binds and plans this statement on
-- every call; a prepared statement does not save it), ~6 ms more once there
-- are rows (each hash aggregate or window costs DuckDB a millisecond or so
-- even on a few rows), then ~1.5 us per event read: ~13 ms for 1,000
-- events, ~19 ms for 5,000, ~27 ms for 10,000. The ts filter is checked
-- against zonemaps and the top-N sorts on ts alone; feature_json is parsed
-- once per event read, never for the whole stream. Shapes that cost more,
-- measured: PARTITION BY in a window (+15 ms on 10,000 rows), a VARCHAR
-- tie-breaker in a window or the top-N (+5 ms), a filter on ev pushed into
-- it (parses feature_json again); a GROUP BY per session list and lists of
-- structs built in SQL (replacing them with histograms and rows of kinds
-- took 10,000 events from ~50 to ~30 ms).
WITH base AS MATERIALIZED (
    -- The bounded read: the latest $2 events since $1. The ts filter is
    -- checked against zonemaps (only the row groups of the recent past are
    -- scanned) and the top-N sorts on ts alone (a second sort key doubles
    -- its cost; ties at the cut are rare and harmless).
    SELECT activity_id, ts, activity, revenue_impact, feature_json
    FROM claude_stream
    WHERE ts >= $1
    ORDER BY ts DESC
    LIMIT $2
),
ev AS MATERIALIZED (
    -- The features the context uses, parsed once per event.
    SELECT activity_id, ts, activity, revenue_impact,
        nullif(f[1], '') AS sid,
        nullif(f[2], '') AS project,
        nullif(f[3], '') AS cwd,
        nullif(f[4], '') AS workspace,
        nullif(f[5], '') AS tool,
        nullif(f[6], '') AS server,
        lower(f[7]) AS success,
        TRY_CAST(f[8] AS DOUBLE) AS duration_ms,
        nullif(f[9], '') AS err
    FROM (
        SELECT *, json_extract_string(feature_json,
            list_value('session_id', 'project', 'cwd', 'workspace', 'tool', 'server', 'success', 'duration_ms', 'error')) AS f
        FROM base
    )
),
nosid AS MATERIALIZED (
    -- Events without a session_id, ordered by time: a pause longer than $4
    -- since the previous one starts a new session. (Windows on ts alone and
    -- without PARTITION BY: a VARCHAR tie-breaker or a partition costs
    -- DuckDB 5-15 ms more on 10,000 rows.)
    SELECT activity_id,
        CASE WHEN prev_ts IS NULL OR epoch_us(ts) - epoch_us(prev_ts) > $4 THEN 1 ELSE 0 END AS starts,
        ts
    FROM (SELECT activity_id, ts, lag(ts) OVER (ORDER BY ts) AS prev_ts FROM ev WHERE sid IS NULL)
),
gaps AS (
    -- Their sessions, numbered by a running count of starts.
    SELECT activity_id, sum(starts) OVER (ORDER BY ts ROWS UNBOUNDED PRECEDING) AS gap_no FROM nosid
),
labelled AS MATERIALIZED (
    -- skey names the session; named says the event names the scope; failed
    -- marks a failed tool call (success false, or an error feature).
    SELECT ev.*,
        coalesce('id:' || sid, 'gap:' || g.gap_no) AS skey,
        $5 <> '' AND (project = $5 OR workspace = $5 OR cwd = $5
            OR ends_with(cwd, '/' || $5) OR ends_with(cwd, '\' || $5)) AS named,
        activity = 'called_tool' AND (success = 'false'
            OR coalesce(err, 'false') NOT IN ('false', 'null')) AS failed
    FROM ev LEFT JOIN gaps g ON g.activity_id = ev.activity_id
),
scope_keys AS MATERIALIZED (
    -- The sessions in which some event names the scope (none without one).
    SELECT DISTINCT skey FROM labelled WHERE named
),
scoped AS (
    -- With a scope, only those sessions' events.
    SELECT * FROM labelled
    WHERE $5 = '' OR skey IN (SELECT skey FROM scope_keys)
),
sess AS (
    -- The most recent sessions, with histograms of their activities and
    -- tools (ranked in Go: a GROUP BY per list costs DuckDB milliseconds).
    SELECT skey, any_value(sid) AS sid,
        min(ts) AS start_ts, max(ts) AS end_ts, count(*) AS events,
        count(*) FILTER (WHERE failed) AS failures,
        coalesce(sum(-revenue_impact), 0) AS cost_usd,
        arg_min(coalesce(project, workspace, cwd), ts)
            FILTER (WHERE coalesce(project, workspace, cwd) IS NOT NULL) AS place,
        -- map_entries: a list of {key, value} structs, which the drivers
        -- return as Go values (a MAP comes back as text from duckdb-go).
        map_entries(histogram(activity)) AS acts,
        map_entries(histogram(tool) FILTER (WHERE activity = 'called_tool')) AS tools
    FROM scoped
    GROUP BY skey
    ORDER BY end_ts DESC, skey DESC
    LIMIT $6
),
tools AS (
    -- Most-used tools in the window.
    SELECT tool, server, count(*) AS calls,
        count(*) FILTER (WHERE failed) AS failures,
        quantile_cont(duration_ms, 0.5) AS p50_ms,
        quantile_cont(duration_ms, 0.95) AS p95_ms,
        max(ts) AS last_used
    FROM scoped
    WHERE activity = 'called_tool' AND tool IS NOT NULL AND ts >= $3
    GROUP BY tool, server
    ORDER BY calls DESC, tool, server NULLS FIRST
    LIMIT $7
),
fails AS (
    -- The most recent failed tool calls.
    SELECT ts, activity_id, tool, server, sid,
        CASE WHEN err IS NOT NULL AND err NOT IN ('true', 'false', 'null') THEN left(err, 300) END AS error
    FROM scoped
    WHERE failed
    ORDER BY ts DESC, activity_id DESC
    LIMIT $8
)
-- One row per item, told apart by kind, in no particular order (Go sorts
-- them); the read's own numbers come as a row of kind 'read'. The columns
-- are shared: t1, t2 timestamps; n1, n2 counts; x1, x2 numbers; s1..s5
-- strings; m1, m2 histograms as lists of {key, value}.
SELECT 'read' AS kind, (SELECT min(ts) FROM base) AS t1, NULL::TIMESTAMP AS t2,
    (SELECT count(*) FROM base) AS n1, (SELECT count(*) FROM scope_keys) AS n2,
    NULL::DOUBLE AS x1, NULL::DOUBLE AS x2,
    NULL::VARCHAR AS s1, NULL::VARCHAR AS s2, NULL::VARCHAR AS s3, NULL::VARCHAR AS s4, NULL::VARCHAR AS s5,
    NULL::STRUCT(key VARCHAR, value UBIGINT)[] AS m1, NULL::STRUCT(key VARCHAR, value UBIGINT)[] AS m2
UNION ALL
SELECT 'session', start_ts, end_ts, events, failures, cost_usd, NULL, sid, place, skey, NULL, NULL, acts, tools
FROM sess
UNION ALL
SELECT 'tool', last_used, NULL, calls, failures, p50_ms, p95_ms, tool, server, NULL, NULL, NULL, NULL, NULL
FROM tools
UNION ALL
SELECT 'failure', ts, NULL, NULL, NULL, NULL, NULL, tool, server, sid, error, activity_id, NULL, NULL
FROM fails
