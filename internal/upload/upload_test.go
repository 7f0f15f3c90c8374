package upload

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/activitybi/activitybi/internal/event"
	"github.com/activitybi/activitybi/internal/spool"
	"github.com/activitybi/activitybi/internal/warehouse"
	"github.com/activitybi/activitybi/internal/warehouse/duckdb"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// faulty wraps the real DuckDB driver and injects faults into Load.
type faulty struct {
	*duckdb.DB
	mu        sync.Mutex
	failNext  int           // fail this many Loads before reaching the driver
	failAt    int64         // fail the Load with this 1-based number (0 = none)
	stall     time.Duration // block each Load this long (honouring ctx) while > 0
	ackLost   int           // commit, then report an error, this many times
	rejectID  string        // fail any Load whose batch holds this activity_id, atom_id or audit_id
	loads     atomic.Int64
	maxBatch  atomic.Int64 // most records (events + insights + quarantine) seen in one Load
	failures  atomic.Int64
	committed atomic.Int64
}

var errInjected = errors.New("injected warehouse error")

func (f *faulty) Load(ctx context.Context, b *warehouse.Batch) (warehouse.LoadResult, error) {
	n := f.loads.Add(1)
	for r := int64(len(b.Events) + len(b.Insights) + len(b.Quarantine)); ; {
		if cur := f.maxBatch.Load(); r <= cur || f.maxBatch.CompareAndSwap(cur, r) {
			break
		}
	}
	f.mu.Lock()
	stall := f.stall
	fail := f.failNext > 0
	if fail {
		f.failNext--
	}
	lost := f.ackLost > 0
	if lost {
		f.ackLost--
	}
	reject := f.rejectID
	f.mu.Unlock()
	if stall > 0 {
		select {
		case <-time.After(stall):
		case <-ctx.Done():
			return warehouse.LoadResult{}, ctx.Err()
		}
	}
	if fail || n == f.failAt {
		f.failures.Add(1)
		return warehouse.LoadResult{}, errInjected
	}
	if reject != "" {
		hit := slices.ContainsFunc(b.Events, func(e event.Event) bool { return e.ActivityID == reject }) ||
			slices.ContainsFunc(b.Insights, func(x event.Insight) bool { return x.AtomID == reject }) ||
			slices.ContainsFunc(b.Audit, func(a event.Audit) bool { return a.AuditID == reject })
		if hit {
			f.failures.Add(1)
			return warehouse.LoadResult{}, fmt.Errorf("%w: conversion error: value of %s does not fit", warehouse.ErrRecordRejected, reject)
		}
	}
	res, err := f.DB.Load(ctx, b)
	if err == nil {
		f.committed.Add(1)
		if lost {
			return warehouse.LoadResult{}, errors.New("connection reset after commit")
		}
	}
	return res, err
}

type bundle struct {
	dir string
	db  *faulty
}

func setup(t *testing.T) (*Uploader, *bundle) {
	t.Helper()
	dir := t.TempDir()
	db, err := duckdb.Open(context.Background(), duckdb.Options{Path: filepath.Join(dir, "w.duckdb")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	f := &faulty{DB: db}
	u, err := New(Options{SpoolDir: filepath.Join(dir, "spool"), Warehouse: f,
		RetryMin: time.Millisecond, RetryMax: 20 * time.Millisecond, PollInterval: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return u, &bundle{dir: filepath.Join(dir, "spool"), db: f}
}

func payload(t testing.TB, id string) []byte {
	ev, err := event.Normalize(event.Input{ActivityID: id, Activity: "called_tool", Features: []byte(`{"tool":"x"}`)},
		event.Defaults{Customer: "c1", Source: event.SourceAPI})
	if err != nil {
		t.Fatal(err)
	}
	b, err := event.Marshal(&ev)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeN(t *testing.T, dir, prefix string, n int) {
	t.Helper()
	w, err := spool.Open(spool.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		if err := w.Append(KindEvent, payload(t, prefix+strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

func (b *bundle) count(t *testing.T, where string) int {
	t.Helper()
	tab, err := b.db.Query(context.Background(), "SELECT count(*) FROM "+where, 1)
	if err != nil {
		t.Fatal(err)
	}
	switch v := tab.Rows[0][0].(type) {
	case int64:
		return int(v)
	default:
		n, _ := strconv.Atoi(fmt.Sprint(v))
		return n
	}
}

func drain(t *testing.T, u *Uploader) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := u.Drain(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestDrainLoadsEverythingAndDeletesSegments(t *testing.T) {
	t.Parallel()
	u, b := setup(t)
	writeN(t, b.dir, "a", 3000)
	writeN(t, b.dir, "b", 2000)
	drain(t, u)
	if got := b.count(t, "claude_stream"); got != 5000 {
		t.Fatalf("rows %d, want 5000", got)
	}
	segs, err := spool.ListSegments(b.dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(segs) != 0 {
		t.Fatalf("%d segments left after a full drain of closed segments", len(segs))
	}
	offs, _ := b.db.Offsets(context.Background())
	if len(offs) != 0 {
		t.Fatalf("offsets of deleted segments kept: %v", offs)
	}
	st := u.Status()
	if st.Inserted != 5000 || st.Duplicates != 0 || st.Quarantined != 0 {
		t.Fatalf("status %+v", st)
	}
}

func TestTailsOpenSegment(t *testing.T) {
	t.Parallel()
	u, b := setup(t)
	w, err := spool.Open(spool.Options{Dir: b.dir})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for i := 0; i < 100; i++ {
		if err := w.Append(KindEvent, payload(t, "open"+strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	drain(t, u)
	if got := b.count(t, "claude_stream"); got != 100 {
		t.Fatalf("rows %d from an open segment, want 100", got)
	}
	// More appends to the same open segment are picked up from the offset.
	for i := 100; i < 150; i++ {
		if err := w.Append(KindEvent, payload(t, "open"+strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	drain(t, u)
	if got := b.count(t, "claude_stream"); got != 150 {
		t.Fatalf("rows %d, want 150", got)
	}
	if u.Status().Duplicates != 0 {
		t.Fatal("an open segment was re-read from the start")
	}
}

func TestWarehouseErrorsAndStallThenRecovery(t *testing.T) {
	t.Parallel()
	u, b := setup(t)
	b.db.failNext = 6
	b.db.stall = 300 * time.Millisecond
	writeN(t, b.dir, "e", 1000)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- u.Run(ctx) }()
	time.Sleep(100 * time.Millisecond)
	b.db.mu.Lock()
	b.db.stall = 0
	b.db.mu.Unlock()
	deadline := time.Now().Add(30 * time.Second)
	for b.count(t, "claude_stream") != 1000 {
		if time.Now().After(deadline) {
			t.Fatalf("not recovered: %+v", u.Status())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if b.db.failures.Load() < 6 {
		t.Fatalf("only %d injected failures happened", b.db.failures.Load())
	}
	if st := u.Status(); st.Duplicates != 0 || st.Quarantined != 0 || st.LastError != "" {
		t.Fatalf("status after recovery %+v", st)
	}
}

func TestCommitWithLostAckIsNotDuplicated(t *testing.T) {
	t.Parallel()
	u, b := setup(t)
	b.db.ackLost = 2
	writeN(t, b.dir, "l", 500)
	drain(t, u)
	if got := b.count(t, "claude_stream"); got != 500 {
		t.Fatalf("rows %d, want 500", got)
	}
	if b.db.committed.Load() < 3 {
		t.Fatalf("expected re-sent batches, committed %d", b.db.committed.Load())
	}
}

func TestRestartResumesFromCommittedOffsets(t *testing.T) {
	t.Parallel()
	u, b := setup(t)
	w, err := spool.Open(spool.Options{Dir: b.dir})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for i := 0; i < 300; i++ {
		if err := w.Append(KindEvent, payload(t, "r"+strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	drain(t, u)
	for i := 300; i < 400; i++ {
		if err := w.Append(KindEvent, payload(t, "r"+strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	// A new uploader (a restarted core) starts from the warehouse's offsets.
	u2, err := New(Options{SpoolDir: b.dir, Warehouse: b.db})
	if err != nil {
		t.Fatal(err)
	}
	drain(t, u2)
	if got := b.count(t, "claude_stream"); got != 400 {
		t.Fatalf("rows %d, want 400", got)
	}
	if st := u2.Status(); st.Inserted != 100 || st.Duplicates != 0 {
		t.Fatalf("restart re-read committed records: %+v", st)
	}
}

func TestPoisonRecordIsQuarantined(t *testing.T) {
	t.Parallel()
	u, b := setup(t)
	b.db.rejectID = "p137"
	writeN(t, b.dir, "p", 400)
	drain(t, u)
	if got := b.count(t, "claude_stream"); got != 399 {
		t.Fatalf("rows %d, want 399", got)
	}
	tab, err := b.db.Query(context.Background(), "SELECT reason, raw FROM upload_quarantine", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(tab.Rows) != 1 || !strings.Contains(fmt.Sprint(tab.Rows[0][0]), "rejected by the warehouse: conversion error") ||
		!strings.Contains(fmt.Sprint(tab.Rows[0][1]), `"p137"`) {
		t.Fatalf("quarantine %v", tab.Rows)
	}
}

func TestSchemaDriftAndUnknownKindsAreQuarantined(t *testing.T) {
	t.Parallel()
	u, b := setup(t)
	w, err := spool.Open(spool.Options{Dir: b.dir})
	if err != nil {
		t.Fatal(err)
	}
	good := payload(t, "g1")
	drift := strings.Replace(string(payload(t, "d1")), `"activity_id"`, `"session":"x","activity_id"`, 1)
	wrongType := strings.Replace(string(payload(t, "d2")), `"customer":"c1"`, `"customer":7`, 1)
	badActivity := strings.Replace(string(payload(t, "d3")), `"activity":"called_tool"`, `"activity":"Called Tool"`, 1)
	for _, rec := range []struct{ kind, p string }{
		{KindEvent, string(good)}, {KindEvent, drift}, {KindEvent, wrongType}, {KindEvent, badActivity},
		{"insight_vnext", `{"subject":"x"}`}, {KindEvent, string(payload(t, "g2"))},
	} {
		if err := w.Append(rec.kind, []byte(rec.p)); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	drain(t, u)
	if got := b.count(t, "claude_stream"); got != 2 {
		t.Fatalf("rows %d, want 2", got)
	}
	tab, err := b.db.Query(context.Background(), "SELECT kind, reason FROM upload_quarantine ORDER BY \"offset\"", 10)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"schema drift: decode event: json: unknown field \"session\"", "schema drift: decode event", "schema drift: invalid event: activity", "unknown record kind \"insight_vnext\""}
	if len(tab.Rows) != len(want) {
		t.Fatalf("quarantine rows %v", tab.Rows)
	}
	for i, w := range want {
		if r := fmt.Sprint(tab.Rows[i][1]); !strings.Contains(r, w) {
			t.Errorf("row %d reason %q, want it to contain %q", i, r, w)
		}
	}
}

func TestCorruptRecordIsQuarantined(t *testing.T) {
	t.Parallel()
	u, b := setup(t)
	writeN(t, b.dir, "c", 10)
	segs, _ := spool.ListSegments(b.dir)
	data, err := os.ReadFile(segs[0].Path)
	if err != nil {
		t.Fatal(err)
	}
	// Flip one byte inside the 5th record's payload.
	lines := strings.SplitAfter(string(data), "\n")
	pos := len(strings.Join(lines[:4], "")) + len(lines[4])/2
	data[pos] ^= 0x20
	if err := os.WriteFile(segs[0].Path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	drain(t, u)
	if got := b.count(t, "claude_stream"); got != 9 {
		t.Fatalf("rows %d, want 9", got)
	}
	tab, _ := b.db.Query(context.Background(), "SELECT reason, \"offset\" FROM upload_quarantine", 10)
	if len(tab.Rows) != 1 || !strings.Contains(fmt.Sprint(tab.Rows[0][0]), "corrupt record") {
		t.Fatalf("quarantine %v", tab.Rows)
	}
	if fmt.Sprint(tab.Rows[0][1]) != strconv.Itoa(len(strings.Join(lines[:4], ""))) {
		t.Fatalf("quarantined at offset %v", tab.Rows[0][1])
	}
}

func TestBackpressureReleasedByCommits(t *testing.T) {
	t.Parallel()
	u, b := setup(t)
	w, err := spool.Open(spool.Options{Dir: b.dir, MaxPending: 200})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for i := 0; i < 200; i++ {
		if err := w.Append(KindEvent, payload(t, "bp"+strconv.Itoa(i))); err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
	}
	err = w.Append(KindEvent, payload(t, "bp-over"))
	if !errors.Is(err, spool.ErrBackpressure) {
		t.Fatalf("append over the limit: %v", err)
	}
	drain(t, u)
	deadline := time.Now().Add(5 * time.Second)
	for {
		err = w.Append(KindEvent, payload(t, "bp-over"))
		if err == nil {
			break
		}
		if !errors.Is(err, spool.ErrBackpressure) || time.Now().After(deadline) {
			t.Fatalf("backpressure not released after commit: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestNewValidates(t *testing.T) {
	t.Parallel()
	if _, err := New(Options{}); err == nil {
		t.Fatal("empty options accepted")
	}
	if _, err := New(Options{SpoolDir: "x", Warehouse: &faulty{}, RetryMin: time.Second, RetryMax: time.Millisecond}); err == nil {
		t.Fatal("RetryMax < RetryMin accepted")
	}
}

// TestLongOutageQuarantinesNothing: errors that are the warehouse's state
// (not ErrRecordRejected) are retried however long they last; no good record
// is ever blamed and quarantined.
func TestLongOutageQuarantinesNothing(t *testing.T) {
	t.Parallel()
	u, b := setup(t)
	b.db.failNext = 25
	writeN(t, b.dir, "o", 1000)
	drain(t, u)
	if got := b.count(t, "claude_stream"); got != 1000 {
		t.Fatalf("rows %d, want 1000", got)
	}
	if got := b.count(t, "upload_quarantine"); got != 0 {
		t.Fatalf("%d records quarantined during an outage", got)
	}
	if b.db.failures.Load() != 25 {
		t.Fatalf("%d failures, want 25", b.db.failures.Load())
	}
}

// TestPipelinedBatchesSurviveAFailedCommit: with small batches the next one
// is built while the previous commits; a commit failing while a batch is
// built ahead must neither skip nor repeat records.
func TestPipelinedBatchesSurviveAFailedCommit(t *testing.T) {
	t.Parallel()
	_, b := setup(t)
	u, err := New(Options{SpoolDir: b.dir, Warehouse: b.db, BatchMaxRecords: 100,
		RetryMin: time.Millisecond, RetryMax: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	b.db.failAt = 3
	writeN(t, b.dir, "q", 1000)
	writeN(t, b.dir, "s", 550)
	drain(t, u)
	if got := b.count(t, "claude_stream"); got != 1550 {
		t.Fatalf("rows %d, want 1550", got)
	}
	st := u.Status()
	if st.Inserted != 1550 || st.Duplicates != 0 || st.Quarantined != 0 {
		t.Fatalf("status %+v", st)
	}
	if b.db.failures.Load() != 1 || b.db.committed.Load() < 16 {
		t.Fatalf("failures %d, commits %d: the pipelined path did not run as intended", b.db.failures.Load(), b.db.committed.Load())
	}
	if segs, _ := spool.ListSegments(b.dir); len(segs) != 0 {
		t.Fatalf("%d segments left", len(segs))
	}
}

func insightPayload(t testing.TB, customer, id, value string) []byte {
	x, err := event.NormalizeInsight(event.InsightInput{AtomID: id, Subject: "tool:Bash", Metric: "p95_latency_ms",
		Value: []byte(value)}, event.Defaults{Customer: customer, Source: event.SourceMCP})
	if err != nil {
		t.Fatal(err)
	}
	b, err := event.MarshalInsight(&x)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// counter sums a gathered counter's series whose labels include want.
func counter(t *testing.T, reg *prometheus.Registry, name string, want map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if v, ok := want[lp.GetName()]; ok && v != lp.GetValue() {
					continue metric
				}
			}
			sum += m.GetCounter().GetValue()
		}
	}
	return sum
}

// TestEventsAndInsightsLoadTogether: a spool mixing event and insight
// records — a re-sent insight, one insight id used by two customers, and an
// insight record that no longer fits the schema — loads into DuckDB with
// exact counts, and the bad record is quarantined as kind insight.
func TestEventsAndInsightsLoadTogether(t *testing.T) {
	t.Parallel()
	_, b := setup(t)
	reg := prometheus.NewRegistry()
	u, err := New(Options{SpoolDir: b.dir, Warehouse: b.db, Registerer: reg, RetryMin: time.Millisecond, RetryMax: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	w, err := spool.Open(spool.Options{Dir: b.dir})
	if err != nil {
		t.Fatal(err)
	}
	badInsight := strings.Replace(string(insightPayload(t, "c1", "bad", "1")), `"metric":"p95_latency_ms"`, `"metric":"P95 Latency"`, 1)
	recs := []struct{ kind, p string }{
		{KindEvent, string(payload(t, "e1"))},
		{KindInsight, string(insightPayload(t, "c1", "i1", `412`))},
		{KindInsight, string(insightPayload(t, "c1", "i2", `{"p50":120,"p95":412}`))},
		{KindEvent, string(payload(t, "e2"))},
		{KindInsight, badInsight},
		{KindInsight, string(insightPayload(t, "c2", "i1", `"same id, other customer"`))},
		{KindInsight, string(insightPayload(t, "c1", "i1", `999`))}, // re-sent: the first stays
		{KindEvent, string(payload(t, "e3"))},
	}
	for _, r := range recs {
		if err := w.Append(r.kind, []byte(r.p)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	drain(t, u)
	if got := b.count(t, "claude_stream"); got != 3 {
		t.Fatalf("claude_stream rows %d, want 3", got)
	}
	tab, err := b.db.Query(context.Background(), `SELECT customer_id, atom_id, value::VARCHAR, _source, _verified FROM insight_atoms ORDER BY customer_id, atom_id`, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := "[[c1 i1 412 mcp false] [c1 i2 {\"p50\":120,\"p95\":412} mcp false] [c2 i1 \"same id, other customer\" mcp false]]"
	if got := fmt.Sprint(tab.Rows); got != want {
		t.Fatalf("insight_atoms\n got %s\nwant %s", got, want)
	}
	tab, err = b.db.Query(context.Background(), `SELECT kind, reason, decode(raw) FROM upload_quarantine`, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(tab.Rows) != 1 || tab.Rows[0][0] != KindInsight ||
		!strings.Contains(fmt.Sprint(tab.Rows[0][1]), `schema drift: invalid insight: metric: "P95 Latency" must match`) ||
		!strings.Contains(fmt.Sprint(tab.Rows[0][2]), `"kind":"insight","data":`+badInsight) {
		t.Fatalf("quarantine %v; want the bad insight, kind insight, with the reason and its bytes", tab.Rows)
	}
	st := u.Status()
	if st.Inserted != 3 || st.Duplicates != 0 || st.InsightsInserted != 3 || st.InsightDuplicates != 1 || st.Quarantined != 1 {
		t.Fatalf("status %+v; want 3 events, 3 insights (1 duplicate), 1 quarantined", st)
	}
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"activitybi_upload_rows_total", map[string]string{"result": "inserted"}, 3},
		{"activitybi_upload_rows_total", map[string]string{"result": "quarantined"}, 1},
		{"activitybi_upload_insight_rows_total", map[string]string{"result": "inserted"}, 3},
		{"activitybi_upload_insight_rows_total", map[string]string{"result": "duplicate"}, 1},
	} {
		if got := counter(t, reg, c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if segs, _ := spool.ListSegments(b.dir); len(segs) != 0 {
		t.Fatalf("%d segments left", len(segs))
	}
}

// TestPoisonInsightIsQuarantined: an insight the warehouse rejects is
// isolated among events and insights and quarantined under kind insight.
func TestPoisonInsightIsQuarantined(t *testing.T) {
	t.Parallel()
	u, b := setup(t)
	b.db.rejectID = "x17"
	w, err := spool.Open(spool.Options{Dir: b.dir})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 40; i++ {
		if err := w.Append(KindEvent, payload(t, "e"+strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
		if err := w.Append(KindInsight, insightPayload(t, "c1", "x"+strconv.Itoa(i), strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	drain(t, u)
	if got, gotI := b.count(t, "claude_stream"), b.count(t, "insight_atoms"); got != 40 || gotI != 39 {
		t.Fatalf("rows %d events, %d insights; want 40, 39", got, gotI)
	}
	tab, err := b.db.Query(context.Background(), "SELECT kind, reason, decode(raw) FROM upload_quarantine", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(tab.Rows) != 1 || tab.Rows[0][0] != KindInsight ||
		!strings.Contains(fmt.Sprint(tab.Rows[0][1]), "rejected by the warehouse: conversion error") ||
		!strings.Contains(fmt.Sprint(tab.Rows[0][2]), `"atom_id":"x17"`) {
		t.Fatalf("quarantine %v", tab.Rows)
	}
}

// TestInsightsCountTowardBatchLimit: insight records fill a batch as
// events do.
func TestInsightsCountTowardBatchLimit(t *testing.T) {
	t.Parallel()
	_, b := setup(t)
	u, err := New(Options{SpoolDir: b.dir, Warehouse: b.db, BatchMaxRecords: 10})
	if err != nil {
		t.Fatal(err)
	}
	w, err := spool.Open(spool.Options{Dir: b.dir})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 45; i++ {
		if err := w.Append(KindInsight, insightPayload(t, "c1", "l"+strconv.Itoa(i), "1")); err != nil {
			t.Fatal(err)
		}
		if i%9 == 0 {
			if err := w.Append(KindEvent, payload(t, "l"+strconv.Itoa(i))); err != nil {
				t.Fatal(err)
			}
		}
	}
	w.Close()
	drain(t, u)
	if got := b.count(t, "insight_atoms"); got != 45 {
		t.Fatalf("insight rows %d, want 45", got)
	}
	if m := b.db.maxBatch.Load(); m != 10 {
		t.Fatalf("largest batch held %d records; want the limit, 10", m)
	}
	if n := b.db.committed.Load(); n < 5 {
		t.Fatalf("%d commits for 50 records in batches of 10", n)
	}
}

// TestDocumentedInsightRecord: the insight record shown in
// docs/spool-format.md passes the spool's check and decodes, and
// MarshalInsight writes exactly its payload.
func TestDocumentedInsightRecord(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "spool-format.md"))
	if err != nil {
		t.Fatal(err)
	}
	var line string
	for _, l := range strings.Split(string(doc), "\n") {
		if strings.HasPrefix(l, `{"crc":`) && strings.Contains(l, `"kind":"insight"`) {
			line = l
		}
	}
	if line == "" {
		t.Fatal("no insight record example in docs/spool-format.md")
	}
	path := filepath.Join(t.TempDir(), "01JD3Q8V7Z6XKJ2M4N5P6Q7R8S-000001.seg")
	if err := os.WriteFile(path, []byte(line+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	entries, _, err := spool.ReadSegment(path, 0, 0, nil)
	if err != nil || len(entries) != 1 || entries[0].Corrupt != "" || entries[0].Kind != KindInsight {
		t.Fatalf("documented record: %+v, %v", entries, err)
	}
	x, err := event.DecodeInsight(entries[0].Payload)
	if err != nil {
		t.Fatalf("documented payload: %v", err)
	}
	if b, err := event.MarshalInsight(&x); err != nil || string(b) != string(entries[0].Payload) {
		t.Fatalf("MarshalInsight of the documented insight:\n got %s\nwant %s", b, entries[0].Payload)
	}
}

// TestRunBatchesATrickle: events arriving one at a time while each commit
// takes 20 ms are committed in batches, not each few back to back: after
// a commit that caught up, Run waits caughtUpWait (here 3 x ~20 ms) before
// the next. Without the wait this run made ~70 commits.
func TestRunBatchesATrickle(t *testing.T) {
	t.Parallel()
	u, b := setup(t)
	b.db.mu.Lock()
	b.db.stall = 20 * time.Millisecond
	b.db.mu.Unlock()
	// The writer first: it creates the spool directory Run starts from.
	w, err := spool.Open(spool.Options{Dir: b.dir})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- u.Run(ctx) }()
	const n = 600
	start := time.Now()
	for i := 0; i < n; i++ {
		if err := w.Append(KindEvent, payload(t, "trickle-"+strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond)
	}
	sent := time.Since(start)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for b.count(t, "claude_stream") < n && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := b.count(t, "claude_stream"); got != n {
		t.Fatalf("%d of %d events loaded", got, n)
	}
	// Each cycle is at least a 20 ms commit and a 60 ms wait.
	loads := b.db.loads.Load()
	if most := int64(sent/(80*time.Millisecond)) + 3; loads > most {
		t.Fatalf("%d commits for %d events sent over %s: want at most %d", loads, n, sent.Round(time.Millisecond), most)
	}
	t.Logf("%d events over %s in %d commits", n, sent.Round(time.Millisecond), loads)
}

func TestCaughtUpWait(t *testing.T) {
	for _, c := range []struct{ took, poll, want time.Duration }{
		{time.Millisecond, 50 * time.Millisecond, 50 * time.Millisecond},
		{30 * time.Millisecond, 50 * time.Millisecond, 90 * time.Millisecond},
		{time.Second, 50 * time.Millisecond, MaxCaughtUpWait},
		{time.Second, time.Second, time.Second},
	} {
		if got := caughtUpWait(c.took, c.poll); got != c.want {
			t.Errorf("caughtUpWait(%s, %s) = %s, want %s", c.took, c.poll, got, c.want)
		}
	}
}

// TestHoldBack: the trailing events received within the holdback are left
// for the next batch; an older event, anything that is not an event, and an
// event from a clock far ahead end the scan.
func TestHoldBack(t *testing.T) {
	now := time.Date(2026, 11, 26, 15, 0, 0, 0, time.UTC)
	ev := func(ago time.Duration) spool.Entry {
		e, err := event.Normalize(event.Input{Activity: "called_tool"},
			event.Defaults{Customer: "c1", Source: event.SourceAPI, Now: func() time.Time { return now.Add(-ago) }})
		if err != nil {
			t.Fatal(err)
		}
		b, err := event.Marshal(&e)
		if err != nil {
			t.Fatal(err)
		}
		return spool.Entry{Kind: KindEvent, Payload: b}
	}
	const hb = 10 * time.Millisecond
	ms := time.Millisecond
	insight := spool.Entry{Kind: KindInsight, Payload: insightPayload(t, "c1", "i1", "1")}
	for name, c := range map[string]struct {
		entries []spool.Entry
		keep    int
	}{
		"all old":                   {[]spool.Entry{ev(50 * ms), ev(20 * ms)}, 2},
		"newest held":               {[]spool.Entry{ev(50 * ms), ev(20 * ms), ev(5 * ms), ev(ms)}, 2},
		"all new":                   {[]spool.Entry{ev(5 * ms), ev(ms)}, 0},
		"an old one after new ones": {[]spool.Entry{ev(5 * ms), ev(20 * ms)}, 2},
		"an insight ends the scan":  {[]spool.Entry{ev(5 * ms), insight, ev(ms)}, 2},
		"a clock far ahead":         {[]spool.Entry{ev(5 * ms), ev(-time.Minute)}, 2},
		"corrupt ends the scan":     {[]spool.Entry{ev(5 * ms), {Corrupt: "bad checksum"}}, 2},
		"nothing":                   {nil, 0},
	} {
		if got := holdBack(c.entries, now, hb); got != c.keep {
			t.Errorf("%s: keep %d, want %d", name, got, c.keep)
		}
	}
}
