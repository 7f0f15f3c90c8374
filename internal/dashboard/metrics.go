package dashboard

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	renders  *prometheus.CounterVec
	duration *prometheus.HistogramVec
	limits   *prometheus.CounterVec
	logins   *prometheus.CounterVec
}

// limitNames are the limits a page can hit, present at zero.
var limitNames = []string{"range", "rows", "sessions", "login_body", "points"}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		renders: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "activitybi_dashboard_page_renders_total",
			Help: "Dashboard page views by page and HTTP status (auth: sent to the login or refused)."},
			[]string{"page", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "activitybi_dashboard_render_duration_seconds",
			Help:    "Time to build and render a dashboard page, warehouse queries included.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12)},
			[]string{"page"}),
		limits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "activitybi_dashboard_limit_hits_total",
			Help: "Dashboard limits hit: range (a from/to span over MaxRange), rows (a table cut at MaxTableRows), sessions (a login evicted the oldest at MaxSessions), login_body (a login form over its size limit), points (an insight trend sampled down to maxSparkPoints values)."},
			[]string{"limit"}),
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "activitybi_dashboard_logins_total",
			Help: "Dashboard sign-ins by outcome (ok, refused, bad_request) and sign-outs (logout)."},
			[]string{"outcome"}),
	}
	for _, l := range limitNames {
		m.limits.WithLabelValues(l)
	}
	if reg == nil {
		return m, nil
	}
	var err error
	m.renders = register(reg, m.renders, &err)
	m.duration = register(reg, m.duration, &err)
	m.limits = register(reg, m.limits, &err)
	m.logins = register(reg, m.logins, &err)
	return m, err
}

func (m *metrics) limit(name string) { m.limits.WithLabelValues(name).Inc() }

// register registers c, or returns the collector already registered under
// the same name (a second Dashboard in the process, as in tests).
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
