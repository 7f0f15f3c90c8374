package query

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/activitybi/activitybi/internal/telemetry"
	"github.com/activitybi/activitybi/internal/warehouse"
)

// Defaults and limits of the engine (see the package doc for why).
const (
	// DefaultWorkers is how many tickets run at once. DuckDB parallelizes
	// inside a query; more workers than its threads only interleave.
	DefaultWorkers = 4
	// DefaultQueueLimit is how many tickets may wait, all customers.
	DefaultQueueLimit = 1000
	// MaxQueuedPerCustomer is how many of one customer's tickets may wait,
	// whatever Budget.Concurrent says.
	MaxQueuedPerCustomer = 200
	// DefaultTimeout bounds a ticket whose template sets no timeout.
	DefaultTimeout = 30 * time.Second
	// DefaultMaxTimeout caps every template's timeout.
	DefaultMaxTimeout = 5 * time.Minute
	// DefaultResultCap is the most bytes of rows a result keeps (1 MiB);
	// over it the question is answered on a sample.
	DefaultResultCap = 1 << 20
	// DefaultResultTTL is how long a finished ticket's result is kept.
	DefaultResultTTL = 24 * time.Hour
	// MaxResultRows bounds the rows read into memory from one run; a
	// result with more rows is treated as over the cap, and sampled. At
	// the default cap only rows under ~10 bytes of JSON (one small
	// number) could fit 1 MiB beyond it. Measured: 100,000 rows of 2 to 5
	// narrow columns hold 6-22 MiB of Go heap, so four workers stay well
	// inside the core's memory target (rows of long strings hold more:
	// the bound is on rows, as CustomerQuery's is).
	MaxResultRows = 100_000
	// MaxRequestBytes bounds a request's dataset spec and params.
	MaxRequestBytes = 64 << 10
	// MaxWait is the longest one Wait blocks (under Claude Desktop's ~60 s
	// tool timeout).
	MaxWait = 50 * time.Second
	// MaxInsightsPerTicket bounds the insight ids a ticket lists.
	MaxInsightsPerTicket = 100
	// TicketRetention is how long the store keeps a ticket (for
	// provenance: HashKnown) after it was created; its result is gone
	// after ResultTTL.
	TicketRetention = 30 * 24 * time.Hour
	// forgetAfter is how long an expired ticket stays in memory (its
	// status says expired) before only the store knows it.
	forgetAfter = 24 * time.Hour

	// cancelWait is how long Cancel waits for a running query to stop
	// before returning the ticket as it is ("cancelling").
	cancelWait = 2 * time.Second
	// flushInterval is how often changed tickets are written to the
	// store (write-behind: Submit never waits for it). One SaveTickets
	// costs DuckDB 17-30 ms of CPU whatever its size (BenchmarkSaveTickets),
	// so writing once a second bounds it at ~3% of a core; a crash forgets
	// at most the last second's tickets.
	flushInterval = time.Second
	// sweepInterval is how often expired results are removed.
	sweepInterval = 30 * time.Second
	// storeTimeout bounds one store call; storeLoadTimeout the load in New.
	storeTimeout     = 10 * time.Second
	storeLoadTimeout = 30 * time.Second
	// maxIDInMessage bounds how much of a caller's ticket id an error
	// message repeats.
	maxIDInMessage = 64
)

// ticketIDPrefix starts every ticket id; the rest is a ULID.
const ticketIDPrefix = "qt_"

var ticketIDPattern = regexp.MustCompile(`^qt_[0-9A-HJKMNP-TV-Z]{26}$`)

// Stage messages.
const (
	stageQueued   = "queued"
	stageRunning  = "running the query"
	stageWriting  = "writing the result"
	stageFinished = "finished"
	stageCancel   = "cancelling"
)

// Options configure New. Zero fields take their defaults.
type Options struct {
	// Runner runs the statements. Required.
	Runner Runner
	// Compile turns requests into SQL. Required.
	Compile Compiler
	// Dir holds the result files; created with mode 0700. Required.
	// Nothing else may write there: files named like results that no
	// ticket owns are removed. With Results set, only results written
	// before it was set are read from here.
	Dir string
	// Results keeps result files instead of Dir: the core's artifact
	// store. nil: files in Dir.
	Results ResultStore
	// Workers is how many tickets run at once. Default DefaultWorkers.
	Workers int
	// QueueLimit is how many tickets may wait, all customers together.
	// Default DefaultQueueLimit.
	QueueLimit int
	// DefaultTimeout bounds a ticket whose template sets none. Default
	// DefaultTimeout (30 s).
	DefaultTimeout time.Duration
	// MaxTimeout caps every template's timeout. Default
	// DefaultMaxTimeout; at least DefaultTimeout. (The warehouse driver
	// has its own limit too; keep it at least this.)
	MaxTimeout time.Duration
	// ResultCap is the most bytes of row JSON a result keeps. Default
	// DefaultResultCap (1 MiB).
	ResultCap int64
	// ResultTTL is how long a finished ticket's result is kept. Default
	// DefaultResultTTL (24 h).
	ResultTTL time.Duration
	// Budget is every customer's budget.
	Budget Budget
	// Store keeps tickets across restarts. nil: tickets live in memory
	// only, and HashKnown knows only them.
	Store warehouse.TicketStore
	// Audit is called for every submission (accepted or refused), finished
	// ticket, result page and cancellation. It runs on the caller's path
	// (Submit's too), so it must not block. nil: none.
	Audit func(AuditEntry)
	// Dialect is the SQL the engine writes around a statement to sample
	// it: DialectDuckDB (default) or DialectSnowflake.
	Dialect string
	// Registry receives the activitybi_query_* metrics. nil: none.
	Registry prometheus.Registerer
	// Logger receives the engine's logs. nil: discard.
	Logger *slog.Logger
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

func (o *Options) setDefaults() error {
	switch {
	case o.Runner == nil:
		return errors.New("query: Options.Runner is required")
	case o.Compile == nil:
		return errors.New("query: Options.Compile is required")
	case o.Dir == "":
		return errors.New("query: Options.Dir is required")
	}
	def := func(v *int, d int, name string) error {
		if *v == 0 {
			*v = d
		}
		if *v < 0 {
			return fmt.Errorf("query: %s must be positive, got %d", name, *v)
		}
		return nil
	}
	for _, f := range []struct {
		v    *int
		d    int
		name string
	}{
		{&o.Workers, DefaultWorkers, "Workers"},
		{&o.QueueLimit, DefaultQueueLimit, "QueueLimit"},
		{&o.Budget.PerMinute, DefaultPerMinute, "Budget.PerMinute"},
		{&o.Budget.Concurrent, DefaultConcurrent, "Budget.Concurrent"},
		{&o.Budget.EngineSecondsPerDay, DefaultEngineSecondsPerDay, "Budget.EngineSecondsPerDay"},
	} {
		if err := def(f.v, f.d, f.name); err != nil {
			return err
		}
	}
	if o.DefaultTimeout == 0 {
		o.DefaultTimeout = DefaultTimeout
	}
	if o.MaxTimeout == 0 {
		o.MaxTimeout = max(DefaultMaxTimeout, o.DefaultTimeout)
	}
	if o.ResultCap == 0 {
		o.ResultCap = DefaultResultCap
	}
	if o.ResultTTL == 0 {
		o.ResultTTL = DefaultResultTTL
	}
	switch {
	case o.DefaultTimeout < 0 || o.MaxTimeout < o.DefaultTimeout:
		return fmt.Errorf("query: want 0 < DefaultTimeout (%s) <= MaxTimeout (%s)", o.DefaultTimeout, o.MaxTimeout)
	case o.ResultCap < 1024:
		return fmt.Errorf("query: ResultCap must be at least 1024 bytes, got %d", o.ResultCap)
	case o.ResultTTL < 0:
		return fmt.Errorf("query: ResultTTL must be positive, got %s", o.ResultTTL)
	}
	if _, err := SampleSQL(o.Dialect, "SELECT 1", 0.5, 1); err != nil {
		return fmt.Errorf("query: %w", err)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return nil
}

// Engine runs query tickets. Its methods are safe for concurrent use.
//
// Lock order: mu only; nothing is called with mu held that could block
// (no store, runner, file or audit call).
type Engine struct {
	opts Options
	log  *slog.Logger
	m    *metrics

	mu      sync.Mutex
	tickets map[string]*ticket
	byHash  map[hashKey][]*ticket
	custs   map[string]*custState
	queue   fairQueue
	dirty   map[*ticket]struct{}
	// pendingDel are results in Options.Results of tickets expired by a
	// lookup, deleted by the next sweep.
	pendingDel []resultToDelete
	// est remembers earlier run times, for estimated progress.
	est     estimates
	running bool // Run has started
	stopped bool // Run has returned

	wake  chan struct{} // a worker should look at the queue
	flush chan struct{} // the flusher should write now
}

type hashKey struct{ customer, hash string }

// ticket is the engine's record of one ticket. Fields guarded by mu.
type ticket struct {
	t        Ticket
	customer string
	request  []byte // the request as JSON, for the store
	c        *Compiled
	timeout  time.Duration
	cancel   context.CancelFunc // set while it runs
	// cancelled: Cancel asked a running ticket to stop.
	cancelled bool
	// changed is closed (and replaced) at every change, waking Waits.
	changed chan struct{}
	// expected is how long earlier runs of the question took (0: none),
	// set when it starts running, for its estimated progress.
	expected time.Duration
}

// New returns an engine. It reads the store's unexpired tickets, so that
// Status answers for an earlier run's tickets at once; tickets that were
// queued or running when that run ended are marked failed. Run starts it.
func New(opts Options) (*Engine, error) {
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	m, err := newMetrics(opts.Registry)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(opts.Dir, dirMode); err != nil {
		return nil, fmt.Errorf("query: create result directory: %w", err)
	}
	if err := os.Chmod(opts.Dir, dirMode); err != nil {
		return nil, fmt.Errorf("query: result directory: %w", err)
	}
	e := &Engine{
		opts:    opts,
		log:     telemetry.OrDiscard(opts.Logger),
		m:       m,
		tickets: make(map[string]*ticket),
		byHash:  make(map[hashKey][]*ticket),
		custs:   make(map[string]*custState),
		dirty:   make(map[*ticket]struct{}),
		wake:    make(chan struct{}, 1),
		flush:   make(chan struct{}, 1),
	}
	if err := e.load(); err != nil {
		return nil, err
	}
	e.removeOrphans()
	return e, nil
}

// load reads the store's tickets into memory.
func (e *Engine) load() error {
	if e.opts.Store == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), storeLoadTimeout)
	defer cancel()
	now := e.opts.Now().UTC()
	rows, err := e.opts.Store.LoadTickets(ctx, now)
	if err != nil {
		e.m.storeErrors.WithLabelValues("load").Inc()
		return fmt.Errorf("query: load tickets: %w", err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	crashed := 0
	for _, r := range rows {
		if !ticketIDPattern.MatchString(r.TicketID) || r.CustomerID == "" {
			e.log.Warn("query: skipping a stored ticket with a malformed id", "ticket", clip(r.TicketID))
			continue
		}
		t := &ticket{customer: r.CustomerID, request: r.Request, changed: make(chan struct{}), t: Ticket{
			ID: r.TicketID, QueryHash: r.QueryHash, Name: r.Template, State: State(r.State), Progress: r.Progress,
			Stage: r.Stage, Error: r.Error, CreatedAt: r.CreatedAt, StartedAt: r.StartedAt, FinishedAt: r.FinishedAt,
			ExpiresAt: r.ExpiresAt, Rows: r.Rows, Bytes: r.Bytes, Sampled: r.Sampled, SampleRate: r.SampleRate,
			Truncated: r.Truncated, Insights: r.Insights, Principal: r.Principal,
		}}
		if t.t.State == StateSucceeded {
			if ref := parseResultRef(r.ResultPath); ref != "" {
				t.t.ResultArtifact = ref
			} else {
				t.t.ResultPath = e.resultPath(t.t.ID) // never a path read back from the store
			}
		}
		c := e.cust(t.customer)
		switch {
		case !t.t.State.Final():
			// The run that held it ended without finishing it.
			crashed++
			t.t.State, t.t.Progress, t.t.Stage = StateFailed, -1, ""
			t.t.Error = "the core restarted before the query finished; submit it again"
			t.t.FinishedAt, t.t.ExpiresAt = now, now.Add(e.opts.ResultTTL)
			e.dirty[t] = struct{}{}
			e.m.finished.WithLabelValues(string(StateFailed)).Inc()
		case !t.t.StartedAt.IsZero() && !t.t.FinishedAt.IsZero() && utcDay(t.t.FinishedAt).Equal(utcDay(now)):
			// Today's engine time counts against today's budget.
			c.addEngine(now, t.t.FinishedAt.Sub(t.t.StartedAt))
		}
		if t.t.State == StateSucceeded && !t.t.StartedAt.IsZero() && t.t.FinishedAt.After(t.t.StartedAt) {
			// Earlier runs' times survive a restart, for estimated progress.
			e.est.observe(t.customer, t.t.QueryHash, t.t.Name, t.t.FinishedAt.Sub(t.t.StartedAt))
		}
		e.tickets[t.t.ID] = t
		k := hashKey{t.customer, t.t.QueryHash}
		e.byHash[k] = append(e.byHash[k], t)
		e.m.tickets.WithLabelValues(string(t.t.State)).Inc()
	}
	if len(rows) > 0 {
		e.log.Info("query: tickets loaded", "tickets", len(e.tickets), "failed_by_restart", crashed)
	}
	return nil
}

// removeOrphans deletes result files and temporary files in Dir that no
// succeeded ticket owns (a crash between writing a result and recording
// it, or a ticket the store no longer has).
func (e *Engine) removeOrphans() {
	ents, err := os.ReadDir(e.opts.Dir)
	if err != nil {
		e.log.Warn("query: list result directory", "err", err)
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, de := range ents {
		name := de.Name()
		isTmp := strings.HasPrefix(name, "."+ticketIDPrefix) && strings.Contains(name, ".tmp-")
		id, isResult := strings.CutSuffix(name, resultExt)
		if isResult {
			if t := e.tickets[id]; t != nil && t.t.State == StateSucceeded {
				continue
			}
			isResult = ticketIDPattern.MatchString(id)
		}
		if isTmp || isResult {
			if err := os.Remove(filepath.Join(e.opts.Dir, name)); err != nil {
				e.log.Warn("query: remove orphaned result", "file", name, "err", err)
			}
		}
	}
}

func (e *Engine) resultPath(id string) string {
	return filepath.Join(e.opts.Dir, id+resultExt)
}

// cust returns the customer's state, creating it. mu held.
func (e *Engine) cust(name string) *custState {
	c := e.custs[name]
	if c == nil {
		c = &custState{name: name}
		e.custs[name] = c
	}
	return c
}

// changedLocked records a change of t that the store must keep: wakes its
// waiters and schedules a store write. mu held.
func (e *Engine) changedLocked(t *ticket) {
	e.notifyLocked(t)
	e.dirty[t] = struct{}{}
}

// notifyLocked wakes t's waiters for a change the store need not keep: a
// ticket's start and its stages. After a crash a ticket stored as queued
// fails just as a running one would, and store writes cost the warehouse
// CPU (see flushInterval), so only creation, the final state, expiry and
// insights are written. mu held.
func (e *Engine) notifyLocked(t *ticket) {
	close(t.changed)
	t.changed = make(chan struct{})
}

// setState moves t to s, keeping the per-state gauge right. mu held.
func (e *Engine) setState(t *ticket, s State) {
	e.m.tickets.WithLabelValues(string(t.t.State)).Dec()
	e.m.tickets.WithLabelValues(string(s)).Inc()
	t.t.State = s
	if s.Final() {
		e.m.finished.WithLabelValues(string(s)).Inc()
	}
}

// snapshot copies t for a caller. mu held.
func (t *ticket) snapshot() *Ticket {
	s := t.t
	s.Insights = append([]string(nil), t.t.Insights...)
	return &s
}

// auditMiss records a result read or a cancel of a ticket the customer
// does not have: a mistyped id, an old one, or another customer's (which
// is not told apart, to the caller or here). A security admin sees such
// probes in the audit log like the artifact reads that find nothing.
func (e *Engine) auditMiss(ctx context.Context, customer, action, id string, err error) {
	e.audit(AuditEntry{Principal: principalOf(ctx, ""), Customer: customer, Action: action,
		Target: id, Outcome: "not_found", Detail: err.Error()})
}

func (e *Engine) audit(a AuditEntry) {
	if e.opts.Audit != nil {
		if a.At.IsZero() {
			a.At = e.opts.Now().UTC()
		}
		e.opts.Audit(a)
	}
}

type principalKey struct{}

// WithPrincipal tells the engine who makes a call, for the audit entries of
// Result and Cancel (which take no principal); without it the ticket's
// submitter is recorded.
func WithPrincipal(ctx context.Context, principal string) context.Context {
	return context.WithValue(ctx, principalKey{}, principal)
}

func principalOf(ctx context.Context, fallback string) string {
	if p, ok := ctx.Value(principalKey{}).(string); ok && p != "" {
		return p
	}
	return fallback
}

// clip shortens a caller's string for a message or a log, at a character
// boundary.
func clip(s string) string {
	if len(s) <= maxIDInMessage {
		return s
	}
	cut := maxIDInMessage
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// Submit compiles req, checks the customer's budget and the queues, and
// returns the queued ticket at once; the query runs on a worker. A budget
// error is a *BudgetError; a full queue wraps ErrBusy; a bad request
// wraps ErrInvalidRequest.
func (e *Engine) Submit(ctx context.Context, customer, principal string, req Request) (*Ticket, error) {
	now := e.opts.Now().UTC()
	target := req.Template
	if target == "" && req.Dataset != nil {
		target = "dataset"
	}
	refuse := func(outcome string, err error) (*Ticket, error) {
		e.m.submits.WithLabelValues(outcome).Inc()
		e.audit(AuditEntry{At: now, Principal: principal, Customer: customer, Action: "submit_query",
			Target: clip(target), Outcome: outcome, Detail: err.Error()})
		return nil, err
	}
	if customer == "" {
		return refuse("error", errors.New("query: submit without a customer"))
	}
	c, err := e.compile(req, now)
	if err != nil {
		if errors.Is(err, ErrInvalidRequest) {
			return refuse("invalid", err)
		}
		return refuse("error", err)
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = e.opts.DefaultTimeout
	}
	timeout = min(timeout, e.opts.MaxTimeout)
	reqJSON, err := json.Marshal(req)
	if err != nil {
		return refuse("invalid", fmt.Errorf("%w: %v", ErrInvalidRequest, err))
	}
	t := &ticket{customer: customer, request: reqJSON, c: c, timeout: timeout, changed: make(chan struct{}), t: Ticket{
		ID: ticketIDPrefix + ulid.Make().String(), QueryHash: QueryHash(customer, c.Key), Name: c.Name,
		State: StateQueued, Progress: 0, Stage: stageQueued, CreatedAt: now, ExpiresAt: now.Add(timeout + e.opts.ResultTTL),
		Principal: principal,
	}}
	target = c.Name

	e.mu.Lock()
	if e.stopped {
		e.mu.Unlock()
		return refuse("stopped", fmt.Errorf("%w: the core is shutting down; submit the query again once it is back", ErrStopped))
	}
	cs := e.cust(customer)
	if be := cs.check(e.opts.Budget, now); be != nil {
		e.mu.Unlock()
		e.m.budgetRefusals.WithLabelValues(be.Budget).Inc()
		return refuse("budget", be)
	}
	if len(cs.queue) >= MaxQueuedPerCustomer {
		e.mu.Unlock()
		e.m.busy.WithLabelValues("customer").Inc()
		return refuse("busy", fmt.Errorf("%w: %d of this person's queries are already waiting (the most one person may queue); retry in a few seconds", ErrBusy, MaxQueuedPerCustomer))
	}
	if e.queue.n >= e.opts.QueueLimit {
		e.mu.Unlock()
		e.m.busy.WithLabelValues("total").Inc()
		return refuse("busy", fmt.Errorf("%w: %d queries are waiting (the engine's queue limit); retry in a few seconds", ErrBusy, e.opts.QueueLimit))
	}
	cs.recent = append(cs.recent, now)
	cs.unfinished++
	e.tickets[t.t.ID] = t
	k := hashKey{customer, t.t.QueryHash}
	e.byHash[k] = append(e.byHash[k], t)
	e.queue.push(cs, t)
	e.m.tickets.WithLabelValues(string(StateQueued)).Inc()
	e.m.queueDepth.Set(float64(e.queue.n))
	e.dirty[t] = struct{}{}
	snap := t.snapshot()
	e.mu.Unlock()

	e.signal(e.wake)
	e.m.submits.WithLabelValues("ok").Inc()
	e.audit(AuditEntry{At: now, Principal: principal, Customer: customer, Action: "submit_query",
		Target: clip(target) + " " + snap.ID + " " + snap.QueryHash, Outcome: "ok"})
	return snap, nil
}

// signal wakes the goroutine behind ch without blocking.
func (e *Engine) signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// compile validates the request's shape and runs the compiler, turning a
// panic into an error.
func (e *Engine) compile(req Request, now time.Time) (c *Compiled, err error) {
	hasTemplate, hasDataset := req.Template != "", len(req.Dataset) > 0 && string(req.Dataset) != "null"
	switch {
	case !hasTemplate && !hasDataset:
		return nil, fmt.Errorf("%w: give a template name or a dataset spec", ErrInvalidRequest)
	case hasTemplate && hasDataset:
		return nil, fmt.Errorf("%w: give a template name or a dataset spec, not both", ErrInvalidRequest)
	case len(req.Dataset)+len(req.Params)+len(req.Template) > MaxRequestBytes:
		return nil, fmt.Errorf("%w: the request is %d bytes; at most %d bytes of template, params and dataset are accepted",
			ErrInvalidRequest, len(req.Dataset)+len(req.Params)+len(req.Template), MaxRequestBytes)
	}
	defer func() {
		if r := recover(); r != nil {
			e.log.Error("query: compiler panicked", "panic", r)
			c, err = nil, fmt.Errorf("query: the compiler failed on this request (%v); this is a bug in activitybi", r)
		}
	}()
	c, err = e.opts.Compile(req, now)
	if err != nil {
		return nil, err
	}
	switch {
	case c == nil || strings.TrimSpace(c.SQL) == "":
		return nil, errors.New("query: the compiler returned no SQL; this is a bug in activitybi")
	case len(c.Key) == 0:
		return nil, errors.New("query: the compiler returned no key for the query hash; this is a bug in activitybi")
	}
	if c.Name == "" {
		c.Name = req.Template
		if c.Name == "" {
			c.Name = "dataset"
		}
	}
	return c, nil
}

// lookup finds customer's ticket id, expiring it when its time has come.
// Another customer's ticket is not found, with the same error. mu held.
func (e *Engine) lookup(customer, id string) (*ticket, error) {
	t := e.tickets[id]
	if t == nil || t.customer != customer {
		return nil, fmt.Errorf("%w: no query ticket %q (a ticket is kept for %s after it finishes)", ErrNotFound, clip(id), e.opts.ResultTTL)
	}
	if t.t.State.Final() && t.t.State != StateExpired && !e.opts.Now().Before(t.t.ExpiresAt) {
		if d := e.expireLocked(t); d != nil {
			// The next sweep deletes it (outside mu).
			e.pendingDel = append(e.pendingDel, *d)
		}
	}
	return t, nil
}

// Status returns the customer's ticket.
func (e *Engine) Status(ctx context.Context, customer, id string) (*Ticket, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	t, err := e.lookup(customer, id)
	if err != nil {
		return nil, err
	}
	return e.view(t), nil
}

// Wait returns the ticket once it is in a final state, or as it is after
// max (at most MaxWait). progress, if set, is called with the ticket as it
// is when Wait starts and after every change until then; changes closer
// together than Wait wakes are coalesced (the latest is reported), which is
// what a progress notification wants; while a ticket runs with an
// estimated progress, progress is also called every progressStep.
func (e *Engine) Wait(ctx context.Context, customer, id string, maxWait time.Duration, progress func(*Ticket)) (*Ticket, error) {
	maxWait = min(max(maxWait, 0), MaxWait)
	timer := time.NewTimer(maxWait)
	defer timer.Stop()
	var step <-chan time.Time
	if progress != nil {
		tick := time.NewTicker(progressStep)
		defer tick.Stop()
		step = tick.C
	}
	for {
		e.mu.Lock()
		t, err := e.lookup(customer, id)
		if err != nil {
			e.mu.Unlock()
			return nil, err
		}
		snap, changed := e.view(t), t.changed
		e.mu.Unlock()
		if snap.State.Final() {
			return snap, nil
		}
		if progress != nil {
			progress(snap)
		}
		select {
		case <-changed:
		case <-step:
		case <-timer.C:
			return snap, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Cancel stops the customer's ticket: a queued one at once, a running one
// as soon as the warehouse interrupts it (Cancel waits up to 2 s for that,
// then returns it still running with the stage "cancelling"). A finished
// ticket is returned as it is.
func (e *Engine) Cancel(ctx context.Context, customer, id string) (*Ticket, error) {
	e.mu.Lock()
	t, err := e.lookup(customer, id)
	if err != nil {
		e.mu.Unlock()
		e.auditMiss(ctx, customer, "cancel_query", id, err)
		return nil, err
	}
	prev := t.t.State
	switch prev {
	case StateQueued:
		now := e.opts.Now().UTC()
		e.queue.remove(e.custs[customer], t)
		e.m.queueDepth.Set(float64(e.queue.n))
		e.custs[customer].unfinished--
		e.setState(t, StateCancelled)
		t.t.Stage, t.t.Progress, t.c = "cancelled before it ran", -1, nil
		t.t.FinishedAt, t.t.ExpiresAt = now, now.Add(e.opts.ResultTTL)
		e.changedLocked(t)
	case StateRunning:
		if !t.cancelled {
			t.cancelled = true
			t.t.Stage = stageCancel
			t.cancel()
			e.notifyLocked(t)
		}
	}
	snap := t.snapshot()
	e.mu.Unlock()
	e.audit(AuditEntry{Principal: principalOf(ctx, snap.Principal), Customer: customer, Action: "cancel_query",
		Target: snap.ID + " " + snap.QueryHash, Outcome: "ok", Detail: "was " + string(prev)})
	if prev == StateRunning {
		return e.Wait(ctx, customer, id, cancelWait, nil)
	}
	return snap, nil
}

// Result returns rows [offset, offset+limit) of the customer's succeeded
// ticket, within MaxPageBytes of row JSON (fewer rows when they do not
// fit). limit <= 0 means DefaultPageRows; above MaxPageRows it is
// MaxPageRows.
func (e *Engine) Result(ctx context.Context, customer, id string, offset, limit int) (*Page, error) {
	if offset < 0 {
		return nil, fmt.Errorf("%w: offset must not be negative, got %d", ErrInvalidRequest, offset)
	}
	if limit <= 0 {
		limit = DefaultPageRows
	}
	limit = min(limit, MaxPageRows)
	e.mu.Lock()
	t, err := e.lookup(customer, id)
	if err != nil {
		e.mu.Unlock()
		e.auditMiss(ctx, customer, "get_query_result", id, err)
		return nil, err
	}
	snap := t.snapshot()
	e.mu.Unlock()
	switch snap.State {
	case StateQueued, StateRunning:
		return nil, fmt.Errorf("%w: ticket %s is %s; wait for it with get_query_status", ErrNotReady, snap.ID, snap.State)
	case StateFailed:
		return nil, fmt.Errorf("%w: ticket %s failed: %s", ErrNoResult, snap.ID, snap.Error)
	case StateCancelled:
		return nil, fmt.Errorf("%w: ticket %s was cancelled", ErrNoResult, snap.ID)
	case StateExpired:
		return nil, fmt.Errorf("%w: the result of ticket %s expired at %s; submit the query again", ErrNoResult, snap.ID, snap.ExpiresAt.Format(time.RFC3339))
	}
	start := time.Now()
	data, err := e.readResult(ctx, customer, snap)
	var p *Page
	if err == nil {
		p, err = parsePage(data, offset, limit, MaxPageBytes)
	}
	principal := principalOf(ctx, snap.Principal)
	if err != nil {
		e.audit(AuditEntry{Principal: principal, Customer: customer, Action: "get_query_result",
			Target: snap.ID + " " + snap.QueryHash, Outcome: "error", Detail: err.Error(), Duration: time.Since(start)})
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%w: the result file of ticket %s is gone; submit the query again", ErrNoResult, snap.ID)
		}
		return nil, fmt.Errorf("query: read result of %s: %w", snap.ID, err)
	}
	if p.Clipped {
		e.m.pageClipped.Inc()
	}
	var n int64
	if b, err := json.Marshal(p.Rows); err == nil {
		n = int64(len(b))
	}
	e.audit(AuditEntry{Principal: principal, Customer: customer, Action: "get_query_result",
		Target: snap.ID + " " + snap.QueryHash, Rows: int64(len(p.Rows)), Bytes: n, Duration: time.Since(start),
		Outcome: "ok", Detail: fmt.Sprintf("offset %d", offset)})
	return p, nil
}

// HashKnown reports whether the customer has a ticket with this query hash:
// in memory, else in the store (tickets of earlier runs, expired ones too,
// for TicketRetention).
func (e *Engine) HashKnown(ctx context.Context, customer, hash string) (bool, error) {
	e.mu.Lock()
	known := len(e.byHash[hashKey{customer, hash}]) > 0
	e.mu.Unlock()
	if known || e.opts.Store == nil || customer == "" {
		return known, nil
	}
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	known, err := e.opts.Store.TicketHashKnown(ctx, customer, hash)
	if err != nil {
		e.m.storeErrors.WithLabelValues("hash").Inc()
		return false, fmt.Errorf("query: look up query hash: %w", err)
	}
	return known, nil
}

// AddInsight lists atomID on the customer's tickets (in memory) that have
// this hash, up to MaxInsightsPerTicket each.
func (e *Engine) AddInsight(customer, hash, atomID string) {
	if atomID == "" {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, t := range e.byHash[hashKey{customer, hash}] {
		if containsString(t.t.Insights, atomID) {
			continue
		}
		if len(t.t.Insights) >= MaxInsightsPerTicket {
			e.m.insightsDrop.Inc()
			continue
		}
		t.t.Insights = append(t.t.Insights, atomID)
		e.changedLocked(t)
	}
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// expireLocked marks a finished ticket expired and removes its result
// file; a result in Options.Results is returned, to be deleted once mu is
// released (a network call). mu held (the file removal is quick and
// local).
func (e *Engine) expireLocked(t *ticket) *resultToDelete {
	if t.t.ResultPath != "" {
		if err := os.Remove(t.t.ResultPath); err != nil && !errors.Is(err, os.ErrNotExist) {
			e.log.Warn("query: remove expired result", "ticket", t.t.ID, "err", err)
		}
	}
	var del *resultToDelete
	if t.t.ResultArtifact != "" {
		del = &resultToDelete{customer: t.customer, ref: t.t.ResultArtifact}
	}
	e.setState(t, StateExpired)
	t.t.ResultPath, t.t.ResultArtifact, t.t.Stage = "", "", "result expired"
	e.changedLocked(t)
	return del
}

// sweep expires finished tickets whose time has come and forgets expired
// ones from memory after forgetAfter (the store keeps them for HashKnown).
// It returns the results in Options.Results to delete.
func (e *Engine) sweep(now time.Time) []resultToDelete {
	e.mu.Lock()
	defer e.mu.Unlock()
	dels := e.pendingDel
	e.pendingDel = nil
	for id, t := range e.tickets {
		if !t.t.State.Final() {
			continue
		}
		if t.t.State != StateExpired && !now.Before(t.t.ExpiresAt) {
			if d := e.expireLocked(t); d != nil {
				dels = append(dels, *d)
			}
		}
		if t.t.State == StateExpired && now.Sub(t.t.ExpiresAt) >= forgetAfter {
			if _, pending := e.dirty[t]; pending {
				continue // forget it once the store has it
			}
			delete(e.tickets, id)
			k := hashKey{t.customer, t.t.QueryHash}
			list := e.byHash[k]
			for i, x := range list {
				if x == t {
					list = append(list[:i], list[i+1:]...)
					break
				}
			}
			if len(list) == 0 {
				delete(e.byHash, k)
			} else {
				e.byHash[k] = list
			}
			e.m.tickets.WithLabelValues(string(StateExpired)).Dec()
		}
	}
	// Forget customers with nothing to remember: no unfinished ticket, no
	// submission in the last minute, no engine time today.
	for name, c := range e.custs {
		if c.unfinished == 0 && len(c.queue) == 0 && c.check(e.opts.Budget, now) == nil &&
			len(c.recent) == 0 && c.engine == 0 {
			delete(e.custs, name)
		}
	}
	return dels
}
