package cache

import (
	"context"

	"testing"
	"time"
)

// TestNewEpochOnStart: a core crashes after committing an insight and
// before publishing its invalidation. Redis still holds the old context,
// under a current generation. The core that starts next (NewEpoch) must
// not serve it, from L2 or through an L1 filled from it; the processes
// that were already running (an edge, another core on the same Redis) get
// colder, never wrong, and are served the new context.
func TestNewEpochOnStart(t *testing.T) {
	t.Parallel()
	r := startRedis(t)
	crashed := newCache(t, Options{RedisURL: r.URL(), NewEpoch: true})
	other := newCache(t, Options{RedisURL: r.URL(), NewEpoch: true})
	edge := newCache(t, Options{RedisURL: r.URL()})
	waitSubscribed(t, crashed, other, edge)
	var n counter
	e, src := mustGet(t, crashed, "judy", "", n.load("before", 1))
	expect(t, e, src, "before", TierLoad)
	eventually(t, 20*time.Second, "write-back", func() bool { return l2Version(t, r, DefaultNamespace, "judy", "") == 1 })
	for _, c := range []*Cache{other, edge} {
		e, src = mustGet(t, c, "judy", "", failLoad(t))
		expect(t, e, src, "before", TierL2)
	}
	// The insight is committed; the core dies before Invalidate.
	if err := crashed.Close(); err != nil {
		t.Fatal(err)
	}

	restarted := newCache(t, Options{RedisURL: r.URL(), NewEpoch: true})
	waitSubscribed(t, restarted)
	e, src = mustGet(t, restarted, "judy", "", n.load("after", 2))
	expect(t, e, src, "after", TierLoad)
	for _, c := range []*Cache{other, edge} {
		eventually(t, 10*time.Second, "L1 flushed by the new epoch", func() bool { return !l1Fresh(c, "judy", "") })
	}
	eventually(t, 20*time.Second, "new write-back", func() bool { return l2Version(t, r, DefaultNamespace, "judy", "") == 2 })
	for _, c := range []*Cache{other, edge} {
		e, src = mustGet(t, c, "judy", "", failLoad(t))
		expect(t, e, src, "after", TierL2)
	}
	// The other core keeps using L2: its own write-backs are served too.
	mustGet(t, other, "ken", "", n.load("ken", 1))
	eventually(t, 20*time.Second, "other's write-back", func() bool { return l2Version(t, r, DefaultNamespace, "ken", "") == 1 })
	e, src = mustGet(t, edge, "ken", "", failLoad(t))
	expect(t, e, src, "ken", TierL2)
	e, src = mustGet(t, restarted, "ken", "", failLoad(t))
	expect(t, e, src, "ken", TierL2)
}

// TestNewEpochBeforeL2: a NewEpoch cache whose Run has not given Redis the
// new epoch yet neither reads nor writes L2.
func TestNewEpochBeforeL2(t *testing.T) {
	t.Parallel()
	r := startRedis(t)
	edge := newCache(t, Options{RedisURL: r.URL()})
	waitSubscribed(t, edge)
	var n counter
	mustGet(t, edge, "liam", "", n.load("old", 1))
	eventually(t, 20*time.Second, "write-back", func() bool { return l2Version(t, r, DefaultNamespace, "liam", "") == 1 })

	c, err := New(Options{RedisURL: r.URL(), NewEpoch: true, L2WriteTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	e, src := mustGet(t, c, "liam", "", n.load("new", 2))
	expect(t, e, src, "new", TierLoad)
	if got := counterValue(c.m.l2Bypassed); got != 1 {
		t.Fatalf("l2 bypassed %d times, want 1", got)
	}
	c.wg.Wait() // a write-back would have run by now
	if v := l2Version(t, r, DefaultNamespace, "liam", ""); v != 1 {
		t.Fatalf("version %d in Redis: the cache wrote L2 before its epoch", v)
	}
}

// TestRedisRestoredFromSnapshot: Redis restarts from an RDB snapshot taken
// before an invalidation (persistence is on by default), so the old
// generation and the value tagged with it are both back. The core
// (NewEpoch) sees another Redis (run_id) when it resubscribes and moves the
// epoch: the restored value is not served.
func TestRedisRestoredFromSnapshot(t *testing.T) {
	t.Parallel()
	r := startRedis(t)
	core := newCache(t, Options{RedisURL: r.URL(), NewEpoch: true})
	waitSubscribed(t, core)
	var n counter
	mustGet(t, core, "mia", "", n.load("before", 1))
	eventually(t, 20*time.Second, "write-back", func() bool { return l2Version(t, r, DefaultNamespace, "mia", "") == 1 })
	ctx := context.Background()
	oldEpoch := r.client().Get(ctx, epochKey(DefaultNamespace)).Val()
	if err := r.client().Save(ctx).Err(); err != nil { // dump.rdb in the server's --dir
		t.Fatal(err)
	}
	if err := core.Invalidate(ctx, "mia"); err != nil {
		t.Fatal(err)
	}
	r.Restart() // loads dump.rdb: mia's old generation and value are back
	if l2Version(t, r, DefaultNamespace, "mia", "") != 1 {
		t.Fatal("the snapshot was not restored: the test would prove nothing")
	}
	eventually(t, 20*time.Second, "the core moves the epoch after Redis came back from a snapshot", func() bool {
		return r.client().Get(ctx, epochKey(DefaultNamespace)).Val() != oldEpoch
	})
	fresh := newCache(t, Options{RedisURL: r.URL()})
	e, src := mustGet(t, fresh, "mia", "", n.load("after", 2))
	expect(t, e, src, "after", TierLoad)
}
