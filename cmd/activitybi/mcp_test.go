package main

// End-to-end tests of the MCP surfaces: real clients against the built
// binary, edges that start the core, HTTP with real tokens.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/activitybi/activitybi/internal/auth"
	"github.com/activitybi/activitybi/internal/server"
)

// edge is a running `activitybi mcp` with a go-sdk client session on its stdio.
type edge struct {
	cs     *mcp.ClientSession
	cmd    *exec.Cmd
	stderr *lockedBuf

	mu       sync.Mutex
	progress []*mcp.ProgressNotificationParams // notifications received
}

// progressOf returns the progress notifications received for token.
func (ed *edge) progressOf(token string) []*mcp.ProgressNotificationParams {
	ed.mu.Lock()
	defer ed.mu.Unlock()
	var out []*mcp.ProgressNotificationParams
	for _, p := range ed.progress {
		if p.ProgressToken == token {
			out = append(out, p)
		}
	}
	return out
}

func (e *env) startEdge(args ...string) *edge {
	e.t.Helper()
	return e.startEdgeEnv(nil, args...)
}

// startEdgeEnv starts an edge with extra environment (e.g. another customer).
func (e *env) startEdgeEnv(extraEnv []string, args ...string) *edge {
	e.t.Helper()
	cmd := e.command(append([]string{"mcp"}, args...)...)
	cmd.Env = append(cmd.Env, extraEnv...)
	buf := &lockedBuf{mu: &sync.Mutex{}, b: &bytes.Buffer{}}
	cmd.Stderr = buf
	ed := &edge{cmd: cmd, stderr: buf}
	opts := &mcp.ClientOptions{ProgressNotificationHandler: func(_ context.Context, r *mcp.ProgressNotificationClientRequest) {
		ed.mu.Lock()
		ed.progress = append(ed.progress, r.Params)
		ed.mu.Unlock()
	}}
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "e2e-client", Version: "1.0"}, opts).
		Connect(context.Background(), &mcp.CommandTransport{Command: cmd}, nil)
	if err != nil {
		e.t.Fatalf("connect to activitybi mcp: %v", err)
	}
	ed.cs = cs
	e.t.Cleanup(func() { ed.close() })
	return ed
}

func (ed *edge) log() string {
	ed.stderr.mu.Lock()
	defer ed.stderr.mu.Unlock()
	return ed.stderr.b.String()
}

func (ed *edge) close() { ed.cs.Close() }

func (ed *edge) call(t *testing.T, tool string, args map[string]any) map[string]any {
	t.Helper()
	res, err := ed.cs.CallTool(context.Background(), &mcp.CallToolParams{Name: tool, Arguments: args})
	if err != nil {
		t.Fatalf("%s: %v\nedge log:\n%s", tool, err, ed.log())
	}
	if res.IsError {
		t.Fatalf("%s: tool error: %v", tool, res.Content)
	}
	return res.StructuredContent.(map[string]any)
}

// stopCore stops whatever core runs for the env (one an edge started).
func (e *env) stopCore() {
	e.t.Helper()
	if out, errs, code := e.run(nil, "stop"); code != 0 {
		e.t.Errorf("stop: exit %d\n%s%s", code, out, errs)
	}
}

// status is the running core's status, or the zero value while none runs.
func (e *env) status() server.StatusResponse {
	e.t.Helper()
	var st server.StatusResponse
	out := e.mustRun(nil, "status", "--json")
	if strings.Contains(out, `"core": "`) { // no core: the local report
		return st
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		e.t.Fatalf("%v: %s", err, out)
	}
	return st
}

func TestMCPStdioEndToEnd(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	t.Cleanup(e.stopCore)
	ed := e.startEdge()
	start := time.Now()
	r := ed.call(t, "log_event", map[string]any{"activity": "called_tool", "features": map[string]any{"tool": "Bash", "success": true}})
	ed.call(t, "log_insight", map[string]any{"subject": "user", "metric": "prefers_language", "value": "go"})
	id, _ := r["activity_id"].(string)
	if id == "" {
		t.Fatalf("no activity_id in %v", r)
	}
	// The edge starts the core in the background; the events are
	// queryable as soon as it runs and its uploader has committed.
	waitFor(t, 90*time.Second, func() bool { return server.NewSocketClient(e.dataDir).Healthy(context.Background()) })
	e.waitCount("SELECT count(*) FROM claude_stream WHERE activity_id = '"+id+"' AND customer = 'tester' AND _source = 'mcp'", 1, 10*time.Second)
	e.waitCount("SELECT count(*) FROM insight_atoms WHERE customer_id = 'tester' AND subject = 'user' AND value::VARCHAR = '\"go\"'", 1, 10*time.Second)
	t.Logf("logged -> queryable (including the core's start): %s", time.Since(start))

	// Now the core runs: a new event is queryable within a second.
	t0 := time.Now()
	r = ed.call(t, "log_event", map[string]any{"activity": "completed_response", "features": map[string]any{"model": "claude"}, "revenue_impact": -0.01})
	e.waitCount("SELECT count(*) FROM claude_stream WHERE activity_id = '"+r["activity_id"].(string)+"'", 1, 5*time.Second)
	// The < 1 s target is measured by the lag benchmark (bench/), not asserted here.
	t.Logf("acknowledged -> queryable: %s", time.Since(t0))

	st := e.status()
	if st.Core.StartedBy != "edge" || st.Core.IdleExit != defaultCoreIdleExit {
		t.Errorf("core = %+v, want started by edge with the 30 min idle exit", st.Core)
	}
	if len(st.Edges) != 1 || st.Edges[0].Customer != "tester" {
		t.Fatalf("edges = %+v", st.Edges)
	}
	if c := st.Edges[0].Client; c != "" && c != "e2e-client 1.0" {
		t.Errorf("edge client = %q", c)
	}
	human := e.mustRun(nil, "status")
	for _, w := range []string{"started by edge", "1 attached", "customer tester", "warehouse", "lag"} {
		if !strings.Contains(human, w) {
			t.Errorf("status output lacks %q:\n%s", w, human)
		}
	}
	// The edge leaves; the core it started stays (it exits only after 30 idle minutes).
	ed.close()
	waitFor(t, 10*time.Second, func() bool { return len(e.status().Edges) == 0 })
	if !server.CoreRunning(e.dataDir) {
		t.Fatal("the core must outlive the edge that started it")
	}
	// The edge reported its tool calls to the core's /metrics.
	resp, err := http.Get("http://" + st.Core.Addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, w := range []string{
		`activitybi_mcp_tool_calls_total{outcome="ok",surface="stdio",tool="log_event"} 2`,
		`activitybi_mcp_tool_calls_total{outcome="ok",surface="stdio",tool="log_insight"} 1`,
		`activitybi_mcp_tool_duration_seconds_count{surface="stdio",tool="log_event"} 2`,
	} {
		if !strings.Contains(string(metrics), w) {
			t.Errorf("core /metrics lacks %s", w)
		}
	}
	out := e.mustRun(nil, "stop")
	if !strings.Contains(out, "drained") {
		t.Errorf("stop: %q", out)
	}
	if server.CoreRunning(e.dataDir) {
		t.Fatal("core still running after stop")
	}
	if n := e.count("SELECT count(*) FROM claude_stream"); n != 2 {
		t.Fatalf("after stop: %d events, want 2", n)
	}
}

func waitFor(t *testing.T, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met in %s", timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestFiveEdgesStartOneCore(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	t.Cleanup(e.stopCore)
	const edges, perEdge = 5, 40
	eds := make([]*edge, edges)
	var wg sync.WaitGroup
	for i := range eds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			eds[i] = e.startEdge()
		}()
	}
	wg.Wait()
	for i, ed := range eds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < perEdge; j++ {
				ed.call(t, "log_event", map[string]any{"activity": "called_tool", "activity_id": fmt.Sprintf("edge%d-%d", i, j)})
			}
			// a retry of one of them: stored once
			ed.call(t, "log_event", map[string]any{"activity": "called_tool", "activity_id": fmt.Sprintf("edge%d-0", i)})
		}()
	}
	wg.Wait()
	waitFor(t, 90*time.Second, func() bool { return server.NewSocketClient(e.dataDir).Healthy(context.Background()) })
	e.waitCount("SELECT count(*) FROM claude_stream", edges*perEdge, 30*time.Second)
	if n := e.count("SELECT count(DISTINCT activity_id) FROM claude_stream"); n != edges*perEdge {
		t.Fatalf("distinct ids = %d", n)
	}
	started := 0
	for _, ed := range eds {
		started += strings.Count(ed.log(), "started a core in the background")
	}
	if started != 1 {
		logs := ""
		for _, ed := range eds {
			logs += ed.log()
		}
		t.Fatalf("%d edges started a core, want exactly 1:\n%s", started, logs)
	}
	waitFor(t, 20*time.Second, func() bool { return len(e.status().Edges) == edges })
}

func TestEdgeLogsWhileNoCoreRuns(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ed := e.startEdge("--no-core")
	for i := 0; i < 10; i++ {
		ed.call(t, "log_event", map[string]any{"activity": "called_tool", "activity_id": fmt.Sprintf("offline-%d", i)})
	}
	ed.call(t, "log_insight", map[string]any{"subject": "project:x", "metric": "builds", "value": 3})
	ed.close()
	if server.CoreRunning(e.dataDir) {
		t.Fatal("--no-core must not start a core")
	}
	out := e.mustRun(nil, "status")
	if !strings.Contains(out, "not running") || !strings.Contains(out, "11 records not yet in the warehouse") {
		t.Fatalf("status with no core:\n%s", out)
	}
	c := e.startCore()
	defer c.stop(t)
	e.waitCount("SELECT count(*) FROM claude_stream WHERE activity_id LIKE 'offline-%'", 10, 10*time.Second)
	e.waitCount("SELECT count(*) FROM insight_atoms", 1, 10*time.Second)
}

// bearer adds a token to every request.
type bearer struct{ token string }

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return http.DefaultTransport.RoundTrip(r)
}

func TestTokensIsolateCustomersOverHTTP(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tokA, _, _ := e.createToken("--customer", "alice")
	tokB, idB, _ := e.createToken("--customer", "bob")
	c := e.startCore()
	defer c.stop(t)
	base := c.info.URL()
	ctx := context.Background()
	session := func(tok string) (*mcp.ClientSession, error) {
		tr := &mcp.StreamableClientTransport{Endpoint: base + "/mcp", HTTPClient: &http.Client{Transport: bearer{tok}}}
		return mcp.NewClient(&mcp.Implementation{Name: "http-e2e", Version: "1"}, nil).Connect(ctx, tr, nil)
	}
	post := func(path, tok, body string) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, base+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-ndjson")
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, tc := range []struct{ tok, who string }{{tokA, "alice"}, {tokB, "bob"}} {
		cs, err := session(tc.tok)
		if err != nil {
			t.Fatal(err)
		}
		// The same activity_id for both: each customer gets its own row.
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "log_event", Arguments: map[string]any{"activity": "called_tool", "activity_id": "shared-id", "features": map[string]any{"who": tc.who}}})
		if err != nil || res.IsError {
			t.Fatalf("%s: %v %v", tc.who, err, res)
		}
		res, _ = cs.CallTool(ctx, &mcp.CallToolParams{Name: "log_event", Arguments: map[string]any{"activity": "called_tool", "customer": "alice"}})
		if !res.IsError {
			t.Fatalf("%s: a customer argument must be refused", tc.who)
		}
		cs.Close()
		if code, out := post("/v1/events", tc.tok, `{"activity":"submitted_prompt","activity_id":"p-1","feature_json":{"who":"`+tc.who+`"}}`); code != 200 {
			t.Fatalf("%s /v1/events: %d %s", tc.who, code, out)
		}
		if code, out := post("/v1/events", tc.tok, `{"activity":"submitted_prompt","customer":"alice"}`); code != 422 || !strings.Contains(out, "customer") {
			t.Fatalf("%s: a record naming a customer: %d %s", tc.who, code, out)
		}
		if code, _ := post("/v1/events?customer=alice", tc.tok, `{"activity":"submitted_prompt"}`); code != 400 {
			t.Fatalf("%s: ?customer= must be refused, got %d", tc.who, code)
		}
		// A customer token is not an admin token: no analyst SQL.
		if code, _ := post("/v1/sql", tc.tok, `{"sql":"SELECT * FROM claude_stream"}`); code != 401 {
			t.Fatalf("%s: /v1/sql with a customer token: %d, want 401", tc.who, code)
		}
	}
	e.waitCount("SELECT count(*) FROM claude_stream", 4, 10*time.Second)
	for _, who := range []string{"alice", "bob"} {
		if n := e.count("SELECT count(*) FROM claude_stream WHERE customer = '" + who + "' AND (feature_json->>'who') = '" + who + "'"); n != 2 {
			t.Fatalf("%s has %d of their own rows, want 2", who, n)
		}
	}
	if n := e.count("SELECT count(*) FROM claude_stream WHERE customer <> (feature_json->>'who')"); n != 0 {
		t.Fatalf("%d rows landed under another customer", n)
	}

	// Revoked: refused at once, on /mcp and /v1/events; a session open
	// with the token fails its next call with an auth error (that its GET
	// stream and the session end within 2 s is
	// TestMCPRefusedTokenEndsItsStreamsAndSessions, internal/server).
	live, err := session(tokB)
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	e.mustRun(nil, "token", "revoke", idB)
	revoked := time.Now()
	waitFor(t, 10*time.Second, func() bool {
		_, err := live.CallTool(ctx, &mcp.CallToolParams{Name: "log_event", Arguments: map[string]any{"activity": "called_tool"}})
		return err != nil && strings.Contains(err.Error(), "Unauthorized")
	})
	t.Logf("the live session failed %v after the revoke", time.Since(revoked).Round(time.Millisecond))
	waitFor(t, 3*time.Second, func() bool { code, _ := post("/v1/events", tokB, `{"activity":"called_tool"}`); return code == 401 })
	if code, out := post("/v1/events", tokB, `{"activity":"called_tool"}`); code != 401 || !strings.Contains(out, "revoked") {
		t.Fatalf("revoked token: %d %s", code, out)
	}
	if _, err := session(tokB); err == nil {
		t.Fatal("a revoked token must not open an MCP session")
	}
	// Expired: a token that lapses while the core runs.
	store, err := auth.Open(e.dataDir)
	if err != nil {
		t.Fatal(err)
	}
	tokC, _, err := store.Create("carol", time.Now().Add(2*time.Second), "expires soon")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 3*time.Second, func() bool { code, _ := post("/v1/events", tokC, `{"activity":"called_tool"}`); return code == 200 })
	waitFor(t, 10*time.Second, func() bool { code, _ := post("/v1/events", tokC, `{"activity":"called_tool"}`); return code == 401 })
	if code, out := post("/v1/events", tokC, `{"activity":"called_tool"}`); !strings.Contains(out, "expired") {
		t.Fatalf("expired token: %d %s", code, out)
	}
	if _, err := session(tokC); err == nil {
		t.Fatal("an expired token must not open an MCP session")
	}
	if code, _ := post("/v1/events", "", `{"activity":"called_tool"}`); code != 401 {
		t.Fatalf("no token: %d", code)
	}
}

func TestCoreStartedByEdgeExitsWhenIdle(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	t.Cleanup(e.stopCore)
	ed := e.startEdge("--core-idle-exit", "2s")
	ed.call(t, "log_event", map[string]any{"activity": "called_tool", "activity_id": "before-idle"})
	waitFor(t, 90*time.Second, func() bool { return server.NewSocketClient(e.dataDir).Healthy(context.Background()) })
	// While an edge is attached the core stays, however long.
	time.Sleep(3 * time.Second)
	if !server.CoreRunning(e.dataDir) {
		t.Fatal("the core exited while an edge was attached")
	}
	ed.close()
	waitFor(t, 30*time.Second, func() bool { return !server.CoreRunning(e.dataDir) })
	// It drained before exiting.
	if n := e.count("SELECT count(*) FROM claude_stream WHERE activity_id = 'before-idle'"); n != 1 {
		t.Fatalf("event not loaded before the idle exit: %d", n)
	}
}

func TestStoppedCoreIsNotRestartedByEdges(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	t.Cleanup(e.stopCore)
	ed := e.startEdge()
	ed.call(t, "log_event", map[string]any{"activity": "called_tool"})
	waitFor(t, 90*time.Second, func() bool { return len(e.status().Edges) == 1 })
	e.mustRun(nil, "stop")
	// The edge keeps logging to the spool and leaves the core stopped.
	ed.call(t, "log_event", map[string]any{"activity": "called_tool", "activity_id": "while-stopped"})
	time.Sleep(2 * time.Second)
	if server.CoreRunning(e.dataDir) {
		t.Fatal("an edge restarted a core that was stopped by hand")
	}
	// A core started by hand picks the spooled event up, and the edge attaches to it.
	c := e.startCore()
	defer c.stop(t)
	e.waitCount("SELECT count(*) FROM claude_stream WHERE activity_id = 'while-stopped'", 1, 10*time.Second)
	waitFor(t, 20*time.Second, func() bool { return len(e.status().Edges) == 1 })
}

// TestTypeScriptClientOverStdio drives the binary with the TypeScript MCP
// SDK (test/tsclient): another implementation of the protocol than ours.
func TestTypeScriptClientOverStdio(t *testing.T) {
	t.Parallel()
	node, err := exec.LookPath("node")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("node is required in CI (.ci/run installs it)")
		}
		t.Skip("node not installed")
	}
	dir, _ := filepath.Abs("../../test/tsclient")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@modelcontextprotocol", "sdk")); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("test/tsclient has no node_modules: run `npm ci --prefix test/tsclient` (scripts/test does)")
		}
		t.Skip("run `npm ci --prefix test/tsclient` first")
	}
	e := newEnv(t)
	c := e.startCore()
	defer c.stop(t)
	cmd := exec.Command(node, filepath.Join(dir, "client.mjs"), binPath, "mcp")
	cmd.Env = e.environ()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("ts client: %v\n%s", err, errb.String())
	}
	var res struct {
		ServerInfo struct{ Name string }
		Tools      []string
		Results    []map[string]any
		IsError    []bool
	}
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	if res.ServerInfo.Name != "activitybi" || len(res.Results) != 2 || res.IsError[0] || res.IsError[1] {
		t.Fatalf("ts client result: %s", out.String())
	}
	id, _ := res.Results[0]["activity_id"].(string)
	e.waitCount("SELECT count(*) FROM claude_stream WHERE activity_id = '"+id+"' AND (feature_json->>'tool') = 'ts-sdk'", 1, 10*time.Second)
	e.waitCount("SELECT count(*) FROM insight_atoms WHERE metric = 'prefers_language'", 1, 10*time.Second)
}

// TestGetContextAcrossSessions: told in one session, recalled in another.
func TestGetContextAcrossSessions(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	t.Cleanup(e.stopCore)
	a := e.startEdge()
	a.call(t, "log_event", map[string]any{"activity": "called_tool", "features": map[string]any{"tool": "Bash", "success": false, "error": "exit 1", "project": "demo"}})
	waitFor(t, 90*time.Second, func() bool { return server.NewSocketClient(e.dataDir).Healthy(context.Background()) })
	b := e.startEdge()
	// B reads (and caches) the context before A tells it anything.
	before := b.call(t, "get_context", map[string]any{})
	if before["stale"] != false {
		t.Fatalf("first context: %v", before)
	}
	a.call(t, "log_insight", map[string]any{"subject": "user", "metric": "prefers_language", "value": "go"})
	start := time.Now()
	var got map[string]any
	waitFor(t, 10*time.Second, func() bool {
		got = b.call(t, "get_context", map[string]any{"topics": []string{"facts"}})
		return strings.Contains(fmt.Sprint(got["text"]), "prefers_language")
	})
	t.Logf("insight from edge A visible to edge B's get_context after %s (target < 1 s)", time.Since(start))
	res, err := b.cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "get_context", Arguments: map[string]any{}})
	if err != nil || res.IsError {
		t.Fatal(err, res)
	}
	text := res.Content[0].(*mcp.TextContent).Text
	for _, w := range []string{"prefers_language", "go", "Bash"} {
		if !strings.Contains(text, w) {
			t.Errorf("context text lacks %q:\n%s", w, text)
		}
	}
	// Bad input gets a clear tool error.
	for args, want := range map[string]string{
		`{"max_tokens": 5}`:       "max_tokens",
		`{"topics": ["weather"]}`: "topic",
		`{"cursor": "garbage"}`:   "cursor",
		`{"scope": "no-such"}`:    "scope",
		`{"customer": "bob"}`:     "customer",
	} {
		var m map[string]any
		json.Unmarshal([]byte(args), &m)
		res, err := b.cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "get_context", Arguments: m})
		if err != nil || !res.IsError || !strings.Contains(res.Content[0].(*mcp.TextContent).Text, want) {
			t.Errorf("get_context %s: want a tool error about %s, got %v %v", args, want, err, res)
		}
	}
}

// TestGetContextIsolatesIdentities: two identities on one data directory
// (two edges, one core) never see each other's memory.
func TestGetContextIsolatesIdentities(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	t.Cleanup(e.stopCore)
	alice := e.startEdgeEnv([]string{"ACTIVITYBI_CUSTOMER=alice"})
	bob := e.startEdgeEnv([]string{"ACTIVITYBI_CUSTOMER=bob"})
	alice.call(t, "log_insight", map[string]any{"subject": "user", "metric": "secret_word", "value": "alice-only"})
	bob.call(t, "log_insight", map[string]any{"subject": "user", "metric": "secret_word", "value": "bob-only"})
	waitFor(t, 90*time.Second, func() bool { return server.NewSocketClient(e.dataDir).Healthy(context.Background()) })
	for _, tc := range []struct {
		ed         *edge
		own, other string
	}{{alice, "alice-only", "bob-only"}, {bob, "bob-only", "alice-only"}} {
		var got string
		waitFor(t, 10*time.Second, func() bool {
			got = fmt.Sprint(tc.ed.call(t, "get_context", map[string]any{})["text"])
			return strings.Contains(got, tc.own)
		})
		if strings.Contains(got, tc.other) {
			t.Fatalf("%s sees %s: %s", tc.own, tc.other, got)
		}
	}
}
