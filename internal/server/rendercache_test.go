package server

import (
	"context"
	"encoding/json"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/activitybi/activitybi/internal/cache"
	"github.com/activitybi/activitybi/internal/memory"
)

// TestMemoryPageReuse: a hot get_context reuses the decoded context and
// the rendered page of the entry it was given; a new entry (new version)
// is decoded and rendered anew; customers never share.
func TestMemoryPageReuse(t *testing.T) {
	t.Parallel()
	c, err := cache.New(cache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	var version atomic.Int64
	version.Store(1)
	load := func(_ context.Context, customer, _ string) (cache.Entry, error) {
		v := version.Load()
		asOf := time.Unix(1_800_000_000+v, 0).UTC()
		ctx := memory.Context{Version: v, AsOf: asOf,
			Facts: []memory.Fact{{Subject: "user", Metric: "word", Value: json.RawMessage(`"` + customer + `-v` + string(rune('0'+v)) + `"`), TS: asOf}}}
		b, _ := json.Marshal(ctx)
		return cache.Entry{Value: b, Version: v, AsOf: asOf}, nil
	}
	m := &Memory{Cache: c, Load: load}
	ctx := context.Background()
	page := func(customer string, rr memory.RenderRequest) memory.Page {
		t.Helper()
		p, _, err := m.page(ctx, customer, "", rr)
		if err != nil {
			t.Fatal(err)
		}
		return p.Page
	}
	a1 := page("alice", memory.RenderRequest{})
	a2 := page("alice", memory.RenderRequest{})
	if !strings.Contains(a1.Text, "alice-v1") || a1.Text != a2.Text {
		t.Fatalf("pages %q %q", a1.Text, a2.Text)
	}
	ca, _, _ := m.Get(ctx, "alice", "")
	cb, _, _ := m.Get(ctx, "alice", "")
	if ca != cb {
		t.Fatal("the decoded context was not reused")
	}
	if b := page("bob", memory.RenderRequest{}); !strings.Contains(b.Text, "bob-v1") || strings.Contains(b.Text, "alice") {
		t.Fatalf("bob's page: %q", b.Text)
	}
	// Another request of the same entry is rendered for itself.
	if f := page("alice", memory.RenderRequest{Topics: []string{"tools"}}); strings.Contains(f.Text, "alice-v1") {
		t.Fatalf("tools only: %q", f.Text)
	}
	// A new version replaces it.
	version.Store(2)
	c.InvalidateLocal("alice")
	if a3 := page("alice", memory.RenderRequest{}); !strings.Contains(a3.Text, "alice-v2") || a3.Version != 2 {
		t.Fatalf("after a new version: %q", a3.Text)
	}
	// Bad requests are not kept and still fail.
	for range 2 {
		if _, _, err := m.page(ctx, "alice", "", memory.RenderRequest{MaxTokens: 5}); err == nil {
			t.Fatal("max_tokens 5 accepted")
		}
	}
}

// TestRenderCacheBounded: the decoded contexts kept stay within
// maxRenderedBytes, whatever the customers.
func TestRenderCacheBounded(t *testing.T) {
	t.Parallel()
	var rc renderCache
	big := `{"facts":[{"subject":"user","metric":"m","value":"` + strings.Repeat("x", 1<<20) + `","ts":"2026-01-01T00:00:00Z"}]}`
	for i := range 20 {
		e := cache.Entry{Value: []byte(big), Version: int64(i + 1), AsOf: time.Unix(int64(i), 0)}
		if _, err := rc.decoded(string(rune('a'+i)), "", e); err != nil {
			t.Fatal(err)
		}
		if rc.bytes > maxRenderedBytes || rc.bytes != len(rc.m)*len(big) {
			t.Fatalf("after %d customers: %d bytes in %d entries", i+1, rc.bytes, len(rc.m))
		}
	}
	if _, err := rc.decoded("x", "", cache.Entry{Value: []byte("{"), Version: 1}); err == nil {
		t.Fatal("bad JSON decoded")
	}
}
