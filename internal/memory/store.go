package memory

import (
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/activitybi/activitybi/internal/telemetry"
	"github.com/activitybi/activitybi/internal/warehouse"
)

//go:embed sql/row.sql
var rowSQL string

// Warehouse is what a Store needs: customer queries (for Build and for
// reading a customer's own row) and the context_cache writes and activity
// summary. The DuckDB driver satisfies it.
type Warehouse interface {
	Querier
	warehouse.ContextStore
}

// Defaults of StoreOptions.
const (
	// DefaultRefreshEvery: active customers' contexts are rebuilt this
	// often (the 5 minutes), so that new events show within it.
	DefaultRefreshEvery = 5 * time.Minute
	// DefaultActiveFor: a customer is active while its latest event or
	// insight, or the latest get_context that reached this process, is
	// younger than this.
	DefaultActiveFor = time.Hour
	// DefaultWarmFor: on start the customers with an event or insight this
	// recent are built (the 7 days).
	DefaultWarmFor = 7 * 24 * time.Hour
	// DefaultMaxAge: a row older than this never answers a load; the load
	// builds instead. Rows of active customers are rebuilt well before.
	DefaultMaxAge = time.Hour
	// DefaultRebuildAfter: a refresh rebuilds an active customer whose
	// events and insights did not change only once its row is this old, so
	// that what depends on the clock (the window of tool statistics and
	// trends) moves on too.
	DefaultRebuildAfter = 30 * time.Minute
	// DefaultRefreshConcurrency bounds the builds a round runs at once
	// (a build keeps DuckDB's two threads busy for tens of ms).
	DefaultRefreshConcurrency = 2
	// DefaultMaxRefreshCustomers bounds the customers one refresh round
	// rebuilds, the most recently active first; the limit is counted.
	DefaultMaxRefreshCustomers = 10_000
	// DefaultMaxWarmCustomers bounds the customers built on start, the
	// most recently active first; the limit is counted.
	DefaultMaxWarmCustomers = 1_000
)

const (
	// maxTracked bounds the customers the store remembers a get_context or
	// an invalidation of (about 100 bytes each). Entries older than
	// ActiveFor (get_context) or MaxAge (invalidations) are pruned first;
	// past the bound a get_context is not remembered (counted), and an
	// invalidation makes every row of this process untrusted instead.
	maxTracked = 100_000
	// soonQueue bounds the invalidated customers waiting to be rebuilt
	// eagerly; past it they are built by their next load instead
	// (counted).
	soonQueue = 1024
	// maxRowWrites bounds the row writes of loads in flight: a load
	// answers first and writes its row in the background, and under a
	// writer busy with big uploads the writes queue here, not in
	// goroutines (past it the row is not written: counted).
	maxRowWrites = 4
	// rowWriteTimeout bounds one background row write.
	rowWriteTimeout = 30 * time.Second
	// countLeftOut bounds the customers a round reads past its limit only
	// to count the ones it leaves out (about 100 bytes each, read only
	// when a round is over its limit); past it the count is a lower bound.
	countLeftOut = 10_000
	// activityTimeout bounds the summary query of a round.
	activityTimeout = 30 * time.Second
)

// StoreOptions configure NewStore. Zero means the default.
type StoreOptions struct {
	// Builder builds contexts; required.
	Builder *Builder
	// Warehouse holds context_cache; required (the Builder's warehouse).
	Warehouse Warehouse
	// Logger; nil = discard.
	Logger *slog.Logger
	// Registerer gets the activitybi_memory_* metrics; nil = not
	// registered.
	Registerer prometheus.Registerer
	// Now is the clock of row freshness and of activity; default
	// time.Now. It should be the Builder's clock: a row's updated_at is
	// its build's AsOf.
	Now func() time.Time
	// RefreshEvery, ActiveFor, WarmFor, MaxAge and RebuildAfter: see the
	// Default constants.
	RefreshEvery, ActiveFor, WarmFor, MaxAge, RebuildAfter time.Duration
	// Concurrency bounds the builds of a round; default 2.
	Concurrency int
	// MaxRefreshCustomers and MaxWarmCustomers bound a round; defaults
	// 10,000 and 1,000.
	MaxRefreshCustomers, MaxWarmCustomers int
	// NoRows makes every load build, never answering from context_cache
	// (rows are still written). For measuring the build path.
	NoRows bool
	// OnChange is told that a rebuild changed a customer's context (its
	// version moved): the caller drops it from its caches. It runs on the
	// refresh's goroutine, holding nothing of the store.
	OnChange func(customer string)
	// OnWarm is called for each customer built on start, after its row
	// is written: the caller loads it into its caches.
	OnWarm func(ctx context.Context, customer string)
}

// Store materializes contexts into context_cache and answers loads from
// there: the core's loader behind the cache tiers. See the package doc,
// "Materialization".
//
// Lock order: a customer's build lock (locks), then mu. mu is never held
// while calling out (warehouse, Builder, OnChange, OnWarm).
type Store struct {
	o       StoreOptions
	log     *slog.Logger
	m       *storeMetrics
	wh      Warehouse
	started time.Time // rows from before are not trusted (see valid)
	// countBeyond: a round reads up to this many active customers past
	// its limit, to count those it leaves out (countLeftOut).
	countBeyond int

	locks keyLocks

	mu       sync.Mutex
	state    map[string]*custState // last build per customer
	dirty    map[string]time.Time  // latest Invalidate per customer
	touched  map[string]time.Time  // latest get_context per customer
	untilAll time.Time             // rows up to this are untrusted (dirty overflow)

	soon chan string
	// queued holds the customers in soon (guarded by mu), so that a
	// customer invalidated again before its rebuild starts is not queued
	// twice: one rebuild after the last invalidation covers them all.
	queued map[string]bool
	writes chan struct{} // semaphore of background row writes
	wg     sync.WaitGroup
}

// custState is what the store knows of a customer's last build.
type custState struct {
	version   int64
	hash      [32]byte
	builtAt   time.Time
	watermark warehouse.CustomerActivity // what the build saw; zero: unknown
}

// NewStore returns a Store, or an error for a bad option.
func NewStore(o StoreOptions) (*Store, error) {
	if o.Builder == nil || o.Warehouse == nil {
		return nil, errors.New("memory: StoreOptions.Builder and Warehouse are required")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	durs := []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"RefreshEvery", &o.RefreshEvery, DefaultRefreshEvery}, {"ActiveFor", &o.ActiveFor, DefaultActiveFor},
		{"WarmFor", &o.WarmFor, DefaultWarmFor}, {"MaxAge", &o.MaxAge, DefaultMaxAge},
		{"RebuildAfter", &o.RebuildAfter, DefaultRebuildAfter},
	}
	for _, d := range durs {
		if *d.v == 0 {
			*d.v = d.def
		}
		if *d.v < time.Millisecond {
			return nil, fmt.Errorf("memory: StoreOptions.%s must be at least 1ms, got %s", d.name, *d.v)
		}
	}
	ints := []struct {
		name     string
		v        *int
		def, max int
	}{
		{"Concurrency", &o.Concurrency, DefaultRefreshConcurrency, 64},
		{"MaxRefreshCustomers", &o.MaxRefreshCustomers, DefaultMaxRefreshCustomers, 10_000_000},
		{"MaxWarmCustomers", &o.MaxWarmCustomers, DefaultMaxWarmCustomers, 10_000_000},
	}
	for _, n := range ints {
		if *n.v == 0 {
			*n.v = n.def
		}
		if *n.v < 0 || *n.v > n.max {
			return nil, fmt.Errorf("memory: StoreOptions.%s must be between 1 and %d, got %d", n.name, n.max, *n.v)
		}
	}
	m, err := newStoreMetrics(o.Registerer)
	if err != nil {
		return nil, err
	}
	return &Store{
		o: o, log: telemetry.OrDiscard(o.Logger), m: m, wh: o.Warehouse,
		started: o.Now().UTC().Truncate(time.Microsecond), countBeyond: countLeftOut,
		locks: keyLocks{m: map[string]*keyLock{}},
		state: map[string]*custState{}, dirty: map[string]time.Time{}, touched: map[string]time.Time{},
		soon: make(chan string, soonQueue), queued: map[string]bool{}, writes: make(chan struct{}, maxRowWrites),
	}, nil
}

// Loaded is a context as a load returns it: its JSON (a Context with
// Version set) and where it came from.
type Loaded struct {
	JSON    []byte
	Version int64
	AsOf    time.Time
	// FromRow is true when context_cache answered (no build).
	FromRow bool
}

// Load returns the customer's context for scope. The whole customer's
// (scope "") comes from its context_cache row when the row is fresh (see
// valid), else it is built, answered, and its row written in the
// background; a scoped context is always built (not materialized).
func (s *Store) Load(ctx context.Context, customer, scope string) (Loaded, error) {
	start := time.Now()
	l, from, err := s.load(ctx, customer, scope)
	if err != nil {
		s.m.loadErrors.Inc()
		return Loaded{}, err
	}
	s.m.loads.WithLabelValues(from).Inc()
	s.m.loadDur.WithLabelValues(from).Observe(time.Since(start).Seconds())
	return l, nil
}

func (s *Store) load(ctx context.Context, customer, scope string) (Loaded, string, error) {
	if scope != "" {
		c, err := s.o.Builder.Build(ctx, customer, scope)
		if err != nil {
			return Loaded{}, "", err
		}
		// Not materialized: the version is the build's time, so that a
		// later build of the scope has a higher one.
		c.Version = c.AsOf.UnixMicro()
		js, err := json.Marshal(c)
		if err != nil {
			return Loaded{}, "", fmt.Errorf("memory: encode context: %w", err)
		}
		return Loaded{JSON: js, Version: c.Version, AsOf: c.AsOf}, "scope", nil
	}
	if !s.o.NoRows {
		if l, ok, err := s.readValid(ctx, customer); err != nil {
			s.log.Warn("memory: context_cache read failed; building", "err", err)
		} else if ok {
			return l, "row", nil
		}
	}
	// Waiting ends with ctx: the build under way goes on for whoever else
	// waits (and writes its row).
	unlock, waited, err := s.locks.lock(ctx, customer)
	if err != nil {
		return Loaded{}, "", err
	}
	defer unlock()
	if waited && !s.o.NoRows {
		// Someone else was building it (a refresh): its row may do.
		if l, ok, err := s.readValid(ctx, customer); err == nil && ok {
			return l, "row", nil
		}
	}
	c, err := s.o.Builder.Build(ctx, customer, "")
	if err != nil {
		return Loaded{}, "", err
	}
	l, _, err := s.commit(ctx, customer, c, false)
	return l, "build", err
}

// row is a customer's context_cache row as read.
type row struct {
	json      []byte
	version   int64
	updatedAt time.Time
}

// readRow reads the customer's row of scope "" through CustomerQuery.
func (s *Store) readRow(ctx context.Context, customer string) (*row, error) {
	t, err := s.wh.CustomerQuery(ctx, customer, rowSQL, []any{""}, 1)
	if err != nil {
		return nil, fmt.Errorf("memory: read context_cache: %w", err)
	}
	if len(t.Rows) == 0 {
		return nil, nil
	}
	r := t.Rows[0]
	js, ok1 := r[0].(string)
	v, ok2 := r[1].(int64)
	at, ok3 := r[2].(time.Time)
	if !ok1 || !ok2 || !ok3 {
		return nil, fmt.Errorf("memory: context_cache row has unexpected types %T %T %T", r[0], r[1], r[2])
	}
	return &row{json: []byte(js), version: v, updatedAt: at.UTC()}, nil
}

// readValid reads the customer's row and reports whether it may answer.
func (s *Store) readValid(ctx context.Context, customer string) (Loaded, bool, error) {
	r, err := s.readRow(ctx, customer)
	if err != nil || r == nil || !s.valid(customer, r.updatedAt) {
		return Loaded{}, false, err
	}
	return Loaded{JSON: r.json, Version: r.version, AsOf: r.updatedAt, FromRow: true}, true, nil
}

// valid reports whether a row built at updatedAt may answer a load. It
// must be younger than MaxAge, built after the customer's latest
// invalidation (a build that started before the insight was committed may
// have missed it), and built by this process: a row from an earlier process
// may predate an insight whose invalidation that process did not live to
// act on, so it is rebuilt (by the warm-up on start, or by its first load).
func (s *Store) valid(customer string, updatedAt time.Time) bool {
	now := s.o.Now()
	if updatedAt.Before(s.started) || now.Sub(updatedAt) > s.o.MaxAge {
		return false
	}
	s.mu.Lock()
	d, dirty := s.dirty[customer]
	all := s.untilAll
	s.mu.Unlock()
	if dirty && !updatedAt.After(d) {
		return false
	}
	return updatedAt.After(all)
}

// commit versions a fresh build against what the customer had, records it
// and writes its row (now when sync, else in the background). It reports
// whether the version moved. The caller holds the customer's build lock.
func (s *Store) commit(ctx context.Context, customer string, c *Context, sync bool) (Loaded, bool, error) {
	hash := contentHash(c)
	s.mu.Lock()
	st := s.state[customer]
	var prev custState
	if st != nil {
		prev = *st
	}
	s.mu.Unlock()
	known := st != nil
	if !known {
		// First build in this process: the stored row's version is kept
		// when its content is the same (cursors survive a restart).
		if r, err := s.readRow(ctx, customer); err == nil && r != nil {
			var old Context
			if json.Unmarshal(r.json, &old) == nil {
				prev, known = custState{version: r.version, hash: contentHash(&old)}, true
			}
		}
	}
	version := c.AsOf.UnixMicro()
	if known {
		version = max(prev.version+1, version)
		if hash == prev.hash {
			version = prev.version
		}
	}
	c.Version = version
	js, err := json.Marshal(c)
	if err != nil {
		return Loaded{}, false, fmt.Errorf("memory: encode context: %w", err)
	}
	s.mu.Lock()
	s.state[customer] = &custState{version: version, hash: hash, builtAt: c.AsOf, watermark: prev.watermark}
	s.pruneLocked()
	s.mu.Unlock()
	r := warehouse.ContextRow{Customer: customer, Context: js, Version: version, UpdatedAt: c.AsOf}
	if sync {
		s.writeRow(ctx, r)
	} else {
		select {
		case s.writes <- struct{}{}:
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer func() { <-s.writes }()
				wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rowWriteTimeout)
				defer cancel()
				s.writeRow(wctx, r)
			}()
		default:
			s.m.rowWrites.WithLabelValues("skipped").Inc()
		}
	}
	return Loaded{JSON: js, Version: version, AsOf: c.AsOf}, !known || version != prev.version, nil
}

func (s *Store) writeRow(ctx context.Context, r warehouse.ContextRow) {
	ok, err := s.wh.PutContext(ctx, r)
	switch {
	case err != nil:
		s.m.rowWrites.WithLabelValues("failed").Inc()
		s.log.Warn("memory: writing context_cache failed; loads build until a write succeeds", "err", err)
	case !ok:
		s.m.rowWrites.WithLabelValues("superseded").Inc()
	default:
		s.m.rowWrites.WithLabelValues("written").Inc()
	}
}

// contentHash is the SHA-256 of what a context says, leaving out when it
// was built (AsOf, the window's start) and its version: two builds with
// the same hash show Claude the same thing.
func contentHash(c *Context) [32]byte {
	x := *c
	x.Version, x.AsOf, x.Coverage.WindowStart = 0, time.Time{}, time.Time{}
	b, _ := json.Marshal(&x) // a Context always encodes
	return sha256.Sum256(b)
}

// Invalidate says that the customer's context changed now (an insight was
// committed): its rows stop answering loads at once, and it is rebuilt in
// the background soon (Run), so that the next load is a row read again.
func (s *Store) Invalidate(customer string) {
	now := s.o.Now().UTC().Truncate(time.Microsecond)
	s.mu.Lock()
	if _, ok := s.dirty[customer]; !ok && len(s.dirty) >= maxTracked {
		s.pruneLocked()
	}
	if _, ok := s.dirty[customer]; ok || len(s.dirty) < maxTracked {
		s.dirty[customer] = now
	} else {
		// Cannot remember one more: distrust every row up to now.
		s.untilAll = now
		s.m.trackLimit.WithLabelValues("invalidation").Inc()
	}
	// Queued once: if its rebuild has not started, it will read this
	// change too. The send never blocks, so it is made under mu: queued
	// names the customers in soon, and the one runSoon has just taken and
	// not yet dequeued (its rebuild starts after that, so it is covered).
	coalesced, dropped := s.queued[customer], false
	if !coalesced {
		select {
		case s.soon <- customer:
			s.queued[customer] = true
		default:
			dropped = true
		}
	}
	s.mu.Unlock()
	s.m.invalidations.Inc()
	switch {
	case coalesced:
		s.m.soonCoalesced.Inc()
	case dropped:
		s.m.soonDropped.Inc()
	}
}

// dequeued is what runSoon does with a customer it took from soon, before
// it rebuilds: from then on an invalidation queues the customer again.
func (s *Store) dequeued(customer string) {
	s.mu.Lock()
	delete(s.queued, customer)
	s.mu.Unlock()
}

// Touch records a get_context of the customer: it keeps the customer
// active (refreshed every RefreshEvery) for ActiveFor.
func (s *Store) Touch(customer string) {
	now := s.o.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.touched[customer]; !ok && len(s.touched) >= maxTracked {
		s.pruneLocked()
		if len(s.touched) >= maxTracked {
			s.m.trackLimit.WithLabelValues("get_context").Inc()
			return
		}
	}
	s.touched[customer] = now
}

// pruneLocked forgets what no longer matters: invalidations older than
// MaxAge (every row they distrust is too old anyway), get_contexts older
// than ActiveFor, builds older than MaxAge (a refresh then rebuilds).
func (s *Store) pruneLocked() {
	now := s.o.Now()
	if len(s.dirty) >= maxTracked/2 {
		for c, t := range s.dirty {
			if now.Sub(t) > s.o.MaxAge {
				delete(s.dirty, c)
			}
		}
	}
	if len(s.touched) >= maxTracked/2 {
		for c, t := range s.touched {
			if now.Sub(t) > s.o.ActiveFor {
				delete(s.touched, c)
			}
		}
	}
	if len(s.state) >= maxTracked {
		for c, st := range s.state {
			if now.Sub(st.builtAt) > s.o.MaxAge {
				delete(s.state, c)
			}
		}
	}
}

// Wait waits for the background row writes of loads.
func (s *Store) Wait() { s.wg.Wait() }

// keyLocks is a lock per key, made on first use and dropped when unused.
// Waiting for one ends with the waiter's context.
type keyLocks struct {
	mu sync.Mutex
	m  map[string]*keyLock
}

type keyLock struct {
	held chan struct{} // holds one token while locked
	refs int           // holders and waiters; guarded by keyLocks.mu
}

// lock takes key's lock and reports whether it had to wait for another
// holder. When ctx ends first it returns ctx.Err() without the lock.
func (k *keyLocks) lock(ctx context.Context, key string) (unlock func(), waited bool, err error) {
	k.mu.Lock()
	l := k.m[key]
	if l == nil {
		l = &keyLock{held: make(chan struct{}, 1)}
		k.m[key] = l
	}
	l.refs++
	k.mu.Unlock()
	release := func() {
		k.mu.Lock()
		if l.refs--; l.refs == 0 {
			delete(k.m, key)
		}
		k.mu.Unlock()
	}
	select {
	case l.held <- struct{}{}:
	default:
		waited = true
		select {
		case l.held <- struct{}{}:
		case <-ctx.Done():
			release()
			return nil, true, ctx.Err()
		}
	}
	return func() {
		<-l.held
		release()
	}, waited, nil
}
