package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// The remote edge logs through its own spool (log_event, log_insight) and
// forwards every other tool the server offers — get_context, the query
// tools, render_card — and reads of its resources (artifacts) to the
// server's /mcp, as an MCP client holding the
// --remote token: the server answers as for any client of that token, its
// customer and its audit records included. The tools are added once the
// server first answers (clients are told: tools/list_changed); until then,
// and while the server is unreachable, a forwarded call is a tool error
// that says so.

const (
	// forwardRetryMin and forwardRetryMax pace the edge's attempts to reach
	// the server's /mcp.
	forwardRetryMin = time.Second
	forwardRetryMax = 30 * time.Second
	// forwardCallTimeout bounds one forwarded call (the query tools wait
	// up to 25 s for a ticket on the server).
	forwardCallTimeout = 2 * time.Minute
)

// localTools are the tools the remote edge serves itself.
var localTools = map[string]bool{"log_event": true, "log_insight": true}

// forwarder holds the edge's client session with the server.
type forwarder struct {
	a        *app
	endpoint string
	token    string
	ms       *mcp.Server

	mu    sync.Mutex
	cs    *mcp.ClientSession
	added map[string]bool
	// relays maps the progress token the edge gave a forwarded call to the
	// client session and token that call came with, so the server's
	// progress notifications (a query's stages) reach the client.
	relays    map[string]progressRelay
	nextRelay uint64
}

// progressRelay is where progress of one forwarded call goes.
type progressRelay struct {
	to    *mcp.ServerSession
	token any
}

// bearerAuth adds the token to every request to the server.
type bearerAuth struct {
	token string
	next  http.RoundTripper
}

func (b bearerAuth) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.next.RoundTrip(r)
}

func newForwarder(a *app, u *url.URL, token string, ms *mcp.Server) *forwarder {
	return &forwarder{a: a, endpoint: strings.TrimRight(u.String(), "/") + "/mcp", token: token, ms: ms,
		added: map[string]bool{}, relays: map[string]progressRelay{}}
}

// run connects and reconnects until ctx ends.
func (f *forwarder) run(ctx context.Context) {
	wait := forwardRetryMin
	for {
		cs, err := f.connect(ctx)
		if err == nil {
			wait = forwardRetryMin
			stop := context.AfterFunc(ctx, func() { cs.Close() })
			cs.Wait() // the session ended: the server went away or restarted, or ctx ended
			stop()
			f.drop(cs)
		} else if ctx.Err() == nil {
			f.a.log.Debug("remote edge: the server's tools are not reachable yet; retrying", "err", err, "retry_in", wait)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, forwardRetryMax)
	}
}

// connect opens a session with the server and offers the tools it lists
// that the edge does not serve itself.
func (f *forwarder) connect(ctx context.Context) (*mcp.ClientSession, error) {
	hc := &http.Client{Transport: bearerAuth{token: f.token, next: http.DefaultTransport}}
	client := mcp.NewClient(&mcp.Implementation{Name: "activitybi-remote-edge", Version: versionString()},
		&mcp.ClientOptions{ProgressNotificationHandler: f.relayProgress})
	cctx, cancel := context.WithTimeout(ctx, forwardCallTimeout)
	defer cancel()
	cs, err := client.Connect(cctx, &mcp.StreamableClientTransport{Endpoint: f.endpoint, HTTPClient: hc}, nil)
	if err != nil {
		return nil, err
	}
	res, err := cs.ListTools(cctx, nil)
	if err != nil {
		cs.Close()
		return nil, fmt.Errorf("list the server's tools: %w", err)
	}
	f.mu.Lock()
	f.cs = cs
	var add []*mcp.Tool
	for _, t := range res.Tools {
		if !localTools[t.Name] && !f.added[t.Name] && t.InputSchema != nil {
			f.added[t.Name] = true
			add = append(add, t)
		}
	}
	f.mu.Unlock()
	for _, t := range add {
		name := t.Name
		f.ms.AddTool(t, func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return f.call(ctx, name, req)
		})
	}
	// The server's resource templates too (activitybi://artifacts/{id}: a
	// card, a query's whole result), so that the links its tools answer
	// with can be read through the edge.
	if rts, err := cs.ListResourceTemplates(cctx, nil); err == nil {
		for _, rt := range rts.ResourceTemplates {
			f.mu.Lock()
			seen := f.added["template:"+rt.URITemplate]
			f.added["template:"+rt.URITemplate] = true
			f.mu.Unlock()
			if !seen {
				f.ms.AddResourceTemplate(rt, f.read)
			}
		}
	}
	return cs, nil
}

// read forwards a resources/read; an unreachable server is an error that
// says so.
func (f *forwarder) read(ctx context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
	f.mu.Lock()
	cs := f.cs
	f.mu.Unlock()
	if cs == nil {
		return nil, fmt.Errorf("%s is kept by the activitybi server, which this edge cannot reach right now", req.Params.URI)
	}
	cctx, cancel := context.WithTimeout(ctx, forwardCallTimeout)
	defer cancel()
	return cs.ReadResource(cctx, &mcp.ReadResourceParams{URI: req.Params.URI})
}

func (f *forwarder) drop(cs *mcp.ClientSession) {
	f.mu.Lock()
	if f.cs == cs {
		f.cs = nil
	}
	f.mu.Unlock()
}

// call forwards one tool call; an unreachable server is a tool error.
func (f *forwarder) call(ctx context.Context, name string, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	f.mu.Lock()
	cs := f.cs
	f.mu.Unlock()
	if cs == nil {
		return toolError(fmt.Sprintf("%s is answered by the activitybi server, which this edge cannot reach right now; events are still logged locally and shipped later", name)), nil
	}
	cctx, cancel := context.WithTimeout(ctx, forwardCallTimeout)
	defer cancel()
	// Not the caller's _meta: it belongs to the client's own session with
	// this edge (its protocol version, its progress token), not to the
	// edge's session with the server; a progress token is relayed instead
	// (below). The arguments go on as the bytes the
	// client sent (json.RawMessage), and the go-sdk writes JSON-RPC without
	// HTML escaping, so a dataset spec full of '<' keeps its size and meets
	// the server's limit as the person was told it
	// (TestPayloadsFullOfAngleBracketsKeepTheirSize).
	params := &mcp.CallToolParams{Name: name, Arguments: req.Params.Arguments}
	if tok := req.Params.GetProgressToken(); tok != nil && req.Session != nil {
		// The client asked for progress: the server gets a token of the
		// edge's own, and what comes back under it goes to the client
		// under the client's token.
		relay := f.addRelay(progressRelay{to: req.Session, token: tok})
		defer f.dropRelay(relay)
		params.SetProgressToken(relay)
	}
	res, err := cs.CallTool(cctx, params)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		var werr *jsonrpc.Error
		if errors.As(err, &werr) {
			return nil, err // the server's own protocol error: pass it on
		}
		f.drop(cs)
		cs.Close()
		return toolError(fmt.Sprintf("%s: the activitybi server did not answer: %v", name, err)), nil
	}
	return res, nil
}

// addRelay registers r under a new token of the edge's and returns it.
func (f *forwarder) addRelay(r progressRelay) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nextRelay++
	tok := fmt.Sprintf("edge-%d", f.nextRelay)
	f.relays[tok] = r
	return tok
}

func (f *forwarder) dropRelay(tok string) {
	f.mu.Lock()
	delete(f.relays, tok)
	f.mu.Unlock()
}

// relayProgress passes a progress notification of the server on to the
// client whose forwarded call it is about; one for a call that has ended
// (or a token the edge did not give) is dropped.
func (f *forwarder) relayProgress(ctx context.Context, req *mcp.ProgressNotificationClientRequest) {
	tok, _ := req.Params.ProgressToken.(string)
	f.mu.Lock()
	r, ok := f.relays[tok]
	f.mu.Unlock()
	if !ok {
		return
	}
	// A failed notification must not fail the call: its answer still comes.
	_ = r.to.NotifyProgress(ctx, &mcp.ProgressNotificationParams{ProgressToken: r.token,
		Progress: req.Params.Progress, Total: req.Params.Total, Message: req.Params.Message})
}

func toolError(msg string) *mcp.CallToolResult {
	return &mcp.CallToolResult{IsError: true, Content: []mcp.Content{&mcp.TextContent{Text: msg}}}
}
