package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/activitybi/activitybi/internal/event"
	"github.com/activitybi/activitybi/internal/spool"
)

// toolBundle is a connected in-memory MCP client over the real tools and a
// real spool in a temporary directory.
type toolBundle struct {
	cs      *mcp.ClientSession
	dir     string
	w       *spool.Writer
	metrics *ToolMetrics
	reg     *prometheus.Registry
}

func setupTools(t *testing.T, customer string, spoolOpts spool.Options) *toolBundle {
	t.Helper()
	return setupToolsWith(t, customer, spoolOpts, nil)
}

func setupToolsWith(t *testing.T, customer string, spoolOpts spool.Options, mem *Memory) *toolBundle {
	t.Helper()
	dir := t.TempDir()
	spoolOpts.Dir = dir
	w, err := spool.Open(spoolOpts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	reg := prometheus.NewRegistry()
	tm, err := NewToolMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewMCPServer(MCPOptions{Appender: w, Identity: FixedIdentity(customer), Version: "test", Metrics: tm, Memory: mem})
	if err != nil {
		t.Fatal(err)
	}
	cs := connectInMemory(t, s)
	return &toolBundle{cs: cs, dir: dir, w: w, metrics: tm, reg: reg}
}

func (b *toolBundle) call(t *testing.T, tool string, args any) *mcp.CallToolResult {
	t.Helper()
	res, err := b.cs.CallTool(context.Background(), &mcp.CallToolParams{Name: tool, Arguments: args})
	if err != nil {
		t.Fatalf("%s: protocol error: %v", tool, err)
	}
	return res
}

// records returns every record in the spool, by kind.
func (b *toolBundle) records(t *testing.T) map[string][]string {
	t.Helper()
	segs, err := spool.ListSegments(b.dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, sg := range segs {
		for off := int64(0); ; {
			es, next, err := spool.ReadSegment(sg.Path, off, 0, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range es {
				if e.Corrupt != "" {
					t.Fatalf("corrupt record in %s: %s", sg.Path, e.Corrupt)
				}
				out[e.Kind] = append(out[e.Kind], string(e.Payload))
			}
			if next == off || len(es) == 0 {
				break
			}
			off = next
		}
	}
	return out
}

// eventIDs counts the spool's events by activity_id, all of which must be
// customer's.
func (b *toolBundle) eventIDs(t *testing.T, customer string) map[string]int {
	t.Helper()
	ids := map[string]int{}
	for _, r := range b.records(t)["event"] {
		e, err := event.Decode([]byte(r))
		if err != nil {
			t.Fatal(err)
		}
		if e.Customer != customer {
			t.Fatalf("logged as %q", e.Customer)
		}
		ids[e.ActivityID]++
	}
	return ids
}

func text(res *mcp.CallToolResult) string {
	var sb strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			sb.WriteString(tc.Text)
		}
	}
	return sb.String()
}

func TestToolsList(t *testing.T) {
	t.Parallel()
	b := setupTools(t, "alice", spool.Options{})
	res, err := b.cs.ListTools(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]*mcp.Tool{}
	for _, tl := range res.Tools {
		got[tl.Name] = tl
	}
	for _, name := range []string{"log_event", "log_insight"} {
		tl := got[name]
		if tl == nil {
			t.Fatalf("tool %s missing; have %v", name, got)
		}
		if tl.Description == "" || tl.InputSchema == nil || tl.OutputSchema == nil || tl.Annotations == nil {
			t.Errorf("%s: description, input and output schema and annotations must all be set: %+v", name, tl)
		}
		if tl.Annotations.ReadOnlyHint || tl.Annotations.DestructiveHint == nil || *tl.Annotations.DestructiveHint {
			t.Errorf("%s: a logging tool writes (not read-only) and destroys nothing: %+v", name, tl.Annotations)
		}
		schema, _ := json.Marshal(tl.InputSchema)
		if strings.Contains(string(schema), "customer\"") {
			t.Errorf("%s: input schema must not offer a customer: %s", name, schema)
		}
	}
	if init := b.cs.InitializeResult(); !strings.Contains(init.Instructions, "log_event") {
		t.Errorf("server instructions should tell Claude when to log: %q", init.Instructions)
	}
}

func TestLogEvent(t *testing.T) {
	t.Parallel()
	b := setupTools(t, "alice", spool.Options{})
	ts := time.Date(2026, 11, 20, 10, 0, 0, 123456000, time.UTC)
	res := b.call(t, "log_event", map[string]any{
		"activity": "called_tool", "features": map[string]any{"tool": "Bash", "duration_ms": 12},
		"ts": ts.Format(time.RFC3339Nano), "revenue_impact": -0.25, "link": "https://example.com/x",
		"anonymous_customer_id": "visitor-1",
	})
	if res.IsError {
		t.Fatalf("tool error: %s", text(res))
	}
	var out LogEventResult
	b2, _ := json.Marshal(res.StructuredContent)
	if err := json.Unmarshal(b2, &out); err != nil {
		t.Fatal(err)
	}
	if out.ActivityID == "" || out.Duplicate || !out.TS.Equal(ts) {
		t.Fatalf("result = %+v", out)
	}
	e := b.onlyEvent(t)
	if e.Customer != "alice" || e.ActivityID != out.ActivityID || e.Source != "mcp" || e.Activity != "called_tool" ||
		e.AnonymousCustomerID != "visitor-1" || *e.RevenueImpact != -0.25 || !e.TS.Equal(ts) ||
		string(e.Features) != `{"duration_ms":12,"tool":"Bash"}` {
		t.Fatalf("stored event = %+v features %s", e, e.Features)
	}
	if got := testutil.ToFloat64(b.metrics.calls.WithLabelValues("log_event", "ok", "http")); got != 1 {
		t.Errorf("ok calls counted = %v, want 1", got)
	}
}

// onlyEvent is the one event in the spool; the test fails if there is
// not exactly one.
func (b *toolBundle) onlyEvent(t *testing.T) event.Event {
	t.Helper()
	recs := b.records(t)["event"]
	if len(recs) != 1 {
		t.Fatalf("spool has %d events, want 1", len(recs))
	}
	e, err := event.Decode([]byte(recs[0]))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestLogEventDuplicate(t *testing.T) {
	t.Parallel()
	b := setupTools(t, "alice", spool.Options{})
	// No ts: each call's ts would be its own "now". The retries' answers
	// carry the ts of the event that was written.
	args := map[string]any{"activity": "called_tool", "activity_id": "retry-1"}
	var firstTS any
	for i, wantDup := range []bool{false, true, true} {
		if i > 0 {
			time.Sleep(2 * time.Millisecond)
		}
		res := b.call(t, "log_event", args)
		if res.IsError {
			t.Fatal(text(res))
		}
		sc := res.StructuredContent.(map[string]any)
		if dup := sc["duplicate"]; dup != wantDup {
			t.Fatalf("call %d: duplicate = %v, want %v", i, dup, wantDup)
		}
		if i == 0 {
			firstTS = sc["ts"]
		} else if sc["ts"] != firstTS {
			t.Fatalf("call %d: ts %v, want the written event's %v", i, sc["ts"], firstTS)
		}
	}
	if got := b.onlyEvent(t).TS.Format(time.RFC3339Nano); got != firstTS {
		t.Fatalf("stored ts %s, answered %v", got, firstTS)
	}
}

func TestLogEventBadInput(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("x", 70<<10)
	cases := map[string]struct {
		args any
		want []string // substrings of the error text
	}{
		"missing activity":  {map[string]any{"features": map[string]any{}}, []string{"activity: required"}},
		"no arguments":      {nil, []string{"activity: required"}},
		"bad activity name": {map[string]any{"activity": "CalledTool"}, []string{"activity", "verb_noun"}},
		"one word activity": {map[string]any{"activity": "tool"}, []string{"activity"}},
		"oversize features": {map[string]any{"activity": "called_tool", "features": map[string]any{"blob": big}}, []string{"feature", "65536"}},
		"features not object": {map[string]any{"activity": "called_tool", "features": "Bash"},
			[]string{"features: must be a JSON object", "got a string"}},
		"features array":   {map[string]any{"activity": "called_tool", "features": []int{1}}, []string{"got an array"}},
		"activity number":  {map[string]any{"activity": 7}, []string{"activity: must be a string, got a number"}},
		"revenue string":   {map[string]any{"activity": "called_tool", "revenue_impact": "1.5"}, []string{"revenue_impact: must be a number"}},
		"ts not a time":    {map[string]any{"activity": "called_tool", "ts": "yesterday"}, []string{"ts: must be an RFC 3339 time"}},
		"ts in the future": {map[string]any{"activity": "called_tool", "ts": time.Now().Add(time.Hour).Format(time.RFC3339)}, []string{"ts", "future"}},
		"bad link":         {map[string]any{"activity": "called_tool", "link": "ftp://x"}, []string{"link"}},
		"long string":      {map[string]any{"activity": "called_tool", "activity_id": strings.Repeat("a", 300)}, []string{"activity_id", "255"}},
		"unknown field":    {map[string]any{"activity": "called_tool", "tool": "Bash"}, []string{`unknown field "tool"`, "log_event accepts activity, features"}},
		"customer field":   {map[string]any{"activity": "called_tool", "customer": "bob"}, []string{"customer: cannot be set", "identity of this connection"}},
		"pipeline column":  {map[string]any{"activity": "called_tool", "_source": "api"}, []string{`unknown field "_source"`}},
		"every problem at once": {map[string]any{"activity": "Bad", "customer": "bob", "features": 3, "zzz": 1},
			[]string{"customer: cannot be set", `unknown field "zzz"`, "features: must be a JSON object", "activity"}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := setupTools(t, "alice", spool.Options{})
			res := b.call(t, "log_event", tc.args)
			if !res.IsError {
				t.Fatalf("want a tool error, got %s", text(res))
			}
			msg := text(res)
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not mention %q", msg, w)
				}
			}
			if recs := b.records(t); len(recs) != 0 {
				t.Errorf("nothing may be written on bad input; spool has %v", recs)
			}
			if got := testutil.ToFloat64(b.metrics.calls.WithLabelValues("log_event", "invalid", "http")); got != 1 {
				t.Errorf("invalid calls counted = %v, want 1", got)
			}
		})
	}
}

func TestLogEventBackpressure(t *testing.T) {
	t.Parallel()
	b := setupTools(t, "alice", spool.Options{MaxPending: 3})
	var last *mcp.CallToolResult
	for i := 0; i < 5; i++ {
		last = b.call(t, "log_event", map[string]any{"activity": "called_tool", "activity_id": "id-" + string(rune('a'+i))})
		if last.IsError {
			break
		}
	}
	if !last.IsError || !strings.Contains(text(last), "nothing was logged") || !strings.Contains(text(last), "retry") {
		t.Fatalf("want a retryable backpressure error, got %q", text(last))
	}
	n := len(b.records(t)["event"])
	// The id that was refused is not remembered: its retry is written.
	if n != 3 {
		t.Fatalf("spool has %d events, want the 3 below the limit", n)
	}
	if got := testutil.ToFloat64(b.metrics.calls.WithLabelValues("log_event", "backpressure", "http")); got != 1 {
		t.Errorf("backpressure counted = %v", got)
	}
}

// isDup does what logRecords does for one record written at once: it
// reports whether r remembers the id and, if not, remembers it.
func isDup(r *RecentIDs, kind, customer, id string) bool {
	if _, ok := r.Seen(kind, customer, id); ok {
		return true
	}
	r.Add(kind, customer, id, time.Time{})
	return false
}

func TestRecentIDs(t *testing.T) {
	t.Parallel()
	r := NewRecentIDs(2)
	if isDup(r, "event", "alice", "a") || isDup(r, "event", "alice", "b") || !isDup(r, "event", "alice", "a") {
		t.Fatal("a and b are new, a again is a duplicate")
	}
	if isDup(r, "event", "bob", "a") || isDup(r, "insight", "alice", "a") {
		t.Fatal("the same id of another customer or kind is new")
	}
	// The ring holds 2: bob's and alice's insight evicted alice's a and b.
	if isDup(r, "event", "alice", "b") {
		t.Fatal("b was evicted and must count as new")
	}
	// Add keeps the first ts of an id it already holds.
	t1 := time.Date(2026, 11, 26, 10, 0, 0, 123456000, time.UTC)
	r.Add("event", "carol", "x", t1)
	r.Add("event", "carol", "x", t1.Add(time.Second))
	if first, ok := r.Seen("event", "carol", "x"); !ok || !first.Equal(t1) {
		t.Fatalf("Seen = %v, %v; want the first ts %v", first, ok, t1)
	}
}

// TestRecentIDsHashCollisions: with every key hashing alike, no id is ever
// taken for another (that would drop an event as a false duplicate), and
// evicting an old id does not drop the map entry a newer id owns.
func TestRecentIDsHashCollisions(t *testing.T) {
	t.Parallel()
	r := NewRecentIDs(3)
	r.hashKey = func(string, string, string) uint64 { return 7 }
	if isDup(r, "event", "alice", "a") || isDup(r, "event", "alice", "b") {
		t.Fatal("a and b are different ids")
	}
	if !isDup(r, "event", "alice", "b") {
		t.Fatal("b, the newest owner of the hash, is a duplicate")
	}
	// a lost the hash's entry to b: it counts as new (a weaker hint, never
	// a wrong one) and takes the entry back.
	if isDup(r, "event", "alice", "a") {
		t.Fatal("a, whose entry b took, must count as new")
	}
	// Ring: [a, b, a]. Adding c evicts slot 0 (the first a); the entry
	// (owned by slot 2's a) must survive until c takes it.
	if !isDup(r, "event", "alice", "a") {
		t.Fatal("a is a duplicate")
	}
	if isDup(r, "event", "alice", "c") || !isDup(r, "event", "alice", "c") {
		t.Fatal("c is new, then a duplicate")
	}
	if _, ok := r.Seen("event", "alice", "a"); ok {
		t.Fatal("a, whose entry c took, is not seen")
	}
	if len(r.set) != 1 || len(r.ring) != 3 {
		t.Fatalf("set %d ring %d, want 1 and 3", len(r.set), len(r.ring))
	}

	// Only a and a2 collide. Evicting a (slot 0) must leave the entry a2
	// (slot 1) took from it.
	r = NewRecentIDs(2)
	r.hashKey = func(_, _, id string) uint64 {
		if strings.HasPrefix(id, "a") {
			return 7
		}
		return uint64(len(id))
	}
	isDup(r, "event", "alice", "a")
	isDup(r, "event", "alice", "a2")
	isDup(r, "event", "alice", "xyz") // evicts a
	if !isDup(r, "event", "alice", "a2") {
		t.Fatal("a2 is still remembered after a was evicted")
	}
}

// TestRecentIDsBounded: the ring never grows past its size, and the map
// holds at most one entry per ring slot.
func TestRecentIDsBounded(t *testing.T) {
	t.Parallel()
	r := NewRecentIDs(100)
	for i := range 10_000 {
		if isDup(r, "event", "alice", strconv.Itoa(i)) {
			t.Fatalf("id %d is new", i)
		}
	}
	if len(r.ring) != 100 || len(r.set) != 100 {
		t.Fatalf("ring %d set %d, want 100 each", len(r.ring), len(r.set))
	}
	for i := 9_900; i < 10_000; i++ {
		if !isDup(r, "event", "alice", strconv.Itoa(i)) {
			t.Fatalf("id %d is among the last 100", i)
		}
	}
	if isDup(r, "event", "alice", "9899") {
		t.Fatal("id 9899 was evicted")
	}
}

// heldAppender holds its first append until released and then fails it
// with backpressure (nothing written); later appends are written.
type heldAppender struct {
	mu       sync.Mutex
	first    bool
	entered  chan struct{}
	release  chan struct{}
	payloads [][]byte
}

func (a *heldAppender) Append(kind string, p []byte) error {
	return a.AppendBatch(kind, [][]byte{p})
}

func (a *heldAppender) AppendBatch(_ string, ps [][]byte) error {
	a.mu.Lock()
	first := !a.first
	a.first = true
	a.mu.Unlock()
	if first {
		close(a.entered)
		<-a.release
		return fmt.Errorf("%w", &spool.BackpressureError{Pending: 10, Limit: 10})
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.payloads = append(a.payloads, ps...)
	return nil
}

// TestDuplicateOnlyOfWritten: a retry that arrives while the first call's
// append is still under way is not told "duplicate" (that append may fail,
// and then nothing would be written); it is written itself (found in
// review, session 8).
func TestDuplicateOnlyOfWritten(t *testing.T) {
	t.Parallel()
	app := &heldAppender{entered: make(chan struct{}), release: make(chan struct{})}
	recent := NewRecentIDs(100)
	d := event.Defaults{Customer: "alice", Source: "api"}
	in := []event.Input{{ActivityID: "retry-1", Activity: "called_tool"}}
	type result struct {
		l   []Logged
		err error
	}
	first := make(chan result, 1)
	go func() {
		l, err := LogEvents(app, recent, in, d)
		first <- result{l, err}
	}()
	<-app.entered
	retry, err := LogEvents(app, recent, in, d)
	close(app.release)
	a := <-first
	if a.err == nil || !errors.Is(a.err, spool.ErrBackpressure) {
		t.Fatalf("first call: %v, want backpressure", a.err)
	}
	if err != nil || retry[0].Duplicate || len(app.payloads) != 1 {
		t.Fatalf("retry: %v, duplicate %v, %d written; want it written, not a duplicate", err, retry[0].Duplicate, len(app.payloads))
	}
	// Now written: a third call is a duplicate and carries the written ts.
	again, err := LogEvents(app, recent, in, d)
	if err != nil || !again[0].Duplicate || !again[0].TS.Equal(retry[0].TS) || len(app.payloads) != 1 {
		t.Fatalf("third call: %v, %+v, %d written", err, again[0], len(app.payloads))
	}
	// In one write, a repeated id is a duplicate of the record before it.
	many := make([]event.Input, 20)
	for i := range many {
		many[i] = event.Input{ActivityID: fmt.Sprintf("b-%d", i%10), Activity: "called_tool"}
	}
	out, err := LogEvents(app, recent, many, d)
	if err != nil || len(app.payloads) != 11 {
		t.Fatalf("batch: %v, %d written, want 11", err, len(app.payloads))
	}
	for i, l := range out {
		if l.Duplicate != (i >= 10) || !l.TS.Equal(out[i%10].TS) {
			t.Fatalf("batch record %d: %+v (first %+v)", i, l, out[i%10])
		}
	}
}

func TestIdentityRequired(t *testing.T) {
	t.Parallel()
	_, err := NewMCPServer(MCPOptions{})
	if err == nil {
		t.Fatal("want an error without Appender and Identity")
	}
	_, err = TokenIdentity(context.Background(), &mcp.CallToolRequest{})
	if err == nil || !strings.Contains(err.Error(), "no verified token") {
		t.Fatalf("a request without a token has no customer: %v", err)
	}
	var ie *inputError
	if errors.As(err, &ie) {
		t.Fatal("not an input error")
	}
}

func TestLogInsight(t *testing.T) {
	t.Parallel()
	b := setupTools(t, "alice", spool.Options{})
	for _, v := range []any{"go", 42.5, true, map[string]any{"p50": 1, "p95": 9}} {
		res := b.call(t, "log_insight", map[string]any{"subject": "user", "metric": "prefers_language", "value": v})
		if res.IsError {
			t.Fatalf("value %v: %s", v, text(res))
		}
		sc := res.StructuredContent.(map[string]any)
		if sc["atom_id"] == "" || sc["verified"] != false || sc["duplicate"] != false {
			t.Fatalf("result = %v", sc)
		}
	}
	res := b.call(t, "log_insight", map[string]any{"subject": "project:activitybi", "metric": "build_seconds", "value": 35,
		"provenance_query_hash": "0123456789abcdef", "atom_id": "a-1"})
	if res.IsError {
		t.Fatal(text(res))
	}
	if dup := b.call(t, "log_insight", map[string]any{"subject": "project:activitybi", "metric": "build_seconds", "value": 35, "atom_id": "a-1"}); dup.StructuredContent.(map[string]any)["duplicate"] != true {
		t.Fatalf("same atom_id again must be a duplicate: %v", dup.StructuredContent)
	}
	recs := b.records(t)
	if len(recs["insight"]) != 5 || len(recs["event"]) != 0 {
		t.Fatalf("spool = %v", recs)
	}
	x, err := event.DecodeInsight([]byte(recs["insight"][4]))
	if err != nil {
		t.Fatal(err)
	}
	if x.Customer != "alice" || x.Subject != "project:activitybi" || string(x.Value) != "35" || x.Verified || x.ProvenanceQueryHash != "0123456789abcdef" || x.AtomID != "a-1" {
		t.Fatalf("stored insight = %+v", x)
	}
}

func TestLogInsightBadInput(t *testing.T) {
	t.Parallel()
	cases := map[string]struct {
		args any
		want []string
	}{
		"missing everything": {map[string]any{}, []string{"subject", "metric", "value"}},
		"null value":         {map[string]any{"subject": "user", "metric": "m", "value": nil}, []string{"value"}},
		"array value":        {map[string]any{"subject": "user", "metric": "m", "value": []int{1}}, []string{"value"}},
		"big object":         {map[string]any{"subject": "user", "metric": "m", "value": map[string]any{"x": strings.Repeat("y", 5000)}}, []string{"value"}},
		"bad metric":         {map[string]any{"subject": "user", "metric": "Prefers Language", "value": 1}, []string{"metric"}},
		"bad hash":           {map[string]any{"subject": "user", "metric": "m", "value": 1, "provenance_query_hash": "xyz"}, []string{"provenance_query_hash"}},
		"customer":           {map[string]any{"subject": "user", "metric": "m", "value": 1, "customer_id": "bob"}, []string{"customer_id: cannot be set"}},
		"unknown":            {map[string]any{"subject": "user", "metric": "m", "value": 1, "confidence": 0.9}, []string{`unknown field "confidence"`}},
		"subject type":       {map[string]any{"subject": 1, "metric": "m", "value": 1}, []string{"subject: must be a string"}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := setupTools(t, "alice", spool.Options{})
			res := b.call(t, "log_insight", tc.args)
			if !res.IsError {
				t.Fatalf("want a tool error, got %s", text(res))
			}
			for _, w := range tc.want {
				if !strings.Contains(text(res), w) {
					t.Errorf("error %q does not mention %q", text(res), w)
				}
			}
			if recs := b.records(t); len(recs) != 0 {
				t.Errorf("nothing may be written on bad input; spool has %v", recs)
			}
		})
	}
}

// connectInMemory connects a go-sdk client to s over in-memory transports;
// both ends close when the test ends.
func connectInMemory(t testing.TB, s *mcp.Server) *mcp.ClientSession {
	t.Helper()
	ctx := context.Background()
	st, ct := mcp.NewInMemoryTransports()
	ss, err := s.Connect(ctx, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ss.Close() })
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "test", Version: "1"}, nil).Connect(ctx, ct, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs
}

// TestEdgeReportLabelsBounded: an edge's metrics report is counted only for
// the tools this package serves and the known outcomes; anything else a
// process on the socket sends makes no new series.
func TestEdgeReportLabelsBounded(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m, err := NewToolMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	r := &EdgeReport{Calls: []ToolCallStat{{Tool: "log_event", Outcome: "ok", Micros: 10}, {Tool: "log_event", Outcome: "surprise"}}}
	for i := range 100 {
		r.Calls = append(r.Calls, ToolCallStat{Tool: fmt.Sprintf("made_up_tool_%c", 'a'+i%26), Outcome: "ok"})
	}
	m.record(r)
	if n := testutil.CollectAndCount(m.calls); n != 1 {
		t.Fatalf("%d call series after a report of made-up tools, want 1 (log_event ok)", n)
	}
}
