package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/activitybi/activitybi/internal/artifact"
	"github.com/activitybi/activitybi/internal/query"
)

// Queries is what the query tools need: the core's ticket engine
// (*query.Engine) in the core, the core over its socket in an edge
// (SocketQueries). Every method acts for the customer the transport gave;
// a ticket of another customer is query.ErrNotFound.
type Queries interface {
	Submit(ctx context.Context, customer, principal string, req query.Request) (*query.Ticket, error)
	Wait(ctx context.Context, customer, id string, max time.Duration, progress func(*query.Ticket)) (*query.Ticket, error)
	Result(ctx context.Context, customer, id string, offset, limit int) (*query.Page, error)
	Cancel(ctx context.Context, customer, id string) (*query.Ticket, error)
	HashKnown(ctx context.Context, customer, hash string) (bool, error)
	AddInsight(customer, hash, atomID string)
}

// Limits of the query tools.
const (
	// maxWait is the longest a tool call waits for a ticket: well under
	// Claude Desktop's ~60 s tool timeout, so a slow query comes back as a
	// ticket that is still running rather than as a timed-out call.
	maxWait = 50 * time.Second
	// previewRows is how many rows of a finished result the status carries
	// (the rest through get_query_result), within previewBytes of JSON.
	previewRows  = 20
	previewBytes = 8 << 10
	// progressPoll is how often an edge asks the core about a ticket it is
	// waiting for (the core's own wait is woken by the engine).
	progressPoll = 250 * time.Millisecond
)

// ---- tools

var submitQueryFields = []string{"template", "params", "dataset", "wait_seconds"}

func submitQueryTool() *mcp.Tool {
	return &mcp.Tool{
		Name:  "submit_query",
		Title: "Ask a question about usage (async)",
		Description: `Start an analytical query over this person's activity stream and get a ticket back at once. You never write SQL: name a template from list_templates with its params, or give an ActivitySchema dataset spec.
Give wait_seconds (up to 50) to wait for a fast answer in the same call; otherwise poll get_query_status (which can also wait). A finished ticket carries the first rows and its query_hash: cite that hash as provenance_query_hash when you log_insight a number you read from it.
A dataset spec: {"cohort": {"activity": "started_session", "occurrence": "all|first|last|nth", "nth": 2, "from": RFC3339, "to": RFC3339, "features": ["project"], "filters": [{"feature": "client", "op": "eq", "value": "claude-code"}]}, "append": [{"activity": "called_tool", "relationship": "first_after|last_before|first_in_between|aggregate_in_between|...", "features": ["tool"], "aggregate": "count|sum|avg|min|max", "of": "duration_ms"}], "limit": 1000}.
Limits: a per-person budget of queries per minute, concurrent queries and engine seconds per day; a timeout per query; results over 1 MiB are computed on a sample and say so.`,
		Annotations: &mcp.ToolAnnotations{Title: "Ask a question about usage", ReadOnlyHint: true, IdempotentHint: false, OpenWorldHint: ptr(false)},
		InputSchema: json.RawMessage(`{
  "type": "object",
  "properties": {
    "template": {"type": "string", "maxLength": 64, "description": "a template name from list_templates"},
    "params": {"type": "object", "description": "the template's parameters (see list_templates); omitted ones take their defaults"},
    "dataset": {"type": "object", "description": "an ActivitySchema dataset spec, instead of a template"},
    "wait_seconds": {"type": "number", "minimum": 0, "maximum": 50, "description": "wait this long for the answer (default 0: return the ticket at once)"}
  },
  "additionalProperties": false
}`),
		OutputSchema: ticketSchema,
	}
}

var ticketFields = []string{"ticket", "wait_seconds"}

func getQueryStatusTool() *mcp.Tool {
	return &mcp.Tool{
		Name:  "get_query_status",
		Title: "Check a query ticket",
		Description: `The state of a ticket from submit_query: queued, running (with progress and stage), succeeded (with the first rows and where the rest is), failed (with the reason), cancelled or expired.
wait_seconds (up to 50) waits for the ticket to finish; progress notifications are sent meanwhile when you gave a progress token.`,
		Annotations: &mcp.ToolAnnotations{Title: "Check a query ticket", ReadOnlyHint: true, IdempotentHint: true, OpenWorldHint: ptr(false)},
		InputSchema: json.RawMessage(`{
  "type": "object",
  "properties": {
    "ticket": {"type": "string", "maxLength": 64, "description": "the ticket id from submit_query"},
    "wait_seconds": {"type": "number", "minimum": 0, "maximum": 50, "description": "wait this long for the ticket to finish (default 0)"}
  },
  "required": ["ticket"],
  "additionalProperties": false
}`),
		OutputSchema: ticketSchema,
	}
}

var resultFields = []string{"ticket", "offset", "limit"}

func getQueryResultTool() *mcp.Tool {
	return &mcp.Tool{
		Name:        "get_query_result",
		Title:       "Read a query result",
		Description: `Rows of a succeeded ticket, a page at a time (pages stay well under the tool-output limit). Start at offset 0 (or where get_query_status's preview ended) and follow next_offset until it is null.`,
		Annotations: &mcp.ToolAnnotations{Title: "Read a query result", ReadOnlyHint: true, IdempotentHint: true, OpenWorldHint: ptr(false)},
		InputSchema: json.RawMessage(`{
  "type": "object",
  "properties": {
    "ticket": {"type": "string", "maxLength": 64},
    "offset": {"type": "integer", "minimum": 0, "description": "first row (default 0)"},
    "limit": {"type": "integer", "minimum": 1, "maximum": 1000, "description": "most rows (default 200; a page also stops at about 64 KB)"}
  },
  "required": ["ticket"],
  "additionalProperties": false
}`),
		OutputSchema: json.RawMessage(`{
  "type": "object",
  "properties": {
    "ticket": {"type": "string"},
    "columns": {"type": "array", "items": {"type": "object"}},
    "rows": {"type": "array", "items": {"type": "array"}},
    "offset": {"type": "integer"},
    "total": {"type": "integer"},
    "next_offset": {"type": ["integer", "null"]},
    "sampled": {"type": "boolean"},
    "sample_rate": {"type": "number"},
    "truncated": {"type": "boolean"}
  },
  "required": ["ticket", "columns", "rows", "offset", "total"]
}`),
	}
}

var cancelFields = []string{"ticket"}

func cancelQueryTool() *mcp.Tool {
	return &mcp.Tool{
		Name:        "cancel_query",
		Title:       "Cancel a query ticket",
		Description: `Cancel a queued or running ticket. Cancelling a finished ticket changes nothing and returns its state.`,
		Annotations: &mcp.ToolAnnotations{Title: "Cancel a query ticket", ReadOnlyHint: false, DestructiveHint: ptr(false), IdempotentHint: true, OpenWorldHint: ptr(false)},
		InputSchema: json.RawMessage(`{
  "type": "object",
  "properties": {"ticket": {"type": "string", "maxLength": 64}},
  "required": ["ticket"],
  "additionalProperties": false
}`),
		OutputSchema: ticketSchema,
	}
}

var ticketSchema = json.RawMessage(`{
  "type": "object",
  "properties": {
    "ticket": {"type": "string"},
    "state": {"type": "string", "enum": ["queued", "running", "succeeded", "failed", "cancelled", "expired"]},
    "progress": {"type": ["number", "null"], "description": "percent done: 0 queued, 100 succeeded; while running, estimated from earlier runs of the same question or template (progress_estimated), null when nothing like it ran before"},
    "progress_estimated": {"type": "boolean", "description": "progress is an estimate from earlier runs' times"},
    "stage": {"type": "string"},
    "query_hash": {"type": "string", "description": "cite as provenance_query_hash in log_insight"},
    "name": {"type": "string"},
    "error": {"type": "string"},
    "created_at": {"type": "string", "format": "date-time"},
    "started_at": {"type": "string", "format": "date-time", "description": "when it began to run (after waiting in the queue)"},
    "finished_at": {"type": "string", "format": "date-time"},
    "expires_at": {"type": "string", "format": "date-time"},
    "rows": {"type": "integer"},
    "bytes": {"type": "integer"},
    "sampled": {"type": "boolean"},
    "sample_rate": {"type": "number"},
    "truncated": {"type": "boolean"},
    "insights": {"type": "array", "items": {"type": "string"}},
    "preview": {"type": "object", "description": "the first rows of a succeeded ticket"},
    "next": {"type": "string", "description": "what to call for the rest"},
    "result_uri": {"type": "string", "description": "the whole result file (NDJSON: a header line, then a JSON array per row), readable with resources/read"}
  },
  "required": ["ticket", "state", "query_hash"]
}`)

// TicketView is the structured content of the ticket tools.
type TicketView struct {
	Ticket     string     `json:"ticket"`
	State      string     `json:"state"`
	Progress   *float64   `json:"progress"`
	Estimated  bool       `json:"progress_estimated,omitempty"`
	Stage      string     `json:"stage,omitempty"`
	QueryHash  string     `json:"query_hash"`
	Name       string     `json:"name,omitempty"`
	Error      string     `json:"error,omitempty"`
	CreatedAt  time.Time  `json:"created_at"`
	StartedAt  *time.Time `json:"started_at,omitempty"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
	ExpiresAt  *time.Time `json:"expires_at,omitempty"`
	Rows       int64      `json:"rows"`
	Bytes      int64      `json:"bytes"`
	Sampled    bool       `json:"sampled"`
	SampleRate float64    `json:"sample_rate,omitempty"`
	Truncated  bool       `json:"truncated,omitempty"`
	Insights   []string   `json:"insights,omitempty"`
	Preview    *PageView  `json:"preview,omitempty"`
	Next       string     `json:"next,omitempty"`
	ResultURI  string     `json:"result_uri,omitempty"`
}

// PageView is a page of result rows.
type PageView struct {
	Ticket     string      `json:"ticket"`
	Columns    []ColumnDef `json:"columns"`
	Rows       [][]any     `json:"rows"`
	Offset     int         `json:"offset"`
	Total      int64       `json:"total"`
	NextOffset *int        `json:"next_offset"`
	Sampled    bool        `json:"sampled,omitempty"`
	SampleRate float64     `json:"sample_rate,omitempty"`
	Truncated  bool        `json:"truncated,omitempty"`
}

// ColumnDef names a result column and its engine type.
type ColumnDef struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

func ticketView(t *query.Ticket) TicketView {
	v := TicketView{Ticket: t.ID, State: string(t.State), Stage: t.Stage, QueryHash: t.QueryHash, Name: t.Name,
		Error: t.Error, CreatedAt: t.CreatedAt, Rows: t.Rows, Bytes: t.Bytes, Sampled: t.Sampled,
		SampleRate: t.SampleRate, Truncated: t.Truncated, Insights: t.Insights}
	if t.Progress >= 0 {
		p := t.Progress * 100
		v.Progress = &p
		v.Estimated = t.ProgressEstimated
	}
	if t.ResultArtifact != "" && t.State == query.StateSucceeded {
		v.ResultURI = artifactScheme + t.ResultArtifact
	}
	if !t.StartedAt.IsZero() {
		s := t.StartedAt
		v.StartedAt = &s
	}
	if !t.FinishedAt.IsZero() {
		f := t.FinishedAt
		v.FinishedAt = &f
	}
	if !t.ExpiresAt.IsZero() {
		e := t.ExpiresAt
		v.ExpiresAt = &e
	}
	return v
}

func pageView(id string, p *query.Page) *PageView {
	v := &PageView{Ticket: id, Rows: p.Rows, Offset: p.Offset, Total: p.Total, Sampled: p.Sampled,
		SampleRate: p.SampleRate, Truncated: p.Truncated}
	if v.Rows == nil {
		v.Rows = [][]any{}
	}
	for _, c := range p.Columns {
		v.Columns = append(v.Columns, ColumnDef{Name: c.Name, Type: c.Type})
	}
	if v.Columns == nil {
		v.Columns = []ColumnDef{}
	}
	if p.NextOffset >= 0 {
		n := p.NextOffset
		v.NextOffset = &n
	}
	return v
}

// principal names who asked, for tickets and the audit log: the token's id
// over HTTP, "stdio" for a local edge.
func principal(req *mcp.CallToolRequest) string {
	if req != nil && req.Extra != nil && req.Extra.TokenInfo != nil {
		if id, ok := req.Extra.TokenInfo.Extra["token_id"].(string); ok && id != "" {
			return "token:" + id
		}
	}
	return "stdio"
}

func (t *tools) submitQuery(ctx context.Context, req *mcp.CallToolRequest, customer string) (any, error) {
	ctx = query.WithPrincipal(ctx, principal(req))
	m, ie := args(req.Params.Arguments, "submit_query", submitQueryFields)
	if m == nil {
		return nil, ie
	}
	var qr query.Request
	ie.str(m, "template", &qr.Template)
	if v, ok := m["params"]; ok && string(v) != "null" {
		if jsonKind(v) != "an object" {
			ie.problems = append(ie.problems, "params: must be an object of the template's parameters, got "+jsonKind(v))
		}
		qr.Params = v
	}
	if v, ok := m["dataset"]; ok && string(v) != "null" {
		if jsonKind(v) != "an object" {
			ie.problems = append(ie.problems, "dataset: must be an object (a dataset spec), got "+jsonKind(v))
		}
		qr.Dataset = v
	}
	wait := ie.waitField(m)
	switch {
	case qr.Template == "" && qr.Dataset == nil:
		ie.problems = append(ie.problems, "give a template (see list_templates) or a dataset spec")
	case qr.Template != "" && qr.Dataset != nil:
		ie.problems = append(ie.problems, "give a template or a dataset spec, not both")
	case qr.Dataset != nil && qr.Params != nil:
		ie.problems = append(ie.problems, "params go with a template; a dataset spec carries its own values")
	}
	if err := ie.err(); err != nil {
		return nil, err
	}
	tk, err := t.opts.Queries.Submit(ctx, customer, principal(req), qr)
	if err != nil {
		return nil, queryToolError(err)
	}
	if wait > 0 {
		return t.waitTicket(ctx, req, customer, tk.ID, wait)
	}
	return t.ticketResult(ctx, customer, tk)
}

func (t *tools) getQueryStatus(ctx context.Context, req *mcp.CallToolRequest, customer string) (any, error) {
	ctx = query.WithPrincipal(ctx, principal(req))
	m, ie := args(req.Params.Arguments, "get_query_status", ticketFields)
	if m == nil {
		return nil, ie
	}
	var id string
	ie.str(m, "ticket", &id)
	wait := ie.waitField(m)
	if id == "" {
		ie.problems = append(ie.problems, "ticket: required (the id submit_query returned)")
	}
	if err := ie.err(); err != nil {
		return nil, err
	}
	return t.waitTicket(ctx, req, customer, id, wait)
}

// waitTicket waits up to wait for the ticket, sending progress
// notifications when the caller gave a progress token.
func (t *tools) waitTicket(ctx context.Context, req *mcp.CallToolRequest, customer, id string, wait time.Duration) (any, error) {
	var progress func(*query.Ticket)
	if tok := req.Params.GetProgressToken(); tok != nil && req.Session != nil {
		// The spec wants each notification's progress above the last
		// one's: the first report goes out as it is (0 while queued),
		// later ones only when the (estimated) progress moved up; a
		// change of stage alone shows in the answer.
		last := -1.0
		progress = func(tk *query.Ticket) {
			p := max(tk.Progress, 0) * 100
			if p <= last {
				return
			}
			last = p
			msg := string(tk.State)
			if tk.Stage != "" {
				msg += ": " + tk.Stage
			}
			if tk.ProgressEstimated {
				msg += fmt.Sprintf(" (about %.0f%%, by earlier runs' time)", p)
			}
			// A failed notification must not fail the call: the answer
			// still comes back in the result.
			_ = req.Session.NotifyProgress(ctx, &mcp.ProgressNotificationParams{
				ProgressToken: tok, Progress: p, Total: 100, Message: msg})
		}
	}
	tk, err := t.opts.Queries.Wait(ctx, customer, id, wait, progress)
	if err != nil {
		return nil, queryToolError(err)
	}
	return t.ticketResult(ctx, customer, tk)
}

// ticketResult is a ticket's view, with the first rows when it succeeded.
func (t *tools) ticketResult(ctx context.Context, customer string, tk *query.Ticket) (any, error) {
	v := ticketView(tk)
	var text strings.Builder
	fmt.Fprintf(&text, "ticket %s: %s", tk.ID, tk.State)
	if tk.Stage != "" && tk.State == query.StateRunning {
		fmt.Fprintf(&text, " (%s", tk.Stage)
		if v.Progress != nil {
			fmt.Fprintf(&text, ", %.0f%%", *v.Progress)
			if v.Estimated {
				text.WriteString(" by earlier runs' time")
			}
		}
		text.WriteString(")")
	}
	fmt.Fprintf(&text, "; query_hash %s", tk.QueryHash)
	switch tk.State {
	case query.StateSucceeded:
		p, err := t.opts.Queries.Result(ctx, customer, tk.ID, 0, previewRows)
		if err != nil {
			return nil, queryToolError(err)
		}
		pv := pageView(tk.ID, p)
		trimPreview(pv)
		v.Preview = pv
		fmt.Fprintf(&text, "; %d rows", tk.Rows)
		if tk.Sampled {
			fmt.Fprintf(&text, " (computed on a %.2g%% sample: the result was over the size cap)", tk.SampleRate*100)
		}
		if pv.NextOffset != nil {
			v.Next = fmt.Sprintf("get_query_result with ticket %q and offset %d for the rest", tk.ID, *pv.NextOffset)
			fmt.Fprintf(&text, "; first %d shown, %s", len(pv.Rows), v.Next)
		}
		if v.ResultURI != "" {
			fmt.Fprintf(&text, "; the whole result is %s", v.ResultURI)
		}
		b, _ := json.Marshal(pv)
		text.WriteString("\n")
		text.Write(b)
		if v.ResultURI != "" {
			return richResult{v: v, content: []mcp.Content{
				&mcp.TextContent{Text: text.String()},
				&mcp.ResourceLink{URI: v.ResultURI, Name: tk.ID + ".ndjson", Title: "result of " + tk.Name,
					MIMEType: artifact.ResultContentType},
			}}, nil
		}
	case query.StateFailed:
		fmt.Fprintf(&text, ": %s", tk.Error)
	case query.StateQueued, query.StateRunning:
		v.Next = fmt.Sprintf("get_query_status with ticket %q and wait_seconds to wait for it", tk.ID)
		text.WriteString("; " + v.Next)
	}
	return textResult{text: text.String(), v: v}, nil
}

// trimPreview drops rows from the end until the preview's JSON fits
// previewBytes, and points next_offset at the first row left out.
func trimPreview(pv *PageView) {
	for len(pv.Rows) > 1 {
		b, _ := json.Marshal(pv.Rows)
		if len(b) <= previewBytes {
			return
		}
		pv.Rows = pv.Rows[:len(pv.Rows)/2]
		n := pv.Offset + len(pv.Rows)
		pv.NextOffset = &n
	}
}

func (t *tools) getQueryResult(ctx context.Context, req *mcp.CallToolRequest, customer string) (any, error) {
	ctx = query.WithPrincipal(ctx, principal(req))
	m, ie := args(req.Params.Arguments, "get_query_result", resultFields)
	if m == nil {
		return nil, ie
	}
	var id string
	ie.str(m, "ticket", &id)
	offset := ie.intField(m, "offset", 0, 0, 1<<31-1)
	limit := ie.intField(m, "limit", 200, 1, 1000)
	if id == "" {
		ie.problems = append(ie.problems, "ticket: required (the id submit_query returned)")
	}
	if err := ie.err(); err != nil {
		return nil, err
	}
	p, err := t.opts.Queries.Result(ctx, customer, id, offset, limit)
	if err != nil {
		return nil, queryToolError(err)
	}
	return pageView(id, p), nil
}

func (t *tools) cancelQuery(ctx context.Context, req *mcp.CallToolRequest, customer string) (any, error) {
	ctx = query.WithPrincipal(ctx, principal(req))
	m, ie := args(req.Params.Arguments, "cancel_query", cancelFields)
	if m == nil {
		return nil, ie
	}
	var id string
	ie.str(m, "ticket", &id)
	if id == "" {
		ie.problems = append(ie.problems, "ticket: required (the id submit_query returned)")
	}
	if err := ie.err(); err != nil {
		return nil, err
	}
	tk, err := t.opts.Queries.Cancel(ctx, customer, id)
	if err != nil {
		return nil, queryToolError(err)
	}
	return ticketView(tk), nil
}

// waitField reads wait_seconds (0..maxWait).
func (e *inputError) waitField(m map[string]json.RawMessage) time.Duration {
	v, ok := m["wait_seconds"]
	if !ok || string(v) == "null" {
		return 0
	}
	var f float64
	if err := json.Unmarshal(v, &f); err != nil || f < 0 || f > maxWait.Seconds() {
		e.problems = append(e.problems, fmt.Sprintf("wait_seconds: must be a number from 0 to %g, got %s", maxWait.Seconds(), string(v)))
		return 0
	}
	return time.Duration(f * float64(time.Second))
}

// intField reads a whole number in [lo, hi]; def when absent.
func (e *inputError) intField(m map[string]json.RawMessage, key string, def, lo, hi int) int {
	v, ok := m[key]
	if !ok || string(v) == "null" {
		return def
	}
	var n int
	if err := json.Unmarshal(v, &n); err != nil || n < lo || n > hi {
		e.problems = append(e.problems, fmt.Sprintf("%s: must be a whole number from %d to %d, got %s", key, lo, hi, string(v)))
		return def
	}
	return n
}

// queryToolError keeps the engine's message (it is written for a person)
// and marks request errors as input errors for the metrics.
func queryToolError(err error) error {
	if errors.Is(err, query.ErrInvalidRequest) {
		return &inputError{problems: []string{err.Error()}}
	}
	return err
}
