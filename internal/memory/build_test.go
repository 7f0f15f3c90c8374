package memory

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/activitybi/activitybi/internal/warehouse"
)

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (go test -update rewrites it):\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

func build(t *testing.T, b *Builder, customer, scope string) *Context {
	t.Helper()
	c, err := b.Build(context.Background(), customer, scope)
	if err != nil {
		t.Fatalf("Build(%s, %q): %v", customer, scope, err)
	}
	return c
}

func indent(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(b, '\n')
}

// TestBuildGolden pins every computed value of the small fixture: the
// whole context per scope, and its default rendering.
func TestBuildGolden(t *testing.T) {
	t.Parallel()
	b := newBuilder(t, smallFixture(t), nil)
	for _, c := range []struct{ name, scope string }{
		{"alice", ""},
		{"alice_billing", "billing"},
		{"alice_website", "website"},
		{"alice_cwd", "/home/alice/src/billing"},
		{"alice_oldproj", "oldproj"},
	} {
		ctx := build(t, b, "alice", c.scope)
		golden(t, c.name+".json", indent(t, ctx))
		p, err := Render(ctx, RenderRequest{})
		if err != nil {
			t.Fatal(err)
		}
		golden(t, c.name+".txt", []byte(p.Text))
	}
}

// TestBuildAlice states the golden file's main facts in code, so that a
// careless -update cannot bless a wrong number.
func TestBuildAlice(t *testing.T) {
	t.Parallel()
	b := newBuilder(t, smallFixture(t), nil)
	c := build(t, b, "alice", "")

	if !c.AsOf.Equal(smallNow) || c.Version != 0 {
		t.Errorf("as_of %v version %d", c.AsOf, c.Version)
	}
	if c.Coverage.Events != 15 || c.Coverage.Capped || !c.Coverage.From.Equal(at("2026-03-30 09:00")) ||
		!c.Coverage.WindowStart.Equal(smallNow.Add(-DefaultWindow)) {
		t.Errorf("coverage %+v: want the 15 events of the window, from 2026-03-30 09:00", c.Coverage)
	}

	// Sessions: two found by the gap on 03-31 (08:00-08:30 and, after a
	// 60-minute pause, 09:30-09:40), then s-1; s-old is outside the window.
	type sess struct {
		id, start, end, place string
		events, failures      int
		cost                  float64
		tools                 []string
	}
	var got []sess
	for _, s := range c.Sessions {
		got = append(got, sess{s.ID, s.Start.Format("01-02 15:04"), s.End.Format("15:04"), s.Place, s.Events, s.Failures, s.CostUSD, s.Tools})
	}
	want := []sess{
		{"", "03-31 09:30", "09:40", "", 3, 1, 0.01, []string{"Bash"}},
		{"", "03-31 08:00", "08:30", "website", 4, 1, 0.02, []string{"Edit", "WebFetch"}},
		{"s-1", "03-30 09:00", "09:11", "billing", 8, 1, 0.08, []string{"Bash", "Read"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("sessions:\n got %+v\nwant %+v", got, want)
	}
	if a := c.Sessions[2].Activities; len(a) != 4 || a[0] != (ActivityCount{"called_tool", 4}) || a[1] != (ActivityCount{"completed_response", 2}) {
		t.Errorf("s-1 activities %+v", a)
	}
	for _, s := range c.Sessions {
		if s.Partial {
			t.Errorf("session %v marked partial: nothing was cut", s.Start)
		}
	}

	// Facts: the latest value per metric, user first.
	var facts []string
	for _, f := range c.Facts {
		facts = append(facts, f.Subject+" "+f.Metric+"="+string(f.Value))
	}
	wantFacts := []string{`user editor="vim"`, `user prefers_language="go"`,
		`project:billing deploy_cmd="make deploy"`, `project:website framework="hugo"`}
	if !reflect.DeepEqual(facts, wantFacts) {
		t.Errorf("facts %q, want %q", facts, wantFacts)
	}

	// Insights and trends.
	byKey := map[string]InsightSummary{}
	for _, x := range c.Insights {
		byKey[x.Subject+" "+x.Metric] = x
	}
	if len(byKey) != 5 {
		t.Errorf("%d insights, want 5: %+v", len(byKey), c.Insights)
	}
	for key, w := range map[string]struct {
		value string
		count int
		trend *Trend
	}{
		// 500 (02-01) is before the window: counted, not trended.
		"tool:Bash p95_latency_ms":           {"600", 4, &Trend{Since: at("2026-03-05 10:00"), First: 400, Last: 600, Change: 200, Points: 3, Direction: TrendUp}},
		"tool:Read p95_latency_ms":           {"100.5", 2, &Trend{Since: at("2026-03-10 10:00"), First: 100, Last: 100.5, Change: 0.5, Points: 2, Direction: TrendFlat}},
		"tool:Edit error_rate":               {"0.1", 2, &Trend{Since: at("2026-03-10 10:00"), First: 0.2, Last: 0.1, Change: 0.1 - 0.2, Points: 2, Direction: TrendDown}},
		"model:claude-sonnet-4-5 latency_ms": {`{"p50":900,"p95":2400}`, 1, nil},
		"cost daily_usd":                     {"1.25", 1, nil},
	} {
		g, ok := byKey[key]
		if !ok {
			t.Errorf("no insight %s", key)
			continue
		}
		if string(g.Value) != w.value || g.Count != w.count || !reflect.DeepEqual(g.Trend, w.trend) {
			t.Errorf("%s: value %s count %d trend %+v; want %s %d %+v", key, g.Value, g.Count, g.Trend, w.value, w.count, w.trend)
		}
	}
	if c.Insights[0].Subject != "cost" || c.Insights[len(c.Insights)-1].Subject != "tool:Read" {
		t.Errorf("insights not most recently updated first: %+v", c.Insights)
	}

	// Tools in the window: Bash 4 calls (120, 900, 200, 30000 ms; 2 failed:
	// success false and an error feature), then Edit, Read, WebFetch.
	if len(c.Tools) != 4 {
		t.Fatalf("tools %+v", c.Tools)
	}
	bash := c.Tools[0]
	if bash.Tool != "Bash" || bash.Server != "shell" || bash.Calls != 4 || bash.Failures != 2 ||
		bash.P50Ms == nil || *bash.P50Ms != 550 || bash.P95Ms == nil || *bash.P95Ms != 25635 {
		t.Errorf("Bash %+v (p50 %v p95 %v)", bash, deref(bash.P50Ms), deref(bash.P95Ms))
	}
	if wf := c.Tools[3]; wf.Tool != "WebFetch" || wf.Failures != 1 || wf.P50Ms != nil {
		t.Errorf("WebFetch %+v: no duration_ms, so no percentiles", wf)
	}

	// Failures, newest first, with the error text when there is one.
	var fails []string
	for _, f := range c.Failures {
		fails = append(fails, f.TS.Format("01-02 15:04")+" "+f.Tool+" "+f.Session+" "+f.Error)
	}
	wantFails := []string{"03-31 09:31 Bash  timeout after 30s", "03-31 08:20 WebFetch  ", "03-30 09:04 Bash s-1 exit status 1"}
	if !reflect.DeepEqual(fails, wantFails) {
		t.Errorf("failures %q, want %q", fails, wantFails)
	}
	if c.Tickets == nil || len(c.Tickets) != 0 {
		t.Errorf("tickets %v, want empty", c.Tickets)
	}
}

func deref(p *float64) any {
	if p == nil {
		return nil
	}
	return *p
}

// TestIsolation: nothing of bob's reaches alice's context, in any scope,
// and the other way round; both have a project called billing.
func TestIsolation(t *testing.T) {
	t.Parallel()
	db := smallFixture(t)
	b := newBuilder(t, db, nil)
	for _, scope := range []string{"", "billing"} {
		a := string(indent(t, build(t, b, "alice", scope)))
		for _, leak := range []string{"bob", "Secret", "secret", "9.99"} {
			if strings.Contains(a, leak) {
				t.Errorf("alice's context (scope %q) contains %q:\n%s", scope, leak, a)
			}
		}
		bc := build(t, b, "bob", scope)
		bs := string(indent(t, bc))
		for _, leak := range []string{"alice", "vim", "website", "Grep", "make deploy", "s-1"} {
			if strings.Contains(bs, leak) {
				t.Errorf("bob's context (scope %q) contains %q:\n%s", scope, leak, bs)
			}
		}
		if len(bc.Sessions) == 0 || bc.Sessions[len(bc.Sessions)-1].ID != "bob-s" {
			t.Errorf("bob's sessions %+v", bc.Sessions)
		}
	}
	// Unknown-scope errors list only the customer's own scopes.
	_, err := b.Build(context.Background(), "alice", "secret-proj")
	var use *UnknownScopeError
	if !errors.As(err, &use) {
		t.Fatalf("alice asking for bob's project: %v, want an UnknownScopeError", err)
	}
	if strings.Contains(err.Error(), "bob") {
		t.Errorf("error names bob's scopes: %v", err)
	}
}

func TestScope(t *testing.T) {
	t.Parallel()
	db := smallFixture(t)
	b := newBuilder(t, db, nil)
	ctx := context.Background()

	c := build(t, b, "alice", "billing")
	if len(c.Sessions) != 1 || c.Sessions[0].ID != "s-1" || c.Sessions[0].Events != 8 {
		t.Errorf("billing sessions %+v, want only s-1 with all 8 events", c.Sessions)
	}
	for _, f := range c.Facts {
		if f.Subject != "user" && f.Subject != "project:billing" {
			t.Errorf("billing facts include %s", f.Subject)
		}
	}
	if len(c.Facts) != 3 {
		t.Errorf("billing facts %+v, want 2 user facts and deploy_cmd", c.Facts)
	}
	var tools []string
	for _, x := range c.Tools {
		tools = append(tools, x.Tool)
	}
	// The tools of s-1 only: its called_tool events carry no project, they
	// are in scope because their session is.
	if !reflect.DeepEqual(tools, []string{"Bash", "Read"}) || c.Tools[0].Calls != 3 {
		t.Errorf("billing tools %+v", c.Tools)
	}
	if len(c.Insights) != 5 {
		t.Errorf("billing insights %d: subjects that name no project stay", len(c.Insights))
	}

	// A session found by the gap is in scope through its started_session.
	c = build(t, b, "alice", "website")
	if len(c.Sessions) != 1 || c.Sessions[0].Place != "website" || c.Sessions[0].Events != 4 || len(c.Failures) != 1 {
		t.Errorf("website: %+v / %+v", c.Sessions, c.Failures)
	}

	// A cwd matches exactly or by its last element; a scope named only by
	// events outside the window falls back to older sessions.
	if c := build(t, b, "alice", "/home/alice/src/billing"); len(c.Sessions) != 1 || c.Sessions[0].ID != "s-1" {
		t.Errorf("cwd scope: %+v", c.Sessions)
	}
	c = build(t, b, "alice", "oldproj")
	if len(c.Sessions) != 1 || c.Sessions[0].ID != "s-old" || len(c.Tools) != 0 {
		t.Errorf("oldproj: sessions %+v tools %+v; want s-old and no tools (outside the window)", c.Sessions, c.Tools)
	}

	// A scope known only from an insight subject is not an error.
	if c := build(t, b, "alice", "website"); len(c.Facts) != 3 {
		t.Errorf("website facts %+v", c.Facts)
	}

	// Unknown scope: an error that lists the known ones, newest first.
	_, err := b.Build(ctx, "alice", "nope")
	var use *UnknownScopeError
	if !errors.As(err, &use) || !errors.Is(err, ErrInvalidRequest) {
		t.Fatalf("unknown scope: %v", err)
	}
	wantKnown := []string{"website", "/home/alice/src/billing", "billing", "oldproj"}
	if !reflect.DeepEqual(use.Known, wantKnown) {
		t.Errorf("known scopes %q, want %q", use.Known, wantKnown)
	}
	if !strings.Contains(err.Error(), `unknown scope "nope"`) || !strings.Contains(err.Error(), `"website"`) {
		t.Errorf("message: %v", err)
	}
	// A customer with nothing at all.
	_, err = b.Build(ctx, "carol", "x")
	if !errors.As(err, &use) || len(use.Known) != 0 || !strings.Contains(err.Error(), "leave scope empty") {
		t.Errorf("carol: %v", err)
	}

	for _, bad := range []string{" billing", "a\nb", strings.Repeat("x", MaxScopeLen+1), "\xff"} {
		_, err := b.Build(ctx, "alice", bad)
		var re *RequestError
		if !errors.As(err, &re) || re.Field != "scope" || !errors.Is(err, ErrInvalidRequest) {
			t.Errorf("scope %q: %v", bad, err)
		}
	}
}

// TestBoundedRead: with MaxEvents below the window's events the read is
// capped, the oldest session read is partial, and a scope named only by an
// event before the read is still known (mentions.sql).
func TestBoundedRead(t *testing.T) {
	t.Parallel()
	db := smallFixture(t)
	b := newBuilder(t, db, func(o *Options) { o.MaxEvents = 5 })
	c := build(t, b, "alice", "")
	if c.Coverage.Events != 5 || !c.Coverage.Capped || !c.Coverage.From.Equal(at("2026-03-31 08:20")) {
		t.Errorf("coverage %+v", c.Coverage)
	}
	if len(c.Sessions) != 2 || !c.Sessions[1].Partial || c.Sessions[0].Partial || c.Sessions[1].Events != 2 {
		t.Errorf("sessions %+v: want the last one partial with 2 events", c.Sessions)
	}
	p, err := Render(c, RenderRequest{})
	if err != nil || !strings.Contains(p.Text, "may have begun earlier") || !strings.Contains(p.Text, "tools since 2026-03-31 08:20") {
		t.Errorf("render: %v\n%s", err, p.Text)
	}

	c, err = b.Build(context.Background(), "alice", "/home/alice/src/billing")
	if err != nil {
		t.Fatalf("scope named only before the read: %v", err)
	}
	if len(c.Sessions) != 0 || len(c.Facts) != 2 {
		t.Errorf("sessions %+v facts %+v: want no session (not read) and the user facts", c.Sessions, c.Facts)
	}
}

// TestEmptyCustomer: a customer without rows gets an empty context whose
// lists are all present.
func TestEmptyCustomer(t *testing.T) {
	t.Parallel()
	b := newBuilder(t, smallFixture(t), nil)
	c := build(t, b, "carol", "")
	js := string(indent(t, c))
	for _, key := range []string{`"sessions": []`, `"facts": []`, `"insights": []`, `"tools": []`, `"failures": []`, `"tickets": []`} {
		if !strings.Contains(js, key) {
			t.Errorf("empty context lacks %s:\n%s", key, js)
		}
	}
	p, err := Render(c, RenderRequest{})
	if err != nil || !strings.Contains(p.Text, "(nothing yet)") || p.Truncated {
		t.Errorf("render: %v %+v", err, p)
	}
}

// failing is a Querier whose statements fail.
type failing struct{ err error }

func (f failing) CustomerQuery(context.Context, string, string, []any, int) (*warehouse.Table, error) {
	return nil, f.err
}

func TestBuildErrors(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	b := newBuilder(t, failing{boom}, nil)
	if _, err := b.Build(context.Background(), "alice", ""); !errors.Is(err, boom) || errors.Is(err, ErrInvalidRequest) {
		t.Errorf("warehouse error: %v", err)
	}
	if _, err := b.Build(context.Background(), "", ""); err == nil {
		t.Error("no customer: no error")
	}
	for _, o := range []Options{
		{},
		{Warehouse: failing{}, SessionGap: -time.Second},
		{Warehouse: failing{}, Window: time.Microsecond},
		{Warehouse: failing{}, RecentSessions: -1},
		{Warehouse: failing{}, MaxEvents: 20_000_000},
	} {
		if _, err := NewBuilder(o); err == nil {
			t.Errorf("NewBuilder(%+v): no error", o)
		}
	}
}

// TestStatementsAreConstant: the statements bind every value; nothing the
// caller gives (customer, scope) is ever part of their text, and each is
// accepted by the customer-mode check (it ran in the tests above).
func TestStatementsAreConstant(t *testing.T) {
	t.Parallel()
	var seen []string
	rec := recorder{mu: new(sync.Mutex), seen: &seen, inner: smallFixture(t)}
	b := newBuilder(t, rec, nil)
	const scope = "nope-unique-scope"
	if _, err := b.Build(context.Background(), "alice", scope); err == nil {
		t.Fatal("unknown scope built")
	}
	if len(seen) != 4 {
		t.Errorf("%d statements for an unknown scope, want 4 (events, insights, mentions, scopes)", len(seen))
	}
	for _, q := range seen {
		if strings.Contains(q, scope) || strings.Contains(q, "alice") {
			t.Errorf("statement text contains a caller's value:\n%s", q)
		}
		if q != eventsSQL && q != insightsSQL && q != mentionsSQL && q != scopesSQL {
			t.Errorf("unexpected statement:\n%s", q)
		}
	}
}

type recorder struct {
	mu    *sync.Mutex
	seen  *[]string
	inner Querier
}

func (r recorder) CustomerQuery(ctx context.Context, customer, q string, args []any, maxRows int) (*warehouse.Table, error) {
	r.mu.Lock()
	*r.seen = append(*r.seen, q)
	r.mu.Unlock()
	return r.inner.CustomerQuery(ctx, customer, q, args, maxRows)
}
