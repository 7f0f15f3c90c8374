package audit

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"github.com/activitybi/activitybi/internal/event"
	"github.com/activitybi/activitybi/internal/spool"
	"github.com/activitybi/activitybi/internal/upload"
	"github.com/activitybi/activitybi/internal/warehouse"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var t0 = time.Date(2026, 5, 1, 9, 30, 0, 123456789, time.UTC)

type bundle struct {
	dir string
	w   *spool.Writer
	reg *prometheus.Registry
}

// setup returns a Log writing to a real spool in t.TempDir() with the
// clock at t0.
func setup(t *testing.T, o spool.Options) (*Log, *bundle) {
	t.Helper()
	o.Dir = filepath.Join(t.TempDir(), "spool")
	w, err := spool.Open(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	reg := prometheus.NewRegistry()
	l, err := New(Options{Appender: w, Source: event.SourceCLI, Now: func() time.Time { return t0 }, Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	return l, &bundle{dir: o.Dir, w: w, reg: reg}
}

// records closes the writer and returns every record of the spool, decoded
// as the uploader decodes it.
func (b *bundle) records(t *testing.T) []event.Audit {
	t.Helper()
	if err := b.w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.peek(t)
}

// peek returns the records the spool holds so far, the writer left open
// (an append is in its segment once acknowledged).
func (b *bundle) peek(t *testing.T) []event.Audit {
	t.Helper()
	segs, err := spool.ListSegments(b.dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []event.Audit
	for _, s := range segs {
		var entries []spool.Entry
		for off := int64(0); ; { // ReadSegment reads about 1 MiB at a time
			es, next, err := spool.ReadSegment(s.Path, off, 0, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(es) == 0 {
				break
			}
			entries, off = append(entries, es...), next
		}
		for _, e := range entries {
			if e.Kind != upload.KindAudit {
				t.Fatalf("record of kind %q", e.Kind)
			}
			a, err := event.DecodeAudit(e.Payload)
			if err != nil {
				t.Fatalf("the uploader would quarantine %s: %v", e.Payload, err)
			}
			out = append(out, a)
		}
	}
	return out
}

func TestRecordAppendsToTheSpool(t *testing.T) {
	t.Parallel()
	l, b := setup(t, spool.Options{})
	started := t0.Add(-1500 * time.Millisecond)
	for _, r := range []event.Audit{
		{Principal: "analyst:alice", Action: event.ActionRanSQL, Target: StatementHash("SELECT 1"), Rows: 1, Bytes: 30,
			DurationMS: 1500, Outcome: event.OutcomeOK, Detail: "SELECT 1"},
		{AuditID: "given-id", At: started.In(time.FixedZone("x", 7200)), Principal: "tok_9", Customer: "bob",
			Action: event.ActionGotContext, Outcome: event.OutcomeNotFound, Source: event.SourceMCP},
	} {
		if err := l.Record(r); err != nil {
			t.Fatal(err)
		}
	}
	got := b.records(t)
	if len(got) != 2 {
		t.Fatalf("%d records", len(got))
	}
	want0 := t0.Truncate(time.Microsecond)
	a := got[0]
	if len(a.AuditID) != 26 || !a.At.Equal(want0) || !a.ReceivedAt.Equal(want0) || a.Source != event.SourceCLI ||
		a.Principal != "analyst:alice" || a.Customer != "" || a.Target != "e004ebd5b5532a4b" || a.Rows != 1 ||
		a.Bytes != 30 || a.DurationMS != 1500 || a.Outcome != "ok" || a.Detail != "SELECT 1" {
		t.Errorf("first record %+v", a)
	}
	a = got[1]
	if a.AuditID != "given-id" || !a.At.Equal(started.Truncate(time.Microsecond)) || a.At.Location() != time.UTC ||
		a.Source != event.SourceMCP || a.Customer != "bob" || a.Outcome != event.OutcomeNotFound {
		t.Errorf("second record %+v", a)
	}
	if v := testutil.ToFloat64(l.records.WithLabelValues(event.ActionRanSQL, event.OutcomeOK)); v != 1 {
		t.Errorf("records{ran_sql,ok} = %v", v)
	}
	if n, err := testutil.GatherAndCount(b.reg, "activitybi_audit_records_total"); err != nil || n != 2 {
		t.Errorf("%d series of activitybi_audit_records_total, %v", n, err)
	}
}

func TestRecordRefusesABadRecord(t *testing.T) {
	t.Parallel()
	l, b := setup(t, spool.Options{})
	for name, r := range map[string]event.Audit{
		"no principal":      {Action: event.ActionRanSQL, Outcome: event.OutcomeOK},
		"unknown action":    {Principal: "p", Action: "dropped_table", Outcome: event.OutcomeOK},
		"customer required": {Principal: "p", Action: event.ActionFetchedResult, Outcome: event.OutcomeOK},
		"unknown source":    {Principal: "p", Action: event.ActionRanSQL, Outcome: event.OutcomeOK, Source: "fax"},
		"C1 in principal":   {Principal: "analyst:\u009b2J", Action: event.ActionRanSQL, Outcome: event.OutcomeOK},
	} {
		err := l.Record(r)
		if !event.IsValidation(err) {
			t.Errorf("%s: %v; want a validation error", name, err)
		}
	}
	if got := b.records(t); len(got) != 0 {
		t.Fatalf("refused records were written: %+v", got)
	}
	if v := testutil.ToFloat64(l.fails.WithLabelValues("invalid")); v != 5 {
		t.Fatalf("failures{invalid} = %v", v)
	}
}

// TestRecordAtBackpressure: when the spool refuses the append (nothing has
// been uploaded for MaxPending records), Record says so and counts it.
func TestRecordAtBackpressure(t *testing.T) {
	t.Parallel()
	l, b := setup(t, spool.Options{MaxPending: 3})
	var err error
	n := 0
	for ; n < 10 && err == nil; n++ {
		err = l.Record(event.Audit{Principal: "p", Action: event.ActionRanSQL, Outcome: event.OutcomeOK})
	}
	if !errors.Is(err, spool.ErrBackpressure) || !strings.HasPrefix(err.Error(), "audit: append: ") {
		t.Fatalf("after %d records: %v; want the spool's backpressure error", n, err)
	}
	if v := testutil.ToFloat64(l.fails.WithLabelValues("append")); v != 1 {
		t.Fatalf("failures{append} = %v", v)
	}
	if got := b.records(t); len(got) != n-1 {
		t.Fatalf("%d records in the spool; want the %d acknowledged", len(got), n-1)
	}
}

func TestRecordCutsLongDetail(t *testing.T) {
	t.Parallel()
	l, b := setup(t, spool.Options{})
	q := "SELECT '" + strings.Repeat("x", 10_000) + "'"
	if err := l.Record(event.Audit{Principal: "p", Action: event.ActionRanSQL, Outcome: event.OutcomeOK, Detail: q}); err != nil {
		t.Fatal(err)
	}
	if err := l.Record(event.Audit{Principal: "p", Action: event.ActionRanSQL, Outcome: event.OutcomeOK, Detail: "short"}); err != nil {
		t.Fatal(err)
	}
	got := b.records(t)
	if len(got[0].Detail) > event.MaxAuditDetailBytes || !strings.HasSuffix(got[0].Detail, "[truncated from 10009 bytes]") {
		t.Fatalf("detail of %d bytes ending %q", len(got[0].Detail), got[0].Detail[len(got[0].Detail)-30:])
	}
	if v := testutil.ToFloat64(l.cut); v != 1 {
		t.Fatalf("detail_truncated = %v; want 1", v)
	}
}

// TestRecordKeepsAnOddTarget: a target holds what the caller was given (a
// get_context scope, a ticket id as the model sent it), so it can be too
// long or hold control characters, and the access happened all the same:
// Record stores it clipped and cleaned instead of refusing the record,
// which left the access unaudited (a get_context with a 255-character
// scope, which memory accepts, makes a 261-character target).
func TestRecordKeepsAnOddTarget(t *testing.T) {
	t.Parallel()
	l, b := setup(t, spool.Options{})
	maxScope := "scope:" + strings.Repeat("s", 255)
	want := map[string]string{
		maxScope:                            "scope:" + strings.Repeat("s", 248) + "…",
		"scope:a\x01b\x1b[2J":               "scope:a\ufffdb\ufffd[2J",
		"scope:c1\u009b2J\u0085":            "scope:c1\ufffd2J\ufffd",
		"ticket\xff\xfe":                    "ticket\ufffd\ufffd",
		strings.Repeat("é", 300):            strings.Repeat("é", 254) + "…",
		strings.Repeat("x", 255):            strings.Repeat("x", 255),
		"scope:" + strings.Repeat("é", 249): "scope:" + strings.Repeat("é", 249),
	}
	for target := range want {
		r := event.Audit{Principal: "tok_1", Customer: "alice", Action: event.ActionRenderedCard, Target: target, Outcome: event.OutcomeNotFound}
		if err := l.Record(r); err != nil {
			t.Errorf("Record with target %.40q: %v", target, err)
		}
	}
	// get_context goes through Coalesce.
	if err := l.Coalesce(event.Audit{Principal: "tok_1", Customer: "alice", Action: event.ActionGotContext, Target: maxScope, Outcome: event.OutcomeOK}); err != nil {
		t.Errorf("Coalesce with a %d-character target: %v", len(maxScope), err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	got := b.records(t)
	if len(got) != len(want)+1 {
		t.Fatalf("%d records in the spool; want %d", len(got), len(want)+1)
	}
	stored := map[string]bool{}
	for _, a := range got {
		stored[a.Target] = true
	}
	for target, w := range want {
		if !stored[w] {
			t.Errorf("target %.40q: not stored as %.40q", target, w)
		}
	}
	if v := testutil.ToFloat64(l.fails.WithLabelValues("invalid")); v != 0 {
		t.Errorf("failures{invalid} = %v", v)
	}
}

func TestNilLogIsNotANoOp(t *testing.T) {
	t.Parallel()
	defer func() {
		if recover() == nil {
			t.Fatal("Record on a nil *Log did not panic")
		}
	}()
	var l *Log
	_ = l.Record(event.Audit{})
}

func TestNewValidates(t *testing.T) {
	t.Parallel()
	w := appendFunc(func(string, []byte) error { return nil })
	for name, o := range map[string]Options{
		"no appender":    {Source: event.SourceCLI},
		"no source":      {Appender: w},
		"unknown source": {Appender: w, Source: "fax"},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	reg := prometheus.NewRegistry()
	if _, err := New(Options{Appender: w, Source: event.SourceAPI, Registry: reg}); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Options{Appender: w, Source: event.SourceAPI, Registry: reg}); err == nil {
		t.Fatal("a second Log registered the same metrics")
	}
}

type appendFunc func(kind string, payload []byte) error

func (f appendFunc) Append(kind string, payload []byte) error { return f(kind, payload) }

func TestSQLHelpers(t *testing.T) {
	t.Parallel()
	if h := StatementHash("SELECT 1"); h != "e004ebd5b5532a4b" || len(h) != StatementHashLen {
		t.Errorf("StatementHash = %q", h)
	}
	if StatementHash("SELECT 1 ") == StatementHash("SELECT 1") {
		t.Error("StatementHash ignores a difference")
	}
	long := strings.Repeat("é", SQLDetailChars+1)
	if d := SQLDetail(long); d != strings.Repeat("é", SQLDetailChars)+"..." {
		t.Errorf("SQLDetail of %d characters = %d bytes", SQLDetailChars+1, len(d))
	}
	if d := SQLDetail(strings.Repeat("a", SQLDetailChars)); d != strings.Repeat("a", SQLDetailChars) {
		t.Errorf("SQLDetail cut a statement of exactly the limit")
	}
	if p := AdminPrincipal("secret"); p != "admin:2bb80d537b1d" {
		t.Errorf("AdminPrincipal = %q", p)
	}
	if p := AnalystPrincipal(); !strings.HasPrefix(p, "analyst:") || len(p) <= len("analyst:") {
		t.Errorf("AnalystPrincipal = %q", p)
	}
	ctx := context.Background()
	expired, cancel := context.WithDeadline(ctx, time.Now().Add(-time.Second))
	defer cancel()
	cancelled, cancel2 := context.WithCancel(ctx)
	cancel2()
	for _, tc := range []struct {
		ctx  context.Context
		err  error
		want string
	}{
		{ctx, nil, "ok"},
		{ctx, fmt.Errorf("query: %w", &warehouse.UnsafeSQLError{Reason: "writes"}), "refused"},
		{ctx, fmt.Errorf("x: %w", context.DeadlineExceeded), "timeout"},
		{expired, errors.New("INTERRUPT Error: Interrupted!"), "timeout"},
		{cancelled, errors.New("INTERRUPT Error: Interrupted!"), "cancelled"},
		{ctx, errors.New("Binder Error: no such column"), "error"},
	} {
		if got := Outcome(tc.ctx, tc.err); got != tc.want {
			t.Errorf("Outcome(%v) = %s; want %s", tc.err, got, tc.want)
		}
	}
	r := SQLRecord(ctx, "analyst:a", "SELECT x", 0, 0, time.Now(), errors.New("Binder Error: no x"))
	if r.Action != event.ActionRanSQL || r.Customer != "" || r.Outcome != "error" || r.Detail != "SELECT x\n-- Binder Error: no x" ||
		r.Target != StatementHash("SELECT x") {
		t.Errorf("SQLRecord = %+v", r)
	}
}

// BenchmarkRecord: the cost an audited access adds (validate, encode,
// append to a spool in the default durability), with p50/p95/p99.
func BenchmarkRecord(b *testing.B) {
	w, err := spool.Open(spool.Options{Dir: filepath.Join(b.TempDir(), "spool"), MaxPending: 1 << 30})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	l, err := New(Options{Appender: w, Source: event.SourceMCP})
	if err != nil {
		b.Fatal(err)
	}
	r := event.Audit{Principal: "tok_01JD3QA1N4W6ZB8X9C2V", Customer: "alice", Action: event.ActionGotContext,
		Target: "project:billing", Rows: 12, Bytes: 7800, DurationMS: 1, Outcome: event.OutcomeOK}
	lat := make([]time.Duration, 0, 1<<16)
	b.ReportAllocs()
	for b.Loop() {
		start := time.Now()
		if err := l.Record(r); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	reportPercentiles(b, lat)
}

// reportPercentiles reports the p50, p95 and p99 of lat in nanoseconds.
func reportPercentiles(b *testing.B, lat []time.Duration) {
	slices.Sort(lat)
	at := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Nanoseconds()) }
	b.ReportMetric(at(0.50), "p50-ns")
	b.ReportMetric(at(0.95), "p95-ns")
	b.ReportMetric(at(0.99), "p99-ns")
}
