package dataset

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// limitNames are the limits a Problem can name; their counters exist at
// zero from the start, so rate() and alerts see them before the first hit.
var limitNames = []string{"MaxSpecBytes", "MaxDepth", "MaxAppends", "MaxFilters", "MaxFeatures",
	"MaxInValues", "MaxValueLen", "MaxNameLen", "MaxIdentLen", "MaxNth", "MaxLimit"}

// Metrics counts refused specs and the limits they hit
// (activitybi_dataset_*). Decode and Compile are plain functions, so their
// caller, which owns the registry, reports each error here.
type Metrics struct {
	refused prometheus.Counter
	limits  *prometheus.CounterVec // limit
}

// NewMetrics registers the dataset metrics on reg (nil: not registered).
// A second Metrics on the same registry shares the first one's counters.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		refused: prometheus.NewCounter(prometheus.CounterOpts{Name: "activitybi_dataset_specs_refused_total",
			Help: "Dataset specs refused as invalid (any problem, limits included)."}),
		limits: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "activitybi_dataset_limit_hits_total",
			Help: "Limits dataset specs exceeded, by the limit's constant name (a spec can hit several)."}, []string{"limit"}),
	}
	if reg != nil {
		var err error
		m.refused = register(reg, m.refused, &err)
		m.limits = register(reg, m.limits, &err)
		if err != nil {
			return nil, fmt.Errorf("dataset: register metrics: %w", err)
		}
	}
	for _, l := range limitNames {
		m.limits.WithLabelValues(l)
	}
	return m, nil
}

// Observe counts err if it is a refused spec (a *SpecError), with every
// limit it names; other errors and nil are not counted.
func (m *Metrics) Observe(err error) {
	var se *SpecError
	if m == nil || !errors.As(err, &se) {
		return
	}
	m.refused.Inc()
	for _, p := range se.Problems {
		if p.Limit != "" {
			m.limits.WithLabelValues(p.Limit).Inc()
		}
	}
}

// register registers c, or returns the collector already registered under
// the same name. The first other error is kept in *errp.
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
