package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// TestRemoteEdgeForwardsServerTools: besides logging through its own spool,
// the remote edge offers the server's other tools (list_templates, the
// query tools, get_context, render_card) and forwards them under its token:
// a query through the edge sees the token's customer's rows and no one
// else's, and the server audits the access under the token.
func TestRemoteEdgeForwardsServerTools(t *testing.T) {
	t.Parallel()
	srv := newEnv(t)
	c := srv.startCore()
	defer c.stop(t)
	tok, _, _ := srv.createToken("--customer", "remote-carol")
	other, _, _ := srv.createToken("--customer", "remote-dave")
	remote := "http://" + c.info.Addr

	// Someone else's rows on the same server.
	dave := newEnv(t).startRemoteEdge(remote, other)
	for i := range 3 {
		dave.call(t, "log_event", map[string]any{"activity": "submitted_prompt", "activity_id": fmt.Sprintf("d-%d", i)})
	}
	ed := newEnv(t).startRemoteEdge(remote, tok)
	for i := range 4 {
		ed.call(t, "log_event", map[string]any{"activity": "called_tool", "activity_id": fmt.Sprintf("c-%d", i),
			"features": map[string]any{"tool": "Bash"}})
	}
	srv.waitCount(`SELECT count(*) FROM claude_stream`, 7, 30*time.Second)

	// The forwarded tools appear once the edge has reached the server.
	var names []string
	waitFor(t, 30*time.Second, func() bool {
		res, err := ed.cs.ListTools(context.Background(), nil)
		if err != nil {
			return false
		}
		names = names[:0]
		for _, tl := range res.Tools {
			names = append(names, tl.Name)
		}
		return strings.Contains(strings.Join(names, " "), "submit_query")
	})
	for _, want := range []string{"log_event", "log_insight", "get_context", "list_templates", "submit_query",
		"get_query_status", "get_query_result", "cancel_query", "render_card"} {
		if !strings.Contains(" "+strings.Join(names, " ")+" ", " "+want+" ") {
			t.Errorf("the remote edge does not offer %s: %v", want, names)
		}
	}

	lt := ed.call(t, "list_templates", map[string]any{})
	if !strings.Contains(fmt.Sprint(lt["templates"]), "top_activities") {
		t.Fatalf("list_templates through the edge: %v", lt)
	}
	sub := ed.call(t, "submit_query", map[string]any{"template": "top_activities", "params": map[string]any{"limit": 5}})
	id, _ := sub["ticket"].(string)
	st := ed.call(t, "get_query_status", map[string]any{"ticket": id, "wait_seconds": 30})
	if st["state"] != "succeeded" || st["rows"] != float64(1) {
		t.Fatalf("status through the edge: %v", st)
	}
	// A client that asks for progress gets the server's notifications of
	// a forwarded call under its own token (a query fast enough to end
	// before the first one is tried again, with another limit).
	var notes []*mcp.ProgressNotificationParams
	for i := 0; i < 5 && len(notes) == 0; i++ {
		ptok := fmt.Sprintf("remote-p%d", i)
		res, err := ed.cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "submit_query",
			Arguments: map[string]any{"template": "top_activities", "params": map[string]any{"limit": 6 + i}, "wait_seconds": 30},
			Meta:      mcp.Meta{"progressToken": ptok}})
		if err != nil || res.IsError {
			t.Fatalf("submit_query with a progress token through the edge: %v %+v", err, res)
		}
		time.Sleep(200 * time.Millisecond) // notifications come before the answer; let the client handle them
		notes = ed.progressOf(ptok)
	}
	if len(notes) == 0 {
		t.Fatal("no progress notification reached the client through the remote edge")
	}
	ed.mu.Lock()
	for _, p := range ed.progress {
		if tok, _ := p.ProgressToken.(string); !strings.HasPrefix(tok, "remote-p") {
			t.Errorf("a notification under a token the client never gave: %+v", p)
		}
	}
	ed.mu.Unlock()
	// The whole result is an artifact on the server, read through the edge.
	uri, _ := st["result_uri"].(string)
	whole, err := ed.cs.ReadResource(context.Background(), &mcp.ReadResourceParams{URI: uri})
	if err != nil || len(whole.Contents) != 1 || !strings.Contains(whole.Contents[0].Text, "called_tool") {
		t.Fatalf("resources/read %q through the edge: %v %+v", uri, err, whole)
	}
	page := ed.call(t, "get_query_result", map[string]any{"ticket": id})
	if got := fmt.Sprint(page["rows"]); !strings.Contains(got, "called_tool") || strings.Contains(got, "submitted_prompt") {
		t.Fatalf("carol's result through the edge: %s", got)
	}
	// A customer argument is refused by the server, through the edge too.
	res, err := ed.cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "get_context", Arguments: map[string]any{"customer": "remote-dave"}})
	if err != nil || !res.IsError {
		t.Fatalf("get_context naming a customer through the edge: %v %+v", err, res)
	}
	// The server audited carol's query under her token.
	srv.waitCount(`SELECT (count(*) >= 1)::INT FROM audit_log WHERE customer_id = 'remote-carol' AND principal LIKE 'token:%' AND action LIKE '%query%'`, 1, 30*time.Second)
	ed.closeClean(t)
	dave.closeClean(t)
}
