package query

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// within reports whether a Bernoulli sample of n rows at rate is a
// plausible size: within 6 standard deviations of n*rate.
func within(got int64, n int, rate float64) bool {
	mean := float64(n) * rate
	sd := math.Sqrt(float64(n) * rate * (1 - rate))
	return math.Abs(float64(got)-mean) <= 6*sd+1
}

// TestByteCapSamplesInMemory: alice's 1907 padded events are ~600 KB, over
// the 64 KiB cap; every row was read, so the engine samples them without a
// second run. The result says so, fits the cap, is a subset of the full
// rows in their order, and its size matches the rate.
func TestByteCapSamplesInMemory(t *testing.T) {
	t.Parallel()
	e, _ := setup(t, Options{})
	tk := waitFinal(t, e, "alice", submit(t, e, "alice", "events", "").ID)
	n := fixture["alice"]["called_tool"] + fixture["alice"]["submitted_prompt"] + fixture["alice"]["started_session"]
	if tk.State != StateSucceeded || !tk.Sampled || tk.Truncated || tk.Bytes > e.opts.ResultCap {
		t.Fatalf("ticket %+v", tk)
	}
	if tk.SampleRate <= MinSampleRate || tk.SampleRate >= 0.2 || !within(tk.Rows, n, tk.SampleRate) {
		t.Errorf("rate %g, %d of %d rows", tk.SampleRate, tk.Rows, n)
	}
	if runs := testutil.ToFloat64(e.m.sampleRuns); runs != 0 {
		t.Errorf("%v extra runs for rows already in memory", runs)
	}
	page, rows := allRows(t, e, "alice", tk.ID, MaxPageRows)
	if !page.Sampled || page.SampleRate != tk.SampleRate || int64(len(rows)) != tk.Rows {
		t.Errorf("page %+v, %d rows", page, len(rows))
	}
	prev := ""
	for _, r := range rows {
		id := r[0].(string)
		if !strings.HasPrefix(id, "alice-") || id <= prev && r[1].(string) <= "" {
			t.Fatalf("row %v after %s", r, prev)
		}
		prev = id
	}
	// The same question is sampled with the same seed: the same rows.
	again := waitFinal(t, e, "alice", submit(t, e, "alice", "events", "").ID)
	_, rows2 := allRows(t, e, "alice", again.ID, MaxPageRows)
	if fmt.Sprint(rows2) != fmt.Sprint(rows) {
		t.Error("the same question gave a different sample")
	}
}

// TestByteCapSamplesInWarehouse: 300,000 rows are more than MaxResultRows,
// so the engine counts them and runs the statement again wrapped in
// USING SAMPLE, which the customer check accepts.
func TestByteCapSamplesInWarehouse(t *testing.T) {
	t.Parallel()
	e, _ := setup(t, Options{})
	tk := waitFinal(t, e, "alice", submit(t, e, "alice", "wide", "").ID)
	if tk.State != StateSucceeded || !tk.Sampled || tk.Bytes > e.opts.ResultCap {
		t.Fatalf("ticket %+v", tk)
	}
	if runs := testutil.ToFloat64(e.m.sampleRuns); runs < 1 || runs > MaxSampleRuns {
		t.Errorf("sample runs %v", runs)
	}
	if tk.Truncated {
		// A 300,000-row sample aimed at 90% of the cap misses it only
		// by a very unlikely draw.
		t.Errorf("truncated: %+v", tk)
	}
	if !within(tk.Rows, 300000, tk.SampleRate) {
		t.Errorf("%d rows at rate %g of 300000", tk.Rows, tk.SampleRate)
	}
	_, rows := allRows(t, e, "alice", tk.ID, MaxPageRows)
	seen := map[string]bool{}
	for _, r := range rows {
		i, _ := r[0].(json.Number).Int64()
		g, _ := r[1].(json.Number).Int64()
		if i < 0 || i >= 300000 || g != i%97 || seen[r[0].(json.Number).String()] {
			t.Fatalf("row %v is not a row of the statement (or twice)", r)
		}
		seen[r[0].(json.Number).String()] = true
	}
}

// TestTemplateSampleSQL: a template that samples its own way is asked for
// its statement at the engine's rate.
func TestTemplateSampleSQL(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var rates []float64
	e, _ := setup(t, Options{Compile: func(req Request, now time.Time) (*Compiled, error) {
		c, err := compile(req, now)
		if err != nil {
			return nil, err
		}
		c.SampleSQL = func(rate float64) (string, []any) {
			mu.Lock()
			rates = append(rates, rate)
			mu.Unlock()
			// Sample the events before projecting them, as a template
			// over claude_stream would.
			return `SELECT activity_id, ts, activity, feature_json->>'tool' AS tool, repeat('x', 200) AS pad
FROM claude_stream WHERE hash(activity_id) % 1000000 < ? ORDER BY ts, activity_id`, []any{int64(rate * 1000000)}
		}
		return c, nil
	}})
	tk := waitFinal(t, e, "alice", submit(t, e, "alice", "events", "").ID)
	mu.Lock()
	defer mu.Unlock()
	if tk.State != StateSucceeded || !tk.Sampled || len(rates) == 0 || tk.SampleRate != rates[len(rates)-1] {
		t.Fatalf("ticket %+v, rates %v", tk, rates)
	}
	if tk.Truncated != (tk.Bytes >= e.opts.ResultCap-300) && tk.Truncated {
		t.Errorf("ticket %+v", tk)
	}
}

// TestByteCapTruncates: with a 1 KiB cap, 300,000 rows are over it even
// at the lowest rate (~300 rows of ~13 bytes); the stored sample is cut at
// the cap and says so.
func TestByteCapTruncates(t *testing.T) {
	t.Parallel()
	e, _ := setup(t, Options{ResultCap: 1024})
	tk := waitFinal(t, e, "alice", submit(t, e, "alice", "wide", "").ID)
	if tk.State != StateSucceeded || !tk.Sampled || !tk.Truncated || tk.SampleRate != MinSampleRate ||
		tk.Bytes > e.opts.ResultCap || tk.Bytes < e.opts.ResultCap-40 {
		t.Fatalf("ticket %+v", tk)
	}
	if n := testutil.ToFloat64(e.m.truncated); n != 1 {
		t.Errorf("truncated counter %v", n)
	}
	p, err := e.Result(context.Background(), "alice", tk.ID, 0, 1)
	if err != nil || !p.Truncated || !p.Sampled || p.Total != tk.Rows {
		t.Errorf("page %+v %v", p, err)
	}
}

// TestRowOverCap: a row larger than the cap fails the ticket with the
// reason (no sample could hold it).
func TestRowOverCap(t *testing.T) {
	t.Parallel()
	e, _ := setup(t, Options{Compile: func(req Request, now time.Time) (*Compiled, error) {
		return &Compiled{SQL: `SELECT range AS i, repeat('y', 70000) AS pad FROM range(20)`, Key: []byte("wide rows"), Name: "wide_rows"}, nil
	}})
	tk := waitFinal(t, e, "alice", submit(t, e, "alice", "wide_rows", "").ID)
	if tk.State != StateFailed || !strings.Contains(tk.Error, "one row of the result is 68.4 KiB, over the 64.0 KiB result cap") {
		t.Fatalf("ticket %+v", tk)
	}
}

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func budgetErr(t *testing.T, err error, budget string) *BudgetError {
	t.Helper()
	var be *BudgetError
	if !errors.As(err, &be) || be.Budget != budget {
		t.Fatalf("want a %s budget error, got %v", budget, err)
	}
	return be
}

func TestBudgetPerMinute(t *testing.T) {
	t.Parallel()
	db := openWarehouse(t)
	clk := &clock{t: t0}
	e, b := newEngine(t, db, Options{Now: clk.Now, Budget: Budget{PerMinute: 3, Concurrent: 100, EngineSecondsPerDay: 100}})
	for i := range 3 {
		submit(t, e, "alice", "by_activity", "")
		clk.Add(10 * time.Second)
		_ = i
	}
	_, err := e.Submit(context.Background(), "alice", "p", Request{Template: "by_activity"})
	be := budgetErr(t, err, BudgetPerMinute)
	if be.RetryAfter != 30*time.Second || be.Limit != 3 || be.Used != 3 {
		t.Errorf("budget error %+v", be)
	}
	if msg := err.Error(); !strings.Contains(msg, "at most 3 queries per minute") || !strings.Contains(msg, "30s") {
		t.Errorf("message %q", msg)
	}
	// Another customer has a budget of their own.
	submit(t, e, "bob", "by_activity", "")
	clk.Add(be.RetryAfter)
	submit(t, e, "alice", "by_activity", "")
	if n := testutil.ToFloat64(e.m.budgetRefusals.WithLabelValues(BudgetPerMinute)); n != 1 {
		t.Errorf("refusals %v", n)
	}
	var audited bool
	for _, a := range b.audits() {
		if a.Action == "submit_query" && a.Outcome == "budget" && a.Customer == "alice" {
			audited = true
		}
	}
	if !audited {
		t.Error("refusal not audited")
	}
}

func TestBudgetConcurrent(t *testing.T) {
	t.Parallel()
	db := openWarehouse(t)
	e, _ := newEngine(t, db, Options{Budget: Budget{PerMinute: 100, Concurrent: 2, EngineSecondsPerDay: 100}})
	a := submit(t, e, "alice", "by_activity", "")
	submit(t, e, "alice", "by_activity", "")
	_, err := e.Submit(context.Background(), "alice", "p", Request{Template: "by_activity"})
	be := budgetErr(t, err, BudgetConcurrent)
	if !strings.Contains(err.Error(), "at most 2 unfinished queries") || be.Used != 2 {
		t.Errorf("%v", err)
	}
	if _, err := e.Cancel(context.Background(), "alice", a.ID); err != nil {
		t.Fatal(err)
	}
	submit(t, e, "alice", "by_activity", "")
	// Finished tickets free the budget too.
	run(t, e)
	for _, id := range e.idsOf("alice") {
		waitFinal(t, e, "alice", id)
	}
	submit(t, e, "alice", "by_activity", "")
}

// idsOf lists a customer's ticket ids (test helper).
func (e *Engine) idsOf(customer string) []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var ids []string
	for id, t := range e.tickets {
		if t.customer == customer {
			ids = append(ids, id)
		}
	}
	return ids
}

// TestBudgetEngineSeconds: a query that runs into its timeout spends the
// day's engine seconds; the next submission is refused until midnight UTC.
func TestBudgetEngineSeconds(t *testing.T) {
	t.Parallel()
	db := openWarehouse(t)
	clk := &clock{t: time.Date(2026, 3, 1, 23, 0, 0, 0, time.UTC)}
	e, _ := newEngine(t, db, Options{Now: clk.Now, Store: db, Budget: Budget{PerMinute: 100, Concurrent: 100, EngineSecondsPerDay: 1}})
	run(t, e)
	tk := waitFinal(t, e, "alice", submit(t, e, "alice", "slow", `{"timeout_ms":1100}`).ID)
	if tk.State != StateFailed {
		t.Fatalf("ticket %+v", tk)
	}
	_, err := e.Submit(context.Background(), "alice", "p", Request{Template: "by_activity"})
	be := budgetErr(t, err, BudgetEngineSeconds)
	if be.RetryAfter != time.Hour || be.Used < 1.1 || !strings.Contains(err.Error(), "resets in 1h0m0s") {
		t.Errorf("%+v: %v", be, err)
	}
	// Bob is not affected; alice can ask again tomorrow.
	submit(t, e, "bob", "by_activity", "")
	clk.Add(time.Hour)
	submit(t, e, "alice", "by_activity", "")
}

// TestBudgetEngineSecondsAtStart: tickets queued before the day's engine
// time ran out do not run once it has: the budget is overshot only by the
// ticket that was running, not by everything queued behind it.
func TestBudgetEngineSecondsAtStart(t *testing.T) {
	t.Parallel()
	db := openWarehouse(t)
	clk := &clock{t: time.Date(2026, 3, 1, 23, 0, 0, 0, time.UTC)}
	e, _ := newEngine(t, db, Options{Now: clk.Now, Store: db, Workers: 1,
		Budget: Budget{PerMinute: 100, Concurrent: 100, EngineSecondsPerDay: 1}})
	// Queued while the budget is untouched: the slow one runs first (one
	// worker) and spends it; the other waits behind it.
	slow := submit(t, e, "alice", "slow", `{"timeout_ms":1100}`)
	queued := submit(t, e, "alice", "by_activity", "")
	bob := submit(t, e, "bob", "by_activity", "")
	run(t, e)
	if tk := waitFinal(t, e, "alice", slow.ID); tk.State != StateFailed {
		t.Fatalf("slow ticket %+v", tk)
	}
	tk := waitFinal(t, e, "alice", queued.ID)
	if tk.State != StateFailed || !strings.Contains(tk.Error, "not run: query budget spent: 1 engine seconds per day") {
		t.Fatalf("a ticket queued before the budget ran out ran after it: %+v", tk)
	}
	if tk := waitFinal(t, e, "bob", bob.ID); tk.State != StateSucceeded {
		t.Fatalf("bob's ticket %+v", tk)
	}
	if n := testutil.ToFloat64(e.m.budgetRefusals.WithLabelValues(BudgetEngineSeconds)); n != 1 {
		t.Errorf("engine-seconds refusals counted %v, want 1", n)
	}
}

// TestBudgetEngineSecondsSurviveRestart: today's engine time is counted
// again from the stored tickets.
func TestBudgetEngineSecondsSurviveRestart(t *testing.T) {
	t.Parallel()
	db := openWarehouse(t)
	// A clock that moves with real time, from a fixed morning: the
	// stored start and finish times then span the real run.
	base, realStart := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC), time.Now()
	now := func() time.Time { return base.Add(time.Since(realStart)) }
	opts := Options{Now: now, Store: db, Budget: Budget{PerMinute: 100, Concurrent: 100, EngineSecondsPerDay: 1}}
	e, _ := newEngine(t, db, opts)
	stop := run(t, e)
	waitFinal(t, e, "alice", submit(t, e, "alice", "slow", `{"timeout_ms":1100}`).ID)
	stop()
	opts.Dir = e.opts.Dir
	e2, _ := newEngine(t, db, opts)
	_, err := e2.Submit(context.Background(), "alice", "p", Request{Template: "by_activity"})
	budgetErr(t, err, BudgetEngineSeconds)
}

func TestQueueFull(t *testing.T) {
	t.Parallel()
	db := openWarehouse(t)
	e, _ := newEngine(t, db, Options{QueueLimit: 3})
	submit(t, e, "alice", "by_activity", "")
	submit(t, e, "bob", "by_activity", "")
	submit(t, e, "carol", "by_activity", "")
	_, err := e.Submit(context.Background(), "dave", "p", Request{Template: "by_activity"})
	if !errors.Is(err, ErrBusy) || !strings.Contains(err.Error(), "3 queries are waiting") {
		t.Fatalf("want busy, got %v", err)
	}
	e2, _ := newEngine(t, db, Options{})
	for range MaxQueuedPerCustomer {
		submit(t, e2, "alice", "by_activity", "")
	}
	_, err = e2.Submit(context.Background(), "alice", "p", Request{Template: "by_activity"})
	if !errors.Is(err, ErrBusy) || !strings.Contains(err.Error(), "this person's queries") {
		t.Fatalf("want busy for one customer, got %v", err)
	}
	submit(t, e2, "bob", "by_activity", "")
	if testutil.ToFloat64(e.m.busy.WithLabelValues("total")) != 1 || testutil.ToFloat64(e2.m.busy.WithLabelValues("customer")) != 1 {
		t.Error("busy not counted")
	}
}

// TestSampleStillOverRowBound: when the last sampled run still has more
// rows than MaxResultRows (a template's own sample that does not shrink
// enough, or over 100 million rows at MinSampleRate), the rows beyond the
// bound are missing from the result even though their bytes fit the cap:
// the ticket must say Truncated, not pass the cut rows off as the sample.
func TestSampleStillOverRowBound(t *testing.T) {
	t.Parallel()
	const wide = `SELECT 0 AS i FROM range(150000)` // 4 bytes a row: 600 KB, under the cap
	e, _ := setup(t, Options{ResultCap: 1 << 20, Compile: func(req Request, now time.Time) (*Compiled, error) {
		return &Compiled{SQL: wide, Key: []byte("rows"), Name: "rows",
			SampleSQL: func(rate float64) (string, []any) { return wide, nil }}, nil
	}})
	tk := waitFinal(t, e, "alice", submit(t, e, "alice", "rows", "").ID)
	if tk.State != StateSucceeded || !tk.Sampled || tk.Rows != MaxResultRows {
		t.Fatalf("ticket %+v", tk)
	}
	if !tk.Truncated {
		t.Errorf("the result stops at %d rows of a sample that had more, but is not marked truncated: %+v", MaxResultRows, tk)
	}
}
