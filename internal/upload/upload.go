// Package upload moves records from the spool into the warehouse: it tails
// every segment (open ones too, so rotation never becomes lag), batches by
// size and by poll interval, and commits rows together with its read offsets
// in one warehouse transaction, so a crash at any point neither loses nor
// duplicates. Records that cannot be loaded — corrupt lines, payloads that no
// longer fit the schema, records the warehouse rejects — go to the
// quarantine table with the reason; nothing is dropped.
package upload

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/activitybi/activitybi/internal/event"
	"github.com/activitybi/activitybi/internal/spool"
	"github.com/activitybi/activitybi/internal/telemetry"
	"github.com/activitybi/activitybi/internal/warehouse"
)

// Warehouse is the part of warehouse.Driver the uploader uses.
type Warehouse interface {
	Load(ctx context.Context, b *warehouse.Batch) (warehouse.LoadResult, error)
	Offsets(ctx context.Context) (map[string]warehouse.Offset, error)
	ForgetOffsets(ctx context.Context, segments []string) error
}

// IdleCheckpointer is implemented by a warehouse with upkeep to do once
// the uploader has caught up: the DuckDB driver folds its WAL into the
// database file there (duckdb.DB.IdleCheckpoint) instead of inside the
// commit of a batch. Run calls it after each commit of a batch that was not
// full (the spool held no more than that batch; in steady traffic that is
// every batch) and when a look finds nothing new; not while it works
// through a backlog, and Drain never (on shutdown the warehouse's Close
// checkpoints).
type IdleCheckpointer interface {
	IdleCheckpoint(ctx context.Context) (ran bool, err error)
}

// Record kinds the uploader knows (docs/spool-format.md).
const (
	// KindEvent records hold an event.Event (a claude_stream row).
	KindEvent = "event"
	// KindInsight records hold an event.Insight (an insight_atoms row).
	KindInsight = "insight"
	// KindAudit records hold an event.Audit (an audit_log row): one data
	// access, written by the process that served it (internal/audit).
	KindAudit = "audit"
)

// Defaults.
const (
	DefaultBatchMaxRecords = 20_000
	DefaultBatchMaxBytes   = 8 << 20
	DefaultPollInterval    = 50 * time.Millisecond
	DefaultHoldback        = 10 * time.Millisecond
	DefaultRetryMin        = 100 * time.Millisecond
	DefaultRetryMax        = 30 * time.Second
	// CaughtUpWaitFactor and MaxCaughtUpWait bound the wait after a commit
	// that caught up (caughtUpWait).
	CaughtUpWaitFactor = 3
	MaxCaughtUpWait    = 250 * time.Millisecond
	// recoverEvery is how often Run looks for segments whose writer died
	// (a killed edge), to truncate their torn tail and close them so they
	// can be committed and deleted.
	recoverEvery = 2 * time.Second
)

// Options configure an Uploader.
type Options struct {
	SpoolDir  string    // required
	Warehouse Warehouse // required
	// BatchMaxRecords caps records per transaction; 0 = 20,000.
	BatchMaxRecords int
	// BatchMaxBytes caps spool bytes per transaction; 0 = 8 MiB.
	BatchMaxBytes int64
	// PollInterval is how often the spool is checked when idle; 0 = 50 ms.
	PollInterval time.Duration
	// Holdback: Run leaves the events an open segment received in the last
	// Holdback for the next batch (see holdBack); 0 = DefaultHoldback,
	// negative = none. Drain takes everything.
	Holdback time.Duration
	// RetryMin and RetryMax bound the jittered exponential backoff after
	// warehouse errors; 0 = 100 ms and 30 s.
	RetryMin, RetryMax time.Duration
	// SpoolMetrics counts what spool recovery finds; nil = not counted.
	SpoolMetrics *spool.Metrics
	Logger       *slog.Logger          // nil = discard
	Registerer   prometheus.Registerer // nil = metrics not registered
	Now          func() time.Time      // nil = time.Now
	// OnInsights, when set, is called after each commit that stored
	// insights, with their distinct customers (the core invalidates their
	// memory context). It must not block for long.
	OnInsights func(customers []string)
}

// Uploader is the single consumer of a spool directory.
type Uploader struct {
	opts    Options
	log     *slog.Logger
	m       *metrics
	now     func() time.Time
	offsets map[string]warehouse.Offset // committed, as in the warehouse

	// Read buffers for build, alternating so that a batch built ahead
	// (ahead) never shares one with the batch being committed; each sized
	// to what is read (fitReadBuf).
	bufs    [2][]byte
	bufTurn int
	ahead   chan buildResult
	// tidying, when not nil, delivers the segments forgotten by the
	// tidy-up of the last commit (see tidy), running in the background
	// while the next batch loads; waitTidy joins it. Only the goroutine
	// that runs cycle touches it.
	tidying chan []string

	mu     sync.Mutex // guards status
	status Status
}

// Status is a snapshot for `activitybi status` and /readyz.
type Status struct {
	Started          bool
	LastCommit       time.Time
	LastError        string
	ConsecutiveFails int
	Segments         int   // segments in the spool at the last look
	BacklogBytes     int64 // spool bytes not yet committed
	Inserted         int64 // events stored in claude_stream
	Duplicates       int64 // events already stored (re-sent), not stored again
	Quarantined      int64 // records of any kind moved to upload_quarantine
	// InsightsInserted and InsightDuplicates count insights (insight_atoms)
	// as Inserted and Duplicates count events.
	InsightsInserted  int64
	InsightDuplicates int64
	// AuditInserted counts audit records stored in audit_log (a record
	// loaded again is not counted twice).
	AuditInserted int64
	// LastLag is, for the last committed batch, the longest time from a
	// record's acceptance (_received_at) to its commit: how far behind the
	// warehouse was then.
	LastLag time.Duration
}

// New validates opts and returns an Uploader. It does not touch the
// warehouse until Run or Drain.
func New(opts Options) (*Uploader, error) {
	if opts.SpoolDir == "" {
		return nil, errors.New("upload: SpoolDir is required")
	}
	if opts.Warehouse == nil {
		return nil, errors.New("upload: Warehouse is required")
	}
	if opts.BatchMaxRecords <= 0 {
		opts.BatchMaxRecords = DefaultBatchMaxRecords
	}
	if opts.BatchMaxBytes <= 0 {
		opts.BatchMaxBytes = DefaultBatchMaxBytes
	}
	if opts.Holdback == 0 {
		opts.Holdback = DefaultHoldback
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = DefaultPollInterval
	}
	if opts.RetryMin <= 0 {
		opts.RetryMin = DefaultRetryMin
	}
	if opts.RetryMax <= 0 {
		opts.RetryMax = DefaultRetryMax
	}
	if opts.RetryMax < opts.RetryMin {
		return nil, fmt.Errorf("upload: RetryMax %s is below RetryMin %s", opts.RetryMax, opts.RetryMin)
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	return &Uploader{opts: opts, log: telemetry.OrDiscard(opts.Logger), m: m, now: now}, nil
}

// Status returns a snapshot of the uploader's state.
func (u *Uploader) Status() Status {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.status
}

func (u *Uploader) setStatus(f func(s *Status)) {
	u.mu.Lock()
	f(&u.status)
	u.mu.Unlock()
}

// Run uploads until ctx is cancelled. Warehouse and spool errors are
// retried (with backoff) forever and reported through Status and the logs;
// Run returns nil on cancellation, or an error if it cannot start.
func (u *Uploader) Run(ctx context.Context) error {
	if err := u.start(ctx); err != nil {
		return err
	}
	defer u.waitTidy()
	lastRecover := time.Now()
	for {
		if time.Since(lastRecover) >= recoverEvery {
			lastRecover = time.Now()
			if _, err := spool.Recover(u.opts.SpoolDir, u.log, u.opts.SpoolMetrics); err != nil {
				u.log.Warn("upload: recover orphaned segments", "err", err)
			}
		}
		start := time.Now()
		busy, caughtUp, err := u.cycle(ctx, u.opts.Holdback)
		if ctx.Err() != nil {
			return nil
		}
		if caughtUp {
			u.idle(ctx)
		}
		if busy && caughtUp && err == nil {
			// A commit that caught up: wait before the next, so that a
			// trickle of events is committed in batches rather than a few
			// at a time back to back (see caughtUpWait).
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(caughtUpWait(time.Since(start), u.opts.PollInterval)):
			}
			continue
		}
		if err != nil {
			// The spool could not be read (permissions, a full or failing
			// disk): say so and keep trying; nothing is lost meanwhile.
			u.setStatus(func(s *Status) { s.LastError = err.Error(); s.ConsecutiveFails++ })
			u.log.Error("upload: cannot read the spool; retrying", "err", err)
			u.m.retries.Inc()
			busy = false
		}
		if !busy {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(u.opts.PollInterval):
			}
		}
	}
}

// caughtUpWait is how long Run waits after a commit that left nothing
// behind: CaughtUpWaitFactor times what the cycle took, at least the poll
// interval and at most MaxCaughtUpWait (or the poll interval, if that is
// longer). A warehouse commit has a large fixed cost (DuckDB: ~20-40 ms of
// CPU for a handful of events, its statements' set-up rather than the rows),
// so committing whatever arrived during the previous commit kept the
// uploader committing back to back at any steady rate: a core's whole CPU
// at 1,000 events/s (bench/README.md, "The uploader at a steady rate").
// Waiting bounds the time spent committing while caught up to about
// 1/(1+CaughtUpWaitFactor), and adds at most MaxCaughtUpWait to the lag.
// When a batch is full (a backlog), commits still follow each other at
// once.
func caughtUpWait(took, poll time.Duration) time.Duration {
	return max(poll, min(CaughtUpWaitFactor*took, MaxCaughtUpWait))
}

// idle gives the warehouse its idle upkeep (see IdleCheckpointer). A
// failure is logged and counted, never fatal: the warehouse checkpoints by
// itself at its own threshold.
func (u *Uploader) idle(ctx context.Context) {
	c, ok := u.opts.Warehouse.(IdleCheckpointer)
	if !ok {
		return
	}
	ran, err := c.IdleCheckpoint(ctx)
	switch {
	case err != nil && ctx.Err() == nil:
		u.m.idleCheckpoints.WithLabelValues("failed").Inc()
		u.log.Warn("upload: idle checkpoint failed", "err", err)
	case ran:
		u.m.idleCheckpoints.WithLabelValues("done").Inc()
	}
}

// Drain loads everything in the spool now and returns when nothing is left
// or ctx ends. It is used on shutdown (after intake stopped) and by tests.
func (u *Uploader) Drain(ctx context.Context) error {
	if err := u.start(ctx); err != nil {
		return err
	}
	defer u.waitTidy()
	for {
		busy, _, err := u.cycle(ctx, 0)
		if err != nil {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !busy {
			return nil
		}
	}
}

func (u *Uploader) start(ctx context.Context) error {
	if u.offsets != nil {
		return nil
	}
	for attempt := 0; ; attempt++ {
		offs, err := u.opts.Warehouse.Offsets(ctx)
		if err == nil {
			u.offsets = offs
			break
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		u.log.Warn("upload: read offsets", "err", err, "attempt", attempt+1)
		if err := u.sleep(ctx, attempt); err != nil {
			return err
		}
	}
	if _, err := spool.Recover(u.opts.SpoolDir, u.log, u.opts.SpoolMetrics); err != nil {
		return fmt.Errorf("upload: recover spool: %w", err)
	}
	u.setStatus(func(s *Status) { s.Started = true })
	return nil
}

// pendingBatch is a batch plus what to do after it commits.
type pendingBatch struct {
	b        warehouse.Batch
	bytes    int64
	toDelete []string // closed segments fully committed by this batch
	segs     []spool.SegmentInfo
	origins  []origin // where each of b.Events came from
	// insightOrigins is where each of b.Insights came from.
	insightOrigins []origin
	// auditOrigins is where each of b.Audit came from.
	auditOrigins []origin
	full         bool // stopped at a limit: more is probably waiting
}

type origin struct {
	segment string
	offset  int64
}

func (p *pendingBatch) empty() bool {
	return p.records() == 0 && len(p.b.Offsets) == 0
}

// records counts the batch's records of every kind, for the batch limit.
func (p *pendingBatch) records() int {
	return len(p.b.Events) + len(p.b.Insights) + len(p.b.Audit) + len(p.b.Quarantine)
}

// loadable counts the records the warehouse may reject (events, insights,
// audit records).
func (p *pendingBatch) loadable() int {
	return len(p.b.Events) + len(p.b.Insights) + len(p.b.Audit)
}

// buildResult is a batch built ahead, while the previous one commits.
type buildResult struct {
	pb  *pendingBatch
	err error
}

// view returns a private copy of the committed offsets with extra applied:
// the offsets as they will be once the batch holding extra commits.
func (u *Uploader) view(extra []warehouse.Offset) map[string]warehouse.Offset {
	v := make(map[string]warehouse.Offset, len(u.offsets)+len(extra))
	for k, o := range u.offsets {
		v[k] = o
	}
	for _, o := range extra {
		v[o.Segment] = o
	}
	return v
}

// nextBuf alternates between two read buffers, so a batch built ahead never
// shares one with the batch before it.
func (u *Uploader) nextBuf() int {
	u.bufTurn ^= 1
	return u.bufTurn
}

// discardAhead waits for and drops a batch built ahead (it was built on
// offsets that did not commit).
func (u *Uploader) discardAhead() {
	if u.ahead != nil {
		<-u.ahead
		u.ahead = nil
	}
}

// cycle builds and commits one batch. busy reports whether there was work
// (so the caller should look again at once); caughtUp whether the spool held
// no more than what was committed (a batch that was not full, or nothing).
// When a batch is full, the next one is read and decoded while this one
// commits (the warehouse and the decoding then use different cores).
//
// holdback is Options.Holdback in Run, 0 in Drain.
func (u *Uploader) cycle(ctx context.Context, holdback time.Duration) (busy, caughtUp bool, err error) {
	limit := u.opts.BatchMaxRecords
	for attempt := 0; ; attempt++ {
		var pb *pendingBatch
		if u.ahead != nil && attempt == 0 {
			r := <-u.ahead
			u.ahead = nil
			pb, err = r.pb, r.err
		} else {
			u.discardAhead()
			pb, err = u.build(u.view(nil), limit, u.nextBuf(), holdback)
		}
		if err != nil {
			return false, false, err
		}
		if pb.empty() {
			u.forgetVanished(ctx, pb.segs)
			return false, true, nil
		}
		if attempt == 0 && pb.full {
			view, buf := u.view(pb.b.Offsets), u.nextBuf()
			ch := make(chan buildResult, 1)
			prep, _ := u.opts.Warehouse.(warehouse.Preparer)
			go func() {
				p, err := u.build(view, limit, buf, holdback)
				if err == nil && prep != nil && !p.empty() {
					// The warehouse's own work on the batch that needs
					// no lock, while this batch commits (see
					// warehouse.Preparer).
					prep.Prepare(&p.b)
				}
				ch <- buildResult{p, err}
			}()
			u.ahead = ch
		}
		res, err := u.commit(ctx, pb)
		if err == nil {
			u.afterCommit(ctx, pb, res)
			return true, !pb.full, nil
		}
		u.discardAhead()
		if ctx.Err() != nil {
			return false, false, nil
		}
		u.m.retries.Inc()
		u.m.batches.WithLabelValues("failed").Inc()
		u.setStatus(func(s *Status) { s.LastError = err.Error(); s.ConsecutiveFails = attempt + 1 })
		u.log.Warn("upload: load failed; will retry", "err", err, "attempt", attempt+1,
			"events", len(pb.b.Events), "insights", len(pb.b.Insights), "limit", limit)

		// A record the warehouse cannot hold fails every time: halve the
		// batch until it is alone, then quarantine it with the reason. Any
		// other error is the warehouse's state, retried with backoff and
		// never blamed on the records.
		if n := pb.loadable(); errors.Is(err, warehouse.ErrRecordRejected) && n > 0 {
			if n > 1 {
				limit = max(1, n/2)
				continue // no sleep: the same data fails the same way
			}
			u.poison(pb, err)
			res, err2 := u.commit(ctx, pb)
			if err2 == nil {
				u.afterCommit(ctx, pb, res)
				return true, false, nil
			}
			u.log.Warn("upload: quarantining a rejected record failed", "err", err2)
		}
		if err := u.sleep(ctx, attempt); err != nil {
			return false, false, nil
		}
	}
}

// poison moves the batch's single loadable record (an event, an insight or
// an audit record) to quarantine with reason err, under the record's own
// kind.
func (u *Uploader) poison(pb *pendingBatch, err error) {
	var (
		o        origin
		kind, id string
		raw      []byte
	)
	if len(pb.b.Events) == 1 {
		e := pb.b.Events[0]
		o, kind, id = pb.origins[0], KindEvent, e.ActivityID
		raw, _ = event.Marshal(&e)
	} else if len(pb.b.Insights) == 1 {
		x := pb.b.Insights[0]
		o, kind, id = pb.insightOrigins[0], KindInsight, x.AtomID
		raw, _ = event.MarshalInsight(&x)
	} else {
		a := pb.b.Audit[0]
		o, kind, id = pb.auditOrigins[0], KindAudit, a.AuditID
		raw, _ = event.MarshalAudit(&a)
	}
	u.log.Error("upload: the warehouse rejects a record; quarantined", "segment", o.segment, "offset", o.offset,
		"kind", kind, "id", id, "err", err)
	pb.b.Quarantine = append(pb.b.Quarantine, warehouse.QuarantineRecord{
		Segment: o.segment, Offset: o.offset, Kind: kind, Reason: "rejected by the warehouse: " + err.Error(), Raw: raw, At: u.now().UTC(),
	})
	pb.b.Events, pb.origins = nil, nil
	pb.b.Insights, pb.insightOrigins = nil, nil
	pb.b.Audit, pb.auditOrigins = nil, nil
	pb.b.Prepared = nil
}

func (u *Uploader) sleep(ctx context.Context, attempt int) error {
	d := u.opts.RetryMax
	if attempt < 30 {
		if x := u.opts.RetryMin << attempt; x > 0 && x < d && x>>attempt == u.opts.RetryMin {
			d = x
		}
	}
	// Equal jitter (between d/2 and d) keeps many uploaders from retrying in step.
	d = d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// build reads the next batch from the spool, starting at the offsets in
// view (which it owns), with read buffer number buf.
func (u *Uploader) build(view map[string]warehouse.Offset, limit int, buf int, holdback time.Duration) (*pendingBatch, error) {
	segs, err := spool.ListSegments(u.opts.SpoolDir)
	if err != nil {
		return nil, fmt.Errorf("upload: list segments: %w", err)
	}
	pb := &pendingBatch{segs: segs}
	var backlog int64
	for _, s := range segs {
		backlog += max(0, s.Size-view[s.ID].Offset)
	}
	u.m.backlog.Set(float64(backlog))
	u.setStatus(func(st *Status) { st.Segments = len(segs); st.BacklogBytes = backlog })

	now := u.now().UTC()
	for _, s := range segs {
		if pb.records() >= limit || pb.bytes >= u.opts.BatchMaxBytes {
			pb.full = true
			break
		}
		off := view[s.ID]
		off.Segment = s.ID
		if off.Offset >= s.Size {
			if s.Closed && !off.Closed {
				off.Closed = true
				pb.b.Offsets = append(pb.b.Offsets, off)
			}
			if s.Closed {
				pb.toDelete = append(pb.toDelete, s.ID)
			}
			continue
		}
		budget := int(min(u.opts.BatchMaxBytes-pb.bytes, 1<<30))
		u.bufs[buf] = fitReadBuf(u.bufs[buf], int(min(int64(budget), s.Size-off.Offset)))
		entries, next, err := spool.ReadSegment(s.Path, off.Offset, budget, u.bufs[buf])
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed since listing (an empty segment); the next look sees it gone
		}
		if err != nil {
			return nil, fmt.Errorf("upload: read segment %s: %w", s.ID, err)
		}
		if room := limit - pb.records(); len(entries) > room {
			entries = entries[:room]
			next = entries[len(entries)-1].End
			pb.full = true
		} else if !s.Closed && holdback > 0 {
			if keep := holdBack(entries, now, holdback); keep < len(entries) {
				entries = entries[:keep]
				if keep > 0 {
					next = entries[keep-1].End
				}
			}
		}
		if len(entries) == 0 {
			continue // only an incomplete line so far
		}
		// Room for the entries up front: growing b.Events (176 bytes an
		// event) by doubling was 40% of build's CPU time (pprof of
		// `activitybi-load upload`). Sized by the read, not by the batch
		// limit, so small reads in steady traffic stay small; entries of
		// other kinds leave their slots unused.
		pb.b.Events = slices.Grow(pb.b.Events, len(entries))
		pb.origins = slices.Grow(pb.origins, len(entries))
		for i := range entries {
			u.take(pb, s.ID, &entries[i], now)
		}
		pb.bytes += next - off.Offset
		off.Offset = next
		off.Records += int64(len(entries))
		// A closed segment is finished once everything up to its size is
		// committed; re-listing below decides deletion after commit.
		off.Closed = s.Closed && next >= s.Size
		pb.b.Offsets = append(pb.b.Offsets, off)
		if off.Closed {
			pb.toDelete = append(pb.toDelete, s.ID)
		}
	}
	return pb, nil
}

// holdBack returns how many of entries, the newest records of an open
// segment, to take now: it leaves out the trailing events received within
// holdback before now. A process that logs from many goroutines at once
// takes each event's time before it appends it, so an event can reach the
// spool a little after one with a later time; if the uploader has loaded
// the later one by then, the earlier one arrives late in its partition and
// the load renumbers the partition's newest rows in SQL (lateRecompute:
// 37% of the core's load time under 1,000 concurrent /mcp sessions, in a
// CPU profile). Leaving the last few milliseconds for the next batch lets
// such stragglers arrive first and sort into place within the batch. It
// only reorders: a record is held back at most until holdback after it was
// received, one from a clock ahead of ours by more than holdback is not
// held, and anything that is not an event ends the scan.
func holdBack(entries []spool.Entry, now time.Time, holdback time.Duration) int {
	cutoff, future := now.Add(-holdback), now.Add(holdback)
	keep := len(entries)
	for keep > 0 {
		e := &entries[keep-1]
		if e.Corrupt != "" || e.Kind != KindEvent {
			break
		}
		at, ok := event.ReceivedAt(e.Payload)
		if !ok || !at.After(cutoff) || at.After(future) {
			break
		}
		keep--
	}
	return keep
}

// fitReadBuf returns a read buffer for need bytes: buf if it is large
// enough and not far larger, else a new one with a quarter of headroom.
// Sizing the two buffers to what is read, instead of BatchMaxBytes each,
// keeps 16 MiB out of the core's live heap in steady traffic (where a read
// is a poll interval's worth, ~125 KB at 10K events/s), and with it twice
// that from the heap the garbage collector lets grow (bench/README.md,
// "Core RSS at 10K events/s"). After a backlog a buffer shrinks again once
// reads need less than a quarter of it.
func fitReadBuf(buf []byte, need int) []byte {
	c := cap(buf)
	if c >= need && (c <= minReadBuf || c <= shrinkReadBuf*need) {
		return buf
	}
	return make([]byte, 0, max(minReadBuf, need+need/4))
}

const (
	// minReadBuf is the smallest read buffer, so small reads do not
	// reallocate.
	minReadBuf = 64 << 10
	// shrinkReadBuf: a buffer more than this many times larger than a
	// read needs is replaced by a smaller one.
	shrinkReadBuf = 4
)

// take adds one spool entry to the batch as an event, an insight or a
// quarantine record.
func (u *Uploader) take(pb *pendingBatch, seg string, e *spool.Entry, now time.Time) {
	b := &pb.b
	q := func(kind, reason string) {
		b.Quarantine = append(b.Quarantine, warehouse.QuarantineRecord{
			Segment: seg, Offset: e.Offset, Kind: kind, Reason: reason,
			Raw: append([]byte(nil), e.Raw...), At: now,
		})
	}
	if e.Corrupt != "" {
		q("", "corrupt record: "+e.Corrupt)
		return
	}
	switch e.Kind {
	case KindEvent:
		ev, err := event.Decode(e.Payload)
		if err != nil {
			q(e.Kind, "schema drift: "+err.Error())
			return
		}
		// Validate against the clock of the moment it was accepted.
		if err := event.Validate(&ev, ev.ReceivedAt); err != nil {
			q(e.Kind, "schema drift: "+err.Error())
			return
		}
		b.Events = append(b.Events, ev)
		pb.origins = append(pb.origins, origin{seg, e.Offset})
	case KindInsight:
		// DecodeInsight validates too, against the clock of the moment
		// the record was accepted.
		x, err := event.DecodeInsight(e.Payload)
		if err != nil {
			q(e.Kind, "schema drift: "+err.Error())
			return
		}
		b.Insights = append(b.Insights, x)
		pb.insightOrigins = append(pb.insightOrigins, origin{seg, e.Offset})
	case KindAudit:
		// DecodeAudit validates too, against the clock of the moment the
		// record was accepted; a bad one is quarantined like any other.
		a, err := event.DecodeAudit(e.Payload)
		if err != nil {
			q(e.Kind, "schema drift: "+err.Error())
			return
		}
		b.Audit = append(b.Audit, a)
		pb.auditOrigins = append(pb.auditOrigins, origin{seg, e.Offset})
	default:
		q(e.Kind, fmt.Sprintf("unknown record kind %q (written by a newer activitybi?)", e.Kind))
	}
}

func (u *Uploader) commit(ctx context.Context, pb *pendingBatch) (warehouse.LoadResult, error) {
	start := time.Now()
	res, err := u.opts.Warehouse.Load(ctx, &pb.b)
	u.m.batchDur.Observe(time.Since(start).Seconds())
	return res, err
}

func (u *Uploader) afterCommit(ctx context.Context, pb *pendingBatch, res warehouse.LoadResult) {
	now := u.now()
	var maxLag time.Duration
	for i := range pb.b.Events {
		d := now.Sub(pb.b.Events[i].ReceivedAt)
		u.m.lag.Observe(d.Seconds())
		maxLag = max(maxLag, d)
	}
	for i := range pb.b.Insights {
		d := now.Sub(pb.b.Insights[i].ReceivedAt)
		u.m.lag.Observe(d.Seconds())
		maxLag = max(maxLag, d)
	}
	for _, o := range pb.b.Offsets {
		u.offsets[o.Segment] = o
	}
	u.m.batches.WithLabelValues("committed").Inc()
	u.m.rows.WithLabelValues("inserted").Add(float64(res.Inserted))
	u.m.rows.WithLabelValues("duplicate").Add(float64(res.Duplicates))
	u.m.rows.WithLabelValues("quarantined").Add(float64(res.Quarantined))
	u.m.insightRows.WithLabelValues("inserted").Add(float64(res.InsightsInserted))
	u.m.insightRows.WithLabelValues("duplicate").Add(float64(res.InsightDuplicates))
	if len(pb.b.Audit) > 0 {
		u.m.auditRows.WithLabelValues("inserted").Add(float64(res.AuditInserted))
		u.m.auditRows.WithLabelValues("skipped").Add(float64(res.AuditSkipped))
		u.m.auditRows.WithLabelValues("duplicate").Add(float64(len(pb.b.Audit) - res.AuditInserted - res.AuditSkipped))
	}
	u.m.lastCommit.Set(float64(now.UnixNano()) / 1e9)
	u.setStatus(func(s *Status) {
		s.LastCommit = now
		if len(pb.b.Events)+len(pb.b.Insights) > 0 {
			s.LastLag = maxLag
		}
		s.LastError = ""
		s.ConsecutiveFails = 0
		s.Inserted += int64(res.Inserted)
		s.Duplicates += int64(res.Duplicates)
		s.Quarantined += int64(res.Quarantined)
		s.InsightsInserted += int64(res.InsightsInserted)
		s.InsightDuplicates += int64(res.InsightDuplicates)
		s.AuditInserted += int64(res.AuditInserted)
	})
	if u.opts.OnInsights != nil && res.InsightsInserted > 0 {
		seen := map[string]bool{}
		var customers []string
		for i := range pb.b.Insights {
			if c := pb.b.Insights[i].Customer; !seen[c] {
				seen[c] = true
				customers = append(customers, c)
			}
		}
		u.opts.OnInsights(customers)
	}
	if len(pb.b.Quarantine) > 0 {
		u.log.Warn("upload: records quarantined", "count", len(pb.b.Quarantine), "first_reason", pb.b.Quarantine[0].Reason)
	}
	u.waitTidy()
	c, toDelete := u.committed(), pb.toDelete
	if !pb.full {
		u.dropOffsets(u.tidy(ctx, c, toDelete))
		return
	}
	// A backlog: the next batch was built ahead and loads at once.
	// Publishing the offsets and deleting segments is file-system work
	// with an fsync or two each (about 0.2 s of a 1M-event drain of 5 s,
	// bench/README.md "Session 12"), so it runs beside that load instead
	// of before it. The next commit's tidy-up waits for this one.
	ch := make(chan []string, 1)
	go func() { ch <- u.tidy(ctx, c, toDelete) }()
	u.tidying = ch
}

// tidy does what follows a commit outside the warehouse's transaction:
// publish the committed offsets c (a copy it owns) to writers, delete the
// closed, fully committed segments toDelete, then forget their offsets. A
// crash between the deletion and the forgetting leaves an offset for a
// missing segment, which forgetVanished cleans up. It returns the segments
// it forgot, for the caller to drop from u.offsets (dropOffsets); it reads
// and writes no field of u but the logger, metrics and options, so it may
// run while the next batch loads.
func (u *Uploader) tidy(ctx context.Context, c map[string]spool.Committed, toDelete []string) []string {
	u.publishCommitted(c)
	var gone []string
	for _, id := range toDelete {
		if err := spool.DeleteSegment(u.opts.SpoolDir, id); errors.Is(err, fs.ErrNotExist) {
			gone = append(gone, id) // deleted after an earlier batch already
			continue
		} else if err != nil {
			u.log.Warn("upload: delete committed segment", "segment", id, "err", err)
			continue
		}
		u.m.deleted.Inc()
		gone = append(gone, id)
	}
	if len(gone) == 0 {
		return nil
	}
	if err := u.opts.Warehouse.ForgetOffsets(ctx, gone); err != nil {
		u.log.Warn("upload: forget offsets", "err", err)
		return nil
	}
	for _, id := range gone {
		delete(c, id)
	}
	u.publishCommitted(c)
	return gone
}

// waitTidy waits for a tidy-up running in the background and drops the
// offsets it forgot.
func (u *Uploader) waitTidy() {
	if u.tidying != nil {
		u.dropOffsets(<-u.tidying)
		u.tidying = nil
	}
}

func (u *Uploader) dropOffsets(ids []string) {
	for _, id := range ids {
		delete(u.offsets, id)
	}
}

func (u *Uploader) forget(ctx context.Context, ids []string) {
	if len(ids) == 0 {
		return
	}
	if err := u.opts.Warehouse.ForgetOffsets(ctx, ids); err != nil {
		u.log.Warn("upload: forget offsets", "err", err)
		return
	}
	u.dropOffsets(ids)
	u.publish()
}

// forgetVanished drops offsets of segments no longer in the spool (deleted
// after commit by an earlier run that crashed before forgetting them).
func (u *Uploader) forgetVanished(ctx context.Context, segs []spool.SegmentInfo) {
	u.waitTidy()
	present := make(map[string]bool, len(segs))
	for _, s := range segs {
		present[s.ID] = true
	}
	var gone []string
	for id, o := range u.offsets {
		// Only closed, fully committed segments are ever deleted. An open
		// one missing from a listing may be mid-rename (.open -> .seg, which
		// a directory read can miss under both names): keep its offset.
		if !present[id] && o.Closed {
			gone = append(gone, id)
		}
	}
	u.forget(ctx, gone)
}

// publish tells writers (in any process) how far the warehouse has
// committed, for their backpressure accounting.
func (u *Uploader) publish() { u.publishCommitted(u.committed()) }

// committed returns the committed offsets as writers see them.
func (u *Uploader) committed() map[string]spool.Committed {
	c := make(map[string]spool.Committed, len(u.offsets))
	for id, o := range u.offsets {
		c[id] = spool.Committed{Offset: o.Offset, Records: o.Records}
	}
	return c
}

func (u *Uploader) publishCommitted(c map[string]spool.Committed) {
	if err := spool.PublishCommitted(u.opts.SpoolDir, c); err != nil {
		u.log.Warn("upload: publish committed offsets", "err", err)
	}
}

type metrics struct {
	batches     *prometheus.CounterVec
	rows        *prometheus.CounterVec
	insightRows *prometheus.CounterVec
	auditRows   *prometheus.CounterVec
	retries     prometheus.Counter
	deleted     prometheus.Counter
	batchDur    prometheus.Histogram
	lag         prometheus.Histogram
	backlog     prometheus.Gauge
	lastCommit  prometheus.Gauge
	// idleCheckpoints counts IdleCheckpoint calls that checkpointed
	// (done) or failed.
	idleCheckpoints *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		batches: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "activitybi_upload_batches_total",
			Help: "Uploader batches by outcome (committed, failed)."}, []string{"outcome"}),
		rows: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "activitybi_upload_rows_total",
			Help: "Records the uploader committed, by result: events inserted into claude_stream or duplicate (already stored), and records of any kind quarantined."}, []string{"result"}),
		// Insights have their own counter, so the event series above keep
		// their meaning (and their label set) for existing queries.
		insightRows: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "activitybi_upload_insight_rows_total",
			Help: "Insights the uploader committed, by result (inserted into insight_atoms, duplicate)."}, []string{"result"}),
		auditRows: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "activitybi_upload_audit_rows_total",
			Help: "Audit records the uploader committed, by result (inserted into audit_log; duplicate: stored already; skipped: not shipped by a remote edge, whose server audits its own accesses)."}, []string{"result"}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{Name: "activitybi_upload_retries_total",
			Help: "Batches retried after a warehouse error."}),
		deleted: prometheus.NewCounter(prometheus.CounterOpts{Name: "activitybi_upload_segments_deleted_total",
			Help: "Spool segments deleted after being closed and fully committed."}),
		batchDur: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "activitybi_upload_batch_duration_seconds",
			Help: "Time to commit one batch to the warehouse.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}),
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "activitybi_ingestion_lag_seconds",
			Help:    "Time from a record's (event's or insight's) acknowledgement by the spool to its commit in the warehouse.",
			Buckets: prometheus.ExponentialBucketsRange(0.001, 120, 60)}),
		backlog: prometheus.NewGauge(prometheus.GaugeOpts{Name: "activitybi_upload_backlog_bytes",
			Help: "Spool bytes not yet committed to the warehouse."}),
		lastCommit: prometheus.NewGauge(prometheus.GaugeOpts{Name: "activitybi_upload_last_commit_timestamp_seconds",
			Help: "Unix time of the last committed batch."}),
		idleCheckpoints: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "activitybi_upload_idle_checkpoints_total",
			Help: "Warehouse checkpoints run while the uploader had nothing to load, by outcome (done, failed)."}, []string{"outcome"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.batches, m.rows, m.insightRows, m.auditRows, m.retries, m.deleted, m.batchDur, m.lag, m.backlog, m.lastCommit, m.idleCheckpoints} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("upload: register metrics: %w", err)
			}
		}
	}
	return m, nil
}
