package cache

import (
	"context"
	"testing"
	"time"
)

// TestGenerationKeyEvicted: Redis may evict (maxmemory with an allkeys-*
// policy) or expire the keys that say which L2 values are current. When
// one comes back it must not make a value written before an invalidation
// current again: no process may serve the old value, from L2 or from an
// L1 filled from it.
func TestGenerationKeyEvicted(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		invalidate bool     // an invalidation between the write-back and the eviction
		evict      []string // what Redis loses: "gen", "epoch"
	}{
		{"generation after an invalidation", true, []string{"gen"}},
		{"generation and epoch after an invalidation", true, []string{"gen", "epoch"}},
		{"epoch after an invalidation", true, []string{"epoch"}},
		// Without an invalidation the old value is not stale; losing the
		// key only makes the cache colder.
		{"generation, no invalidation", false, []string{"gen"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := startRedis(t)
			a := newCache(t, Options{RedisURL: r.URL()})
			b := newCache(t, Options{RedisURL: r.URL()})
			waitSubscribed(t, a, b)
			var n counter
			e, src := mustGet(t, a, "grace", "", n.load("v1", 1))
			expect(t, e, src, "v1", TierLoad)
			eventually(t, 20*time.Second, "write-back", func() bool { return l2Exists(t, r, DefaultNamespace, "grace", "") })
			if tc.invalidate {
				if err := a.Invalidate(context.Background(), "grace"); err != nil {
					t.Fatal(err)
				}
			}
			ctx := context.Background()
			for _, k := range tc.evict {
				key := genKey(DefaultNamespace, hashCustomer("grace"))
				if k == "epoch" {
					key = epochKey(DefaultNamespace)
				}
				if n, err := r.client().Del(ctx, key).Result(); err != nil || n != 1 {
					t.Fatalf("DEL %s: %d %v (want the key to exist)", key, n, err)
				}
			}
			if !l2Exists(t, r, DefaultNamespace, "grace", "") {
				t.Fatal("the old value is gone from Redis: the test would prove nothing")
			}
			// b has no L1 copy: the old value must not come from L2.
			e, src = mustGet(t, b, "grace", "", n.load("v2", 2))
			expect(t, e, src, "v2", TierLoad)
			// a's L1 copy was invalidated (or, without an invalidation, is
			// still fresh and still right): the eviction changes nothing there.
			if tc.invalidate {
				e, src = mustGet(t, a, "grace", "", n.load("v2", 2))
				if string(e.Value) != "v2" || src.Tier == TierL1 {
					t.Fatalf("a after the eviction: %q from %+v, want v2 from L2 or load", e.Value, src)
				}
			} else {
				e, src = mustGet(t, a, "grace", "", failLoad(t))
				expect(t, e, src, "v1", TierL1)
			}
			// The write-back under the new generation is served again.
			eventually(t, 20*time.Second, "new write-back", func() bool { return l2Version(t, r, DefaultNamespace, "grace", "") == 2 })
			c := newCache(t, Options{RedisURL: r.URL()})
			e, src = mustGet(t, c, "grace", "", failLoad(t))
			expect(t, e, src, "v2", TierL2)
		})
	}
}
