SELECT "at", principal, customer_id, action, target, rows, bytes, duration_ms,
    outcome, detail, audit_id, _source, _received_at
FROM audit_log
ORDER BY "at" DESC, audit_id DESC
LIMIT ?::BIGINT
-- args: []interface {}{101}
