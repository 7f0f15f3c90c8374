package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"math"
	"math/bits"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/activitybi/activitybi/internal/audit"
	"github.com/activitybi/activitybi/internal/event"
	"github.com/activitybi/activitybi/internal/spool"
	"github.com/activitybi/activitybi/internal/telemetry"
	"github.com/activitybi/activitybi/internal/upload"
)

// Appender is where the logging tools put records: a spool writer. It must
// be safe for concurrent use.
//
// An implementation must not keep payload (or payloads and their
// elements) after it returns: the /v1/events intake reuses those buffers
// from a pool (spool.Writer copies them into its segment).
type Appender interface {
	Append(kind string, payload []byte) error
	AppendBatch(kind string, payloads [][]byte) error
}

// Identity returns the customer a tool call acts for. It comes from the
// transport, never from the tool's input: the configured identity on stdio,
// the bearer token's customer over HTTP.
type Identity func(ctx context.Context, req *mcp.CallToolRequest) (string, error)

// FixedIdentity is the stdio edge's identity: one configured customer.
func FixedIdentity(customer string) Identity {
	return func(context.Context, *mcp.CallToolRequest) (string, error) { return customer, nil }
}

// TokenIdentity takes the customer from the bearer token the HTTP transport
// verified (auth.TokenInfo.UserID, set by the token verifier).
func TokenIdentity(_ context.Context, req *mcp.CallToolRequest) (string, error) {
	if req.Extra == nil || req.Extra.TokenInfo == nil || req.Extra.TokenInfo.UserID == "" {
		return "", errors.New("this connection carries no verified token, so it has no customer")
	}
	return req.Extra.TokenInfo.UserID, nil
}

// MCPOptions configure the MCP server every surface shares (stdio edge,
// Streamable HTTP at /mcp).
type MCPOptions struct {
	Appender Appender // required
	Identity Identity // required
	// Source is the _source column of logged events; "" = "mcp".
	Source  string
	Version string
	// Recent remembers caller-given ids to answer "duplicate"; nil = a new
	// one of DefaultRecentIDs entries. Share one per process.
	Recent  *RecentIDs
	Metrics ToolObserver // nil = not counted
	Logger  *slog.Logger // nil = discard
	Now     func() time.Time
	// OnClient is told the client's name and version when a session is
	// initialised (the edge reports it to the core for status).
	OnClient func(nameVersion string)
	// Memory serves get_context; nil = the tool is not offered.
	Memory *Memory
	// Queries serves submit_query, get_query_status, get_query_result and
	// cancel_query, and checks log_insight's provenance_query_hash; nil =
	// those tools are not offered and a hash is stored unverified.
	Queries Queries
	// Audit records the reads this server serves itself (get_context);
	// nil = not recorded. The query engine and the card renderer record
	// their own.
	Audit *audit.Log
	// Cards serves render_card and the artifact resources; nil = not
	// offered.
	Cards Cards
	// Templates is what list_templates describes (the SafeSQL library);
	// nil = list_templates is not offered.
	Templates []TemplateInfo
}

// Instructions tell Claude when to log. They are sent once per session, so
// they stay short.
const Instructions = `activitybi keeps a durable, private activity stream of this person's work with Claude, so that later they (and you) can see usage, tools, latency and cost, and so that you can remember context across sessions.

Logging is fire-and-forget: log_event and log_insight return in about a millisecond and never need the user's attention. Do not mention logging to the user unless asked.

Call log_event with a verb_noun activity in past tense, lower snake case:
- started_session once at the start of a conversation (features: client, project or working directory if known);
- submitted_prompt when the user gives you a task (features: short topic, never the prompt text unless the user asked for it to be kept);
- called_tool after you use a tool of another server (features: tool, server, success, duration_ms if known);
- completed_response when you finish a substantial answer (features: model, input_tokens, output_tokens if known; cost as a negative revenue_impact in USD);
- any other verb_noun that describes what happened (e.g. created_file, ran_tests, fixed_bug).
Keep the same feature keys for every event of one activity. Never put secrets, credentials or personal data in features.

Call log_insight when you learn something worth keeping: a preference or fact the user asks you to remember (subject "user", e.g. metric "prefers_language", value "go"), a fact about a project (subject "project:<name>"), or a measured result (subject, metric, value). Later sessions receive these as memory.`

// Defaults of the tool layer.
const (
	// DefaultRecentIDs is how many caller-given ids a process remembers to
	// report duplicates (about 100 bytes each).
	DefaultRecentIDs = 100_000
	defaultSource    = "mcp"
)

// NewMCPServer returns the MCP server with the logging tools.
func NewMCPServer(opts MCPOptions) (*mcp.Server, error) {
	if opts.Appender == nil || opts.Identity == nil {
		return nil, errors.New("server: MCPOptions.Appender and Identity are required")
	}
	if opts.Source == "" {
		opts.Source = defaultSource
	}
	if !event.ValidSource(opts.Source) {
		return nil, fmt.Errorf("server: unknown event source %q", opts.Source)
	}
	if opts.Recent == nil {
		opts.Recent = NewRecentIDs(DefaultRecentIDs)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	t := &tools{opts: opts, log: telemetry.OrDiscard(opts.Logger)}
	so := &mcp.ServerOptions{Instructions: Instructions, Capabilities: &mcp.ServerCapabilities{}}
	if opts.OnClient != nil {
		so.InitializedHandler = func(_ context.Context, req *mcp.InitializedRequest) {
			if p := req.Session.InitializeParams(); p != nil && p.ClientInfo != nil {
				opts.OnClient(strings.TrimSpace(p.ClientInfo.Name + " " + p.ClientInfo.Version))
			}
		}
	}
	s := mcp.NewServer(&mcp.Implementation{Name: "activitybi", Title: "activitybi", Version: opts.Version}, so)
	t.add(s, logEventTool, t.logEvent)
	t.add(s, logInsightTool, t.logInsight)
	if opts.Memory != nil {
		t.add(s, getContextTool(), t.getContext)
	}
	if opts.Templates != nil {
		t.add(s, listTemplatesTool(), t.listTemplates)
	}
	if opts.Queries != nil {
		t.add(s, submitQueryTool(), t.submitQuery)
		t.add(s, getQueryStatusTool(), t.getQueryStatus)
		t.add(s, getQueryResultTool(), t.getQueryResult)
		t.add(s, cancelQueryTool(), t.cancelQuery)
	}
	if opts.Cards != nil {
		t.add(s, renderCardTool(), t.renderCard)
		t.addArtifactResources(s)
	}
	return s, nil
}

type tools struct {
	opts MCPOptions
	log  *slog.Logger
}

// toolFunc handles one call: it returns the structured result, or an error
// whose message goes to Claude as a tool error (IsError) — bad input,
// backpressure — never as a protocol error.
type toolFunc func(ctx context.Context, req *mcp.CallToolRequest, customer string) (any, error)

// toolNames are the tools this package serves. An edge's metrics report
// (POST /v1/edges/metrics) is counted only for these, so its labels stay
// bounded whatever a process on the socket sends; add panics on a tool
// missing here, so a new tool fails every test that registers it until it
// is listed.
var toolNames = map[string]bool{
	"log_event": true, "log_insight": true, "get_context": true, "list_templates": true,
	"submit_query": true, "get_query_status": true, "get_query_result": true, "cancel_query": true,
	"render_card": true,
}

func (t *tools) add(s *mcp.Server, tool *mcp.Tool, f toolFunc) {
	name := tool.Name
	if !toolNames[name] {
		panic("server: tool " + name + " is not in toolNames")
	}
	s.AddTool(tool, func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		start := time.Now()
		res, outcome := t.call(ctx, req, name, f)
		if t.opts.Metrics != nil {
			t.opts.Metrics.ObserveTool(name, outcome, time.Since(start))
		}
		return res, nil
	})
}

func (t *tools) call(ctx context.Context, req *mcp.CallToolRequest, name string, f toolFunc) (*mcp.CallToolResult, string) {
	customer, err := t.opts.Identity(ctx, req)
	if err != nil {
		return toolError(name + ": " + err.Error()), "unauthenticated"
	}
	out, err := f(ctx, req, customer)
	if err != nil {
		outcome := "error"
		switch {
		case event.IsValidation(err) || errors.Is(err, errBadInput):
			outcome = "invalid"
		case errors.Is(err, spool.ErrBackpressure):
			outcome = "backpressure"
		default:
			t.log.Error("tool failed", "tool", name, "err", err)
		}
		return toolError(name + ": " + err.Error()), outcome
	}
	var txt string
	var content []mcp.Content
	switch r := out.(type) {
	case encodedResult:
		return &mcp.CallToolResult{
			Content:           []mcp.Content{&mcp.TextContent{Text: r.text}},
			StructuredContent: json.RawMessage(r.json),
		}, "ok"
	case textResult:
		out, txt = r.v, r.text
	case richResult:
		out, content = r.v, r.content
	}
	b, err := json.Marshal(out)
	if err != nil {
		return toolError(name + ": " + err.Error()), "error"
	}
	if content != nil {
		return &mcp.CallToolResult{Content: content, StructuredContent: json.RawMessage(b)}, "ok"
	}
	if txt == "" {
		txt = string(b)
	}
	return &mcp.CallToolResult{
		Content:           []mcp.Content{&mcp.TextContent{Text: txt}},
		StructuredContent: json.RawMessage(b),
	}, "ok"
}

func toolError(msg string) *mcp.CallToolResult {
	return &mcp.CallToolResult{IsError: true, Content: []mcp.Content{&mcp.TextContent{Text: msg}}}
}

// errBadInput marks input errors found before event validation.
var errBadInput = errors.New("invalid input")

// inputError lists every problem with a tool's arguments at once.
type inputError struct{ problems []string }

func (e *inputError) Error() string        { return "invalid input: " + strings.Join(e.problems, "; ") }
func (e *inputError) Is(target error) bool { return target == errBadInput }

// args decodes a tool's arguments: a JSON object whose keys must all be in
// accepted. A customer key gets its own explanation: the customer is the
// connection's identity.
func args(raw json.RawMessage, tool string, accepted []string) (map[string]json.RawMessage, *inputError) {
	ie := &inputError{}
	m := map[string]json.RawMessage{}
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && !bytes.Equal(raw, []byte("null")) {
		if raw[0] != '{' {
			ie.problems = append(ie.problems, "arguments must be a JSON object")
			return nil, ie
		}
		if err := json.Unmarshal(raw, &m); err != nil {
			ie.problems = append(ie.problems, "arguments are not valid JSON: "+err.Error())
			return nil, ie
		}
	}
	var unknown []string
	for k := range m {
		switch {
		case k == "customer" || k == "customer_id":
			ie.problems = append(ie.problems, k+": cannot be set by a tool call; everything logged belongs to the identity of this connection")
		case !contains(accepted, k):
			unknown = append(unknown, k)
		}
	}
	sort.Strings(unknown)
	for _, k := range unknown {
		ie.problems = append(ie.problems, fmt.Sprintf("unknown field %q (%s accepts %s)", k, tool, strings.Join(accepted, ", ")))
	}
	return m, ie
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (e *inputError) str(m map[string]json.RawMessage, key string, dst *string) {
	v, ok := m[key]
	if !ok || string(v) == "null" {
		return
	}
	if err := json.Unmarshal(v, dst); err != nil {
		e.problems = append(e.problems, key+": must be a string, got "+jsonKind(v))
	}
}

func (e *inputError) tsField(m map[string]json.RawMessage, key string) *time.Time {
	var s string
	if e.str(m, key, &s); s == "" {
		return nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		e.problems = append(e.problems, key+": must be an RFC 3339 time such as 2026-11-26T09:30:00Z, got "+fmt.Sprintf("%q", s))
		return nil
	}
	return &t
}

func (e *inputError) err() error {
	if len(e.problems) == 0 {
		return nil
	}
	return e
}

func jsonKind(v json.RawMessage) string {
	v = bytes.TrimSpace(v)
	if len(v) == 0 {
		return "nothing"
	}
	switch v[0] {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	default:
		return "a number"
	}
}

// ---- log_event

var logEventFields = []string{"activity", "features", "ts", "activity_id", "anonymous_customer_id", "revenue_impact", "link"}

var logEventTool = &mcp.Tool{
	Name:  "log_event",
	Title: "Log an activity",
	Description: `Record one activity in this person's activitybi stream (ActivitySchema v2.0). Returns at once with the activity_id; the event is durable when this returns and reaches the warehouse within about a second.
activity is a past-tense verb_noun in lower snake case (called_tool, submitted_prompt, completed_response, started_session, or your own such as ran_tests). features is a flat JSON object of what describes this activity (keep the same keys for every event of one activity; no secrets). Give activity_id only to make retries safe: the same id is stored once.`,
	Annotations: &mcp.ToolAnnotations{Title: "Log an activity", ReadOnlyHint: false, DestructiveHint: ptr(false),
		IdempotentHint: false, OpenWorldHint: ptr(false)},
	InputSchema: json.RawMessage(`{
  "type": "object",
  "properties": {
    "activity": {"type": "string", "pattern": "^[a-z][a-z0-9]*(_[a-z0-9]+)+$", "maxLength": 255, "description": "verb_noun in lower snake case, e.g. called_tool"},
    "features": {"type": "object", "description": "flat object of this activity's features (<= 64 KiB), e.g. {\"tool\":\"Bash\",\"duration_ms\":120,\"success\":true}"},
    "ts": {"type": "string", "format": "date-time", "description": "when it happened (RFC 3339); default now; at most 5 minutes in the future"},
    "activity_id": {"type": "string", "maxLength": 255, "description": "idempotency key: an event with an id already stored for this person is not stored again; default a new ULID"},
    "anonymous_customer_id": {"type": "string", "maxLength": 255, "description": "an anonymous identifier of whom the activity is about, if not this person"},
    "revenue_impact": {"type": "number", "description": "money in USD; costs are negative (e.g. -0.0123 for an API call)"},
    "link": {"type": "string", "maxLength": 255, "description": "an http(s) URL related to the activity"}
  },
  "required": ["activity"],
  "additionalProperties": false
}`),
	OutputSchema: json.RawMessage(`{
  "type": "object",
  "properties": {
    "activity_id": {"type": "string"},
    "ts": {"type": "string", "format": "date-time"},
    "duplicate": {"type": "boolean", "description": "true when this process had already logged an event with this activity_id; nothing new was written"}
  },
  "required": ["activity_id", "ts", "duplicate"]
}`),
}

// LogEventResult is log_event's structured content.
type LogEventResult struct {
	ActivityID string    `json:"activity_id"`
	TS         time.Time `json:"ts"`
	Duplicate  bool      `json:"duplicate"`
}

func (t *tools) logEvent(_ context.Context, req *mcp.CallToolRequest, customer string) (any, error) {
	m, ie := args(req.Params.Arguments, "log_event", logEventFields)
	if m == nil {
		return nil, ie
	}
	var in event.Input
	ie.str(m, "activity", &in.Activity)
	if v, ok := m["features"]; ok && string(v) != "null" {
		if jsonKind(v) != "an object" {
			ie.problems = append(ie.problems, "features: must be a JSON object such as {\"tool\":\"Bash\"}, got "+jsonKind(v))
		} else {
			in.Features = v
		}
	}
	in.TS = ie.tsField(m, "ts")
	ie.str(m, "activity_id", &in.ActivityID)
	ie.str(m, "anonymous_customer_id", &in.AnonymousCustomerID)
	ie.str(m, "link", &in.Link)
	if v, ok := m["revenue_impact"]; ok && string(v) != "null" {
		var f float64
		if err := json.Unmarshal(v, &f); err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			ie.problems = append(ie.problems, "revenue_impact: must be a number (USD; costs negative), got "+jsonKind(v))
		} else {
			in.RevenueImpact = &f
		}
	}
	if in.Activity == "" && len(ie.problems) == 0 {
		if _, ok := m["activity"]; !ok {
			ie.problems = append(ie.problems, "activity: required, a verb_noun such as called_tool")
		}
	}
	d := event.Defaults{Customer: customer, Source: t.opts.Source, Now: t.opts.Now}
	if err := ie.err(); err != nil {
		// Report the rules the well-typed fields break too, all at once.
		in.Customer = customer
		var ve *event.ValidationError
		if _, nerr := event.Normalize(in, d); errors.As(nerr, &ve) {
			for _, fe := range ve.Errs {
				ie.problems = append(ie.problems, fe.Error())
			}
		}
		return nil, ie
	}
	res, err := LogEvents(t.opts.Appender, t.opts.Recent, []event.Input{in}, d)
	if err != nil {
		return nil, err
	}
	r := res[0]
	if r.Err != nil {
		return nil, r.Err
	}
	return LogEventResult{ActivityID: r.ID, TS: r.TS, Duplicate: r.Duplicate}, nil
}

// Logged is the outcome of one record given to LogEvents or LogInsights.
type Logged struct {
	ID        string
	TS        time.Time
	Duplicate bool  // a caller-given id this process had already logged
	Err       error // validation error: this record was not logged
}

// LogEvents normalises ins for one customer and appends the valid, new ones
// to the spool in one write: all of them or, on an append error
// (backpressure, a failed disk), none — then the error is returned and no
// record is logged. Duplicates of caller-given ids this process already
// logged are reported and not written again.
func LogEvents(app Appender, recent *RecentIDs, ins []event.Input, d event.Defaults) ([]Logged, error) {
	return logRecords(app, recent, upload.KindEvent, d.Customer, len(ins), func(i int) (record, error) {
		e, given, err := normalizeEvent(ins[i], d)
		if err != nil {
			return record{}, err
		}
		b, err := event.Marshal(&e)
		return record{id: e.ActivityID, ts: e.TS, given: given, payload: b}, err
	})
}

// normalizeEvent checks and normalises one input of LogEvents (and of the
// /v1/events batch path); given says the caller chose its id.
func normalizeEvent(in event.Input, d event.Defaults) (e event.Event, given bool, err error) {
	if in.Customer != "" {
		return e, false, &inputError{problems: []string{"customer: cannot be set; it is the identity of this connection"}}
	}
	// The customer is always the connection's identity, also for events
	// about an anonymous visitor: it is the tenant every query is isolated
	// by.
	in.Customer = d.Customer
	e, err = event.Normalize(in, d)
	return e, in.ActivityID != "", err
}

// record is one normalised record, encoded for the spool.
type record struct {
	id      string
	ts      time.Time
	given   bool // the caller chose the id: remember it to answer duplicates
	payload []byte
}

// logRecords appends the records norm makes of inputs 0..n-1 in one write,
// as LogEvents describes; kind is the spool record kind.
func logRecords(app Appender, recent *RecentIDs, kind, customer string, n int, norm func(i int) (record, error)) ([]Logged, error) {
	out := make([]Logged, n)
	payloads := make([][]byte, 0, n)
	// A record is answered "duplicate" only when the record it repeats is
	// known to be written: by an earlier write of this process, or earlier
	// in this one, which writes all its records or none. The ids of this
	// write are remembered once it succeeds, never before: a retry that
	// arrived while the first write was still under way, and was told
	// "duplicate", would be lost if that write then failed. Two writes of
	// the same id at once both go to the spool; the warehouse keeps one.
	var written []record       // caller-given ids of this write
	var inWrite map[string]int // their index in written (a write of several records)
	for i := range n {
		r, err := norm(i)
		if err != nil {
			out[i].Err = err
			continue
		}
		out[i].ID, out[i].TS = r.id, r.ts
		if r.given {
			// The answer carries the ts of the record that was written,
			// which the warehouse keeps, not the retry's.
			if first, ok := recent.Seen(kind, customer, r.id); ok {
				out[i].Duplicate, out[i].TS = true, first
				continue
			}
			if j, ok := inWrite[r.id]; ok {
				out[i].Duplicate, out[i].TS = true, written[j].ts
				continue
			}
			if n > 1 {
				if inWrite == nil {
					inWrite = make(map[string]int)
				}
				inWrite[r.id] = len(written)
			}
			written = append(written, record{id: r.id, ts: r.ts})
		}
		payloads = append(payloads, r.payload)
	}
	if len(payloads) == 0 {
		return out, nil
	}
	var err error
	if len(payloads) == 1 {
		err = app.Append(kind, payloads[0])
	} else {
		err = app.AppendBatch(kind, payloads)
	}
	if err != nil {
		return nil, fmt.Errorf("nothing was logged: %w", err)
	}
	for _, w := range written {
		recent.Add(kind, customer, w.id, w.ts)
	}
	return out, nil
}

func ptr[T any](v T) *T { return &v }

// ---- RecentIDs

// RecentIDs remembers the last N caller-given ids so that a retry is
// answered "duplicate" without writing it again. It is a hint for the
// caller: the warehouse's primary key is what makes a retry harmless.
//
// The ids live in a ring; a map from a 64-bit hash of (kind, customer, id)
// to the ring slot finds them. A match is confirmed against the slot's full
// key, so two ids whose hashes collide are never taken for each other (a
// false "duplicate" would drop an event); the later one takes the hash's
// map entry and the earlier is forgotten early, which only weakens the
// hint. Keying the map by a number rather than the id string keeps a
// lookup to the map's own memory: at 100,000 ids the string-keyed map cost
// about 1.8 µs an id in a busy core, mostly cache misses on the key strings
// (bench/mcp.md, "Session 8").
type RecentIDs struct {
	mu   sync.Mutex
	seed maphash.Seed
	// hashKey, when set (tests), replaces the seeded hash.
	hashKey func(kind, customer, id string) uint64
	set     map[uint64]int32 // hash of the key -> its slot in ring
	ring    []recentKey      // grows to max, then wraps
	max     int
	next    int
}

// recentKey is one remembered id, with its hash and the ts of the record
// that was written (Unix microseconds, the precision of an event's ts).
type recentKey struct {
	h                  uint64
	ts                 int64
	kind, customer, id string
}

// NewRecentIDs remembers up to n ids (1 <= n <= 2^31-1). Memory grows with
// use, not with n: most edges see few caller-given ids.
func NewRecentIDs(n int) *RecentIDs {
	n = min(max(n, 1), math.MaxInt32)
	return &RecentIDs{seed: maphash.MakeSeed(), set: map[uint64]int32{}, max: n}
}

// hash need not tell every two keys apart: Seen and Add compare the full
// key before they act on a match.
func (r *RecentIDs) hash(kind, customer, id string) uint64 {
	if r.hashKey != nil {
		return r.hashKey(kind, customer, id)
	}
	// Three one-shot hashes cost less than one streamed through
	// maphash.Hash, which copies its input into a buffer.
	h := maphash.String(r.seed, id)
	h ^= bits.RotateLeft64(maphash.String(r.seed, customer), 21)
	return h ^ bits.RotateLeft64(maphash.String(r.seed, kind), 42)
}

// Seen reports whether the id of kind and customer is remembered as
// written, and the ts it was written with.
func (r *RecentIDs) Seen(kind, customer, id string) (first time.Time, ok bool) {
	h := r.hash(kind, customer, id)
	r.mu.Lock()
	defer r.mu.Unlock()
	if k := r.lookupLocked(h, kind, customer, id); k != nil {
		return time.UnixMicro(k.ts).UTC(), true
	}
	return time.Time{}, false
}

// lookupLocked returns the remembered key (kind, customer, id) with hash
// h, or nil; r.mu is held.
func (r *RecentIDs) lookupLocked(h uint64, kind, customer, id string) *recentKey {
	if slot, ok := r.set[h]; ok {
		if k := &r.ring[slot]; k.id == id && k.customer == customer && k.kind == kind {
			return k
		}
	}
	return nil
}

// Add remembers the id of kind and customer as written with ts. An id
// already remembered keeps its first ts.
func (r *RecentIDs) Add(kind, customer, id string, ts time.Time) {
	h := r.hash(kind, customer, id)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.lookupLocked(h, kind, customer, id) != nil {
		return
	}
	key := recentKey{h: h, ts: ts.UnixMicro(), kind: kind, customer: customer, id: id}
	var slot int
	if len(r.ring) < r.max {
		slot = len(r.ring)
		r.ring = append(r.ring, key)
	} else {
		slot = r.next
		// The evicted id's map entry goes only if it still points here: a
		// later id with the same hash owns it otherwise.
		if old := r.ring[slot].h; r.set[old] == int32(slot) {
			delete(r.set, old)
		}
		r.ring[slot] = key
		r.next = (r.next + 1) % r.max
	}
	r.set[h] = int32(slot)
}

// ---- metrics

// ToolObserver is told the outcome and duration of every tool call.
type ToolObserver interface {
	ObserveTool(tool, outcome string, d time.Duration)
}

// ToolMetrics count tool calls per tool, outcome and surface (http: /mcp on
// this core; stdio: calls edges made and reported to this core), with
// latency.
type ToolMetrics struct {
	calls   *prometheus.CounterVec
	dur     *prometheus.HistogramVec
	dropped prometheus.Counter
}

// NewToolMetrics registers the tool metrics with reg.
func NewToolMetrics(reg prometheus.Registerer) (*ToolMetrics, error) {
	m := &ToolMetrics{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "activitybi_mcp_tool_calls_total",
			Help: "MCP tool calls by tool, outcome (ok, invalid, backpressure, unauthenticated, error) and surface (http, stdio)."},
			[]string{"tool", "outcome", "surface"}),
		dur: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "activitybi_mcp_tool_duration_seconds",
			Help:    "Time inside the tool handler, from arguments to result, by tool and surface.",
			Buckets: prometheus.ExponentialBuckets(0.00001, 2.5, 14)}, []string{"tool", "surface"}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "activitybi_edge_tool_observations_dropped_total",
			Help: "Tool-call observations edges dropped because they could not report them for too long (their buffer is bounded)."}),
	}
	for _, c := range []prometheus.Collector{m.calls, m.dur, m.dropped} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// ObserveTool counts a call served over HTTP by this process.
func (m *ToolMetrics) ObserveTool(tool, outcome string, d time.Duration) {
	m.observe(tool, outcome, "http", d)
}

func (m *ToolMetrics) observe(tool, outcome, surface string, d time.Duration) {
	if m == nil {
		return
	}
	m.calls.WithLabelValues(tool, outcome, surface).Inc()
	m.dur.WithLabelValues(tool, surface).Observe(d.Seconds())
}

// EdgeReport is what an edge sends to POST /v1/edges/metrics: the tool calls
// it served since its last report.
type EdgeReport struct {
	PID     int            `json:"pid"`
	Calls   []ToolCallStat `json:"calls"`
	Dropped int64          `json:"dropped"`
}

// ToolCallStat is one tool call.
type ToolCallStat struct {
	Tool    string `json:"tool"`
	Outcome string `json:"outcome"`
	Micros  int64  `json:"us"`
}

// maxEdgeBuffer bounds the calls an edge keeps while it cannot report them
// (the core is down): about 2.4 MB; older ones are dropped and counted.
const maxEdgeBuffer = 100_000

// EdgeMetrics buffers an edge's tool calls until they are reported to the
// core, which owns the only /metrics endpoint.
type EdgeMetrics struct {
	mu      sync.Mutex
	calls   []ToolCallStat
	dropped int64
}

// ObserveTool buffers one call.
func (e *EdgeMetrics) ObserveTool(tool, outcome string, d time.Duration) {
	e.mu.Lock()
	if len(e.calls) >= maxEdgeBuffer {
		n := len(e.calls) / 10
		e.calls = append(e.calls[:0], e.calls[n:]...)
		e.dropped += int64(n)
	}
	e.calls = append(e.calls, ToolCallStat{Tool: tool, Outcome: outcome, Micros: d.Microseconds()})
	e.mu.Unlock()
}

// take returns and clears what is buffered.
func (e *EdgeMetrics) take() ([]ToolCallStat, int64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	c, d := e.calls, e.dropped
	e.calls, e.dropped = nil, 0
	return c, d
}

// putBack returns a report that could not be delivered to the buffer.
func (e *EdgeMetrics) putBack(c []ToolCallStat, dropped int64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.calls = append(c, e.calls...)
	e.dropped += dropped
	if over := len(e.calls) - maxEdgeBuffer; over > 0 {
		e.calls = e.calls[over:]
		e.dropped += int64(over)
	}
}

var knownOutcomes = map[string]bool{"ok": true, "invalid": true, "backpressure": true, "unauthenticated": true, "error": true}

// record adds an edge's report (surface stdio).
func (m *ToolMetrics) record(r *EdgeReport) {
	if m == nil {
		return
	}
	for _, c := range r.Calls {
		// Labels stay bounded whatever a report says.
		if !knownOutcomes[c.Outcome] || !toolNames[c.Tool] {
			continue
		}
		m.observe(c.Tool, c.Outcome, "stdio", time.Duration(c.Micros)*time.Microsecond)
	}
	if r.Dropped > 0 {
		m.dropped.Add(float64(r.Dropped))
	}
}
