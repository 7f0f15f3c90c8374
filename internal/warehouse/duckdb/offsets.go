package duckdb

import (
	"context"
	"fmt"

	"github.com/activitybi/activitybi/internal/warehouse"
)

// Offsets returns the committed offset of every segment not yet forgotten.
func (db *DB) Offsets(ctx context.Context) (map[string]warehouse.Offset, error) {
	done, err := db.reader()
	if err != nil {
		return nil, err
	}
	defer done()
	rows, err := db.sqlDB.QueryContext(ctx, `SELECT segment, "offset", records, closed FROM upload_offsets`)
	if err != nil {
		return nil, fmt.Errorf("offsets: %w", err)
	}
	defer rows.Close()
	out := make(map[string]warehouse.Offset)
	for rows.Next() {
		var o warehouse.Offset
		if err := rows.Scan(&o.Segment, &o.Offset, &o.Records, &o.Closed); err != nil {
			return nil, fmt.Errorf("offsets: %w", err)
		}
		out[o.Segment] = o
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("offsets: %w", err)
	}
	return out, nil
}

// ForgetOffsets deletes the offsets of the named segments.
func (db *DB) ForgetOffsets(ctx context.Context, segments []string) error {
	if len(segments) == 0 {
		return nil
	}
	db.writeMu.Lock()
	defer db.writeMu.Unlock()
	conn, err := db.writable()
	if err != nil {
		return err
	}
	if _, err := conn.ExecContext(ctx, `DELETE FROM upload_offsets WHERE list_contains(?::VARCHAR[], segment)`, segments); err != nil {
		return fmt.Errorf("forget offsets: %w", err)
	}
	return nil
}

// Stats counts the rows of the main tables.
func (db *DB) Stats(ctx context.Context) (warehouse.Stats, error) {
	var s warehouse.Stats
	done, err := db.reader()
	if err != nil {
		return s, err
	}
	defer done()
	conn, err := db.sqlDB.Conn(ctx)
	if err != nil {
		return s, err
	}
	defer conn.Close()
	if s.SchemaVersion, err = schemaVersion(ctx, conn); err != nil {
		return s, err
	}
	if s.SchemaVersion == 0 {
		return s, nil
	}
	err = conn.QueryRowContext(ctx, `SELECT
    (SELECT count(*) FROM claude_stream),
    (SELECT count(*) FROM insight_atoms),
    (SELECT count(*) FROM upload_quarantine),
    (SELECT count(*) FROM upload_offsets)`).Scan(&s.StreamRows, &s.InsightRows, &s.QuarantineRows, &s.Segments)
	if err != nil {
		return s, fmt.Errorf("stats: %w", err)
	}
	return s, nil
}
