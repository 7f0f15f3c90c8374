package spool

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// pendingTracker estimates the records of a spool directory that are not yet
// committed to the warehouse: the lines of every segment minus the records
// committed.json says are committed. It scans only bytes it has not scanned
// before, so a refresh costs a directory read, a stat per open segment and a
// read of what was appended since the last refresh.
type pendingTracker struct {
	dir      string
	writerID string // prefix of the ids of the owning writer's segments

	mu        sync.Mutex // held for a whole refresh; never taken under Writer.mu
	counts    map[string]lineCount
	committed map[string]Committed
	stamp     fileStamp // of committed.json when it was last read
	buf       []byte

	snap atomic.Pointer[pendingSnap] // latest result, read lock-free by Append
}

type lineCount struct {
	scanned int64 // bytes [0, scanned) of the segment are counted
	lines   int64 // '\n' bytes in [0, scanned)
	closed  bool  // the segment was closed (immutable) when last seen
}

// ownMark is where the writer stood when a refresh began: its append count,
// its current segment and the bytes written to it. The refresh counts the
// writer's own records only up to that point and the writer adds those
// appended since, so its own records are counted exactly once.
type ownMark struct {
	appended int64
	segment  string
	size     int64
}

// pendingSnap is one refresh's result; own is ownMark.appended.
type pendingSnap struct {
	pending int64
	own     int64
	at      time.Time
}

type fileStamp struct {
	ino     uint64
	size    int64
	modTime time.Time
}

func newPendingTracker(dir, writerID string) *pendingTracker {
	p := &pendingTracker{dir: dir, writerID: writerID, counts: map[string]lineCount{}, committed: map[string]Committed{}}
	p.snap.Store(&pendingSnap{})
	return p
}

// estimate is the current estimate given the writer's own append count.
func (p *pendingTracker) estimate(own int64) int64 {
	s := p.snap.Load()
	return s.pending + own - s.own
}

// refresh recomputes pending from the filesystem unless another refresh
// finished less than minAge ago (callers racing to refresh share one).
func (p *pendingTracker) refresh(own func() ownMark, minAge time.Duration) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if s := p.snap.Load(); !s.at.IsZero() && time.Since(s.at) < minAge {
		return nil
	}
	mark := own()
	start := time.Now()
	des, err := os.ReadDir(segmentsDir(p.dir))
	if err != nil && !isNotExist(err) {
		return fmt.Errorf("pending: %w", err)
	}
	if err := p.loadCommitted(); err != nil {
		return err
	}
	var total int64
	live := make(map[string]bool, len(des))
	for _, de := range des {
		id, ext, ok := splitSegmentName(de.Name())
		if !ok || ext == tmpExt || live[id] {
			continue
		}
		mine := strings.HasPrefix(id, p.writerID)
		if mine && id > mark.segment {
			continue // created after the mark: all its records are counted by the writer
		}
		lc, known := p.counts[id]
		closed := ext == closedExt
		if !(closed && known && lc.closed) {
			// Closed segments do not change: stat only the others.
			info, err := statSegment(p.dir, id, closed)
			if err != nil {
				if isNotExist(err) {
					continue // deleted meanwhile
				}
				return fmt.Errorf("pending: %w", err)
			}
			// The writer's current segment is counted up to the mark; the
			// rest came after it and the writer counts that itself. A
			// segment cut short here is not taken as closed even if it was
			// closed meanwhile: the next refresh, whose mark is past it, must
			// count its end.
			limited := false
			if mine && id == mark.segment && info.Size > mark.size {
				info.Size, limited = mark.size, true
			}
			if !known || info.Size < lc.scanned {
				// New to us, or truncated by recovery: start at the committed
				// point, which the uploader counted for us.
				c := p.committed[id]
				lc = lineCount{scanned: min(c.Offset, info.Size), lines: c.Records}
			}
			if info.Size > lc.scanned {
				n, err := p.countLines(info.Path, id, lc.scanned, info.Size)
				if err != nil {
					if isNotExist(err) {
						continue
					}
					return err
				}
				lc.lines += n
				lc.scanned = info.Size
			}
			lc.closed = info.Closed && !limited
		}
		live[id] = true
		p.counts[id] = lc
		c := p.committed[id]
		if d := lc.lines - c.Records; d > 0 && !(lc.closed && c.Offset >= lc.scanned) {
			total += d
		}
	}
	for id := range p.counts {
		if !live[id] {
			delete(p.counts, id)
		}
	}
	p.snap.Store(&pendingSnap{pending: total, own: mark.appended, at: start})
	return nil
}

// countLines counts '\n' bytes in [from, to) of a segment, following a
// rename to .seg.
func (p *pendingTracker) countLines(path, id string, from, to int64) (int64, error) {
	f, err := os.Open(path)
	if err != nil && isNotExist(err) {
		f, err = os.Open(segmentPath(p.dir, id, true))
	}
	if err != nil {
		return 0, err
	}
	defer f.Close()
	if p.buf == nil {
		p.buf = make([]byte, 64<<10)
	}
	n, _, err := countLines(f, from, to, p.buf)
	if err != nil {
		return 0, fmt.Errorf("count lines: %w", err)
	}
	return n, nil
}

// countLines counts the '\n' bytes in [from, to) of f and returns the offset
// after the last one (from when there is none). A file shorter than to (it
// was truncated meanwhile) is counted to its end.
func countLines(f *os.File, from, to int64, buf []byte) (lines, lastLineEnd int64, err error) {
	lastLineEnd = from
	for off := from; off < to; {
		m, err := f.ReadAt(buf[:min(int64(len(buf)), to-off)], off)
		if i := bytes.LastIndexByte(buf[:m], '\n'); i >= 0 {
			lastLineEnd = off + int64(i) + 1
		}
		lines += int64(bytes.Count(buf[:m], []byte{'\n'}))
		off += int64(m)
		if err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return 0, 0, err
		}
	}
	return lines, lastLineEnd, nil
}

// loadCommitted re-reads committed.json when it changed (it is replaced by
// rename, so a new inode or mtime means new content).
func (p *pendingTracker) loadCommitted() error {
	path := filepath.Join(p.dir, committedFile)
	fi, err := os.Stat(path)
	if err != nil {
		if isNotExist(err) {
			p.committed, p.stamp = map[string]Committed{}, fileStamp{}
			return nil
		}
		return fmt.Errorf("pending: %w", err)
	}
	st := fileStamp{ino: inode(fi), size: fi.Size(), modTime: fi.ModTime()}
	if st == p.stamp {
		return nil
	}
	c, err := ReadCommitted(p.dir)
	if err != nil {
		return fmt.Errorf("pending: %w", err)
	}
	p.committed, p.stamp = c, st
	return nil
}
