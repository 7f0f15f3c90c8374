package memory

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/activitybi/activitybi/internal/event"
	"github.com/activitybi/activitybi/internal/warehouse"
	"github.com/activitybi/activitybi/internal/warehouse/duckdb"
)

// clock is a settable clock shared by a Store and its Builder. Like a real
// clock it never reads the same twice: each reading is a microsecond after
// the previous (the store orders builds and invalidations by time).
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Microsecond)
	return c.t
}

func (c *clock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// storeBundle is a Store on the small fixture with what it told its
// callers.
type storeBundle struct {
	s       *Store
	db      *duckdb.DB
	clk     *clock
	reg     *prometheus.Registry
	mu      sync.Mutex
	changed []string
	warmed  []string
}

func (b *storeBundle) changes() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := b.changed
	b.changed = nil
	return out
}

// newStore makes a Store on db whose clock starts at start (the Builder
// shares it).
func newStore(t *testing.T, db *duckdb.DB, clk *clock, mod func(*StoreOptions)) *storeBundle {
	t.Helper()
	b := &storeBundle{db: db, clk: clk, reg: prometheus.NewRegistry()}
	o := StoreOptions{
		Builder:    newBuilder(t, db, func(o *Options) { o.Now = clk.Now }),
		Warehouse:  db,
		Now:        clk.Now,
		Registerer: b.reg,
		// The fixture's last events are hours before smallNow.
		ActiveFor: 48 * time.Hour,
		OnChange:  func(c string) { b.mu.Lock(); b.changed = append(b.changed, c); b.mu.Unlock() },
		OnWarm:    func(_ context.Context, c string) { b.mu.Lock(); b.warmed = append(b.warmed, c); b.mu.Unlock() },
	}
	if mod != nil {
		mod(&o)
	}
	s, err := NewStore(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Wait)
	b.s = s
	return b
}

func (b *storeBundle) load(t *testing.T, customer string) (*Context, Loaded) {
	t.Helper()
	l, err := b.s.Load(context.Background(), customer, "")
	if err != nil {
		t.Fatalf("Load(%s): %v", customer, err)
	}
	var c Context
	if err := json.Unmarshal(l.JSON, &c); err != nil {
		t.Fatal(err)
	}
	if c.Version != l.Version || !c.AsOf.Equal(l.AsOf) {
		t.Fatalf("JSON says version %d as of %s, Loaded %d %s", c.Version, c.AsOf, l.Version, l.AsOf)
	}
	return &c, l
}

func (b *storeBundle) loads(from string) float64 {
	return testutil.ToFloat64(b.s.m.loads.WithLabelValues(from))
}

func hasFact(c *Context, metric, value string) bool {
	for _, f := range c.Facts {
		if f.Metric == metric && string(f.Value) == value {
			return true
		}
	}
	return false
}

func addInsight(t *testing.T, db *duckdb.DB, customer, id, metric, value string, ts time.Time) {
	t.Helper()
	x, err := event.NormalizeInsight(event.InsightInput{AtomID: id, TS: &ts, Subject: "user", Metric: metric, Value: json.RawMessage(value)},
		event.Defaults{Customer: customer, Source: event.SourceMCP, Now: func() time.Time { return ts }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Load(context.Background(), &warehouse.Batch{Insights: []event.Insight{x}}); err != nil {
		t.Fatal(err)
	}
}

func addEvent(t *testing.T, db *duckdb.DB, customer, id string, ts time.Time) {
	t.Helper()
	e, err := event.Normalize(event.Input{ActivityID: id, TS: &ts, Activity: "called_tool", Features: json.RawMessage(`{"tool":"NewTool"}`)},
		event.Defaults{Customer: customer, Source: event.SourceMCP, Now: func() time.Time { return ts }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Load(context.Background(), &warehouse.Batch{Events: []event.Event{e}}); err != nil {
		t.Fatal(err)
	}
}

// TestStoreMaterializes: the first load builds and writes the row; the
// next is the row, identical; each customer gets only its own row.
func TestStoreMaterializes(t *testing.T) {
	t.Parallel()
	b := newStore(t, smallFixture(t), &clock{t: smallNow}, nil)
	first, l1 := b.load(t, "alice")
	if l1.FromRow || b.loads("build") != 1 {
		t.Fatalf("first load: from row %v, builds %v", l1.FromRow, b.loads("build"))
	}
	b.s.Wait() // the background row write
	b.clk.Advance(time.Second)
	second, l2 := b.load(t, "alice")
	if !l2.FromRow || b.loads("row") != 1 || l2.Version != l1.Version || string(l2.JSON) != string(l1.JSON) {
		t.Fatalf("second load: from row %v (rows %v), version %d vs %d", l2.FromRow, b.loads("row"), l2.Version, l1.Version)
	}
	if !hasFact(first, "editor", `"vim"`) || !hasFact(second, "editor", `"vim"`) {
		t.Fatal("alice's fact is missing")
	}
	bob, lb := b.load(t, "bob")
	if lb.FromRow || !hasFact(bob, "prefers_language", `"bob-lang"`) || hasFact(bob, "editor", `"vim"`) {
		t.Fatalf("bob's context: from row %v, facts %+v", lb.FromRow, bob.Facts)
	}
	b.s.Wait()
	if bob2, _ := b.load(t, "bob"); hasFact(bob2, "editor", `"vim"`) || !hasFact(bob2, "prefers_language", `"bob-lang"`) {
		t.Fatalf("bob's row holds %+v", bob2.Facts)
	}
	if n := testutil.ToFloat64(b.s.m.rowWrites.WithLabelValues("written")); n != 2 {
		t.Fatalf("%v rows written, want 2", n)
	}
	// A scoped context is built each time and never written.
	if l, err := b.s.Load(context.Background(), "alice", "billing"); err != nil || l.FromRow {
		t.Fatalf("scope: %+v %v", l, err)
	}
	if _, err := b.s.Load(context.Background(), "alice", "no-such-scope"); err == nil || !strings.Contains(err.Error(), "no-such-scope") {
		t.Fatalf("unknown scope: %v", err)
	}
}

// TestStoreInvalidate: after Invalidate the row stops answering at once,
// the next load sees the new insight with a new version, and Run rebuilds
// the customer in the background so that loads are row reads again.
func TestStoreInvalidate(t *testing.T) {
	t.Parallel()
	b := newStore(t, smallFixture(t), &clock{t: smallNow}, func(o *StoreOptions) { o.RefreshEvery = time.Hour })
	_, before := b.load(t, "alice")
	b.s.Wait()
	b.clk.Advance(time.Second)
	addInsight(t, b.db, "alice", "new-1", "favourite_color", `"teal"`, b.clk.Now())
	b.s.Invalidate("alice")
	c, l := b.load(t, "alice")
	if l.FromRow || !hasFact(c, "favourite_color", `"teal"`) || l.Version <= before.Version {
		t.Fatalf("after Invalidate: from row %v, version %d (before %d), facts %+v", l.FromRow, l.Version, before.Version, c.Facts)
	}
	b.s.Wait()

	// With Run: an invalidation is rebuilt eagerly and reported.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.s.Run(ctx) }()
	defer func() { cancel(); <-done }()
	b.clk.Advance(time.Second)
	addInsight(t, b.db, "alice", "new-2", "favourite_color", `"red"`, b.clk.Now())
	b.s.Invalidate("alice")
	deadline := time.Now().Add(10 * time.Second)
	// Each invalidation is either rebuilt on its own or joins the first
	// one's rebuild while that is still queued (when Run had not taken it
	// yet); either way a rebuild after this one's addInsight ends it.
	// (The warm-up that Run starts may have built the change first, so the
	// rebuild may find it unchanged.)
	rebuilt := func() float64 {
		return testutil.ToFloat64(b.s.m.refreshed.WithLabelValues(KindInvalidated, ResultChanged)) +
			testutil.ToFloat64(b.s.m.refreshed.WithLabelValues(KindInvalidated, ResultUnchanged)) +
			testutil.ToFloat64(b.s.m.soonCoalesced)
	}
	for rebuilt() < 2 {
		if time.Now().After(deadline) {
			t.Fatal("the invalidated customer was not rebuilt")
		}
		time.Sleep(5 * time.Millisecond)
	}
	c, l = b.load(t, "alice")
	if !l.FromRow || !hasFact(c, "favourite_color", `"red"`) {
		t.Fatalf("after the eager rebuild: from row %v, facts %+v", l.FromRow, c.Facts)
	}
}

// TestStoreInvalidateCoalesces: a customer invalidated again while its
// eager rebuild is still queued is not queued twice (one rebuild after the
// last invalidation covers them all), and once its rebuild has started an
// invalidation queues it again.
func TestStoreInvalidateCoalesces(t *testing.T) {
	t.Parallel()
	b := newStore(t, smallFixture(t), &clock{t: smallNow}, func(o *StoreOptions) { o.RefreshEvery = time.Hour })
	for range 5 {
		b.s.Invalidate("alice")
	}
	b.s.Invalidate("bob")
	if n, c := len(b.s.soon), testutil.ToFloat64(b.s.m.soonCoalesced); n != 2 || c != 4 {
		t.Fatalf("queued %d rebuilds (want 2), coalesced %v invalidations (want 4)", n, c)
	}
	// What runSoon does as it takes alice: from then on she queues again.
	if c := <-b.s.soon; c != "alice" {
		t.Fatalf("first queued: %q", c)
	}
	b.s.dequeued("alice")
	b.s.Invalidate("alice")
	b.s.Invalidate("bob")
	if n, c := len(b.s.soon), testutil.ToFloat64(b.s.m.soonCoalesced); n != 2 || c != 5 {
		t.Fatalf("after alice's rebuild started: queued %d (want 2: bob, alice), coalesced %v (want 5)", n, c)
	}
}

// TestStoreRefresh: a round rebuilds active customers, skips those with
// nothing new, keeps the version of an unchanged content, and reports
// only changes.
func TestStoreRefresh(t *testing.T) {
	t.Parallel()
	b := newStore(t, smallFixture(t), &clock{t: smallNow}, nil)
	ctx := context.Background()
	st, err := b.s.Warm(ctx)
	if err != nil || st.Customers != 2 || st.Changed != 2 {
		t.Fatalf("warm: %+v %v", st, err)
	}
	if got := strings.Join(b.changes(), ","); got != "bob,alice" && got != "alice,bob" {
		t.Fatalf("warm reported changes of %q", got)
	}
	b.mu.Lock()
	warmed := len(b.warmed)
	b.mu.Unlock()
	if warmed != 2 {
		t.Fatalf("OnWarm called %d times, want 2", warmed)
	}
	_, l := b.load(t, "alice")
	if !l.FromRow {
		t.Fatal("after the warm-up a load must be a row read")
	}

	b.clk.Advance(time.Minute)
	st, err = b.s.Refresh(ctx)
	if err != nil || st.Skipped != 2 || len(b.changes()) != 0 {
		t.Fatalf("nothing new: %+v %v", st, err)
	}
	// A new event for alice: only she is rebuilt, and her content changed.
	addEvent(t, b.db, "alice", "fresh-1", b.clk.Now())
	st, err = b.s.Refresh(ctx)
	if err != nil || st.Changed != 1 || st.Skipped != 1 {
		t.Fatalf("after alice's event: %+v %v", st, err)
	}
	if got := b.changes(); len(got) != 1 || got[0] != "alice" {
		t.Fatalf("changes %q, want alice", got)
	}
	c, l2 := b.load(t, "alice")
	if !l2.FromRow || l2.Version <= l.Version || c.Tools[len(c.Tools)-1].Tool == "" {
		t.Fatalf("alice after refresh: from row %v version %d (was %d)", l2.FromRow, l2.Version, l.Version)
	}
	found := false
	for _, tl := range c.Tools {
		found = found || tl.Tool == "NewTool"
	}
	if !found {
		t.Fatalf("the new event's tool is not in %+v", c.Tools)
	}
	// Past RebuildAfter both are rebuilt; nothing changed, so the versions
	// stay and nothing is reported.
	b.clk.Advance(DefaultRebuildAfter)
	st, err = b.s.Refresh(ctx)
	if err != nil || st.Unchanged != 2 || len(b.changes()) != 0 {
		t.Fatalf("after RebuildAfter: %+v %v", st, err)
	}
	_, l3 := b.load(t, "alice")
	if !l3.FromRow || l3.Version != l2.Version || !l3.AsOf.After(l2.AsOf) {
		t.Fatalf("unchanged rebuild: version %d (was %d), as of %s (was %s)", l3.Version, l2.Version, l3.AsOf, l2.AsOf)
	}
	if n := testutil.ToFloat64(b.s.m.refreshed.WithLabelValues(KindRefresh, ResultUnchanged)); n != 2 {
		t.Fatalf("refreshed{unchanged} = %v", n)
	}
	if n := testutil.CollectAndCount(b.s.m.refreshDur); n != 2 {
		t.Fatalf("refresh duration series: %d, want warm and refresh", n)
	}

	// A limit of one customer per round: the most recent only, counted.
	lim := newStore(t, b.db, b.clk, func(o *StoreOptions) { o.MaxRefreshCustomers = 1 })
	st, _ = lim.s.Refresh(ctx)
	if !st.Limited || st.Customers != 1 || testutil.ToFloat64(lim.s.m.roundLimited.WithLabelValues(KindRefresh)) != 1 {
		t.Fatalf("limited round: %+v", st)
	}
}

// TestStoreRowFreshness: a row answers only while younger than MaxAge and
// only if this process wrote it; a new process keeps the version of an
// unchanged content, so cursors survive a restart.
func TestStoreRowFreshness(t *testing.T) {
	t.Parallel()
	db := smallFixture(t)
	clk := &clock{t: smallNow}
	b := newStore(t, db, clk, func(o *StoreOptions) { o.MaxAge = 10 * time.Minute })
	_, l1 := b.load(t, "alice")
	b.s.Wait()
	clk.Advance(11 * time.Minute)
	if _, l := b.load(t, "alice"); l.FromRow || l.Version != l1.Version {
		t.Fatalf("a row older than MaxAge answered (from row %v), or the version moved (%d vs %d)", l.FromRow, l.Version, l1.Version)
	}
	b.s.Wait()
	// A new Store (another process) does not trust the row it finds...
	clk.Advance(time.Second)
	b2 := newStore(t, db, clk, nil)
	if _, l := b2.load(t, "alice"); l.FromRow || l.Version != l1.Version {
		t.Fatalf("new process: from row %v, version %d (want %d kept)", l.FromRow, l.Version, l1.Version)
	}
	b2.s.Wait()
	// ... until it has written it itself.
	if _, l := b2.load(t, "alice"); !l.FromRow {
		t.Fatal("the new process's own row does not answer")
	}
	// NoRows: every load builds.
	b3 := newStore(t, db, clk, func(o *StoreOptions) { o.NoRows = true })
	for range 2 {
		if _, l := b3.load(t, "alice"); l.FromRow {
			t.Fatal("NoRows answered from a row")
		}
		b3.s.Wait()
	}
}

// TestStoreConcurrent: loads, refreshes and invalidations of two customers
// at once (under -race); every answer is the right customer's.
func TestStoreConcurrent(t *testing.T) {
	t.Parallel()
	b := newStore(t, smallFixture(t), &clock{t: smallNow}, nil)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 10 {
				who, other := "alice", `"bob-lang"`
				if (i+j)%2 == 1 {
					who, other = "bob", `"go"`
				}
				switch j % 5 {
				case 3:
					b.s.Invalidate(who)
				case 4:
					if _, err := b.s.Refresh(ctx); err != nil {
						errs <- err
					}
				}
				l, err := b.s.Load(ctx, who, "")
				if err != nil {
					errs <- err
					continue
				}
				var c Context
				if err := json.Unmarshal(l.JSON, &c); err != nil {
					errs <- err
					continue
				}
				if hasFact(&c, "prefers_language", other) {
					errs <- fmt.Errorf("%s got the other customer's fact", who)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestStoreOptions(t *testing.T) {
	t.Parallel()
	db := openWarehouse(t)
	bld := newBuilder(t, db, nil)
	for name, o := range map[string]StoreOptions{
		"no builder":       {Warehouse: db},
		"no warehouse":     {Builder: bld},
		"tiny refresh":     {Builder: bld, Warehouse: db, RefreshEvery: time.Microsecond},
		"negative workers": {Builder: bld, Warehouse: db, Concurrency: -1},
	} {
		if _, err := NewStore(o); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	reg := prometheus.NewRegistry()
	if _, err := NewStore(StoreOptions{Builder: bld, Warehouse: db, Registerer: reg}); err != nil {
		t.Fatal(err)
	}
	if _, err := NewStore(StoreOptions{Builder: bld, Warehouse: db, Registerer: reg}); err == nil {
		t.Error("a second Store on one registry must be refused")
	}
}
