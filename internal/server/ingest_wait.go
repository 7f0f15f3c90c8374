package server

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/activitybi/activitybi/internal/spool"
)

// Waiting at the backpressure limit (POST /v1/events, /v1/insights).
//
// A request that finds the spool at its limit is held for up to
// IngestWaitMax while the uploader makes room, and only then answered 429.
// The uploader frees room a batch at a time (up to 20,000 records every few
// hundred milliseconds while it works through a backlog), so a short wait
// usually ends in an accepted request; answering 429 at once instead sent
// every client away for the whole second of Retry-After (HTTP counts it in
// seconds), and the intake then stood idle while the uploader caught up:
// 79-81K events/s against about 100K/s with clients that retried after
// 50 ms (bench/mcp.md, "POST /v1/events at the backpressure limit").
//
// Waiting requests hold their bodies, so their bytes are bounded too: past
// IngestWaitBytes in all, a request is answered 429 at once. A
// request whose client goes away stops waiting. Either way nothing of a
// refused request is logged, as before.
const (
	// IngestWaitMax is the longest a request waits for room.
	IngestWaitMax = 2 * time.Second
	// IngestWaitBytes bounds the bodies of all waiting requests.
	IngestWaitBytes = 64 << 20
	// ingestWaitPoll is how often a waiting request tries again. The
	// spool's estimate of pending records moves when the uploader publishes
	// a commit (read about every 100 ms).
	ingestWaitPoll = 20 * time.Millisecond
)

// ingestWait is the shared state of waiting requests.
type ingestWait struct {
	max   time.Duration
	limit int64
	poll  time.Duration

	mu    sync.Mutex
	bytes int64 // held by waiting requests

	waits *prometheus.CounterVec
	dur   prometheus.Histogram
}

// newIngestWait makes the wait state of a server: max and limit as
// Options.IngestWait and Options.IngestWaitBytes say.
func newIngestWait(reg prometheus.Registerer, max time.Duration, limit int64) (*ingestWait, error) {
	if max == 0 {
		max = IngestWaitMax
	}
	if limit <= 0 {
		limit = IngestWaitBytes
	}
	w := &ingestWait{max: max, limit: limit, poll: ingestWaitPoll,
		waits: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "activitybi_ingest_backpressure_waits_total",
			Help: "HTTP intake requests that found the spool at its limit, by outcome: accepted (room came within the wait), refused (answered 429 after the wait), full (answered 429 at once: the waiting requests' bytes were at their limit), gone (the client left), failed (another append error)."},
			[]string{"outcome"}),
		dur: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "activitybi_ingest_backpressure_wait_seconds",
			Help: "How long HTTP intake requests waited at the spool's limit.", Buckets: prometheus.ExponentialBuckets(0.01, 2, 9)}),
	}
	for _, c := range []prometheus.Collector{w.waits, w.dur} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return w, nil
}

// do runs logFn, and while it fails with backpressure (having logged
// nothing) runs it again every poll interval for up to max, holding size
// bytes of the budget meanwhile. Each run normalizes the records again, so
// a record that waited takes its time ("now") when it is appended. A poll
// runs logFn only when room (if not nil), given the last refusal, says the
// spool has room for the request: a run normalizes and marshals every
// record, which made the retries of waiting requests a large part of a
// core's CPU under a backlog (bench/mcp.md, "Session 8").
func (w *ingestWait) do(ctx context.Context, size int, room func(refused error) bool, logFn func() ([]Logged, error)) ([]Logged, error) {
	logged, err := logFn()
	if !errors.Is(err, spool.ErrBackpressure) || w.max < 0 {
		return logged, err
	}
	if !w.hold(int64(size)) {
		w.waits.WithLabelValues("full").Inc()
		return nil, err
	}
	defer w.release(int64(size))
	start := time.Now()
	t := time.NewTicker(w.poll)
	defer t.Stop()
	outcome := "refused"
	defer func() {
		w.waits.WithLabelValues(outcome).Inc()
		w.dur.Observe(time.Since(start).Seconds())
	}()
	for {
		select {
		case <-ctx.Done():
			outcome = "gone"
			return nil, err
		case <-t.C:
		}
		if room != nil && !room(err) {
			if time.Since(start) >= w.max {
				return nil, err
			}
			continue
		}
		logged, err = logFn()
		switch {
		case err == nil:
			outcome = "accepted"
			return logged, nil
		case !errors.Is(err, spool.ErrBackpressure):
			outcome = "failed"
			return nil, err
		case time.Since(start) >= w.max:
			return nil, err
		}
	}
}

func (w *ingestWait) hold(n int64) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.bytes+n > w.limit {
		return false
	}
	w.bytes += n
	return true
}

// held is the bytes waiting requests hold now.
func (w *ingestWait) held() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.bytes
}

func (w *ingestWait) release(n int64) {
	w.mu.Lock()
	w.bytes -= n
	w.mu.Unlock()
}
