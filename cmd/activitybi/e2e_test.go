package main

// End-to-end tests: the real binary, real processes, a real DuckDB file.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/activitybi/activitybi/internal/server"
)

var binPath string

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		os.Exit(helperMain())
	}
	dir, err := os.MkdirTemp("", "activitybi-e2e")
	if err != nil {
		panic(err)
	}
	binPath = filepath.Join(dir, "activitybi")
	args := []string{"build", "-o", binPath}
	if raceEnabled {
		args = append(args, "-race")
	}
	cmd := exec.Command("go", append(args, ".")...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build activitybi:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// env is an isolated environment: its own data dir and no config file.
type env struct {
	t       *testing.T
	dataDir string
	home    string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	root := t.TempDir()
	e := &env{t: t, dataDir: filepath.Join(root, "data"), home: filepath.Join(root, "home")}
	os.MkdirAll(e.home, 0o700)
	// Last of the cleanups (after edges close and cores started by the
	// test stop): a core an edge started by itself — for example after the
	// test's own core stopped while an edge still ran — would otherwise
	// outlive the test by its 30 idle minutes.
	t.Cleanup(func() {
		if _, err := os.Stat(filepath.Join(e.dataDir, server.CoreInfoFile)); err == nil {
			if out, err := e.command("stop").CombinedOutput(); err != nil {
				t.Logf("stopping a core left running: %v: %s", err, out)
			}
		}
	})
	return e
}

func (e *env) environ(extra ...string) []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ACTIVITYBI_") && !strings.HasPrefix(kv, "HOME=") && !strings.HasPrefix(kv, "XDG_") {
			out = append(out, kv)
		}
	}
	out = append(out, "HOME="+e.home, "ACTIVITYBI_DATA_DIR="+e.dataDir, "ACTIVITYBI_CUSTOMER=tester",
		"ACTIVITYBI_LISTEN=127.0.0.1:0")
	return append(out, extra...)
}

func (e *env) command(args ...string) *exec.Cmd {
	cmd := exec.Command(binPath, args...)
	cmd.Env = e.environ()
	return cmd
}

// run runs activitybi to completion and returns stdout, stderr and the exit code.
func (e *env) run(stdin io.Reader, args ...string) (string, string, int) {
	e.t.Helper()
	cmd := e.command(args...)
	var out, errb bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatalf("run %v: %v", args, err)
	}
	return out.String(), errb.String(), code
}

func (e *env) mustRun(stdin io.Reader, args ...string) string {
	e.t.Helper()
	out, errs, code := e.run(stdin, args...)
	if code != 0 {
		e.t.Fatalf("activitybi %v: exit %d\nstdout: %s\nstderr: %s", args, code, out, errs)
	}
	return out
}

// core is a running `activitybi serve`.
type core struct {
	cmd    *exec.Cmd
	stderr *bytes.Buffer
	mu     *sync.Mutex
	info   server.CoreInfo
	done   chan error
}

type lockedBuf struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (l lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (e *env) startCore(extraEnv ...string) *core {
	e.t.Helper()
	return e.startCoreArgs(nil, extraEnv...)
}

// startCoreArgs is startCore with extra serve flags.
func (e *env) startCoreArgs(args []string, extraEnv ...string) *core {
	e.t.Helper()
	os.Remove(filepath.Join(e.dataDir, server.CoreInfoFile))
	cmd := e.command(append([]string{"serve"}, args...)...)
	cmd.Env = append(cmd.Env, extraEnv...)
	c := &core{cmd: cmd, stderr: &bytes.Buffer{}, mu: &sync.Mutex{}, done: make(chan error, 1)}
	cmd.Stderr = lockedBuf{c.mu, c.stderr}
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	go func() { c.done <- cmd.Wait() }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		info, err := server.ReadCoreInfo(e.dataDir)
		if err == nil && info.PID == cmd.Process.Pid {
			resp, err := http.Get(info.URL() + "/readyz")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == 200 {
					c.info = info
					return c
				}
			}
		}
		select {
		case err := <-c.done:
			e.t.Fatalf("serve exited early: %v\n%s", err, c.log())
		default:
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("serve not ready in 60s\n%s", c.log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (c *core) log() string { c.mu.Lock(); defer c.mu.Unlock(); return c.stderr.String() }

// stop sends SIGTERM and waits for a clean exit.
func (c *core) stop(t *testing.T) {
	t.Helper()
	c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-c.done:
		if err != nil {
			t.Fatalf("serve exited with %v\n%s", err, c.log())
		}
	case <-time.After(60 * time.Second):
		c.cmd.Process.Kill()
		t.Fatalf("serve did not stop in 60s\n%s", c.log())
	}
}

func (c *core) kill() {
	c.cmd.Process.Signal(syscall.SIGKILL)
	<-c.done
}

// count runs `activitybi sql` and returns the single integer it prints.
func (e *env) count(query string) int {
	e.t.Helper()
	out := e.mustRun(nil, "sql", "--format", "csv", query)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 {
		e.t.Fatalf("want one value from %q, got %q", query, out)
	}
	n, err := strconv.Atoi(lines[1])
	if err != nil {
		e.t.Fatalf("not a count: %q", out)
	}
	return n
}

// waitCount polls until query returns want (or fails after timeout).
func (e *env) waitCount(query string, want int, timeout time.Duration) time.Duration {
	e.t.Helper()
	start := time.Now()
	for {
		n := e.count(query)
		if n == want {
			return time.Since(start)
		}
		if time.Since(start) > timeout {
			e.t.Fatalf("%q = %d after %s, want %d", query, n, timeout, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// writeEvents writes n NDJSON events with ids prefix-0..n-1 to a file.
func writeEvents(t *testing.T, path, prefix string, n int) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(f)
	base := time.Now().Add(-time.Hour).UTC()
	tools := []string{"search", "read_file", "bash", "edit"}
	for i := 0; i < n; i++ {
		ts := base.Add(time.Duration(i) * time.Millisecond).Format(time.RFC3339Nano)
		fmt.Fprintf(w, `{"activity_id":"%s-%d","ts":"%s","activity":"called_tool","feature_json":{"tool":"%s","duration_ms":%d},"revenue_impact":-0.0001}`+"\n",
			prefix, i, ts, tools[i%len(tools)], i%1000)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

func TestVersionAndConfig(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if out := e.mustRun(nil, "version"); !strings.HasPrefix(out, "activitybi ") {
		t.Fatalf("version: %q", out)
	}
	out := e.mustRun(nil, "config", "--durability", "sync")
	for _, want := range []string{`(?m)^durability +sync +flag --durability$`, `(?m)^data_dir +\S+ +env ACTIVITYBI_DATA_DIR$`,
		`(?m)^spool.max_pending +100000 +default$`} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("config output lacks %s:\n%s", want, out)
		}
	}
	_, errs, code := e.run(nil, "config", "--durability", "fast")
	if code == 0 || !strings.Contains(errs, "durability") {
		t.Fatalf("bad config accepted: %d %s", code, errs)
	}
	// A password in a URL is not shown (output like this is pasted into
	// tickets and chats).
	out = e.mustRun(nil, "config", "--cache-redis-url", "redis://app:s3cret@cache.internal:6379/0")
	if strings.Contains(out, "s3cret") || !regexp.MustCompile(`(?m)^cache.redis_url +redis://app:\S+@cache.internal:6379/0 +flag --cache-redis-url$`).MatchString(out) {
		t.Errorf("config shows the Redis URL as:\n%s", out)
	}
}

func TestIngestServeSQLAndReingest(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.startCore()
	defer c.stop(t)
	file := filepath.Join(t.TempDir(), "events.ndjson")
	const n = 100_000
	writeEvents(t, file, "ev", n)

	_, errs, code := e.run(nil, "ingest", file)
	if code != 0 {
		t.Fatalf("ingest: %d %s", code, errs)
	}
	if !strings.Contains(errs, "100000 events accepted, 0 lines rejected") ||
		!strings.Contains(errs, "100000 of them carry an activity_id") {
		t.Fatalf("summary: %s", errs)
	}
	took := e.waitCount("SELECT count(*) FROM claude_stream", n, 60*time.Second)
	t.Logf("100,000 events queryable %s after ingest finished", took)

	// Occurrence columns are maintained: one partition per customer+activity.
	if got := e.count("SELECT count(*) FROM claude_stream WHERE _activity_occurrence IS NULL"); got != 0 {
		t.Fatalf("%d rows without occurrence", got)
	}
	if got := e.count("SELECT max(_activity_occurrence) FROM claude_stream"); got != n {
		t.Fatalf("max occurrence %d, want %d", got, n)
	}
	if got := e.count("SELECT count(*) FROM claude_stream WHERE _activity_repeated_at IS NULL"); got != 1 {
		t.Fatalf("%d rows with no next occurrence, want 1", got)
	}

	// The same file again adds nothing.
	e.mustRun(nil, "ingest", file)
	e.mustRun(nil, "log", "marked_done") // a sentinel behind the re-ingest
	e.waitCount("SELECT count(*) FROM claude_stream WHERE activity = 'marked_done'", 1, 60*time.Second)
	if got := e.count("SELECT count(*) FROM claude_stream"); got != n+1 {
		t.Fatalf("after re-ingest %d rows, want %d", got, n+1)
	}
}

func TestBadInputIsReportedAndGoodKept(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, errs, code := e.run(nil, "log", "CalledTool")
	if code != 1 || !strings.Contains(errs, "is not verb_noun") {
		t.Fatalf("log bad activity: %d %s", code, errs)
	}
	_, errs, code = e.run(nil, "log", "called_tool", "--feature", "x:={bad")
	if code != 1 || !strings.Contains(errs, "not valid JSON") {
		t.Fatalf("log bad feature: %d %s", code, errs)
	}
	_, errs, code = e.run(nil, "log", "called_tool", "--features-json", "null", "-f", "a=b")
	if code != 1 || !strings.Contains(errs, "--features-json: must be a JSON object") {
		t.Fatalf("log null features: %d %s", code, errs)
	}
	if out := e.mustRun(nil, "log", "called_tool", "-f", "tool=search", "-f", "ms:=12", "--revenue-impact", "-0.01"); len(strings.TrimSpace(out)) != 26 {
		t.Fatalf("log printed %q, want an activity id", out)
	}
	input := strings.Join([]string{
		`{"activity_id":"g1","activity":"called_tool"}`,
		`{"activity":"Bad"}`,
		`not json`,
		``,
		`{"activity_id":"g2","activity":"called_tool","feature_json":{"a":1}}`,
		`{"activity":"called_tool","surprise":true}`,
		`{"activity_id":"g3","activity":"called_tool","ts":"2099-01-01T00:00:00Z"}`,
		`{"activity_id":"g4","activity":"called_tool","customer":"someone_else"}`,
	}, "\n")
	rejects := filepath.Join(t.TempDir(), "rejects.ndjson")
	_, errs, code = e.run(strings.NewReader(input), "ingest", "-", "--rejects", rejects)
	if code != 1 {
		t.Fatalf("ingest with bad lines exited %d: %s", code, errs)
	}
	for _, want := range []string{"-:2: invalid event: activity", "-:3: invalid event: line: is not a JSON object",
		"-:6: invalid event: surprise: unknown field", "-:7: invalid event: ts:", "3 events accepted, 4 lines rejected"} {
		if !strings.Contains(errs, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errs)
		}
	}
	b, _ := os.ReadFile(rejects)
	if got := strings.Count(string(b), "\n"); got != 4 {
		t.Fatalf("rejects file has %d lines:\n%s", got, b)
	}
	c := e.startCore()
	defer c.stop(t)
	e.waitCount("SELECT count(*) FROM claude_stream", 4, 30*time.Second)
	if got := e.count("SELECT count(*) FROM claude_stream WHERE customer = 'someone_else' AND activity_id = 'g4'"); got != 1 {
		t.Fatal("line customer not kept")
	}
	if got := e.count("SELECT count(*) FROM claude_stream WHERE customer = 'tester' AND _source = 'import'"); got != 2 {
		t.Fatalf("configured identity not applied: %d", got)
	}
}

func TestSQLRefusesUnsafeStatements(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.mustRun(nil, "migrate")
	for _, q := range []string{
		"DELETE FROM claude_stream",
		"SELECT 1; DROP TABLE claude_stream",
		"ATTACH 'x.db'",
		"COPY claude_stream TO 'out.csv'",
		"PRAGMA database_list",
		"SET memory_limit='1GB'",
		"INSTALL httpfs",
		"SELECT * FROM read_csv('/etc/passwd')",
	} {
		_, errs, code := e.run(nil, "sql", q)
		if code == 0 || !strings.Contains(errs, "refused") {
			t.Errorf("%q: exit %d, stderr %q", q, code, errs)
		}
	}
	// With a core running the same refusals come back through it.
	c := e.startCore()
	defer c.stop(t)
	_, errs, code := e.run(nil, "sql", "DROP TABLE claude_stream")
	if code == 0 || !strings.Contains(errs, "refused") {
		t.Errorf("through core: exit %d, stderr %q", code, errs)
	}
	out := e.mustRun(nil, "sql", "--format", "json", "SELECT 42 AS answer, 'x' AS s")
	var rows []map[string]any
	if err := json.Unmarshal([]byte(out), &rows); err != nil || len(rows) != 1 || fmt.Sprint(rows[0]["answer"]) != "42" {
		t.Fatalf("json output %q: %v", out, err)
	}
}

// TestConcurrentWriterProcesses: 4 processes x 25,000 events into one spool
// while the core uploads -> exactly 100,000 rows.
func TestConcurrentWriterProcesses(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.startCore()
	defer c.stop(t)
	dir := t.TempDir()
	var wg sync.WaitGroup
	errs := make(chan string, 4)
	for w := 0; w < 4; w++ {
		file := filepath.Join(dir, fmt.Sprintf("w%d.ndjson", w))
		writeEvents(t, file, fmt.Sprintf("w%d", w), 25_000)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, se, code := e.run(nil, "ingest", file); code != 0 {
				errs <- se
			}
		}()
	}
	wg.Wait()
	close(errs)
	for s := range errs {
		t.Fatalf("ingest failed: %s", s)
	}
	e.waitCount("SELECT count(*) FROM claude_stream", 100_000, 60*time.Second)
	if got := e.count("SELECT count(DISTINCT activity_id) FROM claude_stream"); got != 100_000 {
		t.Fatalf("distinct ids %d", got)
	}
}

// TestIngestWaitsAtBackpressure: with a limit below ingest's chunk size and
// a core draining, ingest waits instead of failing and everything arrives.
func TestIngestWaitsAtBackpressure(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.startCore()
	defer c.stop(t)
	file := filepath.Join(t.TempDir(), "events.ndjson")
	writeEvents(t, file, "bp", 3000)
	cmd := e.command("ingest", file)
	cmd.Env = append(cmd.Env, "ACTIVITYBI_SPOOL_MAX_PENDING=500")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("ingest: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "3000 events accepted") || !strings.Contains(string(out), "waited for the uploader") {
		t.Fatalf("summary:\n%s", out)
	}
	// The note while it waits says it waits, not "retry later".
	if !strings.Contains(string(out), "(spool.max_pending 500; is `activitybi serve` running?): waiting for the uploader") ||
		strings.Contains(string(out), "retry later") {
		t.Fatalf("the note while waiting:\n%s", out)
	}
	e.waitCount("SELECT count(*) FROM claude_stream", 3000, 60*time.Second)
}

// TestShutdownDrains: SIGTERM right after an ingest finishes; the core drains
// the spool before it exits, so the warehouse file (opened read-only
// afterwards, no core running) already holds everything.
func TestShutdownDrains(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	file := filepath.Join(t.TempDir(), "events.ndjson")
	writeEvents(t, file, "sd", 30_000)
	e.mustRun(nil, "ingest", file) // into the spool; no core yet
	c := e.startCore()
	c.stop(t) // at once: whatever the uploader has not loaded, the drain must
	if !strings.Contains(c.log(), "core stopped") {
		t.Fatalf("no clean stop in the log:\n%s", c.log())
	}
	if _, err := os.Stat(filepath.Join(e.dataDir, server.CoreInfoFile)); !os.IsNotExist(err) {
		t.Fatalf("core.json left behind after a clean stop: %v", err)
	}
	// The spool first: the sql below, with no core running, spools its
	// own audit record.
	out := e.mustRun(nil, "spool", "stat")
	if !strings.Contains(out, "0 pending") {
		t.Fatalf("spool not drained:\n%s", out)
	}
	if got := e.count("SELECT count(*) FROM claude_stream"); got != 30_000 {
		t.Fatalf("%d rows after shutdown, want 30000", got)
	}
}
