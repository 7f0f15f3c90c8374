package cache

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// go-redis logs dial failures process-wide; the tests cause many.
	redis.SetLogger(RedisLogger{L: slog.New(slog.DiscardHandler)})
	goleak.VerifyTestMain(m)
}

// fakeClock is Options.Now for tests that move time (freshness only).
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.t
}

func (f *fakeClock) Advance(d time.Duration) {
	f.mu.Lock()
	f.t = f.t.Add(d)
	f.mu.Unlock()
}

// newCache returns a Cache with Run running; both end at cleanup.
func newCache(t testing.TB, opts Options) *Cache {
	t.Helper()
	// Redis's own timeouts (defaults 50 ms to read, 250 ms to write) are
	// for production; under -race with every package's tests at once a
	// round trip can take longer, the read or write-back is then skipped
	// by design, and a test waiting for a write-back fails. Tests that need
	// a timeout to fire set it themselves.
	if opts.L2ReadTimeout == 0 {
		opts.L2ReadTimeout = 5 * time.Second
	}
	if opts.L2WriteTimeout == 0 {
		opts.L2WriteTimeout = 5 * time.Second
	}
	c, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		_ = c.Close()
	})
	return c
}

// counter is a load function that counts its calls and returns value with
// the given version.
type counter struct {
	calls atomic.Int64
}

func (n *counter) load(value string, version int64) func(context.Context) (Entry, error) {
	return func(context.Context) (Entry, error) {
		n.calls.Add(1)
		return Entry{Value: []byte(value), Version: version, AsOf: time.Unix(1700000000, 0).UTC()}, nil
	}
}

func failLoad(t testing.TB) func(context.Context) (Entry, error) {
	return func(context.Context) (Entry, error) {
		t.Error("load called, want an answer from the cache")
		return Entry{}, errors.New("unexpected load")
	}
}

func mustGet(t testing.TB, c *Cache, customer, scope string, load func(context.Context) (Entry, error)) (Entry, Source) {
	t.Helper()
	e, src, err := c.Get(context.Background(), customer, scope, load)
	if err != nil {
		t.Fatalf("Get(%q, %q): %v", customer, scope, err)
	}
	return e, src
}

func expect(t testing.TB, e Entry, src Source, value string, tier Tier) {
	t.Helper()
	if string(e.Value) != value || src.Tier != tier || src.Stale {
		t.Fatalf("got %q from %+v, want %q from %s", e.Value, src, value, tier)
	}
}

// eventually polls cond until it holds or within has passed.
func eventually(t testing.TB, within time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > within {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(2 * time.Millisecond)
	}
	return time.Since(start)
}

// l1Fresh reports whether c would answer (customer, scope) from L1.
func l1Fresh(c *Cache, customer, scope string) bool {
	v, ok := c.l1.GetIfPresent(l1Key{customer, scope})
	return ok && c.fresh(v, c.now())
}

func l2Exists(t testing.TB, r *redisServer, ns, customer, scope string) bool {
	t.Helper()
	n, err := r.client().Exists(context.Background(), deriveKeys(ns, customer, scope).data).Result()
	if err != nil {
		t.Fatal(err)
	}
	return n == 1
}

// l2Version is the version of the entry Redis holds for the pair, or -1.
func l2Version(t testing.TB, r *redisServer, ns, customer, scope string) int64 {
	t.Helper()
	ks := deriveKeys(ns, customer, scope)
	b, err := r.client().Get(context.Background(), ks.data).Bytes()
	if err != nil {
		return -1
	}
	e, _, _, err := decodeBlob(b, ks.digest)
	if err != nil {
		t.Fatal(err)
	}
	return e.Version
}

func waitSubscribed(t testing.TB, cs ...*Cache) {
	t.Helper()
	for _, c := range cs {
		eventually(t, 10*time.Second, "subscribed", c.Subscribed)
	}
}

func TestTiers(t *testing.T) {
	t.Parallel()
	r := startRedis(t)
	clock := newFakeClock()
	a := newCache(t, Options{RedisURL: r.URL(), Now: clock.Now})
	b := newCache(t, Options{RedisURL: r.URL(), Now: clock.Now})
	waitSubscribed(t, a, b)
	var n counter

	// Miss everywhere: load, then written to L1 and (in the background) L2.
	e, src := mustGet(t, a, "alice", "proj", n.load("v1", 1))
	expect(t, e, src, "v1", TierLoad)
	if e.Version != 1 || !e.AsOf.Equal(time.Unix(1700000000, 0)) {
		t.Fatalf("entry %+v", e)
	}
	e, src = mustGet(t, a, "alice", "proj", failLoad(t))
	expect(t, e, src, "v1", TierL1)
	eventually(t, 20*time.Second, "write-back to L2", func() bool { return l2Exists(t, r, DefaultNamespace, "alice", "proj") })

	// Another instance (another process): L2, then its own L1.
	e, src = mustGet(t, b, "alice", "proj", failLoad(t))
	expect(t, e, src, "v1", TierL2)
	if e.Version != 1 || !e.AsOf.Equal(time.Unix(1700000000, 0)) {
		t.Fatalf("entry from L2 %+v", e)
	}
	expect(t, e, src, "v1", TierL2)
	e, src = mustGet(t, b, "alice", "proj", failLoad(t))
	expect(t, e, src, "v1", TierL1)

	// L1 expired: L2 answers again.
	clock.Advance(DefaultL1TTL + time.Second)
	e, src = mustGet(t, a, "alice", "proj", failLoad(t))
	expect(t, e, src, "v1", TierL2)

	// Another scope is another entry.
	e, src = mustGet(t, a, "alice", "other", n.load("v2", 2))
	expect(t, e, src, "v2", TierLoad)
	if got := n.calls.Load(); got != 2 {
		t.Fatalf("%d loads, want 2", got)
	}
}

func TestL1Eviction(t *testing.T) {
	t.Parallel()
	r := startRedis(t)
	// Room for about two entries of 1 KiB: the rest are evicted from L1 and
	// answered by L2.
	c := newCache(t, Options{RedisURL: r.URL(), L1MaxBytes: 2*(1024+entryOverhead) + 100})
	waitSubscribed(t, c)
	var n counter
	val := strings.Repeat("x", 1024)
	for i := range 20 {
		mustGet(t, c, "bob", fmt.Sprint(i), n.load(val, int64(i)))
	}
	eventually(t, 20*time.Second, "write-backs", func() bool {
		for i := range 20 {
			if !l2Exists(t, r, DefaultNamespace, "bob", fmt.Sprint(i)) {
				return false
			}
		}
		return true
	})
	c.l1.CleanUp()
	if ws := c.l1.WeightedSize(); ws > uint64(c.opts.L1MaxBytes) {
		t.Fatalf("L1 holds %d bytes, max %d", ws, c.opts.L1MaxBytes)
	}
	tiers := map[Tier]int{}
	for i := range 20 {
		e, src := mustGet(t, c, "bob", fmt.Sprint(i), failLoad(t))
		if string(e.Value) != val || e.Version != int64(i) {
			t.Fatalf("entry %d: version %d", i, e.Version)
		}
		tiers[src.Tier]++
	}
	if tiers[TierL2] < 15 {
		t.Fatalf("answers by tier %v: want most from L2", tiers)
	}
}

func TestInvalidateAcrossProcesses(t *testing.T) {
	t.Parallel()
	r := startRedis(t)
	a := newCache(t, Options{RedisURL: r.URL()})
	b := newCache(t, Options{RedisURL: r.URL()})
	waitSubscribed(t, a, b)
	var n counter
	for _, c := range []*Cache{a, b} {
		for _, cust := range []string{"carol", "dave"} {
			for _, scope := range []string{"", "p1", "p2"} {
				mustGet(t, c, cust, scope, n.load(cust+"/"+scope+"/v1", 1))
			}
		}
	}
	for _, scope := range []string{"", "p1", "p2"} {
		if !l1Fresh(b, "carol", scope) {
			t.Fatalf("carol/%s not in b's L1", scope)
		}
	}

	if err := a.Invalidate(context.Background(), "carol"); err != nil {
		t.Fatal(err)
	}
	// a: at once.
	for _, scope := range []string{"", "p1", "p2"} {
		if l1Fresh(a, "carol", scope) {
			t.Fatalf("carol/%s still fresh in a after Invalidate", scope)
		}
	}
	// b: within 1 s.
	took := eventually(t, time.Second, "b drops carol", func() bool {
		return !l1Fresh(b, "carol", "") && !l1Fresh(b, "carol", "p1") && !l1Fresh(b, "carol", "p2")
	})
	t.Logf("invalidation reached the other instance in %v", took)
	// dave stays everywhere.
	for _, c := range []*Cache{a, b} {
		for _, scope := range []string{"", "p1", "p2"} {
			e, src := mustGet(t, c, "dave", scope, failLoad(t))
			expect(t, e, src, "dave/"+scope+"/v1", TierL1)
		}
	}
	// carol's L2 entries are dead too: b loads the new version.
	e, src := mustGet(t, b, "carol", "p1", n.load("carol/p1/v2", 2))
	expect(t, e, src, "carol/p1/v2", TierLoad)
	eventually(t, 20*time.Second, "new version in L2", func() bool { return l2Version(t, r, DefaultNamespace, "carol", "p1") == 2 })
	e, src = mustGet(t, a, "carol", "p1", failLoad(t))
	expect(t, e, src, "carol/p1/v2", TierL2)
}

func TestRedisKilledAndRestarted(t *testing.T) {
	t.Parallel()
	r := startRedis(t)
	a := newCache(t, Options{RedisURL: r.URL()})
	b := newCache(t, Options{RedisURL: r.URL()})
	waitSubscribed(t, a, b)
	var n counter
	mustGet(t, a, "erin", "hot", n.load("hot", 1))
	mustGet(t, b, "erin", "hot", n.load("hot", 1))

	// Gets never fail while Redis is killed and restarted under them.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var gets, errs atomic.Int64
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				c := a
				if w%2 == 1 {
					c = b
				}
				scope := "hot"
				if i%3 == 0 {
					scope = fmt.Sprintf("cold-%d-%d", w, i) // L1 miss: L2 or load
				}
				_, _, err := c.Get(context.Background(), "erin", scope, n.load(scope, 1))
				gets.Add(1)
				if err != nil {
					errs.Add(1)
					t.Errorf("Get during the outage: %v", err)
				}
				time.Sleep(time.Millisecond)
			}
		}()
	}

	time.Sleep(100 * time.Millisecond)
	r.Kill()
	eventually(t, 5*time.Second, "subscribers notice", func() bool { return !a.Subscribed() && !b.Subscribed() })
	// An invalidation while Redis is away: done locally, kept for retry.
	if err := a.Invalidate(context.Background(), "frank"); err == nil {
		t.Fatal("Invalidate with Redis down: no error")
	}
	if a.pendingN.Load() != 1 {
		t.Fatalf("pending invalidations %d, want 1", a.pendingN.Load())
	}
	time.Sleep(300 * time.Millisecond)
	r.Restart()
	waitSubscribed(t, a, b)
	time.Sleep(100 * time.Millisecond)
	close(stop)
	wg.Wait()
	t.Logf("%d gets during the outage, %d errors", gets.Load(), errs.Load())

	// The pending invalidation reached the restarted (empty) Redis.
	eventually(t, 20*time.Second, "pending invalidation retried", func() bool { return a.pendingN.Load() == 0 })
	if n, _ := r.client().Exists(context.Background(), genKey(DefaultNamespace, hashCustomer("frank"))).Result(); n != 1 {
		t.Fatal("frank's generation key is not in Redis after the retry")
	}

	// L2 is used again. (A Get that met a connection broken by the restart
	// may have rested L2 for a moment: poll.)
	var m counter
	e, src := mustGet(t, a, "grace", "s", m.load("g1", 1))
	expect(t, e, src, "g1", TierLoad)
	eventually(t, 20*time.Second, "write-back after restart", func() bool {
		if l2Exists(t, r, DefaultNamespace, "grace", "s") {
			return true
		}
		a.InvalidateLocal("grace") // load and write back again
		mustGet(t, a, "grace", "s", m.load("g1", 1))
		return false
	})
	noLoad := func(context.Context) (Entry, error) { return Entry{}, errors.New("no load here") }
	eventually(t, 20*time.Second, "b reads L2 after restart", func() bool {
		e, src, err := b.Get(context.Background(), "grace", "s", noLoad)
		return err == nil && src.Tier == TierL2 && string(e.Value) == "g1"
	})

	// Pub/sub works again: an invalidation from a reaches b.
	if err := a.Invalidate(context.Background(), "grace"); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Second, "b drops grace after the restart", func() bool { return !l1Fresh(b, "grace", "s") })
}

// TestPendingRetriedOnBusyChannel: an invalidation Redis did not take is
// retried while the subscription stays up, even when the channel never
// falls quiet (other processes invalidating all the time).
func TestPendingRetriedOnBusyChannel(t *testing.T) {
	t.Parallel()
	r := startRedis(t)
	// The default write timeout, so that a 600 ms write pause makes the
	// invalidation fail.
	a := newCache(t, Options{RedisURL: r.URL(), L2WriteTimeout: 250 * time.Millisecond})
	waitSubscribed(t, a)
	cl := r.client()
	ctx := context.Background()

	// Another process invalidates other customers every 50 ms.
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		noise := encodeInvalidation(hashCustomer("someone-else"), strings.Repeat("0", originHexLen))
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			_ = cl.Publish(ctx, channelName(DefaultNamespace), noise).Err()
		}
	}()
	defer func() { close(stop); <-done }()
	eventually(t, 20*time.Second, "noise received", func() bool {
		return testutil.ToFloat64(a.m.invReceived.WithLabelValues("pubsub")) > 2
	})

	// Redis refuses writes for a moment (not reads, not the subscription):
	// the invalidation's Redis part times out and is kept for retry.
	if err := cl.Do(ctx, "CLIENT", "PAUSE", "600", "WRITE").Err(); err != nil {
		t.Fatal(err)
	}
	if err := a.Invalidate(ctx, "rita"); err == nil {
		t.Fatal("Invalidate while Redis pauses writes: no error")
	}
	if a.pendingN.Load() != 1 {
		t.Fatalf("pending invalidations %d, want 1", a.pendingN.Load())
	}
	if !a.Subscribed() {
		t.Fatal("the subscription went away; this test needs it to stay")
	}
	took := eventually(t, 5*time.Second, "pending invalidation retried", func() bool { return a.pendingN.Load() == 0 })
	t.Logf("retried within %v", took)
	if n, _ := cl.Exists(ctx, genKey(DefaultNamespace, hashCustomer("rita"))).Result(); n != 1 {
		t.Fatal("rita's generation key is not in Redis after the retry")
	}
}

func TestIsolation(t *testing.T) {
	t.Parallel()
	r := startRedis(t)
	const ns = "iso"
	a := newCache(t, Options{RedisURL: r.URL(), Namespace: ns})
	b := newCache(t, Options{RedisURL: r.URL(), Namespace: ns})
	waitSubscribed(t, a, b)

	// Pairs whose naive concatenations collide, and strings with key or glob
	// syntax.
	pairs := []l1Key{
		{"a:b", "x"}, {"a", "b:x"}, {"a", "x"}, {"a", ":x"}, {"a:", "x"}, {"a", ""}, {"", "a"},
		{"a b", "x"}, {"a", " b x"}, {"*", "x"}, {"a*", "*"}, {"ünï", "cöde"}, {"a\x00b", "x"}, {"a", "\x00bx"},
		{"iso:ctx:a", "x"}, {"[ab]", "?"},
	}
	value := func(p l1Key) string { return fmt.Sprintf("%q|%q", p.customer, p.scope) }
	var n counter
	for _, p := range pairs {
		e, src := mustGet(t, a, p.customer, p.scope, n.load(value(p), 1))
		expect(t, e, src, value(p), TierLoad)
	}
	eventually(t, 20*time.Second, "write-backs", func() bool {
		for _, p := range pairs {
			if !l2Exists(t, r, ns, p.customer, p.scope) {
				return false
			}
		}
		return true
	})
	for _, p := range pairs {
		e, src := mustGet(t, b, p.customer, p.scope, failLoad(t))
		expect(t, e, src, value(p), TierL2)
		e, src = mustGet(t, a, p.customer, p.scope, failLoad(t))
		expect(t, e, src, value(p), TierL1)
	}

	// Keys name no customer or scope: a value per pair, a generation per
	// customer, the namespace's epoch.
	keys := r.keys()
	customers := map[string]bool{}
	for _, p := range pairs {
		customers[p.customer] = true
	}
	var ctxKeys, genKeys int
	for _, k := range keys {
		switch {
		case strings.HasPrefix(k, ns+":ctx:") && len(k) == len(ns)+5+custHexLen+1+scopeHexLen:
			ctxKeys++
		case strings.HasPrefix(k, ns+":gen:") && len(k) == len(ns)+5+custHexLen:
			genKeys++
		case k == epochKey(ns):
		default:
			t.Fatalf("key %q: not <ns>:ctx:<hash>:<hash>, <ns>:gen:<hash> or <ns>:epoch", k)
		}
		for _, p := range pairs {
			for _, s := range []string{p.customer, p.scope} {
				if len(s) > 1 && strings.Contains(k[len(ns)+1:], s) {
					t.Fatalf("key %q contains %q", k, s)
				}
			}
		}
	}
	if ctxKeys != len(pairs) || genKeys != len(customers) || len(keys) != len(pairs)+len(customers)+1 {
		t.Fatalf("%d keys (%d values, %d generations), want %d values, %d generations and the epoch: %q",
			len(keys), ctxKeys, genKeys, len(pairs), len(customers), keys)
	}
	gens := func() map[string]string {
		out := map[string]string{}
		for c := range customers {
			out[c] = r.client().Get(context.Background(), genKey(ns, hashCustomer(c))).Val()
		}
		return out
	}
	before := gens()

	// Invalidating "a" touches only "a": not "a:b", "a:", "a b", ...
	sub := r.client().Subscribe(context.Background(), channelName(ns))
	defer sub.Close()
	if _, err := sub.Receive(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := a.Invalidate(context.Background(), "a"); err != nil {
		t.Fatal(err)
	}
	msg, err := sub.ReceiveMessage(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if want := hashCustomer("a").String() + " " + a.id; msg.Payload != want {
		t.Fatalf("payload %q, want %q", msg.Payload, want)
	}
	eventually(t, time.Second, "b drops a", func() bool { return !l1Fresh(b, "a", "x") })
	for _, c := range []*Cache{a, b} {
		for _, p := range pairs {
			fresh := l1Fresh(c, p.customer, p.scope)
			if want := p.customer != "a"; fresh != want {
				t.Fatalf("%+v: fresh in L1 %v, want %v", p, fresh, want)
			}
		}
	}
	for c, g := range gens() {
		if moved := g != before[c]; moved != (c == "a") {
			t.Fatalf("customer %q: generation %q -> %q", c, before[c], g)
		}
	}
	for _, p := range pairs {
		e, src := mustGet(t, b, p.customer, p.scope, n.load("new", 2))
		if p.customer == "a" {
			expect(t, e, src, "new", TierLoad)
		} else {
			expect(t, e, src, value(p), TierL1)
		}
	}
}

// TestL2Collision puts one pair's value under another pair's key, as a
// collision of the truncated hashes would: it must not be served.
func TestL2Collision(t *testing.T) {
	t.Parallel()
	r := startRedis(t)
	c := newCache(t, Options{RedisURL: r.URL()})
	waitSubscribed(t, c)
	var n counter
	mustGet(t, c, "mallory", "s", n.load("mallory's", 1))
	eventually(t, 20*time.Second, "write-back", func() bool { return l2Exists(t, r, DefaultNamespace, "mallory", "s") })
	cl := r.client()
	ctx := context.Background()
	blob, err := cl.Get(ctx, deriveKeys(DefaultNamespace, "mallory", "s").data).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.Set(ctx, deriveKeys(DefaultNamespace, "victim", "s").data, blob, 0).Err(); err != nil {
		t.Fatal(err)
	}
	e, src := mustGet(t, c, "victim", "s", n.load("victim's", 1))
	expect(t, e, src, "victim's", TierLoad)
	// A corrupt value is a miss, and is replaced.
	if err := cl.Set(ctx, deriveKeys(DefaultNamespace, "trent", "s").data, "garbage", 0).Err(); err != nil {
		t.Fatal(err)
	}
	e, src = mustGet(t, c, "trent", "s", n.load("trent's", 1))
	expect(t, e, src, "trent's", TierLoad)
}

func TestWithoutRedis(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	c := newCache(t, Options{Now: clock.Now})
	var n counter
	e, src := mustGet(t, c, "heidi", "s", n.load("v1", 1))
	expect(t, e, src, "v1", TierLoad)
	e, src = mustGet(t, c, "heidi", "s", failLoad(t))
	expect(t, e, src, "v1", TierL1)
	mustGet(t, c, "ivan", "s", n.load("i1", 1))

	c.InvalidateLocal("heidi")
	if l1Fresh(c, "heidi", "s") || !l1Fresh(c, "ivan", "s") {
		t.Fatal("InvalidateLocal dropped the wrong customer")
	}
	e, src = mustGet(t, c, "heidi", "s", n.load("v2", 2))
	expect(t, e, src, "v2", TierLoad)
	// Invalidate without Redis is local.
	if err := c.Invalidate(context.Background(), "heidi"); err != nil {
		t.Fatal(err)
	}
	e, src = mustGet(t, c, "heidi", "s", n.load("v3", 3))
	expect(t, e, src, "v3", TierLoad)
	// TTL.
	clock.Advance(DefaultL1TTL)
	e, src = mustGet(t, c, "ivan", "s", n.load("i2", 2))
	expect(t, e, src, "i2", TierLoad)
	if c.Subscribed() {
		t.Fatal("subscribed without Redis")
	}
}

func TestStale(t *testing.T) {
	t.Parallel()
	boom := errors.New("warehouse down")
	failing := func(context.Context) (Entry, error) { return Entry{}, boom }
	for _, tc := range []struct {
		name      string
		staleFor  time.Duration
		advance   time.Duration
		invalid   bool
		wantStale bool
	}{
		{name: "expired", advance: DefaultL1TTL + time.Minute, wantStale: true},
		{name: "invalidated", invalid: true, wantStale: true},
		{name: "too old", advance: DefaultL1TTL + DefaultStaleFor + time.Second},
		{name: "disabled", staleFor: -1, advance: DefaultL1TTL + time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			clock := newFakeClock()
			reg := prometheus.NewRegistry()
			c := newCache(t, Options{Now: clock.Now, StaleFor: tc.staleFor, Registerer: reg})
			var n counter
			mustGet(t, c, "judy", "s", n.load("old", 1))
			clock.Advance(tc.advance)
			if tc.invalid {
				c.InvalidateLocal("judy")
			}
			e, src, err := c.Get(context.Background(), "judy", "s", failing)
			if !tc.wantStale {
				var ce *Error
				if !errors.As(err, &ce) || !errors.Is(err, boom) || ce.L2 != nil {
					t.Fatalf("err %v (%T), want *Error wrapping the load's", err, err)
				}
				return
			}
			if err != nil || !src.Stale || src.Tier != TierL1 || string(e.Value) != "old" || !errors.Is(src.Err, boom) {
				t.Fatalf("got %q %+v %v, want the stale entry", e.Value, src, err)
			}
			if got := testutil.ToFloat64(c.m.staleServes); got != 1 {
				t.Fatalf("stale serves %v", got)
			}
		})
	}
	// No entry at all: the load's error, with why L2 did not answer.
	c := newCache(t, Options{RedisURL: "redis://127.0.0.1:1/0"})
	_, _, err := c.Get(context.Background(), "judy", "s", failing)
	var ce *Error
	if !errors.As(err, &ce) || !errors.Is(err, boom) || ce.L2 == nil {
		t.Fatalf("err %v, want *Error with the load's and redis' reasons", err)
	}
	t.Logf("error without any tier: %v", err)
}

func TestSingleFlight(t *testing.T) {
	t.Parallel()
	c := newCache(t, Options{})
	var calls atomic.Int64
	release := make(chan struct{})
	load := func(context.Context) (Entry, error) {
		calls.Add(1)
		<-release
		return Entry{Value: []byte("v")}, nil
	}
	var wg sync.WaitGroup
	const callers = 50
	started := make(chan struct{}, callers)
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			started <- struct{}{}
			e, _, err := c.Get(context.Background(), "kate", "s", load)
			if err != nil || string(e.Value) != "v" {
				t.Errorf("Get: %q %v", e.Value, err)
			}
		}()
	}
	for range callers {
		<-started
	}
	eventually(t, 20*time.Second, "a load started", func() bool { return calls.Load() == 1 })
	time.Sleep(20 * time.Millisecond) // let the others join
	close(release)
	wg.Wait()
	if got := calls.Load(); got != 1 {
		t.Fatalf("%d loads for %d concurrent Gets, want 1", got, callers)
	}
}

// TestInvalidateDuringLoad: a load under way when the customer is
// invalidated is not joined by later Gets, and its result is not fresh.
func TestInvalidateDuringLoad(t *testing.T) {
	t.Parallel()
	c := newCache(t, Options{})
	release := make(chan struct{})
	inLoad := make(chan struct{})
	slow := func(context.Context) (Entry, error) {
		close(inLoad)
		<-release
		return Entry{Value: []byte("before")}, nil
	}
	done := make(chan Entry)
	go func() {
		e, _, err := c.Get(context.Background(), "leo", "s", slow)
		if err != nil {
			t.Error(err)
		}
		done <- e
	}()
	<-inLoad
	c.InvalidateLocal("leo")
	var n counter
	e, src := mustGet(t, c, "leo", "s", n.load("after", 2))
	expect(t, e, src, "after", TierLoad)
	close(release)
	if e := <-done; string(e.Value) != "before" {
		t.Fatalf("first Get %q", e.Value)
	}
	// The older load finished last; it did not replace the newer entry.
	e, src = mustGet(t, c, "leo", "s", failLoad(t))
	expect(t, e, src, "after", TierL1)
}

// beforePublish is a go-redis hook that runs fn once, just before the first
// pipeline that publishes an invalidation reaches Redis.
type beforePublish struct {
	once sync.Once
	fn   func()
}

func (h *beforePublish) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *beforePublish) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return next
}

func (h *beforePublish) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, c := range cmds {
			if c.Name() == "publish" {
				h.once.Do(h.fn)
			}
		}
		return next(ctx, cmds)
	}
}

// TestInvalidateRacesL2Read: a Get of the invalidating process that reads
// L2 after Invalidate dropped the customer from L1 but before Redis has the
// new generation finds the old value; that value must not enter L1 as
// fresh, or the process serves it for L1TTL after Invalidate returned.
func TestInvalidateRacesL2Read(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		// cachedHere: the invalidating process has the customer in its L1
		// (else only Redis has it, e.g. another replica wrote it).
		cachedHere bool
	}{
		{name: "cached here", cachedHere: true},
		{name: "only in redis"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := startRedis(t)
			writer := newCache(t, Options{RedisURL: r.URL()})
			a := newCache(t, Options{RedisURL: r.URL()})
			waitSubscribed(t, writer, a)
			var n counter
			mustGet(t, writer, "quinn", "s", n.load("old", 1))
			eventually(t, 20*time.Second, "write-back", func() bool { return l2Exists(t, r, DefaultNamespace, "quinn", "s") })
			if tc.cachedHere {
				e, src := mustGet(t, a, "quinn", "s", failLoad(t))
				expect(t, e, src, "old", TierL2)
			}

			// A Get under way while the invalidation is on its way to Redis.
			a.rdb.AddHook(&beforePublish{fn: func() {
				e, src := mustGet(t, a, "quinn", "s", failLoad(t))
				expect(t, e, src, "old", TierL2)
			}})
			if err := a.Invalidate(context.Background(), "quinn"); err != nil {
				t.Fatal(err)
			}
			if l1Fresh(a, "quinn", "s") {
				t.Fatal("the value read from L2 before the new generation reached Redis is fresh in L1 after Invalidate returned")
			}
			e, src := mustGet(t, a, "quinn", "s", n.load("new", 2))
			expect(t, e, src, "new", TierLoad)
		})
	}
}

func TestCallerCancels(t *testing.T) {
	t.Parallel()
	c := newCache(t, Options{})
	loadCtx := make(chan context.Context, 1)
	load := func(ctx context.Context) (Entry, error) {
		loadCtx <- ctx
		<-ctx.Done()
		return Entry{}, ctx.Err()
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, _, err := c.Get(ctx, "mike", "s", load)
		errc <- err
	}()
	lctx := <-loadCtx
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("Get: %v", err)
	}
	select {
	case <-lctx.Done():
	case <-time.After(time.Second):
		t.Fatal("load not cancelled when its last caller left")
	}
}

func TestLoadPanics(t *testing.T) {
	t.Parallel()
	c := newCache(t, Options{})
	_, _, err := c.Get(context.Background(), "nina", "s", func(context.Context) (Entry, error) { panic("oops") })
	if err == nil || !strings.Contains(err.Error(), "oops") {
		t.Fatalf("err %v", err)
	}
}

func TestClose(t *testing.T) {
	t.Parallel()
	c, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	var n counter
	mustGet(t, c, "olga", "s", n.load("v", 1))
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Get(context.Background(), "olga", "s", n.load("v", 1)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Get after Close: %v", err)
	}
	if err := c.Run(context.Background()); err != nil {
		t.Fatalf("Run after Close: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	r := startRedis(t)
	reg := prometheus.NewRegistry()
	a := newCache(t, Options{RedisURL: r.URL(), Registerer: reg})
	b := newCache(t, Options{RedisURL: r.URL(), Registerer: reg}) // shares the metrics
	waitSubscribed(t, a, b)
	var n counter
	mustGet(t, a, "pat", "s", n.load(strings.Repeat("v", 100), 1))
	mustGet(t, a, "pat", "s", n.load("", 1))
	eventually(t, 20*time.Second, "write-back", func() bool { return l2Exists(t, r, DefaultNamespace, "pat", "s") })
	mustGet(t, b, "pat", "s", failLoad(t))
	mustGet(t, a, "pat", "t", n.load(strings.Repeat("w", 50), 1))
	mustGet(t, a, "pat", "t", n.load(strings.Repeat("w", 60), 1)) // L1 hit
	if err := a.Invalidate(context.Background(), "pat"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "received", func() bool {
		return testutil.ToFloat64(a.m.invReceived.WithLabelValues("pubsub")) == 1
	})
	mustGet(t, a, "pat", "s", n.load(strings.Repeat("v", 110), 2)) // replaces
	b.InvalidateLocal("pat")
	a.l1.CleanUp() // WeightedSize catches up with buffered writes
	b.l1.CleanUp()

	for name, want := range map[string]float64{
		`activitybi_cache_hits_total{process="core",tier="l1"}`:                      2,
		`activitybi_cache_hits_total{process="core",tier="l2"}`:                      1,
		`activitybi_cache_misses_total{process="core",tier="l1"}`:                    4,
		`activitybi_cache_misses_total{process="core",tier="l2"}`:                    3,
		`activitybi_cache_loads_total{process="core"}`:                               3,
		`activitybi_cache_invalidations_sent_total{process="core"}`:                  1,
		`activitybi_cache_invalidations_received_total{process="core",via="pubsub"}`: 1,
		`activitybi_cache_invalidations_received_total{process="core",via="local"}`:  1,
		`activitybi_cache_pubsub_subscribed`:                                         2,
		`activitybi_cache_l1_entries`:                                                3,
		`activitybi_cache_l1_bytes`:                                                  float64(a.l1.WeightedSize() + b.l1.WeightedSize()),
	} {
		if got := metricValue(t, reg, name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if got := metricValue(t, reg, `activitybi_cache_lookup_duration_seconds_count{process="core",tier="l2"}`); got != 4 {
		t.Errorf("l2 lookups observed %v, want 4", got)
	}
}

// metricValue reads one sample ("name{label=\"v\"}") from reg.
func metricValue(t testing.TB, reg *prometheus.Registry, sample string) float64 {
	t.Helper()
	name, labels, _ := strings.Cut(sample, "{")
	labels = strings.TrimSuffix(labels, "}")
	suffix := ""
	if base, ok := strings.CutSuffix(name, "_count"); ok {
		name, suffix = base, "_count"
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			var ls []string
			for _, lp := range m.GetLabel() {
				ls = append(ls, fmt.Sprintf("%s=%q", lp.GetName(), lp.GetValue()))
			}
			if strings.Join(ls, ",") != labels {
				continue
			}
			switch {
			case suffix == "_count":
				return float64(m.GetHistogram().GetSampleCount())
			case m.Counter != nil:
				return m.GetCounter().GetValue()
			case m.Gauge != nil:
				return m.GetGauge().GetValue()
			}
		}
	}
	t.Fatalf("no sample %s", sample)
	return 0
}

func TestNewValidates(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		opts Options
		want string
	}{
		{"namespace glob", Options{Namespace: "a*"}, "namespace"},
		{"namespace colon", Options{Namespace: "a:b"}, "namespace"},
		{"negative ttl", Options{L1TTL: -1}, "negative"},
		{"negative size", Options{L1MaxBytes: -1}, "negative"},
		{"bad url", Options{RedisURL: "http://user:secret@host:1/0"}, "redis url"},
		{"unparsable url", Options{RedisURL: "redis://user:secret@host:1/0%zz"}, "redis url"},
	} {
		_, err := New(tc.opts)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want %q", tc.name, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("%s: error shows the password: %v", tc.name, err)
		}
	}
}
