package main

// Remote spools are per server and token: events are filed under the
// customer of the token they were logged with, whatever other edges of the
// data directory do (remote.go, remote_adopt.go).

import (
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/activitybi/activitybi/internal/event"
	"github.com/activitybi/activitybi/internal/spool"
	"github.com/activitybi/activitybi/internal/upload"
)

// remoteIdentityOf reads the identity.json of the spool of remote and tok.
func (e *env) remoteIdentityOf(remote, tok string) remoteIdentity {
	e.t.Helper()
	id, err := readRemoteIdentity(filepath.Dir(e.remoteSpoolDir(remote, tok)))
	if err != nil {
		e.t.Fatal(err)
	}
	return id
}

// logEvents logs activity_ids prefix0..prefix(n-1) through ed.
func logEvents(t *testing.T, ed *edge, prefix string, n int) {
	t.Helper()
	for i := range n {
		ed.call(t, "log_event", map[string]any{"activity": "called_tool", "activity_id": prefix + strconv.Itoa(i)})
	}
}

// TestRemoteEdgesOfTwoCustomersStayApart: one person, two Claude configs on
// one machine (one data directory), one server: an edge with a token of
// customer "work" and one with a token of customer "personal" log at the
// same time. Every event is filed under the customer of the token it was
// logged with. (Before spools were per token, both edges shared one spool
// and whichever held its lock shipped every record with its own token.)
func TestRemoteEdgesOfTwoCustomersStayApart(t *testing.T) {
	t.Parallel()
	srv := newEnv(t)
	c := srv.startCore()
	defer c.stop(t)
	work, _, _ := srv.createToken("--customer", "remote-work")
	personal, _, _ := srv.createToken("--customer", "remote-personal")
	remote := "http://" + c.info.Addr
	laptop := newEnv(t)

	w := laptop.startRemoteEdge(remote, work)
	p := laptop.startRemoteEdge(remote, personal)
	for i := range 10 {
		w.call(t, "log_event", map[string]any{"activity": "called_tool", "activity_id": "work-" + strconv.Itoa(i)})
		p.call(t, "log_event", map[string]any{"activity": "called_tool", "activity_id": "personal-" + strconv.Itoa(i)})
	}
	srv.waitCount(`SELECT count(*) FROM claude_stream`, 20, 30*time.Second)
	for _, q := range []string{
		`SELECT count(*) FROM claude_stream WHERE customer = 'remote-work' AND activity_id LIKE 'work-%'`,
		`SELECT count(*) FROM claude_stream WHERE customer = 'remote-personal' AND activity_id LIKE 'personal-%'`,
	} {
		if n := srv.count(q); n != 10 {
			t.Errorf("%s = %d, want 10", q, n)
		}
	}
	if n := srv.count(`SELECT count(*) FROM claude_stream WHERE (customer = 'remote-work') <> (activity_id LIKE 'work-%')`); n != 0 {
		t.Errorf("%d events filed under the other customer", n)
	}
	// Each spool records its token's customer, once the server said it.
	for tok, customer := range map[string]string{work: "remote-work", personal: "remote-personal"} {
		waitFor(t, 30*time.Second, func() bool { return laptop.remoteIdentityOf(remote, tok).Customer == customer })
		path := filepath.Join(filepath.Dir(laptop.remoteSpoolDir(remote, tok)), remoteIdentityName)
		b, err := os.ReadFile(path)
		st, serr := os.Stat(path)
		if err != nil || serr != nil || st.Mode().Perm() != 0o600 || strings.Contains(string(b), tok) {
			t.Errorf("%s: %v %v %v:\n%s", path, err, serr, st, b)
		}
	}
	w.closeClean(t)
	p.closeClean(t)
	for name, ed := range map[string]*edge{"work": w, "personal": p} {
		if l := ed.log(); strings.Contains(l, work) || strings.Contains(l, personal) || strings.Contains(l, "does not ship") {
			t.Errorf("the %s edge's log:\n%s", name, l)
		}
	}
	if n := srv.count(`SELECT count(*) FROM claude_stream`); n != 20 {
		t.Errorf("%d rows, want 20", n)
	}
}

// TestRemoteEdgeRotatedTokenSpoolShipsOnce: a person logs with token T1
// while the server is down, then revokes T1 and configures T2 for the same
// customer. T1's events, which no edge can ship with T1 any more, arrive
// once under the customer, shipped by the edge with T2 (the server says T1
// was a token of T2's customer: T1 never reached the server, so its spool
// had no customer recorded).
func TestRemoteEdgeRotatedTokenSpoolShipsOnce(t *testing.T) {
	t.Parallel()
	srv := newEnv(t)
	t1, id1, _ := srv.createToken("--customer", "remote-rot")
	addr := freeAddr(t)
	remote := "http://" + addr
	laptop := newEnv(t)

	old := laptop.startRemoteEdge(remote, t1)
	logEvents(t, old, "rot-", 10)
	old.call(t, "log_insight", map[string]any{"subject": "user", "metric": "rotated", "value": true, "atom_id": "rot-atom"})
	old.closeClean(t)
	if segs, err := spool.ListSegments(laptop.remoteSpoolDir(remote, t1)); err != nil || len(segs) == 0 {
		t.Fatalf("nothing spooled with T1: %v %v", segs, err)
	}
	srv.mustRun(nil, "token", "revoke", id1)
	t2, _, _ := srv.createToken("--customer", "remote-rot")
	c := srv.startCore("ACTIVITYBI_LISTEN=" + addr)
	defer c.stop(t)

	cur := laptop.startRemoteEdge(remote, t2)
	logEvents(t, cur, "new-", 3)
	srv.waitCount(`SELECT count(*) FROM claude_stream WHERE customer = 'remote-rot'`, 13, 30*time.Second)
	srv.waitCount(`SELECT count(*) FROM insight_atoms WHERE customer_id = 'remote-rot' AND atom_id = 'rot-atom'`, 1, 30*time.Second)
	waitFor(t, 30*time.Second, func() bool {
		segs, err := spool.ListSegments(laptop.remoteSpoolDir(remote, t1))
		return err == nil && len(segs) == 0
	})
	cur.closeClean(t)
	if n := srv.count(`SELECT count(*) FROM claude_stream`); n != 13 {
		t.Errorf("%d rows, want 13", n)
	}
	if n := srv.count(`SELECT count(DISTINCT activity_id) FROM claude_stream WHERE activity_id LIKE 'rot-%'`); n != 10 {
		t.Errorf("%d distinct rot- ids, want 10", n)
	}
	if id := laptop.remoteIdentityOf(remote, t1); id.Customer != "remote-rot" || id.TokenID != id1 {
		t.Errorf("T1's spool identity after it shipped: %+v", id)
	}
	if l := cur.log(); !strings.Contains(l, "shipping another token's remote spool") || strings.Contains(l, t1) || strings.Contains(l, t2) {
		t.Errorf("the T2 edge's log:\n%s", l)
	}
	// Shipped means recorded as shipped: a new edge sends none of it again.
	st, err := os.ReadFile(filepath.Join(filepath.Dir(laptop.remoteSpoolDir(remote, t1)), upload.RemoteOffsetsFile))
	if err != nil || !strings.Contains(string(st), remote) {
		t.Errorf("T1's offsets.json: %v\n%s", err, st)
	}
}

// TestRemoteEdgeLeavesAnotherCustomersSpool: a spool whose customer was
// never recorded, logged with a token of customer X, is not shipped by an
// edge with customer Y's token: that edge says so once on stderr (the
// directory, its pending records, what to do) and `status` lists it. X's
// own edge ships it later, under X.
func TestRemoteEdgeLeavesAnotherCustomersSpool(t *testing.T) {
	t.Parallel()
	srv := newEnv(t)
	x, idX, _ := srv.createToken("--customer", "remote-x")
	y, _, _ := srv.createToken("--customer", "remote-y")
	addr := freeAddr(t)
	remote := "http://" + addr
	laptop := newEnv(t)

	edX := laptop.startRemoteEdge(remote, x)
	logEvents(t, edX, "x-", 5)
	edX.closeClean(t)
	xDir := filepath.Dir(laptop.remoteSpoolDir(remote, x))
	if id := laptop.remoteIdentityOf(remote, x); id.Customer != "" || id.URL != remote {
		t.Fatalf("X's spool identity while the server was down: %+v", id)
	}

	c := srv.startCore("ACTIVITYBI_LISTEN=" + addr)
	defer c.stop(t)
	edY := laptop.startRemoteEdge(remote, y)
	logEvents(t, edY, "y-", 2)
	srv.waitCount(`SELECT count(*) FROM claude_stream WHERE customer = 'remote-y'`, 2, 30*time.Second)
	waitFor(t, 30*time.Second, func() bool { return strings.Contains(edY.log(), "does not ship") })
	time.Sleep(adoptScanInterval + time.Second) // a second scan: still not shipped, not warned again
	l := edY.log()
	if !strings.Contains(l, xDir) || !strings.Contains(l, "records=5") || !strings.Contains(l, "activitybi token list") ||
		strings.Count(l, "does not ship") != 1 {
		t.Errorf("the Y edge's warning about X's spool:\n%s", l)
	}
	edY.closeClean(t)
	if n := srv.count(`SELECT count(*) FROM claude_stream WHERE activity_id LIKE 'x-%'`); n != 0 {
		t.Fatalf("%d of X's events shipped with Y's token", n)
	}
	if id := laptop.remoteIdentityOf(remote, x); id.Customer != "" {
		t.Errorf("Y's edge recorded a customer for X's spool: %+v", id)
	}
	out := laptop.mustRun(nil, "status")
	if !strings.Contains(out, xDir) || !strings.Contains(out, "5 records not yet shipped to "+remote) {
		t.Errorf("status does not list X's spool:\n%s", out)
	}
	var st localStatus
	if err := json.Unmarshal([]byte(laptop.mustRun(nil, "status", "--json")), &st); err != nil ||
		len(st.RemoteSpools) != 1 || st.RemoteSpools[0].Dir != xDir || st.RemoteSpools[0].Pending != 5 ||
		st.RemoteSpools[0].TokenID != idX || st.RemoteSpools[0].URL != remote {
		t.Errorf("status --json: %+v %v", st.RemoteSpools, err)
	}

	edX = laptop.startRemoteEdge(remote, x)
	srv.waitCount(`SELECT count(*) FROM claude_stream WHERE customer = 'remote-x' AND activity_id LIKE 'x-%'`, 5, 30*time.Second)
	edX.closeClean(t)
	if out := laptop.mustRun(nil, "status"); strings.Contains(out, "not yet shipped") {
		t.Errorf("status after X's edge shipped:\n%s", out)
	}
}

// appendLegacy appends events with the given ids to the legacy spool of
// remote (<data>/remote/<URL key>/), as an edge of a version before
// per-token spools did, and closes its writer (that edge exited).
func (e *env) appendLegacy(remote string, ids ...string) string {
	e.t.Helper()
	dir, w := e.writeLegacy(remote, ids...)
	if err := w.Close(); err != nil {
		e.t.Fatal(err)
	}
	return dir
}

// writeLegacy is appendLegacy with the writer left open (that edge still
// runs): the caller closes it.
func (e *env) writeLegacy(remote string, ids ...string) (string, *spool.Writer) {
	e.t.Helper()
	u, err := url.Parse(remote)
	if err != nil {
		e.t.Fatal(err)
	}
	dir := legacyRemoteDir(e.dataDir, u)
	w, err := spool.Open(spool.Options{Dir: filepath.Join(dir, remoteSpoolName)})
	if err != nil {
		e.t.Fatal(err)
	}
	for _, id := range ids {
		ev, err := event.Normalize(event.Input{ActivityID: id, Activity: "called_tool"},
			event.Defaults{Customer: "tester", Source: event.SourceMCP})
		if err != nil {
			e.t.Fatal(err)
		}
		b, err := event.Marshal(&ev)
		if err != nil {
			e.t.Fatal(err)
		}
		if err := w.Append(upload.KindEvent, b); err != nil {
			e.t.Fatal(err)
		}
	}
	return dir, w
}

// TestRemoteEdgeMigratesLegacySpool: the spool a previous version kept for a
// server (shared by every token) is shipped once, by the first edge that
// starts after the upgrade, under its customer, as that version would have,
// and it says so. From then on the spool is that customer's: an edge of
// another customer does not ship what an old edge still appends to it.
func TestRemoteEdgeMigratesLegacySpool(t *testing.T) {
	t.Parallel()
	srv := newEnv(t)
	c := srv.startCore()
	defer c.stop(t)
	a, idA, _ := srv.createToken("--customer", "remote-first")
	b, _, _ := srv.createToken("--customer", "remote-second")
	remote := "http://" + c.info.Addr
	laptop := newEnv(t)
	legacy := laptop.appendLegacy(remote, "leg-0", "leg-1", "leg-2", "leg-3")

	edA := laptop.startRemoteEdge(remote, a)
	srv.waitCount(`SELECT count(*) FROM claude_stream WHERE customer = 'remote-first' AND activity_id LIKE 'leg-%'`, 4, 30*time.Second)
	waitFor(t, 30*time.Second, func() bool { return strings.Contains(edA.log(), "previous activitybi version") })
	edA.closeClean(t)
	if l := edA.log(); !strings.Contains(l, legacy) || !strings.Contains(l, "records=4") || strings.Count(l, "previous activitybi version") != 1 {
		t.Errorf("the first edge's note on the legacy spool:\n%s", l)
	}
	id, err := readRemoteIdentity(legacy)
	if err != nil || !id.Legacy || id.Customer != "remote-first" || id.ClaimedBy != idA {
		t.Fatalf("the legacy spool's identity: %+v %v", id, err)
	}

	// An edge of the previous version, still running, appends more.
	laptop.appendLegacy(remote, "leg-4", "leg-5")
	edB := laptop.startRemoteEdge(remote, b)
	logEvents(t, edB, "b-", 1)
	srv.waitCount(`SELECT count(*) FROM claude_stream WHERE customer = 'remote-second'`, 1, 30*time.Second)
	waitFor(t, 30*time.Second, func() bool { return strings.Contains(edB.log(), "does not ship") })
	edB.closeClean(t)
	if l := edB.log(); !strings.Contains(l, legacy) || !strings.Contains(l, `remote-first`) || strings.Contains(l, "previous activitybi version") {
		t.Errorf("the second edge's warning:\n%s", l)
	}
	if n := srv.count(`SELECT count(*) FROM claude_stream WHERE customer = 'remote-second' AND activity_id LIKE 'leg-%'`); n != 0 {
		t.Fatalf("%d legacy events shipped again, under the second customer", n)
	}
	if out := laptop.mustRun(nil, "status"); !strings.Contains(out, legacy) || !strings.Contains(out, `claimed by customer "remote-first"`) {
		t.Errorf("status:\n%s", out)
	}

	edA = laptop.startRemoteEdge(remote, a)
	srv.waitCount(`SELECT count(*) FROM claude_stream WHERE customer = 'remote-first' AND activity_id LIKE 'leg-%'`, 6, 30*time.Second)
	edA.closeClean(t)
	if n := srv.count(`SELECT count(*) FROM claude_stream`); n != 7 {
		t.Errorf("%d rows, want 7", n)
	}
	if l := edA.log(); strings.Contains(l, "previous activitybi version") {
		t.Errorf("the legacy spool was announced as migrated twice:\n%s", l)
	}
}

// An edge of the previous version still running writes to the legacy spool
// with a token that may be another customer's: a new edge neither claims
// nor ships it until that writer has exited, then ships it once.
func TestRemoteEdgeWaitsForAPreviousVersionsEdge(t *testing.T) {
	t.Parallel()
	srv := newEnv(t)
	c := srv.startCore()
	defer c.stop(t)
	a, _, _ := srv.createToken("--customer", "remote-waits")
	remote := "http://" + c.info.Addr
	laptop := newEnv(t)
	legacy, w := laptop.writeLegacy(remote, "old-0", "old-1") // its writer stays open
	edA := laptop.startRemoteEdge(remote, a)
	waitFor(t, 30*time.Second, func() bool { return strings.Contains(edA.log(), "still writes to it") })
	time.Sleep(adoptScanInterval + time.Second)
	if n := srv.count(`SELECT count(*) FROM claude_stream WHERE activity_id LIKE 'old-%'`); n != 0 {
		t.Fatalf("%d records of a live previous-version edge shipped", n)
	}
	if id, err := readRemoteIdentity(legacy); err == nil && (id.Legacy || id.Customer != "") {
		t.Fatalf("claimed while its writer lives: %+v", id)
	}
	if err := w.Close(); err != nil { // that edge exits
		t.Fatal(err)
	}
	srv.waitCount(`SELECT count(*) FROM claude_stream WHERE customer = 'remote-waits' AND activity_id LIKE 'old-%'`, 2, 30*time.Second)
	edA.closeClean(t)
}
