package cache

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Values of the process label of the activitybi_cache_* counters and
// lookup histogram: this process's own caches, or what the edges attached to
// this process (a core) reported about theirs (see Reported). The gauges are
// this process's only and carry no process label.
const (
	ProcessCore = "core"
	ProcessEdge = "edge"
)

// metrics are the activitybi_cache_* metrics. Caches registered on one
// registry share them, so counters and gauges add up across the process's
// caches. The vectors below are curried with process="core": the code that
// counts never names the label.
type metrics struct {
	hits         *prometheus.CounterVec // tier
	misses       *prometheus.CounterVec // tier
	duration     prometheus.ObserverVec // tier
	l2Errors     *prometheus.CounterVec // op
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

// The counters' and the histogram's names, help and labels, shared by the
// vectors of a cache and the const metrics of Reported (a registry wants
// one help per name).
type metricDef struct {
	name, help string
	labels     []string // besides process
}

var (
	defHits = metricDef{"activitybi_cache_hits_total",
		"get_context cache lookups answered by a tier (l1, l2) with a fresh entry, by the process that looked (core: this one; edge: reported by its edges).", []string{"tier"}}
	defMisses = metricDef{"activitybi_cache_misses_total",
		"get_context cache lookups a tier (l1, l2) could not answer: absent, expired, invalidated, or (l2) failed or skipped.", []string{"tier"}}
	defDuration = metricDef{"activitybi_cache_lookup_duration_seconds",
		"Time of one lookup in a tier (l1, l2) or of one load, whatever the outcome; l1 lookups are sampled, one in 16.", []string{"tier"}}
	defL2Errors = metricDef{"activitybi_cache_l2_errors_total",
		"Redis errors by operation (get, set, invalidate, subscribe, decode); each one fell through to the next tier.", []string{"op"}}
	defL2Bypassed = metricDef{"activitybi_cache_l2_bypassed_total",
		"L2 reads skipped because Redis failed less than L2RetryAfter ago or the customer has an invalidation not yet in Redis.", nil}
	defLoads = metricDef{"activitybi_cache_loads_total",
		"Loads from the core or warehouse after both tiers missed (one per single flight).", nil}
	defLoadErrors = metricDef{"activitybi_cache_load_errors_total", "Loads that failed.", nil}
	defInvSent    = metricDef{"activitybi_cache_invalidations_sent_total",
		"Customer invalidations made by this process (Invalidate).", nil}
	defInvReceived = metricDef{"activitybi_cache_invalidations_received_total",
		"Customer invalidations received from other processes, by pub/sub or delivered by the caller (InvalidateLocal).", []string{"via"}}
	defL1Flushes = metricDef{"activitybi_cache_l1_flushes_total",
		"Times all of L1 was marked not fresh: the pub/sub subscription was (re)established and invalidations may have been missed, or a core gave Redis a new epoch on start.", nil}
	defStaleServes = metricDef{"activitybi_cache_stale_serves_total",
		"Gets answered with an expired or invalidated L1 entry because every tier failed.", nil}
)

// lookupBuckets are the histogram's upper bounds: 100 ns .. 1.4 s.
var lookupBuckets = prometheus.ExponentialBuckets(100e-9, 3, 16)

func (d metricDef) counterVec() *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{Name: d.name, Help: d.help}, append(append([]string(nil), d.labels...), "process"))
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		l1Bytes: prometheus.NewGauge(prometheus.GaugeOpts{Name: "activitybi_cache_l1_bytes",
			Help: "Approximate bytes held by L1 (values, keys and per-entry overhead)."}),
		l1Entries: prometheus.NewGauge(prometheus.GaugeOpts{Name: "activitybi_cache_l1_entries",
			Help: "Entries held by L1, fresh or kept for stale serving."}),
		subscribed: prometheus.NewGauge(prometheus.GaugeOpts{Name: "activitybi_cache_pubsub_subscribed",
			Help: "1 while the invalidation subscriber is connected to Redis."}),
		pendingInval: prometheus.NewGauge(prometheus.GaugeOpts{Name: "activitybi_cache_pending_invalidations",
			Help: "Invalidations that Redis has not taken yet (retried by Run)."}),
	}
	hits, misses, l2Errors, invReceived := defHits.counterVec(), defMisses.counterVec(), defL2Errors.counterVec(), defInvReceived.counterVec()
	duration := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: defDuration.name, Help: defDuration.help,
		Buckets: lookupBuckets}, []string{"tier", "process"})
	l2Bypassed, loads, loadErrors := defL2Bypassed.counterVec(), defLoads.counterVec(), defLoadErrors.counterVec()
	invSent, l1Flushes, staleServes := defInvSent.counterVec(), defL1Flushes.counterVec(), defStaleServes.counterVec()
	var err error
	if reg != nil {
		hits = register(reg, hits, &err)
		misses = register(reg, misses, &err)
		duration = register(reg, duration, &err)
		l2Errors = register(reg, l2Errors, &err)
		l2Bypassed = register(reg, l2Bypassed, &err)
		loads = register(reg, loads, &err)
		loadErrors = register(reg, loadErrors, &err)
		invSent = register(reg, invSent, &err)
		invReceived = register(reg, invReceived, &err)
		l1Flushes = register(reg, l1Flushes, &err)
		staleServes = register(reg, staleServes, &err)
		m.l1Bytes = register(reg, m.l1Bytes, &err)
		m.l1Entries = register(reg, m.l1Entries, &err)
		m.subscribed = register(reg, m.subscribed, &err)
		m.pendingInval = register(reg, m.pendingInval, &err)
	}
	if err != nil {
		return nil, fmt.Errorf("cache: register metrics: %w", err)
	}
	self := prometheus.Labels{"process": ProcessCore}
	m.hits, m.misses = hits.MustCurryWith(self), misses.MustCurryWith(self)
	m.duration = duration.MustCurryWith(self)
	m.l2Errors, m.invReceived = l2Errors.MustCurryWith(self), invReceived.MustCurryWith(self)
	m.l2Bypassed, m.loads, m.loadErrors = l2Bypassed.With(self), loads.With(self), loadErrors.With(self)
	m.invSent, m.l1Flushes, m.staleServes = invSent.With(self), l1Flushes.With(self), staleServes.With(self)
	m.l1Hit = m.hits.WithLabelValues(string(TierL1))
	m.l2Hit = m.hits.WithLabelValues(string(TierL2))
	m.l1Miss = m.misses.WithLabelValues(string(TierL1))
	m.l2Miss = m.misses.WithLabelValues(string(TierL2))
	m.l1Dur = m.duration.WithLabelValues(string(TierL1))
	m.l2Dur = m.duration.WithLabelValues(string(TierL2))
	m.loadDur = m.duration.WithLabelValues(string(TierLoad))
	m.invPubsub = m.invReceived.WithLabelValues(viaPubsub)
	m.invLocal = m.invReceived.WithLabelValues(viaLocal)
	for _, op := range l2Ops {
		m.l2Errors.WithLabelValues(op) // present at zero, for rate() and alerts
	}
	return m, nil
}

// The label values the counters take (and all that Reported accepts).
const (
	viaPubsub = "pubsub"
	viaLocal  = "local"
)

var (
	l2Ops       = []string{"get", "set", "invalidate", "subscribe", "decode"}
	hitTiers    = []Tier{TierL1, TierL2}
	lookupTiers = []Tier{TierL1, TierL2, TierLoad}
	vias        = []string{viaPubsub, viaLocal}
)

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
