package memory

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/activitybi/activitybi/internal/telemetry"
	"github.com/activitybi/activitybi/internal/warehouse"
)

// Querier runs one of our read-only statements for one customer, where the
// customer tables' bare names see only that customer's rows. The warehouse
// drivers' CustomerQuery satisfies it.
type Querier interface {
	CustomerQuery(ctx context.Context, customer, q string, args []any, maxRows int) (*warehouse.Table, error)
}

var _ Querier = warehouse.Driver(nil)

// Defaults of Options.
const (
	DefaultSessionGap     = 30 * time.Minute
	DefaultRecentSessions = 10
	DefaultWindow         = 30 * 24 * time.Hour
	DefaultMaxEvents      = 5_000
	DefaultMaxFacts       = 500
	DefaultMaxInsights    = 200
	DefaultMaxTools       = 30
	DefaultMaxFailures    = 20

	// maxScopesListed bounds the scopes an unknown-scope error names.
	maxScopesListed = 20
	// MaxScopeLen is the longest scope, in characters (a feature value or
	// the name part of a subject, both at most 255).
	MaxScopeLen = 255
)

// Options configure NewBuilder. Zero means the default.
type Options struct {
	// Warehouse runs the statements; required.
	Warehouse Querier
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Logger gets a debug line per Build; default discard.
	Logger *slog.Logger
	// SessionGap splits events without a session_id into sessions: a
	// pause longer than this starts a new one. Default 30 minutes.
	SessionGap time.Duration
	// RecentSessions is how many sessions a context lists. Default 10.
	RecentSessions int
	// Window is how far back tool statistics and insight trends look, and
	// the first place sessions are looked for. Default 30 days.
	Window time.Duration
	// MaxEvents bounds the events read per Build (the latest of the
	// window); it bounds Build's cost, which is mostly parsing their
	// feature_json. Default 5,000.
	MaxEvents int
	// MaxFacts, MaxInsights, MaxTools and MaxFailures bound those lists.
	// Defaults 500, 200, 30 and 20.
	MaxFacts, MaxInsights, MaxTools, MaxFailures int
}

func (o *Options) validate() error {
	if o.Warehouse == nil {
		return errors.New("memory: Options.Warehouse is required")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	o.Logger = telemetry.OrDiscard(o.Logger)
	durs := []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{{"SessionGap", &o.SessionGap, DefaultSessionGap}, {"Window", &o.Window, DefaultWindow}}
	for _, d := range durs {
		if *d.v == 0 {
			*d.v = d.def
		}
		if *d.v < time.Millisecond {
			return fmt.Errorf("memory: Options.%s must be at least 1ms, got %s", d.name, *d.v)
		}
	}
	ints := []struct {
		name     string
		v        *int
		def, max int
	}{
		{"RecentSessions", &o.RecentSessions, DefaultRecentSessions, 1000},
		{"MaxEvents", &o.MaxEvents, DefaultMaxEvents, 10_000_000},
		{"MaxFacts", &o.MaxFacts, DefaultMaxFacts, 100_000},
		{"MaxInsights", &o.MaxInsights, DefaultMaxInsights, 100_000},
		{"MaxTools", &o.MaxTools, DefaultMaxTools, 10_000},
		{"MaxFailures", &o.MaxFailures, DefaultMaxFailures, 10_000},
	}
	for _, n := range ints {
		if *n.v == 0 {
			*n.v = n.def
		}
		if *n.v < 0 || *n.v > n.max {
			return fmt.Errorf("memory: Options.%s must be between 1 and %d, got %d", n.name, n.max, *n.v)
		}
	}
	return nil
}

// Builder computes contexts from the warehouse. It is safe for concurrent
// use and holds no state between calls.
type Builder struct {
	opts Options
	log  *slog.Logger
}

// NewBuilder returns a Builder, or an error for a bad option.
func NewBuilder(opts Options) (*Builder, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	return &Builder{opts: opts, log: opts.Logger}, nil
}

// UnknownScopeError answers a Build for a scope that no event or insight of
// the customer names. It is the caller's mistake, never retryable:
// errors.Is(err, ErrInvalidRequest) holds.
type UnknownScopeError struct {
	Scope string
	// Known are scopes that recent events and insights name, most recently
	// seen first (at most 20).
	Known []string
}

func (e *UnknownScopeError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "scope: unknown scope %q: no event or insight of yours names it", e.Scope)
	if len(e.Known) == 0 {
		b.WriteString("; nothing names a scope yet: leave scope empty")
		return b.String()
	}
	b.WriteString("; known scopes, most recent first: ")
	for i, s := range e.Known {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%q", s)
	}
	return b.String()
}

// Is makes an unknown scope an invalid request.
func (e *UnknownScopeError) Is(target error) bool { return target == ErrInvalidRequest }

// Build reads the customer's context, narrowed to scope when it is not
// empty. Two statements run concurrently (events.sql and insights.sql);
// a scope that neither finds costs up to two more (mentions.sql, then
// scopes.sql for the error), and a customer with no session in the window
// one more (events.sql over all time). The returned Context has Version 0.
//
// A scope matches events whose project, workspace or cwd feature equals it
// (or whose cwd ends in /scope), and then every event of their sessions;
// insights on project:<scope> and user are its facts, other projects'
// subjects are left out, and subjects that name no project (tool:Bash)
// stay.
func (b *Builder) Build(ctx context.Context, customer, scope string) (*Context, error) {
	if customer == "" {
		return nil, errors.New("memory: build: no customer")
	}
	if err := checkScope(scope); err != nil {
		return nil, err
	}
	start := time.Now()
	now := b.opts.Now().UTC().Truncate(time.Microsecond)
	windowStart := now.Add(-b.opts.Window)
	c := &Context{
		Scope: scope, AsOf: now,
		Coverage: Coverage{WindowStart: windowStart},
		Sessions: []Session{}, Facts: []Fact{}, Insights: []InsightSummary{},
		Tools: []ToolStat{}, Failures: []Failure{}, Tickets: []Ticket{},
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg          sync.WaitGroup
		ev          *eventsResult
		ins         *insightsResult
		evErr, iErr error
	)
	wg.Add(1)
	var evTook, insTook time.Duration
	go func() {
		defer wg.Done()
		t := time.Now()
		ins, iErr = b.insights(ctx, customer, scope, windowStart)
		insTook = time.Since(t)
		if iErr != nil {
			cancel()
		}
	}()
	ev, evErr = b.events(ctx, customer, scope, windowStart, windowStart)
	evTook = time.Since(start)
	if evErr != nil {
		cancel()
	}
	wg.Wait()
	if err := errors.Join(evErr, iErr); err != nil {
		return nil, fmt.Errorf("memory: build: %w", err)
	}
	readSince := windowStart
	if len(ev.sessions) == 0 && !ev.capped(b.opts.MaxEvents) {
		// Nothing in the window: the latest sessions of all time instead
		// (a customer back after a pause). Tools and failures stay
		// window-bound, so they stay empty.
		readSince = time.Unix(0, 0).UTC()
		if ev, evErr = b.events(ctx, customer, scope, readSince, windowStart); evErr != nil {
			return nil, fmt.Errorf("memory: build: %w", evErr)
		}
	}
	if scope != "" && ev.scopeSessions == 0 && ins.scopeAtoms == 0 {
		if err := b.unknownScope(ctx, customer, scope, ev, readSince); err != nil {
			return nil, err
		}
	}
	ev.fill(c, b.opts, readSince)
	ins.fill(c)
	b.log.Debug("context built", "scope", scope, "events", c.Coverage.Events,
		"sessions", len(c.Sessions), "facts", len(c.Facts), "insights", len(c.Insights),
		"duration", time.Since(start), "events_sql", evTook, "insights_sql", insTook)
	return c, nil
}

// checkScope refuses a scope that nothing could name.
func checkScope(s string) error {
	bad := func(msg string) error { return &RequestError{Field: "scope", Msg: msg} }
	switch {
	case s == "":
		return nil
	case !utf8.ValidString(s):
		return bad("is not valid UTF-8")
	case strings.TrimSpace(s) != s:
		return bad(fmt.Sprintf("%q has leading or trailing spaces", s))
	case utf8.RuneCountInString(s) > MaxScopeLen:
		return bad(fmt.Sprintf("is longer than %d characters", MaxScopeLen))
	case strings.ContainsFunc(s, unicode.IsControl):
		return bad("contains control characters")
	}
	return nil
}

// unknownScope decides whether scope, which the bounded reads did not find,
// is known from older events; if not it returns an *UnknownScopeError
// naming the scopes that exist.
func (b *Builder) unknownScope(ctx context.Context, customer, scope string, ev *eventsResult, readSince time.Time) error {
	if ev.capped(b.opts.MaxEvents) || readSince.After(time.Unix(0, 0)) {
		// Older events were not read: look there (all of history was
		// read otherwise).
		before := readSince
		if ev.eventsRead > 0 {
			before = ev.readFrom
		}
		t, err := b.opts.Warehouse.CustomerQuery(ctx, customer, mentionsSQL, []any{scope, before}, 1)
		if err != nil {
			return fmt.Errorf("memory: build: look for scope: %w", err)
		}
		if len(t.Rows) == 1 && toInt(t.Rows[0][0]) > 0 {
			return nil // named by older events: known, just not recent
		}
	}
	t, err := b.opts.Warehouse.CustomerQuery(ctx, customer, scopesSQL,
		[]any{readSince, int64(b.opts.MaxEvents), int64(maxScopesListed)}, maxScopesListed)
	if err != nil {
		return fmt.Errorf("memory: build: list scopes: %w", err)
	}
	e := &UnknownScopeError{Scope: scope, Known: []string{}}
	for _, r := range t.Rows {
		e.Known = append(e.Known, toString(r[0]))
	}
	return e
}
