package spool

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// SegmentInfo describes one segment file.
type SegmentInfo struct {
	ID     string // stable id, the same before and after close: <writer ULID>-<6-digit sequence>
	Path   string // current path (<dir>/segments/<ID>.open or .seg)
	Closed bool   // closed by its writer or by recovery: no more appends will come
	Size   int64
}

// ListSegments lists the open and closed segments of a spool directory,
// sorted by ID, which is creation order per writer and roughly creation time
// across writers. A directory without segments yields an empty list.
//
// A segment renamed from .open to .seg while the directory is read is listed
// once, as closed. One that is deleted meanwhile is left out.
func ListSegments(dir string) ([]SegmentInfo, error) {
	des, err := os.ReadDir(segmentsDir(dir))
	if err != nil {
		if isNotExist(err) {
			if _, serr := os.Stat(dir); serr != nil {
				return nil, fmt.Errorf("list segments: %w", serr)
			}
			return nil, nil
		}
		return nil, fmt.Errorf("list segments: %w", err)
	}
	segs := make([]SegmentInfo, 0, len(des))
	for _, de := range des {
		id, ext, ok := splitSegmentName(de.Name())
		if !ok || ext == tmpExt {
			continue
		}
		info, err := statSegment(dir, id, ext == closedExt)
		if err != nil {
			if isNotExist(err) {
				continue // deleted meanwhile
			}
			return nil, fmt.Errorf("list segments: %w", err)
		}
		segs = append(segs, info)
	}
	slices.SortFunc(segs, func(a, b SegmentInfo) int {
		if c := cmp.Compare(a.ID, b.ID); c != 0 {
			return c
		}
		// The same id seen as .open and .seg: the rename happened while we
		// read; closed sorts first and the duplicate is dropped below.
		if a.Closed == b.Closed {
			return 0
		}
		if a.Closed {
			return -1
		}
		return 1
	})
	return slices.CompactFunc(segs, func(a, b SegmentInfo) bool { return a.ID == b.ID }), nil
}

// statSegment stats a segment by id, following an .open -> .seg rename that
// may happen at any moment.
func statSegment(dir, id string, closed bool) (SegmentInfo, error) {
	path := segmentPath(dir, id, closed)
	fi, err := os.Stat(path)
	if err != nil && !closed && isNotExist(err) {
		closed, path = true, segmentPath(dir, id, true)
		fi, err = os.Stat(path)
	}
	if err != nil {
		return SegmentInfo{}, err
	}
	return SegmentInfo{ID: id, Path: path, Closed: closed, Size: fi.Size()}, nil
}

func segmentPath(dir, id string, closed bool) string {
	ext := openExt
	if closed {
		ext = closedExt
	}
	return filepath.Join(segmentsDir(dir), id+ext)
}

// Entry is one record (one line) read by ReadSegment.
type Entry struct {
	Offset  int64  // byte offset where the record's line starts
	End     int64  // byte offset just after its '\n'
	Kind    string // the record's kind; empty when Corrupt
	Payload []byte // the record's payload; valid until the next ReadSegment call with the same buf
	Corrupt string // non-empty when the line failed its check: the reason; Payload nil, Raw set
	Raw     []byte // the whole line without '\n' (always set); same lifetime as Payload
}

// DefaultReadBytes is the read size ReadSegment uses when maxBytes <= 0.
const DefaultReadBytes = 1 << 20

// ReadSegment reads the complete records of the segment at path from byte
// offset off on, until EOF or until about maxBytes of lines were read (at
// least one record when one is complete, however long). next is the offset
// to continue from.
//
// A last line without its '\n' is not returned while the segment is open: its
// writer may be in the middle of writing it, so next stops before it. In a
// closed segment (a .seg path, or an .open path that was renamed to .seg,
// which ReadSegment follows) nothing will complete it, so it is returned as
// an Entry with Corrupt set to ReasonUnterminate.
//
// Complete lines that fail the integrity check are returned with Corrupt set;
// the caller quarantines them. buf is reused when large enough; entries point
// into it.
func ReadSegment(path string, off int64, maxBytes int, buf []byte) (entries []Entry, next int64, err error) {
	if off < 0 {
		return nil, off, fmt.Errorf("read segment: negative offset %d", off)
	}
	if maxBytes <= 0 {
		maxBytes = DefaultReadBytes
	}
	closed := strings.HasSuffix(path, closedExt)
	f, err := os.Open(path)
	if err != nil && isNotExist(err) && strings.HasSuffix(path, openExt) {
		path = strings.TrimSuffix(path, openExt) + closedExt
		closed = true
		f, err = os.Open(path)
	}
	if err != nil {
		return nil, off, fmt.Errorf("read segment: %w", err)
	}
	defer f.Close()
	entries, next, _, err = readEntries(f, off, maxBytes, buf, closed)
	if err != nil {
		return nil, off, fmt.Errorf("read segment %s: %w", path, err)
	}
	return entries, next, nil
}

// readEntries is ReadSegment on an open file. It also returns the buffer it
// used, so a caller reading a whole file reuses a grown buffer.
func readEntries(f *os.File, off int64, maxBytes int, buf []byte, closed bool) (entries []Entry, next int64, _ []byte, err error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, off, buf, err
	}
	size := fi.Size()
	if off >= size {
		return nil, off, buf, nil
	}
	// Read up to maxBytes of what is there (so tailing a few new bytes does
	// not allocate maxBytes), more only while not even one line is complete.
	limit := int(min(int64(maxBytes), size-off))
	if cap(buf) < limit {
		buf = make([]byte, limit)
	}
	buf = buf[:cap(buf)]
	n, eof := 0, false
	for {
		m, rerr := f.ReadAt(buf[n:limit], off+int64(n))
		n += m
		if rerr != nil && !errors.Is(rerr, io.EOF) {
			return nil, off, buf, rerr
		}
		// The end as of the stat above; a closed segment does not grow.
		eof = rerr != nil || off+int64(n) >= size
		if eof || bytes.IndexByte(buf[n-m:n], '\n') >= 0 {
			break
		}
		buf = slices.Grow(buf[:n], n)[:2*n] // one line longer than buf
		limit = len(buf)
	}
	data := buf[:n]
	lastNL := bytes.LastIndexByte(data, '\n')
	last := lastNL
	if n > maxBytes && last >= 0 {
		last = bytes.IndexByte(data, '\n') // a line longer than maxBytes comes alone
	}
	entries = splitEntries(data, off, last, entries)
	next = off + int64(last+1)
	if eof && closed && last == lastNL && last < n-1 {
		// Nothing will complete the last line of a closed segment: report
		// it as one corrupt entry.
		entries = append(entries, Entry{Offset: next, End: off + int64(n), Corrupt: ReasonUnterminate, Raw: data[last+1:]})
		next = off + int64(n)
	}
	return entries, next, buf, nil
}

// splitEntries appends one Entry per complete line of b[:last+1] (b starts at
// file offset base).
func splitEntries(b []byte, base int64, last int, entries []Entry) []Entry {
	if last < 0 {
		return entries
	}
	b = b[:last+1]
	if entries == nil {
		entries = make([]Entry, 0, bytes.Count(b, []byte{'\n'}))
	}
	var prevKind string
	pos := 0
	for pos < len(b) {
		i := bytes.IndexByte(b[pos:], '\n')
		line := b[pos : pos+i]
		e := Entry{Offset: base + int64(pos), End: base + int64(pos+i+1), Raw: line}
		kind, payload, reason := parseRecord(line)
		if reason != "" {
			e.Corrupt = reason
		} else {
			if string(kind) != prevKind { // no allocation for repeated kinds
				prevKind = string(kind)
			}
			e.Kind, e.Payload = prevKind, payload
		}
		entries = append(entries, e)
		pos += i + 1
	}
	return entries
}

func sortReports(rs []SegmentReport) {
	slices.SortFunc(rs, func(a, b SegmentReport) int { return cmp.Compare(a.ID, b.ID) })
}
