package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/activitybi/activitybi/internal/audit"
)

// auditRows runs `activitybi audit --format json` with args and decodes
// the rows.
func (e *env) auditRows(args ...string) []map[string]any {
	e.t.Helper()
	out := e.mustRun(nil, append([]string{"audit", "--format", "json"}, args...)...)
	var rows []map[string]any
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		e.t.Fatalf("audit %v: %q: %v", args, out, err)
	}
	return rows
}

// waitAudit polls the audit log until the filter in args lists n rows.
func (e *env) waitAudit(n int, args ...string) []map[string]any {
	e.t.Helper()
	return e.waitAuditFor(func(got int) bool { return got == n }, n, args...)
}

// waitAuditListings is waitAudit for a listing that matches its own
// listed_audit rows: every poll adds one, so a poll that comes after the
// first listing has landed sees one or more.
func (e *env) waitAuditListings(args ...string) []map[string]any {
	e.t.Helper()
	return e.waitAuditFor(func(got int) bool { return got >= 1 }, 1, args...)
}

func (e *env) waitAuditFor(done func(int) bool, n int, args ...string) []map[string]any {
	e.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		rows := e.auditRows(args...)
		if done(len(rows)) {
			return rows
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("audit %v lists %d rows after 60s, want %d: %v", args, len(rows), n, rows)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestAuditEndToEnd: `activitybi sql` is audited with no core running (the
// CLI's own spool record, loaded when a core starts) and through the core
// (the core's record); `activitybi audit` lists and filters the log, with
// filter values bound (quotes and injection payloads match only
// themselves), refuses bad filters with a reason, and is itself audited.
func TestAuditEndToEnd(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.mustRun(nil, "migrate")
	analyst := audit.AnalystPrincipal()

	// No core: the CLI reads the file itself and spools its records.
	e.mustRun(nil, "sql", "SELECT 1 AS one")
	if _, errs, code := e.run(nil, "sql", "DELETE FROM claude_stream"); code == 0 || !strings.Contains(errs, "refused") {
		t.Fatalf("DELETE: exit %d, %s", code, errs)
	}
	if rows := e.auditRows(); len(rows) != 0 {
		t.Fatalf("the log lists %v before any core loaded it", rows)
	}
	// The CLI never writes the warehouse: its records wait in the spool.
	if out := e.mustRun(nil, "spool", "stat"); !strings.Contains(out, "3 pending") {
		t.Fatalf("spool after two statements and a listing:\n%s", out)
	}

	c := e.startCore()
	stopped := false
	defer func() {
		if !stopped {
			c.stop(t)
		}
	}()
	e.mustRun(nil, "sql", "SELECT 2 AS two")
	rows := e.waitAudit(3, "--action", "ran_sql")
	want := []struct{ target, outcome, source, detail string }{
		{audit.StatementHash("SELECT 2 AS two"), "ok", "api", "SELECT 2 AS two"},
		{audit.StatementHash("DELETE FROM claude_stream"), "refused", "cli", "DELETE FROM claude_stream\n-- refused: "},
		{audit.StatementHash("SELECT 1 AS one"), "ok", "cli", "SELECT 1 AS one"},
	}
	for i, w := range want {
		r := rows[i]
		if r["principal"] != analyst || r["customer_id"] != nil || r["target"] != w.target || r["outcome"] != w.outcome ||
			r["_source"] != w.source || !strings.HasPrefix(fmt.Sprint(r["detail"]), w.detail) {
			t.Errorf("row %d = %v; want principal %s, target %s, outcome %s, source %s, detail %q...", i, r, analyst, w.target, w.outcome, w.source, w.detail)
		}
	}
	if r := rows[0]; fmt.Sprint(r["rows"]) != "1" || fmt.Sprint(r["bytes"]) == "0" {
		t.Errorf("SELECT 2: rows %v bytes %v", r["rows"], r["bytes"])
	}
	if r := rows[1]; fmt.Sprint(r["rows"]) != "0" || fmt.Sprint(r["bytes"]) != "0" {
		t.Errorf("refused DELETE: rows %v bytes %v", r["rows"], r["bytes"])
	}

	// Filters.
	for _, tc := range []struct {
		args []string
		want int
	}{
		{[]string{"--action", "ran_sql", "--outcome", "refused"}, 1},
		{[]string{"--action", "ran_sql", "--target", audit.StatementHash("SELECT 1 AS one")}, 1},
		{[]string{"--action", "ran_sql", "--since", "1h"}, 3},
		{[]string{"--action", "ran_sql", "--until", "1h"}, 0},
		{[]string{"--action", "ran_sql", "--since", time.Now().UTC().Add(-time.Hour).Format(time.RFC3339)}, 3},
		{[]string{"--action", "ran_sql", "--principal", analyst, "--limit", "2"}, 2},
		{[]string{"--action", "ran_sql", "--principal", "x' OR '1'='1"}, 0},
		{[]string{"--action", "ran_sql", "--target", "') OR 1=1 --"}, 0},
	} {
		if got := e.auditRows(tc.args...); len(got) != tc.want {
			t.Errorf("audit %q lists %d rows, want %d", tc.args, len(got), tc.want)
		}
	}

	// A listing is an access too: listed_audit, under the customer it
	// filtered on. A hostile customer name is a value like any other.
	const evil = `bob'; DROP TABLE audit_log; --`
	e.auditRows("--customer", "alice")
	e.auditRows("--customer", evil)
	got := e.waitAuditListings("--customer", evil, "--action", "listed_audit")
	if r := got[len(got)-1]; r["principal"] != analyst || r["customer_id"] != evil || r["target"] != "audit_log" || r["outcome"] != "ok" ||
		!strings.Contains(fmt.Sprint(r["detail"]), `"customer":"bob'; DROP TABLE audit_log; --"`) {
		t.Fatalf("listing row %v", r)
	}
	if got := e.waitAuditListings("--customer", "alice", "--action", "listed_audit"); got[len(got)-1]["customer_id"] != "alice" {
		t.Fatalf("alice's listing %v", got)
	}
	if n := e.count("SELECT count(*) FROM audit_log WHERE customer_id IS NULL AND action = 'listed_audit'"); n < 5 {
		t.Fatalf("%d unfiltered listings recorded; want every one", n)
	}

	// Bad filters are refused with what is accepted.
	var errs string
	var code int
	for _, tc := range []struct{ args []string }{
		{[]string{"--action", "dropped_table"}},
		{[]string{"--outcome", "fine"}},
		{[]string{"--since", "yesterday"}},
		{[]string{"--since", "-5h"}},
		{[]string{"--limit", "0"}},
		{[]string{"--format", "xml"}},
		{[]string{"--since", "1h", "--until", "2h"}},
	} {
		_, errs, code = e.run(nil, append([]string{"audit"}, tc.args...)...)
		if code == 0 || !strings.Contains(errs, "activitybi: ") {
			t.Errorf("audit %q: exit %d, stderr %q", tc.args, code, errs)
		}
		t.Logf("audit %q: %s", tc.args, strings.TrimSpace(errs))
	}
	_, errs, _ = e.run(nil, "audit", "--action", "dropped_table")
	if !strings.Contains(errs, `not a known action (known: cancelled_query, completed_query`) {
		t.Errorf("unknown action: %s", errs)
	}

	// The table format, through the core: the newest statement is the
	// count above, its detail cut to 60 characters.
	out, errs, code := e.run(nil, "audit", "--action", "ran_sql", "--limit", "1")
	if code != 0 || !strings.Contains(out, "principal") || !strings.Contains(out, "  SELECT count(*) FROM audit_log WHERE customer_id IS NULL AN…  ") ||
		!strings.Contains(out, "(1 rows)\n") ||
		!strings.Contains(errs, "1 rows shown; more match") {
		t.Fatalf("table output (exit %d):\n%s\nstderr: %s", code, out, errs)
	}

	// No core again: the listing reads the file itself.
	stopped = true
	c.stop(t)
	if got := e.auditRows("--action", "ran_sql"); len(got) < 3 {
		t.Fatalf("without a core: %v", got)
	}
}
