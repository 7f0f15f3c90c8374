package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if floorDir != "" {
		os.RemoveAll(floorDir)
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

var (
	floorOnce sync.Once
	floorBin  string
	floorErr  error
	floorDir  string
)

// buildFloor builds bench/mcpfloor once for all tests (without -race: it is
// the server under test, not the code under test).
func buildFloor(t *testing.T) string {
	t.Helper()
	floorOnce.Do(func() {
		floorDir, floorErr = os.MkdirTemp("", "mcpfloor-test")
		if floorErr != nil {
			return
		}
		floorBin = filepath.Join(floorDir, "mcpfloor")
		out, err := exec.Command("go", "build", "-o", floorBin, "../../bench/mcpfloor").CombinedOutput()
		if err != nil {
			floorErr = err
			floorBin = string(out)
		}
	})
	if floorErr != nil {
		t.Fatalf("build mcpfloor: %v\n%s", floorErr, floorBin)
	}
	return floorBin
}

func TestMCPStdioFloorTwice(t *testing.T) {
	t.Parallel()
	bin := buildFloor(t)
	var out bytes.Buffer
	rep, err := runMCPStdio(context.Background(), []string{
		"--server", "floor=" + bin, "--server", "again=" + bin,
		"--tool", "noop", "--args", `{"n":{{seq}},"run":"{{run}}","at":"{{now}}"}`,
		"--calls", "100", "--warmup", "10", "--rounds", "4", "--settle", "10ms",
	}, &out)
	if err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + out.String())
	if len(rep.Servers) != 2 || rep.Floor != "floor" {
		t.Fatalf("servers %d, floor %q", len(rep.Servers), rep.Floor)
	}
	for _, s := range rep.Servers {
		if s.Calls != 100 || s.Latency.N != 100 || len(s.Errors) != 0 {
			t.Errorf("%s: calls %d, latencies %d, errors %v", s.Name, s.Calls, s.Latency.N, s.Errors)
		}
		// 10 warm-up + 100 measured calls, each with its own {{seq}}.
		if s.seq != 110 {
			t.Errorf("%s: seq %d, want 110", s.Name, s.seq)
		}
		if s.PID == 0 || s.RSSStartKB == 0 || s.RSSPeakKB < s.RSSStartKB {
			t.Errorf("%s: pid %d rss start %d peak %d", s.Name, s.PID, s.RSSStartKB, s.RSSPeakKB)
		}
		if s.Latency.P50 <= 0 || s.Latency.P99 < s.Latency.P50 || s.Latency.Max < s.Latency.P99 || s.CallsPerSec <= 0 {
			t.Errorf("%s: latency %+v, calls/s %v", s.Name, s.Latency, s.CallsPerSec)
		}
	}
	if rep.Servers[0].P50Ratio != 1 || rep.Servers[0].P99Ratio != 1 || rep.Servers[1].P50Ratio <= 0 {
		t.Errorf("ratios: floor %v/%v, again %v", rep.Servers[0].P50Ratio, rep.Servers[0].P99Ratio, rep.Servers[1].P50Ratio)
	}
	if !strings.Contains(out.String(), "p50/floor") {
		t.Errorf("no ratio column in\n%s", out.String())
	}
}

func TestMCPStdioJSONAndCmd(t *testing.T) {
	t.Parallel()
	bin := buildFloor(t)
	var out bytes.Buffer
	_, err := runMCPStdio(context.Background(), []string{"--cmd", bin, "--tool", "noop",
		"--calls", "50", "--warmup", "0", "--settle", "1ms", "--json"}, &out)
	if err != nil {
		t.Fatal(err)
	}
	var rep stdioReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if len(rep.Servers) != 1 || rep.Servers[0].Name != "mcpfloor" || rep.Servers[0].Latency.N != 50 {
		t.Errorf("report %s", out.String())
	}
}

func TestMCPStdioErrors(t *testing.T) {
	t.Parallel()
	bin := buildFloor(t)
	for name, tc := range map[string]struct {
		args []string
		want string
	}{
		"unknown tool":   {[]string{"--cmd", bin, "--tool", "nope"}, `no tool "nope" (it has noop)`},
		"no tool":        {[]string{"--cmd", bin}, "no tool (--tool"},
		"no server":      {[]string{"--tool", "noop"}, "no server"},
		"bad template":   {[]string{"--cmd", bin, "--tool", "noop", "--args", `{"a":{{sec}}}`}, "unknown placeholder {{sec}}"},
		"not an object":  {[]string{"--cmd", bin, "--tool", "noop", "--args", `[1]`}, "does not expand to a JSON object"},
		"bad floor":      {[]string{"--cmd", bin, "--tool", "noop", "--floor", "x"}, `--floor "x"`},
		"same name":      {[]string{"--cmd", bin, "--cmd", bin, "--tool", "noop"}, "two servers named"},
		"missing binary": {[]string{"--cmd", "/nonexistent/server", "--tool", "noop"}, "connect"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := runMCPStdio(context.Background(), append(tc.args, "--calls", "5", "--warmup", "0", "--settle", "1ms"), io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestMCPStdioPerServerFlags(t *testing.T) {
	t.Parallel()
	bin := buildFloor(t)
	// A per-server --tool wins over the default; a per-server --env reaches
	// only its server (mcpfloor ignores it, but a bad one would not start).
	rep, err := runMCPStdio(context.Background(), []string{
		"--server", "a=" + bin, "--server", "b=" + bin + " -http ''",
		"--tool", "missing", "--tool", "a=noop", "--tool", "b=noop",
		"--env", "a=MEMORY_FILE_PATH={{tmp}}/m.jsonl", "--env", "X=1",
		"--floor", "b", "--calls", "10", "--warmup", "0", "--settle", "1ms",
	}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	a := rep.Servers[0]
	if a.Tool != "noop" || len(a.env) != 2 || a.env[0] != "X=1" || a.env[1] != "MEMORY_FILE_PATH={{tmp}}/m.jsonl" {
		t.Errorf("a: tool %q env %q", a.Tool, a.env)
	}
	if b := rep.Servers[1]; len(b.Argv) != 3 || b.Argv[2] != "" || b.P50Ratio != 1 {
		t.Errorf("b: argv %q ratio %v", b.Argv, b.P50Ratio)
	}
}

func TestSplitCommandLine(t *testing.T) {
	for in, want := range map[string][]string{
		`node dist/index.js`:               {"node", "dist/index.js"},
		`  a   'b c'  "d \"e\" \\ f" g\ h`: {"a", "b c", `d "e" \ f`, "g h"},
		`x ''`:                             {"x", ""},
		`a'b'"c"`:                          {"abc"},
	} {
		got, err := splitCommandLine(in)
		if err != nil || strings.Join(got, "|") != strings.Join(want, "|") || len(got) != len(want) {
			t.Errorf("%q: got %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{``, `  `, `a 'b`, `a "b`} {
		if _, err := splitCommandLine(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestTemplate(t *testing.T) {
	tm, err := parseTemplate(`{"id":"load-{{run}}-{{seq}}","n":{{seq}},"ts":"{{now}}"}`)
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		ID string
		N  int
		TS time.Time
	}
	if err := json.Unmarshal(tm.render(42, "abcd0123"), &v); err != nil {
		t.Fatal(err)
	}
	if v.ID != "load-abcd0123-42" || v.N != 42 || time.Since(v.TS) > time.Minute {
		t.Errorf("rendered %+v", v)
	}
	if _, err := parseTemplate(`{"a":"{{seq"}`); err == nil {
		t.Error("unclosed placeholder accepted")
	}
}

func TestEndpointURL(t *testing.T) {
	for in, want := range map[string]string{
		"http://127.0.0.1:8080":     "http://127.0.0.1:8080/mcp",
		"http://127.0.0.1:8080/":    "http://127.0.0.1:8080/mcp",
		"http://127.0.0.1:8080/mcp": "http://127.0.0.1:8080/mcp",
		"http://h/other/mcp?x=1":    "http://h/other/mcp?x=1",
	} {
		if got := endpointURL(in, "/mcp"); got != want {
			t.Errorf("%s: %s, want %s", in, got, want)
		}
	}
}

// mcpHTTPServer is a Streamable HTTP MCP server with a log_event tool that
// remembers every activity_id, behind a bearer-token check.
type mcpHTTPServer struct {
	url      string
	mu       sync.Mutex
	ids      map[string]int
	sessions map[string]bool
	calls    atomic.Int64
}

func startMCPHTTP(t *testing.T, token string, delay time.Duration) *mcpHTTPServer {
	t.Helper()
	s := &mcpHTTPServer{ids: map[string]int{}, sessions: map[string]bool{}}
	srv := mcp.NewServer(&mcp.Implementation{Name: "test", Version: "0"}, nil)
	type in struct {
		Activity   string         `json:"activity"`
		ActivityID string         `json:"activity_id,omitempty"`
		Features   map[string]any `json:"features,omitempty"`
	}
	type out struct {
		ActivityID string `json:"activity_id"`
		Duplicate  bool   `json:"duplicate"`
	}
	mcp.AddTool(srv, &mcp.Tool{Name: "log_event"}, func(ctx context.Context, req *mcp.CallToolRequest, a in) (*mcp.CallToolResult, out, error) {
		time.Sleep(delay)
		s.calls.Add(1)
		s.mu.Lock()
		defer s.mu.Unlock()
		s.ids[a.ActivityID]++
		s.sessions[req.Session.ID()] = true
		return nil, out{ActivityID: a.ActivityID, Duplicate: s.ids[a.ActivityID] > 1}, nil
	})
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return srv }, nil)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+token {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(hs.Close)
	s.url = hs.URL
	return s
}

func TestMCPHTTP(t *testing.T) {
	t.Parallel()
	s := startMCPHTTP(t, "secret", 0)
	var out bytes.Buffer
	rep, err := runMCPHTTP(context.Background(), []string{"--url", s.url, "--token", "secret",
		"--sessions", "20", "--rate", "400", "--duration", "600ms"}, &out)
	if err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + out.String())
	st := rep.Steps[0]
	if rep.SessionsOpened != 20 || len(rep.SessionErrors) != 0 {
		t.Errorf("sessions %d, errors %v", rep.SessionsOpened, rep.SessionErrors)
	}
	if len(st.Errors) != 0 || len(st.HTTPStatuses) != 0 {
		t.Errorf("errors %v %v", st.Errors, st.HTTPStatuses)
	}
	// The acknowledged count is exactly what the server stored, each call a
	// distinct activity_id, spread over every session.
	s.mu.Lock()
	ids, sessions := len(s.ids), len(s.sessions)
	s.mu.Unlock()
	if rep.Acknowledged != s.calls.Load() || int64(ids) != rep.Acknowledged || st.Duplicates != 0 || st.Latency.N != int(rep.Acknowledged) {
		t.Errorf("acknowledged %d, server calls %d, distinct ids %d, dups %d, latencies %d", rep.Acknowledged, s.calls.Load(), ids, st.Duplicates, st.Latency.N)
	}
	if sessions != 20 {
		t.Errorf("calls reached %d sessions, want 20", sessions)
	}
	// Every call sent is acknowledged or counted as an error. (No bound on
	// the rate: on a loaded 2-core machine under -race it can fall far short.)
	if st.Issued != st.Acknowledged+sumCounts(st.Errors) || st.Issued > 240 || st.Issued == 0 {
		t.Errorf("issued %d, acknowledged %d, errors %d at 400/s for 600ms", st.Issued, st.Acknowledged, sumCounts(st.Errors))
	}
	if !strings.Contains(out.String(), "acknowledged calls in total: "+itoa(rep.Acknowledged)) {
		t.Errorf("output lacks the acknowledged count:\n%s", out.String())
	}
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

func TestMCPHTTPDuplicatesAndToolErrors(t *testing.T) {
	t.Parallel()
	s := startMCPHTTP(t, "secret", 0)
	// A constant activity_id: every call after the first is a duplicate; a
	// missing "activity" is rejected by the input schema as a tool error.
	rep, err := runMCPHTTP(context.Background(), []string{"--url", s.url + "/mcp", "--token", "secret",
		"--sessions", "3", "--rate", "200", "--duration", "300ms", "--args", `{"activity":"x","activity_id":"same"}`, "--json"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if st := rep.Steps[0]; st.Duplicates != st.Acknowledged-1 || st.Acknowledged == 0 {
		t.Errorf("acknowledged %d, duplicates %d", st.Acknowledged, st.Duplicates)
	}
	rep, err = runMCPHTTP(context.Background(), []string{"--url", s.url, "--token", "secret",
		"--sessions", "2", "--rate", "100", "--duration", "200ms", "--args", `{"nope":1}`}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if st := rep.Steps[0]; st.Acknowledged != 0 || st.Errors["tool_error"] == 0 {
		t.Errorf("acknowledged %d, errors %v", st.Acknowledged, st.Errors)
	}
}

func TestMCPHTTPFindMax(t *testing.T) {
	t.Parallel()
	s := startMCPHTTP(t, "secret", 0)
	var out bytes.Buffer
	rep, err := runMCPHTTP(context.Background(), []string{"--url", s.url, "--token", "secret",
		"--sessions", "5", "--find-max", "--steps", "100,0.2K", "--step-duration", "400ms", "--step-pause", "50ms", "--p99-limit", "10s", "--min-ack-ratio", "0.01"}, &out)
	if err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + out.String())
	if len(rep.Steps) != 2 || rep.MaxRate != 200 || !*rep.Steps[0].Pass || !*rep.Steps[1].Pass {
		t.Errorf("steps %d, max %v", len(rep.Steps), rep.MaxRate)
	}
	if rep.Acknowledged != rep.Steps[0].Acknowledged+rep.Steps[1].Acknowledged || rep.Acknowledged != s.calls.Load() {
		t.Errorf("acknowledged %d, server %d", rep.Acknowledged, s.calls.Load())
	}

	// A p99 limit below the tool's own 20 ms fails the first step and stops.
	slow := startMCPHTTP(t, "secret", 20*time.Millisecond)
	rep, err = runMCPHTTP(context.Background(), []string{"--url", slow.url, "--token", "secret",
		"--sessions", "2", "--find-max", "--steps", "50,100", "--step-duration", "200ms", "--p99-limit", "5ms"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Steps) != 1 || rep.MaxRate != 0 || *rep.Steps[0].Pass {
		t.Errorf("steps %d, max %v", len(rep.Steps), rep.MaxRate)
	}
}

func TestMCPHTTPBadToken(t *testing.T) {
	t.Parallel()
	s := startMCPHTTP(t, "secret", 0)
	_, err := runMCPHTTP(context.Background(), []string{"--url", s.url, "--token", "wrong",
		"--sessions", "3", "--rate", "10", "--duration", "100ms"}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "no session opened: http_401 3") {
		t.Fatalf("err %v", err)
	}
}

// eventsServer accepts /v1/events like the core: bearer token, NDJSON or a
// JSON array, duplicates by activity_id, and answers 429 to the first
// request when asked to.
type eventsServer struct {
	url      string
	mu       sync.Mutex
	ids      map[string]bool
	accepted int64
	reqs     int
	ctypes   map[string]int
}

func startEvents(t *testing.T, first429 bool) *eventsServer {
	t.Helper()
	s := &eventsServer{ids: map[string]bool{}, ctypes: map[string]int{}}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/events" || r.Method != http.MethodPost || r.Header.Get("Authorization") != "Bearer tok" {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		s.mu.Lock()
		s.reqs++
		n := s.reqs
		s.mu.Unlock()
		if first429 && n == 1 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		var recs []map[string]any
		switch ct := r.Header.Get("Content-Type"); ct {
		case "application/x-ndjson":
			sc := bufio.NewScanner(r.Body)
			for sc.Scan() {
				var m map[string]any
				if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
					http.Error(w, err.Error(), 400)
					return
				}
				recs = append(recs, m)
			}
		case "application/json":
			if err := json.NewDecoder(r.Body).Decode(&recs); err != nil {
				http.Error(w, err.Error(), 400)
				return
			}
		default:
			http.Error(w, "content type", http.StatusUnsupportedMediaType)
			return
		}
		var resp eventsResponse
		s.mu.Lock()
		s.ctypes[r.Header.Get("Content-Type")]++
		for _, m := range recs {
			id, _ := m["activity_id"].(string)
			if _, ok := m["feature_json"].(map[string]any); !ok || m["activity"] != "called_tool" {
				resp.Rejected++
			} else if s.ids[id] {
				resp.Duplicates++
			} else {
				s.ids[id] = true
				resp.Accepted++
				s.accepted++
			}
		}
		s.mu.Unlock()
		json.NewEncoder(w).Encode(resp)
	}))
	t.Cleanup(hs.Close)
	s.url = hs.URL
	return s
}

func TestEventsHTTP(t *testing.T) {
	t.Parallel()
	for _, format := range []string{"ndjson", "json"} {
		t.Run(format, func(t *testing.T) {
			t.Parallel()
			s := startEvents(t, format == "ndjson")
			var out bytes.Buffer
			rep, err := runEventsHTTP(context.Background(), []string{"--url", s.url, "--token", "tok", "--format", format,
				"--batch", "100", "--concurrency", "2", "--duration", "1200ms"}, &out)
			if err != nil {
				t.Fatal(err)
			}
			t.Log("\n" + out.String())
			s.mu.Lock()
			defer s.mu.Unlock()
			if rep.Acknowledged != s.accepted || rep.Accepted != s.accepted || rep.Duplicates != 0 || rep.Rejected != 0 ||
				rep.EventsSent != rep.Requests*100 || rep.Acknowledged != rep.EventsSent || rep.Acknowledged == 0 {
				t.Errorf("report %+v; server accepted %d", rep, s.accepted)
			}
			if len(rep.Errors) != 0 || rep.Latency.N != int(rep.Requests) {
				t.Errorf("errors %v, latencies %d of %d requests", rep.Errors, rep.Latency.N, rep.Requests)
			}
			want429 := int64(0)
			if format == "ndjson" {
				want429 = 1
			}
			if rep.TooMany != want429 {
				t.Errorf("429s %d, want %d", rep.TooMany, want429)
			}
			wantCT := map[string]string{"ndjson": "application/x-ndjson", "json": "application/json"}[format]
			if len(s.ctypes) != 1 || s.ctypes[wantCT] == 0 {
				t.Errorf("content types %v", s.ctypes)
			}
		})
	}
}

func TestEventsHTTPErrors(t *testing.T) {
	t.Parallel()
	s := startEvents(t, false)
	rep, err := runEventsHTTP(context.Background(), []string{"--url", s.url, "--token", "bad",
		"--batch", "10", "--concurrency", "1", "--duration", "250ms", "--json"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Errors["http_401"] == 0 || rep.Acknowledged != 0 {
		t.Errorf("errors %v, acknowledged %d", rep.Errors, rep.Acknowledged)
	}
	big := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "too large", http.StatusRequestEntityTooLarge)
	}))
	defer big.Close()
	rep, err = runEventsHTTP(context.Background(), []string{"--url", big.URL, "--batch", "10", "--concurrency", "2", "--duration", "5s"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	// A 413 stops the worker at once rather than resending for 5 s.
	if rep.Errors["http_413"] != 2 {
		t.Errorf("errors %v", rep.Errors)
	}
}

func TestRetryAfter(t *testing.T) {
	for in, want := range map[string]time.Duration{"": time.Second, "2": 2 * time.Second, "0": 0, "x": time.Second,
		time.Now().Add(-time.Hour).UTC().Format(http.TimeFormat): 0} {
		if got := retryAfter(in); got != want {
			t.Errorf("%q: %v, want %v", in, got, want)
		}
	}
}
