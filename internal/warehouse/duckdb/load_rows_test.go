package duckdb

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/activitybi/activitybi/internal/event"
	"github.com/activitybi/activitybi/internal/warehouse"
)

// TestLoadRowsFunctionIsTheLoaders: the table function that carries a
// load's rows is in the database's catalog once a load has run, but
// customer SQL and analyst SQL are refused it, and a direct call without
// the nonce of a load in progress (here on a plain connection, as a
// template or a bug would make) is an error and returns nothing, even while
// a load is offering its rows.
func TestLoadRowsFunctionIsTheLoaders(t *testing.T) {
	t.Parallel()
	db := setup(t)
	loadTwo(t, db, map[string]int{"alice": 3, "bob": 2})
	ctx := context.Background()

	for _, q := range []string{
		`SELECT * FROM activitybi_load_rows('x')`,
		`SELECT count(*) FROM claude_stream WHERE activity_id IN (SELECT activity_id FROM activitybi_load_rows('x'))`,
	} {
		_, err := db.CustomerQuery(ctx, "alice", q, nil, 0)
		var unsafe *warehouse.UnsafeSQLError
		if !errors.As(err, &unsafe) {
			t.Errorf("CustomerQuery(%q): %v, want UnsafeSQLError", q, err)
		}
		if _, err := db.Query(ctx, q, 0); !errors.As(err, &unsafe) {
			t.Errorf("Query(%q): %v, want UnsafeSQLError", q, err)
		}
	}

	// Past SafeSQL (a raw connection of the same instance), while a load's
	// rows are on offer: a wrong nonce gets an error, not the rows.
	nonce, err := db.loadRows.offer([]stageRow{{ev: ptr(testEvent("bob", "called_tool", "secret", ct0))}})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := db.sqlDB.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var n int
	err = conn.QueryRowContext(ctx, `SELECT count(*) FROM activitybi_load_rows('0123456789abcdef0123456789abcdef')`).Scan(&n)
	if err == nil || !strings.Contains(err.Error(), "internal to the warehouse's loader") {
		t.Fatalf("wrong nonce: n=%d err=%v", n, err)
	}
	// The right nonce is taken by its first bind and works once only.
	q := fmt.Sprintf(`SELECT count(*) FROM activitybi_load_rows('%s')`, nonce)
	if err := conn.QueryRowContext(ctx, q).Scan(&n); err != nil || n != 1 {
		t.Fatalf("the load's own nonce: n=%d err=%v", n, err)
	}
	if err := conn.QueryRowContext(ctx, q).Scan(&n); err == nil {
		t.Fatalf("a nonce's second use returned %d rows", n)
	}
}

// TestLoadRowsValues: every column of a loaded row arrives as written,
// NULLs included, through the table function.
func TestLoadRowsValues(t *testing.T) {
	t.Parallel()
	db := setup(t)
	ctx := context.Background()
	rev := 12.5
	full := testEvent("alice", "called_tool", "full", ct0)
	full.AnonymousCustomerID = "anon-1"
	full.RevenueImpact = &rev
	full.Link = "https://example.com/x"
	full.Features = []byte(`{"tool":"grep","n":3}`)
	bare := testEvent("alice", "called_tool", "bare", ct0.Add(time.Second))
	bare.Features = nil
	if _, err := db.Load(ctx, &warehouse.Batch{Events: []event.Event{full, bare}}); err != nil {
		t.Fatal(err)
	}
	tab, err := db.Query(ctx, `SELECT activity_id, anonymous_customer_id, revenue_impact, link, feature_json::VARCHAR,
  _activity_occurrence, _activity_repeated_at, _source FROM claude_stream ORDER BY ts`, 0)
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprint(tab.Rows)
	want := fmt.Sprint([][]any{
		{"full", "anon-1", 12.5, "https://example.com/x", `{"tool":"grep","n":3}`, int64(1), ct0.Add(time.Second), full.Source},
		{"bare", nil, nil, nil, `{}`, int64(2), nil, bare.Source},
	})
	if got != want {
		t.Fatalf("rows:\n got %s\nwant %s", got, want)
	}
}

func ptr[T any](v T) *T { return &v }
