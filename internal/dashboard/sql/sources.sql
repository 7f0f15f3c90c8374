-- sources.sql: for the pipeline page, per _source how many events of the
-- range arrived that way, the latest arrival (_received_at) and the
-- longest delay from ts to arrival in seconds.
SELECT _source AS source,
    count(*) AS events,
    max(_received_at) AS last_received,
    max(epoch_ms(_received_at) - epoch_ms(ts)) / 1000.0 AS max_delay_s
FROM ev
GROUP BY _source
ORDER BY events DESC, source
