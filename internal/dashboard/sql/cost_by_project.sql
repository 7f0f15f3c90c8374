-- cost_by_project.sql: cost per project, costliest first, at most $4
-- rows. A cost event is attributed to its own project feature, else to
-- the project its session names (the smallest, should a session name
-- several), else to '(no project)'.
, f AS (
    SELECT revenue_impact, nullif(f.session_id, '') AS sid, nullif(f.project, '') AS project
    FROM (
        SELECT revenue_impact, json_transform(feature_json, '{"session_id": "VARCHAR", "project": "VARCHAR"}') AS f
        FROM ev
    )
),
sp AS (
    SELECT sid, min(project) AS project FROM f
    WHERE sid IS NOT NULL AND project IS NOT NULL
    GROUP BY sid
)
SELECT coalesce(f.project, sp.project, '(no project)') AS project,
    count(*) AS cost_events,
    -sum(f.revenue_impact) AS cost_usd
FROM f LEFT JOIN sp ON f.sid = sp.sid
WHERE f.revenue_impact IS NOT NULL
GROUP BY 1
ORDER BY cost_usd DESC, project
LIMIT $4
