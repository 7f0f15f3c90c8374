package cache

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/url"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/maypok86/otter/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/activitybi/activitybi/internal/telemetry"
)

// Entry is the materialized context of one customer and scope, encoded by
// the caller. The cache never looks inside Value.
type Entry struct {
	Value   []byte
	Version int64
	AsOf    time.Time
}

// Tier names the place that answered a Get.
type Tier string

// The tiers, nearest first.
const (
	TierL1   Tier = "l1"   // this process's memory
	TierL2   Tier = "l2"   // Redis
	TierLoad Tier = "load" // the caller's load function
)

// Source says where a Get's entry came from.
type Source struct {
	Tier Tier
	// Stale is set when every tier failed and the entry is an L1 entry past
	// its TTL or invalidated, kept for this case (Options.StaleFor).
	Stale bool
	// Err is why no fresh entry could be had, when Stale (an *Error).
	Err error
}

// String is the tier's name, with " (stale)" when stale: "l1", "l2", "load".
func (s Source) String() string {
	if s.Stale {
		return string(s.Tier) + " (stale)"
	}
	return string(s.Tier)
}

// Error is Get's error when no tier could answer: L2 missed or failed, and
// load failed.
type Error struct {
	Load error // why load failed
	L2   error // why L2 did not answer; nil when it had no entry or there is no L2
}

func (e *Error) Error() string {
	if e.L2 != nil {
		return fmt.Sprintf("cache: load: %v (redis: %v)", e.Load, e.L2)
	}
	return "cache: load: " + e.Load.Error()
}

func (e *Error) Unwrap() []error {
	if e.L2 != nil {
		return []error{e.Load, e.L2}
	}
	return []error{e.Load}
}

// StaleEntry is the error a load returns when all it could get is an entry
// that may be out of date: its own source served it marked stale (an
// edge's core answering from its stale L1 while its warehouse fails). Get
// serves Entry marked stale ([Source].Stale, with Err as [Source].Err) and
// keeps it in no tier, so that no process takes it for fresh.
type StaleEntry struct {
	Entry Entry
	Err   error // why no fresh entry could be had; required (nil: Get fails)
}

func (e *StaleEntry) Error() string {
	if e.Err == nil {
		return "stale entry"
	}
	return "stale entry: " + e.Err.Error()
}

func (e *StaleEntry) Unwrap() error { return e.Err }

// ErrClosed is returned by Get after Close.
var ErrClosed = errors.New("cache: closed")

// Defaults of Options.
const (
	DefaultL1MaxBytes     = 64 << 20
	DefaultL1TTL          = 5 * time.Minute
	DefaultStaleFor       = time.Hour
	DefaultL2TTL          = 30 * time.Minute
	DefaultL2ReadTimeout  = 50 * time.Millisecond
	DefaultL2WriteTimeout = 250 * time.Millisecond
	DefaultL2RetryAfter   = time.Second
	DefaultNamespace      = "activitybi"
)

const (
	// genBytes: epochs and generations are this many random bytes, so
	// that a new one never equals one used before (a value tagged with an
	// old one must never match again).
	genBytes = 8
	// genMargin is how much longer a customer's generation key lives than
	// any value written under it, so that a value never outlives the
	// generation it is checked against.
	genMargin = time.Minute
	// entryOverhead approximates the bytes of one L1 entry besides its value
	// and key strings: the otter node, the l1Value and the map slot.
	entryOverhead = 192
	// pruneMargin: a customer's invalidation state is dropped this long after
	// every L1 entry that refers to it has expired.
	pruneMargin = time.Minute
	// minPruneAt is the registry size below which it is never pruned.
	minPruneAt = 4096
	// maxPending bounds the invalidations remembered for retry while Redis is
	// away (about 50 bytes each).
	maxPending = 100_000
	// dialTimeout bounds a new Redis connection; reads also have the
	// per-call deadline.
	dialTimeout = time.Second
	// The subscriber reconnects after backoffMin, doubling to backoffMax,
	// with full jitter.
	backoffMin = 50 * time.Millisecond
	backoffMax = 5 * time.Second
	// healthEvery: a quiet subscription is pinged this often, and pending
	// invalidations are retried at the same pace. With no answer for
	// deadAfter it is dropped and made anew.
	healthEvery = time.Second
	deadAfter   = 3 * healthEvery
	// subscribeTimeout bounds subscribing and its confirmation.
	subscribeTimeout = 5 * time.Second
	// l1TimedEvery: one L1 lookup in this many is timed for the latency
	// histogram. A lookup costs a few hundred ns, of which reading the clock
	// is a third on a VM's clock source.
	l1TimedEvery = 16
)

// Options configure a Cache. Zero values mean the defaults.
type Options struct {
	// L1MaxBytes bounds this process's L1 (values, keys and overhead);
	// default 64 MiB.
	L1MaxBytes int64
	// L1TTL is how long an L1 entry is fresh after it was written; default
	// 5 min.
	L1TTL time.Duration
	// StaleFor is how long past L1TTL an entry is kept to be served, marked
	// stale, when every tier fails; default 1 h; negative: never serve stale.
	StaleFor time.Duration
	// RedisURL enables L2 and pub/sub invalidation: redis://host:port/db, or
	// rediss:// for TLS (user and password in the URL). "" = no L2.
	RedisURL string
	// L2TTL is how long a value lives in Redis; default 30 min.
	L2TTL time.Duration
	// L2ReadTimeout bounds one L2 read; default 50 ms.
	L2ReadTimeout time.Duration
	// L2WriteTimeout bounds one L2 write-back or invalidation; default 250 ms.
	L2WriteTimeout time.Duration
	// L2RetryAfter: after a Redis error, L2 is skipped this long (the
	// subscriber's reconnection ends it early); default 1 s.
	L2RetryAfter time.Duration
	// NewEpoch is for a process that commits to the warehouse (a core):
	// when Run first subscribes, and when it resubscribes to a Redis that
	// restarted or was replaced meanwhile, it gives the namespace a new
	// random epoch in Redis, so that no value written before (by any
	// process) is served again, and tells every other process to mark its
	// L1 not fresh. Until Redis has taken it, this process neither reads
	// nor writes L2. See the package doc, "Restarts". Default false (an
	// edge).
	NewEpoch bool
	// Namespace prefixes every Redis key and the channel; letters, digits
	// and ._- only; default "activitybi".
	Namespace string
	// Logger; nil = discard.
	Logger *slog.Logger
	// Registerer gets the activitybi_cache_* metrics; nil = not registered.
	Registerer prometheus.Registerer
	// Now is the clock of freshness (L1TTL, StaleFor); nil = time.Now.
	Now func() time.Time
}

// Cache is the two-tier cache. It is safe for concurrent use.
//
// Lock order: no mutex is held while another is taken (flightMu, regMu and
// pendMu are independent); otter's bucket locks are held only inside
// setL1's compute function, which takes none of them.
type Cache struct {
	opts      Options
	log       *slog.Logger
	m         *metrics
	now       func() time.Time
	fakeNow   bool
	id        string // origin of this Cache's pub/sub messages
	retention time.Duration
	l1        *otter.Cache[l1Key, *l1Value]
	rdb       *redis.Client // nil: no L2
	channel   string
	epochKey  string

	// seq orders loads and invalidations: an L1 entry is fresh only if the
	// flight that made it took its seq after its customer's latest
	// invalidation and after the latest flush.
	seq     atomic.Uint64
	flushed atomic.Uint64

	regMu     sync.Mutex
	reg       map[custHash]*custState
	nextPrune int

	l2DownUntil atomic.Int64 // unix ns; L2 is skipped before it
	l2Outage    atomic.Bool  // the current outage was logged

	pendMu   sync.Mutex
	pending  map[custHash]struct{}
	pendingN atomic.Int64
	pendFull atomic.Bool

	flightMu sync.Mutex
	flights  map[l1Key]*flight
	closed   bool
	wg       sync.WaitGroup // flights and their write-backs

	closing    context.Context
	closeFn    context.CancelFunc
	closeOnce  sync.Once
	closeErr   error
	running    atomic.Bool
	subscribed atomic.Bool
	epochDone  atomic.Bool // Options.NewEpoch: Redis has this process's epoch
	runID      string      // the Redis server's run_id at the last epoch; Run's only
}

// l1Key is the pair itself: two strings compared as two, never joined.
type l1Key struct{ customer, scope string }

// l1Value is immutable once in the cache.
type l1Value struct {
	entry      Entry
	seq        uint64
	cust       *custState
	freshUntil time.Time // by Options.Now
	weight     uint32
}

// custState is one customer's invalidation state, shared by its L1 entries.
type custState struct {
	hash        custHash
	invalidated atomic.Uint64 // seq of the latest invalidation
	lastUse     int64         // wall unix ns; guarded by Cache.regMu
}

// New validates opts and returns a Cache. It does not connect to Redis: a
// Redis that is down at start is a failing tier like any other.
func New(opts Options) (*Cache, error) {
	switch {
	case opts.L1MaxBytes < 0:
		return nil, errors.New("cache: L1MaxBytes is negative")
	case opts.L1TTL < 0, opts.L2TTL < 0, opts.L2ReadTimeout < 0, opts.L2WriteTimeout < 0, opts.L2RetryAfter < 0:
		return nil, errors.New("cache: a TTL or timeout is negative")
	}
	if opts.L1MaxBytes == 0 {
		opts.L1MaxBytes = DefaultL1MaxBytes
	}
	if opts.L1TTL == 0 {
		opts.L1TTL = DefaultL1TTL
	}
	if opts.StaleFor == 0 {
		opts.StaleFor = DefaultStaleFor
	}
	if opts.L2TTL == 0 {
		opts.L2TTL = DefaultL2TTL
	}
	if opts.L2TTL < time.Millisecond {
		return nil, errors.New("cache: L2TTL must be at least 1ms (Redis expiry resolution)")
	}
	if opts.L2ReadTimeout == 0 {
		opts.L2ReadTimeout = DefaultL2ReadTimeout
	}
	if opts.L2WriteTimeout == 0 {
		opts.L2WriteTimeout = DefaultL2WriteTimeout
	}
	if opts.L2RetryAfter == 0 {
		opts.L2RetryAfter = DefaultL2RetryAfter
	}
	if opts.Namespace == "" {
		opts.Namespace = DefaultNamespace
	}
	if !validNamespace(opts.Namespace) {
		return nil, fmt.Errorf("cache: namespace %q: want 1-64 letters, digits or ._-", opts.Namespace)
	}
	c := &Cache{
		opts:     opts,
		log:      telemetry.OrDiscard(opts.Logger),
		now:      opts.Now,
		fakeNow:  opts.Now != nil,
		reg:      map[custHash]*custState{},
		pending:  map[custHash]struct{}{},
		flights:  map[l1Key]*flight{},
		channel:  channelName(opts.Namespace),
		epochKey: epochKey(opts.Namespace),
		id:       randomHex(originHexLen / 2),
	}
	if c.now == nil {
		c.now = time.Now
	}
	c.nextPrune = minPruneAt
	c.retention = opts.L1TTL + max(opts.StaleFor, 0)
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	c.m = m
	if opts.RedisURL != "" {
		ro, err := redis.ParseURL(opts.RedisURL)
		if err != nil {
			// url.Error repeats the URL, password and all: keep only the reason.
			var ue *url.Error
			if errors.As(err, &ue) {
				err = ue.Err
			}
			return nil, fmt.Errorf("cache: redis url: %w", err)
		}
		ro.MaxRetries = -1 // a failed read falls through to the next tier
		ro.ContextTimeoutEnabled = true
		ro.DialTimeout = dialTimeout
		ro.DialerRetries = 1
		ro.DisableIdentity = true
		ro.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
		c.rdb = redis.NewClient(ro)
	}
	c.l1, err = otter.New(&otter.Options[l1Key, *l1Value]{
		MaximumWeight:    uint64(opts.L1MaxBytes),
		Weigher:          func(_ l1Key, v *l1Value) uint32 { return v.weight },
		ExpiryCalculator: otter.ExpiryWriting[l1Key, *l1Value](c.retention),
		OnAtomicDeletion: func(e otter.DeletionEvent[l1Key, *l1Value]) {
			c.m.l1Bytes.Sub(float64(e.Value.weight))
			c.m.l1Entries.Dec()
		},
		Logger: otterLogger{c.log},
	})
	if err != nil {
		if c.rdb != nil {
			_ = c.rdb.Close()
		}
		return nil, fmt.Errorf("cache: l1: %w", err)
	}
	c.closing, c.closeFn = context.WithCancel(context.Background())
	return c, nil
}

// Get returns the entry of (customer, scope) from L1, else L2, else load,
// and which of them answered. A tier that fails is skipped without an
// error; the error (an *Error, or the caller's context error, or ErrClosed)
// comes only when load fails too and no stale L1 entry can stand in.
// Callers must not modify the returned Value.
func (c *Cache) Get(ctx context.Context, customer, scope string, load func(context.Context) (Entry, error)) (Entry, Source, error) {
	k := l1Key{customer, scope}
	start := time.Now()
	var stale *l1Value
	if v, ok := c.l1.GetIfPresent(k); ok {
		now := start
		if c.fakeNow {
			now = c.now()
		}
		if c.fresh(v, now) {
			c.m.l1Hit.Inc()
			if rand.Uint32()%l1TimedEvery == 0 {
				c.m.l1Dur.Observe(time.Since(start).Seconds())
			}
			return v.entry, Source{Tier: TierL1}, nil
		}
		stale = v
	}
	c.m.l1Miss.Inc()
	if rand.Uint32()%l1TimedEvery == 0 {
		c.m.l1Dur.Observe(time.Since(start).Seconds())
	}
	if load == nil {
		return Entry{}, Source{}, errors.New("cache: Get without a load function")
	}
	ks := deriveKeys(c.opts.Namespace, customer, scope)
	st := c.custFor(ks.cust)
	res, err := c.do(ctx, k, ks, st, load)
	if err == nil && res.stale != nil {
		c.m.staleServes.Inc()
		return res.entry, Source{Tier: res.tier, Stale: true, Err: res.stale}, nil
	}
	if err == nil {
		return res.entry, Source{Tier: res.tier}, nil
	}
	if stale != nil && ctx.Err() == nil && !errors.Is(err, ErrClosed) && c.staleUsable(stale) {
		c.m.staleServes.Inc()
		return stale.entry, Source{Tier: TierL1, Stale: true, Err: err}, nil
	}
	return Entry{}, Source{}, err
}

func (c *Cache) fresh(v *l1Value, now time.Time) bool {
	return v.seq > v.cust.invalidated.Load() && v.seq > c.flushed.Load() && now.Before(v.freshUntil)
}

func (c *Cache) staleUsable(v *l1Value) bool {
	return c.opts.StaleFor >= 0 && c.now().Before(v.freshUntil.Add(c.opts.StaleFor))
}

// Invalidate drops every scope of customer: from this process's L1 at once,
// from L2 by a new generation, and from the other processes' L1 through
// pub/sub. The local part always takes effect; an error says that Redis did
// not take the rest, which Run then retries until it does (meanwhile this
// process does not read the customer from L2, and other processes may serve
// their L1 copies up to L1TTL and their L2 copies up to L2TTL).
func (c *Cache) Invalidate(ctx context.Context, customer string) error {
	h := hashCustomer(customer)
	c.invalidateHash(h)
	c.m.invSent.Inc()
	if c.rdb == nil {
		return nil
	}
	err := c.publish(ctx, h)
	if err != nil {
		c.addPending(h)
	} else {
		c.removePending(h)
	}
	// Again, now that Redis has the new generation (or L2 is not read for
	// the customer): a Get that missed L1 after the first drop may have read
	// the old value from L2 before the new generation landed, and must not
	// keep it as fresh.
	c.invalidateHash(h)
	if err != nil {
		return fmt.Errorf("cache: invalidate in redis (done in this process, retried later): %w", err)
	}
	return nil
}

// InvalidateLocal drops every scope of customer from this process's L1
// only: the receiving end of invalidations the caller delivers by its own
// channel when there is no Redis. It costs a SHA-256 and an atomic store.
func (c *Cache) InvalidateLocal(customer string) {
	c.invalidateHash(hashCustomer(customer))
	c.m.invLocal.Inc()
}

// invalidateHash makes every L1 entry of the customer, and every flight of
// it under way, not fresh.
func (c *Cache) invalidateHash(h custHash) bool {
	c.regMu.Lock()
	st := c.reg[h]
	c.regMu.Unlock()
	if st == nil {
		return false // nothing cached or loading for it
	}
	storeMax(&st.invalidated, c.seq.Add(1))
	return true
}

// flushL1 makes every L1 entry and flight under way not fresh.
func (c *Cache) flushL1() {
	storeMax(&c.flushed, c.seq.Add(1))
	c.m.l1Flushes.Inc()
}

func storeMax(a *atomic.Uint64, v uint64) {
	for {
		old := a.Load()
		if old >= v || a.CompareAndSwap(old, v) {
			return
		}
	}
}

// custFor returns the customer's invalidation state, creating it, and marks
// it used.
func (c *Cache) custFor(h custHash) *custState {
	now := time.Now().UnixNano()
	c.regMu.Lock()
	defer c.regMu.Unlock()
	st := c.reg[h]
	if st == nil {
		st = &custState{hash: h}
		c.reg[h] = st
		if len(c.reg) > c.nextPrune {
			c.pruneLocked(now)
		}
	}
	st.lastUse = now
	return st
}

// touch marks st used, or reports that it was pruned (then its flight's
// result must not enter L1: a later invalidation would not reach it).
func (c *Cache) touch(st *custState) bool {
	now := time.Now().UnixNano()
	c.regMu.Lock()
	defer c.regMu.Unlock()
	if c.reg[st.hash] != st {
		return false
	}
	st.lastUse = now
	return true
}

// pruneLocked drops the states of customers with no L1 entry left: every
// entry expires c.retention after it was written, and a state is touched
// before each write.
func (c *Cache) pruneLocked(now int64) {
	cutoff := now - int64(c.retention+pruneMargin)
	for h, st := range c.reg {
		if st.lastUse < cutoff {
			delete(c.reg, h)
		}
	}
	c.nextPrune = max(minPruneAt, 2*len(c.reg))
}

// setL1 puts e into L1 unless a newer flight already did.
func (c *Cache) setL1(k l1Key, st *custState, seq uint64, e Entry) {
	if !c.touch(st) {
		return
	}
	v := &l1Value{entry: e, seq: seq, cust: st, freshUntil: c.now().Add(c.opts.L1TTL), weight: weigh(k, e)}
	wrote := false
	c.l1.Compute(k, func(old *l1Value, found bool) (*l1Value, otter.ComputeOp) {
		if found && old.seq > seq {
			return old, otter.CancelOp
		}
		wrote = true
		return v, otter.WriteOp
	})
	if wrote {
		c.m.l1Bytes.Add(float64(v.weight))
		c.m.l1Entries.Inc()
	}
}

func weigh(k l1Key, e Entry) uint32 {
	w := uint64(len(e.Value)) + uint64(len(k.customer)) + uint64(len(k.scope)) + entryOverhead
	return uint32(min(w, math.MaxUint32))
}

// Subscribed reports whether Run is subscribed to invalidations now.
func (c *Cache) Subscribed() bool { return c.subscribed.Load() }

// Close stops Run, cancels the loads under way and waits for them and their
// write-backs, and closes the Redis client. Get returns ErrClosed after it.
func (c *Cache) Close() error {
	c.closeOnce.Do(func() {
		c.flightMu.Lock()
		c.closed = true
		c.flightMu.Unlock()
		c.closeFn()
		c.wg.Wait()
		if c.rdb != nil {
			c.closeErr = c.rdb.Close()
		}
		c.l1.InvalidateAll()
		c.l1.StopAllGoroutines()
	})
	return c.closeErr
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = crand.Read(b) // never fails (crypto/rand, Go 1.24+)
	return hex.EncodeToString(b)
}

// callLoad runs load, turning a panic into an error: it runs on a flight's
// goroutine, where no caller could recover it.
func (c *Cache) callLoad(ctx context.Context, load func(context.Context) (Entry, error)) (e Entry, err error) {
	start := time.Now()
	c.m.loads.Inc()
	defer func() {
		if r := recover(); r != nil {
			c.log.Error("cache: load panicked", "panic", r, "stack", string(debug.Stack()))
			err = fmt.Errorf("load panicked: %v", r)
		}
		c.m.loadDur.Observe(time.Since(start).Seconds())
		if err != nil {
			c.m.loadErrors.Inc()
		}
	}()
	return load(ctx)
}

// otterLogger sends otter's warnings to the cache's logger.
type otterLogger struct{ log *slog.Logger }

func (l otterLogger) Warn(ctx context.Context, msg string, err error) {
	l.log.WarnContext(ctx, "cache: l1: "+msg, "err", err)
}

func (l otterLogger) Error(ctx context.Context, msg string, err error) {
	l.log.ErrorContext(ctx, "cache: l1: "+msg, "err", err)
}

// RedisLogger sends go-redis's own messages (such as dial failures, one per
// failed connection attempt) to slog at debug level instead of the standard
// logger. go-redis has one logger per process, so installing it is main's
// choice: redis.SetLogger(cache.RedisLogger{L: log}).
type RedisLogger struct{ L *slog.Logger }

// Printf implements go-redis's logging interface.
func (l RedisLogger) Printf(ctx context.Context, format string, v ...any) {
	if l.L != nil {
		l.L.DebugContext(ctx, "redis: "+fmt.Sprintf(format, v...))
	}
}
