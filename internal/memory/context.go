package memory

import (
	"encoding/json"
	"time"
)

// Context is one materialized context of a customer, optionally narrowed to
// a scope: what get_context returns as structured content (page by page,
// through Render) and what is stored in context_cache and the cache tiers.
// Every list is bounded by the Builder's options and already ordered as it
// is shown; none is nil after Build, so the JSON always has every key.
type Context struct {
	// Scope is the project or workspace the context is narrowed to; ""
	// for the whole customer.
	Scope string `json:"scope,omitempty"`
	// Version is set by the caller (the store that materializes contexts);
	// Build leaves it 0. Render puts it in cursors, so that a cursor from
	// another version is refused.
	Version int64 `json:"version"`
	// AsOf is when Build read the warehouse.
	AsOf time.Time `json:"as_of"`
	// Coverage says which events Sessions, Tools and Failures come from.
	Coverage Coverage `json:"coverage"`

	Sessions []Session        `json:"sessions"`
	Facts    []Fact           `json:"facts"`
	Insights []InsightSummary `json:"insights"`
	Tools    []ToolStat       `json:"tools"`
	Failures []Failure        `json:"failures"`
	// Tickets are open query tickets; always empty until the query engine
	// exists.
	Tickets []Ticket `json:"tickets"`
}

// Coverage describes the bounded read of the activity stream behind a
// context: the latest MaxEvents events of the last Window (or, when the
// window holds no session, of all time).
type Coverage struct {
	// Events is how many events were read.
	Events int `json:"events"`
	// From is the timestamp of the earliest event read (zero when none).
	From time.Time `json:"from,omitzero"`
	// WindowStart is where tool statistics and trends start (AsOf minus
	// the Builder's Window).
	WindowStart time.Time `json:"window_start"`
	// Capped is true when MaxEvents stopped the read: older events of the
	// window exist and are not counted (tool statistics then cover From
	// to AsOf, not the whole window).
	Capped bool `json:"capped,omitempty"`
}

// Session is one session: the events that share a session_id feature, or,
// for events without one, a run of events with no pause longer than the
// Builder's SessionGap.
type Session struct {
	// ID is the events' session_id; "" for a session found by the gap.
	ID    string    `json:"id,omitempty"`
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// Events counts the session's events (in the read; see Partial).
	Events int `json:"events"`
	// Place is the first project, workspace or cwd feature the session's
	// events name, if any.
	Place string `json:"place,omitempty"`
	// Activities are the session's most frequent activities (at most 5).
	Activities []ActivityCount `json:"activities,omitempty"`
	// Tools are the tools it called, most used first (at most 10).
	Tools []string `json:"tools,omitempty"`
	// Failures counts its failed tool calls (absent: none).
	Failures int `json:"failures,omitempty"`
	// CostUSD is the sum of -revenue_impact of its events (absent: 0).
	CostUSD float64 `json:"cost_usd,omitempty"`
	// Partial is true when the session may have begun before the events
	// that were read: it holds the earliest event read and the read was
	// cut by MaxEvents or by the window's start.
	Partial bool `json:"partial,omitempty"`
	// key is the statement's session key (a sort tie-breaker).
	key string
	// Clipped is set only on a page (Render) whose budget forced long
	// strings or lists of this item to be shortened.
	Clipped bool `json:"clipped,omitempty"`
}

// ActivityCount is how often one activity occurred.
type ActivityCount struct {
	Activity string `json:"activity"`
	Count    int    `json:"count"`
}

// Fact is something the person asked Claude to remember: the latest value
// of one metric of the subject "user" or "project:<name>".
type Fact struct {
	Subject string          `json:"subject"`
	Metric  string          `json:"metric"`
	Value   json.RawMessage `json:"value"`
	TS      time.Time       `json:"ts"`
	// Clipped is set only on a page (Render) whose budget forced long
	// strings or lists of this item to be shortened.
	Clipped bool `json:"clipped,omitempty"`
}

// InsightSummary is the state of one (subject, metric) of insights on other
// subjects (tool:Bash, model:..., ...).
type InsightSummary struct {
	Subject string          `json:"subject"`
	Metric  string          `json:"metric"`
	Value   json.RawMessage `json:"value"` // the latest value
	TS      time.Time       `json:"ts"`    // when it was recorded
	Count   int             `json:"count"` // atoms of this subject and metric, ever
	// Trend is set when the latest value is a number and the window holds
	// at least two numeric values.
	Trend *Trend `json:"trend,omitempty"`
	// Clipped is set only on a page (Render) whose budget forced long
	// strings or lists of this item to be shortened.
	Clipped bool `json:"clipped,omitempty"`
}

// Trend compares the first and the last numeric value of the window.
type Trend struct {
	Since     time.Time `json:"since"` // ts of the first value of the window
	First     float64   `json:"first"`
	Last      float64   `json:"last"`
	Change    float64   `json:"change"` // Last - First
	Points    int       `json:"points"` // numeric values in the window
	Direction string    `json:"direction"`
}

// Trend directions. A change within FlatTolerance of the larger magnitude of
// First and Last is flat.
const (
	TrendUp   = "up"
	TrendDown = "down"
	TrendFlat = "flat"
	// FlatTolerance is the relative change below which a trend is flat.
	FlatTolerance = 0.01
)

// ToolStat is one tool's use in the window (tool and server as the
// called_tool events name them).
type ToolStat struct {
	Tool     string    `json:"tool"`
	Server   string    `json:"server,omitempty"`
	Calls    int       `json:"calls"`
	Failures int       `json:"failures"`
	P50Ms    *float64  `json:"p50_ms,omitempty"` // of duration_ms, when calls carry it
	P95Ms    *float64  `json:"p95_ms,omitempty"`
	LastUsed time.Time `json:"last_used"`
	// Clipped is set only on a page (Render) whose budget forced long
	// strings or lists of this item to be shortened.
	Clipped bool `json:"clipped,omitempty"`
}

// Failure is one failed tool call: a called_tool event with success false
// or an error feature.
type Failure struct {
	TS      time.Time `json:"ts"`
	Tool    string    `json:"tool,omitempty"`
	Server  string    `json:"server,omitempty"`
	Session string    `json:"session,omitempty"` // its session_id, if any
	Error   string    `json:"error,omitempty"`   // at most 300 characters
	// Clipped is set only on a page (Render) whose budget forced long
	// strings or lists of this item to be shortened.
	Clipped bool `json:"clipped,omitempty"`
}

// Ticket is an open query ticket. The query engine does not exist yet, so
// Build always returns none; the type fixes the JSON shape.
type Ticket struct {
	ID        string    `json:"id"`
	State     string    `json:"state"`
	Template  string    `json:"template,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	// Clipped is set only on a page (Render) whose budget forced long
	// strings or lists of this item to be shortened.
	Clipped bool `json:"clipped,omitempty"`
}
