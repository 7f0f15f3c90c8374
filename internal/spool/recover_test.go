package spool

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// testID is the id of hand-made segments.
const testID = "01JD0000000000000000000000-000001"

// fixture is a segment of n valid records with their line boundaries.
type fixture struct {
	data         []byte
	starts, ends []int
	payloads     [][]byte
}

func newFixture(n int) fixture {
	var fx fixture
	for i := 0; i < n; i++ {
		p := testPayload(0, i, 3*i)
		fx.starts = append(fx.starts, len(fx.data))
		fx.data = appendRecord(fx.data, "event", p)
		fx.ends = append(fx.ends, len(fx.data))
		fx.payloads = append(fx.payloads, p)
	}
	return fx
}

// line returns a copy of record i's line including '\n'.
func (fx fixture) line(i int) []byte { return slices.Clone(fx.data[fx.starts[i]:fx.ends[i]]) }

// lines joins copies of the given parts.
func lines(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func writeSegment(t testing.TB, dir, name string, data []byte) string {
	t.Helper()
	if err := os.MkdirAll(segmentsDir(dir), dirPerm); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(segmentsDir(dir), name)
	if err := os.WriteFile(path, data, filePerm); err != nil {
		t.Fatal(err)
	}
	return path
}

// flip returns a copy of b with bit bit of byte i flipped.
func flip(b []byte, i int, bit uint) []byte {
	b = slices.Clone(b)
	b[i] ^= 1 << bit
	return b
}

// TestRecoverFaults damages an orphaned segment in every way we know and
// asserts exactly which records survive Recover and which ReadSegment then
// reports as corrupt (in the style of Prometheus' TestWALRepair).
func TestRecoverFaults(t *testing.T) {
	t.Parallel()
	fx := newFixture(5)
	r := fx.line
	type want struct {
		survive []int    // payload indexes of the valid records left, in order
		corrupt []string // reasons of the corrupt lines left in place, in order
		torn    int      // bytes truncated
		removed bool     // no valid record left: the segment is removed
	}
	all := []int{0, 1, 2, 3, 4}
	tests := map[string]struct {
		data []byte
		want want
	}{
		"clean":                    {fx.data, want{survive: all}},
		"empty file":               {nil, want{removed: true}},
		"trailing zeros":           {lines(fx.data, make([]byte, 64)), want{survive: all, torn: 64}},
		"zeros over last record":   {lines(fx.data[:fx.starts[4]], make([]byte, len(r(4)))), want{survive: all[:4], torn: len(r(4))}},
		"zero line at end":         {lines(fx.data[:fx.starts[4]], make([]byte, 10), []byte("\n")), want{survive: all[:4], torn: 11}},
		"zero line in middle":      {lines(r(0), r(1), make([]byte, 10), []byte("\n"), r(3), r(4)), want{survive: []int{0, 1, 3, 4}, corrupt: []string{ReasonShort}}},
		"zeros over middle record": {lines(r(0), r(1), make([]byte, len(r(2))-1), []byte("\n"), r(3), r(4)), want{survive: []int{0, 1, 3, 4}, corrupt: []string{ReasonPrefix}}},
		"bit flip in payload":      {lines(r(0), r(1), flip(r(2), len(r(2))-5, 0), r(3), r(4)), want{survive: []int{0, 1, 3, 4}, corrupt: []string{ReasonChecksum}}},
		"bit flip in crc to hex":   {lines(r(0), r(1), flip(r(2), 8, 0), r(3), r(4)), want{survive: []int{0, 1, 3, 4}, corrupt: []string{ReasonChecksum}}},
		"bit flip in crc to non-hex": {
			lines(r(0), r(1), flip(r(2), 8, 6), r(3), r(4)), want{survive: []int{0, 1, 3, 4}, corrupt: []string{ReasonCRCField}}},
		"bit flip in kind":        {lines(r(0), r(1), flip(r(2), crcPrefixLen+len(recKindStart), 1), r(3), r(4)), want{survive: []int{0, 1, 3, 4}, corrupt: []string{ReasonChecksum}}},
		"bit flip in prefix":      {lines(r(0), r(1), flip(r(2), 2, 0), r(3), r(4)), want{survive: []int{0, 1, 3, 4}, corrupt: []string{ReasonPrefix}}},
		"newline lost in middle":  {lines(r(0), r(1), flip(r(2), len(r(2))-1, 1), r(3), r(4)), want{survive: []int{0, 1, 4}, corrupt: []string{ReasonChecksum}}},
		"newline lost at end":     {lines(fx.data[:fx.ends[4]-1]), want{survive: all[:4], torn: len(r(4)) - 1}},
		"bit flip in last record": {lines(fx.data[:fx.starts[4]], flip(r(4), 30, 3)), want{survive: all[:4], torn: len(r(4))}},
		"two bad last records":    {lines(fx.data[:fx.starts[3]], flip(r(3), 30, 3), flip(r(4), 30, 3)), want{survive: all[:3], torn: len(r(3)) + len(r(4))}},
		"empty line in middle":    {lines(r(0), r(1), []byte("\n"), r(2), r(3), r(4)), want{survive: all, corrupt: []string{ReasonEmptyLine}}},
		"empty lines at end":      {lines(fx.data, []byte("\n\n")), want{survive: all, torn: 2}},
		"partial record in middle": {lines(r(0), r(1), r(2)[:20], []byte("\n"), r(3), r(4)),
			want{survive: []int{0, 1, 3, 4}, corrupt: []string{ReasonShort}}},
		"long partial record in middle": {lines(r(0), r(1), r(2)[:len(r(2))-3], []byte("\n"), r(3), r(4)),
			want{survive: []int{0, 1, 3, 4}, corrupt: []string{ReasonChecksum}}},
		"partial record at end":         {lines(fx.data, r(0)[:25]), want{survive: all, torn: 25}},
		"corrupt middle then torn tail": {lines(r(0), flip(r(1), 40, 2), r(2), r(3)[:30]), want{survive: []int{0, 2}, corrupt: []string{ReasonChecksum}, torn: 30}},
		"garbage only":                  {[]byte("garbage without newline"), want{removed: true, torn: 23}},
		"corrupt lines only":            {lines(flip(r(0), 30, 0), []byte("\n"), []byte("x\n")), want{removed: true, torn: len(r(0)) + 3}},
		"record after garbage":          {lines([]byte("garbage\n"), r(0)), want{survive: []int{0}, corrupt: []string{ReasonShort}}},
	}
	// A torn tail at every byte offset of the last two records.
	for cut := fx.starts[3]; cut < len(fx.data); cut++ {
		w := want{survive: all[:3], torn: cut - fx.starts[3]}
		if cut >= fx.ends[3] {
			w = want{survive: all[:4], torn: cut - fx.ends[3]}
		}
		tests[fmt.Sprintf("torn at %d", cut)] = struct {
			data []byte
			want want
		}{fx.data[:cut], w}
	}

	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			writeSegment(t, dir, testID+openExt, tc.data)

			// Verify predicts what Recover will do and changes nothing.
			vrep, err := Verify(dir)
			if err != nil {
				t.Fatal(err)
			}
			if got, _ := os.ReadFile(segmentPath(dir, testID, false)); !bytes.Equal(got, tc.data) {
				t.Fatal("Verify changed the segment")
			}
			m := NewMetrics(nil)
			rep, err := Recover(dir, nil, m)
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Segments) != 1 || len(vrep.Segments) != 1 {
				t.Fatalf("reports: %+v / %+v", rep, vrep)
			}
			sr := rep.Segments[0]
			if !sr.Orphaned || !sr.Recovered || sr.Removed != tc.want.removed || sr.TornBytes != int64(tc.want.torn) ||
				sr.Records != int64(len(tc.want.survive)) || len(sr.Corrupt) != len(tc.want.corrupt) {
				t.Fatalf("Recover report %+v, want %+v", sr, tc.want)
			}
			vs := vrep.Segments[0]
			if !vs.Orphaned || vs.Recovered || vs.TornBytes != sr.TornBytes || vs.Records != sr.Records || !slices.Equal(vs.Corrupt, sr.Corrupt) {
				t.Fatalf("Verify report %+v differs from Recover's %+v", vs, sr)
			}
			if got := metricValue(t, m.recoveredTruncatedBytes); got != float64(tc.want.torn) {
				t.Errorf("recovered_truncated_bytes_total = %v, want %d", got, tc.want.torn)
			}
			if got := metricValue(t, m.corruptRecords); got != float64(len(tc.want.corrupt)) {
				t.Errorf("corrupt_records_total = %v, want %d", got, len(tc.want.corrupt))
			}

			files := segFiles(t, dir)
			if tc.want.removed {
				if len(files) != 0 {
					t.Fatalf("segment not removed: %v", files)
				}
				return
			}
			if len(files) != 1 || files[0] != testID+closedExt {
				t.Fatalf("files after Recover: %v", files)
			}
			got, _ := os.ReadFile(segmentPath(dir, testID, true))
			if want := tc.data[:len(tc.data)-tc.want.torn]; !bytes.Equal(got, want) {
				t.Fatalf("after Recover the segment is\n%q\nwant the prefix\n%q", got, want)
			}
			var survive []int
			var corrupt []string
			for _, e := range readSegmentAll(t, segmentPath(dir, testID, true)) {
				if e.Corrupt != "" {
					if e.Payload != nil || e.Kind != "" || !bytes.Equal(e.Raw, got[e.Offset:e.End-1]) {
						t.Errorf("corrupt entry %+v", e)
					}
					corrupt = append(corrupt, e.Corrupt)
					continue
				}
				i := slices.IndexFunc(fx.payloads, func(p []byte) bool { return bytes.Equal(p, e.Payload) })
				if i < 0 || e.Kind != "event" {
					t.Fatalf("unknown record %q", e.Raw)
				}
				survive = append(survive, i)
			}
			if !slices.Equal(survive, tc.want.survive) || !slices.Equal(corrupt, tc.want.corrupt) {
				t.Fatalf("survivors %v corrupt %q, want %v %q", survive, corrupt, tc.want.survive, tc.want.corrupt)
			}
			// A second pass finds nothing more to do, and the result verifies
			// with only the corruption left in the middle.
			rep2, err := Recover(dir, nil, nil)
			if err != nil || rep2.Recovered != 0 || rep2.Orphaned != 0 {
				t.Fatalf("second Recover = %+v, %v", rep2, err)
			}
			v2, err := Verify(dir)
			if err != nil || v2.TornBytes != 0 || v2.Corrupt != int64(len(tc.want.corrupt)) || v2.Records != int64(len(tc.want.survive)) {
				t.Fatalf("Verify after Recover = %+v, %v", v2, err)
			}
		})
	}
}

func TestRecoverSkipsLiveWriter(t *testing.T) {
	t.Parallel()
	w, dir := setup(t, Options{})
	for i := 0; i < 3; i++ {
		if err := w.Append("event", testPayload(0, i, 0)); err != nil {
			t.Fatal(err)
		}
	}
	// A record being written right now: incomplete, as a reader may see it.
	path := segmentPath(dir, w.SegmentID(), false)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"crc":"0000`)
	f.Close()
	before, _ := os.ReadFile(path)

	// Another writer's Open runs Recover too.
	_, _ = setup(t, Options{Dir: dir})
	rep, err := Recover(dir, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range rep.Segments {
		if s.Orphaned || s.Recovered {
			t.Fatalf("live segment treated as orphaned: %+v", s)
		}
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Fatal("Recover changed a live writer's segment")
	}
	st, err := Stat(dir)
	if err != nil || st.Orphaned != 0 || st.Records != 3 || st.Segments[0].InFlightBytes != 12 && st.Segments[1].InFlightBytes != 12 {
		t.Fatalf("Stat = %+v, %v", st, err)
	}
}

// TestRecoverOtherProcess: a segment whose writer process is alive is left
// alone; once the process is killed, the segment is recovered.
func TestRecoverOtherProcess(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cmd := helperCmd(t, "hold", dir, "")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	id := strings.TrimSpace(line)

	rep, err := Recover(dir, nil, nil)
	if err != nil || len(rep.Segments) != 1 || rep.Segments[0].ID != id || rep.Segments[0].Orphaned || rep.Recovered != 0 {
		t.Fatalf("Recover with a live writer process = %+v, %v", rep, err)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	st, err := Stat(dir)
	if err != nil || st.Orphaned != 1 {
		t.Fatalf("Stat after kill = %+v, %v", st, err)
	}
	rep, err = Recover(dir, nil, nil)
	if err != nil || rep.Recovered != 1 || rep.Records != 1 || !rep.Segments[0].Orphaned {
		t.Fatalf("Recover after kill = %+v, %v", rep, err)
	}
	if segs, _ := ListSegments(dir); len(segs) != 1 || !segs[0].Closed || segs[0].ID != id {
		t.Fatalf("segments = %+v", segs)
	}
}

func TestStatVerifyReport(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	fx := newFixture(3)
	closedID := "01JD0000000000000000000000-000001"
	orphanID := "01JD0000000000000000000001-000001"
	// Closed segment with a corrupt record in the middle and one unterminated at the end.
	closedData := lines(fx.line(0), flip(fx.line(1), 40, 0), fx.line(2), fx.line(0)[:9])
	writeSegment(t, dir, closedID+closedExt, closedData)
	// Orphaned open segment with a torn tail.
	writeSegment(t, dir, orphanID+openExt, lines(fx.line(0), fx.line(1)[:10]))
	// A live writer with two records.
	w, _ := setup(t, Options{Dir: dir})
	// Open recovered the orphan: put it back.
	writeSegment(t, dir, orphanID+openExt, lines(fx.line(0), fx.line(1)[:10]))
	os.Remove(segmentPath(dir, orphanID, true))
	w.Append("event", testPayload(0, 0, 0))
	w.Append("event", testPayload(0, 1, 0))
	if err := PublishCommitted(dir, map[string]Committed{closedID: {Offset: int64(fx.ends[0]), Records: 1}}); err != nil {
		t.Fatal(err)
	}

	st, err := Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Segments) != 3 || st.Orphaned != 1 || st.Records != 3+1+2 || st.Pending != (3-1)+1+2 || st.Corrupt != 0 {
		t.Fatalf("Stat = %+v", st)
	}
	v, err := Verify(dir)
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]SegmentReport{}
	for _, s := range v.Segments {
		byID[s.ID] = s
	}
	c := byID[closedID]
	wantCorrupt := []CorruptRecord{
		{Offset: int64(fx.ends[0]), End: int64(fx.ends[1]), Reason: ReasonChecksum},
		{Offset: int64(fx.ends[2]), End: int64(len(closedData)), Reason: ReasonUnterminate},
	}
	if !c.Closed || c.Records != 2 || c.TornBytes != 9 || !slices.Equal(c.Corrupt, wantCorrupt) || c.Committed.Records != 1 {
		t.Fatalf("closed segment: %+v", c)
	}
	o := byID[orphanID]
	if !o.Orphaned || o.Records != 1 || o.TornBytes != 10 || len(o.Corrupt) != 0 {
		t.Fatalf("orphaned segment: %+v", o)
	}
	l := byID[w.SegmentID()]
	if l.Orphaned || l.Closed || l.Records != 2 || l.TornBytes != 0 {
		t.Fatalf("live segment: %+v", l)
	}
	if v.Corrupt != 2 || v.TornBytes != 19 || v.Records != 5 {
		t.Fatalf("Verify totals = %+v", v)
	}
	// ReadSegment reports the closed segment's unterminated tail as corrupt.
	es := readSegmentAll(t, segmentPath(dir, closedID, true))
	if len(es) != 4 || es[3].Corrupt != ReasonUnterminate || string(es[3].Raw) != string(fx.line(0)[:9]) {
		t.Fatalf("closed segment entries: %+v", es)
	}
}

func TestRecoverStaleTemporaryFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	old := time.Now().Add(-2 * staleTmpAge)
	stale := writeSegment(t, dir, "01JD0000000000000000000000-000001"+tmpExt, nil)
	fresh := writeSegment(t, dir, "01JD0000000000000000000000-000002"+tmpExt, nil)
	staleCommitted := filepath.Join(dir, "committed-123.tmp")
	os.WriteFile(staleCommitted, []byte("{"), filePerm)
	for _, p := range []string{stale, staleCommitted} {
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := Recover(dir, nil, nil); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]bool{stale: false, staleCommitted: false, fresh: true} {
		if _, err := os.Stat(p); (err == nil) != want {
			t.Errorf("%s exists=%v, want %v", p, err == nil, want)
		}
	}
}

func TestReadSegmentLongLine(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	big := testPayload(0, 0, 10000)
	data := lines(appendRecord(nil, "event", big), appendRecord(nil, "event", []byte(`{}`)))
	path := writeSegment(t, dir, testID+openExt, data)
	es, next, err := ReadSegment(path, 0, 100, nil)
	if err != nil || len(es) != 1 || !bytes.Equal(es[0].Payload, big) || next != es[0].End {
		t.Fatalf("ReadSegment = %d entries, next %d, %v", len(es), next, err)
	}
	es, next, err = ReadSegment(path, next, 100, make([]byte, 10))
	if err != nil || len(es) != 1 || string(es[0].Payload) != `{}` || next != int64(len(data)) {
		t.Fatalf("second ReadSegment = %+v, next %d, %v", es, next, err)
	}
	if es, next2, err := ReadSegment(path, next, 100, nil); err != nil || len(es) != 0 || next2 != next {
		t.Fatalf("ReadSegment at EOF = %+v %d %v", es, next2, err)
	}
	if _, _, err := ReadSegment(filepath.Join(dir, "missing.open"), 0, 0, nil); err == nil {
		t.Fatal("ReadSegment of a missing file succeeded")
	}
}

// naiveLastValid splits data into lines and returns the end of the last
// valid record and every valid payload before it.
func naiveLastValid(data []byte) (end int, payloads [][]byte) {
	pos := 0
	for {
		i := bytes.IndexByte(data[pos:], '\n')
		if i < 0 {
			return end, payloads
		}
		if _, p, reason := parseRecord(data[pos : pos+i]); reason == "" {
			end = pos + i + 1
			payloads = append(payloads, p)
		}
		pos += i + 1
	}
}

func fuzzSeeds(f *testing.F) {
	fx := newFixture(3)
	f.Add(fx.data)
	f.Add(fx.data[:len(fx.data)-7])
	f.Add(lines(fx.data, make([]byte, 20)))
	f.Add(lines(fx.line(0), []byte("\n"), flip(fx.line(1), 33, 2), fx.line(2)))
	f.Add([]byte{})
	f.Add([]byte("\n\n\n"))
	f.Add([]byte(`{"crc":"00000000","kind":"event","data":{}}` + "\n"))
}

// FuzzReadSegment: arbitrary bytes as an open or closed segment never panic
// ReadSegment; entries tile the file; valid entries re-encode to their line.
func FuzzReadSegment(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		for _, ext := range []string{openExt, closedExt} {
			path := writeSegment(t, dir, testID+ext, data)
			var off int64
			var buf []byte
			maxBytes := 1 + len(data)%61
			for {
				es, next, err := ReadSegment(path, off, maxBytes, buf)
				if err != nil {
					t.Fatal(err)
				}
				for _, e := range es {
					if e.Offset != off || e.End <= e.Offset || e.End > int64(len(data)) {
						t.Fatalf("%s: entry [%d,%d) does not follow %d", ext, e.Offset, e.End, off)
					}
					line := data[e.Offset:e.End]
					if line[len(line)-1] == '\n' {
						line = line[:len(line)-1]
					} else if ext != closedExt || e.Corrupt != ReasonUnterminate {
						t.Fatalf("%s: entry without newline: %+v", ext, e)
					}
					if !bytes.Equal(e.Raw, line) {
						t.Fatalf("Raw %q, line %q", e.Raw, line)
					}
					if e.Corrupt == "" {
						if re := appendRecord(nil, e.Kind, e.Payload); !bytes.Equal(re[:len(re)-1], line) {
							t.Fatalf("valid entry %q re-encodes to %q", line, re)
						}
					} else if e.Payload != nil {
						t.Fatalf("corrupt entry with payload: %+v", e)
					}
					off = e.End
				}
				if next != off {
					t.Fatalf("next %d, last entry ends at %d", next, off)
				}
				if len(es) == 0 {
					break
				}
			}
			want := int64(bytes.LastIndexByte(data, '\n') + 1)
			if ext == closedExt {
				want = int64(len(data))
			}
			if off != want {
				t.Fatalf("%s: read up to %d, want %d", ext, off, want)
			}
			os.Remove(path)
		}
	})
}

// FuzzRecover: Recover of arbitrary bytes as an orphaned segment keeps
// exactly the prefix up to the last valid record, and the result verifies
// clean.
func FuzzRecover(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		writeSegment(t, dir, testID+openExt, data)
		rep, err := Recover(dir, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		end, payloads := naiveLastValid(data)
		if rep.TornBytes != int64(len(data)-end) || rep.Records != int64(len(payloads)) {
			t.Fatalf("Recover report %+v, want torn %d records %d", rep, len(data)-end, len(payloads))
		}
		if end == 0 {
			if files := segFiles(t, dir); len(files) != 0 {
				t.Fatalf("no valid record but files %v remain", files)
			}
			return
		}
		got, err := os.ReadFile(segmentPath(dir, testID, true))
		if err != nil || !bytes.Equal(got, data[:end]) {
			t.Fatalf("recovered segment %q, want %q (%v)", got, data[:end], err)
		}
		v, err := Verify(dir)
		if err != nil || v.TornBytes != 0 || v.Orphaned != 0 || v.Records != int64(len(payloads)) {
			t.Fatalf("Verify after Recover = %+v, %v", v, err)
		}
		var valid [][]byte
		for _, e := range readSegmentAll(t, segmentPath(dir, testID, true)) {
			if e.Corrupt == "" {
				valid = append(valid, e.Payload)
			}
		}
		if !slices.EqualFunc(valid, payloads, bytes.Equal) {
			t.Fatalf("valid records %q, want %q", valid, payloads)
		}
	})
}

// TestRecoverRacesWriters: Recover running in a loop while writers in this
// process rotate quickly never takes a live, closing or new segment for an
// orphan, and nothing is lost.
func TestRecoverRacesWriters(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	const writers, each = 3, 400
	done := make(chan struct{})
	recovered := make(chan int, 1)
	go func() {
		n := 0
		for {
			select {
			case <-done:
				recovered <- n
				return
			default:
			}
			rep, err := Recover(dir, nil, nil)
			if err != nil {
				t.Error(err)
			}
			n += rep.Recovered
		}
	}()
	errs := make(chan error, writers)
	for c := range writers {
		go func() {
			w, err := Open(Options{Dir: dir, SegmentMaxBytes: 600, Durability: Durability(c % 2)})
			if err != nil {
				errs <- err
				return
			}
			for i := range each {
				if err := w.Append("event", testPayload(c, i, 10)); err != nil {
					errs <- err
					return
				}
			}
			errs <- w.Close()
		}()
	}
	for range writers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	close(done)
	if n := <-recovered; n != 0 {
		t.Fatalf("Recover took %d live segments for orphans", n)
	}
	recs, corrupt := readAll(t, dir)
	if len(recs) != writers*each || len(corrupt) != 0 {
		t.Fatalf("%d records, %d corrupt", len(recs), len(corrupt))
	}
}

func TestReadSegmentAllocatesWhatIsThere(t *testing.T) {
	dir := t.TempDir()
	path := writeSegment(t, dir, testID+openExt, newFixture(3).data)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	es, _, err := ReadSegment(path, 0, 64<<20, nil)
	runtime.ReadMemStats(&after)
	if err != nil || len(es) != 3 {
		t.Fatalf("ReadSegment = %d entries, %v", len(es), err)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 1<<20 {
		t.Fatalf("reading a %d-byte segment with maxBytes 64 MiB allocated %d bytes", len(newFixture(3).data), got)
	}
}

func TestRecoverWithBadCommittedState(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	fx := newFixture(2)
	writeSegment(t, dir, testID+openExt, lines(fx.data, []byte("torn")))
	if err := os.WriteFile(filepath.Join(dir, committedFile), []byte("{not json"), filePerm); err != nil {
		t.Fatal(err)
	}
	rep, err := Recover(dir, nil, nil)
	if err != nil || rep.Recovered != 1 || rep.TornBytes != 4 {
		t.Fatalf("Recover with a bad committed.json = %+v, %v", rep, err)
	}
	st, err := Stat(dir)
	if err == nil || !strings.Contains(err.Error(), committedFile) || len(st.Segments) != 1 || st.Records != 2 {
		t.Fatalf("Stat with a bad committed.json = %+v, %v", st, err)
	}
	w, err := Open(Options{Dir: dir})
	if err != nil {
		t.Fatalf("Open with a bad committed.json: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}
