package query

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRestart: a ticket queued when its run ended comes back failed, a
// succeeded one comes back readable, hashes and insights survive, and an
// orphaned result file is removed.
func TestRestart(t *testing.T) {
	t.Parallel()
	db := openWarehouse(t)
	e, b := newEngine(t, db, Options{Store: db, Workers: 1})
	stop := run(t, e)
	done := waitFinal(t, e, "alice", submit(t, e, "alice", "by_activity", "").ID)
	e.AddInsight("alice", done.QueryHash, "atom-1")
	e.AddInsight("alice", done.QueryHash, "atom-1") // listed once
	e.AddInsight("bob", done.QueryHash, "atom-x")   // another customer's hash: nothing
	stop()

	// A second engine that never runs: its queued ticket is written by a
	// flush and then the process "crashes" (no Run, no shutdown).
	crashed, _ := newEngine(t, db, Options{Store: db, Dir: b.dir})
	queued := submit(t, crashed, "alice", "count_of", `{"activity":"started_session"}`)
	if err := crashed.flushOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	orphan := filepath.Join(b.dir, "qt_01JAAAAAAAAAAAAAAAAAAAAAAA.ndjson")
	if err := os.WriteFile(orphan, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}

	again, _ := newEngine(t, db, Options{Store: db, Dir: b.dir})
	q, err := again.Status(context.Background(), "alice", queued.ID)
	if err != nil || q.State != StateFailed || q.Error != "the core restarted before the query finished; submit it again" {
		t.Fatalf("queued ticket after restart: %+v %v", q, err)
	}
	d, err := again.Status(context.Background(), "alice", done.ID)
	if err != nil || d.State != StateSucceeded || d.Rows != 3 || strings.Join(d.Insights, ",") != "atom-1" || d.Principal != "test" {
		t.Fatalf("succeeded ticket after restart: %+v %v", d, err)
	}
	if p, err := again.Result(context.Background(), "alice", done.ID, 0, 10); err != nil || len(p.Rows) != 3 {
		t.Errorf("result after restart: %+v %v", p, err)
	}
	if _, err := again.Status(context.Background(), "bob", done.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("bob sees alice's ticket after restart: %v", err)
	}
	if _, err := os.Stat(orphan); !os.IsNotExist(err) {
		t.Errorf("orphaned result file kept: %v", err)
	}
	for _, c := range []struct {
		customer, hash string
		want           bool
	}{{"alice", done.QueryHash, true}, {"bob", done.QueryHash, false}, {"alice", "q_nope", false}} {
		if known, err := again.HashKnown(context.Background(), c.customer, c.hash); err != nil || known != c.want {
			t.Errorf("HashKnown(%s, %s) = %v, %v", c.customer, c.hash, known, err)
		}
	}
	// The restart's verdict on the queued ticket is stored too.
	if err := again.flushOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	rows, _ := db.LoadTickets(context.Background(), time.Now())
	for _, r := range rows {
		if r.TicketID == queued.ID && r.State != "failed" {
			t.Errorf("stored queued ticket %+v", r)
		}
	}
}

// TestExpiry: after ResultTTL a ticket is expired and its file removed; a
// day later only the store knows its hash.
func TestExpiry(t *testing.T) {
	t.Parallel()
	db := openWarehouse(t)
	clk := &clock{t: t0}
	e, _ := newEngine(t, db, Options{Store: db, Now: clk.Now, ResultTTL: time.Hour})
	run(t, e)
	tk := waitFinal(t, e, "alice", submit(t, e, "alice", "by_activity", "").ID)
	if !tk.ExpiresAt.Equal(t0.Add(time.Hour)) {
		t.Fatalf("expires %s", tk.ExpiresAt)
	}
	clk.Add(time.Hour)
	s, err := e.Status(context.Background(), "alice", tk.ID)
	if err != nil || s.State != StateExpired || s.ResultPath != "" {
		t.Fatalf("after the TTL: %+v %v", s, err)
	}
	if _, err := os.Stat(tk.ResultPath); !os.IsNotExist(err) {
		t.Errorf("result file kept: %v", err)
	}
	if _, err := e.Result(context.Background(), "alice", tk.ID, 0, 1); !errors.Is(err, ErrNoResult) || !strings.Contains(err.Error(), "expired") {
		t.Errorf("result after expiry: %v", err)
	}
	if err := e.flushOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	clk.Add(forgetAfter)
	e.sweep(clk.Now())
	if _, err := e.Status(context.Background(), "alice", tk.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("forgotten ticket: %v", err)
	}
	e.mu.Lock()
	custs := len(e.custs)
	e.mu.Unlock()
	if custs != 0 {
		t.Errorf("%d customers remembered a day later", custs)
	}
	if known, err := e.HashKnown(context.Background(), "alice", tk.QueryHash); err != nil || !known {
		t.Errorf("hash of a forgotten ticket: %v %v", known, err)
	}
	if known, _ := e.HashKnown(context.Background(), "bob", tk.QueryHash); known {
		t.Error("bob knows alice's hash")
	}
}

// TestSweepExpires: the sweeper (not only a lookup) expires results.
func TestSweepExpires(t *testing.T) {
	t.Parallel()
	db := openWarehouse(t)
	clk := &clock{t: t0}
	e, _ := newEngine(t, db, Options{Now: clk.Now, ResultTTL: time.Minute})
	run(t, e)
	tk := waitFinal(t, e, "alice", submit(t, e, "alice", "by_activity", "").ID)
	clk.Add(time.Minute)
	e.sweep(clk.Now())
	if _, err := os.Stat(tk.ResultPath); !os.IsNotExist(err) {
		t.Errorf("result file kept after the sweep: %v", err)
	}
	e.mu.Lock()
	st := e.tickets[tk.ID].t.State
	e.mu.Unlock()
	if st != StateExpired {
		t.Errorf("state %s", st)
	}
}

// TestStoreFailureRetries: a failing store keeps the tickets changed, so
// the next flush writes them.
func TestStoreFailureRetries(t *testing.T) {
	t.Parallel()
	db := openWarehouse(t)
	e, _ := newEngine(t, db, Options{Store: db})
	submit(t, e, "alice", "by_activity", "")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := e.flushOnce(ctx); err == nil {
		t.Fatal("flush with a cancelled context succeeded")
	}
	if len(e.dirty) != 1 {
		t.Fatalf("%d dirty tickets after a failed flush", len(e.dirty))
	}
	if err := e.flushOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	rows, err := db.LoadTickets(context.Background(), time.Now())
	if err != nil || len(rows) != 1 || rows[0].State != "queued" || rows[0].CustomerID != "alice" || string(rows[0].Request) != `{"template":"by_activity"}` {
		t.Errorf("stored %+v %v", rows, err)
	}
}

func TestInsightsListed(t *testing.T) {
	t.Parallel()
	e, _ := setup(t, Options{})
	a := waitFinal(t, e, "alice", submit(t, e, "alice", "by_activity", "").ID)
	b := waitFinal(t, e, "alice", submit(t, e, "alice", "by_activity", "").ID)
	for i := range MaxInsightsPerTicket + 3 {
		e.AddInsight("alice", a.QueryHash, "atom-"+string(rune('A'+i%26))+string(rune('a'+i/26)))
	}
	for _, id := range []string{a.ID, b.ID} {
		s, _ := e.Status(context.Background(), "alice", id)
		if len(s.Insights) != MaxInsightsPerTicket {
			t.Errorf("%s lists %d insights", id, len(s.Insights))
		}
	}
	if known, _ := e.HashKnown(context.Background(), "alice", a.QueryHash); !known {
		t.Error("hash not known")
	}
}
