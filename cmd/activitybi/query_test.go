package main

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/activitybi/activitybi/internal/server"
)

// TestQueryTicketsEndToEnd: a real MCP client on a stdio edge lists the
// templates, submits a query, watches its progress, reads the result, logs
// an insight citing the query's hash (verified) and draws a card of it,
// whose PNG it reads back as a resource. Bad input and another identity's
// ticket get clear tool errors.
func TestQueryTicketsEndToEnd(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	t.Cleanup(e.stopCore)
	a := e.startEdge()
	for i := range 12 {
		act := "called_tool"
		if i%3 == 0 {
			act = "submitted_prompt"
		}
		a.call(t, "log_event", map[string]any{"activity": act, "features": map[string]any{"tool": "Bash", "duration_ms": 10 * (i + 1), "success": true}})
	}
	waitFor(t, 90*time.Second, func() bool { return server.NewSocketClient(e.dataDir).Healthy(context.Background()) })
	e.waitCount("SELECT count(*) FROM claude_stream", 12, 30*time.Second)

	lt := a.call(t, "list_templates", map[string]any{})
	names := fmt.Sprint(lt["templates"])
	for _, want := range []string{"top_activities", "tool_stats", "usage_cost", "insight_series"} {
		if !strings.Contains(names, want) {
			t.Errorf("list_templates lacks %s", want)
		}
	}

	// Submit, then wait in the status call (TestQueryProgressEndToEnd
	// watches progress notifications on a slower query).
	sub := a.call(t, "submit_query", map[string]any{"template": "top_activities", "params": map[string]any{"limit": 5}})
	id, _ := sub["ticket"].(string)
	hash, _ := sub["query_hash"].(string)
	if id == "" || !strings.HasPrefix(hash, "q_") || (sub["state"] != "queued" && sub["state"] != "running" && sub["state"] != "succeeded") {
		t.Fatalf("submit_query: %v", sub)
	}
	res, err := a.cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "get_query_status",
		Arguments: map[string]any{"ticket": id, "wait_seconds": 30}, Meta: mcp.Meta{"progressToken": "p1"}})
	if err != nil || res.IsError {
		t.Fatalf("get_query_status: %v %v", err, res)
	}
	st := res.StructuredContent.(map[string]any)
	if st["state"] != "succeeded" || st["rows"] != float64(2) {
		t.Fatalf("status: %v", st)
	}
	text := res.Content[0].(*mcp.TextContent).Text
	if !strings.Contains(text, "called_tool") || !strings.Contains(text, hash) {
		t.Errorf("status text lacks the preview or the hash:\n%s", text)
	}
	// The whole result is an artifact of the customer, linked and
	// readable on the same connection as NDJSON text.
	resultURI, _ := st["result_uri"].(string)
	if !strings.HasPrefix(resultURI, "activitybi://artifacts/") || len(res.Content) != 2 {
		t.Fatalf("status lacks the result's link: %v %v", st["result_uri"], res.Content)
	}
	if l, ok := res.Content[1].(*mcp.ResourceLink); !ok || l.URI != resultURI || l.MIMEType != "application/x-ndjson" {
		t.Fatalf("status content %v", res.Content[1])
	}
	whole, err := a.cs.ReadResource(context.Background(), &mcp.ReadResourceParams{URI: resultURI})
	if err != nil || len(whole.Contents) != 1 {
		t.Fatalf("resources/read %s: %v", resultURI, err)
	}
	lines := strings.Split(strings.TrimSpace(whole.Contents[0].Text), "\n")
	if len(lines) != 3 || !strings.Contains(lines[0], id) || !strings.HasPrefix(lines[1], `["called_tool",8`) {
		t.Fatalf("result file read back:\n%s", whole.Contents[0].Text)
	}
	page := a.call(t, "get_query_result", map[string]any{"ticket": id})
	rows := page["rows"].([]any)
	if len(rows) != 2 || fmt.Sprint(rows[0].([]any)[0:2]) != "[called_tool 8]" || page["next_offset"] != nil {
		t.Fatalf("result page: %v", page)
	}

	// An insight citing the hash is verified; a made-up hash is refused.
	ins := a.call(t, "log_insight", map[string]any{"subject": "project:demo", "metric": "top_activity", "value": "called_tool", "provenance_query_hash": hash})
	if ins["verified"] != true {
		t.Fatalf("log_insight with the ticket's hash: %v", ins)
	}
	bad, _ := a.cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "log_insight",
		Arguments: map[string]any{"subject": "x", "metric": "y", "value": 1, "provenance_query_hash": "q_0123456789abcdef0123456789abcdef"}})
	if bad == nil || !bad.IsError || !strings.Contains(toolText(bad), "names none of your queries") {
		t.Errorf("made-up provenance hash: %v", bad)
	}
	st = a.call(t, "get_query_status", map[string]any{"ticket": id})
	if fmt.Sprint(st["insights"]) != fmt.Sprintf("[%s]", ins["atom_id"]) {
		t.Errorf("the ticket does not list the insight citing it: %v", st["insights"])
	}

	// A card of the result: a PNG picture, a summary and a link that
	// reads back as a resource on the same connection.
	cr, err := a.cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "render_card", Arguments: map[string]any{"ticket": id}})
	if err != nil || cr.IsError {
		t.Fatalf("render_card: %v %v", err, cr)
	}
	img, ok := cr.Content[0].(*mcp.ImageContent)
	if !ok || img.MIMEType != "image/png" {
		t.Fatalf("render_card content: %v", cr.Content)
	}
	cfg, err := png.DecodeConfig(bytes.NewReader(img.Data))
	if err != nil || cfg.Width < 400 || cfg.Height < 200 {
		t.Fatalf("card PNG: %v %+v", err, cfg)
	}
	if md := cr.Content[1].(*mcp.TextContent).Text; !strings.Contains(md, "called_tool") {
		t.Errorf("card summary lacks the top activity:\n%s", md)
	}
	link := cr.Content[2].(*mcp.ResourceLink)
	rr, err := a.cs.ReadResource(context.Background(), &mcp.ReadResourceParams{URI: link.URI})
	if err != nil || len(rr.Contents) != 1 || !bytes.Equal(rr.Contents[0].Blob, img.Data) {
		t.Fatalf("resources/read %s: %v", link.URI, err)
	}

	// Another identity on the same core sees neither the ticket nor the card.
	b := e.startEdgeEnv([]string{"ACTIVITYBI_CUSTOMER=bob"})
	for _, c := range []struct {
		tool string
		args map[string]any
	}{
		{"get_query_status", map[string]any{"ticket": id}},
		{"get_query_result", map[string]any{"ticket": id}},
		{"render_card", map[string]any{"ticket": id}},
		{"cancel_query", map[string]any{"ticket": id}},
	} {
		r, err := b.cs.CallTool(context.Background(), &mcp.CallToolParams{Name: c.tool, Arguments: c.args})
		if err != nil || !r.IsError || !strings.Contains(toolText(r), "not found") {
			t.Errorf("bob %s of alice's ticket: %v %v", c.tool, err, r)
		}
	}
	if _, err := b.cs.ReadResource(context.Background(), &mcp.ReadResourceParams{URI: link.URI}); err == nil {
		t.Errorf("bob read alice's card %s", link.URI)
	}
	if _, err := b.cs.ReadResource(context.Background(), &mcp.ReadResourceParams{URI: resultURI}); err == nil {
		t.Errorf("bob read alice's result %s", resultURI)
	}

	// Bad input: each a tool error naming the problem.
	for args, want := range map[string]string{
		`{"template": "no_such"}`:                                                            "no_such",
		`{"template": "top_activities", "params": {"limit": 0}}`:                             "limit",
		`{"template": "top_activities", "params": {"limit": "5; DROP TABLE claude_stream"}}`: "limit",
		`{}`: "template",
		`{"template": "top_activities", "dataset": {}}`:                  "not both",
		`{"dataset": {"cohort": {"activity": "Bad Name"}}}`:              "activity",
		`{"template": "top_activities", "wait_seconds": 500}`:            "wait_seconds",
		`{"template": "top_activities", "customer": "bob"}`:              "customer",
		`{"dataset": {"cohort": {"activity": "called_tool"}, "zzz": 1}}`: "zzz",
	} {
		r := callRaw(t, a, "submit_query", args)
		if !r.IsError || !strings.Contains(toolText(r), want) {
			t.Errorf("submit_query %s: want an error about %q, got %s", args, want, toolText(r))
		}
	}
	if r := callRaw(t, a, "render_card", fmt.Sprintf(`{"ticket": %q, "card": {"kind": "pie"}}`, id)); !r.IsError || !strings.Contains(toolText(r), "pie") {
		t.Errorf("render_card with an unknown kind: %s", toolText(r))
	}
	if e.count("SELECT count(*) FROM claude_stream") != 12 {
		t.Error("the warehouse changed")
	}

	// A dataset spec runs too: sessions (submitted_prompt) with the first
	// tool call after each.
	ds := a.call(t, "submit_query", map[string]any{"wait_seconds": 30, "dataset": map[string]any{
		"cohort": map[string]any{"activity": "submitted_prompt"},
		"append": []any{map[string]any{"activity": "called_tool", "relationship": "first_after", "features": []any{"duration_ms"}}},
	}})
	if ds["state"] != "succeeded" || ds["rows"] != float64(4) {
		t.Fatalf("dataset ticket: %v", ds)
	}

	// The audit log has the accesses, get_context (served by the edge from
	// its own cache, recorded through its spool) among them.
	a.call(t, "get_context", map[string]any{})
	e.waitCount("SELECT count(*) FROM audit_log WHERE action = 'got_context' AND customer_id = 'tester' AND outcome = 'ok'", 1, 30*time.Second)
	// (The unknown card kind was refused: audited too.)
	e.waitCount("SELECT count(*) FROM audit_log WHERE action = 'rendered_card' AND customer_id = 'tester'", 2, 30*time.Second)
	if n := e.count("SELECT count(*) FROM audit_log WHERE action = 'rendered_card' AND customer_id = 'tester' AND outcome = 'refused'"); n != 1 {
		t.Errorf("refused render_card audit rows: %d; want 1", n)
	}
	if n := e.count("SELECT count(*) FROM audit_log WHERE action = 'rendered_card' AND customer_id = 'bob' AND outcome = 'not_found'"); n != 1 {
		t.Errorf("bob's render_card of another's ticket: %d not_found audit rows; want 1", n)
	}
	if n := e.count("SELECT count(*) FROM audit_log WHERE action IN ('submitted_query', 'completed_query', 'fetched_result') AND customer_id = 'tester'"); n < 5 {
		t.Errorf("audit_log has %d query rows for tester; want at least 5", n)
	}
}

func toolText(r *mcp.CallToolResult) string {
	var b strings.Builder
	for _, c := range r.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	return b.String()
}

// callRaw calls a tool with arguments given as JSON text.
func callRaw(t *testing.T, ed *edge, tool, args string) *mcp.CallToolResult {
	t.Helper()
	res, err := ed.cs.CallTool(context.Background(), &mcp.CallToolParams{Name: tool, Arguments: rawArgs(args)})
	if err != nil {
		t.Fatalf("%s %s: %v", tool, args, err)
	}
	return res
}

type rawArgs string

func (r rawArgs) MarshalJSON() ([]byte, error) { return []byte(r), nil }

// TestQueriesIsolateTokensOverHTTP: two bearer tokens on /mcp; bob cannot
// read, cancel or draw alice's ticket, nor fetch her card over
// /artifacts/{id}.
func TestQueriesIsolateTokensOverHTTP(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tokA, _, _ := e.createToken("--customer", "alice")
	tokB, _, _ := e.createToken("--customer", "bob")
	c := e.startCore()
	defer c.stop(t)
	base := c.info.URL()
	ctx := context.Background()
	session := func(tok string) *mcp.ClientSession {
		tr := &mcp.StreamableClientTransport{Endpoint: base + "/mcp", HTTPClient: &http.Client{Transport: bearer{tok}}}
		cs, err := mcp.NewClient(&mcp.Implementation{Name: "http-e2e", Version: "1"}, nil).Connect(ctx, tr, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cs.Close() })
		return cs
	}
	call := func(cs *mcp.ClientSession, tool string, args map[string]any) *mcp.CallToolResult {
		r, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: tool, Arguments: args})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	alice, bob := session(tokA), session(tokB)
	for who, cs := range map[string]*mcp.ClientSession{"alice": alice, "bob": bob} {
		n := map[string]int{"alice": 3, "bob": 5}[who]
		for range n {
			if r := call(cs, "log_event", map[string]any{"activity": "called_tool", "features": map[string]any{"tool": who}}); r.IsError {
				t.Fatal(toolText(r))
			}
		}
	}
	e.waitCount("SELECT count(*) FROM claude_stream", 8, 30*time.Second)
	r := call(alice, "submit_query", map[string]any{"template": "top_activities", "wait_seconds": 30})
	st := r.StructuredContent.(map[string]any)
	if r.IsError || st["state"] != "succeeded" {
		t.Fatalf("alice's query: %s", toolText(r))
	}
	id := st["ticket"].(string)
	if !strings.Contains(toolText(r), `"called_tool",3`) {
		t.Errorf("alice sees other rows than her 3:\n%s", toolText(r))
	}
	rb := call(bob, "submit_query", map[string]any{"template": "top_activities", "wait_seconds": 30})
	if !strings.Contains(toolText(rb), `"called_tool",5`) {
		t.Errorf("bob sees other rows than his 5:\n%s", toolText(rb))
	}
	for _, tool := range []string{"get_query_status", "get_query_result", "cancel_query", "render_card"} {
		if r := call(bob, tool, map[string]any{"ticket": id}); !r.IsError || !strings.Contains(toolText(r), "not found") {
			t.Errorf("bob %s alice's ticket: %s", tool, toolText(r))
		}
	}
	cr := call(alice, "render_card", map[string]any{"ticket": id})
	if cr.IsError {
		t.Fatal(toolText(cr))
	}
	artID := strings.TrimPrefix(cr.StructuredContent.(map[string]any)["png_uri"].(string), "activitybi://artifacts/")
	get := func(tok string) (int, []byte) {
		req, _ := http.NewRequest(http.MethodGet, base+"/artifacts/"+artID, nil)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	if code, b := get(tokA); code != 200 || !bytes.HasPrefix(b, []byte("\x89PNG")) {
		t.Errorf("alice GET her card: %d", code)
	}
	if code, _ := get(tokB); code != 404 {
		t.Errorf("bob GET alice's card: %d; want 404", code)
	}
	// Without a token, on loopback, the request is the dashboard's local
	// user ("tester"), who does not own alice's card.
	if code, _ := get(""); code != 404 {
		t.Errorf("GET without a token: %d; want 404", code)
	}
	// The dashboard is served at / for the local user.
	resp, err := http.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(page), "Overview") {
		t.Errorf("GET /: %d\n%.300s", resp.StatusCode, page)
	}
}

// TestQueryProgressEndToEnd: a client that sends a progress token with
// get_query_status gets progress notifications while the ticket waits and
// runs: increasing, at most 100, and once the template ran before for the
// customer, estimated from that run's time.
func TestQueryProgressEndToEnd(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	t.Cleanup(e.stopCore)
	a := e.startEdge()
	waitFor(t, 90*time.Second, func() bool { return server.NewSocketClient(e.dataDir).Healthy(context.Background()) })
	const n = 400_000
	file := filepath.Join(t.TempDir(), "events.ndjson")
	writeEvents(t, file, "pg", n)
	if _, errs, code := e.run(nil, "ingest", file); code != 0 {
		t.Fatalf("ingest: %d %s", code, errs)
	}
	e.waitCount("SELECT count(*) FROM claude_stream", n, 120*time.Second)

	// A first run of tool_stats gives the engine its time.
	first := a.call(t, "submit_query", map[string]any{"template": "tool_stats", "wait_seconds": 50})
	if first["state"] != "succeeded" {
		t.Fatalf("first tool_stats: %v", first)
	}
	// Six more of the template (other questions), at once: the engine's
	// four workers take four, the last ones wait in the queue.
	var ids []string
	for i := 2; i <= 7; i++ {
		sub := a.call(t, "submit_query", map[string]any{"template": "tool_stats", "params": map[string]any{"min_calls": i}})
		ids = append(ids, sub["ticket"].(string))
	}
	last := ids[len(ids)-1]
	res, err := a.cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "get_query_status",
		Arguments: map[string]any{"ticket": last, "wait_seconds": 50}, Meta: mcp.Meta{"progressToken": "p-last"}})
	if err != nil || res.IsError {
		t.Fatalf("get_query_status: %v %v", err, res)
	}
	st := res.StructuredContent.(map[string]any)
	if st["state"] != "succeeded" {
		t.Fatalf("status: %v", st)
	}
	// Notifications are sent before the answer; give the client a moment
	// to have handled them all.
	time.Sleep(200 * time.Millisecond)
	notes := a.progressOf("p-last")
	if len(notes) == 0 {
		t.Fatalf("no progress notification for a ticket that was queued behind four others")
	}
	prev, estimated := -1.0, 0
	for _, p := range notes {
		if p.Progress <= prev || p.Progress > 100 || p.Total != 100 {
			t.Errorf("notification %+v after progress %v", p, prev)
		}
		prev = p.Progress
		if strings.Contains(p.Message, "by earlier runs' time") {
			estimated++
		}
	}
	if !strings.HasPrefix(notes[0].Message, "queued") && !strings.HasPrefix(notes[0].Message, "running") {
		t.Errorf("first notification %q", notes[0].Message)
	}
	started, _ := time.Parse(time.RFC3339Nano, fmt.Sprint(st["started_at"]))
	finished, _ := time.Parse(time.RFC3339Nano, fmt.Sprint(st["finished_at"]))
	ran := finished.Sub(started)
	var seen []string
	for _, p := range notes {
		seen = append(seen, fmt.Sprintf("%.1f %q", p.Progress, p.Message))
	}
	t.Logf("%d notifications (%d estimated) over a run of %s: %s", len(notes), estimated, ran, strings.Join(seen, "; "))
	// The edge polls the core every 250 ms: a run of a second or more is
	// seen running at least twice, with an estimate that moved.
	if ran >= time.Second && estimated == 0 {
		t.Errorf("a %s run with an earlier run's time gave no estimated progress", ran)
	}
}
