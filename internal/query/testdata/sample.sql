-- duckdb 0.1000%
SELECT * FROM (
SELECT activity, count(*) FROM claude_stream WHERE ts >= ? GROUP BY ALL -- note
) AS sampled USING SAMPLE 0.1000 PERCENT (bernoulli, 12345);

-- duckdb 1.2346%
SELECT * FROM (
SELECT activity, count(*) FROM claude_stream WHERE ts >= ? GROUP BY ALL -- note
) AS sampled USING SAMPLE 1.2346 PERCENT (bernoulli, 12345);

-- duckdb 50.0000%
SELECT * FROM (
SELECT activity, count(*) FROM claude_stream WHERE ts >= ? GROUP BY ALL -- note
) AS sampled USING SAMPLE 50.0000 PERCENT (bernoulli, 12345);

-- snowflake 0.1000%
SELECT * FROM (
SELECT activity, count(*) FROM claude_stream WHERE ts >= ? GROUP BY ALL -- note
) AS sampled SAMPLE BERNOULLI (0.1000);

-- snowflake 1.2346%
SELECT * FROM (
SELECT activity, count(*) FROM claude_stream WHERE ts >= ? GROUP BY ALL -- note
) AS sampled SAMPLE BERNOULLI (1.2346);

-- snowflake 50.0000%
SELECT * FROM (
SELECT activity, count(*) FROM claude_stream WHERE ts >= ? GROUP BY ALL -- note
) AS sampled SAMPLE BERNOULLI (50.0000);

