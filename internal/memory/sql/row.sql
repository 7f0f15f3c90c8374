-- row.sql: the customer's materialized context of one scope in context_cache
-- (written by Store after each build).
--
-- Runs through CustomerQuery (context_cache holds only the customer's rows);
-- every value is bound:
--   $1 scope  VARCHAR  '' for the whole customer
-- Columns: context (JSON text), version, updated_at.
--
-- Cost: a point read of one row, ~1 ms with CustomerQuery's own overhead
-- (bench/memory.md).
SELECT context::VARCHAR AS context, version, updated_at
FROM context_cache
WHERE scope = $1
