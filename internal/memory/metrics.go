package memory

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// storeMetrics are the activitybi_memory_* metrics of a Store.
type storeMetrics struct {
	loads         *prometheus.CounterVec   // from: row, build, scope
	loadDur       *prometheus.HistogramVec // from
	loadErrors    prometheus.Counter
	rowWrites     *prometheus.CounterVec   // result: written, superseded, failed, skipped
	refreshed     *prometheus.CounterVec   // kind, result
	refreshDur    *prometheus.HistogramVec // kind
	roundDur      *prometheus.HistogramVec // kind
	roundErrors   *prometheus.CounterVec   // kind
	roundLimited  *prometheus.CounterVec   // kind
	roundLeftOut  *prometheus.CounterVec   // kind
	active        prometheus.Gauge
	invalidations prometheus.Counter
	soonDropped   prometheus.Counter
	soonCoalesced prometheus.Counter
	trackLimit    *prometheus.CounterVec // what: get_context, invalidation
}

func newStoreMetrics(reg prometheus.Registerer) (*storeMetrics, error) {
	kinds := []string{KindWarm, KindRefresh, KindInvalidated}
	m := &storeMetrics{
		loads: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "activitybi_memory_loads_total",
			Help: "Contexts loaded by the core after every cache tier missed, by where they came from: row (context_cache), build (built from the warehouse, row missing or not fresh), scope (a scoped context, always built)."},
			[]string{"from"}),
		loadDur: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "activitybi_memory_load_duration_seconds",
			Help:    "Time of one load by the core, by where it came from (row, build, scope).",
			Buckets: prometheus.ExponentialBuckets(250e-6, 2, 16)}, // 250 us .. 8 s
			[]string{"from"}),
		loadErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "activitybi_memory_load_errors_total",
			Help: "Loads that failed (an unknown scope included)."}),
		rowWrites: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "activitybi_memory_row_writes_total",
			Help: "context_cache row writes: written, superseded (a newer row was there), failed, skipped (too many background writes in flight)."},
			[]string{"result"}),
		refreshed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "activitybi_memory_refreshed_total",
			Help: "Customers a rebuild looked at, by kind (warm, refresh, invalidated) and result (changed, unchanged, skipped, failed)."},
			[]string{"kind", "result"}),
		refreshDur: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "activitybi_memory_refresh_duration_seconds",
			Help:    "Time to rebuild one customer's context and write its row, by kind (warm, refresh, invalidated).",
			Buckets: prometheus.ExponentialBuckets(1e-3, 2, 14)}, // 1 ms .. 8 s
			[]string{"kind"}),
		roundDur: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "activitybi_memory_refresh_round_duration_seconds",
			Help:    "Time of one round over every active customer, by kind (warm, refresh).",
			Buckets: prometheus.ExponentialBuckets(1e-3, 2, 20)}, // 1 ms .. 8.7 min
			[]string{"kind"}),
		roundErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "activitybi_memory_round_errors_total",
			Help: "Rounds that could not read which customers are active."}, []string{"kind"}),
		roundLimited: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "activitybi_memory_round_limited_total",
			Help: "Rounds that left customers out because more were active than a round takes (MaxRefreshCustomers, MaxWarmCustomers)."},
			[]string{"kind"}),
		roundLeftOut: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "activitybi_memory_round_customers_left_out_total",
			Help: "Active customers a round left out because more were active than it takes (MaxRefreshCustomers, MaxWarmCustomers); they are built on their next load. Counted exactly up to 10,000 per round, at least that many beyond."},
			[]string{"kind"}),
		active: prometheus.NewGauge(prometheus.GaugeOpts{Name: "activitybi_memory_active_customers",
			Help: "Customers the latest refresh round looked at."}),
		invalidations: prometheus.NewCounter(prometheus.CounterOpts{Name: "activitybi_memory_invalidations_total",
			Help: "Customers whose context was invalidated by a committed insight."}),
		soonDropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "activitybi_memory_rebuild_queue_full_total",
			Help: "Invalidated customers not queued for an eager rebuild because the queue was full; their next load builds."}),
		soonCoalesced: prometheus.NewCounter(prometheus.CounterOpts{Name: "activitybi_memory_rebuild_coalesced_total",
			Help: "Invalidations of a customer already waiting for an eager rebuild: that one rebuild covers them."}),
		trackLimit: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "activitybi_memory_tracking_limit_total",
			Help: "Times the store could not remember one more customer's get_context or invalidation (100,000)."},
			[]string{"what"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.loads, m.loadDur, m.loadErrors, m.rowWrites, m.refreshed, m.refreshDur,
			m.roundDur, m.roundErrors, m.roundLimited, m.roundLeftOut, m.active, m.invalidations, m.soonDropped, m.soonCoalesced, m.trackLimit} {
			if err := reg.Register(c); err != nil {
				var are prometheus.AlreadyRegisteredError
				if !errors.As(err, &are) {
					return nil, fmt.Errorf("memory: register metrics: %w", err)
				}
				return nil, errors.New("memory: a Store's metrics are already registered on this registry (one Store per registry)")
			}
		}
	}
	// Present at zero, for rate() and alerts.
	for _, k := range kinds {
		for _, r := range []string{ResultChanged, ResultUnchanged, ResultSkipped, ResultFailed} {
			m.refreshed.WithLabelValues(k, r)
		}
	}
	for _, k := range []string{KindWarm, KindRefresh} {
		m.roundLimited.WithLabelValues(k)
		m.roundLeftOut.WithLabelValues(k)
	}
	for _, f := range []string{"row", "build", "scope"} {
		m.loads.WithLabelValues(f)
	}
	for _, r := range []string{"written", "superseded", "failed", "skipped"} {
		m.rowWrites.WithLabelValues(r)
	}
	return m, nil
}
