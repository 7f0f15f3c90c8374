package duckdb

import (
	"context"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/activitybi/activitybi/internal/warehouse"
)

func artifactRow(customer, id string, created time.Time, ttl time.Duration) warehouse.ArtifactRow {
	return warehouse.ArtifactRow{ID: id, Customer: customer, Key: "k/" + id, Size: 123,
		ContentType: "image/png", Name: "card.png", Kind: "card_png", SHA256: strings.Repeat("ab", 32),
		CreatedAt: created, ExpiresAt: created.Add(ttl)}
}

func TestArtifactsRoundTrip(t *testing.T) {
	t.Parallel()
	db := setup(t)
	ctx := context.Background()
	created := time.Date(2026, 3, 4, 5, 6, 7, 123456000, time.FixedZone("X", 3600))
	a := artifactRow("alice", "a1", created, time.Hour)
	if err := db.PutArtifact(ctx, a); err != nil {
		t.Fatal(err)
	}
	got, err := db.GetArtifact(ctx, "alice", "a1")
	if err != nil {
		t.Fatal(err)
	}
	want := a
	want.CreatedAt, want.ExpiresAt = created.UTC(), created.Add(time.Hour).UTC()
	if got == nil || !reflect.DeepEqual(*got, want) {
		t.Fatalf("GetArtifact = %+v, want %+v", got, want)
	}

	// Another customer does not see it, under any spelling of the id.
	for _, c := range []string{"bob", "Alice", "alice ", "' OR 1=1 --"} {
		if got, err := db.GetArtifact(ctx, c, "a1"); err != nil || got != nil {
			t.Fatalf("GetArtifact(%q) = %+v, %v; want nil, nil", c, got, err)
		}
	}

	// The second write (after the blob) replaces the first; empty
	// optional fields read back empty.
	a.SHA256, a.Name, a.Size = "", "", 0
	if err := db.PutArtifact(ctx, a); err != nil {
		t.Fatal(err)
	}
	got, err = db.GetArtifact(ctx, "alice", "a1")
	if err != nil || got == nil || got.SHA256 != "" || got.Name != "" || got.Size != 0 {
		t.Fatalf("after update: %+v, %v", got, err)
	}

	// The same id for another customer is refused and changes nothing.
	b := artifactRow("bob", "a1", created, 2*time.Hour)
	if err := db.PutArtifact(ctx, b); err == nil || !strings.Contains(err.Error(), "another customer") {
		t.Fatalf("PutArtifact over another customer's id: %v", err)
	}
	if got, _ := db.GetArtifact(ctx, "bob", "a1"); got != nil {
		t.Fatalf("bob got alice's row: %+v", got)
	}

	// Delete is per customer too.
	if err := db.DeleteArtifact(ctx, "bob", "a1"); err != nil {
		t.Fatal(err)
	}
	if got, _ := db.GetArtifact(ctx, "alice", "a1"); got == nil {
		t.Fatal("bob's delete removed alice's row")
	}
	if err := db.DeleteArtifact(ctx, "alice", "a1"); err != nil {
		t.Fatal(err)
	}
	if got, _ := db.GetArtifact(ctx, "alice", "a1"); got != nil {
		t.Fatalf("after delete: %+v", got)
	}
}

func TestExpiredArtifacts(t *testing.T) {
	t.Parallel()
	db := setup(t)
	ctx := context.Background()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	rows := []warehouse.ArtifactRow{
		artifactRow("alice", "a3", t0, 3*time.Hour),
		artifactRow("bob", "b1", t0, time.Hour),
		artifactRow("alice", "a2", t0, 2*time.Hour),
		artifactRow("carol", "c9", t0, 9*time.Hour),
	}
	for _, r := range rows {
		if err := db.PutArtifact(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	ids := func(rs []warehouse.ArtifactRow) string {
		var s []string
		for _, r := range rs {
			s = append(s, r.Customer+"/"+r.ID)
		}
		return strings.Join(s, " ")
	}
	for _, tc := range []struct {
		now   time.Time
		limit int
		want  string
	}{
		{t0, 10, ""},
		{t0.Add(time.Hour - time.Microsecond), 10, ""},
		{t0.Add(time.Hour), 10, "bob/b1"}, // expiry at or before now
		{t0.Add(3 * time.Hour), 10, "bob/b1 alice/a2 alice/a3"},
		{t0.Add(3 * time.Hour), 2, "bob/b1 alice/a2"},
		{t0.Add(24 * time.Hour), 10, "bob/b1 alice/a2 alice/a3 carol/c9"},
	} {
		got, err := db.ExpiredArtifacts(ctx, tc.now, tc.limit)
		if err != nil {
			t.Fatal(err)
		}
		if ids(got) != tc.want {
			t.Errorf("ExpiredArtifacts(%s, %d) = %q, want %q", tc.now, tc.limit, ids(got), tc.want)
		}
	}
	got, _ := db.ExpiredArtifacts(ctx, t0.Add(time.Hour), 1)
	if want := rows[1]; len(got) != 1 || !reflect.DeepEqual(got[0], want) {
		t.Fatalf("expired row = %+v, want %+v", got, want)
	}
	if _, err := db.ExpiredArtifacts(ctx, t0, 0); err == nil {
		t.Fatal("limit 0 accepted")
	}
}

func TestPutArtifactRefusesIncompleteRows(t *testing.T) {
	t.Parallel()
	db := setup(t)
	t0 := time.Now()
	for name, mod := range map[string]func(*warehouse.ArtifactRow){
		"no id":       func(r *warehouse.ArtifactRow) { r.ID = "" },
		"no key":      func(r *warehouse.ArtifactRow) { r.Key = "" },
		"no customer": func(r *warehouse.ArtifactRow) { r.Customer = "" },
		"no expiry":   func(r *warehouse.ArtifactRow) { r.ExpiresAt = time.Time{} },
		"negative":    func(r *warehouse.ArtifactRow) { r.Size = -1 },
	} {
		r := artifactRow("alice", "x", t0, time.Hour)
		mod(&r)
		if err := db.PutArtifact(context.Background(), r); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// BenchmarkArtifactIndex times the artifact store's warehouse calls: the
// two writes of a Put (a new row; the same row completed) and the
// customer-scoped read of a Get.
func BenchmarkArtifactIndex(b *testing.B) {
	db, err := Open(context.Background(), Options{Path: filepath.Join(b.TempDir(), "w.duckdb")})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Migrate(context.Background()); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	t0 := time.Now()
	i := 0
	b.Run("put", func(b *testing.B) {
		for b.Loop() {
			i++
			if err := db.PutArtifact(ctx, artifactRow("bench", fmt.Sprint("id", i), t0, time.Hour)); err != nil {
				b.Fatal(err)
			}
		}
	})
	// The second write of a Put: the row exists.
	b.Run("update", func(b *testing.B) {
		r := artifactRow("bench", "id1", t0, time.Hour)
		for b.Loop() {
			r.Size++
			if err := db.PutArtifact(ctx, r); err != nil {
				b.Fatal(err)
			}
		}
	})
	// What PutArtifact does not do: DuckDB's upsert of the same row
	// (kept here to show why).
	b.Run("upsert_not_used", func(b *testing.B) {
		for b.Loop() {
			i++
			db.writeMu.Lock()
			_, err := db.writer.ExecContext(ctx, `INSERT INTO artifacts (artifact_id, customer_id, url, size_bytes, content_type, created_at, expires_at)
VALUES (?, 'bench', 'k', 1, 'image/png', ?, ?)
ON CONFLICT (artifact_id) DO UPDATE SET size_bytes = excluded.size_bytes, expires_at = excluded.expires_at
WHERE artifacts.customer_id = excluded.customer_id`, fmt.Sprint("id", i), t0, t0.Add(time.Hour))
			db.writeMu.Unlock()
			if err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("get", func(b *testing.B) {
		for b.Loop() {
			if r, err := db.GetArtifact(ctx, "bench", "id1"); err != nil || r == nil {
				b.Fatal(r, err)
			}
		}
	})
}

// TestMigration5KeepsArtifactRows: a warehouse at version 4 holding an
// artifacts row (nothing wrote them then, but the table existed) gains
// name, kind and sha256 without losing the row; with no sha256 the store
// treats it as never completed (not served, swept at its expiry).
func TestMigration5KeepsArtifactRows(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openTest(t, Options{})
	ms, err := loadMigrations(migrationFS)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) < 5 || ms[4].name != "0005_artifacts.sql" {
		t.Fatalf("migration 5 is %v", ms)
	}
	c := db.writer
	for _, q := range []string{createMigrationsTable, ms[0].sql, ms[1].sql, ms[2].sql, ms[3].sql,
		`INSERT INTO schema_migrations VALUES (1, now()::TIMESTAMP), (2, now()::TIMESTAMP), (3, now()::TIMESTAMP), (4, now()::TIMESTAMP)`,
		`INSERT INTO artifacts VALUES ('old1', 'alice', 'k/old1', 7, 'text/csv', TIMESTAMP '2026-01-01 00:00:00', TIMESTAMP '2026-01-08 00:00:00')`,
	} {
		if _, err := c.ExecContext(ctx, q); err != nil {
			t.Fatalf("%.60s: %v", q, err)
		}
	}
	applied, err := db.Migrate(ctx)
	if err != nil || len(applied) == 0 || applied[0] != 5 {
		t.Fatalf("Migrate from version 4 = %v, %v", applied, err)
	}
	got, err := db.GetArtifact(ctx, "alice", "old1")
	if err != nil {
		t.Fatal(err)
	}
	want := warehouse.ArtifactRow{ID: "old1", Customer: "alice", Key: "k/old1", Size: 7, ContentType: "text/csv",
		CreatedAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), ExpiresAt: time.Date(2026, 1, 8, 0, 0, 0, 0, time.UTC)}
	if got == nil || *got != want {
		t.Fatalf("row after migration %+v, want %+v", got, want)
	}
	if rows, err := db.ExpiredArtifacts(ctx, want.ExpiresAt, 10); err != nil || len(rows) != 1 || rows[0] != want {
		t.Fatalf("expired after migration: %+v, %v", rows, err)
	}
}
