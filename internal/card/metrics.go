package card

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the activitybi_card_* metrics. One *Metrics may be shared by
// every Render of a process.
type Metrics struct {
	renders  *prometheus.CounterVec   // kind, outcome
	duration *prometheus.HistogramVec // kind
	limits   *prometheus.CounterVec   // limit
}

// Outcomes of a render, the outcome label.
const (
	outcomeOK          = "ok"
	outcomeNoData      = "no_data"
	outcomeInvalidSpec = "invalid_spec"
	outcomeError       = "error"
)

// Limit names, the limit label of activitybi_card_limit_hits_total.
const (
	limitRows       = "max_rows"
	limitPoints     = "max_points"
	limitCategories = "max_categories"
	limitSeries     = "max_series"
	limitTableRows  = "max_table_rows"
	limitTableCells = "max_table_cells"
	limitTableCols  = "table_width"
)

// NewMetrics creates the activitybi_card_* metrics and registers them with
// reg when reg is not nil. Registering twice with the same registry reuses
// the metrics already registered.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		renders: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "activitybi_card_renders_total",
			Help: "Card renders by kind and outcome (ok, no_data, invalid_spec, error).",
		}, []string{"kind", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "activitybi_card_render_duration_seconds",
			Help:    "Time to render one card (all requested formats), by kind.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14), // 1 ms .. 8 s
		}, []string{"kind"}),
		limits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "activitybi_card_limit_hits_total",
			Help: "Renders that left something undrawn because of a limit (max_rows, max_points, max_categories, max_series, max_table_rows, max_table_cells, table_width).",
		}, []string{"limit"}),
	}
	if reg != nil {
		m.renders = register(reg, m.renders)
		m.duration = register(reg, m.duration)
		m.limits = register(reg, m.limits)
	}
	for _, l := range []string{limitRows, limitPoints, limitCategories, limitSeries, limitTableRows, limitTableCells, limitTableCols} {
		m.limits.WithLabelValues(l) // present at zero, for rate() and alerts
	}
	return m
}

func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic(err)
	}
	return c
}

// observe counts one render. Unknown kinds are counted as "invalid" so a
// caller's typo cannot grow the label set.
func (m *Metrics) observe(k Kind, c *Card, err error, d time.Duration) {
	if m == nil {
		return
	}
	kind := "invalid"
	for _, known := range kinds {
		if k == known {
			kind = string(k)
		}
	}
	outcome := outcomeOK
	switch {
	case errors.Is(err, ErrInvalidSpec):
		outcome = outcomeInvalidSpec
	case err != nil:
		outcome = outcomeError
	case c.NoData:
		outcome = outcomeNoData
	}
	m.renders.WithLabelValues(kind, outcome).Inc()
	if err == nil {
		m.duration.WithLabelValues(kind).Observe(d.Seconds())
	}
}

func (m *Metrics) hit(limits []string) {
	if m == nil {
		return
	}
	for _, l := range limits {
		m.limits.WithLabelValues(l).Inc()
	}
}
