package query

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the activitybi_query_* metrics. Engines registered on one
// registry share them.
type metrics struct {
	tickets        *prometheus.GaugeVec   // state: tickets held in memory by state
	finished       *prometheus.CounterVec // state: tickets that reached a final state
	submits        *prometheus.CounterVec // outcome: ok invalid budget busy stopped error
	queueDepth     prometheus.Gauge
	runDuration    *prometheus.HistogramVec // outcome
	sampled        prometheus.Counter
	sampleRuns     prometheus.Counter
	truncated      prometheus.Counter
	budgetRefusals *prometheus.CounterVec // budget
	busy           *prometheus.CounterVec // scope: customer, total
	timeouts       prometheus.Counter
	storeErrors    *prometheus.CounterVec // op: save, load, hash, delete
	insightsDrop   prometheus.Counter
	pageClipped    prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		tickets: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "activitybi_query_tickets",
			Help: "Query tickets held by the engine, by state (tickets leave memory a day after their result expires)."}, []string{"state"}),
		finished: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "activitybi_query_tickets_finished_total",
			Help: "Query tickets that reached a final state (succeeded, failed, cancelled), and results that expired (expired)."}, []string{"state"}),
		submits: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "activitybi_query_submits_total",
			Help: "submit_query calls by outcome: ok, invalid (request refused by the compiler), budget, busy (queue full), stopped, error."}, []string{"outcome"}),
		queueDepth: prometheus.NewGauge(prometheus.GaugeOpts{Name: "activitybi_query_queue_depth",
			Help: "Query tickets waiting for a worker, all customers."}),
		runDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "activitybi_query_run_duration_seconds",
			Help:    "Engine time of one ticket (every run of it, sampling included), by final state.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 14)}, // 1 ms .. ~150 s
			[]string{"state"}),
		sampled: prometheus.NewCounter(prometheus.CounterOpts{Name: "activitybi_query_sampled_results_total",
			Help: "Results computed on a sample because the full result was over the byte cap."}),
		sampleRuns: prometheus.NewCounter(prometheus.CounterOpts{Name: "activitybi_query_sample_runs_total",
			Help: "Extra warehouse runs made to compute a sample (results sampled from complete rows in memory need none)."}),
		truncated: prometheus.NewCounter(prometheus.CounterOpts{Name: "activitybi_query_truncated_results_total",
			Help: "Results cut at the byte cap because even the lowest sample rate was over it."}),
		budgetRefusals: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "activitybi_query_budget_refusals_total",
			Help: "Submissions refused because a customer's budget was spent, by budget."}, []string{"budget"}),
		busy: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "activitybi_query_queue_full_total",
			Help: "Submissions refused because a queue was full: one customer's (customer) or everyone's (total)."}, []string{"scope"}),
		timeouts: prometheus.NewCounter(prometheus.CounterOpts{Name: "activitybi_query_timeouts_total",
			Help: "Tickets that failed because they ran past their timeout."}),
		storeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "activitybi_query_store_errors_total",
			Help: "Ticket store operations that failed (save is retried), by op."}, []string{"op"}),
		insightsDrop: prometheus.NewCounter(prometheus.CounterOpts{Name: "activitybi_query_insights_dropped_total",
			Help: "Insight ids not listed on a ticket because it already lists MaxInsightsPerTicket."}),
		pageClipped: prometheus.NewCounter(prometheus.CounterOpts{Name: "activitybi_query_page_values_clipped_total",
			Help: "Result pages whose values were shortened to fit MaxPageBytes."}),
	}
	var err error
	if reg != nil {
		m.tickets = register(reg, m.tickets, &err)
		m.finished = register(reg, m.finished, &err)
		m.submits = register(reg, m.submits, &err)
		m.queueDepth = register(reg, m.queueDepth, &err)
		m.runDuration = register(reg, m.runDuration, &err)
		m.sampled = register(reg, m.sampled, &err)
		m.sampleRuns = register(reg, m.sampleRuns, &err)
		m.truncated = register(reg, m.truncated, &err)
		m.budgetRefusals = register(reg, m.budgetRefusals, &err)
		m.busy = register(reg, m.busy, &err)
		m.timeouts = register(reg, m.timeouts, &err)
		m.storeErrors = register(reg, m.storeErrors, &err)
		m.insightsDrop = register(reg, m.insightsDrop, &err)
		m.pageClipped = register(reg, m.pageClipped, &err)
	}
	if err != nil {
		return nil, fmt.Errorf("query: register metrics: %w", err)
	}
	// Present at zero, for rate() and alerts.
	for _, s := range []State{StateQueued, StateRunning, StateSucceeded, StateFailed, StateCancelled, StateExpired} {
		m.tickets.WithLabelValues(string(s))
		m.finished.WithLabelValues(string(s))
	}
	for _, b := range []string{BudgetPerMinute, BudgetConcurrent, BudgetEngineSeconds} {
		m.budgetRefusals.WithLabelValues(b)
	}
	for _, s := range []string{"customer", "total"} {
		m.busy.WithLabelValues(s)
	}
	return m, nil
}

// register registers c, or returns the collector already registered under
// the same name (a second Engine in the process). The first other error is
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
