package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/activitybi/activitybi/internal/query"
	"github.com/activitybi/activitybi/internal/sqltmpl"
	"github.com/activitybi/activitybi/internal/sqltmpl/dataset"
)

// Edges reach the core's ticket engine over the socket. The socket belongs
// to this user, so the body says which customer an edge acts for (the
// edge's configured identity), as for /v1/context.

// QueryCall is the body of every POST /v1/queries/* on the socket.
type QueryCall struct {
	Customer  string        `json:"customer"`
	Principal string        `json:"principal,omitempty"`
	Request   query.Request `json:"request,omitzero"`
	Ticket    string        `json:"ticket,omitempty"`
	WaitMS    int64         `json:"wait_ms,omitempty"`
	Offset    int           `json:"offset,omitempty"`
	Limit     int           `json:"limit,omitempty"`
	Hash      string        `json:"hash,omitempty"`
	AtomID    string        `json:"atom_id,omitempty"`
}

// maxQueryCall bounds a /v1/queries/* body (a dataset spec is the big part).
const maxQueryCall = 256 << 10

// queryError codes carried over the socket, so that an edge's tool answers
// exactly as the core's would.
const (
	codeInvalid  = "invalid"
	codeNotFound = "not_found"
	codeBudget   = "budget"
	codeBusy     = "busy"
)

func (s *Server) queriesHandler(op string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		q := s.opts.Queries
		if q == nil {
			writeJSON(w, http.StatusServiceUnavailable, errBody("this core runs no queries"))
			return
		}
		var c QueryCall
		if msg := decodeSocketCall(w, r, maxQueryCall, &c, queryCallTooBig); msg != "" || c.Customer == "" {
			if msg == "" {
				msg = "want a JSON QueryCall with a customer"
			}
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": msg, "code": codeInvalid})
			return
		}
		ctx := r.Context()
		if c.Principal != "" {
			ctx = query.WithPrincipal(ctx, c.Principal)
		}
		var out any
		var err error
		switch op {
		case "submit":
			out, err = q.Submit(ctx, c.Customer, c.Principal, c.Request)
		case "wait":
			wait := min(time.Duration(c.WaitMS)*time.Millisecond, maxWait)
			out, err = q.Wait(ctx, c.Customer, c.Ticket, wait, nil)
		case "result":
			out, err = q.Result(ctx, c.Customer, c.Ticket, c.Offset, c.Limit)
		case "cancel":
			out, err = q.Cancel(ctx, c.Customer, c.Ticket)
		case "hash":
			var known bool
			known, err = q.HashKnown(ctx, c.Customer, c.Hash)
			out = map[string]bool{"known": known}
		case "insight":
			q.AddInsight(c.Customer, c.Hash, c.AtomID)
			out = map[string]bool{"ok": true}
		}
		if err != nil {
			code, status := codeOf(err)
			writeJSON(w, status, map[string]string{"error": err.Error(), "code": code})
			return
		}
		writeJSON(w, http.StatusOK, out)
	}
}

// queryCallTooBig says what makes a /v1/queries/* call big, and how big
// each part may be.
var queryCallTooBig = fmt.Sprintf("; a dataset spec may have at most %d KiB and a template's params %d KiB",
	dataset.MaxSpecBytes>>10, sqltmpl.MaxParamsBytes>>10)

// decodeSocketCall decodes an edge's call, of at most limit bytes, into v
// and returns what is wrong with it, or "". The answer goes back to the
// tool's caller, so it says what to change: a call over the limit names
// the limit and tooBig its parts' own.
func decodeSocketCall(w http.ResponseWriter, r *http.Request, limit int64, v any, tooBig string) string {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return fmt.Sprintf("the request is over the %d KiB the core takes from an edge%s", limit>>10, tooBig)
	case err != nil:
		return "the core could not read the edge's request (are the edge and the core of one version?): " + err.Error()
	}
	return ""
}

func codeOf(err error) (string, int) {
	var be *query.BudgetError
	switch {
	case errors.Is(err, query.ErrInvalidRequest):
		return codeInvalid, http.StatusBadRequest
	case errors.Is(err, query.ErrNotFound):
		return codeNotFound, http.StatusNotFound
	case errors.As(err, &be):
		return codeBudget, http.StatusTooManyRequests
	case errors.Is(err, query.ErrBusy):
		return codeBusy, http.StatusServiceUnavailable
	}
	return "", http.StatusInternalServerError
}

// remoteQueryError is an engine error that came over the socket; Is lets
// the tool layer classify it as it would the engine's own.
type remoteQueryError struct {
	code, msg string
}

func (e *remoteQueryError) Error() string { return e.msg }
func (e *remoteQueryError) Is(target error) bool {
	switch e.code {
	case codeInvalid:
		return target == query.ErrInvalidRequest
	case codeNotFound:
		return target == query.ErrNotFound
	case codeBusy:
		return target == query.ErrBusy
	}
	return false
}

// SocketQueries is an edge's Queries: the core's engine over the socket.
type SocketQueries struct {
	c *Client
}

var _ Queries = (*SocketQueries)(nil)

// NewSocketQueries reaches the core of dataDir.
func NewSocketQueries(dataDir string) *SocketQueries {
	return &SocketQueries{c: NewSocketClient(dataDir)}
}

func (s *SocketQueries) call(ctx context.Context, op string, c QueryCall, out any) error {
	if c.Principal == "" {
		c.Principal = query.PrincipalFrom(ctx)
	}
	err := s.c.doCoded(ctx, "/v1/queries/"+op, c, out)
	var ce *codedError
	if errors.As(err, &ce) && ce.code != "" {
		return &remoteQueryError{code: ce.code, msg: ce.msg}
	}
	if err != nil {
		return fmt.Errorf("the core could not answer: %w", err)
	}
	return nil
}

// Submit asks the core for a ticket.
func (s *SocketQueries) Submit(ctx context.Context, customer, principal string, req query.Request) (*query.Ticket, error) {
	var t query.Ticket
	return &t, s.call(ctx, "submit", QueryCall{Customer: customer, Principal: principal, Request: req}, &t)
}

// Wait long-polls the core in short steps so that progress can be reported
// as it changes.
func (s *SocketQueries) Wait(ctx context.Context, customer, id string, max time.Duration, progress func(*query.Ticket)) (*query.Ticket, error) {
	deadline := time.Now().Add(max)
	for {
		step := time.Until(deadline)
		if progress != nil {
			step = min(step, progressPoll)
		}
		var t query.Ticket
		if err := s.call(ctx, "wait", QueryCall{Customer: customer, Ticket: id, WaitMS: max0(step).Milliseconds()}, &t); err != nil {
			return nil, err
		}
		if t.State.Final() || time.Now().After(deadline) {
			return &t, nil
		}
		if progress != nil {
			progress(&t)
		}
	}
}

func max0(d time.Duration) time.Duration {
	if d < 0 {
		return 0
	}
	return d
}

// Result reads a page from the core.
func (s *SocketQueries) Result(ctx context.Context, customer, id string, offset, limit int) (*query.Page, error) {
	var p query.Page
	return &p, s.call(ctx, "result", QueryCall{Customer: customer, Ticket: id, Offset: offset, Limit: limit}, &p)
}

// Cancel asks the core to cancel.
func (s *SocketQueries) Cancel(ctx context.Context, customer, id string) (*query.Ticket, error) {
	var t query.Ticket
	return &t, s.call(ctx, "cancel", QueryCall{Customer: customer, Ticket: id}, &t)
}

// HashKnown asks the core whether a ticket of customer has hash.
func (s *SocketQueries) HashKnown(ctx context.Context, customer, hash string) (bool, error) {
	var out struct {
		Known bool `json:"known"`
	}
	err := s.call(ctx, "hash", QueryCall{Customer: customer, Hash: hash}, &out)
	return out.Known, err
}

// AddInsight tells the core that an insight cites hash. It is best effort:
// the insight itself is in the spool, and its provenance column says the
// same durably.
func (s *SocketQueries) AddInsight(customer, hash, atomID string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = s.call(ctx, "insight", QueryCall{Customer: customer, Hash: hash, AtomID: atomID}, &struct{}{})
}

// codedError is a core answer that was not 2xx, with the body's code.
type codedError struct {
	status    int
	code, msg string
}

func (e *codedError) Error() string { return e.msg }

// doCoded POSTs body to the core and decodes a 2xx answer into out; any
// other answer is a *codedError carrying the body's error and code.
func (c *Client) doCoded(ctx context.Context, path string, body, out any) error {
	status, rb, err := c.exchange(ctx, http.MethodPost, path, body, maxQueryAnswer)
	if err != nil {
		return err
	}
	if status/100 != 2 {
		var e struct {
			Error string `json:"error"`
			Code  string `json:"code"`
		}
		if json.Unmarshal(rb, &e) != nil || e.Error == "" {
			e.Error = fmt.Sprintf("core: HTTP %d", status)
		}
		return &codedError{status: status, code: e.Code, msg: e.Error}
	}
	return decodeAnswer(rb, out)
}

// maxQueryAnswer bounds what an edge reads of one core answer (a result
// page is bounded far below this by the engine).
const maxQueryAnswer = 16 << 20
