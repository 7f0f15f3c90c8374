package cache

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Stats are a cache's counters and lookup histogram, cumulative: what an
// edge (which has no /metrics of its own) reports to its core, as the
// difference from its previous report (Sub), and the core adds up in a
// Reported. Maps are keyed by label value; zero values are left out.
type Stats struct {
	Hits     map[Tier]uint64    `json:"hits,omitempty"`    // l1, l2
	Misses   map[Tier]uint64    `json:"misses,omitempty"`  // l1, l2
	Lookups  map[Tier]HistStats `json:"lookups,omitempty"` // l1 (sampled), l2, load
	L2Errors map[string]uint64  `json:"l2_errors,omitempty"`
	// InvalidationsReceived is keyed by how: pubsub, local.
	InvalidationsReceived map[string]uint64 `json:"invalidations_received,omitempty"`
	L2Bypassed            uint64            `json:"l2_bypassed,omitempty"`
	Loads                 uint64            `json:"loads,omitempty"`
	LoadErrors            uint64            `json:"load_errors,omitempty"`
	InvalidationsSent     uint64            `json:"invalidations_sent,omitempty"`
	L1Flushes             uint64            `json:"l1_flushes,omitempty"`
	StaleServes           uint64            `json:"stale_serves,omitempty"`
}

// HistStats is one tier's lookup-duration histogram: Buckets[i] counts the
// lookups up to LookupBuckets()[i] seconds (cumulative, as Prometheus has
// it), Count all of them, Sum their seconds.
type HistStats struct {
	Count   uint64   `json:"count"`
	Sum     float64  `json:"sum"`
	Buckets []uint64 `json:"buckets"`
}

// LookupBuckets returns the upper bounds of the lookup-duration histogram.
func LookupBuckets() []float64 { return slices.Clone(lookupBuckets) }

// Stats reads the cache's counters. Caches that share a registry share
// their metrics, so it then reads the process's total; an edge's cache has
// metrics of its own (no registry).
func (c *Cache) Stats() Stats {
	m := c.m
	s := Stats{Hits: map[Tier]uint64{}, Misses: map[Tier]uint64{}, Lookups: map[Tier]HistStats{},
		L2Errors: map[string]uint64{}, InvalidationsReceived: map[string]uint64{}}
	for _, t := range hitTiers {
		putNZ(s.Hits, t, counterValue(m.hits.WithLabelValues(string(t))))
		putNZ(s.Misses, t, counterValue(m.misses.WithLabelValues(string(t))))
	}
	for _, t := range lookupTiers {
		if h := histValue(m.duration.WithLabelValues(string(t))); h.Count > 0 {
			s.Lookups[t] = h
		}
	}
	for _, op := range l2Ops {
		putNZ(s.L2Errors, op, counterValue(m.l2Errors.WithLabelValues(op)))
	}
	for _, v := range vias {
		putNZ(s.InvalidationsReceived, v, counterValue(m.invReceived.WithLabelValues(v)))
	}
	s.L2Bypassed, s.Loads, s.LoadErrors = counterValue(m.l2Bypassed), counterValue(m.loads), counterValue(m.loadErrors)
	s.InvalidationsSent, s.L1Flushes, s.StaleServes = counterValue(m.invSent), counterValue(m.l1Flushes), counterValue(m.staleServes)
	return s
}

func putNZ[K comparable](m map[K]uint64, k K, v uint64) {
	if v > 0 {
		m[k] = v
	}
}

func counterValue(c prometheus.Metric) uint64 {
	var d dto.Metric
	if c.Write(&d) != nil {
		return 0
	}
	return uint64(d.GetCounter().GetValue())
}

func histValue(o prometheus.Observer) HistStats {
	var d dto.Metric
	mt, ok := o.(prometheus.Metric)
	if !ok || mt.Write(&d) != nil {
		return HistStats{}
	}
	h := d.GetHistogram()
	out := HistStats{Count: h.GetSampleCount(), Sum: h.GetSampleSum(), Buckets: make([]uint64, len(lookupBuckets))}
	for i, b := range h.GetBucket() {
		if i < len(out.Buckets) {
			out.Buckets[i] = b.GetCumulativeCount()
		}
	}
	return out
}

// Sub returns s minus prev: what happened between two reads of one cache's
// Stats. A counter that went backwards (another process, a restart) counts
// from zero.
func (s Stats) Sub(prev Stats) Stats {
	d := func(a, b uint64) uint64 {
		if a < b {
			return a
		}
		return a - b
	}
	subMap := func(a, b map[Tier]uint64) map[Tier]uint64 {
		out := map[Tier]uint64{}
		for k, v := range a {
			putNZ(out, k, d(v, b[k]))
		}
		return out
	}
	subStr := func(a, b map[string]uint64) map[string]uint64 {
		out := map[string]uint64{}
		for k, v := range a {
			putNZ(out, k, d(v, b[k]))
		}
		return out
	}
	out := Stats{Hits: subMap(s.Hits, prev.Hits), Misses: subMap(s.Misses, prev.Misses), Lookups: map[Tier]HistStats{},
		L2Errors: subStr(s.L2Errors, prev.L2Errors), InvalidationsReceived: subStr(s.InvalidationsReceived, prev.InvalidationsReceived),
		L2Bypassed: d(s.L2Bypassed, prev.L2Bypassed), Loads: d(s.Loads, prev.Loads), LoadErrors: d(s.LoadErrors, prev.LoadErrors),
		InvalidationsSent: d(s.InvalidationsSent, prev.InvalidationsSent), L1Flushes: d(s.L1Flushes, prev.L1Flushes),
		StaleServes: d(s.StaleServes, prev.StaleServes)}
	for t, h := range s.Lookups {
		p, ok := prev.Lookups[t]
		if !ok || h.Count < p.Count || len(p.Buckets) != len(h.Buckets) {
			p = HistStats{Buckets: make([]uint64, len(h.Buckets))}
		}
		if h.Count == p.Count {
			continue
		}
		x := HistStats{Count: h.Count - p.Count, Sum: h.Sum - p.Sum, Buckets: make([]uint64, len(h.Buckets))}
		for i := range h.Buckets {
			x.Buckets[i] = d(h.Buckets[i], p.Buckets[i])
		}
		out.Lookups[t] = x
	}
	return out
}

// IsZero reports whether nothing was counted.
func (s Stats) IsZero() bool {
	return len(s.Hits) == 0 && len(s.Misses) == 0 && len(s.Lookups) == 0 && len(s.L2Errors) == 0 &&
		len(s.InvalidationsReceived) == 0 && s.L2Bypassed == 0 && s.Loads == 0 && s.LoadErrors == 0 &&
		s.InvalidationsSent == 0 && s.L1Flushes == 0 && s.StaleServes == 0
}

// Reported adds up what edges report of their caches (Stats differences)
// and exposes the sums on a registry as the activitybi_cache_* counters
// and lookup histogram with process="edge", next to the core's own
// (process="core"): the same names, help and labels, so one query covers
// both. It is an unchecked collector (it describes nothing), because its
// series share names with the registered vectors of the core's cache.
type Reported struct {
	mu    sync.Mutex
	total Stats
}

// NewReported returns a Reported registered on reg.
func NewReported(reg prometheus.Registerer) (*Reported, error) {
	r := &Reported{total: Stats{Hits: map[Tier]uint64{}, Misses: map[Tier]uint64{}, Lookups: map[Tier]HistStats{},
		L2Errors: map[string]uint64{}, InvalidationsReceived: map[string]uint64{}}}
	if reg != nil {
		if err := reg.Register(r); err != nil {
			return nil, fmt.Errorf("cache: register reported metrics: %w", err)
		}
	}
	return r, nil
}

// maxReportedCount bounds one counter of one report: far above what a
// process counts in seconds, so a report beyond it is corrupt.
const maxReportedCount = 1 << 40

// Add adds one report (a Stats difference). A report naming a tier,
// operation or channel that no cache counts, or with a histogram of
// another shape, is refused whole, so that labels stay bounded whatever
// an edge sends.
func (r *Reported) Add(s Stats) error {
	if err := checkReport(s); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	t := &r.total
	for k, v := range s.Hits {
		t.Hits[k] += v
	}
	for k, v := range s.Misses {
		t.Misses[k] += v
	}
	for k, v := range s.L2Errors {
		t.L2Errors[k] += v
	}
	for k, v := range s.InvalidationsReceived {
		t.InvalidationsReceived[k] += v
	}
	for k, h := range s.Lookups {
		x := t.Lookups[k]
		if x.Buckets == nil {
			x.Buckets = make([]uint64, len(lookupBuckets))
		}
		x.Count += h.Count
		x.Sum += h.Sum
		for i, b := range h.Buckets {
			x.Buckets[i] += b
		}
		t.Lookups[k] = x
	}
	t.L2Bypassed += s.L2Bypassed
	t.Loads += s.Loads
	t.LoadErrors += s.LoadErrors
	t.InvalidationsSent += s.InvalidationsSent
	t.L1Flushes += s.L1Flushes
	t.StaleServes += s.StaleServes
	return nil
}

func checkReport(s Stats) error {
	bad := func(what string, v any) error {
		return fmt.Errorf("cache report: unknown %s %v", what, v)
	}
	var vals []uint64
	for k, v := range s.Hits {
		if !slices.Contains(hitTiers, k) {
			return bad("tier", k)
		}
		vals = append(vals, v)
	}
	for k, v := range s.Misses {
		if !slices.Contains(hitTiers, k) {
			return bad("tier", k)
		}
		vals = append(vals, v)
	}
	for k, v := range s.L2Errors {
		if !slices.Contains(l2Ops, k) {
			return bad("operation", k)
		}
		vals = append(vals, v)
	}
	for k, v := range s.InvalidationsReceived {
		if !slices.Contains(vias, k) {
			return bad("channel", k)
		}
		vals = append(vals, v)
	}
	for k, h := range s.Lookups {
		if !slices.Contains(lookupTiers, k) {
			return bad("tier", k)
		}
		if len(h.Buckets) != len(lookupBuckets) || math.IsNaN(h.Sum) || math.IsInf(h.Sum, 0) || h.Sum < 0 {
			return fmt.Errorf("cache report: the %s histogram has %d buckets (want %d) or a bad sum", k, len(h.Buckets), len(lookupBuckets))
		}
		for i, b := range h.Buckets {
			if b > h.Count || (i > 0 && b < h.Buckets[i-1]) {
				return fmt.Errorf("cache report: the %s histogram's buckets are not cumulative counts", k)
			}
		}
		vals = append(vals, h.Count)
	}
	vals = append(vals, s.L2Bypassed, s.Loads, s.LoadErrors, s.InvalidationsSent, s.L1Flushes, s.StaleServes)
	for _, v := range vals {
		if v > maxReportedCount {
			return errors.New("cache report: a count is out of range")
		}
	}
	return nil
}

// Describe describes nothing: Reported is an unchecked collector.
func (r *Reported) Describe(chan<- *prometheus.Desc) {}

// Collect sends the sums, process="edge".
func (r *Reported) Collect(ch chan<- prometheus.Metric) {
	r.mu.Lock()
	t := r.total
	hits, misses := cloneMap(t.Hits), cloneMap(t.Misses)
	l2, inv := cloneMap(t.L2Errors), cloneMap(t.InvalidationsReceived)
	lookups := map[Tier]HistStats{}
	for k, h := range t.Lookups {
		lookups[k] = HistStats{Count: h.Count, Sum: h.Sum, Buckets: slices.Clone(h.Buckets)}
	}
	r.mu.Unlock()

	counter := func(d metricDef, v uint64, lv ...string) {
		desc := prometheus.NewDesc(d.name, d.help, append(append([]string(nil), d.labels...), "process"), nil)
		ch <- prometheus.MustNewConstMetric(desc, prometheus.CounterValue, float64(v), append(lv, ProcessEdge)...)
	}
	// Every series a core's own cache has at zero is present at zero here
	// too, so that rates work from the first report.
	for _, tr := range hitTiers {
		counter(defHits, hits[tr], string(tr))
		counter(defMisses, misses[tr], string(tr))
	}
	for _, op := range l2Ops {
		counter(defL2Errors, l2[op], op)
	}
	for _, v := range vias {
		counter(defInvReceived, inv[v], v)
	}
	counter(defL2Bypassed, t.L2Bypassed)
	counter(defLoads, t.Loads)
	counter(defLoadErrors, t.LoadErrors)
	counter(defInvSent, t.InvalidationsSent)
	counter(defL1Flushes, t.L1Flushes)
	counter(defStaleServes, t.StaleServes)
	hd := prometheus.NewDesc(defDuration.name, defDuration.help, []string{"tier", "process"}, nil)
	for _, tr := range lookupTiers {
		h, ok := lookups[tr]
		if !ok {
			continue
		}
		b := make(map[float64]uint64, len(lookupBuckets))
		for i, ub := range lookupBuckets {
			b[ub] = h.Buckets[i]
		}
		ch <- prometheus.MustNewConstHistogram(hd, h.Count, h.Sum, b, string(tr), ProcessEdge)
	}
}

func cloneMap[K comparable](m map[K]uint64) map[K]uint64 {
	out := make(map[K]uint64, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
