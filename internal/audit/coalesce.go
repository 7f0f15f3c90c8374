package audit

// Coalescing of high-rate reads. get_context is called at every start of a
// conversation and whenever Claude wants its memory back, and a loop (or a
// benchmark) can call it hundreds of times a second; one audit record per
// call then costs more than the call (a spool append in the edge, a row
// loaded by the core's uploader while it serves the next reads). What the
// audit must say is who read whose data, what, how much and when; for a
// run of identical successful reads that is said by the first read's own
// record and one summary of the rest.

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/activitybi/activitybi/internal/event"
)

// Limits of Coalesce.
const (
	// DefaultCoalesceWindow is how long, after the first of a run of
	// identical reads is written, further ones are counted rather than
	// written; one summary record of them is written when it ends. It
	// bounds how late the log shows a repeated read, and how many counted
	// reads a crash of the process can lose (their first is written).
	DefaultCoalesceWindow = 10 * time.Second
	// MaxCoalesceKeys bounds the distinct (principal, customer, action,
	// target, outcome, source) keys counted at once; a read of a new key
	// past it is written at once, as Record does, and counted in
	// activitybi_audit_coalesce_overflow_total.
	MaxCoalesceKeys = 10_000
)

// coalesceKey is what identical reads share. Source is in it because a
// record may name its own.
type coalesceKey struct {
	principal, customer, action, target, outcome, source string
}

// pendingReads are the reads of one key counted since its first was
// written.
type pendingReads struct {
	timer              *time.Timer
	n                  int64
	rows, bytes, durMS int64
	first, last        time.Time // At of the earliest and latest counted read
}

// coalescer is a Log's state for Coalesce.
type coalescer struct {
	window    time.Duration
	coalesced *prometheus.CounterVec
	overflow  prometheus.Counter

	mu      sync.Mutex
	pending map[coalesceKey]*pendingReads
	closed  bool
	timers  sync.WaitGroup // window ends scheduled or running
}

func (c *coalescer) init(window time.Duration) {
	if window == 0 {
		window = DefaultCoalesceWindow
	}
	c.window = window
	c.pending = map[coalesceKey]*pendingReads{}
	c.coalesced = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "activitybi_audit_coalesced_total",
		Help: "Reads counted into a summary audit record instead of written one by one (Coalesce), by action."}, []string{"action"})
	c.overflow = prometheus.NewCounter(prometheus.CounterOpts{Name: "activitybi_audit_coalesce_overflow_total",
		Help: "Reads written one by one because audit.MaxCoalesceKeys keys were being counted already."})
}

// coalescible reports whether r may be counted into a summary: a
// successful read with nothing of its own to say (no detail, no id of its
// own, no negative amount, which Record must refuse). Refusals, errors,
// timeouts, cancellations and not-found are always written one by one:
// they are what a person reading the log looks for.
func coalescible(r *event.Audit) bool {
	return r.Outcome == event.OutcomeOK && r.Detail == "" && r.AuditID == "" &&
		r.Rows >= 0 && r.Bytes >= 0 && r.DurationMS >= 0
}

// Coalesce records a read that may repeat at a high rate (get_context).
// The first read of a key (principal, customer, action, target, outcome,
// source) is written at once, as Record writes it, and opens a window of
// the Log's CoalesceWindow; identical reads within the window are counted,
// and when it ends one summary record is written for them: At the
// earliest counted read's, Rows, Bytes and DurationMS the sums over the
// counted reads (so the log's totals stay right; DurationMS divided by the
// count is the mean), Detail "N calls coalesced between T1 and T2". The
// next read after that is written at once again. So a key read steadily
// costs two records per window, and a read made once costs one, at once.
//
// A record that is not a plain successful read (see coalescible: any
// outcome but ok, a detail, an AuditID of its own) is written by Record at
// once, never counted. It returns Record's error for a record written at
// once, and nil for a counted one: a counted read is in memory, not in the
// spool, until its summary is written (a crash loses at most one window
// of counts, never the first read of a key). Close writes what is pending.
func (l *Log) Coalesce(r event.Audit) error {
	c := &l.co
	if c.window < 0 || !coalescible(&r) {
		return l.Record(r)
	}
	if r.At.IsZero() {
		r.At = l.now()
	}
	r.At = r.At.UTC().Truncate(time.Microsecond)
	if r.Source == "" {
		r.Source = l.source
	}
	k := coalesceKey{principal: r.Principal, customer: r.Customer, action: r.Action, target: r.Target,
		outcome: r.Outcome, source: r.Source}
	c.mu.Lock()
	if p := c.pending[k]; p != nil && !c.closed {
		p.n++
		p.rows += r.Rows
		p.bytes += r.Bytes
		p.durMS += r.DurationMS
		if p.n == 1 || r.At.Before(p.first) {
			p.first = r.At
		}
		if p.n == 1 || r.At.After(p.last) {
			p.last = r.At
		}
		c.mu.Unlock()
		c.coalesced.WithLabelValues(r.Action).Inc()
		return nil
	}
	full := len(c.pending) >= MaxCoalesceKeys
	closed := c.closed
	c.mu.Unlock()
	if full && !closed {
		c.overflow.Inc()
	}
	// The first read of its key, written outside the lock (an append may
	// wait on the disk). A record Record refuses or cannot write opens no
	// window: the next identical read is written (or refused) again.
	if err := l.Record(r); err != nil || full || closed {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.pending[k] != nil { // another first of the same key won
		return nil
	}
	p := &pendingReads{}
	c.pending[k] = p
	c.timers.Add(1)
	p.timer = time.AfterFunc(c.window, func() {
		defer c.timers.Done()
		l.endWindow(k, p)
	})
	return nil
}

// endWindow writes the summary of p (when it counted any read) and forgets
// its key, unless Close took it first.
func (l *Log) endWindow(k coalesceKey, p *pendingReads) {
	c := &l.co
	c.mu.Lock()
	if c.pending[k] != p {
		c.mu.Unlock()
		return
	}
	delete(c.pending, k)
	c.mu.Unlock()
	if p.n > 0 {
		_ = l.Record(summary(k, p)) // a failure is logged and counted by Record
	}
}

// summary is the record of the reads counted in p.
func summary(k coalesceKey, p *pendingReads) event.Audit {
	return event.Audit{Principal: k.principal, Customer: k.customer, Action: k.action, Target: k.target,
		Outcome: k.outcome, Source: k.source, At: p.first, Rows: p.rows, Bytes: p.bytes, DurationMS: p.durMS,
		Detail: fmt.Sprintf("%d calls coalesced between %s and %s", p.n,
			p.first.Format(time.RFC3339Nano), p.last.Format(time.RFC3339Nano))}
}

// Close writes the summaries of every window still open and waits for
// those being written; after it, Coalesce writes every record at once (as
// Record does). Call it before the Log's Appender is closed. It returns
// the errors of the summaries that could not be written (each also logged
// and counted by Record). It is safe to call more than once.
func (l *Log) Close() error {
	c := &l.co
	c.mu.Lock()
	c.closed = true
	pending := c.pending
	c.pending = map[coalesceKey]*pendingReads{}
	for _, p := range pending {
		if p.timer.Stop() { // its window end will not run
			c.timers.Done()
		}
	}
	c.mu.Unlock()
	var errs []error
	for k, p := range pending {
		if p.n > 0 {
			if err := l.Record(summary(k, p)); err != nil {
				errs = append(errs, err)
			}
		}
	}
	c.timers.Wait() // window ends already running find their key gone, or write their summary
	return errors.Join(errs...)
}
