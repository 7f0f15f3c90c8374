package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/activitybi/activitybi/internal/audit"
	"github.com/activitybi/activitybi/internal/cache"
	"github.com/activitybi/activitybi/internal/event"
	"github.com/activitybi/activitybi/internal/memory"
	"github.com/activitybi/activitybi/internal/spool"
	"github.com/activitybi/activitybi/internal/upload"
)

// TestGetContextAuditIsCoalesced: get_context over MCP, audited through a
// real spool and loaded by the uploader into a real audit_log, as an edge
// does. Repeated successful reads are one row for the first and one
// summary per scope once the log closes; refused and failed reads are a
// row each, at once.
func TestGetContextAuditIsCoalesced(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx := context.Background()
	db := migratedWarehouse(t, dir)
	sdir := filepath.Join(dir, "spool")
	w, err := spool.Open(spool.Options{Dir: sdir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	alog, err := audit.New(audit.Options{Appender: w, Source: event.SourceMCP, CoalesceWindow: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { alog.Close() })
	up, err := upload.New(upload.Options{SpoolDir: sdir, Warehouse: db})
	if err != nil {
		t.Fatal(err)
	}

	c, err := cache.New(cache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	var failing atomic.Bool
	load := func(_ context.Context, customer, scope string) (cache.Entry, error) {
		if failing.Load() {
			return cache.Entry{}, errors.New("core unreachable")
		}
		if scope == "nope" {
			return cache.Entry{}, &memory.UnknownScopeError{Scope: scope}
		}
		now := time.Now().UTC()
		mc := memory.Context{AsOf: now, Version: now.UnixMicro(),
			Facts: []memory.Fact{{Subject: "user", Metric: "prefers_language", Value: json.RawMessage(`"go"`), TS: now}}}
		v, _ := json.Marshal(mc)
		return cache.Entry{Value: v, Version: mc.Version, AsOf: now}, nil
	}
	s, err := NewMCPServer(MCPOptions{Appender: w, Identity: FixedIdentity("alice"), Version: "test",
		Memory: &Memory{Cache: c, Load: load}, Audit: alog})
	if err != nil {
		t.Fatal(err)
	}
	cs := connectInMemory(t, s)
	call := func(args map[string]any) *mcp.CallToolResult {
		t.Helper()
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "get_context", Arguments: args})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}

	var pageBytes int64
	for range 30 {
		res := call(map[string]any{})
		if res.IsError {
			t.Fatal(text(res))
		}
		pageBytes = int64(len(text(res)))
	}
	for range 4 {
		if res := call(map[string]any{"scope": "billing"}); res.IsError {
			t.Fatal(text(res))
		}
	}
	for range 5 {
		if res := call(map[string]any{"scope": "nope"}); !res.IsError {
			t.Fatal("unknown scope served")
		}
	}
	failing.Store(true)
	for range 3 {
		if res := call(map[string]any{"scope": "never-loaded"}); !res.IsError {
			t.Fatal("served with every tier failing")
		}
	}

	rows := func() [][]any {
		t.Helper()
		dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := up.Drain(dctx); err != nil {
			t.Fatal(err)
		}
		tab, err := db.Query(ctx, `SELECT target, outcome, count(*), sum(bytes),
  count(*) FILTER (WHERE detail LIKE '% calls coalesced between %'), max(detail)
FROM audit_log WHERE customer_id = 'alice' AND action = 'got_context' AND principal = 'stdio'
GROUP BY ALL ORDER BY target, outcome`, 0)
		if err != nil {
			t.Fatal(err)
		}
		return tab.Rows
	}
	show := func(rs [][]any) string { return fmt.Sprint(rs) }
	// Before the windows end: the first read of each scope, every refusal
	// and every error.
	got := rows()
	want := [][]any{
		{"scope:(all)", "ok", int64(1), pageBytes, int64(0)},
		{"scope:billing", "ok", int64(1), nil, int64(0)},
		{"scope:never-loaded", "error", int64(3), int64(0), int64(0)},
		{"scope:nope", "refused", int64(5), int64(0), int64(0)},
	}
	check := func(got, want [][]any) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("audit_log %s; want %v", show(got), want)
		}
		for i := range want {
			for j, v := range want[i] {
				if v == nil {
					continue
				}
				if fmt.Sprint(got[i][j]) != fmt.Sprint(v) {
					t.Fatalf("audit_log row %d column %d: %v; want %v (all: %s)", i, j, got[i][j], v, show(got))
				}
			}
		}
	}
	check(got, want)
	if d, _ := got[3][5].(string); !strings.Contains(d, "nope") {
		t.Errorf("a refusal's detail says why: %q", d)
	}
	if err := alog.Close(); err != nil {
		t.Fatal(err)
	}
	got = rows()
	want[0] = []any{"scope:(all)", "ok", int64(2), 30 * pageBytes, int64(1)}
	want[1] = []any{"scope:billing", "ok", int64(2), nil, int64(1)}
	check(got, want)
	if d := got[0][5].(string); !strings.HasPrefix(d, "29 calls coalesced between ") {
		t.Errorf("summary detail %q", d)
	}
	if d := got[1][5].(string); !strings.HasPrefix(d, "3 calls coalesced between ") {
		t.Errorf("summary detail %q", d)
	}
}
