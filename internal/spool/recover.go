package spool

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"
)

// Report describes the segments of a spool directory, as seen by Stat,
// Verify or Recover.
type Report struct {
	Dir       string
	Segments  []SegmentReport // sorted by ID
	Records   int64           // sum of Segments[i].Records
	Bytes     int64           // sum of Segments[i].Size
	Corrupt   int64           // sum of len(Segments[i].Corrupt) (Stat: 0, it does not check)
	TornBytes int64           // sum of Segments[i].TornBytes
	Pending   int64           // lines not yet committed according to committed.json (Stat, Verify)
	Orphaned  int             // open segments whose writer is gone
	Recovered int             // segments closed or removed by this Recover call
}

// SegmentReport describes one segment.
type SegmentReport struct {
	ID        string
	Path      string // path after any repair ("" when Removed)
	Closed    bool   // closed before this call (.seg)
	Orphaned  bool   // open, but no writer holds its lock: its process is gone
	Recovered bool   // closed by this Recover call (renamed to .seg, or Removed)
	Removed   bool   // removed by this Recover call: no valid record survived
	Size      int64  // bytes when inspected, before any repair
	Lines     int64  // complete lines, valid or corrupt (orphaned: those that remain after repair); not set by Recover for other segments
	Records   int64  // Stat: complete lines; Verify and Recover: valid records that remain
	// Corrupt lists complete lines that fail the integrity check and stay in
	// place (the uploader quarantines them). For an orphaned segment only
	// those before its last valid record: the ones after it are torn tail.
	// Stat leaves it empty.
	Corrupt []CorruptRecord
	// TornBytes are the bytes after the last valid record of a closed or
	// orphaned segment (Stat: after the last '\n'), which Recover truncates
	// in an orphaned segment. Zero for a live open segment.
	TornBytes int64
	// InFlightBytes are the bytes after the last '\n' of a live open
	// segment: a record being written.
	InFlightBytes int64
	Committed     Committed // from committed.json
}

// CorruptRecord locates a complete line that failed its check.
type CorruptRecord struct {
	Offset int64 // where the line starts
	End    int64 // just after its '\n' (or the end of file for an unterminated line)
	Reason string
}

type inspectMode int

const (
	modeStat inspectMode = iota
	modeVerify
	modeRecover
)

// Stat counts the lines and bytes of every segment without checking
// records, and tells live open segments from orphaned ones. It changes
// nothing. It reads only what committed.json does not cover (the committed
// part's line count comes from there), so it is cheap enough for every
// metrics scrape.
func Stat(dir string) (Report, error) { return inspect(dir, modeStat, nil, nil) }

// Verify checks every record of every segment and reports corrupt records
// (offsets and reasons) and torn tails. It changes nothing.
func Verify(dir string) (Report, error) { return inspect(dir, modeVerify, nil, nil) }

// Recover closes every orphaned open segment in dir — one whose writer is
// gone, so no flock is held on it: everything after its last valid record
// (an incomplete line, zeros, invalid final lines) is truncated, counted and
// logged, the file is fsynced and renamed to .seg (removed when no record
// survives), and the directory is fsynced. Corrupt records before the last
// valid one stay in place for the uploader to quarantine; they are counted
// and logged with their offsets. Live segments (lock held by a writer in
// this or another process) are never touched. Leftover temporary files older
// than a minute are removed.
//
// Only orphaned segments are read, so Recover is cheap enough for every
// Open; its report describes the others by id, state and size only.
//
// A segment that cannot be recovered does not stop the others: their
// errors are joined. logger and m may be nil.
func Recover(dir string, logger *slog.Logger, m *Metrics) (Report, error) {
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if m == nil {
		m = NewMetrics(nil)
	}
	return inspect(dir, modeRecover, logger, m)
}

func inspect(dir string, mode inspectMode, log *slog.Logger, m *Metrics) (Report, error) {
	rep := Report{Dir: dir}
	des, err := os.ReadDir(segmentsDir(dir))
	if err != nil {
		if isNotExist(err) {
			if _, serr := os.Stat(dir); serr != nil {
				return rep, fmt.Errorf("spool %s: %w", dir, serr)
			}
			return rep, nil
		}
		return rep, fmt.Errorf("spool %s: %w", dir, err)
	}
	var errs []error
	committed, err := ReadCommitted(dir)
	if err != nil {
		// Repairs do not need it; reports go on without commit figures.
		if log != nil {
			log.Warn("spool recovery cannot read the committed state", "err", err)
		}
		if mode != modeRecover {
			errs = append(errs, err)
		}
		committed = map[string]Committed{}
	}
	var buf []byte
	seen := map[string]bool{}
	for _, de := range des {
		id, ext, ok := splitSegmentName(de.Name())
		if !ok {
			continue
		}
		if ext == tmpExt {
			if mode == modeRecover {
				removeStaleTmp(filepath.Join(segmentsDir(dir), de.Name()), log)
			}
			continue
		}
		if _, dup := seen[id]; dup {
			continue // renamed .open -> .seg while we read the directory
		}
		sr, b, err := inspectSegment(dir, id, ext == closedExt, mode, committed[id], buf, log, m)
		buf = b
		if err != nil {
			if isNotExist(err) {
				continue // deleted meanwhile
			}
			errs = append(errs, fmt.Errorf("segment %s: %w", id, err))
			continue
		}
		seen[id] = true
		rep.Segments = append(rep.Segments, sr)
	}
	if mode == modeRecover {
		removeStaleCommittedTmp(dir, log)
	}
	sortReports(rep.Segments)
	for _, s := range rep.Segments {
		rep.Records += s.Records
		rep.Bytes += s.Size
		rep.Corrupt += int64(len(s.Corrupt))
		rep.TornBytes += s.TornBytes
		if s.Orphaned {
			rep.Orphaned++
		}
		if s.Recovered {
			rep.Recovered++
		}
		if d := s.Lines - s.Committed.Records; d > 0 && !s.Removed {
			rep.Pending += d
		}
	}
	return rep, errors.Join(errs...)
}

// inspectSegment inspects (and in modeRecover repairs) one segment.
func inspectSegment(dir, id string, closed bool, mode inspectMode, c Committed, buf []byte, log *slog.Logger, m *Metrics) (SegmentReport, []byte, error) {
	sr := SegmentReport{ID: id, Path: segmentPath(dir, id, closed), Closed: closed, Committed: c}
	flag := os.O_RDONLY
	if mode == modeRecover && !closed {
		flag = os.O_RDWR
	}
	f, err := os.OpenFile(sr.Path, flag, 0)
	if err != nil && !closed && isNotExist(err) {
		// Closed since the directory was read.
		closed, sr.Closed, sr.Path = true, true, segmentPath(dir, id, true)
		flag = os.O_RDONLY
		f, err = os.OpenFile(sr.Path, flag, 0)
	}
	if err != nil {
		return sr, buf, err
	}
	defer f.Close() // releases the lock, if we took it, after any rename
	if !closed {
		held, err := tryLock(f)
		if err != nil {
			return sr, buf, fmt.Errorf("lock: %w", err)
		}
		if !held {
			// We hold the lock now. Either the writer is gone, or it closed
			// the segment after we opened it: then the name no longer
			// leads to this file.
			fi, err := f.Stat()
			if err != nil {
				return sr, buf, err
			}
			pfi, err := os.Stat(sr.Path)
			if err != nil && !isNotExist(err) {
				return sr, buf, err
			}
			if err != nil || !os.SameFile(fi, pfi) {
				f.Close()
				return inspectSegment(dir, id, true, mode, c, buf, log, m)
			}
			sr.Orphaned = true
		}
	}
	if mode == modeRecover && !sr.Orphaned {
		// Recover runs on every Open and periodically in the uploader: it
		// reads only what it repairs.
		fi, err := f.Stat()
		if err != nil {
			return sr, buf, err
		}
		sr.Size = fi.Size()
		return sr, buf, nil
	}
	var from fileScan
	if mode == modeStat {
		// Stat counts only: the committed part was counted by the uploader.
		from = fileScan{lines: c.Records, lastLineEnd: c.Offset}
	}
	sc, buf, err := scanFile(f, mode != modeStat, from, buf)
	if err != nil {
		return sr, buf, err
	}
	sr.Size, sr.Lines = sc.size, sc.lines
	switch {
	case mode == modeStat:
		sr.Records = sc.lines
		if closed || sr.Orphaned {
			sr.TornBytes = sc.size - sc.lastLineEnd
		} else {
			sr.InFlightBytes = sc.size - sc.lastLineEnd
		}
		return sr, buf, nil
	case closed || !sr.Orphaned:
		// Nothing to repair: every complete invalid line is reported.
		sr.Records, sr.Corrupt = sc.valid, sc.corrupt
		if closed {
			sr.TornBytes = sc.size - sc.lastLineEnd
			if sr.TornBytes > 0 {
				sr.Corrupt = append(sr.Corrupt, CorruptRecord{Offset: sc.lastLineEnd, End: sc.size, Reason: ReasonUnterminate})
			}
		} else {
			sr.InFlightBytes = sc.size - sc.lastLineEnd
		}
		return sr, buf, nil
	}
	// Orphaned: everything after the last valid record is torn tail.
	sr.Records = sc.valid
	sr.TornBytes = sc.size - sc.lastValidEnd
	for _, c := range sc.corrupt {
		if c.Offset < sc.lastValidEnd {
			sr.Corrupt = append(sr.Corrupt, c)
		}
	}
	sr.Lines = sr.Records + int64(len(sr.Corrupt)) // what remains after repair
	if mode != modeRecover {
		return sr, buf, nil
	}
	if err := recoverOrphan(f, dir, &sr, sc.lastValidEnd, log, m); err != nil {
		return sr, buf, err
	}
	return sr, buf, nil
}

// recoverOrphan truncates, fsyncs and closes a locked orphaned segment.
func recoverOrphan(f *os.File, dir string, sr *SegmentReport, keep int64, log *slog.Logger, m *Metrics) error {
	if sr.TornBytes > 0 {
		if err := f.Truncate(keep); err != nil {
			return fmt.Errorf("truncate torn tail: %w", err)
		}
		m.recoveredTruncatedBytes.Add(float64(sr.TornBytes))
		log.Warn("spool recovery truncated a torn tail", "segment", sr.ID, "offset", keep, "bytes", sr.TornBytes)
	}
	if len(sr.Corrupt) > 0 {
		m.corruptRecords.Add(float64(len(sr.Corrupt)))
		for _, c := range sr.Corrupt {
			log.Warn("spool recovery found a corrupt record; left for quarantine",
				"segment", sr.ID, "offset", c.Offset, "end", c.End, "reason", c.Reason)
		}
	}
	start := time.Now()
	err := f.Sync()
	m.fsyncDuration.Observe(time.Since(start).Seconds())
	if err != nil {
		return fmt.Errorf("fsync: %w", err)
	}
	open := sr.Path
	if keep == 0 {
		err = os.Remove(open)
		sr.Path, sr.Removed = "", true
	} else {
		sr.Path = segmentPath(dir, sr.ID, true)
		err = os.Rename(open, sr.Path)
	}
	if err == nil {
		err = syncDir(segmentsDir(dir))
	}
	if err != nil {
		return fmt.Errorf("close orphaned segment: %w", err)
	}
	sr.Recovered = true
	m.recoveredSegments.Inc()
	log.Info("spool recovered an orphaned segment", "segment", sr.ID, "records", sr.Records,
		"corrupt", len(sr.Corrupt), "truncated_bytes", sr.TornBytes, "removed", sr.Removed)
	return nil
}

// fileScan is what one pass over a segment found.
type fileScan struct {
	size         int64
	lines        int64 // complete lines
	valid        int64 // valid records (verify only)
	lastLineEnd  int64 // offset after the last '\n'
	lastValidEnd int64 // offset after the last valid record (verify only)
	corrupt      []CorruptRecord
}

// scanReadBytes is the read size of a whole-file scan.
const scanReadBytes = 1 << 20

// scanFile reads a whole segment. Without verify it only counts lines, from
// the point given by from (lines and lastLineEnd) when it lies in the file.
func scanFile(f *os.File, verify bool, from fileScan, buf []byte) (fileScan, []byte, error) {
	var sc fileScan
	fi, err := f.Stat()
	if err != nil {
		return sc, buf, err
	}
	sc.size = fi.Size()
	if !verify {
		if from.lastLineEnd > sc.size {
			from = fileScan{}
		}
		if cap(buf) < scanReadBytes {
			buf = make([]byte, scanReadBytes)
		}
		buf = buf[:scanReadBytes]
		n, end, err := countLines(f, from.lastLineEnd, sc.size, buf)
		sc.lines, sc.lastLineEnd = from.lines+n, end
		return sc, buf, err
	}
	var entries []Entry
	for off := int64(0); off < sc.size; {
		var next int64
		entries, next, buf, err = readEntries(f, off, scanReadBytes, buf, false)
		if err != nil {
			return sc, buf, err
		}
		if next == off {
			break // only an unterminated line is left
		}
		for _, e := range entries {
			sc.lines++
			if e.Corrupt != "" {
				sc.corrupt = append(sc.corrupt, CorruptRecord{Offset: e.Offset, End: e.End, Reason: e.Corrupt})
				continue
			}
			sc.valid++
			sc.lastValidEnd = e.End
		}
		sc.lastLineEnd = next
		off = next
		entries = entries[:0]
	}
	return sc, buf, nil
}

// removeStaleTmp removes a segment left as .tmp by a writer that died while
// creating it. A .tmp file never holds records.
func removeStaleTmp(path string, log *slog.Logger) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || time.Since(fi.ModTime()) < staleTmpAge {
		return
	}
	if held, err := tryLock(f); err != nil || held {
		return
	}
	if err := os.Remove(path); err == nil {
		log.Info("spool recovery removed a stale temporary segment", "path", path)
	}
}

func removeStaleCommittedTmp(dir string, log *slog.Logger) {
	paths, _ := filepath.Glob(filepath.Join(dir, committedTmpPattern))
	for _, p := range paths {
		if fi, err := os.Stat(p); err == nil && time.Since(fi.ModTime()) >= staleTmpAge {
			if os.Remove(p) == nil {
				log.Info("spool recovery removed a stale temporary file", "path", p)
			}
		}
	}
}
