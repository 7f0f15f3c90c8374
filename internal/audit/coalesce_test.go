package audit

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/activitybi/activitybi/internal/event"
	"github.com/activitybi/activitybi/internal/spool"
)

// setupCoalesce returns a Log on a real spool in t.TempDir() with the
// given window and clock (nil = time.Now); Close runs at cleanup.
func setupCoalesce(t *testing.T, window time.Duration, now func() time.Time) (*Log, *bundle) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "spool")
	w, err := spool.Open(spool.Options{Dir: dir, MaxPending: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	l, err := New(Options{Appender: w, Source: event.SourceMCP, Now: now, Registry: reg, CoalesceWindow: window})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close(); w.Close() })
	return l, &bundle{dir: dir, w: w, reg: reg}
}

// steppingClock returns a clock that advances by step on every reading.
func steppingClock(start time.Time, step time.Duration) func() time.Time {
	var n atomic.Int64
	return func() time.Time { return start.Add(time.Duration(n.Add(1)) * step) }
}

func read(principal, customer, target string) event.Audit {
	return event.Audit{Principal: principal, Customer: customer, Action: event.ActionGotContext, Target: target,
		Outcome: event.OutcomeOK}
}

// represented is how many calls records stand for: one each, and N for a
// summary ("N calls coalesced ...").
func represented(t *testing.T, recs []event.Audit) (calls, summaries int64) {
	t.Helper()
	for _, r := range recs {
		if !strings.Contains(r.Detail, " calls coalesced between ") {
			calls++
			continue
		}
		var n int64
		if _, err := fmt.Sscanf(r.Detail, "%d calls coalesced", &n); err != nil || n < 1 {
			t.Fatalf("summary detail %q", r.Detail)
		}
		calls += n
		summaries++
	}
	return calls, summaries
}

// TestCoalesceCountsIdenticalReads: the first read of each key is in the
// spool when Coalesce returns; the identical ones after it are counted and
// written as one summary per key on Close, with exact sums.
func TestCoalesceCountsIdenticalReads(t *testing.T) {
	t.Parallel()
	l, b := setupCoalesce(t, time.Hour, steppingClock(t0, time.Millisecond))
	var wantBytes, wantMS int64
	for i := range 100 {
		r := read("stdio", "alice", "scope:(all)")
		r.At, r.Bytes, r.DurationMS = t0.Add(time.Duration(i)*time.Millisecond), int64(100+i), int64(i%3)
		if i > 0 {
			wantBytes += r.Bytes
			wantMS += r.DurationMS
		}
		if err := l.Coalesce(r); err != nil {
			t.Fatal(err)
		}
		if i < 10 {
			if err := l.Coalesce(read("stdio", "alice", "scope:billing")); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := l.Coalesce(read("stdio", "bob", "scope:(all)")); err != nil {
		t.Fatal(err)
	}
	got := b.peek(t)
	if len(got) != 3 {
		t.Fatalf("%d records before the window ended; want the first of each of 3 keys: %+v", len(got), got)
	}
	if got[0].Customer != "alice" || got[0].Target != "scope:(all)" || got[0].Bytes != 100 || got[0].Detail != "" ||
		got[1].Target != "scope:billing" || got[2].Customer != "bob" {
		t.Fatalf("first records %+v", got)
	}
	if v := testutil.ToFloat64(l.co.coalesced.WithLabelValues(event.ActionGotContext)); v != 99+9 {
		t.Fatalf("coalesced{got_context} = %v; want 108", v)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	got = b.peek(t)
	if len(got) != 5 {
		t.Fatalf("%d records after Close; want 3 firsts and 2 summaries (bob had no repeat): %+v", len(got), got)
	}
	var all, billing *event.Audit
	for i := range got[3:] {
		switch r := &got[3+i]; r.Target {
		case "scope:(all)":
			all = r
		case "scope:billing":
			billing = r
		}
	}
	if all == nil || billing == nil {
		t.Fatalf("summaries %+v", got[3:])
	}
	// The counted reads of alice's (all): the 2nd to the 100th.
	first, last := t0.Add(time.Millisecond).Truncate(time.Microsecond), t0.Add(99*time.Millisecond).Truncate(time.Microsecond)
	wantDetail := fmt.Sprintf("99 calls coalesced between %s and %s", first.Format(time.RFC3339Nano), last.Format(time.RFC3339Nano))
	if all.Customer != "alice" || all.Principal != "stdio" || all.Action != event.ActionGotContext ||
		all.Outcome != event.OutcomeOK || all.Source != event.SourceMCP || all.Bytes != wantBytes ||
		all.DurationMS != wantMS || all.Rows != 0 || !all.At.Equal(first) || all.Detail != wantDetail {
		t.Errorf("summary %+v;\nwant bytes %d, duration_ms %d, at %s, detail %q", *all, wantBytes, wantMS, first, wantDetail)
	}
	if !strings.HasPrefix(billing.Detail, "9 calls coalesced between ") {
		t.Errorf("billing summary %+v", *billing)
	}
	if calls, _ := represented(t, got); calls != 100+10+1 {
		t.Errorf("the records stand for %d calls; want 111", calls)
	}
	if v := testutil.ToFloat64(l.records.WithLabelValues(event.ActionGotContext, event.OutcomeOK)); v != 5 {
		t.Errorf("records{got_context,ok} = %v; want 5", v)
	}
	// Closed: every read is written at once, and Close again is a no-op.
	if err := l.Coalesce(read("stdio", "alice", "scope:(all)")); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if got := b.records(t); len(got) != 6 {
		t.Fatalf("%d records; want the read after Close written at once", len(got))
	}
}

// TestCoalesceNeverCountsRefusalsOrErrors: anything but a plain successful
// read is written at once, every time.
func TestCoalesceNeverCountsRefusalsOrErrors(t *testing.T) {
	t.Parallel()
	l, b := setupCoalesce(t, time.Hour, steppingClock(t0, time.Millisecond))
	want := 0
	for _, o := range []string{event.OutcomeRefused, event.OutcomeError, event.OutcomeNotFound, event.OutcomeTimeout, event.OutcomeCancelled} {
		for range 5 {
			r := read("stdio", "alice", "scope:nope")
			r.Outcome, r.Detail = o, "unknown scope"
			if o == event.OutcomeError {
				r.Detail = "" // an error without a detail is not counted either
			}
			if err := l.Coalesce(r); err != nil {
				t.Fatal(err)
			}
			want++
		}
	}
	for range 3 {
		r := read("stdio", "alice", "scope:(all)")
		r.Detail = "something to say"
		if err := l.Coalesce(r); err != nil {
			t.Fatal(err)
		}
		want++
	}
	for i := range 3 {
		r := read("stdio", "alice", "scope:(all)")
		r.AuditID = fmt.Sprintf("given-%d", i)
		if err := l.Coalesce(r); err != nil {
			t.Fatal(err)
		}
		want++
	}
	if got := b.peek(t); len(got) != want {
		t.Fatalf("%d records at once; want all %d", len(got), want)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	got := b.records(t)
	if len(got) != want {
		t.Fatalf("%d records after Close; want %d (no summary)", len(got), want)
	}
	if n := testutil.ToFloat64(l.records.WithLabelValues(event.ActionGotContext, event.OutcomeRefused)); n != 5 {
		t.Errorf("records{refused} = %v", n)
	}
	if n, _ := testutil.GatherAndCount(b.reg, "activitybi_audit_coalesced_total"); n != 0 {
		t.Errorf("%d coalesced series; want none", n)
	}
}

// TestCoalesceWindowEnds: with a short window and the real clock, the
// summaries are written by the window's end, without Close, and the
// records stand for every call exactly; the read after a window ended is
// written at once again.
func TestCoalesceWindowEnds(t *testing.T) {
	t.Parallel()
	l, b := setupCoalesce(t, 50*time.Millisecond, nil)
	const calls = 40
	for i := range calls {
		if err := l.Coalesce(read("stdio", "alice", "scope:(all)")); err != nil {
			t.Fatal(err)
		}
		if i == calls/2 {
			time.Sleep(60 * time.Millisecond) // at least one window ends mid-run
		}
	}
	// A window's end forgets its key and then writes its summary (outside
	// the lock): wait for both.
	var got []event.Audit
	var n, summaries int64
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		l.co.mu.Lock()
		open := len(l.co.pending)
		l.co.mu.Unlock()
		got = b.peek(t)
		if n, summaries = represented(t, got); open == 0 && n == calls {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 20 s, %d windows open and %d records (%d summaries) stand for %d of %d calls", open, len(got), summaries, n, calls)
		}
	}
	if n != calls || summaries < 1 {
		t.Fatalf("%d records (%d summaries) stand for %d calls; want %d and a summary: %+v", len(got), summaries, n, calls, got)
	}
	if len(got) < 3 {
		t.Fatalf("%d records; the read after the pause must open a new window with its own record", len(got))
	}
	if err := l.Coalesce(read("stdio", "alice", "scope:(all)")); err != nil {
		t.Fatal(err)
	}
	if again := b.peek(t); len(again) != len(got)+1 {
		t.Fatalf("the read after the windows ended was not written at once (%d then %d records)", len(got), len(again))
	}
}

// TestCoalesceConcurrent: reads from many goroutines are each either
// written or counted once.
func TestCoalesceConcurrent(t *testing.T) {
	t.Parallel()
	l, b := setupCoalesce(t, time.Hour, nil)
	const workers, each = 8, 200
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				r := read("stdio", "alice", "scope:(all)")
				r.Bytes = int64(w + 1)
				if err := l.Coalesce(r); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	got := b.records(t)
	n, summaries := represented(t, got)
	var bytes int64
	for _, r := range got {
		bytes += r.Bytes
	}
	if n != workers*each || summaries != 1 || bytes != each*(workers*(workers+1)/2) {
		t.Fatalf("%d records, %d summaries, for %d calls and %d bytes; want %d calls, 1 summary, %d bytes",
			len(got), summaries, n, bytes, workers*each, each*(workers*(workers+1)/2))
	}
}

// TestCoalesceKeyLimit: past MaxCoalesceKeys keys, a new key's reads are
// written one by one and counted as overflow.
func TestCoalesceKeyLimit(t *testing.T) {
	t.Parallel()
	l, b := setupCoalesce(t, time.Hour, steppingClock(t0, time.Microsecond))
	for i := range MaxCoalesceKeys {
		if err := l.Coalesce(read("stdio", "alice", fmt.Sprintf("scope:p%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	for range 3 {
		if err := l.Coalesce(read("stdio", "alice", "scope:one-too-many")); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Coalesce(read("stdio", "alice", "scope:p7")); err != nil { // counted: its key is open
		t.Fatal(err)
	}
	if v := testutil.ToFloat64(l.co.overflow); v != 3 {
		t.Fatalf("overflow = %v; want 3", v)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	got := b.records(t)
	if n, s := represented(t, got); len(got) != MaxCoalesceKeys+3+1 || n != MaxCoalesceKeys+4 || s != 1 {
		t.Fatalf("%d records (%d summaries) for %d calls", len(got), s, n)
	}
}

// TestCoalesceFailedFirstOpensNoWindow: a first read the spool refuses is
// an error, and the next identical read is tried at once again; a summary
// that cannot be written is Close's error.
func TestCoalesceFailedFirstOpensNoWindow(t *testing.T) {
	t.Parallel()
	var appends atomic.Int32
	var failing atomic.Bool
	failing.Store(true)
	app := appendFunc(func(string, []byte) error {
		appends.Add(1)
		if failing.Load() {
			return spool.ErrBackpressure
		}
		return nil
	})
	l, err := New(Options{Appender: app, Source: event.SourceMCP, CoalesceWindow: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := l.Coalesce(read("stdio", "alice", "scope:(all)")); !errors.Is(err, spool.ErrBackpressure) {
			t.Fatalf("Coalesce = %v; want the spool's error", err)
		}
	}
	if appends.Load() != 2 {
		t.Fatalf("%d appends; want both reads tried", appends.Load())
	}
	failing.Store(false)
	for range 3 {
		if err := l.Coalesce(read("stdio", "alice", "scope:(all)")); err != nil {
			t.Fatal(err)
		}
	}
	if appends.Load() != 3 {
		t.Fatalf("%d appends; want the first written and 2 counted", appends.Load())
	}
	failing.Store(true)
	if err := l.Close(); !errors.Is(err, spool.ErrBackpressure) {
		t.Fatalf("Close = %v; want the summary's append error", err)
	}
	if v := testutil.ToFloat64(l.fails.WithLabelValues("append")); v != 3 {
		t.Fatalf("failures{append} = %v; want 3", v)
	}
}

// TestCoalesceOff: a negative window writes every read.
func TestCoalesceOff(t *testing.T) {
	t.Parallel()
	l, b := setupCoalesce(t, -1, steppingClock(t0, time.Millisecond))
	for range 5 {
		if err := l.Coalesce(read("stdio", "alice", "scope:(all)")); err != nil {
			t.Fatal(err)
		}
	}
	if got := b.peek(t); len(got) != 5 {
		t.Fatalf("%d records; want 5", len(got))
	}
}

// BenchmarkCoalesce: what an audited get_context costs its caller when
// Coalesce counts it (every call after the first of the window), beside
// Record's write of every call, with p50/p95/p99.
func BenchmarkCoalesce(b *testing.B) {
	for _, mode := range []string{"record", "coalesce"} {
		b.Run(mode, func(b *testing.B) {
			w, err := spool.Open(spool.Options{Dir: filepath.Join(b.TempDir(), "spool"), MaxPending: 1 << 30})
			if err != nil {
				b.Fatal(err)
			}
			defer w.Close()
			l, err := New(Options{Appender: w, Source: event.SourceMCP, CoalesceWindow: time.Hour})
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			r := event.Audit{Principal: "stdio", Customer: "customer-042", Action: event.ActionGotContext,
				Target: "scope:(all)", Bytes: 2200, Outcome: event.OutcomeOK}
			lat := make([]time.Duration, 0, 1<<16)
			b.ReportAllocs()
			for b.Loop() {
				start := time.Now()
				if mode == "record" {
					err = l.Record(r)
				} else {
					err = l.Coalesce(r)
				}
				if err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(start))
			}
			reportPercentiles(b, lat)
		})
	}
}
