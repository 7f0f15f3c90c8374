package main

// End-to-end tests of the memory (get_context) tiers: a real redis-server
// that the tests start, kill and restart; real edges and a real core; real
// HTTP with bearer tokens.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/redis/go-redis/v9"

	"github.com/activitybi/activitybi/internal/cache/redistest"
	"github.com/activitybi/activitybi/internal/server"
)

// metric reads one sample of the core's /metrics ("name{labels}" exactly as
// exposed); -1 when absent.
func (c *core) metric(t *testing.T, sample string) float64 {
	t.Helper()
	resp, err := http.Get(c.info.URL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, sample+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return f
		}
	}
	return -1
}

// getContext calls get_context and fails the test on any error: the
// tiers must never make Claude see one.
func getContext(t *testing.T, cs *mcp.ClientSession, args map[string]any) (text, source string, stale bool) {
	t.Helper()
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "get_context", Arguments: args})
	if err != nil {
		t.Fatalf("get_context: %v", err)
	}
	if res.IsError {
		t.Fatalf("get_context: tool error: %v", res.Content[0].(*mcp.TextContent).Text)
	}
	sc := res.StructuredContent.(map[string]any)
	return res.Content[0].(*mcp.TextContent).Text, sc["source"].(string), sc["stale"].(bool)
}

// TestGetContextSurvivesRedisRestart: an edge and a core share a Redis
// (both with a 1 ns L1, so that every get_context goes past L1). Redis is
// killed mid-run: get_context keeps answering, without an error, from the
// core; an insight logged during the outage shows; Redis comes back on the
// same port and L2 answers again. The core's /metrics counts it all,
// including what the edge reported.
func TestGetContextSurvivesRedisRestart(t *testing.T) {
	t.Parallel()
	r := redistest.Start(t)
	e := newEnv(t)
	redisEnv := "ACTIVITYBI_CACHE_REDIS_URL=" + r.URL()
	c := e.startCoreArgs([]string{"--cache-l1-ttl", "1ns"}, redisEnv)
	defer c.stop(t)
	ed := e.startEdgeEnv([]string{redisEnv}, "--cache-l1-ttl", "1ns")
	ed.call(t, "log_insight", map[string]any{"subject": "user", "metric": "before_outage", "value": "kept"})
	waitFor(t, 10*time.Second, func() bool {
		text, _, _ := getContext(t, ed.cs, nil)
		return strings.Contains(text, "before_outage")
	})
	waitFor(t, 10*time.Second, func() bool { _, src, _ := getContext(t, ed.cs, nil); return src == "l2" })

	r.Kill()
	sources := map[string]int{}
	for range 30 {
		text, src, stale := getContext(t, ed.cs, nil)
		if !strings.Contains(text, "before_outage") || stale {
			t.Fatalf("during the outage (stale %v): %s", stale, text)
		}
		sources[src]++
	}
	if sources["load"] != 30 {
		t.Fatalf("during the outage the core must answer every get_context: %v", sources)
	}
	ed.call(t, "log_insight", map[string]any{"subject": "user", "metric": "during_outage", "value": "seen"})
	waitFor(t, 10*time.Second, func() bool {
		text, _, _ := getContext(t, ed.cs, nil)
		return strings.Contains(text, "during_outage")
	})

	r.Restart() // the same port, empty
	start := time.Now()
	waitFor(t, 20*time.Second, func() bool { _, src, _ := getContext(t, ed.cs, nil); return src == "l2" })
	t.Logf("L2 answered again %s after Redis restarted", time.Since(start).Round(time.Millisecond))
	if text, _, _ := getContext(t, ed.cs, nil); !strings.Contains(text, "during_outage") {
		t.Fatalf("after the restart: %s", text)
	}
	// The edge reports its cache counters every 2 s. It met the outage as
	// a failed read, or as reads skipped while its subscriber had dropped
	// (which comes first is a race between the two connections).
	waitFor(t, 10*time.Second, func() bool {
		met := max(0, c.metric(t, `activitybi_cache_l2_errors_total{op="get",process="edge"}`)) +
			max(0, c.metric(t, `activitybi_cache_l2_errors_total{op="subscribe",process="edge"}`)) +
			max(0, c.metric(t, `activitybi_cache_l2_bypassed_total{process="edge"}`)) // -1: no such series yet
		return met > 0 && c.metric(t, `activitybi_cache_hits_total{process="edge",tier="l2"}`) >= 2
	})
	// The core met the outage too: a failed read, or reads skipped while
	// Redis rested or its subscriber had dropped.
	if v := max(0, c.metric(t, `activitybi_cache_l2_errors_total{op="get",process="core"}`)) +
		max(0, c.metric(t, `activitybi_cache_l2_errors_total{op="subscribe",process="core"}`)) +
		max(0, c.metric(t, `activitybi_cache_l2_bypassed_total{process="core"}`)); v <= 0 {
		t.Errorf("the core counted nothing of the outage")
	}
	for _, s := range []string{
		`activitybi_cache_misses_total{process="edge",tier="l1"}`,
		`activitybi_cache_lookup_duration_seconds_count{process="edge",tier="load"}`,
		`activitybi_cache_invalidations_sent_total{process="core"}`,
		`activitybi_memory_loads_total{from="row"}`,
	} {
		if v := c.metric(t, s); v <= 0 {
			t.Errorf("%s = %v, want > 0", s, v)
		}
	}
}

// TestGetContextIsolatesTokensOverHTTP: two customers' tokens on /mcp of
// one core with Redis (core L1 at 1 ns, so L2 answers): neither ever sees
// the other's context, Redis holds no customer name in its keys or
// pub/sub messages, and an invalidation of one leaves the other alone.
func TestGetContextIsolatesTokensOverHTTP(t *testing.T) {
	t.Parallel()
	r := redistest.Start(t)
	e := newEnv(t)
	tokA, _, _ := e.createToken("--customer", "alice")
	tokB, _, _ := e.createToken("--customer", "bob")
	c := e.startCoreArgs([]string{"--cache-l1-ttl", "1ns"}, "ACTIVITYBI_CACHE_REDIS_URL="+r.URL())
	defer c.stop(t)
	ctx := context.Background()
	rc := redis.NewClient(&redis.Options{Addr: r.Addr(), DisableIdentity: true})
	defer rc.Close()
	// The channel is in the installation's namespace, derived from the
	// installation id the core made in its data directory.
	ns, err := installationNamespace(e.dataDir)
	if err != nil {
		t.Fatal(err)
	}
	sub := rc.Subscribe(ctx, ns+":inv")
	defer sub.Close()
	if _, err := sub.Receive(ctx); err != nil { // the subscription's confirmation
		t.Fatal(err)
	}
	var msgsMu sync.Mutex
	var msgs []string
	go func() {
		for m := range sub.Channel() {
			msgsMu.Lock()
			msgs = append(msgs, m.Payload)
			msgsMu.Unlock()
		}
	}()

	session := func(tok string) *mcp.ClientSession {
		tr := &mcp.StreamableClientTransport{Endpoint: c.info.URL() + "/mcp", HTTPClient: &http.Client{Transport: bearer{tok}}}
		cs, err := mcp.NewClient(&mcp.Implementation{Name: "memory-http-e2e", Version: "1"}, nil).Connect(ctx, tr, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cs.Close() })
		return cs
	}
	users := []struct {
		who        string
		cs         *mcp.ClientSession
		own, other string
	}{{"alice", session(tokA), "alice-only", "bob-only"}, {"bob", session(tokB), "bob-only", "alice-only"}}
	for _, u := range users {
		res, err := u.cs.CallTool(ctx, &mcp.CallToolParams{Name: "log_insight", Arguments: map[string]any{"subject": "user", "metric": "secret_word", "value": u.own}})
		if err != nil || res.IsError {
			t.Fatalf("%s log_insight: %v %v", u.who, err, res)
		}
	}
	check := func(round string) {
		for _, u := range users {
			var text string
			waitFor(t, 10*time.Second, func() bool {
				text, _, _ = getContext(t, u.cs, nil)
				return strings.Contains(text, u.own)
			})
			// At least 10 answers, and until Redis answered one (a slow
			// machine can time L2 reads out for a while: they then fall
			// through to the store, which must be isolated as well).
			sources := map[string]int{}
			deadline := time.Now().Add(30 * time.Second)
			for n := 0; n < 10 || sources["l2"] == 0; n++ {
				if time.Now().After(deadline) {
					t.Fatalf("%s, %s: no answer came from Redis in 30 s (%v): L2 is not exercised", round, u.who, sources)
				}
				text, src, _ := getContext(t, u.cs, nil)
				if strings.Contains(text, u.other) || !strings.Contains(text, u.own) {
					t.Fatalf("%s, %s: %s", round, u.who, text)
				}
				sources[src]++
			}
		}
	}
	check("first")
	// alice changes her mind; bob's context must not move, alice's must.
	res, err := users[0].cs.CallTool(ctx, &mcp.CallToolParams{Name: "log_insight", Arguments: map[string]any{"subject": "user", "metric": "secret_word", "value": "alice-later"}})
	if err != nil || res.IsError {
		t.Fatal(err, res)
	}
	users[0].own = "alice-later"
	check("after alice's second insight")

	keys, err := rc.Keys(ctx, "*").Result()
	if err != nil || len(keys) == 0 {
		t.Fatalf("redis keys: %v %v", keys, err)
	}
	msgsMu.Lock()
	defer msgsMu.Unlock()
	if len(msgs) == 0 {
		t.Fatal("no invalidation went through pub/sub")
	}
	for _, s := range append(keys, msgs...) {
		for _, name := range []string{"alice", "bob"} {
			if strings.Contains(s, name) {
				t.Errorf("redis key or message %q names a customer", s)
			}
		}
	}
}

// TestMemoryWarmAndRefresh: an edge warms its customer's context once
// attached (its first get_context is an L1 hit); a new event (no insight,
// so no invalidation) reaches an edge's cached context through the core's
// refresh round (here every second instead of 5 minutes), which
// invalidates what changed; a core warms on start.
func TestMemoryWarmAndRefresh(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.startCoreArgs([]string{"--memory-refresh-every", "1s"})
	a := e.startEdge()
	a.call(t, "log_event", map[string]any{"activity": "called_tool", "features": map[string]any{"tool": "FirstTool", "success": true}})
	e.waitCount("SELECT count(*) FROM claude_stream", 1, 10*time.Second)

	// A new edge: once it attached and warmed (its report shows the load),
	// the first get_context comes from its L1. Edge a's own warm-up is a
	// load too: wait for it first, so that the wait for b's is not met by
	// a's.
	const edgeLoads = `activitybi_cache_loads_total{process="edge"}`
	waitFor(t, 20*time.Second, func() bool { return c.metric(t, edgeLoads) >= 1 })
	b := e.startEdge()
	waitFor(t, 20*time.Second, func() bool { return c.metric(t, edgeLoads) >= 2 })
	text, src, _ := getContext(t, b.cs, map[string]any{"topics": []string{"tools"}})
	if src != "l1" || !strings.Contains(text, "FirstTool") {
		t.Fatalf("first get_context of a warmed edge: source %s, %s", src, text)
	}
	// b caches it (5 min); a new event shows through the refresh.
	a.call(t, "log_event", map[string]any{"activity": "called_tool", "features": map[string]any{"tool": "LaterTool", "success": true}})
	start := time.Now()
	waitFor(t, 20*time.Second, func() bool {
		text, _, _ := getContext(t, b.cs, map[string]any{"topics": []string{"tools"}})
		return strings.Contains(text, "LaterTool")
	})
	t.Logf("a new event reached a cached context in %s (refresh every 1 s)", time.Since(start).Round(time.Millisecond))
	for _, s := range []string{
		`activitybi_memory_refreshed_total{kind="refresh",result="changed"}`,
		`activitybi_memory_refresh_duration_seconds_count{kind="refresh"}`,
		`activitybi_memory_refresh_round_duration_seconds_count{kind="refresh"}`,
		`activitybi_memory_loads_total{from="row"}`,
	} {
		if v := c.metric(t, s); v <= 0 {
			t.Errorf("%s = %v, want > 0", s, v)
		}
	}
	a.close()
	b.close()
	c.stop(t)

	// A new core warms the customers of the last 7 days on start.
	c = e.startCoreArgs(nil)
	defer c.stop(t)
	waitFor(t, 20*time.Second, func() bool {
		return c.metric(t, `activitybi_memory_refresh_round_duration_seconds_count{kind="warm"}`) == 1
	})
	if v := c.metric(t, `activitybi_memory_refreshed_total{kind="warm",result="unchanged"}`); v != 1 {
		t.Errorf("warm: %v unchanged contexts, want 1 (the same content as the row the last core wrote)", v)
	}
	// The warm-up filled the core's cache: it answers from L1.
	var resp server.ContextResponse
	if err := postSocket(e.dataDir, "/v1/context", `{"customer":"tester","scope":""}`, &resp); err != nil {
		t.Fatal(err)
	}
	if resp.Source != "l1" || !strings.Contains(string(resp.Context), "LaterTool") {
		t.Fatalf("after the warm-up the core answers from %s: %.200s", resp.Source, resp.Context)
	}
}

// postSocket POSTs body to the core's socket and decodes the JSON answer.
func postSocket(dataDir, path, body string, out any) error {
	c := server.NewSocketClient(dataDir)
	req, err := http.NewRequest(http.MethodPost, "http://activitybi-core"+path, strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return fmt.Errorf("%s: %d %s", path, resp.StatusCode, b)
	}
	return json.Unmarshal(b, out)
}

// TestTwoInstallationsShareARedis: two installations (data directories,
// each with its own core and warehouse) point at one Redis and both have a
// customer named "tester". Each one's get_context, answered from Redis,
// holds its own insight and never the other's: the Redis namespace is
// derived from each data directory's random installation id unless
// cache.namespace says otherwise.
func TestTwoInstallationsShareARedis(t *testing.T) {
	t.Parallel()
	r := redistest.Start(t)
	redisEnv := "ACTIVITYBI_CACHE_REDIS_URL=" + r.URL()
	type inst struct {
		e    *env
		ed   *edge
		mine string
	}
	var insts []inst
	for _, mine := range []string{"first_install", "second_install"} {
		e := newEnv(t)
		c := e.startCoreArgs([]string{"--cache-l1-ttl", "1ns"}, redisEnv)
		defer c.stop(t)
		ed := e.startEdgeEnv([]string{redisEnv}, "--cache-l1-ttl", "1ns")
		ed.call(t, "log_insight", map[string]any{"subject": "user", "metric": mine, "value": "here"})
		insts = append(insts, inst{e, ed, mine})
	}
	for _, in := range insts {
		waitFor(t, 20*time.Second, func() bool {
			text, src, _ := getContext(t, in.ed.cs, nil)
			return src == "l2" && strings.Contains(text, in.mine)
		})
	}
	for range 20 {
		for i, in := range insts {
			other := insts[1-i].mine
			if text, src, _ := getContext(t, in.ed.cs, nil); strings.Contains(text, other) || !strings.Contains(text, in.mine) {
				t.Fatalf("%s's get_context (%s) shows the other installation's insight:\n%s", in.mine, src, text)
			}
		}
	}
	keys, err := redis.NewClient(&redis.Options{Addr: r.Addr(), DisableIdentity: true}).Keys(context.Background(), "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	prefixes := map[string]bool{}
	for _, k := range keys {
		prefixes[strings.SplitN(k, ":", 2)[0]] = true
	}
	if len(prefixes) != 2 {
		t.Errorf("Redis key prefixes %v, want one per installation", prefixes)
	}
}

// installationNamespace is made once per data directory, read back the
// same however the directory's path is spelled, and differs between data
// directories; a damaged id file is an error that says what to do.
func TestInstallationNamespace(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	a, b := filepath.Join(root, "a"), filepath.Join(root, "b")
	na, err := installationNamespace(a)
	if err != nil {
		t.Fatal(err)
	}
	nb, err := installationNamespace(b)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(a, filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
	again, err := installationNamespace(filepath.Join(root, "link"))
	if err != nil || again != na || na == nb || !strings.HasPrefix(na, "activitybi-") || len(na) != len("activitybi-")+16 {
		t.Fatalf("a %q, b %q, a through a link %q %v", na, nb, again, err)
	}
	if st, err := os.Stat(filepath.Join(a, installationIDFile)); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("id file: %v %v", st, err)
	}
	if err := os.WriteFile(filepath.Join(b, installationIDFile), []byte("nope\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := installationNamespace(b); err == nil || !strings.Contains(err.Error(), "remove it") {
		t.Fatalf("damaged id: %v", err)
	}
}
