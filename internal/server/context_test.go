package server

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/activitybi/activitybi/internal/cache"
	"github.com/activitybi/activitybi/internal/memory"
	"github.com/activitybi/activitybi/internal/spool"
)

// setupMemory is an in-memory MCP client of tools whose get_context loads a
// fixed context per customer (or fails when failing is set).
func setupMemory(t *testing.T) (*toolBundle, *cache.Cache, *atomic.Bool, *atomic.Int32) {
	t.Helper()
	c, err := cache.New(cache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	failing := &atomic.Bool{}
	loads := &atomic.Int32{}
	load := func(_ context.Context, customer, scope string) (cache.Entry, error) {
		loads.Add(1)
		if failing.Load() {
			return cache.Entry{}, errors.New("core unreachable")
		}
		if scope == "nope" {
			return cache.Entry{}, &memory.UnknownScopeError{Scope: scope}
		}
		now := time.Now().UTC()
		ctx := memory.Context{AsOf: now, Version: now.UnixMicro(),
			Facts: []memory.Fact{{Subject: "user", Metric: "prefers_language", Value: json.RawMessage(`"` + customer + `-go"`), TS: now}}}
		v, _ := json.Marshal(ctx)
		return cache.Entry{Value: v, Version: ctx.Version, AsOf: now}, nil
	}
	b := setupToolsWith(t, "alice", spool.Options{}, &Memory{Cache: c, Load: load})
	return b, c, failing, loads
}

func TestGetContextTool(t *testing.T) {
	t.Parallel()
	b, c, failing, loads := setupMemory(t)
	res := b.call(t, "get_context", map[string]any{})
	if res.IsError {
		t.Fatal(text(res))
	}
	if !strings.Contains(text(res), "alice-go") {
		t.Fatalf("text lacks the fact: %s", text(res))
	}
	sc := res.StructuredContent.(map[string]any)
	if sc["stale"] != false || sc["source"] != "load" {
		t.Fatalf("structured = %v", sc)
	}
	if b.call(t, "get_context", map[string]any{}).StructuredContent.(map[string]any)["source"] != "l1" || loads.Load() != 1 {
		t.Fatalf("the second call must come from L1 (loads %d)", loads.Load())
	}
	// The core fails after an invalidation: the older context is served, marked stale.
	failing.Store(true)
	c.InvalidateLocal("alice")
	res = b.call(t, "get_context", map[string]any{})
	if res.IsError || res.StructuredContent.(map[string]any)["stale"] != true {
		t.Fatalf("want the stale context, got %s %v", text(res), res.StructuredContent)
	}
	for args, want := range map[string]string{
		`{"max_tokens": 10}`:       "max_tokens",
		`{"max_tokens": 50000}`:    "max_tokens",
		`{"max_tokens": "big"}`:    "max_tokens: must be a whole number",
		`{"topics": "facts"}`:      "topics: must be a list",
		`{"topics": ["weather"]}`:  "weather",
		`{"cursor": "!!"}`:         "cursor",
		`{"items": "yes"}`:         "items: must be true or false",
		`{"customer_id": "bob"}`:   "customer_id: cannot be set",
		`{"scope": "x", "zzz": 1}`: `unknown field "zzz"`,
	} {
		var m map[string]any
		json.Unmarshal([]byte(args), &m)
		res := b.call(t, "get_context", m)
		if !res.IsError || !strings.Contains(text(res), want) {
			t.Errorf("%s: want an error about %q, got %s", args, want, text(res))
		}
	}
}

func TestGetContextAllTiersFail(t *testing.T) {
	t.Parallel()
	b, _, failing, _ := setupMemory(t)
	failing.Store(true)
	res := b.call(t, "get_context", map[string]any{})
	if !res.IsError || !strings.Contains(text(res), "core unreachable") {
		t.Fatalf("want the reason when every tier fails: %s", text(res))
	}
	failing.Store(false)
	res = b.call(t, "get_context", map[string]any{"scope": "nope"})
	if !res.IsError || !strings.Contains(text(res), "nope") {
		t.Fatalf("unknown scope: %s", text(res))
	}
}
