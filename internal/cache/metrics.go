package cache

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the activitybi_cache_* metrics. Caches registered on one
// registry share them, so counters and gauges add up across the process's
// caches.
type metrics struct {
	hits         *prometheus.CounterVec   // tier
	misses       *prometheus.CounterVec   // tier
	duration     *prometheus.HistogramVec // tier
	l2Errors     *prometheus.CounterVec   // op
	l2Bypassed   prometheus.Counter
	loads        prometheus.Counter
	loadErrors   prometheus.Counter
	invSent      prometheus.Counter
	invReceived  *prometheus.CounterVec // via
	l1Flushes    prometheus.Counter
	staleServes  prometheus.Counter
	l1Bytes      prometheus.Gauge
	l1Entries    prometheus.Gauge
	subscribed   prometheus.Gauge
	pendingInval prometheus.Gauge

	// Children resolved once: the L1 hit path must not look up labels.
	l1Hit, l1Miss, l2Hit, l2Miss prometheus.Counter
	l1Dur, l2Dur, loadDur        prometheus.Observer
	invPubsub, invLocal          prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		hits: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "activitybi_cache_hits_total",
			Help: "get_context cache lookups answered by a tier (l1, l2) with a fresh entry."}, []string{"tier"}),
		misses: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "activitybi_cache_misses_total",
			Help: "get_context cache lookups a tier (l1, l2) could not answer: absent, expired, invalidated, or (l2) failed or skipped."}, []string{"tier"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "activitybi_cache_lookup_duration_seconds",
			Help:    "Time of one lookup in a tier (l1, l2) or of one load, whatever the outcome; l1 lookups are sampled, one in 16.",
			Buckets: prometheus.ExponentialBuckets(100e-9, 3, 16)}, // 100 ns .. 1.4 s
			[]string{"tier"}),
		l2Errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "activitybi_cache_l2_errors_total",
			Help: "Redis errors by operation (get, set, invalidate, subscribe, decode); each one fell through to the next tier."}, []string{"op"}),
		l2Bypassed: prometheus.NewCounter(prometheus.CounterOpts{Name: "activitybi_cache_l2_bypassed_total",
			Help: "L2 reads skipped because Redis failed less than L2RetryAfter ago or the customer has an invalidation not yet in Redis."}),
		loads: prometheus.NewCounter(prometheus.CounterOpts{Name: "activitybi_cache_loads_total",
			Help: "Loads from the core or warehouse after both tiers missed (one per single flight)."}),
		loadErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "activitybi_cache_load_errors_total",
			Help: "Loads that failed."}),
		invSent: prometheus.NewCounter(prometheus.CounterOpts{Name: "activitybi_cache_invalidations_sent_total",
			Help: "Customer invalidations made by this process (Invalidate)."}),
		invReceived: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "activitybi_cache_invalidations_received_total",
			Help: "Customer invalidations received from other processes, by pub/sub or delivered by the caller (InvalidateLocal)."}, []string{"via"}),
		l1Flushes: prometheus.NewCounter(prometheus.CounterOpts{Name: "activitybi_cache_l1_flushes_total",
			Help: "Times all of L1 was marked not fresh because the pub/sub subscription was (re)established and invalidations may have been missed."}),
		staleServes: prometheus.NewCounter(prometheus.CounterOpts{Name: "activitybi_cache_stale_serves_total",
			Help: "Gets answered with an expired or invalidated L1 entry because every tier failed."}),
		l1Bytes: prometheus.NewGauge(prometheus.GaugeOpts{Name: "activitybi_cache_l1_bytes",
			Help: "Approximate bytes held by L1 (values, keys and per-entry overhead)."}),
		l1Entries: prometheus.NewGauge(prometheus.GaugeOpts{Name: "activitybi_cache_l1_entries",
			Help: "Entries held by L1, fresh or kept for stale serving."}),
		subscribed: prometheus.NewGauge(prometheus.GaugeOpts{Name: "activitybi_cache_pubsub_subscribed",
			Help: "1 while the invalidation subscriber is connected to Redis."}),
		pendingInval: prometheus.NewGauge(prometheus.GaugeOpts{Name: "activitybi_cache_pending_invalidations",
			Help: "Invalidations that Redis has not taken yet (retried by Run)."}),
	}
	var err error
	if reg != nil {
		m.hits = register(reg, m.hits, &err)
		m.misses = register(reg, m.misses, &err)
		m.duration = register(reg, m.duration, &err)
		m.l2Errors = register(reg, m.l2Errors, &err)
		m.l2Bypassed = register(reg, m.l2Bypassed, &err)
		m.loads = register(reg, m.loads, &err)
		m.loadErrors = register(reg, m.loadErrors, &err)
		m.invSent = register(reg, m.invSent, &err)
		m.invReceived = register(reg, m.invReceived, &err)
		m.l1Flushes = register(reg, m.l1Flushes, &err)
		m.staleServes = register(reg, m.staleServes, &err)
		m.l1Bytes = register(reg, m.l1Bytes, &err)
		m.l1Entries = register(reg, m.l1Entries, &err)
		m.subscribed = register(reg, m.subscribed, &err)
		m.pendingInval = register(reg, m.pendingInval, &err)
	}
	if err != nil {
		return nil, fmt.Errorf("cache: register metrics: %w", err)
	}
	m.l1Hit = m.hits.WithLabelValues(string(TierL1))
	m.l2Hit = m.hits.WithLabelValues(string(TierL2))
	m.l1Miss = m.misses.WithLabelValues(string(TierL1))
	m.l2Miss = m.misses.WithLabelValues(string(TierL2))
	m.l1Dur = m.duration.WithLabelValues(string(TierL1))
	m.l2Dur = m.duration.WithLabelValues(string(TierL2))
	m.loadDur = m.duration.WithLabelValues(string(TierLoad))
	m.invPubsub = m.invReceived.WithLabelValues("pubsub")
	m.invLocal = m.invReceived.WithLabelValues("local")
	for _, op := range []string{"get", "set", "invalidate", "subscribe", "decode"} {
		m.l2Errors.WithLabelValues(op) // present at zero, for rate() and alerts
	}
	return m, nil
}

// register registers c, or returns the collector already registered under
// the same name (a second Cache in the process). The first other error is
// kept in *errp.
func register[C prometheus.Collector](reg prometheus.Registerer, c C, errp *error) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		if *errp == nil {
			*errp = err
		}
	}
	return c
}
