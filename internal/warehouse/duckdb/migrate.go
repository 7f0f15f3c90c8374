package duckdb

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"sort"
	"strconv"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// migration is one embedded schema change, named NNNN_description.sql.
type migration struct {
	version int
	name    string
	sql     string
}

var migrationName = regexp.MustCompile(`^(\d{4})_[a-z0-9_]+\.sql$`)

// loadMigrations reads the embedded migrations in version order. A bad name,
// a duplicate or a gap in the versions is a build mistake and fails loudly.
func loadMigrations(fsys fs.FS) ([]migration, error) {
	entries, err := fs.ReadDir(fsys, "migrations")
	if err != nil {
		return nil, fmt.Errorf("read migrations: %w", err)
	}
	var ms []migration
	for _, e := range entries {
		m := migrationName.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("migration %q: name must look like 0001_description.sql", e.Name())
		}
		v, _ := strconv.Atoi(m[1])
		body, err := fs.ReadFile(fsys, "migrations/"+e.Name())
		if err != nil {
			return nil, fmt.Errorf("read migration %s: %w", e.Name(), err)
		}
		ms = append(ms, migration{version: v, name: e.Name(), sql: string(body)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	for i, m := range ms {
		if m.version != i+1 {
			return nil, fmt.Errorf("migration %s: expected version %d (versions start at 1, no gaps or duplicates)", m.name, i+1)
		}
	}
	return ms, nil
}

const createMigrationsTable = `CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER   NOT NULL PRIMARY KEY,
    applied_at TIMESTAMP NOT NULL
)`

// Migrate applies every pending migration, each in its own transaction
// together with its schema_migrations row.
func (db *DB) Migrate(ctx context.Context) ([]int, error) {
	db.writeMu.Lock()
	defer db.writeMu.Unlock()
	conn, err := db.writable()
	if err != nil {
		return nil, err
	}
	ms, err := loadMigrations(migrationFS)
	if err != nil {
		return nil, err
	}
	if _, err := conn.ExecContext(ctx, createMigrationsTable); err != nil {
		return nil, fmt.Errorf("create schema_migrations: %w", err)
	}
	current, err := schemaVersion(ctx, conn)
	if err != nil {
		return nil, err
	}
	var applied []int
	for _, m := range ms {
		if m.version <= current {
			continue
		}
		err := inTx(ctx, conn, func() error {
			if _, err := conn.ExecContext(ctx, m.sql); err != nil {
				return err
			}
			_, err := conn.ExecContext(ctx,
				`INSERT INTO schema_migrations (version, applied_at) VALUES (?, now()::TIMESTAMP)`, m.version)
			return err
		})
		if err != nil {
			if len(applied) > 0 {
				db.renewCustomerPool()
			}
			return applied, fmt.Errorf("migration %s: %w", m.name, err)
		}
		db.log.Info("warehouse migrated", "version", m.version, "name", m.name)
		applied = append(applied, m.version)
	}
	if len(applied) > 0 {
		db.staged = false // staging tables mirror claude_stream: recreate them
		db.parts = nil
		// Customer connections shadow the tables they saw when they
		// opened: open new ones on the new schema.
		db.renewCustomerPool()
	}
	return applied, nil
}

// SchemaVersion returns the highest applied migration, 0 for none.
func (db *DB) SchemaVersion(ctx context.Context) (int, error) {
	done, err := db.reader()
	if err != nil {
		return 0, err
	}
	defer done()
	conn, err := db.sqlDB.Conn(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	return schemaVersion(ctx, conn)
}

type queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func schemaVersion(ctx context.Context, q queryer) (int, error) {
	var exists bool
	err := q.QueryRowContext(ctx,
		`SELECT count(*) > 0 FROM duckdb_tables() WHERE table_name = 'schema_migrations' AND schema_name = 'main' AND NOT temporary`).Scan(&exists)
	if err != nil {
		return 0, fmt.Errorf("schema version: %w", err)
	}
	if !exists {
		return 0, nil
	}
	var v int
	if err := q.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&v); err != nil {
		return 0, fmt.Errorf("schema version: %w", err)
	}
	return v, nil
}

// inTx runs fn in an explicit transaction on conn. database/sql's Tx is not
// used: on a cancelled context it discards the connection, and the writer
// connection holds the TEMP staging tables. A rollback runs even when ctx is
// already cancelled.
func inTx(ctx context.Context, conn *sql.Conn, fn func() error) error {
	if _, err := conn.ExecContext(ctx, "BEGIN TRANSACTION"); err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := fn(); err != nil {
		if _, rerr := conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK"); rerr != nil {
			return errors.Join(err, fmt.Errorf("rollback: %w", rerr))
		}
		return err
	}
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		// A failed COMMIT leaves DuckDB's transaction aborted; end it.
		_, _ = conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}
