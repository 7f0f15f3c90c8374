package query

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/activitybi/activitybi/internal/warehouse"
)

// Run runs the workers, the store writer and the expiry sweeper until ctx
// ends. Then it cancels the running queries (their tickets fail, saying the
// core stopped), fails the queued ones the same way, writes every changed
// ticket to the store (bounded by its own deadline) and returns nil. Submit
// is refused from then on. Run may be called once.
func (e *Engine) Run(ctx context.Context) error {
	e.mu.Lock()
	if e.running {
		e.mu.Unlock()
		return errors.New("query: Run called twice")
	}
	e.running = true
	e.mu.Unlock()

	var wg sync.WaitGroup
	for range e.opts.Workers {
		wg.Go(func() { e.worker(ctx) })
	}
	wg.Go(func() { e.flusher(ctx) })
	wg.Go(func() { e.sweeper(ctx) })
	wg.Wait()

	// Workers have returned: nothing runs. Fail what is still queued.
	e.mu.Lock()
	e.stopped = true
	now := e.opts.Now().UTC()
	for t := e.queue.pop(); t != nil; t = e.queue.pop() {
		e.custs[t.customer].unfinished--
		e.finishLocked(t, now, StateFailed, "the core stopped before the query ran; submit it again")
	}
	e.m.queueDepth.Set(0)
	e.mu.Unlock()

	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeTimeout)
	defer cancel()
	if err := e.flushOnce(fctx); err != nil {
		e.log.Error("query: tickets not saved at shutdown; the next start marks them failed", "err", err)
	}
	return nil
}

// worker runs tickets until ctx ends.
func (e *Engine) worker(ctx context.Context) {
	for {
		e.mu.Lock()
		t := e.queue.pop()
		if t != nil && e.engineSpentLocked(t) {
			// Queued before earlier tickets spent the day's engine
			// time: not run, so the budget is overshot only by the
			// tickets running when it ran out.
			if e.queue.n > 0 {
				e.signal(e.wake)
			}
			e.m.queueDepth.Set(float64(e.queue.n))
			e.mu.Unlock()
			continue
		}
		var runCtx context.Context
		var cancel context.CancelFunc
		if t != nil {
			runCtx, cancel = context.WithTimeout(ctx, t.timeout)
			t.cancel = cancel
			e.setState(t, StateRunning)
			t.t.StartedAt = e.opts.Now().UTC()
			t.t.Progress, t.t.Stage = -1, stageRunning
			t.expected = e.est.expected(t.customer, t.t.QueryHash, t.t.Name)
			e.notifyLocked(t)
			e.m.queueDepth.Set(float64(e.queue.n))
			if e.queue.n > 0 {
				// Pass the wake-up on: Submit's signal may have
				// been taken by this worker for an earlier ticket.
				e.signal(e.wake)
			}
		}
		e.mu.Unlock()
		if t == nil {
			select {
			case <-ctx.Done():
				return
			case <-e.wake:
				continue
			}
		}
		e.execute(ctx, runCtx, t)
		cancel()
		if ctx.Err() != nil {
			return
		}
	}
}

// engineSpentLocked fails t, just taken from the queue, if its customer's
// engine time for today is spent, and says so.
func (e *Engine) engineSpentLocked(t *ticket) bool {
	now := e.opts.Now().UTC()
	cs := e.custs[t.customer]
	be := cs.checkEngine(e.opts.Budget, now)
	if be == nil {
		return false
	}
	cs.unfinished--
	t.c = nil
	e.m.budgetRefusals.WithLabelValues(be.Budget).Inc()
	e.finishLocked(t, now, StateFailed, "not run: "+be.Error()+" (spent by this person's earlier queries while this one waited)")
	return true
}

// outcome is what a run produced.
type outcome struct {
	file      []byte
	rows      int64
	bytes     int64
	sampled   bool
	rate      float64
	truncated bool
	runs      int // warehouse runs
}

// execute runs one ticket and records how it ended.
func (e *Engine) execute(ctx, runCtx context.Context, t *ticket) {
	e.mu.Lock()
	c, customer, id, hash := t.c, t.customer, t.t.ID, t.t.QueryHash
	e.mu.Unlock()

	start := time.Now()
	out, err := e.runQuery(runCtx, t, c, customer, id, hash)
	engine := time.Since(start)
	var ref string // the result's artifact id, when Options.Results keeps it
	if err == nil {
		e.setStage(t, stageWriting)
		// The ticket's expiry as finishLocked will set it (within the
		// write's time): the store keeps the result a little longer.
		expires := e.opts.Now().UTC().Add(e.opts.ResultTTL)
		if ref, err = e.writeResult(ctx, customer, id, out.file, expires); err != nil {
			err = fmt.Errorf("write the result: %w", err)
		}
	}

	now := e.opts.Now().UTC()
	e.mu.Lock()
	cs := e.custs[customer]
	cs.unfinished--
	cs.addEngine(now, engine)
	t.cancel, t.c = nil, nil
	var state State
	var msg string
	switch {
	case t.cancelled:
		state = StateCancelled
	case err == nil:
		state = StateSucceeded
	case errors.Is(runCtx.Err(), context.DeadlineExceeded) && ctx.Err() == nil:
		state = StateFailed
		msg = fmt.Sprintf("timed out after %s (the limit for %s): ask for a shorter time range, fewer groups or a smaller dataset", t.timeout, t.t.Name)
		e.m.timeouts.Inc()
	case ctx.Err() != nil:
		state = StateFailed
		msg = "the core stopped before the query finished; submit it again"
	default:
		state = StateFailed
		var unsafe *warehouse.UnsafeSQLError
		if errors.As(err, &unsafe) {
			msg = "the warehouse refused the compiled query (a bug in activitybi's templates): " + err.Error()
		} else {
			msg = "the query failed: " + err.Error()
		}
	}
	if state == StateSucceeded {
		e.est.observe(customer, hash, t.t.Name, engine)
		t.t.Rows, t.t.Bytes = out.rows, out.bytes
		t.t.Sampled, t.t.SampleRate, t.t.Truncated = out.sampled, out.rate, out.truncated
		if ref != "" {
			t.t.ResultArtifact = ref
		} else {
			t.t.ResultPath = e.resultPath(id)
		}
	}
	e.finishLocked(t, now, state, msg)
	snap := t.snapshot()
	e.mu.Unlock()

	if state == StateCancelled && err == nil {
		// Cancelled after the result was written: it is not kept.
		if ref != "" {
			e.deleteResult(ctx, customer, ref)
		} else {
			_ = removeIfExists(e.resultPath(id))
		}
	}
	e.m.runDuration.WithLabelValues(string(state)).Observe(engine.Seconds())
	detail := msg
	if snap.Sampled {
		detail = fmt.Sprintf("sampled at %s%%", percent(snap.SampleRate))
	}
	if snap.Truncated {
		detail += "; truncated at the byte cap"
	}
	e.audit(AuditEntry{At: now, Principal: snap.Principal, Customer: customer, Action: "run_query",
		Target: id + " " + hash, Rows: snap.Rows, Bytes: snap.Bytes, Duration: engine, Outcome: string(state), Detail: detail})
	e.log.Debug("query: ticket finished", "ticket", id, "state", state, "engine", engine, "rows", snap.Rows, "err", err)
}

// finishLocked moves t to a final state at now. mu held.
func (e *Engine) finishLocked(t *ticket, now time.Time, s State, msg string) {
	e.setState(t, s)
	t.t.Error = msg
	t.t.FinishedAt, t.t.ExpiresAt = now, now.Add(e.opts.ResultTTL)
	switch s {
	case StateSucceeded:
		t.t.Progress, t.t.Stage = 1, stageFinished
	case StateCancelled:
		t.t.Progress, t.t.Stage = -1, "cancelled while running"
	default:
		t.t.Progress, t.t.Stage = -1, ""
	}
	t.cancel, t.c = nil, nil
	e.changedLocked(t)
}

// setStage updates what a running ticket is doing.
func (e *Engine) setStage(t *ticket, stage string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if t.t.State == StateRunning && !t.cancelled {
		t.t.Stage = stage
		e.notifyLocked(t)
	}
}

// runQuery runs the statement and, when its result is over the cap,
// computes it on a sample (package doc, "Result cap and sampling").
func (e *Engine) runQuery(ctx context.Context, t *ticket, c *Compiled, customer, id, hash string) (*outcome, error) {
	limit := e.opts.ResultCap
	out := &outcome{runs: 1}
	tbl, err := e.opts.Runner.CustomerQuery(ctx, customer, c.SQL, c.Args, MaxResultRows)
	if err != nil {
		return nil, err
	}
	cols := tbl.Columns
	enc, err := encodeRows(tbl.Rows, limit)
	if err != nil {
		return nil, err
	}
	full := enc.size
	if !tbl.Truncated && enc.all {
		return e.finishOutcome(out, id, hash, cols, enc, false)
	}
	if enc.widest > limit {
		// No sample can hold a row larger than the cap.
		return nil, fmt.Errorf("one row of the result is %s, over the %s result cap, so no sample can hold it: the question returns values too large to keep (ask for fewer or shorter columns)",
			byteSize(enc.widest), byteSize(limit))
	}

	// Over the cap, or more rows than MaxResultRows.
	e.m.sampled.Inc()
	out.sampled = true
	seed := sampleSeed(hash)
	what := fmt.Sprintf("%s, over the %s cap", byteSize(full), byteSize(limit))
	rate := nextRate(1, full, limit)
	if c.SampleSQL == nil && !tbl.Truncated {
		// Every row is in memory: a Bernoulli sample of them is what
		// the wrapped statement would return, without running it again.
		for {
			e.setStage(t, fmt.Sprintf("sampling %s%% of the %d rows (the result was %s)", percent(rate), len(tbl.Rows), what))
			enc, err = encodeRows(bernoulli(tbl.Rows, rate, seed), limit)
			if err != nil {
				return nil, err
			}
			if enc.all || rate <= MinSampleRate {
				break
			}
			rate = nextRate(rate, enc.size, limit)
		}
		out.rate = rate
		return e.finishOutcome(out, id, hash, cols, enc, false)
	}
	if tbl.Truncated {
		// Only MaxResultRows rows were read: count them all, so that the
		// sample is aimed right the first time.
		e.setStage(t, fmt.Sprintf("counting the rows (more than %d)", MaxResultRows))
		n, err := e.countRows(ctx, customer, c)
		out.runs++
		if err != nil {
			return nil, fmt.Errorf("counting the rows of a result over %d rows: %w", MaxResultRows, err)
		}
		what = fmt.Sprintf("%d rows", n)
		if n > 0 {
			est := int64(float64(full) / float64(len(tbl.Rows)) * float64(n))
			rate = min(nextRate(1, max(est, full), limit), quantizeRate(sampleHeadroom*MaxResultRows/float64(n)))
		}
	}
	tbl = nil // the full rows are not needed any more
	// rowsCut: the last sampled run had more rows than MaxResultRows, so
	// only the first of them were read. The loop ends so only at
	// MinSampleRate or after MaxSampleRuns; the result is then cut.
	rowsCut := false
	for range MaxSampleRuns {
		e.setStage(t, fmt.Sprintf("running again on a %s%% sample (the result was %s)", percent(rate), what))
		q, args := c.SQL, c.Args
		if c.SampleSQL != nil {
			q, args = c.SampleSQL(rate)
		} else if q, err = SampleSQL(e.opts.Dialect, c.SQL, rate, seed); err != nil {
			return nil, err
		}
		e.m.sampleRuns.Inc()
		out.runs++
		st, err := e.opts.Runner.CustomerQuery(ctx, customer, q, args, MaxResultRows)
		if err != nil {
			return nil, fmt.Errorf("running on a %s%% sample: %w", percent(rate), err)
		}
		cols, rowsCut = st.Columns, st.Truncated
		if enc, err = encodeRows(st.Rows, limit); err != nil {
			return nil, err
		}
		out.rate = rate
		if (!st.Truncated && enc.all) || rate <= MinSampleRate {
			break
		}
		what = fmt.Sprintf("%s at a %s%% sample", byteSize(enc.size), percent(rate))
		rate = nextRate(rate, enc.size, limit)
	}
	return e.finishOutcome(out, id, hash, cols, enc, rowsCut)
}

// countRows counts the rows of the compiled statement.
func (e *Engine) countRows(ctx context.Context, customer string, c *Compiled) (int64, error) {
	q := fmt.Sprintf("SELECT count(*) AS n FROM (\n%s\n) AS counted", strings.TrimRight(c.SQL, " \t\r\n;"))
	tbl, err := e.opts.Runner.CustomerQuery(ctx, customer, q, c.Args, 1)
	if err != nil {
		return 0, err
	}
	if len(tbl.Rows) != 1 || len(tbl.Rows[0]) != 1 {
		return 0, errors.New("the count returned no row")
	}
	n, ok := tbl.Rows[0][0].(int64)
	if !ok {
		return 0, fmt.Errorf("the count returned %T", tbl.Rows[0][0])
	}
	return n, nil
}

// finishOutcome builds the result file from what fit the cap. rowsCut says
// the rows encoded are the first MaxResultRows of a longer result, so the
// result is cut even if they all fit.
func (e *Engine) finishOutcome(out *outcome, id, hash string, cols []warehouse.Column, enc encoded, rowsCut bool) (*outcome, error) {
	out.rows, out.bytes = enc.rows, int64(len(enc.buf))
	out.truncated = !enc.all || rowsCut
	if out.truncated {
		e.m.truncated.Inc()
	}
	file, err := resultFile(resultHeader{Format: resultFormat, Version: resultVersion, Ticket: id, QueryHash: hash,
		Columns: toResultColumns(cols), Rows: out.rows, Bytes: out.bytes, Sampled: out.sampled,
		SampleRate: out.rate, Truncated: out.truncated}, enc.buf)
	if err != nil {
		return nil, err
	}
	out.file = file
	return out, nil
}

// byteSize formats n bytes for a person.
func byteSize(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}

// flusher writes changed tickets to the store every flushInterval.
func (e *Engine) flusher(ctx context.Context) {
	if e.opts.Store == nil {
		return
	}
	tick := time.NewTicker(flushInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-e.flush:
		}
		sctx, cancel := context.WithTimeout(ctx, storeTimeout)
		if err := e.flushOnce(sctx); err != nil && ctx.Err() == nil {
			e.log.Warn("query: save tickets (retried)", "err", err)
		}
		cancel()
	}
}

// flushOnce writes the changed tickets; on failure they stay changed.
func (e *Engine) flushOnce(ctx context.Context) error {
	if e.opts.Store == nil {
		return nil
	}
	e.mu.Lock()
	if len(e.dirty) == 0 {
		e.mu.Unlock()
		return nil
	}
	ts := make([]*ticket, 0, len(e.dirty))
	rows := make([]warehouse.TicketRow, 0, len(e.dirty))
	for t := range e.dirty {
		ts = append(ts, t)
		rows = append(rows, t.row())
	}
	clear(e.dirty)
	e.mu.Unlock()
	if err := e.opts.Store.SaveTickets(ctx, rows); err != nil {
		e.m.storeErrors.WithLabelValues("save").Inc()
		e.mu.Lock()
		for _, t := range ts {
			e.dirty[t] = struct{}{}
		}
		e.mu.Unlock()
		return err
	}
	return nil
}

// row is t as the store keeps it. mu held.
func (t *ticket) row() warehouse.TicketRow {
	return warehouse.TicketRow{
		TicketID: t.t.ID, CustomerID: t.customer, QueryHash: t.t.QueryHash, Template: t.t.Name,
		Request: t.request, State: string(t.t.State), Progress: t.t.Progress, Stage: t.t.Stage, Error: t.t.Error,
		Principal: t.t.Principal, CreatedAt: t.t.CreatedAt, StartedAt: t.t.StartedAt, FinishedAt: t.t.FinishedAt,
		ExpiresAt: t.t.ExpiresAt, Rows: t.t.Rows, Bytes: t.t.Bytes, Sampled: t.t.Sampled, SampleRate: t.t.SampleRate,
		Truncated: t.t.Truncated, ResultPath: storedResultRef(&t.t), Insights: append([]string(nil), t.t.Insights...),
	}
}

// sweeper expires results every sweepInterval and, about hourly, deletes
// tickets older than TicketRetention from the store.
func (e *Engine) sweeper(ctx context.Context) {
	tick := time.NewTicker(sweepInterval)
	defer tick.Stop()
	var lastDelete time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		now := e.opts.Now().UTC()
		for _, d := range e.sweep(now) {
			e.deleteResult(ctx, d.customer, d.ref)
		}
		if e.opts.Store != nil && now.Sub(lastDelete) >= time.Hour {
			lastDelete = now
			sctx, cancel := context.WithTimeout(ctx, storeTimeout)
			n, err := e.opts.Store.DeleteTickets(sctx, now.Add(-TicketRetention))
			cancel()
			if err != nil {
				e.m.storeErrors.WithLabelValues("delete").Inc()
				e.log.Warn("query: delete old tickets", "err", err)
			} else if n > 0 {
				e.log.Info("query: old tickets deleted", "tickets", n)
			}
		}
	}
}
