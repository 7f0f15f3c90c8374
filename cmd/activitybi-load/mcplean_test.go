package main

import (
	"bytes"
	"context"
	"io"
	"testing"
)

// --lean against a real go-sdk Streamable HTTP server: every call reaches
// the tool on one of the sessions the go-sdk client opened, the
// acknowledged count is what the server stored, and duplicates and tool
// errors are told apart as without --lean.
func TestMCPHTTPLean(t *testing.T) {
	t.Parallel()
	s := startMCPHTTP(t, "secret", 0)
	var out bytes.Buffer
	rep, err := runMCPHTTP(context.Background(), []string{"--lean", "--url", s.url, "--token", "secret",
		"--sessions", "10", "--rate", "400", "--duration", "500ms"}, &out)
	if err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + out.String())
	st := rep.Steps[0]
	if len(st.Errors) != 0 || len(st.HTTPStatuses) != 0 {
		t.Fatalf("errors %v %v", st.Errors, st.HTTPStatuses)
	}
	s.mu.Lock()
	ids, sessions := len(s.ids), len(s.sessions)
	s.mu.Unlock()
	if rep.Acknowledged == 0 || rep.Acknowledged != s.calls.Load() || int64(ids) != rep.Acknowledged || st.Duplicates != 0 {
		t.Errorf("acknowledged %d, server calls %d, distinct ids %d, dups %d", rep.Acknowledged, s.calls.Load(), ids, st.Duplicates)
	}
	if sessions != 10 || !rep.Lean {
		t.Errorf("calls reached %d sessions, want 10 (lean %v)", sessions, rep.Lean)
	}
	if st.LoadCPUPerCallUS <= 0 {
		t.Errorf("load CPU per call %v", st.LoadCPUPerCallUS)
	}

	rep, err = runMCPHTTP(context.Background(), []string{"--lean", "--url", s.url, "--token", "secret",
		"--sessions", "2", "--rate", "200", "--duration", "300ms", "--args", `{"activity":"x","activity_id":"same-lean"}`}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if st := rep.Steps[0]; st.Acknowledged == 0 || st.Duplicates != st.Acknowledged-1 {
		t.Errorf("acknowledged %d, duplicates %d", st.Acknowledged, st.Duplicates)
	}
	rep, err = runMCPHTTP(context.Background(), []string{"--lean", "--url", s.url, "--token", "secret",
		"--sessions", "2", "--rate", "100", "--duration", "200ms", "--args", `{"nope":1}`}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if st := rep.Steps[0]; st.Acknowledged != 0 || st.Errors["tool_error"] == 0 {
		t.Errorf("acknowledged %d, errors %v", st.Acknowledged, st.Errors)
	}
}

func TestLeanOutcome(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		body string
		dup  bool
		kind string
	}{
		{`event: message` + "\n" + `data: {"jsonrpc":"2.0","id":1,"result":{"content":[],"structuredContent":{"activity_id":"a","duplicate":false}}}` + "\n\n", false, ""},
		{`{"jsonrpc":"2.0","id":1,"result":{"structuredContent":{"duplicate":true}}}`, true, ""},
		{`{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"bad"}],"isError":true}}`, false, "tool_error"},
		{`{"jsonrpc":"2.0","id":1,"error":{"code":-32602,"message":"unknown tool"}}`, false, "rpc_error"},
		{``, false, "bad_response"},
	} {
		dup, kind, err := leanOutcome([]byte(tc.body))
		if dup != tc.dup || kind != tc.kind || (kind == "") != (err == nil) {
			t.Errorf("%s: dup %v kind %q err %v", tc.body, dup, kind, err)
		}
	}
}
