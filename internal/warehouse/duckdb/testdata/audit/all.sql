SELECT "at", principal, customer_id, action, target, rows, bytes, duration_ms,
    outcome, detail, audit_id, _source, _received_at
FROM audit_log
WHERE "at" >= make_timestamp(?::BIGINT)
  AND "at" < make_timestamp(?::BIGINT)
  AND customer_id = ?::VARCHAR
  AND principal = ?::VARCHAR
  AND action = ?::VARCHAR
  AND outcome = ?::VARCHAR
  AND target = ?::VARCHAR
ORDER BY "at" DESC, audit_id DESC
LIMIT ?::BIGINT
-- args: []interface {}{1772366400000000, 1772370000000000, "bob'--", "analyst:eve", "ran_sql", "ok", "9f86d081884c7d65", 6}
