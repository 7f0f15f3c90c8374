package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/activitybi/activitybi/internal/audit"
	"github.com/activitybi/activitybi/internal/event"
	"github.com/activitybi/activitybi/internal/warehouse"
)

// The admin API's accesses are audited here: every /v1/sql statement
// (ran_sql) and every /v1/audit listing (listed_audit) is recorded through
// Options.Audit, the core's own spool writer, so the uploader loads it like
// any other record. The principal comes from the transport: the core's
// socket admits only this OS user (or root), so a request there is
// "analyst:<user>"; over TCP the admin token authorised it, so it is
// "admin:<token id>" (audit.AdminPrincipal).
//
// These accesses are an analyst's, who can read the warehouse file anyway
// (it is the analyst's own file): when a record cannot be written (the spool
// at its backpressure limit) the answer is still given, and the failure is
// logged and counted (activitybi_audit_failures_total). Accesses on behalf
// of a customer are a different matter, decided where they are served.

// maxAuditBody bounds a POST /v1/audit body: a filter is a few short
// strings.
const maxAuditBody = 64 << 10

// auditTimeout bounds one listing (the driver has its own query timeout
// too).
const auditTimeout = 60 * time.Second

// routeAudit registers POST /v1/audit on the TCP admin mux (admin token)
// and on the socket.
func (s *Server) routeAudit(tcp, sock *http.ServeMux) {
	s.handle(tcp, "POST /v1/audit", s.admin(s.auditList))
	s.handle(sock, "POST /v1/audit", s.auditList)
}

// adminPrincipal is who an admin API request speaks for.
func (s *Server) adminPrincipal(r *http.Request) string {
	if la, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok && la.Network() == "unix" {
		return audit.AnalystPrincipal()
	}
	return audit.AdminPrincipal(s.opts.AdminToken)
}

// record writes r through Options.Audit (nil: the server was built without
// an audit log, as some tests build it: nothing is recorded). A failure is
// logged, counted by the Log, and does not change the answer (see above).
func (s *Server) record(r event.Audit) {
	if s.opts.Audit == nil {
		return
	}
	if err := s.opts.Audit.Record(r); err != nil {
		s.log.Error("admin access not audited", "action", r.Action, "principal", r.Principal, "err", err)
	}
}

// auditSQL records one /v1/sql statement that failed with err, or
// returned t encoded as body.
func (s *Server) auditSQL(ctx context.Context, r *http.Request, q string, t *warehouse.Table, body []byte, start time.Time, err error) {
	var rows int64
	if t != nil {
		rows = int64(len(t.Rows))
	}
	s.record(audit.SQLRecord(ctx, s.adminPrincipal(r), q, rows, int64(len(body)), start, err))
}

// writeSQLResult answers a /v1/sql statement that returned t and records
// it with the size of the answer.
func (s *Server) writeSQLResult(ctx context.Context, w http.ResponseWriter, r *http.Request, q string, t *warehouse.Table, start time.Time) {
	body, err := encodeJSON(EncodeTable(t))
	if err != nil {
		s.auditSQL(ctx, r, q, nil, nil, start, err)
		writeJSON(w, http.StatusInternalServerError, errBody("encode result: "+err.Error()))
		return
	}
	s.auditSQL(ctx, r, q, t, body, start, nil)
	writeBody(w, http.StatusOK, body)
}

// AuditRequest is the body of POST /v1/audit: the filters of
// `activitybi audit`, with absolute times.
type AuditRequest = warehouse.AuditFilter

// auditList serves POST /v1/audit: audit_log rows matching the filters,
// newest first, through the driver's fixed statement with every value
// bound. The listing is itself recorded (listed_audit; customer_id is the
// customer filter when one is given, so that customer's log shows who read
// it).
func (s *Server) auditList(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	var f AuditRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxAuditBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		writeJSON(w, http.StatusBadRequest, errBody("bad request body: "+err.Error()+
			" (accepted: since, until (RFC 3339), customer, principal, action, outcome, target, limit)"))
		return
	}
	principal := s.adminPrincipal(r)
	if err := f.Validate(); err != nil {
		s.record(audit.ListingRecord(r.Context(), principal, f, 0, 0, start, err))
		writeJSON(w, http.StatusBadRequest, errBody(err.Error()))
		return
	}
	lister, ok := s.opts.Warehouse.(warehouse.AuditLister)
	if !ok {
		writeJSON(w, http.StatusNotImplemented, errBody("this warehouse driver cannot list the audit log"))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), auditTimeout)
	defer cancel()
	t, err := lister.Audit(ctx, f)
	var body []byte
	if err == nil {
		body, err = encodeJSON(EncodeTable(t))
	}
	if err != nil {
		s.record(audit.ListingRecord(ctx, principal, f, 0, 0, start, err))
		code := http.StatusInternalServerError
		switch {
		case errors.Is(err, warehouse.ErrClosed):
			code = http.StatusServiceUnavailable
		case ctx.Err() != nil:
			code = http.StatusGatewayTimeout
		}
		writeJSON(w, code, errBody(err.Error()))
		return
	}
	s.record(audit.ListingRecord(ctx, principal, f, int64(len(t.Rows)), int64(len(body)), start, nil))
	writeBody(w, http.StatusOK, body)
}

// encodeJSON is writeJSON's encoding, into a buffer (so its size is known
// before it is sent).
func encodeJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func writeBody(w http.ResponseWriter, code int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(body)
}

// Audit lists the audit log on the core (POST /v1/audit).
func (c *Client) Audit(ctx context.Context, f warehouse.AuditFilter) (*WireTable, error) {
	var t WireTable
	if err := c.do(ctx, http.MethodPost, "/v1/audit", f, &t); err != nil {
		return nil, err
	}
	return &t, nil
}
