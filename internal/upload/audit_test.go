package upload

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/activitybi/activitybi/internal/event"
	"github.com/activitybi/activitybi/internal/spool"
)

func auditPayload(t testing.TB, id, customer, action string) []byte {
	t.Helper()
	now := time.Now().UTC().Truncate(time.Microsecond)
	a := event.Audit{AuditID: id, At: now.Add(-5 * time.Millisecond), Principal: "tok_1", Customer: customer, Action: action,
		Target: "tgt-" + id, Rows: 2, Bytes: 40, DurationMS: 5, Outcome: event.OutcomeOK, Detail: "it's \"quoted\"",
		ReceivedAt: now, Source: event.SourceMCP}
	if err := event.ValidateAudit(&a, now); err != nil {
		t.Fatal(err)
	}
	b, err := event.MarshalAudit(&a)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// writeMixed appends n audit records (ids <prefix>0..) between events to a
// new spool writer of dir and closes it.
func writeMixed(t *testing.T, dir, prefix string, n int) {
	t.Helper()
	w, err := spool.Open(spool.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if err := w.Append(KindEvent, payload(t, prefix+"ev"+fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
		if err := w.Append(KindAudit, auditPayload(t, fmt.Sprintf("%s%d", prefix, i), "c1", event.ActionGotContext)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// auditIDs lists audit_log's ids with how often each is stored.
func (b *bundle) auditIDs(t *testing.T) string {
	t.Helper()
	tab, err := b.db.Query(context.Background(),
		`SELECT audit_id, count(*) FROM audit_log GROUP BY audit_id ORDER BY audit_id`, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range tab.Rows {
		out = append(out, fmt.Sprintf("%s×%d", r[0], r[1]))
	}
	return strings.Join(out, " ")
}

// TestAuditLoadedExactlyOnce: audit records between events are loaded with
// their columns; a restarted uploader over the same spool and warehouse
// loads nothing again.
func TestAuditLoadedExactlyOnce(t *testing.T) {
	t.Parallel()
	u, b := setup(t)
	w := spoolWriter(t, b.dir) // an open segment too: tailed, not deleted
	if err := w.Append(KindAudit, auditPayload(t, "open-1", "c2", event.ActionFetchedResult)); err != nil {
		t.Fatal(err)
	}
	writeMixed(t, b.dir, "a", 3)
	drain(t, u)
	const want = "a0×1 a1×1 a2×1 open-1×1"
	if got := b.auditIDs(t); got != want {
		t.Fatalf("audit_log %s; want %s", got, want)
	}
	if st := u.Status(); st.AuditInserted != 4 || st.Inserted != 3 || st.Quarantined != 0 {
		t.Fatalf("status %+v", st)
	}
	tab, err := b.db.Query(context.Background(), `SELECT principal, customer_id, action, target, rows, bytes, duration_ms, outcome,
    detail, _source, "at" < _received_at FROM audit_log WHERE audit_id = 'open-1'`, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(tab.Rows); got != `[[tok_1 c2 fetched_result tgt-open-1 2 40 5 ok it's "quoted" mcp true]]` {
		t.Fatalf("row %s", got)
	}

	// Restart: a new uploader reads the committed offsets and loads only
	// what is new.
	if err := w.Append(KindAudit, auditPayload(t, "open-2", "c2", event.ActionFetchedResult)); err != nil {
		t.Fatal(err)
	}
	u2, err := New(Options{SpoolDir: b.dir, Warehouse: b.db, RetryMin: time.Millisecond, RetryMax: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	drain(t, u2)
	if got := b.auditIDs(t); got != want+" open-2×1" {
		t.Fatalf("after a restart audit_log %s", got)
	}
	if st := u2.Status(); st.AuditInserted != 1 {
		t.Fatalf("restarted uploader inserted %d audit rows; want 1", st.AuditInserted)
	}
}

// TestAuditRetriedBatch: a batch whose commit succeeded but was reported
// failed (the acknowledgement lost), and batches that failed outright, are
// loaded again: every audit record is stored once.
func TestAuditRetriedBatch(t *testing.T) {
	t.Parallel()
	u, b := setup(t)
	// The acknowledgement of a commit is lost: the same batch is loaded
	// again on top of itself.
	writeMixed(t, b.dir, "r", 5)
	b.db.mu.Lock()
	b.db.ackLost = 1
	b.db.mu.Unlock()
	drain(t, u)
	if n := b.db.committed.Load(); n != 2 {
		t.Fatalf("%d commits; want the batch committed twice", n)
	}
	if got := b.auditIDs(t); got != "r0×1 r1×1 r2×1 r3×1 r4×1" {
		t.Fatalf("audit_log %s", got)
	}
	// Loads that fail outright are retried.
	writeMixed(t, b.dir, "s", 2)
	b.db.mu.Lock()
	b.db.failNext = 2
	b.db.mu.Unlock()
	drain(t, u)
	if n := b.db.failures.Load(); n != 2 {
		t.Fatalf("%d failed loads; want 2", n)
	}
	if got := b.auditIDs(t); got != "r0×1 r1×1 r2×1 r3×1 r4×1 s0×1 s1×1" {
		t.Fatalf("audit_log %s", got)
	}
	if got := b.count(t, "claude_stream"); got != 7 {
		t.Fatalf("%d events", got)
	}
}

// TestBadAuditQuarantined: an audit record that does not decode or
// validate goes to upload_quarantine with kind audit and the reason; the
// good ones around it are loaded.
func TestBadAuditQuarantined(t *testing.T) {
	t.Parallel()
	u, b := setup(t)
	w := spoolWriter(t, b.dir)
	good := auditPayload(t, "ok-1", "c1", event.ActionGotContext)
	bad := map[string][]byte{
		"unknown action": []byte(strings.Replace(string(auditPayload(t, "bad-1", "c1", event.ActionGotContext)), `"got_context"`, `"deleted_rows"`, 1)),
		"no customer":    []byte(strings.Replace(string(auditPayload(t, "bad-2", "c1", event.ActionGotContext)), `"customer_id":"c1",`, ``, 1)),
		"unknown field":  []byte(strings.Replace(string(auditPayload(t, "bad-3", "c1", event.ActionGotContext)), `{`, `{"who":"x",`, 1)),
	}
	for _, p := range [][]byte{good, bad["unknown action"], bad["no customer"], bad["unknown field"]} {
		if err := w.Append(KindAudit, p); err != nil {
			t.Fatal(err)
		}
	}
	drain(t, u)
	if got := b.auditIDs(t); got != "ok-1×1" {
		t.Fatalf("audit_log %s", got)
	}
	tab, err := b.db.Query(context.Background(), `SELECT kind, reason FROM upload_quarantine ORDER BY "offset"`, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`schema drift: invalid audit record: action: "deleted_rows" is not a known action`,
		`schema drift: invalid audit record: customer_id: is required for action got_context`,
		`schema drift: decode audit record: json: unknown field "who"`,
	}
	if len(tab.Rows) != len(want) {
		t.Fatalf("quarantine %v", tab.Rows)
	}
	for i, r := range tab.Rows {
		if r[0] != KindAudit || !strings.HasPrefix(r[1].(string), want[i]) {
			t.Errorf("quarantined %v; want kind audit, reason %q...", r, want[i])
		}
	}
	if st := u.Status(); st.Quarantined != 3 || st.AuditInserted != 1 {
		t.Fatalf("status %+v", st)
	}
}

// TestAuditRejectedByWarehouse: an audit record the warehouse refuses is
// isolated by bisection and quarantined under kind audit with the
// warehouse's reason; the rest of its batch is loaded.
func TestAuditRejectedByWarehouse(t *testing.T) {
	t.Parallel()
	u, b := setup(t)
	writeMixed(t, b.dir, "p", 4)
	b.db.mu.Lock()
	b.db.rejectID = "p2"
	b.db.mu.Unlock()
	drain(t, u)
	if got := b.auditIDs(t); got != "p0×1 p1×1 p3×1" {
		t.Fatalf("audit_log %s", got)
	}
	tab, err := b.db.Query(context.Background(), `SELECT kind, reason, decode(raw) FROM upload_quarantine`, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(tab.Rows) != 1 || tab.Rows[0][0] != KindAudit || !strings.HasPrefix(tab.Rows[0][1].(string), "rejected by the warehouse: ") ||
		!strings.Contains(tab.Rows[0][2].(string), `"audit_id":"p2"`) {
		t.Fatalf("quarantine %v", tab.Rows)
	}
	if got := b.count(t, "claude_stream"); got != 4 {
		t.Fatalf("%d events; want all 4", got)
	}
}

// TestRemoteSkipsAudit: a remote edge does not ship its audit records (the
// server audits its own accesses): none is sent, none is quarantined, they
// are counted as skipped, and the offsets move past them.
func TestRemoteSkipsAudit(t *testing.T) {
	t.Parallel()
	b := remoteSetup(t)
	w := spoolWriter(t, b.spool)
	appendEvents(t, w, "ev-", 0, 2)
	for _, id := range []string{"au-1", "au-2", "au-3"} {
		if err := w.Append(KindAudit, auditPayload(t, id, "laptop-user", event.ActionGotContext)); err != nil {
			t.Fatal(err)
		}
	}
	appendEvents(t, w, "ev-", 2, 3)
	u, sink := b.uploader(t, nil)
	if err := drainCtx(t, u, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	events, _, received, reqs := b.fake.snapshot()
	if len(events) != 3 {
		t.Fatalf("server has %d events; want 3", len(events))
	}
	for _, r := range reqs {
		if r.path != "/v1/events" {
			t.Errorf("a request to %s", r.path)
		}
	}
	for _, id := range []string{"au-1", "au-2", "au-3"} {
		if received[id] != 0 {
			t.Errorf("audit record %s was sent", id)
		}
	}
	if n := sink.SkippedAudit(); n != 3 {
		t.Fatalf("SkippedAudit = %d; want 3", n)
	}
	if st := u.Status(); st.Quarantined != 0 || st.AuditInserted != 0 || st.BacklogBytes != 0 {
		t.Fatalf("status %+v", st)
	}
	if _, err := os.Stat(filepath.Join(b.state, RemoteQuarantineFile)); !os.IsNotExist(err) {
		b, _ := os.ReadFile(filepath.Join(b.state, RemoteQuarantineFile))
		t.Fatalf("quarantine file exists: %s", b)
	}
	// A restarted edge does not see them again.
	u2, sink2 := b.uploader(t, nil)
	if err := drainCtx(t, u2, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if n := sink2.SkippedAudit(); n != 0 {
		t.Fatalf("restarted edge skipped %d audit records again", n)
	}
}

// TestDocumentedAuditRecord: the audit record shown in
// docs/spool-format.md passes the spool's check and decodes, and
// MarshalAudit writes exactly its payload.
func TestDocumentedAuditRecord(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "spool-format.md"))
	if err != nil {
		t.Fatal(err)
	}
	var line string
	for _, l := range strings.Split(string(doc), "\n") {
		if strings.HasPrefix(l, `{"crc":`) && strings.Contains(l, `"kind":"audit"`) {
			line = l
		}
	}
	if line == "" {
		t.Fatal("no audit record example in docs/spool-format.md")
	}
	path := filepath.Join(t.TempDir(), "01JD3Q8V7Z6XKJ2M4N5P6Q7R8S-000001.seg")
	if err := os.WriteFile(path, []byte(line+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	entries, _, err := spool.ReadSegment(path, 0, 0, nil)
	if err != nil || len(entries) != 1 || entries[0].Corrupt != "" || entries[0].Kind != KindAudit {
		t.Fatalf("documented record: %+v, %v", entries, err)
	}
	a, err := event.DecodeAudit(entries[0].Payload)
	if err != nil {
		t.Fatalf("documented payload: %v", err)
	}
	if b, err := event.MarshalAudit(&a); err != nil || string(b) != string(entries[0].Payload) {
		t.Fatalf("MarshalAudit of the documented record:\n got %s\nwant %s", b, entries[0].Payload)
	}
}
