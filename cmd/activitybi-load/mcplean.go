package main

// mcp-http --lean: tool calls as raw HTTP POSTs of pre-encoded JSON-RPC
// over sessions the go-sdk client opened, so that what a call costs the
// server can be told apart from what the go-sdk client costs (bench/mcp.md:
// ~0.6 ms of client CPU per call, about as much as the server's).

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
)

// leanIDBase starts the JSON-RPC ids of lean calls far above the few the
// go-sdk client used for initialize on the same session.
const leanIDBase = 1 << 40

// maxLeanAnswer bounds how much of an answer is read: a tool result of
// log_event is a few hundred bytes.
const maxLeanAnswer = 1 << 20

// leanCaller posts tools/call requests itself.
type leanCaller struct {
	endpoint string
	proto    string
	token    string
	rt       http.RoundTripper
	bt       *bearerTransport // its status counters, shared with the sessions
	bufs     sync.Pool
}

// leanBody appends the JSON-RPC request for call seq: the arguments are the
// rendered template, already JSON.
func leanBody(dst []byte, tool string, seq int64, args []byte) []byte {
	dst = append(dst, `{"jsonrpc":"2.0","id":`...)
	dst = strconv.AppendInt(dst, leanIDBase+seq, 10)
	dst = append(dst, `,"method":"tools/call","params":{"name":`...)
	dst = strconv.AppendQuote(dst, tool) // tool names are plain ASCII
	dst = append(dst, `,"arguments":`...)
	dst = append(dst, args...)
	return append(dst, "}}"...)
}

// call posts body on session and reads the answer, a JSON body or an SSE
// stream carrying the one response. It reports whether the tool succeeded
// and whether log_event answered duplicate; err is a transport, HTTP,
// JSON-RPC or tool error (kind as classifyCallErr names them).
func (l *leanCaller) call(ctx context.Context, session string, body []byte) (dup bool, kind string, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, l.endpoint, bytes.NewReader(body))
	if err != nil {
		return false, "request", err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Session-Id", session)
	if l.proto != "" {
		req.Header.Set("Mcp-Protocol-Version", l.proto)
	}
	if l.token != "" {
		req.Header.Set("Authorization", "Bearer "+l.token)
	}
	resp, err := l.rt.RoundTrip(req)
	if err != nil {
		return false, classifyCallErr(err), err
	}
	defer resp.Body.Close()
	bp, _ := l.bufs.Get().(*bytes.Buffer)
	if bp == nil {
		bp = new(bytes.Buffer)
	}
	defer func() { bp.Reset(); l.bufs.Put(bp) }()
	_, rerr := bp.ReadFrom(io.LimitReader(resp.Body, maxLeanAnswer))
	if resp.StatusCode >= 400 {
		if resp.StatusCode < len(l.bt.status) {
			l.bt.status[resp.StatusCode].Add(1)
		}
		return false, "http_" + strconv.Itoa(resp.StatusCode), fmt.Errorf("HTTP %d: %s", resp.StatusCode, truncate(bytes.TrimSpace(bp.Bytes()), 300))
	}
	if rerr != nil {
		return false, classifyCallErr(rerr), rerr
	}
	return leanOutcome(bp.Bytes())
}

// leanOutcome reads a tools/call answer without decoding all of it: the
// load tool's CPU is what this mode exists to keep small. It looks for the
// JSON-RPC result (an error member means a protocol error), the tool's
// isError, and log_event's "duplicate":true.
func leanOutcome(b []byte) (dup bool, kind string, err error) {
	switch {
	case bytes.Contains(b, []byte(`"error":{`)):
		return false, "rpc_error", errors.New(string(truncate(b, 300)))
	case !bytes.Contains(b, []byte(`"result":`)):
		return false, "bad_response", fmt.Errorf("no JSON-RPC result in %q", truncate(b, 300))
	case bytes.Contains(b, []byte(`"isError":true`)):
		return false, "tool_error", errors.New(string(truncate(b, 300)))
	}
	return bytes.Contains(b, []byte(`"duplicate":true`)), "", nil
}
