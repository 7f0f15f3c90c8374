package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestRemoteEdgeRefusedTokenLetsSiblingShip: an edge whose token the
// server refuses (revoked, expired) holds the shipper lock of its spool
// while a sibling edge runs with a valid token of the same customer (the
// person replaced the token in one client's config; an old window still
// runs with the old one). The refused edge gives its lock up, and every
// event of both edges reaches the server, the refused edge's through the
// sibling (the server says the refused token is its customer's), while the
// refused edge still runs; and no token is ever logged.
func TestRemoteEdgeRefusedTokenLetsSiblingShip(t *testing.T) {
	t.Parallel()
	srv := newEnv(t)
	good, _, _ := srv.createToken("--customer", "remote-alice")
	bad, badID, _ := srv.createToken("--customer", "remote-alice")
	srv.mustRun(nil, "token", "revoke", badID)
	c := srv.startCore()
	defer c.stop(t)
	remote := "http://" + c.info.Addr
	laptop := newEnv(t)

	stale := laptop.startRemoteEdge(remote, bad)
	lock := filepath.Join(filepath.Dir(laptop.remoteSpoolDir(remote, bad)), shipperLockName)
	pid := strconv.Itoa(stale.cmd.Process.Pid)
	deadline := time.Now().Add(15 * time.Second)
	for {
		b, _ := os.ReadFile(lock)
		if strings.TrimSpace(string(b)) == pid {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the first edge did not take the shipper lock: %q\n%s", b, stale.log())
		}
		time.Sleep(20 * time.Millisecond)
	}
	for i := 0; i < 3; i++ {
		stale.call(t, "log_event", map[string]any{"activity": "called_tool", "activity_id": "stale-" + strconv.Itoa(i)})
	}
	fresh := laptop.startRemoteEdge(remote, good)
	for i := 0; i < 5; i++ {
		fresh.call(t, "log_event", map[string]any{"activity": "called_tool", "activity_id": "fresh-" + strconv.Itoa(i)})
	}
	srv.waitCount(`SELECT count(*) FROM claude_stream WHERE customer = 'remote-alice'`, 8, 30*time.Second)
	if !strings.Contains(stale.log(), "refuses the token") {
		t.Errorf("the refused edge did not say its token is refused:\n%s", stale.log())
	}
	for name, ed := range map[string]*edge{"refused": stale, "valid": fresh} {
		if l := ed.log(); strings.Contains(l, bad) || strings.Contains(l, good) {
			t.Errorf("the %s edge logged a token:\n%s", name, l)
		}
	}
	fresh.closeClean(t)
	stale.closeClean(t)
	if n := srv.count(`SELECT count(*) FROM claude_stream`); n != 8 {
		t.Errorf("%d rows, want 8", n)
	}
}

// TestRemoteEdgeURLErrorsHideSecrets: a --remote URL refused because it
// carries a secret (user info, a token in the query) is named in the error
// without that secret: the error goes to stderr, which Claude clients keep
// in their MCP logs.
func TestRemoteEdgeURLErrorsHideSecrets(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const secret = "abi_s3cr3tvalue"
	for _, remote := range []string{
		"https://alice:" + secret + "@example.com",
		"https://example.com/?token=" + secret,
		"https://example.com/#" + secret,
		"https://example.com/%zz?token=" + secret, // not parseable
		"http://example.com/?token=" + secret,
		secret, // the token given to the wrong flag
	} {
		out, errs, code := e.run(nil, "mcp", "--remote", remote, "--token", "t")
		if code == 0 {
			t.Errorf("%s: accepted", remote)
		}
		if strings.Contains(out+errs, secret) {
			t.Errorf("the error for a refused --remote shows its secret: %q", errs)
		}
		if !strings.Contains(errs, "--remote") {
			t.Errorf("%s: the error does not name --remote: %q", remote, errs)
		}
	}
}
