// Package spool is activitybi's durable, segmented, multi-process NDJSON log.
//
// Every writer process appends to a segment file of its own, one checksummed
// JSON object per line, and holds a flock on it while it does; the uploader
// (usually another process) tails open and closed segments with ReadSegment,
// publishes how far it committed with PublishCommitted and deletes what is
// fully committed. Writers read that state to apply backpressure. Recover
// closes the segments of writers that died, truncating a torn tail at the
// last good record. docs/spool-format.md describes the format.
//
// Lock order: pendingTracker.mu, then Writer.mu (a refresh reads the
// writer's position); Writer.mu is never held while taking
// pendingTracker.mu.
package spool

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oklog/ulid/v2"
)

// Durability selects when Append acknowledges a record.
type Durability int

const (
	// DurabilityDefault acknowledges after write(2): a process crash loses
	// nothing acknowledged; a power loss may lose the last FsyncInterval.
	DurabilityDefault Durability = iota
	// DurabilitySync acknowledges only after a group-commit fsync covering
	// the record.
	DurabilitySync
)

// ParseDurability parses "default" or "sync".
func ParseDurability(s string) (Durability, error) {
	switch s {
	case "default":
		return DurabilityDefault, nil
	case "sync":
		return DurabilitySync, nil
	}
	return 0, fmt.Errorf("unknown spool durability %q: want \"default\" or \"sync\"", s)
}

func (d Durability) String() string {
	switch d {
	case DurabilityDefault:
		return "default"
	case DurabilitySync:
		return "sync"
	}
	return fmt.Sprintf("Durability(%d)", int(d))
}

// Options configure a Writer. Zero values mean the documented defaults.
type Options struct {
	Dir             string        // spool directory; required; created 0700
	Durability      Durability    // DurabilityDefault
	SegmentMaxBytes int64         // rotation size; 0 = 16 MiB
	SegmentMaxAge   time.Duration // rotation age; 0 = 60 s
	FsyncInterval   time.Duration // background fsync in default mode; 0 = 100 ms
	MaxPending      int           // backpressure limit in records not yet committed to the warehouse; 0 = 100000
	Logger          *slog.Logger  // nil = discard
	Metrics         *Metrics      // nil = private unregistered metrics

	syncFile func(*os.File) error // tests: replaces (*os.File).Sync
}

func (o *Options) normalize() error {
	if o.Dir == "" {
		return errors.New("spool: Options.Dir is required")
	}
	if o.Durability != DurabilityDefault && o.Durability != DurabilitySync {
		return fmt.Errorf("spool: invalid durability %d", o.Durability)
	}
	if o.SegmentMaxBytes < 0 || o.SegmentMaxAge < 0 || o.FsyncInterval < 0 || o.MaxPending < 0 {
		return errors.New("spool: SegmentMaxBytes, SegmentMaxAge, FsyncInterval and MaxPending must not be negative")
	}
	if o.SegmentMaxBytes == 0 {
		o.SegmentMaxBytes = DefaultSegmentMaxBytes
	}
	if o.SegmentMaxAge == 0 {
		o.SegmentMaxAge = DefaultSegmentMaxAge
	}
	if o.FsyncInterval == 0 {
		o.FsyncInterval = DefaultFsyncInterval
	}
	if o.MaxPending == 0 {
		o.MaxPending = DefaultMaxPending
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Metrics == nil {
		o.Metrics = NewMetrics(nil)
	}
	return nil
}

// ErrBackpressure is matched (errors.Is) by the *BackpressureError Append
// returns when too many records are not yet in the warehouse. It is
// retryable: nothing was written.
var ErrBackpressure = errors.New("spool backpressure")

// BackpressureError reports a rejected append.
type BackpressureError struct {
	Pending int // estimated records not yet committed to the warehouse
	Limit   int // Options.MaxPending
	Records int // records the refused append carried
}

func (e *BackpressureError) Error() string {
	return fmt.Sprintf("spool has %d events not yet in the warehouse (limit %d); is `activitybi serve` running? retry later",
		e.Pending, e.Limit)
}

func (e *BackpressureError) Is(target error) bool { return target == ErrBackpressure }

// BatchTooLargeError reports an AppendBatch of more records than
// MaxPending: it could never be accepted, however long the caller waited.
// It matches ErrInvalidRecord (errors.Is).
type BatchTooLargeError struct {
	Records int
	Limit   int // Options.MaxPending
}

func (e *BatchTooLargeError) Error() string {
	return fmt.Sprintf("%v: batch of %d records exceeds the spool's MaxPending %d", ErrInvalidRecord, e.Records, e.Limit)
}

func (e *BatchTooLargeError) Is(target error) bool { return target == ErrInvalidRecord }

// ErrClosed is returned by Append after Close.
var ErrClosed = errors.New("spool: writer is closed")

// Writer appends records to its own segment in a spool directory. It is safe
// for concurrent use.
type Writer struct {
	opts     Options
	log      *slog.Logger
	m        *Metrics
	segDir   string
	writerID string // ULID shared by this writer's segment ids
	pend     *pendingTracker
	appended atomic.Int64 // records this writer wrote, all segments

	mu        sync.Mutex
	cond      sync.Cond // on mu; broadcast when synced, err, spare or creating change
	f         *os.File  // current segment, locked; nil after Close
	id        string
	size      int64
	records   int64
	created   time.Time
	gen       uint64 // bumped whenever f changes
	buf       []byte // reused line buffer
	err       error  // sticky failure: set once, returned forever
	closed    bool
	dirty     bool   // written since the last background fsync began (default durability)
	written   uint64 // sequence number of the last write(2)
	synced    uint64 // every write <= synced is on stable storage
	lastSeq   int    // highest segment sequence number taken
	spare     *os.File
	spareID   string                     // the next segment, created ahead by the background goroutine
	spareSync [maxSyncsInFlight]*os.File // its sync durability descriptors
	creating  bool                       // the background goroutine is creating the spare
	retiring  []retired                  // rotated-out segments the background goroutine closes, oldest first

	// Sync durability runs up to maxSyncsInFlight fsyncs at once, each on
	// its own open file description of the current segment (see startSyncLocked).
	syncFiles   [maxSyncsInFlight]*os.File // the segment opened again, read-only, when it was created
	syncBusy    [maxSyncsInFlight]bool     // an fsync on syncFiles[i] is in flight
	syncStarted uint64                     // every write <= syncStarted is covered by a started fsync
	syncWG      sync.WaitGroup             // runSync goroutines
	syncLast    time.Time                  // when the latest fsync started
	syncTypical time.Duration              // moving average of fsync durations
	syncTimer   *time.Timer                // calls startSyncLocked when the latest fsync turns slow
	syncArmed   time.Time                  // syncLast the timer is armed for

	kick      chan struct{} // capacity 1: wake the background goroutine
	done      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// retired is a segment rotated out by an append, waiting to be closed.
type retired struct {
	f       *os.File
	id      string
	records int64
	written uint64 // the write sequence number when it was rotated out
	// syncFiles are its sync durability descriptors no fsync is running on,
	// closed after it.
	syncFiles [maxSyncsInFlight]*os.File
}

// maxSyncsInFlight bounds the fsyncs a sync durability writer runs at once.
// An append that arrives while an fsync is in flight starts another one at
// once rather than waiting for the first to end and then for its own: the
// device overlaps them, so such an append waits about one fsync, not two
// (bench/spool.md, session 12).
const maxSyncsInFlight = 2

// maxKeptBuf bounds the line buffer a writer keeps between appends.
const maxKeptBuf = 1 << 20

// Open recovers orphaned segments in opts.Dir (see Recover) and creates this
// writer's own new segment. Several writers, in one process or many, may
// share a directory.
func Open(opts Options) (*Writer, error) {
	if err := opts.normalize(); err != nil {
		return nil, err
	}
	segDir := segmentsDir(opts.Dir)
	if err := mkdirDurable(segDir); err != nil {
		return nil, fmt.Errorf("open spool: %w", err)
	}
	if _, err := Recover(opts.Dir, opts.Logger, opts.Metrics); err != nil {
		// Another writer's dead segment must not stop this one: it is logged
		// and retried by the next Open or `activitybi spool repair`.
		opts.Logger.Error("spool recovery incomplete", "dir", opts.Dir, "err", err)
	}
	w := &Writer{
		opts:     opts,
		log:      opts.Logger,
		m:        opts.Metrics,
		segDir:   segDir,
		writerID: ulid.Make().String(),
		kick:     make(chan struct{}, 1),
		done:     make(chan struct{}),
	}
	w.cond.L = &w.mu
	w.pend = newPendingTracker(opts.Dir, w.writerID+"-")
	f, sf, id, err := w.createSegment(1)
	if err != nil {
		return nil, fmt.Errorf("open spool: %w", err)
	}
	w.f, w.syncFiles, w.id, w.lastSeq, w.created = f, sf, id, 1, time.Now()
	if err := w.pend.refresh(w.mark, 0); err != nil {
		w.log.Warn("spool pending estimate unavailable", "err", err)
	}
	w.m.pending.Set(float64(w.pend.estimate(0)))
	w.wg.Add(2)
	go w.loop()
	go w.refreshLoop()
	w.log.Debug("spool writer opened", "segment", id, "durability", opts.Durability.String())
	return w, nil
}

// SegmentID is the id of the segment the writer currently appends to.
func (w *Writer) SegmentID() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.id
}

// mark tells a pending refresh where the writer stands (see ownMark).
func (w *Writer) mark() ownMark {
	w.mu.Lock()
	defer w.mu.Unlock()
	return ownMark{appended: w.appended.Load(), segment: w.id, size: w.size}
}

// Pending is the current estimate of records in the directory not yet
// committed to the warehouse (refreshed from the filesystem about every
// 100 ms, plus this writer's own appends since).
func (w *Writer) Pending() int {
	return int(w.pend.estimate(w.appended.Load()))
}

// HasRoom reports whether an append of n records would pass the
// backpressure check now, refreshing the estimate near the limit as an
// append does. It is advice for a caller waiting at the limit (retrying
// costs it more than asking): other writers and the uploader move the
// count, so an append after true may still meet ErrBackpressure. It is
// true for a failed or closed writer, whose next append says so.
func (w *Writer) HasRoom(n int) bool {
	w.mu.Lock()
	done := w.err != nil || w.closed
	w.mu.Unlock()
	if done {
		return true
	}
	limit := int64(w.opts.MaxPending)
	if w.pend.estimate(w.appended.Load())+int64(n) > limit*9/10 {
		if err := w.pend.refresh(w.mark, blockedRefreshInterval); err != nil {
			w.log.Warn("spool pending refresh failed", "err", err)
		}
	}
	return w.pend.estimate(w.appended.Load())+int64(n) <= limit
}

// Append appends one record. See AppendBatch.
func (w *Writer) Append(kind string, payload []byte) error {
	return w.appendRecords(kind, nil, payload)
}

// AppendBatch appends several records of one kind with one write(2). Either
// all are accepted or none (bad input, backpressure); after a write error the
// segment may hold a prefix, which recovery truncates to whole records.
//
// Errors: ErrInvalidRecord for a bad kind or payload (a payload must be a
// compact JSON object on one line); ErrBackpressure when pending records
// reach MaxPending; ErrClosed after Close; after a write or fsync error the
// writer is failed for good and returns that error from every later call.
func (w *Writer) AppendBatch(kind string, payloads [][]byte) error {
	if len(payloads) == 0 {
		return nil
	}
	return w.appendRecords(kind, payloads, nil)
}

// appendRecords appends payloads, or the single payload one when payloads is
// nil (so Append does not allocate a slice).
func (w *Writer) appendRecords(kind string, payloads [][]byte, one []byte) error {
	if err := checkKind(kind); err != nil {
		return err
	}
	n, size := 1, 0
	if payloads == nil {
		if err := checkPayload(one); err != nil {
			return err
		}
		size = recordLen(kind, one)
	} else {
		n = len(payloads)
		for i, p := range payloads {
			if err := checkPayload(p); err != nil {
				return fmt.Errorf("record %d: %w", i, err)
			}
			size += recordLen(kind, p)
		}
		if n > w.opts.MaxPending {
			return &BatchTooLargeError{Records: n, Limit: w.opts.MaxPending}
		}
	}
	limit := int64(w.opts.MaxPending)
	if w.pend.estimate(w.appended.Load())+int64(n) > limit*9/10 {
		// Near the limit the estimate must be fresh: other writers and the
		// uploader move it. Refresh outside w.mu so appends go on meanwhile.
		if err := w.pend.refresh(w.mark, blockedRefreshInterval); err != nil {
			w.log.Warn("spool pending refresh failed", "err", err)
		}
	}

	w.mu.Lock()
	// Rotate first if this write would take the segment past its size. The
	// next segment is normally ready (created in the background once the
	// current one is half full) and the old one is closed in the background,
	// so no fsync happens here.
	for w.err == nil && !w.closed && w.size > 0 && w.size+int64(size) > w.opts.SegmentMaxBytes {
		if w.spare == nil && w.creating {
			w.cond.Wait()
			continue
		}
		if err := w.rotateLocked("size"); err != nil {
			w.mu.Unlock()
			return err
		}
	}
	if w.err != nil {
		err := w.err
		w.mu.Unlock()
		return err
	}
	if w.closed {
		w.mu.Unlock()
		return ErrClosed
	}
	if est := w.pend.estimate(w.appended.Load()); est+int64(n) > limit {
		w.mu.Unlock()
		w.m.backpressureRejections.Inc()
		return &BackpressureError{Pending: int(est), Limit: int(limit), Records: n}
	}
	buf := w.buf[:0]
	if payloads == nil {
		buf = appendRecord(buf, kind, one)
	} else {
		for _, p := range payloads {
			buf = appendRecord(buf, kind, p)
		}
	}
	if _, err := w.f.Write(buf); err != nil {
		w.failLocked(fmt.Errorf("write segment %s: %w", w.id, err))
		err := w.err
		w.mu.Unlock()
		return err
	}
	if cap(buf) <= maxKeptBuf {
		w.buf = buf
	}
	w.size += int64(len(buf))
	w.records += int64(n)
	w.appended.Add(int64(n))
	w.dirty = true
	w.written++
	if w.spare == nil && !w.creating && w.size >= w.opts.SegmentMaxBytes/2 {
		w.wake() // time to create the next segment
	}
	var err error
	if w.opts.Durability == DurabilitySync {
		target := w.written
		w.startSyncLocked() // or an fsync already started covers it
		for w.synced < target && w.err == nil {
			w.cond.Wait()
		}
		if w.synced < target {
			err = w.err
		}
	}
	w.mu.Unlock()
	if err != nil {
		return err
	}
	w.m.appends.Add(float64(n))
	w.m.appendBytes.Add(float64(size))
	return nil
}

// failLocked fails the writer for good. After a failed write or fsync the
// state of the file is unknown (PostgreSQL's fsync lesson): stop, and leave
// the segment to recovery.
func (w *Writer) failLocked(err error) {
	if w.err != nil {
		return
	}
	w.err = err
	w.m.writerFailures.Inc()
	w.log.Error("spool writer failed; appends will fail until the process restarts", "segment", w.id, "err", err)
	w.cond.Broadcast()
}

// createSegment creates, locks and names the writer's segment number seq:
// created as .tmp, flocked, opened again for the fsyncs of sync durability,
// fsynced, renamed to .open, directory fsynced.
//
// The fsync descriptors are opened before anything is written: Linux
// reports a writeback error to each open file description, but only to
// those that were open when it happened (or that opened before anyone saw
// it), so each must exist before the first write.
func (w *Writer) createSegment(seq int) (*os.File, [maxSyncsInFlight]*os.File, string, error) {
	var syncFiles [maxSyncsInFlight]*os.File
	id := fmt.Sprintf("%s-%0*d", w.writerID, seqDigits, seq)
	tmp := filepath.Join(w.segDir, id+tmpExt)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, filePerm)
	if err != nil {
		return nil, syncFiles, "", fmt.Errorf("create segment: %w", err)
	}
	fail := func(err error) (*os.File, [maxSyncsInFlight]*os.File, string, error) {
		f.Close()
		closeAll(syncFiles[:])
		os.Remove(tmp)
		return nil, [maxSyncsInFlight]*os.File{}, "", fmt.Errorf("create segment %s: %w", id, err)
	}
	held, err := tryLock(f)
	if err == nil && held {
		err = errors.New("segment is locked by someone else")
	}
	if err != nil {
		return fail(err)
	}
	if w.opts.Durability == DurabilitySync {
		for i := range syncFiles {
			if syncFiles[i], err = os.Open(tmp); err != nil {
				return fail(err)
			}
		}
	}
	if err := w.fsync(f); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp, filepath.Join(w.segDir, id+openExt)); err != nil {
		return fail(err)
	}
	if err := syncDir(w.segDir); err != nil {
		f.Close() // the .open file exists; recovery removes it (empty)
		closeAll(syncFiles[:])
		return nil, [maxSyncsInFlight]*os.File{}, "", fmt.Errorf("create segment %s: %w", id, err)
	}
	return f, syncFiles, id, nil
}

// closeSegment makes a segment closed: fsync, rename .open -> .seg (or remove
// it when it holds no record), fsync the directory, then close the file,
// which releases the lock. The lock is held until the name has changed so
// recovery never mistakes the segment for an orphan.
func (w *Writer) closeSegment(f *os.File, id string, records int64) error {
	defer f.Close()
	if err := w.fsync(f); err != nil {
		return fmt.Errorf("close segment %s: %w", id, err)
	}
	open := filepath.Join(w.segDir, id+openExt)
	var err error
	if records == 0 {
		err = os.Remove(open)
	} else {
		err = os.Rename(open, filepath.Join(w.segDir, id+closedExt))
	}
	if err == nil {
		err = syncDir(w.segDir)
	}
	if err != nil {
		return fmt.Errorf("close segment %s: %w", id, err)
	}
	return nil
}

func (w *Writer) fsync(f *os.File) error {
	sync := (*os.File).Sync
	if w.opts.syncFile != nil {
		sync = w.opts.syncFile
	}
	start := time.Now()
	err := sync(f)
	w.m.fsyncDuration.Observe(time.Since(start).Seconds())
	return err
}

// wake wakes the background goroutine without blocking.
func (w *Writer) wake() {
	select {
	case w.kick <- struct{}{}:
	default: // already awake or about to be
	}
}

// rotateLocked switches to the next segment and hands the current one to
// the background goroutine to close. Without a spare ready it creates the
// next segment itself (with its fsyncs); a failure to do so leaves the
// writer on the old segment: the append that asked fails, the next retries.
func (w *Writer) rotateLocked(reason string) error {
	f, sf, id := w.spare, w.spareSync, w.spareID
	w.spare, w.spareSync, w.spareID = nil, [maxSyncsInFlight]*os.File{}, ""
	if f == nil {
		w.lastSeq++ // never reused, even when creation fails half way
		var err error
		if f, sf, id, err = w.createSegment(w.lastSeq); err != nil {
			return err
		}
	}
	r := retired{f: w.f, id: w.id, records: w.records, written: w.written}
	for i, sf := range w.syncFiles {
		if !w.syncBusy[i] { // a running fsync closes its own when it ends
			r.syncFiles[i] = sf
		}
	}
	w.retiring = append(w.retiring, r)
	w.syncFiles, w.syncBusy = sf, [maxSyncsInFlight]bool{}
	w.log.Debug("spool segment rotated", "reason", reason, "closing", w.id, "records", w.records, "bytes", w.size, "next", id)
	w.f, w.id, w.size, w.records, w.created = f, id, 0, 0, time.Now()
	w.gen++
	w.dirty = false
	w.m.rotations.Inc()
	w.wake()
	return nil
}

// loop is the writer's background goroutine: it closes rotated-out
// segments, fsyncs (on request in sync durability, every FsyncInterval in
// default durability), creates the next segment ahead of time and rotates
// segments by age.
func (w *Writer) loop() {
	defer w.wg.Done()
	var tick <-chan time.Time
	if w.opts.Durability == DurabilityDefault {
		t := time.NewTicker(w.opts.FsyncInterval)
		defer t.Stop()
		tick = t.C
	}
	age := time.NewTimer(w.opts.SegmentMaxAge)
	defer age.Stop()
	for {
		syncDue := false
		select {
		case <-w.done:
			return
		case <-w.kick:
		case <-tick:
			syncDue = true
		case <-age.C:
			age.Reset(w.rotateIfOld())
		}
		// Closing rotated-out segments comes first: an fsync of the current
		// segment must not acknowledge writes still in an unsynced old one.
		w.closeRetired()
		if w.opts.Durability == DurabilitySync {
			w.mu.Lock()
			w.startSyncLocked() // appends that waited for a rotated-out segment's close
			w.mu.Unlock()
		} else if syncDue {
			w.syncNow()
		}
		w.makeSpare(false)
	}
}

// closeRetired closes the rotated-out segments in order and then marks
// their writes synced. Only the background goroutine (or Close, after it
// stopped) calls it.
func (w *Writer) closeRetired() {
	for {
		w.mu.Lock()
		if len(w.retiring) == 0 {
			w.mu.Unlock()
			return
		}
		r, failed := w.retiring[0], w.err != nil
		w.mu.Unlock()

		var err error
		if failed {
			r.f.Close() // leave it to recovery
		} else {
			err = w.closeSegment(r.f, r.id, r.records)
		}
		closeAll(r.syncFiles[:])

		w.mu.Lock()
		w.retiring = w.retiring[1:]
		if err != nil {
			w.failLocked(err)
		} else if w.err == nil && r.written > w.synced { // an fsync of its may have failed meanwhile
			w.synced = r.written
			w.cond.Broadcast()
		}
		w.mu.Unlock()
	}
}

// syncNow fsyncs the current segment if it was written since the last fsync.
// The fsync runs without w.mu, so appenders keep writing meanwhile and the
// next fsync covers all of them (group commit).
func (w *Writer) syncNow() {
	w.mu.Lock()
	if w.err != nil || w.closed || !w.dirty {
		w.mu.Unlock()
		return
	}
	if len(w.retiring) > 0 { // rotated since closeRetired: close first
		w.mu.Unlock()
		w.wake()
		return
	}
	f, id, gen, target := w.f, w.id, w.gen, w.written
	w.dirty = false
	w.mu.Unlock()

	err := w.fsync(f)

	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil {
		// Even when the segment rotated out meanwhile: Linux reports a
		// writeback error to one fsync of a file description, so the
		// retiring close's fsync of the same file may not see it.
		w.failLocked(fmt.Errorf("fsync segment %s: %w", id, err))
		return
	}
	if gen != w.gen {
		// Rotated meanwhile: the file is retiring, and closing it fsyncs it
		// and advances synced past target.
		return
	}
	if target > w.synced {
		w.synced = target
		w.cond.Broadcast()
	}
}

// makeSpare creates the next segment ahead of time, outside w.mu, once the
// current one is half full (or when force is set, for age rotation).
func (w *Writer) makeSpare(force bool) {
	w.mu.Lock()
	if w.spare != nil || w.creating || w.err != nil || w.closed ||
		!force && w.size < w.opts.SegmentMaxBytes/2 {
		w.mu.Unlock()
		return
	}
	w.creating = true
	w.lastSeq++
	seq := w.lastSeq
	w.mu.Unlock()

	f, sf, id, err := w.createSegment(seq)

	w.mu.Lock()
	defer w.mu.Unlock()
	w.creating = false
	w.cond.Broadcast()
	if err != nil {
		// An append that needs it creates one itself (and reports the error).
		w.log.Warn("spool could not create the next segment ahead", "err", err)
		return
	}
	w.spare, w.spareSync, w.spareID = f, sf, id
}

// rotateIfOld rotates a segment that reached SegmentMaxAge and returns when
// to check again. An empty segment is kept (nothing to hand over) and its
// age restarts.
func (w *Writer) rotateIfOld() time.Duration {
	due := func() (time.Duration, bool) {
		if w.err != nil || w.closed {
			return w.opts.SegmentMaxAge, false
		}
		if left := w.opts.SegmentMaxAge - time.Since(w.created); left > 0 {
			return left, false
		}
		if w.records == 0 {
			w.created = time.Now()
			return w.opts.SegmentMaxAge, false
		}
		return 0, true
	}
	w.mu.Lock()
	d, ok := due()
	w.mu.Unlock()
	if !ok {
		return d
	}
	w.makeSpare(true)
	w.mu.Lock()
	defer w.mu.Unlock()
	if d, ok := due(); !ok {
		return d
	}
	if err := w.rotateLocked("age"); err != nil {
		w.log.Error("spool age rotation failed", "segment", w.id, "err", err)
		return time.Second // retry soon; appends go on in the old segment
	}
	return w.opts.SegmentMaxAge
}

// idleRefreshInterval bounds how stale the pending estimate of a writer that
// does not append may get.
const idleRefreshInterval = time.Second

// refreshLoop keeps the pending estimate fresh: every 100 ms while this
// writer appends, every second while it is idle.
func (w *Writer) refreshLoop() {
	defer w.wg.Done()
	t := time.NewTicker(pendingRefreshInterval)
	defer t.Stop()
	for {
		select {
		case <-w.done:
			return
		case <-t.C:
			s := w.pend.snap.Load()
			if w.appended.Load() == s.own && time.Since(s.at) < idleRefreshInterval {
				continue
			}
			if err := w.pend.refresh(w.mark, pendingRefreshInterval/2); err != nil {
				w.log.Warn("spool pending refresh failed", "err", err)
				continue
			}
			w.m.pending.Set(float64(w.pend.estimate(w.appended.Load())))
		}
	}
}

// Close fsyncs and closes the writer's segment and marks it closed (renamed
// to .seg; removed when it holds no record). It is idempotent: later calls
// return the first call's result. A failed writer's segment is left open for
// recovery to truncate and close.
func (w *Writer) Close() error {
	w.closeOnce.Do(func() {
		w.mu.Lock()
		w.closed = true // no more appends, so no more rotations
		if w.syncTimer != nil {
			w.syncTimer.Stop()
		}
		w.mu.Unlock()
		close(w.done)
		w.wg.Wait()     // the background goroutine is gone: its work is ours now
		w.syncWG.Wait() // and no fsync is in flight (none starts once closed)
		w.closeRetired()
		w.mu.Lock()
		defer w.mu.Unlock()
		defer w.cond.Broadcast()
		if w.spare != nil {
			closeAll(w.spareSync[:])
			if err := w.closeSegment(w.spare, w.spareID, 0); err != nil {
				w.log.Warn("spool could not remove the unused next segment; recovery will", "err", err)
			}
			w.spare = nil
		}
		f := w.f
		w.f = nil
		w.gen++
		closeAll(w.syncFiles[:])
		w.syncFiles = [maxSyncsInFlight]*os.File{}
		if w.err != nil {
			f.Close()
			w.closeErr = w.err
			return
		}
		if err := w.closeSegment(f, w.id, w.records); err != nil {
			w.failLocked(err)
			w.closeErr = w.err
			return
		}
		w.synced = w.written
		w.log.Debug("spool writer closed", "segment", w.id, "records", w.records)
	})
	return w.closeErr
}

// startSyncLocked starts an fsync covering every write so far, unless one
// started already covers them or maxSyncsInFlight are running; a running
// fsync that ends starts the next. Each concurrent fsync uses its own open
// file description of the segment (see createSegment): Linux reports a
// writeback error to every description, but only to the first fsync on
// each, so two fsyncs sharing one could see one fail and the other succeed
// for the same data. A failed fsync fails the writer. Called with w.mu held.
func (w *Writer) startSyncLocked() {
	if w.err != nil || w.closed || w.f == nil || w.syncStarted >= w.written {
		return
	}
	if len(w.retiring) > 0 {
		// An fsync of the current segment must not acknowledge writes
		// still in an unsynced old one: the background goroutine closes
		// it first, then calls here again.
		w.wake()
		return
	}
	slot := slices.Index(w.syncBusy[:], false)
	if slot < 0 {
		return
	}
	if slices.Contains(w.syncBusy[:], true) {
		// Group commit: wait for the running fsync, whose end starts the
		// next one for every write that came meanwhile, unless it runs
		// longer than fsyncs typically take here: then start another now
		// (or when it gets that old, by the timer).
		if age := time.Since(w.syncLast); age < w.syncTypical {
			if w.syncArmed != w.syncLast {
				w.syncArmed = w.syncLast
				if w.syncTimer == nil {
					w.syncTimer = time.AfterFunc(w.syncTypical-age, func() {
						w.mu.Lock()
						w.startSyncLocked()
						w.mu.Unlock()
					})
				} else {
					w.syncTimer.Reset(w.syncTypical - age)
				}
			}
			return
		}
	}
	sf := w.syncFiles[slot]
	w.syncBusy[slot] = true
	w.syncLast = time.Now()
	w.syncStarted = w.written
	w.syncWG.Add(1)
	go w.runSync(sf, slot, w.id, w.gen, w.written)
}

// runSync is one fsync started by startSyncLocked.
func (w *Writer) runSync(f *os.File, slot int, id string, gen, target uint64) {
	defer w.syncWG.Done()
	start := time.Now()
	err := w.fsync(f)
	d := time.Since(start)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.syncTypical == 0 {
		w.syncTypical = d
	} else {
		w.syncTypical += (d - w.syncTypical) / 8
	}
	if gen != w.gen {
		// The segment rotated out meanwhile; its close fsyncs it and
		// advances synced, and left this descriptor to us.
		f.Close()
		if err != nil {
			w.failLocked(fmt.Errorf("fsync segment %s: %w", id, err))
		}
		return
	}
	w.syncBusy[slot] = false
	if err != nil {
		w.failLocked(fmt.Errorf("fsync segment %s: %w", id, err))
		return
	}
	if target > w.synced {
		w.synced = target
		w.cond.Broadcast()
	}
	w.startSyncLocked() // writes that came while every slot was busy
}

func closeAll(files []*os.File) {
	for _, f := range files {
		if f != nil {
			f.Close()
		}
	}
}
