package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/activitybi/activitybi/internal/audit"
	"github.com/activitybi/activitybi/internal/cache"
	"github.com/activitybi/activitybi/internal/event"
	"github.com/activitybi/activitybi/internal/memory"
)

// ContextLoader returns a customer's materialized context for a scope: the
// core builds it from the warehouse, an edge asks the core.
type ContextLoader func(ctx context.Context, customer, scope string) (cache.Entry, error)

// Memory serves get_context: the cache tiers (in-process, then Redis when
// configured) in front of a loader.
type Memory struct {
	Cache *cache.Cache
	Load  ContextLoader
	// Seen, when set, is told the customer of every get_context served
	// here (over /mcp or to an edge over the socket): the core's store
	// keeps that customer's context refreshed (memory.Store.Touch).
	Seen func(customer string)
	// Reported, when set, receives the cache counters that edges report
	// with their tool metrics (the core's /metrics shows them with
	// process="edge").
	Reported *cache.Reported

	rc renderCache
}

// Get returns the context and which tier answered. The context is shared
// with other callers: it must not be modified.
func (m *Memory) Get(ctx context.Context, customer, scope string) (*memory.Context, cache.Source, error) {
	if m.Seen != nil {
		m.Seen(customer)
	}
	e, src, err := m.get(ctx, customer, scope)
	if err != nil {
		return nil, src, err
	}
	r, err := m.rc.decoded(customer, scope, e)
	if err != nil {
		return nil, src, err
	}
	return r.ctx, src, nil
}

// page returns one page of the context, as get_context shows it, with its
// JSON, and which tier answered.
func (m *Memory) page(ctx context.Context, customer, scope string, rr memory.RenderRequest) (encodedPage, cache.Source, error) {
	if m.Seen != nil {
		m.Seen(customer)
	}
	e, src, err := m.get(ctx, customer, scope)
	if err != nil {
		return encodedPage{}, src, err
	}
	r, err := m.rc.decoded(customer, scope, e)
	if err != nil {
		return encodedPage{}, src, err
	}
	p, err := r.page(rr)
	return p, src, err
}

// encodedPage is a rendered page with its JSON, encoded once when the page
// is rendered: a hot get_context sends the same several kilobytes many
// times, and encoding them again on every call cost more than the lookup.
type encodedPage struct {
	memory.Page
	json []byte
}

// renderCache keeps, per customer and scope, the context of the entry last
// served decoded, with the pages rendered from it. A hot get_context is an
// L1 hit of a few hundred nanoseconds; decoding the entry's JSON and
// rendering a page cost ~1 ms and ~0.6 ms for a customer with 10,000
// events, several times the MCP round trip itself. An entry is known by
// its version and as-of time (a build makes a new one), so the same
// context arriving from Redis is recognized too.
type renderCache struct {
	mu    sync.Mutex
	m     map[renderKey]*rendered
	bytes int
}

// Bounds of renderCache.
const (
	// maxRenderedBytes bounds the JSON size of the contexts kept decoded
	// (their decoded form is a few times that): an edge keeps its one
	// customer, the core the most recent of its /mcp customers.
	maxRenderedBytes = 8 << 20
	// maxPagesPerContext bounds the pages kept per context (distinct
	// topics, max_tokens and cursors asked for).
	maxPagesPerContext = 16
)

type renderKey struct{ customer, scope string }

type pageKey struct {
	topics    string
	maxTokens int
	cursor    string
	items     bool
}

type rendered struct {
	version int64
	asOf    time.Time
	size    int
	ctx     *memory.Context // shared, never modified (Render does not)

	mu    sync.Mutex
	pages map[pageKey]encodedPage
}

func (rc *renderCache) decoded(customer, scope string, e cache.Entry) (*rendered, error) {
	k := renderKey{customer, scope}
	rc.mu.Lock()
	r := rc.m[k]
	rc.mu.Unlock()
	if r != nil && r.version == e.Version && r.asOf.Equal(e.AsOf) {
		return r, nil
	}
	var c memory.Context
	if err := json.Unmarshal(e.Value, &c); err != nil {
		return nil, fmt.Errorf("cached context does not decode: %w", err)
	}
	c.Version, c.AsOf = e.Version, e.AsOf
	r = &rendered{version: e.Version, asOf: e.AsOf, size: len(e.Value), ctx: &c, pages: map[pageKey]encodedPage{}}
	if r.size > maxRenderedBytes {
		return r, nil // served once, not kept
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.m == nil {
		rc.m = map[renderKey]*rendered{}
	}
	if old := rc.m[k]; old != nil {
		rc.bytes -= old.size
	}
	for k2, old := range rc.m { // evict arbitrary others until it fits
		if rc.bytes+r.size <= maxRenderedBytes {
			break
		}
		delete(rc.m, k2)
		rc.bytes -= old.size
	}
	rc.m[k] = r
	rc.bytes += r.size
	return r, nil
}

// page renders rr, or returns the page rendered for the same request.
func (r *rendered) page(rr memory.RenderRequest) (encodedPage, error) {
	k := pageKey{topics: strings.Join(rr.Topics, "\x00"), maxTokens: rr.MaxTokens, cursor: rr.Cursor, items: rr.Items}
	r.mu.Lock()
	p, ok := r.pages[k]
	r.mu.Unlock()
	if ok {
		return p, nil
	}
	pg, err := memory.Render(r.ctx, rr)
	if err != nil {
		return encodedPage{}, err
	}
	js, err := json.Marshal(pg)
	if err != nil {
		return encodedPage{}, fmt.Errorf("context page does not encode: %w", err)
	}
	p = encodedPage{Page: pg, json: js}
	r.mu.Lock()
	if len(r.pages) < maxPagesPerContext {
		r.pages[k] = p
	}
	r.mu.Unlock()
	return p, nil
}

func (m *Memory) get(ctx context.Context, customer, scope string) (cache.Entry, cache.Source, error) {
	return m.Cache.Get(ctx, customer, scope, func(ctx context.Context) (cache.Entry, error) {
		return m.Load(ctx, customer, scope)
	})
}

// warmTimeout bounds one warm-up load: it runs in the background, and a
// core still starting (opening DuckDB, warming itself) may take a while.
const warmTimeout = 60 * time.Second

// Warm loads the customer's whole context (scope "") into the cache tiers,
// so that the first get_context is served from memory: an edge calls it
// once attached, the core for every customer it warmed.
func (m *Memory) Warm(ctx context.Context, customer string) (cache.Source, error) {
	ctx, cancel := context.WithTimeout(ctx, warmTimeout)
	defer cancel()
	_, src, err := m.get(ctx, customer, "")
	return src, err
}

// StoreLoader loads contexts through the core's memory store: the
// customer's context_cache row when fresh, else a build (memory.Store).
func StoreLoader(s *memory.Store) ContextLoader {
	return func(ctx context.Context, customer, scope string) (cache.Entry, error) {
		l, err := s.Load(ctx, customer, scope)
		if err != nil {
			return cache.Entry{}, err
		}
		return cache.Entry{Value: l.JSON, Version: l.Version, AsOf: l.AsOf}, nil
	}
}

// ContextRequest is the body of POST /v1/context on the core's socket.
type ContextRequest struct {
	Customer string `json:"customer"` // the socket is this user's: edges say whom they act for
	Scope    string `json:"scope"`
}

// ContextResponse carries a materialized context.
type ContextResponse struct {
	Context json.RawMessage `json:"context"`
	Version int64           `json:"version"`
	AsOf    time.Time       `json:"as_of"`
	Source  string          `json:"source"`
	// Stale is set when the core had no fresh context and answered with an
	// older one; StaleReason says why. An edge serves such an answer
	// marked stale and keeps it in no cache tier.
	Stale       bool   `json:"stale,omitempty"`
	StaleReason string `json:"stale_reason,omitempty"`
}

// maxContextRequest bounds a POST /v1/context body.
const maxContextRequest = 4 << 10

// contextHandler serves POST /v1/context on the socket (edges' loader).
func (s *Server) contextHandler(w http.ResponseWriter, r *http.Request) {
	if s.opts.Memory == nil {
		writeJSON(w, http.StatusServiceUnavailable, errBody("this core serves no memory"))
		return
	}
	var req ContextRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxContextRequest))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil || req.Customer == "" {
		writeJSON(w, http.StatusBadRequest, errBody("want {\"customer\": ..., \"scope\": ...}"))
		return
	}
	if s.opts.Memory.Seen != nil {
		s.opts.Memory.Seen(req.Customer)
	}
	e, src, err := s.opts.Memory.get(r.Context(), req.Customer, req.Scope)
	if err != nil {
		code := http.StatusServiceUnavailable
		if errors.Is(err, memory.ErrInvalidRequest) {
			code = http.StatusBadRequest
		}
		writeJSON(w, code, errBody(err.Error()))
		return
	}
	resp := ContextResponse{Context: e.Value, Version: e.Version, AsOf: e.AsOf, Source: src.String(), Stale: src.Stale}
	if src.Stale && src.Err != nil {
		resp.StaleReason = src.Err.Error()
	}
	writeJSON(w, http.StatusOK, resp)
}

// CoreContextLoader asks the core of dataDir for contexts (an edge's
// loader, behind its own cache).
func CoreContextLoader(dataDir string) ContextLoader {
	c := NewSocketClient(dataDir)
	return func(ctx context.Context, customer, scope string) (cache.Entry, error) {
		var resp ContextResponse
		ctx, cancel := context.WithTimeout(ctx, contextLoadTimeout)
		defer cancel()
		if err := c.do(ctx, http.MethodPost, "/v1/context", ContextRequest{Customer: customer, Scope: scope}, &resp); err != nil {
			var qe *QueryError
			if errors.As(err, &qe) { // 400: the request is wrong (unknown scope, ...)
				return cache.Entry{}, fmt.Errorf("%w: %s", memory.ErrInvalidRequest, qe.Msg)
			}
			return cache.Entry{}, fmt.Errorf("the core could not give the context: %w", err)
		}
		e := cache.Entry{Value: resp.Context, Version: resp.Version, AsOf: resp.AsOf}
		if resp.Stale {
			// Served, but cached nowhere: as fresh in this edge's L1 (and
			// in Redis for every process) it would outlive the fault that
			// made the core answer with it.
			reason := resp.StaleReason
			if reason == "" {
				reason = "the core had no fresh context"
			}
			return cache.Entry{}, &cache.StaleEntry{Entry: e, Err: errors.New(reason)}
		}
		return e, nil
	}
}

// contextLoadTimeout bounds one load from the core (the cold path's target
// is 25 ms; this is the give-up point, well under a client's tool timeout).
const contextLoadTimeout = 10 * time.Second

// ---- get_context

var getContextFields = []string{"scope", "topics", "max_tokens", "cursor", "items"}

func getContextTool() *mcp.Tool {
	return &mcp.Tool{
		Name:  "get_context",
		Title: "Recall context from earlier sessions",
		Description: `What activitybi remembers of this person's work with Claude: facts and preferences they asked you to remember, recent sessions (when, what was done, which tools, what failed), the latest value and trend of each insight, most-used tools and recent failures.
Call it at the start of a conversation, and whenever earlier work or the person's preferences matter. Optional scope narrows it to one project or workspace (a project name or working directory that events carry); topics picks sections (` + topicList() + `); max_tokens bounds the answer (default 2000, at most 20000); when the answer says it was truncated, call again with its next_cursor. The answer is text (also as the structured content's "text"); items=true adds every item's fields as structured data, for programs (about twice the size).
To remember something new, call log_insight with subject "user" (or "project:<name>").`,
		Annotations: &mcp.ToolAnnotations{Title: "Recall context", ReadOnlyHint: true, IdempotentHint: true, OpenWorldHint: ptr(false)},
		InputSchema: json.RawMessage(`{
  "type": "object",
  "properties": {
    "scope": {"type": "string", "maxLength": 255, "description": "a project or workspace to narrow to (e.g. the working directory); default: everything"},
    "topics": {"type": "array", "items": {"type": "string", "enum": ` + topicsJSON() + `}, "description": "sections to include; default all"},
    "max_tokens": {"type": "integer", "minimum": ` + fmt.Sprint(memory.MinMaxTokens) + `, "maximum": ` + fmt.Sprint(memory.HardMaxTokens) + `, "description": "size bound of the answer; default ` + fmt.Sprint(memory.DefaultMaxTokens) + `"},
    "cursor": {"type": "string", "description": "next_cursor of a previous answer, for the next page"},
    "items": {"type": "boolean", "description": "also return the page's items as structured data (for programs); default false: the text holds them"}
  },
  "additionalProperties": false
}`),
		OutputSchema: json.RawMessage(`{
  "type": "object",
  "properties": {
    "version": {"type": "integer"},
    "as_of": {"type": "string", "format": "date-time"},
    "stale": {"type": "boolean", "description": "true when no fresh context could be had and an older one is shown"},
    "truncated": {"type": "boolean"},
    "next_cursor": {"type": "string"},
    "text": {"type": "string", "description": "the page, as the text content shows it"},
    "items": {"type": "object", "description": "the page's items by section, when asked for with items=true"},
    "counts": {"type": "object"},
    "tokens": {"type": "integer", "description": "the answer's estimated size"},
    "source": {"type": "string", "description": "the cache tier that answered: l1, l2, load"}
  },
  "required": ["version", "as_of", "stale", "truncated", "text"]
}`),
	}
}

func topicList() string {
	s := ""
	for i, t := range memory.Topics() {
		if i > 0 {
			s += ", "
		}
		s += t
	}
	return s
}

func topicsJSON() string {
	b, _ := json.Marshal(memory.Topics())
	return string(b)
}

// GetContextResult is get_context's structured content: the page and
// whether it is stale.
type GetContextResult struct {
	memory.Page
	Stale  bool   `json:"stale"`
	Source string `json:"source"` // the tier that answered: l1, l2, load
}

// getContext is the tool; its text content is the page's compact rendering.
func (t *tools) getContext(ctx context.Context, req *mcp.CallToolRequest, customer string) (any, error) {
	m, ie := args(req.Params.Arguments, "get_context", getContextFields)
	if m == nil {
		return nil, ie
	}
	var rr memory.RenderRequest
	var scope string
	ie.str(m, "scope", &scope)
	ie.str(m, "cursor", &rr.Cursor)
	if v, ok := m["topics"]; ok && string(v) != "null" {
		if err := json.Unmarshal(v, &rr.Topics); err != nil {
			ie.problems = append(ie.problems, "topics: must be a list of strings from "+topicList()+", got "+jsonKind(v))
		}
	}
	if v, ok := m["max_tokens"]; ok && string(v) != "null" {
		if err := json.Unmarshal(v, &rr.MaxTokens); err != nil {
			ie.problems = append(ie.problems, fmt.Sprintf("max_tokens: must be a whole number from %d to %d, got %s", memory.MinMaxTokens, memory.HardMaxTokens, jsonKind(v)))
		}
	}
	if v, ok := m["items"]; ok && string(v) != "null" {
		if err := json.Unmarshal(v, &rr.Items); err != nil {
			ie.problems = append(ie.problems, "items: must be true or false, got "+jsonKind(v))
		}
	}
	if err := ie.err(); err != nil {
		return nil, err
	}
	start := time.Now()
	page, src, err := t.opts.Memory.page(ctx, customer, scope, rr)
	if err != nil {
		t.auditContext(ctx, req, customer, scope, 0, start, err)
		if errors.Is(err, memory.ErrInvalidRequest) {
			return nil, &inputError{problems: []string{err.Error()}}
		}
		return nil, fmt.Errorf("no context could be read (every cache tier and the core failed): %w", err)
	}
	t.auditContext(ctx, req, customer, scope, int64(len(page.Text)), start, nil)
	return encodedResult{text: page.Text, json: withResultFields(page.json, src)}, nil
}

// withResultFields is GetContextResult's JSON from the page's: the page's
// object with "stale" and "source" put first.
func withResultFields(page []byte, src cache.Source) []byte {
	head := `{"stale":` + strconv.FormatBool(src.Stale) + `,"source":` + strconv.Quote(string(src.Tier)) + `,`
	b := make([]byte, 0, len(head)+len(page))
	b = append(b, head...)
	return append(b, page[1:]...)
}

// auditContext records a get_context in the audit log (when this process
// has one): who read which customer's memory, for which scope, how much.
// It goes through Coalesce: get_context may be called hundreds of times a
// second, and one record per call cost the hot path more than the call
// (bench/memory.md), so identical successful reads after the
// first are counted into one summary record per audit.DefaultCoalesceWindow;
// refusals and errors are written one by one. A record that cannot be
// written is logged and counted by the log; the context is still served
// (it is the customer's own memory, read through the customer's own
// connection).
func (t *tools) auditContext(ctx context.Context, req *mcp.CallToolRequest, customer, scope string, size int64, start time.Time, err error) {
	if t.opts.Audit == nil {
		return
	}
	target := "scope:" + scope
	if scope == "" {
		target = "scope:(all)"
	}
	outcome, detail := event.OutcomeOK, ""
	if err != nil {
		outcome, detail = audit.Outcome(ctx, err), err.Error()
		if errors.Is(err, memory.ErrInvalidRequest) {
			outcome = event.OutcomeRefused
		}
	}
	_ = t.opts.Audit.Coalesce(event.Audit{Principal: principal(req), Customer: customer, Action: event.ActionGotContext,
		Target: target, Bytes: size, DurationMS: time.Since(start).Milliseconds(), Outcome: outcome, Detail: detail})
}

// encodedResult is a structured result already encoded, with its text
// content.
type encodedResult struct {
	text string
	json []byte
}

// textResult is a structured result whose text content is given rather
// than the JSON of the structure.
type textResult struct {
	text string
	v    any
}
