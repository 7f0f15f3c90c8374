package cache

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestLoadReturnsStale: a load that has only a stale entry (an edge's core
// served its own L1 copy, marked stale, because its warehouse failed)
// returns it as a *StaleEntry. Get serves it marked stale and keeps it in
// no tier: neither this process's L1 nor Redis may take it for fresh.
func TestLoadReturnsStale(t *testing.T) {
	t.Parallel()
	r := startRedis(t)
	c := newCache(t, Options{RedisURL: r.URL()})
	waitSubscribed(t, c)
	boom := errors.New("the core served a stale context")
	stale := func(context.Context) (Entry, error) {
		return Entry{}, &StaleEntry{Entry: Entry{Value: []byte("old"), Version: 1, AsOf: time.Unix(1700000000, 0)}, Err: boom}
	}
	e, src, err := c.Get(context.Background(), "nina", "", stale)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if string(e.Value) != "old" || !src.Stale || src.Tier != TierLoad || !errors.Is(src.Err, boom) {
		t.Fatalf("got %q from %+v, want the stale entry marked stale with its reason", e.Value, src)
	}
	c.wg.Wait() // a write-back would have run by now
	if l1Fresh(c, "nina", "") || l2Exists(t, r, DefaultNamespace, "nina", "") {
		t.Fatal("the stale entry was kept as fresh")
	}
	var n counter
	e, src = mustGet(t, c, "nina", "", n.load("new", 2))
	expect(t, e, src, "new", TierLoad)
}
