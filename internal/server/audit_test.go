package server

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/activitybi/activitybi/internal/audit"
	"github.com/activitybi/activitybi/internal/event"
	"github.com/activitybi/activitybi/internal/spool"
	"github.com/activitybi/activitybi/internal/upload"
	"github.com/activitybi/activitybi/internal/warehouse"
	"github.com/activitybi/activitybi/internal/warehouse/duckdb"
)

// auditBundle is a core's admin API over a real DuckDB warehouse, with the
// core's spool writer behind Options.Audit and an uploader to load what it
// recorded.
type auditBundle struct {
	db     *duckdb.DB
	up     *upload.Uploader
	tcp    *Client // admin token
	sock   *Client // the socket: this OS user
	token  string
	dir    string
	writer *spool.Writer
}

func setupAudit(t *testing.T) *auditBundle {
	t.Helper()
	dir := t.TempDir()
	db := migratedWarehouse(t, dir)
	w, err := spool.Open(spool.Options{Dir: filepath.Join(dir, "spool")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	log, err := audit.New(audit.Options{Appender: w, Source: event.SourceAPI})
	if err != nil {
		t.Fatal(err)
	}
	up, err := upload.New(upload.Options{SpoolDir: filepath.Join(dir, "spool"), Warehouse: db})
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := NewToken()
	s, err := New(Options{Addr: "127.0.0.1:0", Registry: prometheus.NewRegistry(), Warehouse: db, AdminToken: tok,
		Socket: SocketPath(dir), Audit: log})
	if err != nil {
		t.Fatal(err)
	}
	addr, err := s.Listen()
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Run(rctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	sock := NewSocketClient(dir)
	t.Cleanup(sock.HTTP.CloseIdleConnections)
	return &auditBundle{db: db, up: up, tcp: &Client{Info: CoreInfo{Addr: addr.String(), Token: tok}}, sock: sock,
		token: tok, dir: dir, writer: w}
}

// logged loads what the core recorded and returns audit_log's rows (all
// columns but ids and times) in the order they were recorded.
func (b *auditBundle) logged(t *testing.T, where string, args ...any) [][]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := b.up.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	tab, err := b.db.Query(ctx, `SELECT principal, customer_id, action, target, rows, bytes > 0, outcome, detail, _source
FROM audit_log WHERE `+where+` ORDER BY _received_at, audit_id`, 0)
	if err != nil {
		t.Fatal(err)
	}
	return tab.Rows
}

// TestSQLIsAudited: every /v1/sql statement, on the socket and over TCP,
// served, refused or failed, is one ran_sql row under the transport's
// principal, across all customers.
func TestSQLIsAudited(t *testing.T) {
	t.Parallel()
	b := setupAudit(t)
	ctx := context.Background()
	if tab, err := b.sock.SQL(ctx, "SELECT 42 AS x UNION ALL SELECT 43", 10); err != nil || len(tab.Rows) != 2 {
		t.Fatalf("socket SQL: %v, %v", tab, err)
	}
	if _, err := b.tcp.SQL(ctx, "SELECT 1", 10); err != nil {
		t.Fatal(err)
	}
	var qe *QueryError
	if _, err := b.tcp.SQL(ctx, "DELETE FROM claude_stream", 10); !errors.As(err, &qe) {
		t.Fatalf("DELETE: %v", err)
	}
	if _, err := b.sock.SQL(ctx, "SELECT no_such_column FROM claude_stream", 10); !errors.As(err, &qe) {
		t.Fatalf("bad column: %v", err)
	}
	rows := b.logged(t, "action = 'ran_sql'")
	analyst, admin := audit.AnalystPrincipal(), audit.AdminPrincipal(b.token)
	want := []string{
		fmt.Sprintf("[%s <nil> ran_sql %s 2 true ok SELECT 42 AS x UNION ALL SELECT 43 api]", analyst, audit.StatementHash("SELECT 42 AS x UNION ALL SELECT 43")),
		fmt.Sprintf("[%s <nil> ran_sql %s 1 true ok SELECT 1 api]", admin, audit.StatementHash("SELECT 1")),
		fmt.Sprintf("[%s <nil> ran_sql %s 0 false refused DELETE FROM claude_stream\n-- refused:", admin, audit.StatementHash("DELETE FROM claude_stream")),
		fmt.Sprintf("[%s <nil> ran_sql %s 0 false error SELECT no_such_column FROM claude_stream\n-- query: Binder Error", analyst, audit.StatementHash("SELECT no_such_column FROM claude_stream")),
	}
	if len(rows) != len(want) {
		t.Fatalf("audit_log rows %v; want %d", rows, len(want))
	}
	for i, r := range rows {
		if got := fmt.Sprint(r); !strings.HasPrefix(got, want[i]) {
			t.Errorf("row %d\n got %s\nwant %s...", i, got, want[i])
		}
	}
	if !strings.HasPrefix(admin, "admin:") || strings.Contains(admin, b.token[:12]) {
		t.Fatalf("admin principal %q must not hold the token", admin)
	}
}

// TestAuditListing: POST /v1/audit lists with bound filters, refuses a bad
// filter with a reason, and is itself recorded as listed_audit.
func TestAuditListing(t *testing.T) {
	t.Parallel()
	b := setupAudit(t)
	ctx := context.Background()
	t0 := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	rec := func(id, principal, customer, action string, at time.Time) event.Audit {
		return event.Audit{AuditID: id, At: at, Principal: principal, Customer: customer, Action: action,
			Outcome: event.OutcomeOK, ReceivedAt: at, Source: event.SourceMCP}
	}
	if _, err := b.db.Load(ctx, &warehouse.Batch{Audit: []event.Audit{
		rec("A1", "tok_a", "alice", event.ActionGotContext, t0),
		rec("A2", "tok_b", "bob", event.ActionGotContext, t0.Add(time.Minute)),
		rec("A3", "tok_a", "alice", event.ActionFetchedResult, t0.Add(2*time.Minute)),
		rec("A4", "x' OR '1'='1", "bob'; DROP TABLE audit_log; --", event.ActionGotContext, t0.Add(3*time.Minute)),
	}}); err != nil {
		t.Fatal(err)
	}
	list := func(c *Client, f warehouse.AuditFilter) string {
		t.Helper()
		tab, err := c.Audit(ctx, f)
		if err != nil {
			t.Fatalf("%+v: %v", f, err)
		}
		var ids []string
		for _, r := range tab.Rows {
			ids = append(ids, fmt.Sprint(r[10]))
		}
		return strings.Join(ids, ",")
	}
	for _, tc := range []struct {
		c    *Client
		f    warehouse.AuditFilter
		want string
	}{
		{b.sock, warehouse.AuditFilter{Customer: "alice"}, "A3,A1"},
		{b.tcp, warehouse.AuditFilter{Principal: "tok_a", Action: event.ActionGotContext}, "A1"},
		{b.sock, warehouse.AuditFilter{Since: t0.Add(time.Minute), Until: t0.Add(3 * time.Minute)}, "A3,A2"},
		{b.sock, warehouse.AuditFilter{Customer: "bob'; DROP TABLE audit_log; --"}, "A4"},
		{b.tcp, warehouse.AuditFilter{Principal: "x' OR '1'='1"}, "A4"},
		{b.tcp, warehouse.AuditFilter{Customer: "' OR ''='"}, ""},
	} {
		if got := list(tc.c, tc.f); got != tc.want {
			t.Errorf("%+v: %q; want %q", tc.f, got, tc.want)
		}
	}
	var qe *QueryError
	if _, err := b.sock.Audit(ctx, warehouse.AuditFilter{Outcome: "fine"}); !errors.As(err, &qe) ||
		!strings.Contains(qe.Msg, `outcome "fine": not one of ok, refused`) {
		t.Fatalf("bad filter: %v", err)
	}
	bad := *b.tcp
	bad.Info.Token = strings.Repeat("0", 64)
	if _, err := bad.Audit(ctx, warehouse.AuditFilter{}); err == nil || !strings.Contains(err.Error(), "admin token") {
		t.Fatalf("wrong admin token: %v", err)
	}

	rows := b.logged(t, "action = 'listed_audit'")
	if len(rows) != 7 {
		t.Fatalf("%d listed_audit rows; want 7 (6 listings, 1 refused): %v", len(rows), rows)
	}
	analyst, admin := audit.AnalystPrincipal(), audit.AdminPrincipal(b.token)
	first := fmt.Sprint(rows[0])
	if want := fmt.Sprintf("[%s alice listed_audit audit_log 2 true ok {\"customer\":\"alice\"} api]", analyst); first != want {
		t.Errorf("first listing\n got %s\nwant %s", first, want)
	}
	if r := rows[4]; r[0] != admin || r[1] != nil || r[4] != int64(1) {
		t.Errorf("listing by principal: %v", r)
	}
	if r := rows[6]; r[1] != nil || r[6] != event.OutcomeRefused || !strings.Contains(fmt.Sprint(r[7]), `not one of ok`) {
		t.Errorf("refused listing: %v", r)
	}
}

// migratedWarehouse opens a new, migrated warehouse file in dir, closed
// when the test ends.
func migratedWarehouse(t *testing.T, dir string) *duckdb.DB {
	t.Helper()
	ctx := context.Background()
	db, err := duckdb.Open(ctx, duckdb.Options{Path: filepath.Join(dir, "w.duckdb")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return db
}
