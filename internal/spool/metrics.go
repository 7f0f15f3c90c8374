package spool

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the spool's Prometheus metrics. One *Metrics may be shared by
// every Writer (and Recover call) of a process; counters then add up.
type Metrics struct {
	appends                 prometheus.Counter
	appendBytes             prometheus.Counter
	fsyncDuration           prometheus.Histogram
	pending                 prometheus.Gauge
	rotations               prometheus.Counter
	recoveredSegments       prometheus.Counter
	recoveredTruncatedBytes prometheus.Counter
	corruptRecords          prometheus.Counter
	backpressureRejections  prometheus.Counter
	writerFailures          prometheus.Counter
}

// NewMetrics creates the activitybi_spool_* metrics and registers them with
// reg when reg is not nil. Registering twice with the same registry reuses
// the metrics already registered, so every caller sees the same counters.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		appends: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "activitybi_spool_appends_total",
			Help: "Records appended to the spool and acknowledged.",
		}),
		appendBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "activitybi_spool_append_bytes_total",
			Help: "Bytes of framed records appended to the spool.",
		}),
		fsyncDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "activitybi_spool_fsync_duration_seconds",
			Help:    "Duration of fsync calls on spool segments.",
			Buckets: prometheus.ExponentialBuckets(50e-6, 2, 14), // 50 µs .. 0.4 s
		}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "activitybi_spool_pending_events",
			Help: "Estimated records in the spool not yet committed to the warehouse.",
		}),
		rotations: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "activitybi_spool_rotations_total",
			Help: "Segments closed by rotation (size or age).",
		}),
		recoveredSegments: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "activitybi_spool_recovered_segments_total",
			Help: "Orphaned open segments closed by recovery.",
		}),
		recoveredTruncatedBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "activitybi_spool_recovered_truncated_bytes_total",
			Help: "Bytes of torn tails truncated by recovery.",
		}),
		corruptRecords: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "activitybi_spool_corrupt_records_total",
			Help: "Corrupt records found by recovery in the middle of segments (left for quarantine).",
		}),
		backpressureRejections: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "activitybi_spool_backpressure_rejections_total",
			Help: "Appends rejected because too many records are not yet in the warehouse.",
		}),
		writerFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "activitybi_spool_writer_failures_total",
			Help: "Writers failed for good by a write or fsync error.",
		}),
	}
	if reg != nil {
		m.appends = register(reg, m.appends)
		m.appendBytes = register(reg, m.appendBytes)
		m.fsyncDuration = register(reg, m.fsyncDuration)
		m.pending = register(reg, m.pending)
		m.rotations = register(reg, m.rotations)
		m.recoveredSegments = register(reg, m.recoveredSegments)
		m.recoveredTruncatedBytes = register(reg, m.recoveredTruncatedBytes)
		m.corruptRecords = register(reg, m.corruptRecords)
		m.backpressureRejections = register(reg, m.backpressureRejections)
		m.writerFailures = register(reg, m.writerFailures)
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
