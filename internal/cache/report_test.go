package cache

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// TestStatsReportedToCore: an edge's cache (no registry) reports the
// difference of its Stats; the core's registry shows the sums as
// process="edge" next to its own cache's process="core" series, under the
// same names.
func TestStatsReportedToCore(t *testing.T) {
	t.Parallel()
	r := startRedis(t)
	edge := newCache(t, Options{RedisURL: r.URL()})
	// A cache flushes its L1 when its invalidation subscription connects
	// (it may have missed invalidations before): wait for that first, or
	// the flush can land between the calls below and turn a hit into a miss.
	eventually(t, 5*time.Second, "subscribed", edge.Subscribed)
	reg := prometheus.NewRegistry()
	core := newCache(t, Options{Registerer: reg})
	rep, err := NewReported(reg)
	if err != nil {
		t.Fatal(err)
	}
	var n counter
	mustGet(t, edge, "pat", "", n.load("v", 1)) // l1 miss, l2 miss, load
	eventually(t, 20*time.Second, "write-back", func() bool { return l2Exists(t, r, DefaultNamespace, "pat", "") })
	mustGet(t, edge, "pat", "", failLoad(t)) // l1 hit
	edge.InvalidateLocal("pat")
	mustGet(t, edge, "pat", "", failLoad(t)) // l1 miss (invalidated), l2 hit
	mustGet(t, core, "pat", "", n.load("v", 1))

	first := edge.Stats()
	if first.Hits[TierL1] != 1 || first.Hits[TierL2] != 1 || first.Misses[TierL1] != 2 || first.Misses[TierL2] != 1 ||
		first.Loads != 1 || first.InvalidationsReceived["local"] != 1 || first.Lookups[TierL2].Count != 2 {
		t.Fatalf("edge stats %+v", first)
	}
	if err := rep.Add(first.Sub(Stats{})); err != nil {
		t.Fatal(err)
	}
	// The next report carries only what happened since.
	mustGet(t, edge, "pat", "", failLoad(t)) // l1 hit
	d := edge.Stats().Sub(first)
	if d.Hits[TierL1] != 1 || len(d.Misses) != 0 || d.Loads != 0 || len(d.Lookups) > 1 {
		t.Fatalf("difference %+v", d)
	}
	if edge.Stats().Sub(edge.Stats()).IsZero() != true {
		t.Fatal("no change must be zero")
	}
	// The report crosses the socket as JSON.
	b, _ := json.Marshal(d)
	var back Stats
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if err := rep.Add(back); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]float64{
		`activitybi_cache_hits_total{process="edge",tier="l1"}`:                      2,
		`activitybi_cache_hits_total{process="edge",tier="l2"}`:                      1,
		`activitybi_cache_misses_total{process="edge",tier="l1"}`:                    2,
		`activitybi_cache_loads_total{process="edge"}`:                               1,
		`activitybi_cache_invalidations_received_total{process="edge",via="local"}`:  1,
		`activitybi_cache_invalidations_received_total{process="edge",via="pubsub"}`: 0,
		`activitybi_cache_stale_serves_total{process="edge"}`:                        0,
		`activitybi_cache_lookup_duration_seconds_count{process="edge",tier="l2"}`:   2,
		`activitybi_cache_lookup_duration_seconds_count{process="edge",tier="load"}`: 1,
		`activitybi_cache_loads_total{process="core"}`:                               1,
		`activitybi_cache_misses_total{process="core",tier="l1"}`:                    1,
	} {
		if got := metricValue(t, reg, name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
}

func TestReportedRefusesUnknownLabels(t *testing.T) {
	t.Parallel()
	rep, err := NewReported(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	good := HistStats{Count: 2, Sum: 0.1, Buckets: make([]uint64, len(LookupBuckets()))}
	good.Buckets[len(good.Buckets)-1] = 2
	for name, s := range map[string]Stats{
		"tier":        {Hits: map[Tier]uint64{"l3": 1}},
		"op":          {L2Errors: map[string]uint64{"drop": 1}},
		"via":         {InvalidationsReceived: map[string]uint64{"carrier-pigeon": 1}},
		"buckets":     {Lookups: map[Tier]HistStats{TierL1: {Count: 1, Buckets: []uint64{1}}}},
		"not summing": {Lookups: map[Tier]HistStats{TierL1: {Count: 1, Buckets: append([]uint64{5}, good.Buckets[1:]...)}}},
		"huge":        {Loads: 1 << 50},
	} {
		if err := rep.Add(s); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if err := rep.Add(Stats{Lookups: map[Tier]HistStats{TierLoad: good}}); err != nil {
		t.Fatal(err)
	}
}

// FuzzReportedAdd: whatever an edge sends, Add either refuses it or keeps
// the registry gatherable.
func FuzzReportedAdd(f *testing.F) {
	f.Add([]byte(`{"hits":{"l1":3},"lookups":{"l2":{"count":1,"sum":0.001,"buckets":[0,0,0,0,0,0,0,0,1,1,1,1,1,1,1,1]}}}`))
	f.Add([]byte(`{"l2_errors":{"get":2},"stale_serves":1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var s Stats
		if json.Unmarshal(b, &s) != nil {
			return
		}
		reg := prometheus.NewRegistry()
		rep, err := NewReported(reg)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Add(s) != nil {
			return
		}
		if _, err := reg.Gather(); err != nil {
			t.Fatalf("accepted %s, then Gather: %v", b, err)
		}
	})
}

// TestStatsOfSharedRegistry: caches on one registry read the process's
// totals (their metrics are shared).
func TestStatsOfSharedRegistry(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	a := newCache(t, Options{Registerer: reg})
	b := newCache(t, Options{Registerer: reg})
	var n counter
	mustGet(t, a, "x", "", n.load("v", 1))
	mustGet(t, b, "y", "", n.load("v", 1))
	if a.Stats().Loads != 2 || b.Stats().Loads != 2 {
		t.Fatalf("loads %d %d", a.Stats().Loads, b.Stats().Loads)
	}
	_, _, err := a.Get(context.Background(), "z", "", func(context.Context) (Entry, error) { return Entry{}, errors.New("no") })
	if err == nil || !strings.Contains(err.Error(), "no") || a.Stats().LoadErrors != 1 {
		t.Fatalf("load error: %v %+v", err, a.Stats())
	}
}
