// Package cache is the two-tier cache in front of get_context: the
// materialized context of one customer and scope, encoded by the caller as an
// [Entry], served from the nearest tier that has a fresh copy.
//
// # Tiers
//
// A [Cache.Get] looks in three places, in order:
//
//   - L1, in this process: a size-bounded map (otter, W-TinyLFU eviction)
//     keyed by the (customer, scope) pair itself. An entry is fresh for
//     Options.L1TTL (default 5 min) after it was written and is kept for
//     Options.StaleFor (default 1 h) beyond that, so that it can still be
//     served, marked stale, when every other tier fails.
//   - L2, Redis, when Options.RedisURL is set: shared by every edge and
//     server replica. An entry lives Options.L2TTL (default 30 min). Reads
//     have a short deadline (Options.L2ReadTimeout, default 50 ms).
//   - load, the caller's function (the core or the warehouse). What it
//     returns is written to L1 at once and to L2 in the background, both
//     best effort.
//
// Concurrent Gets of one key that miss L1 share one L2 read and one load
// (single flight). The load runs on a context that keeps the first caller's
// values but not its cancellation; it is cancelled when every caller waiting
// for it has gone, or when the Cache is closed.
//
// # Invalidation
//
// [Cache.Invalidate] drops every scope of a customer: from this process's L1
// at once (an O(1) generation bump, not a scan), from L2 by replacing the
// customer's generation key with a new random value (entries of an older
// generation are dead and expire on their own), and from the L1 of every
// other process through a
// Redis pub/sub message, which arrives within milliseconds; [Cache.Run] is the
// subscriber. A load that started before an invalidation never puts its
// result into L1 or L2 as fresh, and a Get that starts after Invalidate
// returned never joins a load that started before it.
//
// An L2 value is served only when it carries the namespace's current epoch
// and its customer's current generation. Both are random 64-bit values,
// never counters: when Redis loses either key (it expires, or maxmemory
// with an allkeys-* policy evicts it), the next read sets a new random one
// (SET NX), which no value already in Redis carries. Losing a key costs
// misses; it never makes a value that an invalidation killed current again.
//
// Without Redis there is no pub/sub: the caller delivers invalidations to the
// other processes over its own channel and calls [Cache.InvalidateLocal]
// there (a hash and an atomic store).
//
// # Restarts
//
// A core that dies between committing an insight to the warehouse and
// publishing its invalidation leaves the customer's old context in Redis,
// tagged with a current generation, and nothing would ever kill it: the
// next core's warm-up reads it back through Get (an L2 hit), and its
// rebuild invalidates the customer only when the content differs from the
// context_cache row, which may already be the new one. So stale answers
// could be served until L2TTL. The memory store distrusts rows an earlier
// process wrote; the cache does the same for Redis with an epoch: a core
// sets Options.NewEpoch, and when Run first subscribes it writes a new
// random <ns>:epoch (every value in Redis, whoever wrote it, is dead from
// then on) and publishes a flush, on which every other process marks its
// L1 not fresh. Until Redis has taken the epoch, the core neither reads nor
// writes L2. Processes already running on the same Redis (edges, other
// server replicas) only get colder: their next Get misses, loads, and
// writes back under the new epoch; a write-back tagged before the epoch
// moved is dead on arrival. Edges do not set NewEpoch: one starts with
// every client window, and each start would empty the shared cache; an edge
// that reattaches to a new core drops its L1 (the caller's part). Without
// Redis there is nothing to kill: a new core's L1 starts empty.
//
// Redis restarts too, and with persistence on (its default) it comes back
// with a snapshot: a generation and the values tagged with it, from before
// invalidations it then lost, which would match again. Failing over to a
// replica that lagged is the same. So a NewEpoch process also moves the
// epoch when it resubscribes to a Redis whose run_id is not the one it saw
// last (or that does not say). Between Redis coming back and the core
// resubscribing (its backoff, at most 5 s) any process, the core included,
// may still read such values.
//
// # Isolation
//
// Redis keys and pub/sub payloads are derived from the customer and scope
// with SHA-256, never from the strings themselves:
//
//	<ns>:ctx:<hex sha256(customer)[:32]>:<hex sha256(scope)[:16]>   the entry
//	<ns>:gen:<hex sha256(customer)[:32]>                             its generation
//	<ns>:epoch                                                       the namespace's epoch
//	<ns>:inv                                                         the pub/sub channel
//
// so no customer or scope string (colons, spaces, unicode, glob characters)
// can reach another customer's key, and neither Redis nor a subscriber ever
// sees a customer name. Each value stored in Redis also carries the full
// SHA-256 of the length-prefixed (customer, scope) pair and is used only when
// it matches, so even a collision of the truncated key hashes cannot serve one
// customer's entry to another. L1 is keyed by the pair, not a concatenation.
//
// # When Redis fails
//
// Every L2 error (Redis down, a timeout, a refused connection) is counted,
// logged once per outage and answered by the next tier; Get returns an error
// only when load fails too, and then serves a stale L1 entry instead when it
// has one ([Source].Stale). A load whose own source could give only a
// stale entry returns it as a [*StaleEntry]: it is served marked stale and
// kept in no tier. After an L2 error, L2 is skipped for
// Options.L2RetryAfter (default 1 s) so that an outage costs each Get nothing.
// The subscriber reconnects with jittered exponential backoff (50 ms to 5 s);
// on every (re)subscription it marks all of L1 as not fresh, because
// invalidations published while it was away were lost. An Invalidate whose
// Redis part fails is remembered and retried by Run until Redis takes it;
// meanwhile this process does not read that customer from L2.
//
// # Limits
//
//   - While a process is cut off from Redis pub/sub, its L1 may serve an
//     entry up to L1TTL after another process invalidated it.
//   - L2 keeps values up to 8 MiB (maxL2Value); bigger ones stay in L1.
//   - Processes sharing a Redis must share Namespace and should share L2TTL.
//   - At most 100,000 failed invalidations are remembered for retry; beyond
//     that, L2 entries of the customers left out expire within L2TTL.
//   - One Redis server (redis:// or rediss://); Cluster and Sentinel are not
//     supported.
//   - Entry.Value is shared with the cache: callers must not modify it.
//   - load must return when its context is cancelled: Close waits for it.
//
// # Metrics
//
// The activitybi_cache_* counters (hits and misses per tier, loads, L2
// errors per operation, invalidations sent and received, L1 flushes, stale
// serves) and the lookup-duration histogram per tier carry a process label:
// "core" for this process's own caches. An edge has no /metrics: it reads
// its cache's [Cache.Stats] and reports the difference since its last
// report to its core (with its tool metrics, every 2 s), where a [Reported]
// adds them up under the same names with process="edge". The gauges (L1
// bytes and entries, subscribed, pending invalidations) are the process's
// own and have no process label.
//
// # Cost
//
// An L1 hit takes a few hundred nanoseconds and allocates nothing (two clock
// reads are most of it on a VM); an L2 hit is one round trip (MGET of the
// epoch, the generation and the value), about 0.1 ms on loopback. A read
// that finds the epoch or the generation missing takes a second one (MULTI:
// SET NX of each, MGET) and is a miss. The package's
// benchmarks report p50/p95/p99 of both.
package cache
