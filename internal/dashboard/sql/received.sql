-- received.sql: for the pipeline page, when the customer's latest event
-- arrived, whatever the filter, and how many arrived in the hour before
-- $1 (now, TIMESTAMP). Runs through CustomerQuery. Reads one column.
SELECT max(_received_at) AS last_received,
    count(*) FILTER (WHERE _received_at >= $1 - INTERVAL 1 HOUR AND _received_at <= $1) AS last_hour
FROM claude_stream
