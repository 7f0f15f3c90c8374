package query

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/activitybi/activitybi/internal/warehouse"
)

// Request is what submit_query asks: a template with its params, or an
// ActivitySchema dataset spec. The Compiler decides what is valid.
type Request struct {
	Template string          `json:"template,omitempty"`
	Dataset  json.RawMessage `json:"dataset,omitempty"`
	Params   json.RawMessage `json:"params,omitempty"`
}

// Compiled is a request made into one read-only statement.
type Compiled struct {
	SQL  string
	Args []any
	// Timeout is the template's timeout; zero means Options.DefaultTimeout.
	// The engine caps it at Options.MaxTimeout.
	Timeout time.Duration
	// Key is the canonical form of the question (template + normalized
	// params, or the canonical dataset): the input of the query hash.
	// Required.
	Key []byte
	// Name is the template name or "dataset".
	Name string
	// Columns are the expected result columns (may be nil).
	Columns []string
	// SampleSQL returns the statement and args that compute the question
	// on a sample at rate (0 < rate < 1). nil means the engine samples the
	// statement's result rows itself (see the package doc).
	SampleSQL func(rate float64) (string, []any)
}

// Compiler turns a request into SQL. Its errors must tell a person what is
// wrong and what is accepted, and wrap ErrInvalidRequest when the request is
// at fault. now is the submission time (for relative time ranges).
type Compiler func(req Request, now time.Time) (*Compiled, error)

// Runner runs one customer-scoped read-only statement; *duckdb.DB
// satisfies it. The engine passes its own deadline in ctx.
type Runner interface {
	CustomerQuery(ctx context.Context, customer, q string, args []any, maxRows int) (*warehouse.Table, error)
}

// State is where a ticket is in its life.
type State string

// The states of a ticket. Queued and running are the only ones that change;
// a succeeded, failed or cancelled ticket becomes expired when its result is
// removed (Options.ResultTTL after it finished).
const (
	StateQueued    State = "queued"
	StateRunning   State = "running"
	StateSucceeded State = "succeeded"
	StateFailed    State = "failed"
	StateCancelled State = "cancelled"
	StateExpired   State = "expired"
)

// Final reports whether s is a state the ticket never leaves by running
// (expiry aside).
func (s State) Final() bool {
	switch s {
	case StateSucceeded, StateFailed, StateCancelled, StateExpired:
		return true
	}
	return false
}

// Ticket is a copy of a ticket's state at one moment.
type Ticket struct {
	ID        string `json:"id"`
	QueryHash string `json:"query_hash"`
	Name      string `json:"name"`
	State     State  `json:"state"`
	// Progress is 0..1, or -1 when the engine cannot tell (see the
	// package doc: 0 while queued; while running an estimate from earlier
	// runs of the question, or -1 without one; 1 once succeeded).
	Progress float64 `json:"progress"`
	// ProgressEstimated says Progress is estimated from the time earlier
	// runs of the same question (or template) took.
	ProgressEstimated bool `json:"progress_estimated,omitempty"`
	// Stage says what the ticket is doing now, for a person.
	Stage      string    `json:"stage,omitempty"`
	Error      string    `json:"error,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
	StartedAt  time.Time `json:"started_at,omitzero"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
	// ExpiresAt is when the result (and the ticket's status) goes away.
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	// Rows and Bytes describe the stored result (after sampling).
	Rows  int64 `json:"rows"`
	Bytes int64 `json:"bytes"`
	// Sampled says the result was computed on a sample at SampleRate
	// (0..1) because the full result was over the byte cap.
	Sampled    bool    `json:"sampled,omitempty"`
	SampleRate float64 `json:"sample_rate,omitempty"`
	// Truncated says the stored result stops at the byte cap (or at
	// MaxResultRows rows) even after sampling at the lowest rate: rows
	// beyond it are missing.
	Truncated bool `json:"truncated,omitempty"`
	// ResultPath is the result file in Options.Dir, when the engine has
	// no Options.Results.
	ResultPath string `json:"result_path,omitempty"`
	// ResultArtifact is the result's id in Options.Results (the artifact
	// store): its owner can download it whole at /artifacts/{id}.
	ResultArtifact string `json:"result_artifact,omitempty"`
	// Insights are atom ids of insights citing this ticket's hash.
	Insights []string `json:"insights,omitempty"`
	// Principal is who submitted it (a token id, "stdio", ...).
	Principal string `json:"principal,omitempty"`
}

// Page is part of a succeeded ticket's result.
type Page struct {
	Columns []warehouse.Column `json:"columns"`
	// Rows are JSON values: strings, json.Number, bool, nil, objects and
	// arrays; times are RFC 3339 strings.
	Rows   [][]any `json:"rows"`
	Offset int     `json:"offset"`
	// Total is the number of rows in the stored result.
	Total int64 `json:"total"`
	// NextOffset is where the next page starts, -1 after the last page.
	NextOffset int     `json:"next_offset"`
	Sampled    bool    `json:"sampled,omitempty"`
	SampleRate float64 `json:"sample_rate,omitempty"`
	Truncated  bool    `json:"truncated,omitempty"`
	// Clipped says some values of this page were shortened to fit
	// MaxPageBytes; the result file holds them whole.
	Clipped bool `json:"clipped,omitempty"`
}

// AuditEntry is one data access, for the audit log.
type AuditEntry struct {
	At        time.Time
	Principal string
	Customer  string
	// Action: submit_query, run_query (a ticket finished),
	// get_query_result, cancel_query.
	Action string
	// Target is the template name (submit) or the ticket id and query
	// hash ("qt_... q_..."); for a ticket the customer does not have, the
	// id asked for.
	Target   string
	Rows     int64
	Bytes    int64
	Duration time.Duration
	// Outcome: ok, invalid, budget, busy, error, not_found (a result read
	// or cancel of a ticket the customer does not have); for run_query the
	// ticket's final state.
	Outcome string
	Detail  string
}

// Errors callers classify. Messages wrapping them are written for a person.
var (
	// ErrInvalidRequest: the request is wrong; the same request fails
	// again. Compilers wrap it.
	ErrInvalidRequest = errors.New("invalid query request")
	// ErrNotFound: no ticket with that id for this customer (another
	// customer's ticket gets the same answer).
	ErrNotFound = errors.New("query ticket not found")
	// ErrBusy: a queue is full; retry in a few seconds.
	ErrBusy = errors.New("query engine busy")
	// ErrNotReady: the ticket has no result yet.
	ErrNotReady = errors.New("query result not ready")
	// ErrNoResult: the ticket failed, was cancelled or expired.
	ErrNoResult = errors.New("query has no result")
	// ErrStopped: the engine stopped (the core is shutting down).
	ErrStopped = errors.New("query engine stopped")
)

// Budget names, as BudgetError.Budget and the metric label.
const (
	BudgetPerMinute     = "per_minute"
	BudgetConcurrent    = "concurrent"
	BudgetEngineSeconds = "engine_seconds_per_day"
)

// BudgetError says that one of the customer's budgets is spent.
type BudgetError struct {
	Budget     string        // BudgetPerMinute, BudgetConcurrent or BudgetEngineSeconds
	Limit      float64       // the budget
	Used       float64       // what is used of it now
	RetryAfter time.Duration // when the budget allows another query (an estimate for concurrent)
}

func (e *BudgetError) Error() string {
	retry := e.RetryAfter.Round(time.Second)
	if retry < time.Second {
		retry = time.Second
	}
	switch e.Budget {
	case BudgetPerMinute:
		return fmt.Sprintf("query budget spent: at most %g queries per minute per person; the next is allowed in %s", e.Limit, retry)
	case BudgetConcurrent:
		return fmt.Sprintf("query budget spent: at most %g unfinished queries at once per person (%g are queued or running); wait for one to finish (get_query_status) or cancel one (cancel_query)", e.Limit, e.Used)
	case BudgetEngineSeconds:
		return fmt.Sprintf("query budget spent: %g engine seconds per day per person, %.0f used today (UTC); it resets in %s", e.Limit, e.Used, retry)
	}
	return fmt.Sprintf("query budget %s spent (%g of %g); retry in %s", e.Budget, e.Used, e.Limit, retry)
}
