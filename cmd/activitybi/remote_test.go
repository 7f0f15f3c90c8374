package main

// End-to-end tests of the remote edge: `activitybi mcp --remote URL --token
// T` with its own data directory ships to a core over HTTP.

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/activitybi/activitybi/internal/auth"
	"github.com/activitybi/activitybi/internal/spool"
)

// startRemoteEdge starts `activitybi mcp --remote url --token tok` in e and
// connects a go-sdk client to its stdio. Close waits for the edge's final
// shipment (up to remoteDrainTimeout) before signalling it.
func (e *env) startRemoteEdge(remote, tok string) *edge {
	e.t.Helper()
	cmd := e.command("mcp", "--remote", remote, "--token", tok)
	buf := &lockedBuf{mu: &sync.Mutex{}, b: &bytes.Buffer{}}
	cmd.Stderr = buf
	ed := &edge{cmd: cmd, stderr: buf}
	opts := &mcp.ClientOptions{ProgressNotificationHandler: func(_ context.Context, r *mcp.ProgressNotificationClientRequest) {
		ed.mu.Lock()
		ed.progress = append(ed.progress, r.Params)
		ed.mu.Unlock()
	}}
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "remote-e2e", Version: "1.0"}, opts).
		Connect(context.Background(), &mcp.CommandTransport{Command: cmd, TerminateDuration: 30 * time.Second}, nil)
	if err != nil {
		e.t.Fatalf("connect to activitybi mcp --remote: %v\n%s", err, buf.b.String())
	}
	ed.cs = cs
	e.t.Cleanup(func() { ed.close() })
	return ed
}

// closeClean ends the session and checks that the edge exited by itself
// with status 0.
func (ed *edge) closeClean(t *testing.T) {
	t.Helper()
	ed.close()
	if st := ed.cmd.ProcessState; st == nil || st.ExitCode() != 0 {
		t.Fatalf("edge exit: %v\n%s", st, ed.log())
	}
}

// remoteSpoolDir is where the edge env e spools for remote with token tok.
func (e *env) remoteSpoolDir(remote, tok string) string {
	e.t.Helper()
	u, err := url.Parse(remote)
	if err != nil {
		e.t.Fatal(err)
	}
	id, ok := auth.TokenID(tok)
	if !ok {
		e.t.Fatalf("not a token: %.8s...", tok)
	}
	return filepath.Join(remoteDir(e.dataDir, u, id), remoteSpoolName)
}

// TestRemoteEdgeShipsToCore: a person's edge (its own data directory) logs
// events and an insight; the core stores each distinct event once, under
// the token's customer, with _source mcp.
func TestRemoteEdgeShipsToCore(t *testing.T) {
	t.Parallel()
	srv := newEnv(t)
	c := srv.startCore()
	defer c.stop(t)
	tok, _, _ := srv.createToken("--customer", "remote-alice")
	remote := "http://" + c.info.Addr

	laptop := newEnv(t)
	ed := laptop.startRemoteEdge(remote, tok)
	for i := 0; i < 12; i++ {
		ed.call(t, "log_event", map[string]any{"activity": "called_tool", "activity_id": fmt.Sprintf("re-%d", i),
			"features": map[string]any{"tool": "Bash", "i": i}})
	}
	for i := 0; i < 4; i++ { // the same ids again: one row each
		ed.call(t, "log_event", map[string]any{"activity": "called_tool", "activity_id": fmt.Sprintf("re-%d", i),
			"features": map[string]any{"tool": "Bash", "i": i}})
	}
	for i := 0; i < 4; i++ { // ids generated at the edge
		ed.call(t, "log_event", map[string]any{"activity": "completed_response", "features": map[string]any{"model": "claude"},
			"revenue_impact": -0.01})
	}
	ins := ed.call(t, "log_insight", map[string]any{"subject": "user", "metric": "prefers_language", "value": "go"})

	// Shipped while the session runs.
	srv.waitCount(`SELECT count(*) FROM claude_stream WHERE customer = 'remote-alice' AND _source = 'mcp'`, 16, 30*time.Second)
	srv.waitCount(fmt.Sprintf(`SELECT count(*) FROM insight_atoms WHERE customer_id = 'remote-alice' AND atom_id = '%s' AND subject = 'user'`,
		ins["atom_id"]), 1, 30*time.Second)
	ed.closeClean(t)

	if n := srv.count(`SELECT count(*) FROM claude_stream`); n != 16 {
		t.Errorf("%d rows in claude_stream, want 16", n)
	}
	if n := srv.count(`SELECT count(DISTINCT activity_id) FROM claude_stream WHERE activity_id LIKE 're-%'`); n != 12 {
		t.Errorf("%d distinct re- ids, want 12", n)
	}
	if n := srv.count(`SELECT count(*) FROM claude_stream WHERE customer = 'tester'`); n != 0 {
		t.Errorf("%d rows under the edge's local identity", n)
	}
	if n := srv.count(`SELECT count(*) FROM claude_stream WHERE activity = 'completed_response' AND revenue_impact = -0.01 AND json_extract_string(feature_json, '$.model') = 'claude'`); n != 4 {
		t.Errorf("%d completed_response rows as logged, want 4", n)
	}
	if n := srv.count(`SELECT count(*) FROM insight_atoms`); n != 1 {
		t.Errorf("%d insights, want 1", n)
	}
	// The edge's spool is its own and empty once shipped; its data
	// directory has no local spool or warehouse.
	if segs, err := spool.ListSegments(laptop.remoteSpoolDir(remote, tok)); err != nil || len(segs) != 0 {
		t.Errorf("remote spool after exit: %d segments, %v", len(segs), err)
	}
	if _, err := os.Stat(filepath.Join(laptop.dataDir, "spool")); !os.IsNotExist(err) {
		t.Errorf("the remote edge used the local spool: %v", err)
	}
	if _, err := os.Stat(filepath.Join(laptop.dataDir, "warehouse.duckdb")); !os.IsNotExist(err) {
		t.Errorf("the remote edge made a local warehouse: %v", err)
	}
	if st, err := os.Stat(filepath.Join(filepath.Dir(laptop.remoteSpoolDir(remote, tok)), "offsets.json")); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("offsets.json: %v %v", st, err)
	}
}

// TestRemoteEdgeOfflineThenShipsBacklog: an edge logs while the server is
// down and exits with its events spooled; the next edge start ships them
// once the server is up, re-logged ids included, each once.
func TestRemoteEdgeOfflineThenShipsBacklog(t *testing.T) {
	t.Parallel()
	srv := newEnv(t)
	tok, _, _ := srv.createToken("--customer", "remote-alice")
	addr := freeAddr(t)
	remote := "http://" + addr

	laptop := newEnv(t)
	ed := laptop.startRemoteEdge(remote, tok)
	for i := 0; i < 10; i++ {
		ed.call(t, "log_event", map[string]any{"activity": "called_tool", "activity_id": fmt.Sprintf("off-%d", i)})
	}
	ed.call(t, "log_insight", map[string]any{"subject": "project:x", "metric": "status", "value": "offline", "atom_id": "off-atom"})
	start := time.Now()
	ed.closeClean(t)
	if d := time.Since(start); d > remoteDrainTimeout+10*time.Second {
		t.Errorf("the offline edge took %s to exit", d)
	}
	if !strings.Contains(ed.log(), "stays in the spool") {
		t.Errorf("the edge did not say the backlog stays in the spool:\n%s", ed.log())
	}
	segs, err := spool.ListSegments(laptop.remoteSpoolDir(remote, tok))
	if err != nil || len(segs) == 0 {
		t.Fatalf("nothing spooled while offline: %v %v", segs, err)
	}

	c := srv.startCore("ACTIVITYBI_LISTEN=" + addr)
	defer c.stop(t)
	ed2 := laptop.startRemoteEdge(remote, tok)
	for _, i := range []int{8, 9, 10, 11} { // 8 and 9 again, from another process
		ed2.call(t, "log_event", map[string]any{"activity": "called_tool", "activity_id": fmt.Sprintf("off-%d", i)})
	}
	srv.waitCount(`SELECT count(*) FROM claude_stream WHERE customer = 'remote-alice' AND _source = 'mcp'`, 12, 30*time.Second)
	srv.waitCount(`SELECT count(*) FROM insight_atoms WHERE customer_id = 'remote-alice' AND atom_id = 'off-atom'`, 1, 30*time.Second)
	ed2.closeClean(t)
	if n := srv.count(`SELECT count(*) FROM claude_stream`); n != 12 {
		t.Errorf("%d rows, want 12", n)
	}
	if n := srv.count(`SELECT count(DISTINCT activity_id) FROM claude_stream`); n != 12 {
		t.Errorf("%d distinct ids, want 12", n)
	}
	if segs, _ := spool.ListSegments(laptop.remoteSpoolDir(remote, tok)); len(segs) != 0 {
		t.Errorf("%d segments left in the remote spool", len(segs))
	}
}

// TestRemoteEdgesHandOverShipping: two edges of one person share the
// remote spool; one ships, and when it exits the other takes over.
func TestRemoteEdgesHandOverShipping(t *testing.T) {
	t.Parallel()
	srv := newEnv(t)
	c := srv.startCore()
	defer c.stop(t)
	tok, _, _ := srv.createToken("--customer", "remote-alice")
	remote := "http://" + c.info.Addr
	laptop := newEnv(t)

	first := laptop.startRemoteEdge(remote, tok)
	first.call(t, "log_event", map[string]any{"activity": "called_tool", "activity_id": "hand-a0"})
	// Only the lock holder ships, and the second edge is not started yet.
	srv.waitCount(`SELECT count(*) FROM claude_stream`, 1, 30*time.Second)

	second := laptop.startRemoteEdge(remote, tok)
	for i := 1; i <= 3; i++ {
		first.call(t, "log_event", map[string]any{"activity": "called_tool", "activity_id": "hand-a" + strconv.Itoa(i)})
		second.call(t, "log_event", map[string]any{"activity": "called_tool", "activity_id": "hand-b" + strconv.Itoa(i)})
	}
	srv.waitCount(`SELECT count(*) FROM claude_stream`, 7, 30*time.Second) // the first ships the second's open segment too
	first.closeClean(t)

	for i := 4; i <= 6; i++ {
		second.call(t, "log_event", map[string]any{"activity": "called_tool", "activity_id": "hand-b" + strconv.Itoa(i)})
	}
	srv.waitCount(`SELECT count(*) FROM claude_stream`, 10, 30*time.Second)
	second.closeClean(t)
	if n := srv.count(`SELECT count(*) FROM claude_stream WHERE customer = 'remote-alice'`); n != 10 {
		t.Errorf("%d rows, want 10", n)
	}
}

// TestRemoteEdgeRefusesBadOptions: clear errors before anything starts.
func TestRemoteEdgeRefusesBadOptions(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for name, tc := range map[string]struct {
		args []string
		env  []string
		want string
	}{
		"http to another host": {[]string{"--remote", "http://example.com", "--token", "t"}, nil, "plain http is allowed only"},
		"not a URL":            {[]string{"--remote", "example.com", "--token", "t"}, nil, "want the server's URL"},
		"no token":             {[]string{"--remote", "https://example.com"}, nil, "needs a bearer token"},
		"token without remote": {[]string{"--token", "t"}, nil, "--token goes with --remote"},
		// A spool is named by its token's id: something else is refused
		// at once rather than spooled for a server that will refuse it.
		"not a token":     {[]string{"--remote", "https://example.com", "--token", "abi_s3cr3t"}, nil, "is not an activitybi token"},
		"env not a token": {[]string{"--remote", "https://example.com"}, []string{envToken + "=abi_s3cr3t"}, "is not an activitybi token"},
		"empty env token": {[]string{"--remote", "https://example.com"}, []string{envToken + "="}, "$" + envToken + " (preferred"},
	} {
		cmd := e.command(append([]string{"mcp"}, tc.args...)...)
		cmd.Env = append(cmd.Env, tc.env...)
		var errb bytes.Buffer
		cmd.Stderr = &errb
		if err := cmd.Run(); err == nil || !strings.Contains(errb.String(), tc.want) || strings.Contains(errb.String(), "s3cr3t") {
			t.Errorf("%s: %v, stderr %q, want %q and no token", name, err, errb.String(), tc.want)
		}
	}
	// $ACTIVITYBI_TOKEN is the token (and not an unknown setting): the
	// edge starts and answers.
	tok, _, _ := e.createToken("--customer", "env-token")
	cmd := e.command("mcp", "--remote", "http://127.0.0.1:1")
	cmd.Env = append(cmd.Env, envToken+"="+tok)
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "remote-e2e", Version: "1.0"}, nil).
		Connect(context.Background(), &mcp.CommandTransport{Command: cmd, TerminateDuration: 30 * time.Second}, nil)
	if err != nil {
		t.Fatalf("edge with $%s: %v", envToken, err)
	}
	cs.Close()
}

// freeAddr returns a loopback address no one listens on right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}
