package upload

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/activitybi/activitybi/internal/spool"
)

// SpoolCollector exports the state of a spool directory as the core sees it
// at scrape time: writers are other processes, so their own counters live
// there, but what they left in the directory is visible here.
type SpoolCollector struct {
	dir      string
	pending  *prometheus.Desc
	segments *prometheus.Desc
	bytes    *prometheus.Desc
	orphaned *prometheus.Desc
}

// NewSpoolCollector returns a collector for the spool at dir.
func NewSpoolCollector(dir string) *SpoolCollector {
	return &SpoolCollector{
		dir: dir,
		pending: prometheus.NewDesc("activitybi_spool_dir_pending_events",
			"Records in the spool directory not yet committed to the warehouse.", nil, nil),
		segments: prometheus.NewDesc("activitybi_spool_dir_segments",
			"Segments in the spool directory, by state (open, closed).", []string{"state"}, nil),
		bytes: prometheus.NewDesc("activitybi_spool_dir_bytes",
			"Bytes of all segments in the spool directory.", nil, nil),
		orphaned: prometheus.NewDesc("activitybi_spool_dir_orphaned_segments",
			"Open segments whose writer process is gone (recovered within seconds).", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *SpoolCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.pending
	ch <- c.segments
	ch <- c.bytes
	ch <- c.orphaned
}

// Collect implements prometheus.Collector.
func (c *SpoolCollector) Collect(ch chan<- prometheus.Metric) {
	r, err := spool.Stat(c.dir)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.pending, err)
		return
	}
	open, closed := 0, 0
	for _, s := range r.Segments {
		if s.Closed {
			closed++
		} else {
			open++
		}
	}
	ch <- prometheus.MustNewConstMetric(c.pending, prometheus.GaugeValue, float64(r.Pending))
	ch <- prometheus.MustNewConstMetric(c.segments, prometheus.GaugeValue, float64(open), "open")
	ch <- prometheus.MustNewConstMetric(c.segments, prometheus.GaugeValue, float64(closed), "closed")
	ch <- prometheus.MustNewConstMetric(c.bytes, prometheus.GaugeValue, float64(r.Bytes))
	ch <- prometheus.MustNewConstMetric(c.orphaned, prometheus.GaugeValue, float64(r.Orphaned))
}
