package upload

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

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
	rejectID  string        // fail any Load whose batch holds this activity_id
	loads     atomic.Int64
	failures  atomic.Int64
	committed atomic.Int64
}

var errInjected = errors.New("injected warehouse error")

func (f *faulty) Load(ctx context.Context, b *warehouse.Batch) (warehouse.LoadResult, error) {
	n := f.loads.Add(1)
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
	for _, e := range b.Events {
		if reject != "" && e.ActivityID == reject {
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
