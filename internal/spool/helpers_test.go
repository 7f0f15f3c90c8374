package spool

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// Child processes: the test binary re-executed with helperEnv set runs one
// of the helpers below instead of the tests (the standard Go helper-process
// pattern).
const (
	helperEnv    = "SPOOL_TEST_HELPER"
	helperDirEnv = "SPOOL_TEST_DIR"
	helperArgEnv = "SPOOL_TEST_ARG"
)

func TestMain(m *testing.M) {
	if h := os.Getenv(helperEnv); h != "" {
		os.Exit(runHelper(h))
	}
	goleak.VerifyTestMain(m)
}

func runHelper(name string) int {
	dir, arg := os.Getenv(helperDirEnv), os.Getenv(helperArgEnv)
	fail := func(err error) int { fmt.Fprintln(os.Stderr, name+":", err); return 2 }
	switch name {
	case "append":
		// arg: "<child>:<records>:<batch>"; appends records, batch at a time, then closes.
		var child, n, batch int
		if _, err := fmt.Sscanf(arg, "%d:%d:%d", &child, &n, &batch); err != nil {
			return fail(err)
		}
		w, err := Open(Options{Dir: dir, SegmentMaxBytes: 8 << 10, MaxPending: 1 << 30})
		if err != nil {
			return fail(err)
		}
		for i := 0; i < n; i += batch {
			var ps [][]byte
			for j := i; j < min(i+batch, n); j++ {
				ps = append(ps, testPayload(child, j, j%50))
			}
			if err := w.AppendBatch("event", ps); err != nil {
				return fail(err)
			}
		}
		if err := w.Close(); err != nil {
			return fail(err)
		}
		return 0
	case "crash":
		// arg: "<child>:<durability>"; appends until killed, printing the
		// index of every acknowledged record on stdout.
		var child int
		var dur string
		if _, err := fmt.Sscanf(arg, "%d:%s", &child, &dur); err != nil {
			return fail(err)
		}
		d, err := ParseDurability(dur)
		if err != nil {
			return fail(err)
		}
		w, err := Open(Options{Dir: dir, Durability: d, SegmentMaxBytes: 16 << 10, MaxPending: 1 << 30})
		if err != nil {
			return fail(err)
		}
		for i := 0; ; i++ {
			if err := w.Append("event", testPayload(child, i, i%200)); err != nil {
				return fail(err)
			}
			if _, err := os.Stdout.WriteString(strconv.Itoa(i) + "\n"); err != nil {
				return fail(err)
			}
		}
	case "hold":
		// Appends one record, says so, then waits for stdin to close and
		// exits without closing the writer (as a crash would).
		w, err := Open(Options{Dir: dir})
		if err != nil {
			return fail(err)
		}
		if err := w.Append("event", testPayload(0, 0, 0)); err != nil {
			return fail(err)
		}
		fmt.Println(w.SegmentID())
		io.Copy(io.Discard, os.Stdin)
		return 0
	}
	return fail(fmt.Errorf("unknown helper"))
}

// helperCmd prepares a child process running helper name.
func helperCmd(t testing.TB, name, dir, arg string) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+name, helperDirEnv+"="+dir, helperArgEnv+"="+arg)
	cmd.Stderr = &testWriter{t: t, prefix: name + ": "}
	return cmd
}

// testWriter sends a child's stderr to the test log.
type testWriter struct {
	t      testing.TB
	prefix string
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.t.Log(w.prefix + strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// testRecord is the payload tests write: who wrote it, its index, padding.
type testRecord struct {
	C   int    `json:"c"`
	I   int    `json:"i"`
	Pad string `json:"pad"`
}

func testPayload(child, i, pad int) []byte {
	b, _ := json.Marshal(testRecord{C: child, I: i, Pad: string(slices.Repeat([]byte("x"), pad))})
	return b
}

// readAll reads every entry of every segment in dir, in ListSegments order.
func readAll(t testing.TB, dir string) (recs []testRecord, corrupt []Entry) {
	t.Helper()
	segs, err := ListSegments(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range segs {
		for _, e := range readSegmentAll(t, s.Path) {
			if e.Corrupt != "" {
				corrupt = append(corrupt, e)
				continue
			}
			var r testRecord
			if err := json.Unmarshal(e.Payload, &r); err != nil {
				t.Fatalf("segment %s offset %d: %v", s.ID, e.Offset, err)
			}
			recs = append(recs, r)
		}
	}
	return recs, corrupt
}

// readSegmentAll reads a whole segment with small reads, copying entries.
func readSegmentAll(t testing.TB, path string) []Entry {
	t.Helper()
	var all []Entry
	var buf []byte
	for off := int64(0); ; {
		es, next, err := ReadSegment(path, off, 4096, buf)
		if err != nil {
			t.Fatal(err)
		}
		if next == off {
			return all
		}
		for _, e := range es {
			e.Payload = slices.Clone(e.Payload)
			e.Raw = slices.Clone(e.Raw)
			all = append(all, e)
		}
		off = next
	}
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func setup(t testing.TB, opts Options) (*Writer, string) {
	t.Helper()
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	w, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w, opts.Dir
}

func segFiles(t testing.TB, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(filepath.Join(dir, segmentsDirName))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, de := range des {
		names = append(names, de.Name())
	}
	return names
}
