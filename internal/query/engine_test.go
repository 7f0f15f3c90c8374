package query

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestSubmitToResult runs a template for alice and reads the result: the
// counts are the fixture's, the hash is the customer's, the file is
// private, and bob can neither see nor cancel nor read alice's ticket.
func TestSubmitToResult(t *testing.T) {
	t.Parallel()
	e, b := setup(t, Options{})
	tk := submit(t, e, "alice", "by_activity", "")
	if tk.State != StateQueued || tk.Progress != 0 || !strings.HasPrefix(tk.ID, ticketIDPrefix) {
		t.Fatalf("submitted ticket %+v", tk)
	}
	if want := QueryHash("alice", []byte("by_activity\x00{}")); tk.QueryHash != want {
		t.Errorf("hash %s, want %s", tk.QueryHash, want)
	}
	done := waitFinal(t, e, "alice", tk.ID)
	if done.State != StateSucceeded || done.Progress != 1 || done.Sampled || done.Truncated || done.Rows != 3 {
		t.Fatalf("finished ticket %+v", done)
	}
	if !done.ExpiresAt.Equal(done.FinishedAt.Add(DefaultResultTTL)) {
		t.Errorf("expires %s, finished %s", done.ExpiresAt, done.FinishedAt)
	}
	p, err := e.Result(context.Background(), "alice", tk.ID, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, r := range p.Rows {
		got[r[0].(string)] = string(r[1].(json.Number))
	}
	want := map[string]string{}
	for act, n := range fixture["alice"] {
		want[act] = fmt.Sprint(n)
	}
	if !reflect.DeepEqual(got, want) || p.Total != 3 || p.NextOffset != -1 {
		t.Errorf("page %+v; counts %v, want %v", p, got, want)
	}
	if cols := fmt.Sprint(p.Columns); cols != "[{activity VARCHAR} {n BIGINT}]" {
		t.Errorf("columns %s", cols)
	}

	st, err := os.Stat(done.ResultPath)
	if err != nil || st.Mode().Perm() != fileMode || filepath.Dir(done.ResultPath) != b.dir || st.Size() < done.Bytes {
		t.Errorf("result file %s: %v %v", done.ResultPath, st, err)
	}
	if st, err := os.Stat(b.dir); err != nil || st.Mode().Perm() != dirMode {
		t.Errorf("result dir: %v %v", st, err)
	}

	// Another customer gets exactly the answer a missing ticket gets.
	_, errOther := e.Status(context.Background(), "bob", tk.ID)
	_, errMissing := e.Status(context.Background(), "bob", "qt_01JZZZZZZZZZZZZZZZZZZZZZZZ")
	if !errors.Is(errOther, ErrNotFound) || strings.ReplaceAll(errOther.Error(), tk.ID, "ID") != strings.ReplaceAll(errMissing.Error(), "qt_01JZZZZZZZZZZZZZZZZZZZZZZZ", "ID") {
		t.Errorf("other customer's ticket: %v; missing: %v", errOther, errMissing)
	}
	if _, err := e.Result(context.Background(), "bob", tk.ID, 0, 10); !errors.Is(err, ErrNotFound) {
		t.Errorf("bob reads alice's result: %v", err)
	}
	if _, err := e.Cancel(context.Background(), "bob", tk.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("bob cancels alice's ticket: %v", err)
	}
	if _, err := e.Wait(context.Background(), "bob", tk.ID, 0, nil); !errors.Is(err, ErrNotFound) {
		t.Errorf("bob waits for alice's ticket: %v", err)
	}
	// Bob's result read and cancel are in the audit log as his probes,
	// under his principal, and nothing of alice's is touched.
	misses := map[string]bool{}
	for _, a := range b.audits() {
		if a.Customer == "bob" && a.Outcome == "not_found" && a.Target == tk.ID {
			misses[a.Action] = true
		}
	}
	if !misses["get_query_result"] || !misses["cancel_query"] {
		t.Errorf("bob's reads of alice's ticket audited as %v; audit: %+v", misses, b.audits())
	}
	if st, err := e.Status(context.Background(), "alice", tk.ID); err != nil || st.State != StateSucceeded {
		t.Errorf("alice's ticket after bob's cancel: %+v %v", st, err)
	}

	// Bob's own ticket of the same template sees only bob's rows and has
	// another hash.
	bt := waitFinal(t, e, "bob", submit(t, e, "bob", "by_activity", "").ID)
	if bt.QueryHash == tk.QueryHash || bt.Rows != 2 {
		t.Errorf("bob's ticket %+v", bt)
	}
	if n := testutil.ToFloat64(e.m.finished.WithLabelValues("succeeded")); n != 2 {
		t.Errorf("succeeded counter %v", n)
	}
	if len(b.audits()) == 0 {
		t.Error("no audit entries")
	}
}

// TestParamsAreBound: a param value is an argument, and its value changes
// the hash; a bad request is refused before a ticket exists.
func TestParamsAreBound(t *testing.T) {
	t.Parallel()
	e, _ := setup(t, Options{})
	a := waitFinal(t, e, "alice", submit(t, e, "alice", "count_of", `{"activity":"submitted_prompt"}`).ID)
	p, err := e.Result(context.Background(), "alice", a.ID, 0, 10)
	if err != nil || fmt.Sprint(p.Rows) != "[[400]]" {
		t.Fatalf("count_of: %v %v", p, err)
	}
	odd := `{"activity":"x' OR 1=1 --"}`
	o := waitFinal(t, e, "alice", submit(t, e, "alice", "count_of", odd).ID)
	if p, err := e.Result(context.Background(), "alice", o.ID, 0, 10); err != nil || fmt.Sprint(p.Rows) != "[[0]]" {
		t.Fatalf("quoted param: %v %v", p, err)
	}
	if a.QueryHash == o.QueryHash {
		t.Error("different params, same hash")
	}
	again := submit(t, e, "alice", "count_of", `{"activity":"submitted_prompt"}`)
	if again.QueryHash != a.QueryHash || again.ID == a.ID {
		t.Errorf("same question: hash %s vs %s, id %s vs %s", again.QueryHash, a.QueryHash, again.ID, a.ID)
	}
	waitFinal(t, e, "alice", again.ID)
}

func TestInvalidRequests(t *testing.T) {
	t.Parallel()
	db := openWarehouse(t)
	e, b := newEngine(t, db, Options{Compile: func(req Request, now time.Time) (*Compiled, error) {
		switch req.Template {
		case "panics":
			panic("boom")
		case "nokey":
			return &Compiled{SQL: "SELECT 1"}, nil
		case "nosql":
			return &Compiled{Key: []byte("k")}, nil
		}
		return compile(req, now)
	}})
	for name, c := range map[string]struct {
		req     Request
		invalid bool
		msg     string
	}{
		"empty":        {Request{}, true, "give a template name or a dataset spec"},
		"both":         {Request{Template: "by_activity", Dataset: json.RawMessage(`{}`)}, true, "not both"},
		"unknown":      {Request{Template: "nope"}, true, `no template "nope"`},
		"bad params":   {Request{Template: "count_of", Params: json.RawMessage(`{}`)}, true, "needs params.activity"},
		"dataset":      {Request{Dataset: json.RawMessage(`{"cohort":{}}`)}, true, "no datasets"},
		"too big":      {Request{Template: "by_activity", Params: json.RawMessage(`{"x":"` + strings.Repeat("a", MaxRequestBytes) + `"}`)}, true, "at most 65536 bytes"},
		"panics":       {Request{Template: "panics"}, false, "a bug in activitybi"},
		"no key":       {Request{Template: "nokey"}, false, "no key"},
		"no sql":       {Request{Template: "nosql"}, false, "no SQL"},
		"null dataset": {Request{Dataset: json.RawMessage(`null`)}, true, "give a template name"},
	} {
		tk, err := e.Submit(context.Background(), "alice", "test", c.req)
		if err == nil || tk != nil || errors.Is(err, ErrInvalidRequest) != c.invalid || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: %v, %v", name, tk, err)
		}
	}
	if _, err := e.Submit(context.Background(), "", "test", Request{Template: "by_activity"}); err == nil {
		t.Error("submit without a customer")
	}
	if n := len(e.tickets); n != 0 {
		t.Errorf("%d tickets after refusals", n)
	}
	var invalid int
	for _, a := range b.audits() {
		if a.Action == "submit_query" && a.Outcome == "invalid" {
			invalid++
		}
	}
	if invalid != 7 {
		t.Errorf("%d invalid submissions audited, want 7", invalid)
	}
}

// TestTimeout: a query past its timeout fails saying so, counts, and the
// worker is free again.
func TestTimeout(t *testing.T) {
	t.Parallel()
	e, _ := setup(t, Options{Workers: 1})
	start := time.Now()
	tk := waitFinal(t, e, "alice", submit(t, e, "alice", "slow", `{"timeout_ms":300}`).ID)
	if tk.State != StateFailed || !strings.Contains(tk.Error, "timed out after 300ms (the limit for slow)") {
		t.Fatalf("ticket %+v", tk)
	}
	if n := testutil.ToFloat64(e.m.timeouts); n != 1 {
		t.Errorf("timeouts %v", n)
	}
	if el := time.Since(start); el > 20*time.Second {
		t.Errorf("the timed-out query held the worker for %s", el)
	}
	if after := waitFinal(t, e, "alice", submit(t, e, "alice", "by_activity", "").ID); after.State != StateSucceeded {
		t.Errorf("next ticket %+v", after)
	}
	// The template's timeout is capped at MaxTimeout.
	e2, _ := setup(t, Options{Workers: 1, DefaultTimeout: 100 * time.Millisecond, MaxTimeout: 200 * time.Millisecond})
	tk = waitFinal(t, e2, "alice", submit(t, e2, "alice", "slow", "").ID)
	if !strings.Contains(tk.Error, "timed out after 200ms") {
		t.Errorf("capped timeout: %+v", tk)
	}
}

// TestWarehouseError: a statement the warehouse rejects fails its ticket
// with the warehouse's reason.
func TestWarehouseError(t *testing.T) {
	t.Parallel()
	e, _ := setup(t, Options{})
	tk := waitFinal(t, e, "alice", submit(t, e, "alice", "broken", "").ID)
	if tk.State != StateFailed || !strings.Contains(tk.Error, "no_such_column") {
		t.Fatalf("ticket %+v", tk)
	}
	if _, err := e.Result(context.Background(), "alice", tk.ID, 0, 1); !errors.Is(err, ErrNoResult) || !strings.Contains(err.Error(), "failed") {
		t.Errorf("result of a failed ticket: %v", err)
	}
}

// TestCancelMidRun cancels a running query: the ticket is cancelled within
// Cancel's wait, the warehouse stops (the one worker runs the next ticket),
// and nothing is kept.
func TestCancelMidRun(t *testing.T) {
	t.Parallel()
	e, b := setup(t, Options{Workers: 1})
	tk := submit(t, e, "alice", "slow", "")
	waitState(t, e, "alice", tk.ID, StateRunning)
	time.Sleep(100 * time.Millisecond) // well inside the statement
	ctx := WithPrincipal(context.Background(), "token:canceller")
	c, err := e.Cancel(ctx, "alice", tk.ID)
	if err != nil {
		t.Fatal(err)
	}
	if c.State != StateCancelled || c.ResultPath != "" || c.FinishedAt.IsZero() {
		t.Fatalf("cancelled ticket %+v", c)
	}
	next := waitFinal(t, e, "alice", submit(t, e, "alice", "by_activity", "").ID)
	if next.State != StateSucceeded {
		t.Fatalf("next ticket %+v", next)
	}
	if _, err := e.Result(context.Background(), "alice", tk.ID, 0, 1); !errors.Is(err, ErrNoResult) {
		t.Errorf("result of a cancelled ticket: %v", err)
	}
	// Cancelling again is harmless.
	if again, err := e.Cancel(ctx, "alice", tk.ID); err != nil || again.State != StateCancelled {
		t.Errorf("second cancel: %+v %v", again, err)
	}
	var saw bool
	for _, a := range b.audits() {
		if a.Action == "cancel_query" && a.Principal == "token:canceller" && strings.HasPrefix(a.Target, tk.ID) && a.Detail == "was running" {
			saw = true
		}
	}
	if !saw {
		t.Errorf("no audit of the cancel: %+v", b.audits())
	}
}

// TestCancelQueued cancels a ticket before it runs.
func TestCancelQueued(t *testing.T) {
	t.Parallel()
	db := openWarehouse(t)
	e, _ := newEngine(t, db, Options{Workers: 1})
	tk := submit(t, e, "alice", "by_activity", "")
	other := submit(t, e, "alice", "by_activity", "")
	c, err := e.Cancel(context.Background(), "alice", tk.ID)
	if err != nil || c.State != StateCancelled || c.Stage != "cancelled before it ran" {
		t.Fatalf("cancel: %+v %v", c, err)
	}
	if e.queue.n != 1 || e.custs["alice"].unfinished != 1 {
		t.Errorf("queue %d, unfinished %d", e.queue.n, e.custs["alice"].unfinished)
	}
	run(t, e)
	if o := waitFinal(t, e, "alice", other.ID); o.State != StateSucceeded {
		t.Errorf("other ticket %+v", o)
	}
	if s, _ := e.Status(context.Background(), "alice", tk.ID); s.State != StateCancelled || !s.StartedAt.IsZero() {
		t.Errorf("cancelled ticket ran: %+v", s)
	}
}

// TestWaitReportsChanges: Wait calls progress with each change and returns
// the final ticket; with a zero wait it returns at once.
func TestWaitReportsChanges(t *testing.T) {
	t.Parallel()
	db := openWarehouse(t)
	e, _ := newEngine(t, db, Options{Workers: 1})
	tk := submit(t, e, "alice", "events", "")
	if now, err := e.Wait(context.Background(), "alice", tk.ID, 0, nil); err != nil || now.State != StateQueued {
		t.Fatalf("zero wait: %+v %v", now, err)
	}
	var seen []string
	go func() {
		time.Sleep(50 * time.Millisecond)
		run(t, e)
	}()
	final, err := e.Wait(context.Background(), "alice", tk.ID, 30*time.Second, func(tk *Ticket) {
		seen = append(seen, string(tk.State)+": "+tk.Stage)
	})
	if err != nil || final.State != StateSucceeded {
		t.Fatalf("wait: %+v %v", final, err)
	}
	// Changes closer together than the waiter wakes are coalesced, so
	// only the first report and some running stage are certain.
	joined := strings.Join(seen, " | ")
	if !strings.HasPrefix(joined, "queued: queued") || !strings.Contains(joined, "running: ") {
		t.Errorf("progress %q", joined)
	}
	t.Logf("progress reports: %s", joined)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	slow := submit(t, e, "alice", "slow", "")
	if _, err := e.Wait(ctx, "alice", slow.ID, time.Minute, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("wait with a cancelled context: %v", err)
	}
	if _, err := e.Cancel(context.Background(), "alice", slow.ID); err != nil {
		t.Error(err)
	}
}

// TestFairness: alice queues 40 tickets, then bob 2; with round-robin
// service bob's both finish before all but a handful of alice's.
func TestFairness(t *testing.T) {
	t.Parallel()
	db := openWarehouse(t)
	e, b := newEngine(t, db, Options{Workers: 2})
	var ids []string
	for range 40 {
		ids = append(ids, submit(t, e, "alice", "by_activity", "").ID)
	}
	bob := []string{submit(t, e, "bob", "by_activity", "").ID, submit(t, e, "bob", "by_activity", "").ID}
	run(t, e)
	for _, id := range ids {
		waitFinal(t, e, "alice", id)
	}
	for _, id := range bob {
		waitFinal(t, e, "bob", id)
	}
	// Completion order from the audit log of finished runs.
	var order []string
	for _, a := range b.audits() {
		if a.Action == "run_query" {
			order = append(order, a.Customer)
		}
	}
	aliceBefore := 0
	lastBob := 0
	for i, c := range order {
		if c == "bob" {
			lastBob = i
		}
	}
	for _, c := range order[:lastBob] {
		if c == "alice" {
			aliceBefore++
		}
	}
	// Two workers: each of bob's is taken within the next two pops after
	// one of alice's, so at most ~4 of alice's finish first.
	if aliceBefore > 6 {
		t.Errorf("%d of alice's tickets finished before bob's last (order %v)", aliceBefore, order)
	}
	t.Logf("alice tickets finished before bob's last: %d of 40", aliceBefore)
}

// TestFairQueueOrder checks the round-robin order directly.
func TestFairQueueOrder(t *testing.T) {
	var q fairQueue
	cs := map[string]*custState{"a": {name: "a"}, "b": {name: "b"}, "c": {name: "c"}}
	push := func(c string, n int) {
		for range n {
			q.push(cs[c], &ticket{customer: c})
		}
	}
	push("a", 3)
	push("b", 1)
	push("c", 2)
	var got []string
	first := q.pop()
	got = append(got, first.customer)
	// A ticket cancelled while queued leaves the rotation intact.
	if !q.remove(cs["b"], cs["b"].queue[0]) {
		t.Fatal("remove")
	}
	push("b", 1)
	for t := q.pop(); t != nil; t = q.pop() {
		got = append(got, t.customer)
	}
	// a; b's only ticket is cancelled, so c; b came back at the end of
	// the rotation; then a, c, and a's last.
	if s := strings.Join(got, ""); s != "acbaca" {
		t.Errorf("order %s, want acbaca", s)
	}
	if q.n != 0 || len(q.ring) != 0 {
		t.Errorf("left: n %d ring %d", q.n, len(q.ring))
	}
}

// TestShutdown: stopping Run fails the running and the queued tickets with
// a clear message, stores them, and refuses new submissions.
func TestShutdown(t *testing.T) {
	t.Parallel()
	db := openWarehouse(t)
	e, _ := newEngine(t, db, Options{Workers: 1, Store: db})
	stop := run(t, e)
	slow := submit(t, e, "alice", "slow", "")
	queued := submit(t, e, "alice", "by_activity", "")
	waitState(t, e, "alice", slow.ID, StateRunning)
	stop()
	s1, _ := e.Status(context.Background(), "alice", slow.ID)
	s2, _ := e.Status(context.Background(), "alice", queued.ID)
	if s1.State != StateFailed || !strings.Contains(s1.Error, "the core stopped before the query finished") {
		t.Errorf("running ticket: %+v", s1)
	}
	if s2.State != StateFailed || !strings.Contains(s2.Error, "the core stopped before the query ran") {
		t.Errorf("queued ticket: %+v", s2)
	}
	if _, err := e.Submit(context.Background(), "alice", "t", Request{Template: "by_activity"}); !errors.Is(err, ErrStopped) {
		t.Errorf("submit after stop: %v", err)
	}
	rows, err := db.LoadTickets(context.Background(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	states := map[string]string{}
	for _, r := range rows {
		states[r.TicketID] = r.State
	}
	if states[slow.ID] != "failed" || states[queued.ID] != "failed" {
		t.Errorf("stored states %v", states)
	}
	if err := e.Run(context.Background()); err == nil {
		t.Error("second Run")
	}
}

func TestNewValidates(t *testing.T) {
	t.Parallel()
	db := openWarehouse(t)
	dir := t.TempDir()
	for name, o := range map[string]Options{
		"no runner":   {Compile: compile, Dir: dir},
		"no compiler": {Runner: db, Dir: dir},
		"no dir":      {Runner: db, Compile: compile},
		"workers":     {Runner: db, Compile: compile, Dir: dir, Workers: -1},
		"timeouts":    {Runner: db, Compile: compile, Dir: dir, DefaultTimeout: time.Minute, MaxTimeout: time.Second},
		"cap":         {Runner: db, Compile: compile, Dir: dir, ResultCap: 10},
		"dialect":     {Runner: db, Compile: compile, Dir: dir, Dialect: "oracle"},
		"budget":      {Runner: db, Compile: compile, Dir: dir, Budget: Budget{PerMinute: -1}},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("%s: New succeeded", name)
		}
	}
}
