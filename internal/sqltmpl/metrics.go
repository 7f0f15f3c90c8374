package sqltmpl

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Reasons a Render is refused, the label of activitybi_sqltmpl_rejections_total.
// One refused Render counts once per distinct reason among its problems.
const (
	ReasonUnknownTemplate = "unknown_template" // no template of that name
	ReasonTooLarge        = "params_too_large" // the object is over MaxParamsBytes
	ReasonMalformed       = "malformed"        // not a JSON object, a key given twice
	ReasonUnknownParam    = "unknown_param"    // a key the template does not take
	ReasonMissing         = "missing"          // a required parameter is absent
	ReasonWrongType       = "wrong_type"       // e.g. a string where an integer belongs
	ReasonOutOfRange      = "out_of_range"     // outside Min/Max, or a timestamp outside its range
	ReasonTooLong         = "too_long"         // a string over its MaxLen
	ReasonNotAllowed      = "not_allowed"      // not an enum value, not matching Pattern, control characters
	ReasonWindow          = "window"           // days with from, from after to, over MaxWindowDays or MaxBuckets
)

var reasons = []string{ReasonUnknownTemplate, ReasonTooLarge, ReasonMalformed, ReasonUnknownParam,
	ReasonMissing, ReasonWrongType, ReasonOutOfRange, ReasonTooLong, ReasonNotAllowed, ReasonWindow}

// metrics of a Library. They count from Load on; Register exposes them.
type metrics struct {
	renders    prometheus.Counter
	rejections *prometheus.CounterVec // reason
	byReason   map[string]prometheus.Counter
}

func newMetrics() *metrics {
	m := &metrics{
		renders: prometheus.NewCounter(prometheus.CounterOpts{Name: "activitybi_sqltmpl_renders_total",
			Help: "Templates rendered into SQL (accepted parameters)."}),
		rejections: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "activitybi_sqltmpl_rejections_total",
			Help: "Template renders refused, by reason (unknown_template, params_too_large, malformed, unknown_param, missing, wrong_type, out_of_range, too_long, not_allowed, window); a render with several kinds of problem counts once per kind."},
			[]string{"reason"}),
		byReason: make(map[string]prometheus.Counter, len(reasons)),
	}
	for _, r := range reasons {
		m.byReason[r] = m.rejections.WithLabelValues(r)
	}
	return m
}

// Register adds the library's metrics to reg. Registering the same
// library on the same registry again is not an error.
func (l *Library) Register(reg prometheus.Registerer) error {
	if reg == nil {
		return nil
	}
	for _, c := range []prometheus.Collector{l.metrics.renders, l.metrics.rejections} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) && are.ExistingCollector == c {
				continue
			}
			return err
		}
	}
	return nil
}
