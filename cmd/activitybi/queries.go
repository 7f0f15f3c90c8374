package main

import (
	"log/slog"
	"path/filepath"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/activitybi/activitybi/internal/audit"
	"github.com/activitybi/activitybi/internal/event"
	"github.com/activitybi/activitybi/internal/query"
	"github.com/activitybi/activitybi/internal/sqltmpl"
	"github.com/activitybi/activitybi/internal/sqltmpl/dataset"
	"github.com/activitybi/activitybi/internal/warehouse/duckdb"
)

// resultsDir held query results under the data directory before the
// artifact store kept them; the engine still reads (and expires) results
// of tickets from then.
const resultsDir = "results"

// newQueryEngine is the core's ticket engine over the warehouse: SafeSQL
// templates and dataset specs in DuckDB's dialect, tickets kept in
// query_tickets, results in the artifact store, every access written to
// the audit log.
func (a *app) newQueryEngine(db *duckdb.DB, results query.ResultStore, reg prometheus.Registerer, auditLog *audit.Log) (*query.Engine, error) {
	lib := sqltmpl.Default()
	if err := lib.Register(reg); err != nil {
		return nil, err
	}
	dm, err := dataset.NewMetrics(reg)
	if err != nil {
		return nil, err
	}
	return query.New(query.Options{
		Runner:  db,
		Compile: query.SafeSQL(lib, sqltmpl.DuckDB, dm),
		Dir:     filepath.Join(a.cfg.DataDir, resultsDir),
		Results: results,
		Store:   db,
		// The driver cuts every statement at its own QueryTimeout; a
		// template allowed longer would fail with the driver's message
		// rather than as a timeout of its ticket.
		MaxTimeout: duckdb.DefaultQueryTimeout,
		Audit:      queryAudit(auditLog, a.log),
		Registry:   reg,
		Logger:     a.log,
	})
}

// queryActions maps the engine's audit actions to the audit log's.
var queryActions = map[string]string{
	"submit_query":     event.ActionSubmittedQuery,
	"run_query":        event.ActionCompletedQuery,
	"get_query_result": event.ActionFetchedResult,
	"cancel_query":     event.ActionCancelledQuery,
}

// queryAudit writes the engine's audit entries to the audit log. The
// engine calls it on its own paths (Submit's too), and Record only appends
// to the spool, so it does not block on the warehouse.
func queryAudit(l *audit.Log, log *slog.Logger) func(query.AuditEntry) {
	return func(e query.AuditEntry) {
		action, ok := queryActions[e.Action]
		if !ok {
			log.Error("audit: the query engine reported an unknown action; recorded as a completed query", "action", e.Action)
			action = event.ActionCompletedQuery
		}
		r := event.Audit{At: e.At, Principal: e.Principal, Customer: e.Customer, Action: action, Target: e.Target,
			Rows: e.Rows, Bytes: e.Bytes, DurationMS: e.Duration.Milliseconds(), Outcome: auditOutcome(e), Detail: e.Detail}
		if r.Principal == "" {
			r.Principal = "unknown"
		}
		// Record logs and counts its own failures; the query is served
		// either way (the spool refuses only at backpressure).
		_ = l.Record(r)
	}
}

// auditOutcome maps the engine's outcome (or a finished ticket's state)
// to the audit log's outcomes.
func auditOutcome(e query.AuditEntry) string {
	switch e.Outcome {
	case "ok", string(query.StateSucceeded):
		return event.OutcomeOK
	case "invalid", "budget", "busy":
		return event.OutcomeRefused
	case "not_found":
		return event.OutcomeNotFound
	case string(query.StateCancelled):
		return event.OutcomeCancelled
	case string(query.StateFailed):
		if strings.Contains(e.Detail, "timed out") || strings.Contains(e.Detail, "timeout") {
			return event.OutcomeTimeout
		}
		return event.OutcomeError
	}
	return event.OutcomeError
}
