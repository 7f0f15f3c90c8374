package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// spoolRecords is what `activitybi spool stat` counts: the records the
// spool holds, whoever wrote them.
func (e *env) spoolRecords() int64 {
	e.t.Helper()
	if _, err := os.Stat(filepath.Join(e.dataDir, "spool")); os.IsNotExist(err) {
		return 0 // not created yet
	}
	out := e.mustRun(nil, "spool", "stat", "--json")
	var r struct{ Records int64 }
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		e.t.Fatalf("spool stat: %v\n%s", err, out)
	}
	return r.Records
}

// TestIngestHandsOverLinesWhileInputWaits: `tail -f x | activitybi ingest -`
// reads lines as they come; each is in the spool before ingest waits for
// more, not held in memory until a chunk fills (1,000 lines), where a kill
// would lose it.
func TestIngestHandsOverLinesWhileInputWaits(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	cmd := e.command("ingest", "-")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var stderrBuf bytes.Buffer
	cmd.Stderr = lockedBuf{&mu, &stderrBuf}
	stderr := func() string { mu.Lock(); defer mu.Unlock(); return stderrBuf.String() }
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	for _, id := range []string{"p1", "p2", "p3"} {
		if _, err := stdin.Write([]byte(`{"activity_id":"` + id + `","activity":"called_tool"}` + "\n")); err != nil {
			t.Fatal(err)
		}
	}
	// A half-written line does not hold back the whole ones before it.
	if _, err := stdin.Write([]byte(`{"activity_id":"p4","activ`)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for e.spoolRecords() != 3 {
		if time.Now().After(deadline) {
			t.Fatalf("the spool holds %d records, want the 3 lines read while ingest waits for more\n%s", e.spoolRecords(), stderr())
		}
		time.Sleep(50 * time.Millisecond)
	}
	cmd.Process.Kill() // kill -9: nothing read is in memory only
	cmd.Wait()
	if n := e.spoolRecords(); n != 3 {
		t.Fatalf("after kill -9: %d records", n)
	}
	c := e.startCore()
	defer c.stop(t)
	e.waitCount("SELECT count(*) FROM claude_stream WHERE activity_id IN ('p1','p2','p3')", 3, 30*time.Second)
}

// TestIngestRejectsFileIsNotTheInput: --rejects naming the input file would
// truncate it before a line is read; ingest refuses, and the file is intact.
func TestIngestRejectsFileIsNotTheInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	file := filepath.Join(t.TempDir(), "events.ndjson")
	body := `{"activity_id":"r1","activity":"called_tool"}` + "\nnot json\n"
	if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	check := func(how string, code int, errs string) {
		t.Helper()
		if code == 0 || !strings.Contains(errs, "is the input file") {
			t.Errorf("%s: exit %d, stderr %q", how, code, errs)
		}
		if b, _ := os.ReadFile(file); string(b) != body {
			t.Fatalf("%s: the input file now holds %q", how, b)
		}
	}
	_, errs, code := e.run(nil, "ingest", file, "--rejects", file)
	check("named", code, errs)
	link := filepath.Join(t.TempDir(), "link.ndjson")
	if err := os.Symlink(file, link); err != nil {
		t.Fatal(err)
	}
	_, errs, code = e.run(nil, "ingest", file, "--rejects", link)
	check("through a symbolic link", code, errs)
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	_, errs, code = e.run(f, "ingest", "-", "--rejects", file)
	check("as stdin", code, errs)

	// Another file is fine, and so is a device.
	rejects := filepath.Join(t.TempDir(), "rejects.ndjson")
	if _, errs, code = e.run(nil, "ingest", file, "--rejects", rejects); code != 1 || !strings.Contains(errs, "1 events accepted, 1 lines rejected") {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if b, _ := os.ReadFile(rejects); strings.Count(string(b), "\n") != 1 {
		t.Fatalf("rejects: %q", b)
	}
	if _, errs, code = e.run(strings.NewReader("not json\n"), "ingest", "-", "--rejects", os.DevNull); code != 1 || strings.Contains(errs, "input file") {
		t.Fatalf("%s: exit %d: %s", os.DevNull, code, errs)
	}
}

// TestIngestReportsUnwrittenRejects: the rejected lines are kept only in
// the --rejects file, so failing to write it is an error, not silence.
func TestIngestReportsUnwrittenRejects(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full")
	}
	e := newEnv(t)
	_, errs, code := e.run(strings.NewReader(`{"activity":"called_tool"}`+"\nnot json\n"), "ingest", "-", "--rejects", "/dev/full")
	if code != 1 || !strings.Contains(errs, "--rejects /dev/full: the rejected lines were not all written") {
		t.Fatalf("exit %d: %s", code, errs)
	}
}

// TestSpoolCommandsBeforeAnyLog: a data directory that never logged has no
// spool; stat, verify and repair report an empty one, not an error.
func TestSpoolCommandsBeforeAnyLog(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, verb := range []string{"stat", "verify", "repair"} {
		out, errs, code := e.run(nil, "spool", verb)
		if code != 0 || !strings.Contains(out, "0 segments, 0 records") || !strings.Contains(errs, "nothing has been logged") {
			t.Errorf("spool %s with no spool: exit %d\n%s\n%s", verb, code, out, errs)
		}
	}
}

// TestIngestLineLimitIsNotTheFeatureLimit: the rule is on feature_json
// compacted (64 KiB), not on the line as written. A line whose features
// are written with a space after each separator (json.dumps' default) is
// longer than the object it holds; it is accepted when the compacted
// object is within the limit, refused by the feature rule when it is not,
// and only a line over the line limit (a memory bound) is refused as a
// line, with both limits named.
func TestIngestLineLimitIsNotTheFeatureLimit(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	// {"a": [0, 0, ...]}: 2 bytes an element compacted, 3 as written.
	spaced := func(id string, n int) string {
		return `{"activity_id": "` + id + `", "activity": "called_tool", "feature_json": {"a": [0` + strings.Repeat(", 0", n-1) + `]}}`
	}
	fits := spaced("fits", 30_000)      // 60,007 bytes compacted, a 90 KB line
	tooBig := spaced("too-big", 40_000) // 80,007 bytes compacted
	huge := spaced("huge", 400_000)     // a 1.2 MB line
	if len(fits) <= 80<<10 {
		t.Fatalf("the first line is %d bytes: it must be over the old 80 KiB line limit", len(fits))
	}
	_, errs, code := e.run(strings.NewReader(fits+"\n"+tooBig+"\n"+huge+"\n"), "ingest", "-")
	if code != 1 {
		t.Fatalf("exit %d, want 1 (two lines rejected):\n%s", code, errs)
	}
	for _, want := range []string{
		"-:2: invalid event: feature_json: is 80007 bytes; the limit is 65536 (64 KiB)",
		"-:3: line: is " + strconv.Itoa(len(huge)) + " bytes; the limit for a line is 1048576 bytes (1 MiB), and feature_json may be at most 65536 bytes (64 KiB) once compacted",
		"ingest: 1 events accepted, 2 lines rejected",
	} {
		if !strings.Contains(errs, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errs)
		}
	}
	if strings.Contains(errs, "-:1:") {
		t.Errorf("the line within the rules was rejected:\n%s", errs)
	}
	if n := e.spoolRecords(); n != 1 {
		t.Fatalf("the spool holds %d records, want 1", n)
	}
}
