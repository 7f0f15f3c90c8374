package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/activitybi/activitybi/internal/spool"
	"github.com/activitybi/activitybi/internal/upload"
)

const fastProto = "2025-11-25"

// rawMCP posts one JSON-RPC message on an MCP session as a client would,
// and returns the status, headers and the JSON-RPC answer (the data of the
// SSE event when the go-sdk answered with a stream).
func rawMCP(t *testing.T, url, token, sid, body string, extra ...string) (int, http.Header, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url+"/mcp", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Protocol-Version", fastProto)
	if sid != "" {
		req.Header.Set("Mcp-Session-Id", sid)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(extra); i += 2 {
		req.Header.Set(extra[i], extra[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		var data []byte
		sc := bufio.NewScanner(bytes.NewReader(out))
		for sc.Scan() {
			if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				data = append(data, d...)
			}
		}
		out = data
	}
	return resp.StatusCode, resp.Header, bytes.TrimSpace(out)
}

// forceSDK is a header the fast path declines and the go-sdk ignores for
// protocol versions before 2026-07-28: the same request, served by the
// go-sdk.
var forceSDK = []string{"Mcp-Name", "log_event"}

func (b *httpBundle) connectMCP(t *testing.T, token string) *mcp.ClientSession {
	t.Helper()
	tr := &mcp.StreamableClientTransport{Endpoint: b.url + "/mcp", HTTPClient: &http.Client{Transport: bearerTransport{token}}, DisableStandaloneSSE: true}
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "t", Version: "1"}, nil).Connect(context.Background(), tr, nil)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// metric reads one sample of the core's /metrics (0 when absent).
func (b *httpBundle) metric(t *testing.T, name string) float64 {
	t.Helper()
	resp, err := http.Get(b.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	return 0
}

const fastServed = "activitybi_mcp_fast_path_calls_total"

func logEventBody(id string, args string) string {
	return `{"jsonrpc":"2.0","id":` + id + `,"method":"tools/call","params":{"name":"log_event","arguments":` + args + `}}`
}

// The same requests on the same session, once answered by the fast path and
// once by the go-sdk, give the same JSON-RPC answer byte for byte.
func TestMCPFastPathAnswersAsTheGoSDK(t *testing.T) {
	t.Parallel()
	b := setupHTTP(t, spool.Options{})
	cs := b.connectMCP(t, tokA)
	defer cs.Close()
	sid := cs.ID()
	ts := `"2026-11-20T10:00:00Z"`
	cases := []struct {
		name, id, args string
	}{
		{"ok", `7`, `{"activity":"called_tool","activity_id":"P-1","ts":` + ts + `,"features":{"tool":"Bash","n":1}}`},
		{"duplicate", `8`, `{"activity":"called_tool","activity_id":"P-1","ts":` + ts + `}`},
		{"string id", `"req-9"`, `{"activity":"ran_tests","activity_id":"P-2","ts":` + ts + `,"revenue_impact":-0.5,"link":"https://x.y/<z>&"}`},
		{"html in the id", `16`, `{"activity":"called_tool","activity_id":"P-<&>\u2028","ts":` + ts + `}`},
		{"bad activity", `10`, `{"activity":"NotAVerb","features":[1]}`},
		{"unknown field", `11`, `{"activity":"called_tool","colour":"red","ts":"yesterday"}`},
		{"customer field", `12`, `{"activity":"called_tool","customer":"bob"}`},
		{"arguments not an object", `13`, `[1,2]`},
		{"arguments null", `14`, `null`},
		{"invalid json in a field", `15`, `{"activity":"called_tool","features":"x","revenue_impact":"1"}`},
	}
	for _, c := range cases {
		before := b.metric(t, fastServed)
		fastArgs := strings.ReplaceAll(c.args, "P-", "fast-")
		sdkArgs := strings.ReplaceAll(c.args, "P-", "sdk-")
		code, hdr, fast := rawMCP(t, b.url, tokA, sid, logEventBody(c.id, fastArgs))
		if code != 200 || hdr.Get("Content-Type") != "application/json" {
			t.Fatalf("%s: fast path: HTTP %d %s: %s", c.name, code, hdr.Get("Content-Type"), fast)
		}
		if got := b.metric(t, fastServed); got != before+1 {
			t.Fatalf("%s: the fast path did not answer (served %v -> %v)", c.name, before, got)
		}
		code, hdr, sdk := rawMCP(t, b.url, tokA, sid, logEventBody(c.id, sdkArgs), forceSDK...)
		if code != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "text/event-stream") {
			t.Fatalf("%s: go-sdk: HTTP %d %s: %s", c.name, code, hdr.Get("Content-Type"), sdk)
		}
		if got := b.metric(t, fastServed); got != before+1 {
			t.Fatalf("%s: the forced request was answered by the fast path", c.name)
		}
		if want := bytes.ReplaceAll(sdk, []byte("sdk-"), []byte("fast-")); !bytes.Equal(fast, want) {
			t.Errorf("%s: answers differ:\nfast: %s\nsdk:  %s", c.name, fast, want)
		}
	}
	// One row per distinct id: P-1 twice (once a duplicate) and P-2, on
	// each path.
	ids := b.tool.eventIDs(t, "alice")
	want := map[string]int{"fast-1": 1, "fast-2": 1, "fast-<&>\u2028": 1, "sdk-1": 1, "sdk-2": 1, "sdk-<&>\u2028": 1}
	if fmt.Sprint(ids) != fmt.Sprint(want) {
		t.Fatalf("records by id = %v, want %v", ids, want)
	}
}

// The go-sdk client's own calls take the fast path (it sends what the fast
// path expects) and read its application/json answers.
func TestMCPFastPathWithTheGoSDKClient(t *testing.T) {
	t.Parallel()
	b := setupHTTP(t, spool.Options{})
	cs := b.connectMCP(t, tokA)
	defer cs.Close()
	ctx := context.Background()
	before := b.metric(t, fastServed)
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "log_event", Arguments: map[string]any{"activity": "called_tool", "activity_id": "c1"}})
	if err != nil || res.IsError {
		t.Fatalf("%v %v", err, res)
	}
	m, _ := res.StructuredContent.(map[string]any)
	if m["activity_id"] != "c1" || m["duplicate"] != false || text(res) == "" {
		t.Fatalf("result %+v %q", m, text(res))
	}
	res, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "log_event", Arguments: map[string]any{"activity": "called_tool", "activity_id": "c1"}})
	if err != nil || res.IsError || res.StructuredContent.(map[string]any)["duplicate"] != true {
		t.Fatalf("duplicate: %v %+v", err, res)
	}
	res, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "log_event", Arguments: map[string]any{"activity": "Bad"}})
	if err != nil || !res.IsError || !strings.Contains(text(res), "activity") {
		t.Fatalf("bad input: %v %+v", err, res)
	}
	if got := b.metric(t, fastServed); got != before+3 {
		t.Fatalf("fast path served %v of 3 calls", got-before)
	}
	// Everything else still works through the go-sdk on the same session.
	res, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "log_insight", Arguments: map[string]any{"subject": "user", "metric": "m", "value": 1}})
	if err != nil || res.IsError {
		t.Fatalf("log_insight: %v %+v", err, res)
	}
	if _, err := cs.ListTools(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if got := b.metric(t, fastServed); got != before+3 {
		t.Fatalf("fast path answered a call that is not log_event")
	}
}

// Refusals are the go-sdk's (or its auth middleware's) on both paths.
func TestMCPFastPathRefusals(t *testing.T) {
	t.Parallel()
	b := setupHTTP(t, spool.Options{})
	csA := b.connectMCP(t, tokA)
	sid := csA.ID()
	body := logEventBody(`1`, `{"activity":"called_tool"}`)
	type answer struct {
		code int
		www  string
		body string
	}
	both := func(token, sid string) (answer, answer) {
		c1, h1, b1 := rawMCP(t, b.url, token, sid, body)
		c2, h2, b2 := rawMCP(t, b.url, token, sid, body, forceSDK...)
		return answer{c1, h1.Get("WWW-Authenticate"), string(b1)}, answer{c2, h2.Get("WWW-Authenticate"), string(b2)}
	}
	before := b.metric(t, fastServed)
	for _, c := range []struct {
		name, token, sid string
		code             int
	}{
		{"unknown token", "revoked-or-wrong", sid, http.StatusUnauthorized},
		{"no token", "", sid, http.StatusUnauthorized},
		{"another customer's session", tokB, sid, http.StatusForbidden},
		{"unknown session", tokA, "no-such-session", http.StatusNotFound},
	} {
		fast, sdk := both(c.token, c.sid)
		if fast.code != c.code || fast != sdk {
			t.Errorf("%s: fast-path request got %+v, go-sdk request %+v; want HTTP %d from both", c.name, fast, sdk, c.code)
		}
	}
	// A deleted session: the go-sdk client's Close sends DELETE.
	if err := csA.Close(); err != nil {
		t.Fatal(err)
	}
	fast, sdk := both(tokA, sid)
	if fast.code != http.StatusNotFound || fast != sdk {
		t.Errorf("deleted session: %+v vs %+v, want 404 from both", fast, sdk)
	}
	if got := b.metric(t, fastServed); got != before {
		t.Fatalf("the fast path answered %v refused calls", got-before)
	}
	if n := len(b.tool.records(t)["event"]); n != 0 {
		t.Fatalf("%d events logged by refused calls", n)
	}
}

// Requests the fast path does not recognise reach the go-sdk with their
// body intact.
func TestMCPFastPathFallsThroughWithTheBody(t *testing.T) {
	t.Parallel()
	b := setupHTTP(t, spool.Options{})
	cs := b.connectMCP(t, tokA)
	defer cs.Close()
	sid := cs.ID()
	before := b.metric(t, fastServed)
	// Another tool, _meta, a batch, a notification, a protocol version it
	// does not take: all answered by the go-sdk as usual.
	code, _, out := rawMCP(t, b.url, tokA, sid, `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"log_insight","arguments":{"subject":"user","metric":"m","value":2}}}`)
	if code != 200 || !bytes.Contains(out, []byte(`"result"`)) {
		t.Fatalf("log_insight: %d %s", code, out)
	}
	code, _, out = rawMCP(t, b.url, tokA, sid, `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"_meta":{"progressToken":"p"},"name":"log_event","arguments":{"activity":"called_tool","activity_id":"m1"}}}`)
	if code != 200 || !bytes.Contains(out, []byte(`"activity_id":"m1"`)) {
		t.Fatalf("_meta: %d %s", code, out)
	}
	code, _, out = rawMCP(t, b.url, tokA, sid, `[`+logEventBody("3", `{"activity":"called_tool"}`)+`]`)
	if code != http.StatusBadRequest {
		t.Fatalf("a batch at %s: HTTP %d %s, want the go-sdk's 400", fastProto, code, out)
	}
	code, _, _ = rawMCP(t, b.url, tokA, sid, `{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	if code != http.StatusAccepted {
		t.Fatalf("notification: HTTP %d", code)
	}
	code, _, out = rawMCP(t, b.url, tokA, sid, logEventBody("4", `{"activity":"called_tool"`))
	if code != http.StatusBadRequest {
		t.Fatalf("bad JSON: HTTP %d %s", code, out)
	}
	// A body over maxFastBody is read back from the start by the go-sdk:
	// it answers the tool's own verdict on the whole event (too large).
	big := logEventBody("5", `{"activity":"called_tool","activity_id":"big","features":{"pad":"`+strings.Repeat("x", maxFastBody)+`"}}`)
	code, _, out = rawMCP(t, b.url, tokA, sid, big)
	if code != 200 || !bytes.Contains(out, []byte(`"isError":true`)) || !bytes.Contains(out, []byte(`feature_json: is 131`)) {
		t.Fatalf("big body: %d %.300s", code, out)
	}
	if got := b.metric(t, fastServed); got != before {
		t.Fatalf("the fast path answered %v requests that were the go-sdk's", got-before)
	}
}

// Many clients at once: every acknowledged call is in the spool exactly
// once, whichever path answered it.
func TestMCPFastPathConcurrent(t *testing.T) {
	t.Parallel()
	b := setupHTTP(t, spool.Options{})
	const sessions, calls = 8, 50
	var wg sync.WaitGroup
	var mu sync.Mutex
	acked := map[string]bool{}
	for s := range sessions {
		cs := b.connectMCP(t, tokA)
		defer cs.Close()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range calls {
				id := fmt.Sprintf("s%d-%d", s, i)
				res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "log_event",
					Arguments: map[string]any{"activity": "called_tool", "activity_id": id}})
				if err != nil || res.IsError {
					t.Errorf("%s: %v %v", id, err, res)
					return
				}
				mu.Lock()
				acked[id] = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	got := b.tool.eventIDs(t, "alice")
	if len(got) != len(acked) || len(acked) != sessions*calls {
		t.Fatalf("%d acknowledged, %d distinct in the spool, want %d", len(acked), len(got), sessions*calls)
	}
	for id, n := range got {
		if n != 1 || !acked[id] {
			t.Fatalf("%s: %d records, acknowledged %v", id, n, acked[id])
		}
	}
	if served := b.metric(t, fastServed); served < sessions*calls-sessions {
		t.Fatalf("fast path served %v of %d calls", served, sessions*calls)
	}
}

func TestSniffLogEventCall(t *testing.T) {
	for _, c := range []struct {
		in       string
		ok       bool
		id, args string
	}{
		{logEventBody("1", `{"a":1}`), true, "1", `{"a":1}`},
		{` { "method" : "tools/call", "params":{"arguments" : [ "x" , {"}":"{"} ],"name":"log_event"},"id":"a b","jsonrpc":"2.0" } `, true, `"a b"`, `[ "x" , {"}":"{"} ]`},
		{`{"jsonrpc":"2.0","id":-12,"method":"tools/call","params":{"name":"log_event"}}`, true, "-12", ""},
		{`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"log_insight"}}`, false, "", ""},
		{`{"jsonrpc":"2.0","id":1.5,"method":"tools/call","params":{"name":"log_event"}}`, false, "", ""},
		{`{"jsonrpc":"2.0","id":1234567890123456,"method":"tools/call","params":{"name":"log_event"}}`, false, "", ""},
		{`{"jsonrpc":"2.0","id":"a\"b","method":"tools/call","params":{"name":"log_event"}}`, false, "", ""},
		{"{\"jsonrpc\":\"2.0\",\"id\":\"r\u2028x\",\"method\":\"tools/call\",\"params\":{\"name\":\"log_event\"}}", false, "", ""},
		{`{"jsonrpc":"2.0","id":"a<b","method":"tools/call","params":{"name":"log_event"}}`, false, "", ""},
		{`{"jsonrpc":"2.0","id":"a&b","method":"tools/call","params":{"name":"log_event"}}`, false, "", ""},
		{`{"jsonrpc":"2.0","id":"é","method":"tools/call","params":{"name":"log_event"}}`, false, "", ""},
		{`{"jsonrpc":"2.0","id":null,"method":"tools/call","params":{"name":"log_event"}}`, false, "", ""},
		{`{"jsonrpc":"2.0","method":"tools/call","params":{"name":"log_event"}}`, false, "", ""},
		{`{"jsonrpc":"2.0","id":1,"id":2,"method":"tools/call","params":{"name":"log_event"}}`, false, "", ""},
		{`{"jsonrpc":"2.0","id":1,"Method":"tools/call","params":{"name":"log_event"}}`, false, "", ""},
		{`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"log_event","_meta":{}}}`, false, "", ""},
		{`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"log_event","arguments":{},"arguments":{}}}`, false, "", ""},
		{`{"jsonrpc":"2.0","id":1,"method":"tools\/call","params":{"name":"log_event"}}`, false, "", ""},
		{`[` + logEventBody("1", `{}`) + `]`, false, "", ""},
		{logEventBody("1", `{}`) + `x`, false, "", ""},
		{logEventBody("1", "{\"a\":\"\xff\"}"), false, "", ""},
	} {
		got, ok := sniffLogEventCall([]byte(c.in))
		if ok != c.ok || string(got.id) != c.id || string(got.args) != c.args {
			t.Errorf("sniff(%s) = %q %q %v, want %q %q %v", c.in, got.id, got.args, ok, c.id, c.args, c.ok)
		}
	}
}

// FuzzSniffLogEventCall: whatever the body, a recognised call is what
// encoding/json reads from it too (the same id, method, tool and arguments,
// no other members).
func FuzzSniffLogEventCall(f *testing.F) {
	for _, s := range []string{
		logEventBody("1", `{"activity":"called_tool","features":{"a":[1,"]"]}}`),
		logEventBody(`"x"`, `null`),
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"log_event"}}`,
		`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}`,
		`[{"jsonrpc":"2.0"}]`, `{}`, `{"id":1,"id":1}`, `"x"`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, ok := sniffLogEventCall(b)
		if !ok {
			return
		}
		var top map[string]json.RawMessage
		if err := json.Unmarshal(b, &top); err != nil {
			t.Fatalf("recognised %q, which encoding/json refuses: %v", b, err)
		}
		var params map[string]json.RawMessage
		if len(top) != 4 || string(top["jsonrpc"]) != `"2.0"` || string(top["method"]) != `"tools/call"` ||
			json.Unmarshal(top["params"], &params) != nil || string(params["name"]) != `"log_event"` {
			t.Fatalf("recognised %q: members %v", b, top)
		}
		if !bytes.Equal(top["id"], c.id) || !bytes.Equal(params["arguments"], c.args) || len(params) != 1+btoi(c.args != nil) {
			t.Fatalf("recognised %q as id %q args %q; encoding/json reads %q %q", b, c.id, c.args, top["id"], params["arguments"])
		}
		var id any
		if err := json.Unmarshal(c.id, &id); err != nil {
			t.Fatal(err)
		}
		if n, isNum := id.(float64); isNum && strconv.FormatInt(int64(n), 10) != string(c.id) {
			t.Fatalf("id %s does not survive the go-sdk's float64 decoding", c.id)
		}
	})
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// The go-sdk's idle timer only sees the POSTs it serves: a session used
// only through the fast path sends a call through the go-sdk once
// fastRefreshAfter has passed, and a session the go-sdk closed by itself is
// dropped by the next sweep.
func TestMCPFastPathSessionLifetime(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	w, err := spool.Open(spool.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	mo := MCPOptions{Appender: w, Identity: TokenIdentity, Recent: NewRecentIDs(100)}
	ms, err := NewMCPServer(mo)
	if err != nil {
		t.Fatal(err)
	}
	sdk := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return ms }, &mcp.StreamableHTTPOptions{SessionTimeout: mcpSessionTimeout})
	f, err := newFastMCP(mo, ms, sdk, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	clock := time.Now()
	f.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	advance := func(d time.Duration) { mu.Lock(); clock = clock.Add(d); mu.Unlock() }
	verify := func(_ context.Context, tok string, _ *http.Request) (*auth.TokenInfo, error) {
		if tok != tokA {
			return nil, auth.ErrInvalidToken
		}
		return &auth.TokenInfo{UserID: "alice"}, nil
	}
	hs := httptest.NewServer(auth.RequireBearerToken(verify, &auth.RequireBearerTokenOptions{AllowMissingExpiration: true})(f))
	defer hs.Close()
	tr := &mcp.StreamableClientTransport{Endpoint: hs.URL, HTTPClient: &http.Client{Transport: bearerTransport{tokA}}, DisableStandaloneSSE: true}
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "t", Version: "1"}, nil).Connect(context.Background(), tr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	n := 0
	call := func(wantFast bool, wantCode int) {
		t.Helper()
		n++
		before := testutil.ToFloat64(f.served)
		req, _ := http.NewRequest(http.MethodPost, hs.URL, strings.NewReader(logEventBody(strconv.Itoa(n), `{"activity":"called_tool"}`)))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("Mcp-Session-Id", cs.ID())
		req.Header.Set("Authorization", "Bearer "+tokA)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if fast := testutil.ToFloat64(f.served) > before; fast != wantFast || resp.StatusCode != wantCode {
			t.Fatalf("call %d: fast %v HTTP %d, want fast %v HTTP %d", n, fast, resp.StatusCode, wantFast, wantCode)
		}
	}
	call(true, 200)
	advance(fastRefreshAfter)
	call(false, 200) // through the go-sdk, which restarts its timer
	if got := testutil.ToFloat64(f.declined.WithLabelValues(declineRefresh)); got != 1 {
		t.Fatalf("declined for refresh %v times", got)
	}
	call(true, 200)
	// The go-sdk closes the session by itself (as its timer would).
	for ss := range ms.Sessions() {
		ss.Close()
	}
	advance(fastSweepEvery)
	call(false, http.StatusNotFound)
	f.mu.RLock()
	left := len(f.sessions)
	f.mu.RUnlock()
	if left != 0 {
		t.Fatalf("%d sessions still tracked after the sweep", left)
	}
}

// End to end into a real warehouse: calls from several go-sdk clients and
// raw posts, on both paths, with retries of the same ids, leave exactly one
// row per acknowledged activity_id once the uploader has loaded the spool.
func TestMCPFastPathEveryCallInTheWarehouseOnce(t *testing.T) {
	t.Parallel()
	b := setupHTTP(t, spool.Options{})
	db := migratedWarehouse(t, t.TempDir())
	u, err := upload.New(upload.Options{SpoolDir: b.dir, Warehouse: db, PollInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	upDone := make(chan error, 1)
	go func() { upDone <- u.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-upDone; err != nil && !errors.Is(err, context.Canceled) {
			t.Error(err)
		}
	}()
	var mu sync.Mutex
	acked := map[string]bool{}
	var wg sync.WaitGroup
	for c := range 4 {
		cs := b.connectMCP(t, tokA)
		defer cs.Close()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 40 {
				id := fmt.Sprintf("w%d-%d", c, i%30) // ids 30..39 repeat 0..9: duplicates
				var ok bool
				if i%2 == 0 {
					res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "log_event",
						Arguments: map[string]any{"activity": "called_tool", "activity_id": id}})
					ok = err == nil && !res.IsError
				} else {
					extra := []string{}
					if i%4 == 1 {
						extra = forceSDK
					}
					code, _, out := rawMCP(t, b.url, tokA, cs.ID(), logEventBody(strconv.Itoa(1000+i),
						`{"activity":"called_tool","activity_id":"`+id+`"}`), extra...)
					ok = code == 200 && bytes.Contains(out, []byte(`"result"`)) && !bytes.Contains(out, []byte(`"isError":true`))
				}
				if !ok {
					t.Errorf("%s not acknowledged", id)
					return
				}
				mu.Lock()
				acked[id] = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	// Wait for the uploader to load everything (not a timing assertion: a
	// generous bound on reaching the state).
	var n, ids int64
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		tb, err := db.Query(context.Background(), "SELECT count(*), count(DISTINCT activity_id) FROM claude_stream WHERE customer = 'alice'", 1)
		if err != nil {
			t.Fatal(err)
		}
		n, ids = tb.Rows[0][0].(int64), tb.Rows[0][1].(int64)
		if n >= int64(len(acked)) {
			break
		}
	}
	if n != int64(len(acked)) || ids != n || len(acked) != 4*30 {
		t.Fatalf("warehouse has %d rows (%d distinct ids) for %d acknowledged ids, want 120", n, ids, len(acked))
	}
	if served := b.metric(t, fastServed); served < 100 {
		t.Fatalf("fast path served only %v calls", served)
	}
}
