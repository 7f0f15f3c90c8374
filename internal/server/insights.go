package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/activitybi/activitybi/internal/event"
	"github.com/activitybi/activitybi/internal/upload"
)

var logInsightFields = []string{"subject", "metric", "value", "provenance_query_hash", "ts", "atom_id"}

var logInsightTool = &mcp.Tool{
	Name:  "log_insight",
	Title: "Remember an insight",
	Description: `Store one insight atom: a fact, preference or measured result worth keeping across sessions, as subject + metric + value.
Use subject "user" for what the person asks you to remember about them (metric "prefers_language", value "go"), "project:<name>" for a project fact, or the thing measured (e.g. "tool:Bash", metric "p95_latency_ms", value 840). value is a number, a string, true/false or a small object (<= 4 KiB).
provenance_query_hash is the query_hash of the submit_query ticket the value came from, if any: it must name one of this person's queries, and the insight is then marked verified. Returns at once with the atom_id; a later value for the same subject and metric is a new atom (history is kept).`,
	Annotations: &mcp.ToolAnnotations{Title: "Remember an insight", ReadOnlyHint: false, DestructiveHint: ptr(false),
		IdempotentHint: false, OpenWorldHint: ptr(false)},
	InputSchema: json.RawMessage(`{
  "type": "object",
  "properties": {
    "subject": {"type": "string", "maxLength": 255, "description": "what the insight is about: user, project:<name>, tool:<name>, ..."},
    "metric": {"type": "string", "maxLength": 255, "pattern": "^[a-z][a-z0-9_.:-]*$", "description": "lower-case name of the property, e.g. prefers_language, p95_latency_ms"},
    "value": {"description": "a finite number, a string (<= 4096 chars), true/false, or an object (<= 4 KiB)", "type": ["number", "string", "boolean", "object"]},
    "provenance_query_hash": {"type": "string", "pattern": "^(q_)?[0-9a-f]{16,128}$", "description": "hash of the activitybi query this value came from"},
    "ts": {"type": "string", "format": "date-time", "description": "when it was true (RFC 3339); default now"},
    "atom_id": {"type": "string", "maxLength": 255, "description": "idempotency key; default a new ULID"}
  },
  "required": ["subject", "metric", "value"],
  "additionalProperties": false
}`),
	OutputSchema: json.RawMessage(`{
  "type": "object",
  "properties": {
    "atom_id": {"type": "string"},
    "ts": {"type": "string", "format": "date-time"},
    "verified": {"type": "boolean", "description": "true when provenance_query_hash named one of this person's queries"},
    "duplicate": {"type": "boolean", "description": "true when this process had already stored an insight with this atom_id"}
  },
  "required": ["atom_id", "ts", "verified", "duplicate"]
}`),
}

// LogInsightResult is log_insight's structured content.
type LogInsightResult struct {
	AtomID    string    `json:"atom_id"`
	TS        time.Time `json:"ts"`
	Verified  bool      `json:"verified"`
	Duplicate bool      `json:"duplicate"`
}

func (t *tools) logInsight(ctx context.Context, req *mcp.CallToolRequest, customer string) (any, error) {
	m, ie := args(req.Params.Arguments, "log_insight", logInsightFields)
	if m == nil {
		return nil, ie
	}
	var in event.InsightInput
	ie.str(m, "subject", &in.Subject)
	ie.str(m, "metric", &in.Metric)
	if v, ok := m["value"]; ok {
		in.Value = v
	}
	ie.str(m, "provenance_query_hash", &in.ProvenanceQueryHash)
	in.TS = ie.tsField(m, "ts")
	ie.str(m, "atom_id", &in.AtomID)
	d := event.Defaults{Customer: customer, Source: t.opts.Source, Now: t.opts.Now}
	if err := ie.err(); err != nil {
		var ve *event.ValidationError
		if _, nerr := event.NormalizeInsight(in, d); errors.As(nerr, &ve) {
			for _, fe := range ve.Errs {
				ie.problems = append(ie.problems, fe.Error())
			}
		}
		return nil, ie
	}
	// A provenance hash must name a query of this customer: the engine
	// knows its tickets (and those of earlier runs, from query_tickets).
	verified := false
	if h := in.ProvenanceQueryHash; h != "" && t.opts.Queries != nil {
		known, err := t.opts.Queries.HashKnown(ctx, customer, h)
		if err != nil {
			return nil, fmt.Errorf("provenance_query_hash could not be checked: %w", err)
		}
		if !known {
			return nil, &inputError{problems: []string{fmt.Sprintf("provenance_query_hash: %q names none of your queries; cite the query_hash of a ticket from submit_query, or leave it out", h)}}
		}
		verified = true
	}
	res, err := logInsights(t.opts.Appender, t.opts.Recent, []event.InsightInput{in}, d, verified)
	if err != nil {
		return nil, err
	}
	r := res[0]
	if r.Err != nil {
		return nil, r.Err
	}
	if verified && !r.Duplicate {
		t.opts.Queries.AddInsight(customer, in.ProvenanceQueryHash, r.ID)
	}
	return LogInsightResult{AtomID: r.ID, TS: r.TS, Verified: verified, Duplicate: r.Duplicate}, nil
}

// LogInsights is LogEvents for insight atoms. Their provenance is not
// checked here (/v1/insights: stored unverified).
func LogInsights(app Appender, recent *RecentIDs, ins []event.InsightInput, d event.Defaults) ([]Logged, error) {
	return logInsights(app, recent, ins, d, false)
}

// logInsights stores insights; verified marks that their provenance hash
// was found among the customer's queries.
func logInsights(app Appender, recent *RecentIDs, ins []event.InsightInput, d event.Defaults, verified bool) ([]Logged, error) {
	return logRecords(app, recent, upload.KindInsight, d.Customer, len(ins), func(i int) (record, error) {
		x, err := event.NormalizeInsight(ins[i], d)
		if err != nil {
			return record{}, err
		}
		x.Verified = verified
		b, err := event.MarshalInsight(&x)
		return record{id: x.AtomID, ts: x.TS, given: ins[i].AtomID != "", payload: b}, err
	})
}

// insights serves POST /v1/insights: like /v1/events, records shaped as
// log_insight's arguments.
func (s *Server) insights(w http.ResponseWriter, r *http.Request) {
	ingest(s, w, r, event.DecodeInsightInput, LogInsights)
}
