package main

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/activitybi/activitybi/internal/cache"
)

// newCache opens the memory cache: in-process, plus Redis when
// cache.redis_url is set. reg may be nil (an edge has no /metrics: it
// reports its cache's counters to the core). l1TTL 0 is the default; the
// hidden --cache-l1-ttl flag sets it, to measure the tiers behind L1
// (bench/memory.md) and to test them. core is true for the core's cache
// only.
func (a *app) newCache(reg prometheus.Registerer, l1TTL time.Duration, core bool) (*cache.Cache, error) {
	if a.cfg.Cache.RedisURL != "" {
		// go-redis logs connection failures through one process-wide
		// logger; send them to ours (stderr), never stdout.
		redis.SetLogger(cache.RedisLogger{L: a.log})
	}
	// The core starts a new epoch: what
	// Redis holds may predate a crash of the core before it, or a Redis
	// restored from a snapshot. Edges must not, or every new client
	// window would empty the shared cache.
	c, err := cache.New(cache.Options{RedisURL: a.cfg.Cache.RedisURL, Namespace: a.cfg.Cache.Namespace, Logger: a.log,
		Registerer: reg, L1TTL: l1TTL, NewEpoch: core})
	if err != nil {
		return nil, fmt.Errorf("cache.namespace or cache.redis_url: %w", err)
	}
	return c, nil
}
