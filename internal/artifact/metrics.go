package artifact

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the activitybi_artifact_* metrics.
type metrics struct {
	puts           *prometheus.CounterVec // outcome
	putBytes       prometheus.Counter
	putDuration    prometheus.Histogram
	gets           *prometheus.CounterVec // outcome
	missingBlobs   prometheus.Counter
	swept          prometheus.Counter
	sweepErrors    prometheus.Counter
	sweepTruncated prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		puts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "activitybi_artifact_puts_total",
			Help: "Artifact puts by outcome: stored, too_large (over MaxSize), invalid (bad content type, kind, name or expiry), timeout (PutTimeout), error."}, []string{"outcome"}),
		putBytes: prometheus.NewCounter(prometheus.CounterOpts{Name: "activitybi_artifact_put_bytes_total",
			Help: "Bytes of stored artifacts."}),
		putDuration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "activitybi_artifact_put_duration_seconds",
			Help: "Time of one put, row writes and blob write included, whatever the outcome.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}),
		gets: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "activitybi_artifact_gets_total",
			Help: "Artifact reads (Get and the HTTP handler's GET) by outcome: found, not_found (missing, another customer's, expired), error."}, []string{"outcome"}),
		missingBlobs: prometheus.NewCounter(prometheus.CounterOpts{Name: "activitybi_artifact_missing_blobs_total",
			Help: "Reads of an artifact whose row exists but whose blob does not (answered as not found)."}),
		swept: prometheus.NewCounter(prometheus.CounterOpts{Name: "activitybi_artifact_swept_total",
			Help: "Expired artifacts removed (blob and row)."}),
		sweepErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "activitybi_artifact_sweep_errors_total",
			Help: "Expired artifacts a sweep could not remove (retried by the next sweep)."}),
		sweepTruncated: prometheus.NewCounter(prometheus.CounterOpts{Name: "activitybi_artifact_sweep_truncated_total",
			Help: "Sweeps that stopped at their limit with expired artifacts left for the next sweep."}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.puts, m.putBytes, m.putDuration, m.gets, m.missingBlobs, m.swept, m.sweepErrors, m.sweepTruncated} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("artifact: register metrics: %w", err)
			}
		}
	}
	return m, nil
}
