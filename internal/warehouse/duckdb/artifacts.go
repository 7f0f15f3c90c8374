package duckdb

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/duckdb/duckdb-go/v2"

	"github.com/activitybi/activitybi/internal/warehouse"
)

// The artifact store's index (internal/artifact.Index): one row per artifact
// in the artifacts table. Writes are single rows on the writer connection
// under writeMu, so they queue behind a running Load; an artifact write is
// rare next to the uploader's batches and takes well under a millisecond.

// updateArtifact and insertArtifact are PutArtifact's two statements. Not
// one INSERT ... ON CONFLICT DO UPDATE: DuckDB's upsert of a new row took
// 1.5-4.5x as long as the UPDATE that misses plus the INSERT
// (BenchmarkArtifactIndex; bench/artifact.md).
const (
	updateArtifact = `UPDATE artifacts SET url = ?, size_bytes = ?, content_type = ?,
    expires_at = ?, name = ?, kind = ?, sha256 = ?
WHERE artifact_id = ? AND customer_id = ?`
	insertArtifact = `INSERT INTO artifacts (artifact_id, customer_id, url, size_bytes,
    content_type, created_at, expires_at, name, kind, sha256)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
)

// artifactColumns is the column list every read selects, in the order
// scanArtifact expects.
const artifactColumns = `artifact_id, customer_id, url, size_bytes, content_type,
    coalesce(name, ''), coalesce(kind, ''), coalesce(sha256, ''), created_at, expires_at`

// PutArtifact inserts the row, or replaces the row with the same id and
// customer (all but created_at). A row with the same id and another
// customer fails and is left as it is: ids are random and never reused, so
// that is a bug, and it must not hand the row over.
func (db *DB) PutArtifact(ctx context.Context, r warehouse.ArtifactRow) error {
	if err := checkArtifactRow(r); err != nil {
		return err
	}
	db.writeMu.Lock()
	defer db.writeMu.Unlock()
	conn, err := db.writable()
	if err != nil {
		return err
	}
	// writeMu makes the UPDATE and the INSERT one step: no other write
	// comes between them.
	res, err := conn.ExecContext(ctx, updateArtifact, r.Key, r.Size, r.ContentType, r.ExpiresAt.UTC(),
		nullIfEmpty(r.Name), r.Kind, nullIfEmpty(r.SHA256), r.ID, r.Customer)
	if err != nil {
		return fmt.Errorf("put artifact: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("put artifact: %w", err)
	} else if n > 0 {
		return nil
	}
	_, err = conn.ExecContext(ctx, insertArtifact, r.ID, r.Customer, r.Key, r.Size,
		r.ContentType, r.CreatedAt.UTC(), r.ExpiresAt.UTC(), nullIfEmpty(r.Name), r.Kind, nullIfEmpty(r.SHA256))
	if err != nil {
		if isConstraintError(err) {
			return fmt.Errorf("put artifact %s: the id belongs to another customer", r.ID)
		}
		return fmt.Errorf("put artifact: %w", err)
	}
	return nil
}

func checkArtifactRow(r warehouse.ArtifactRow) error {
	switch {
	case r.ID == "":
		return errors.New("put artifact: ID is empty")
	case r.Key == "":
		return errors.New("put artifact: Key is empty")
	case r.CreatedAt.IsZero() || r.ExpiresAt.IsZero():
		return errors.New("put artifact: CreatedAt and ExpiresAt are required")
	case r.Size < 0:
		return fmt.Errorf("put artifact: Size must not be negative, got %d", r.Size)
	}
	if err := checkCustomer(r.Customer); err != nil {
		return fmt.Errorf("put artifact: %w", err)
	}
	return nil
}

func nullIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// GetArtifact returns the customer's row with that id, or nil when the
// customer has none (another customer's row with that id is not seen: the
// read runs through CustomerQuery).
func (db *DB) GetArtifact(ctx context.Context, customer, id string) (*warehouse.ArtifactRow, error) {
	t, err := db.CustomerQuery(ctx, customer,
		`SELECT `+artifactColumns+` FROM artifacts WHERE artifact_id = ?`, []any{id}, 1)
	if err != nil {
		return nil, fmt.Errorf("get artifact: %w", err)
	}
	if len(t.Rows) == 0 {
		return nil, nil
	}
	r, err := artifactFromValues(t.Rows[0])
	if err != nil {
		return nil, fmt.Errorf("get artifact: %w", err)
	}
	return r, nil
}

// DeleteArtifact deletes the customer's row with that id; no row is no error.
func (db *DB) DeleteArtifact(ctx context.Context, customer, id string) error {
	db.writeMu.Lock()
	defer db.writeMu.Unlock()
	conn, err := db.writable()
	if err != nil {
		return err
	}
	if _, err := conn.ExecContext(ctx, `DELETE FROM artifacts WHERE customer_id = ? AND artifact_id = ?`, customer, id); err != nil {
		return fmt.Errorf("delete artifact: %w", err)
	}
	return nil
}

// ExpiredArtifacts returns up to limit rows of any customer whose expiry is
// at or before now, the longest expired first. Rows without an expiry (none
// the store writes) never expire.
func (db *DB) ExpiredArtifacts(ctx context.Context, now time.Time, limit int) ([]warehouse.ArtifactRow, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("expired artifacts: limit must be positive, got %d", limit)
	}
	done, err := db.reader()
	if err != nil {
		return nil, err
	}
	defer done()
	rows, err := db.sqlDB.QueryContext(ctx, `SELECT `+artifactColumns+` FROM artifacts
WHERE expires_at <= ? ORDER BY expires_at, artifact_id LIMIT ?`, now.UTC(), limit)
	if err != nil {
		return nil, fmt.Errorf("expired artifacts: %w", err)
	}
	defer rows.Close()
	var out []warehouse.ArtifactRow
	for rows.Next() {
		var r warehouse.ArtifactRow
		var size *int64
		var ct *string
		var expires *time.Time
		if err := rows.Scan(&r.ID, &r.Customer, &r.Key, &size, &ct, &r.Name, &r.Kind, &r.SHA256, &r.CreatedAt, &expires); err != nil {
			return nil, fmt.Errorf("expired artifacts: %w", err)
		}
		if size != nil {
			r.Size = *size
		}
		if ct != nil {
			r.ContentType = *ct
		}
		if expires != nil {
			r.ExpiresAt = expires.UTC()
		}
		r.CreatedAt = r.CreatedAt.UTC()
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("expired artifacts: %w", err)
	}
	return out, nil
}

// artifactFromValues reads a row selected with artifactColumns from a
// CustomerQuery Table (string, int64, time.Time or nil values).
func artifactFromValues(v []any) (*warehouse.ArtifactRow, error) {
	if len(v) != 10 {
		return nil, fmt.Errorf("artifact row has %d columns, want 10", len(v))
	}
	var r warehouse.ArtifactRow
	for i, dst := range []*string{&r.ID, &r.Customer, &r.Key, nil, &r.ContentType, &r.Name, &r.Kind, &r.SHA256} {
		if dst == nil || v[i] == nil {
			continue
		}
		s, ok := v[i].(string)
		if !ok {
			return nil, fmt.Errorf("artifact column %d is %T, want a string", i, v[i])
		}
		*dst = s
	}
	if v[3] != nil {
		n, ok := v[3].(int64)
		if !ok {
			return nil, fmt.Errorf("artifact size_bytes is %T, want int64", v[3])
		}
		r.Size = n
	}
	for i, dst := range []*time.Time{8: &r.CreatedAt, 9: &r.ExpiresAt} {
		if dst == nil || v[i] == nil {
			continue
		}
		t, ok := v[i].(time.Time)
		if !ok {
			return nil, fmt.Errorf("artifact column %d is %T, want a time", i, v[i])
		}
		*dst = t.UTC()
	}
	return &r, nil
}

// isConstraintError reports whether err is DuckDB refusing a write for a
// constraint (here: artifact_id's primary key).
func isConstraintError(err error) bool {
	var de *duckdb.Error
	return errors.As(err, &de) && de.Type == duckdb.ErrorTypeConstraint
}
