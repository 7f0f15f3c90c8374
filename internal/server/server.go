// Package server holds every network surface of the core: health and
// readiness, Prometheus metrics, and the local admin API used by the CLI
// (analyst SQL, status). Later: MCP over HTTP, /v1/events, the dashboard.
package server

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/activitybi/activitybi/internal/audit"
	"github.com/activitybi/activitybi/internal/spool"
	"github.com/activitybi/activitybi/internal/telemetry"
	"github.com/activitybi/activitybi/internal/upload"
	"github.com/activitybi/activitybi/internal/warehouse"
)

// Limits of the admin API.
const (
	maxSQLBody      = 1 << 20          // bytes of an SQL request body
	maxSQLRows      = 1_000_000        // rows one SQL request may return
	sqlTimeout      = 60 * time.Second // longest analyst query (the driver has its own timeout too)
	shutdownTimeout = 10 * time.Second // in-flight requests get this long on shutdown
	// mcpSessionTimeout closes an HTTP MCP session idle this long; the
	// client starts a new one.
	mcpSessionTimeout = 30 * time.Minute
)

// Querier is what the admin API needs from the warehouse.
type Querier interface {
	Query(ctx context.Context, sql string, maxRows int) (*warehouse.Table, error)
	Stats(ctx context.Context) (warehouse.Stats, error)
}

// Options configure a Server.
type Options struct {
	// Addr is host:port; required. A non-loopback host is refused unless
	// TLS is configured (TLSCert and TLSKey) or InsecureListen is set.
	Addr           string
	InsecureListen bool
	// FreePortIfBusy listens on a free port of the same host when Addr's
	// port is taken.
	FreePortIfBusy bool
	// TLSCert and TLSKey are PEM files; when set the TCP listener serves HTTPS.
	TLSCert, TLSKey string
	// Socket is the path of the core's Unix socket, where edges attach and
	// the CLI talks to the core; "" = no socket. Only this user may connect
	// (0600 in a 0700 directory, and the peer's uid is checked on Linux).
	Socket    string
	Registry  *prometheus.Registry // required
	Warehouse Querier              // required
	// Uploader reports pipeline state for /readyz and status.
	Uploader func() upload.Status
	// AdminToken authorises the local admin API over TCP (/v1/sql,
	// /v1/status, /v1/shutdown); on the socket the peer's identity does.
	AdminToken string
	// Appender takes what /v1/events, /v1/insights and /mcp log (the core's
	// own spool writer); nil = those routes answer 503.
	Appender Appender
	// IngestWait is how long a /v1/events or /v1/insights request waits for
	// room at the spool's limit before its 429 (ingest_wait.go): 0 =
	// IngestWaitMax, negative = no wait. IngestWaitBytes bounds what the
	// waiting requests hold: 0 = IngestWaitBytes.
	IngestWait      time.Duration
	IngestWaitBytes int64
	// Audit records the admin API's accesses (/v1/sql, /v1/audit); nil = not recorded.
	Audit *audit.Log
	// VerifyToken maps a bearer token to its customer; nil = every bearer
	// route answers 401.
	VerifyToken func(token string) (Principal, error)
	// Recent is shared with every tool surface of this process; nil = new.
	Recent      *RecentIDs
	ToolMetrics *ToolMetrics
	// Memory serves get_context over /mcp and to edges over the socket;
	// nil = no memory.
	Memory *Memory
	// Queries is the ticket engine behind the query tools over /mcp and
	// the edges' /v1/queries/* on the socket; nil = no queries.
	Queries Queries
	// Templates is what list_templates describes; nil = not offered.
	Templates []TemplateInfo
	// Cards serves render_card over /mcp and the edges' /v1/cards/* on the
	// socket; nil = no cards.
	Cards Cards
	// Dashboard, when set, serves the web pages at / over TCP (it does its
	// own authentication: the local customer on loopback, token sign-in
	// otherwise).
	Dashboard http.Handler
	// SessionCustomer, when set, is who a request without a bearer token
	// is signed in as on the dashboard (its session cookie, or the local
	// user on loopback), so that the dashboard's pictures load from
	// /artifacts/{id}.
	SessionCustomer func(*http.Request) (string, error)
	// Artifacts, when set, serves GET /artifacts/{id} over TCP to the
	// owner of the bearer token.
	Artifacts interface {
		Handler(customerOf func(*http.Request) (string, error)) http.Handler
	}
	// IdleExit > 0 calls Shutdown("idle") once no edge has been attached for
	// that long (a core started by an edge).
	IdleExit time.Duration
	// Shutdown asks the process to stop gracefully (activitybi stop, idle).
	Shutdown  func(reason string)
	StartedBy string // "hand" or "edge", for status
	DataDir   string
	SpoolDir  string // for status; "" = not reported
	Version   string
	Logger    *slog.Logger
	Now       func() time.Time
}

// Principal is who a bearer token speaks for.
type Principal struct {
	Customer string
	TokenID  string
	Expires  time.Time // zero = never
}

// Server is the core's HTTP server: TCP (loopback by default) and the local
// socket.
type Server struct {
	opts    Options
	log     *slog.Logger
	pid     int
	started time.Time
	ln      net.Listener
	srv     *http.Server
	uln     net.Listener
	usrv    *http.Server
	umux    *http.ServeMux
	reqs    *prometheus.CounterVec
	dur     *prometheus.HistogramVec
	recent  *RecentIDs
	edges   *edges
	wait    *ingestWait // the HTTP intake at the backpressure limit
	tokens  *tokenGuard // ends /mcp streams and sessions of refused tokens; nil = no token store
}

// New validates opts.
func New(opts Options) (*Server, error) {
	if opts.Addr == "" {
		return nil, errors.New("server: Addr is required")
	}
	if opts.Registry == nil || opts.Warehouse == nil {
		return nil, errors.New("server: Registry and Warehouse are required")
	}
	if len(opts.AdminToken) < 32 {
		return nil, errors.New("server: AdminToken must be at least 32 characters")
	}
	if (opts.TLSCert == "") != (opts.TLSKey == "") {
		return nil, errors.New("server: TLS needs both a certificate and a key file")
	}
	if err := CheckListen(opts.Addr, opts.InsecureListen || opts.TLSCert != ""); err != nil {
		return nil, err
	}
	s := &Server{opts: opts, log: telemetry.OrDiscard(opts.Logger), pid: os.Getpid(), started: opts.now().UTC(), recent: opts.Recent}
	if s.recent == nil {
		s.recent = NewRecentIDs(DefaultRecentIDs)
	}
	s.edges = newEdges(opts.now())
	s.reqs = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "activitybi_http_requests_total",
		Help: "HTTP requests by route and status code."}, []string{"route", "code"})
	s.dur = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "activitybi_http_request_duration_seconds",
		Help: "HTTP request latency by route.", Buckets: prometheus.ExponentialBuckets(0.0001, 3, 12)}, []string{"route"})
	edgesGauge := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "activitybi_edges_attached",
		Help: "Edge processes (activitybi mcp) attached to this core."}, func() float64 { return float64(len(s.edges.list())) })
	for _, c := range []prometheus.Collector{s.reqs, s.dur, edgesGauge} {
		if err := opts.Registry.Register(c); err != nil {
			return nil, err
		}
	}
	var err error
	if s.wait, err = newIngestWait(opts.Registry, opts.IngestWait, opts.IngestWaitBytes); err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	s.handle(mux, "GET /healthz", s.healthz)
	s.handle(mux, "GET /readyz", s.readyz)
	mux.Handle("GET /metrics", promhttp.HandlerFor(opts.Registry, promhttp.HandlerOpts{Registry: opts.Registry}))
	s.handle(mux, "POST /v1/sql", s.admin(s.sql))
	s.handle(mux, "GET /v1/status", s.admin(s.status))
	s.handle(mux, "POST /v1/shutdown", s.admin(s.shutdown))
	cop := http.NewCrossOriginProtection()
	s.handle(mux, "POST /v1/events", cop.Handler(http.HandlerFunc(s.events)).ServeHTTP)
	s.handle(mux, "POST /v1/insights", cop.Handler(http.HandlerFunc(s.insights)).ServeHTTP)
	s.handle(mux, "GET /v1/whoami", s.whoami) // whoami.go
	mcpHandler, err := s.mcpHandler()
	if err != nil {
		return nil, err
	}
	s.handle(mux, "/mcp", cop.Handler(mcpHandler).ServeHTTP)
	if opts.Dashboard != nil {
		s.handle(mux, "/", opts.Dashboard.ServeHTTP)
	}
	if opts.Artifacts != nil {
		s.handle(mux, "GET /artifacts/{id}", s.auditedArtifacts(opts.Artifacts.Handler(s.bearerCustomer)))
	}
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}

	// The socket: the same user's edges and CLI; no tokens.
	umux := http.NewServeMux()
	s.umux = umux
	s.handle(umux, "GET /healthz", s.healthz)
	s.handle(umux, "POST /v1/sql", s.sql)
	s.routeAudit(mux, umux) // POST /v1/audit on both: audit.go
	s.handle(umux, "GET /v1/status", s.status)
	s.handle(umux, "POST /v1/shutdown", s.shutdown)
	umux.HandleFunc("GET /v1/edges/attach", s.attach)
	s.handle(umux, "POST /v1/edges/metrics", s.edgeMetrics)
	s.handle(umux, "POST /v1/context", s.contextHandler)
	for _, op := range []string{"submit", "wait", "result", "cancel", "hash", "insight"} {
		s.handle(umux, "POST /v1/queries/"+op, s.queriesHandler(op))
	}
	s.handle(umux, "POST /v1/cards/render", s.cardsHandler("render"))
	s.handle(umux, "POST /v1/cards/artifact", s.cardsHandler("artifact"))
	// Profiles of the running core, for this user only (socket):
	// curl --unix-socket core.sock http://core/debug/pprof/heap
	umux.HandleFunc("GET /debug/pprof/", pprof.Index)
	umux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	s.usrv = &http.Server{Handler: umux, ReadHeaderTimeout: 10 * time.Second}
	return s, nil
}

// CheckListen refuses a non-loopback address unless insecure is set.
func CheckListen(addr string, insecure bool) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("listen: %q is not host:port: %v", addr, err)
	}
	if strings.EqualFold(host, "localhost") {
		// The listener binds what the name resolves to (/etc/hosts first):
		// it is loopback only if every address is.
		ips, err := lookupLocalhost(host)
		if err == nil && len(ips) > 0 && allLoopback(ips) {
			return nil
		}
		if insecure {
			return nil
		}
		return fmt.Errorf("listen: refusing to listen on %s: %s resolves to %v (%v), not only to loopback addresses, and TLS is not configured; listen on 127.0.0.1, or pass --insecure-listen", addr, host, ips, err)
	}
	ip := net.ParseIP(host)
	if ip != nil && ip.IsLoopback() {
		return nil
	}
	if insecure {
		return nil
	}
	return fmt.Errorf("listen: refusing to listen on %s: it is not a loopback address and TLS is not configured; pass --insecure-listen to do it anyway", addr)
}

// lookupLocalhost resolves the name "localhost"; tests replace it.
var lookupLocalhost = net.LookupIP

func allLoopback(ips []net.IP) bool {
	for _, ip := range ips {
		if !ip.IsLoopback() {
			return false
		}
	}
	return true
}

func (s *Server) handle(mux *http.ServeMux, pattern string, h http.HandlerFunc) {
	route := pattern[strings.IndexByte(pattern, ' ')+1:]
	if mux == s.umux {
		route = "socket:" + route
	}
	// The route's duration histogram and its count of 200s are looked up
	// once (on first use, so that /metrics shows no series a route never
	// served): hashing the labels on every request was measurable on
	// /mcp at thousands of calls per second.
	var ok200, dur atomic.Value // prometheus.Counter, prometheus.Observer
	mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rw := &statusWriter{ResponseWriter: w, code: 200}
		h(rw, r)
		if c, _ := ok200.Load().(prometheus.Counter); c != nil && rw.code == http.StatusOK {
			c.Inc()
		} else {
			c := s.reqs.WithLabelValues(route, strconv.Itoa(rw.code))
			c.Inc()
			if rw.code == http.StatusOK {
				ok200.Store(c)
			}
		}
		o, _ := dur.Load().(prometheus.Observer)
		if o == nil {
			o = s.dur.WithLabelValues(route)
			dur.Store(o)
		}
		o.Observe(time.Since(start).Seconds())
	})
}

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	w.code = code
	w.ResponseWriter.WriteHeader(code)
}

// Flush and Unwrap keep streaming responses (MCP's SSE) working through
// the metrics wrapper.
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Listen binds the address (and the socket) now, so the caller can publish
// the real address.
func (s *Server) Listen() (net.Addr, error) {
	ln, err := net.Listen("tcp", s.opts.Addr)
	if err != nil && s.opts.FreePortIfBusy && errors.Is(err, syscall.EADDRINUSE) {
		host, _, _ := net.SplitHostPort(s.opts.Addr)
		s.log.Warn("listen address in use; taking a free port", "addr", s.opts.Addr)
		ln, err = net.Listen("tcp", net.JoinHostPort(host, "0"))
	}
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", s.opts.Addr, err)
	}
	if s.opts.Socket != "" {
		uln, err := listenSocket(s.opts.Socket)
		if err != nil {
			ln.Close()
			return nil, err
		}
		s.uln = uln
	}
	s.ln = ln
	return ln.Addr(), nil
}

// Run serves until ctx ends, then shuts down gracefully: attached edges are
// told why, in-flight requests get shutdownTimeout.
func (s *Server) Run(ctx context.Context) error {
	if s.ln == nil {
		if _, err := s.Listen(); err != nil {
			return err
		}
	}
	errc := make(chan error, 2)
	n := 1
	go func() {
		if s.opts.TLSCert != "" {
			errc <- s.srv.ServeTLS(s.ln, s.opts.TLSCert, s.opts.TLSKey)
		} else {
			errc <- s.srv.Serve(s.ln)
		}
	}()
	if s.uln != nil {
		n++
		go func() { errc <- s.usrv.Serve(s.uln) }()
	}
	idleDone := make(chan struct{})
	defer close(idleDone)
	go s.watchIdle(idleDone)
	if s.tokens != nil {
		go s.tokens.run(idleDone)
	}
	var runErr error
	select {
	case runErr = <-errc:
		n--
	case <-ctx.Done():
	}
	reason := s.edges.stopReason()
	if reason == "" {
		reason = "signal"
		if runErr != nil {
			reason = "error"
		}
	}
	s.edges.stop(reason)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	for _, srv := range []*http.Server{s.srv, s.usrv} {
		if err := srv.Shutdown(sctx); err != nil {
			// Requests still running after the grace period are cut off;
			// the shutdown itself goes on.
			s.log.Warn("http: requests still running at shutdown were closed", "err", err)
			srv.Close()
		}
	}
	for ; n > 0; n-- {
		<-errc
	}
	if s.opts.Socket != "" {
		os.Remove(s.opts.Socket)
	}
	if runErr != nil && !errors.Is(runErr, http.ErrServerClosed) {
		return runErr
	}
	return nil
}

// shutdown serves POST /v1/shutdown (activitybi stop).
func (s *Server) shutdown(w http.ResponseWriter, _ *http.Request) {
	if s.opts.Shutdown == nil {
		writeJSON(w, http.StatusNotImplemented, errBody("this server cannot be stopped remotely"))
		return
	}
	s.edges.stop("stop")
	s.opts.Shutdown("stop")
	writeJSON(w, http.StatusAccepted, map[string]any{"status": "stopping", "pid": s.pid})
}

// bearer authenticates a request to an ingest route and returns its
// customer, or writes the error response.
func (s *Server) bearer(w http.ResponseWriter, r *http.Request) (string, bool) {
	if s.opts.Appender == nil {
		writeJSON(w, http.StatusServiceUnavailable, errBody("this core does not take events over HTTP"))
		return "", false
	}
	h := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || tok == "" {
		w.Header().Set("WWW-Authenticate", "Bearer")
		writeJSON(w, http.StatusUnauthorized, errBody("missing bearer token: create one with `activitybi token create --customer NAME` and send it as Authorization: Bearer TOKEN"))
		return "", false
	}
	if s.opts.VerifyToken == nil {
		writeJSON(w, http.StatusUnauthorized, errBody("this core has no token store"))
		return "", false
	}
	p, err := s.opts.VerifyToken(tok)
	if err != nil {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		writeJSON(w, http.StatusUnauthorized, errBody(err.Error()))
		return "", false
	}
	return p.Customer, true
}

// mcpHandler is Streamable HTTP MCP at /mcp: the same tools as the stdio
// edge, the customer taken from the bearer token on every request (so a
// revoked token stops a live session at its next request), and the
// streams and sessions a token opened ended within tokenCloseBound of its
// revocation or expiry (mcp_tokens.go).
func (s *Server) mcpHandler() (http.Handler, error) {
	if s.opts.Appender == nil {
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			writeJSON(w, http.StatusServiceUnavailable, errBody("this core does not serve MCP over HTTP"))
		}), nil
	}
	mo := MCPOptions{Appender: s.opts.Appender, Identity: TokenIdentity, Source: "mcp",
		Version: s.opts.Version, Recent: s.recent, Logger: s.opts.Logger, Now: s.opts.Now, Memory: s.opts.Memory,
		Templates: s.opts.Templates, Cards: s.opts.Cards, Audit: s.opts.Audit}
	if s.opts.Queries != nil {
		mo.Queries = s.opts.Queries
	}
	if s.opts.ToolMetrics != nil {
		mo.Metrics = s.opts.ToolMetrics
	}
	ms, err := NewMCPServer(mo)
	if err != nil {
		return nil, err
	}
	var sdk http.Handler = mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return ms },
		&mcp.StreamableHTTPOptions{SessionTimeout: mcpSessionTimeout})
	if s.opts.VerifyToken != nil {
		if s.tokens, err = newTokenGuard(s.opts.VerifyToken, ms, s.log, s.opts.Registry); err != nil {
			return nil, err
		}
		sdk = s.tokens.wrap(sdk)
	}
	// log_event calls on known sessions are answered without the go-sdk
	// (mcp_fast.go); everything else is the go-sdk's.
	h, err := newFastMCP(mo, ms, sdk, s.opts.Registry)
	if err != nil {
		return nil, err
	}
	if s.tokens != nil {
		s.tokens.forget = h.forget
	}
	verify := func(_ context.Context, tok string, r *http.Request) (*auth.TokenInfo, error) {
		if r.URL.Query().Has("customer") || r.Header.Get("X-Activitybi-Customer") != "" {
			return nil, fmt.Errorf("%w: a customer cannot be named in a request; it is the token's customer", auth.ErrInvalidToken)
		}
		if s.opts.VerifyToken == nil {
			return nil, fmt.Errorf("%w: this core has no token store", auth.ErrInvalidToken)
		}
		p, err := s.opts.VerifyToken(tok)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", auth.ErrInvalidToken, err)
		}
		return &auth.TokenInfo{UserID: p.Customer, Expiration: p.Expires, Extra: map[string]any{"token_id": p.TokenID}}, nil
	}
	return auth.RequireBearerToken(verify, &auth.RequireBearerTokenOptions{AllowMissingExpiration: true})(h), nil
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"status": "ok"})
}

func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	if s.opts.Uploader == nil {
		writeJSON(w, http.StatusOK, map[string]any{"status": "ready"})
		return
	}
	st := s.opts.Uploader()
	switch {
	case !st.Started:
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "starting"})
	case st.ConsecutiveFails >= 5:
		// Not the error's text: /readyz answers anyone who reaches the
		// listener, and a load's error can quote a customer's record (a
		// value the warehouse refused) or the server's paths. It is in the
		// core's log and in `activitybi status` (the socket, or the admin
		// token).
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "failing", "consecutive_failures": st.ConsecutiveFails,
			"detail": "the uploader's loads are failing; the reason is in the core's log and in `activitybi status`"})
	default:
		writeJSON(w, http.StatusOK, map[string]any{"status": "ready"})
	}
}

func (s *Server) admin(h http.HandlerFunc) http.HandlerFunc {
	want := []byte("Bearer " + s.opts.AdminToken)
	return func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			writeJSON(w, http.StatusUnauthorized, map[string]any{"error": "missing or wrong admin token (see core.json in the data directory)"})
			return
		}
		h(w, r)
	}
}

// SQLRequest is the body of POST /v1/sql.
type SQLRequest struct {
	SQL     string `json:"sql"`
	MaxRows int    `json:"max_rows"`
}

func (s *Server) sql(w http.ResponseWriter, r *http.Request) {
	var req SQLRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxSQLBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "bad request body: " + err.Error()})
		return
	}
	if req.MaxRows <= 0 || req.MaxRows > maxSQLRows {
		req.MaxRows = maxSQLRows
	}
	ctx, cancel := context.WithTimeout(r.Context(), sqlTimeout)
	defer cancel()
	start := time.Now()
	t, err := s.opts.Warehouse.Query(ctx, req.SQL, req.MaxRows)
	if err != nil {
		var ue *warehouse.UnsafeSQLError
		var code int
		switch {
		case errors.As(err, &ue):
			code = http.StatusBadRequest
		case errors.Is(err, warehouse.ErrClosed):
			code = http.StatusServiceUnavailable
		case ctx.Err() != nil:
			code = http.StatusGatewayTimeout
		default:
			// Parser and binder errors (unknown column, bad syntax) are the
			// analyst's to fix.
			code = http.StatusBadRequest
		}
		s.log.Info("admin sql refused or failed", "err", err)
		s.auditSQL(ctx, r, req.SQL, nil, nil, start, err)
		writeJSON(w, code, map[string]any{"error": err.Error()})
		return
	}
	s.log.Info("admin sql", "rows", len(t.Rows), "duration", time.Since(start))
	s.writeSQLResult(ctx, w, r, req.SQL, t, start)
}

// StatusResponse is the body of GET /v1/status.
type StatusResponse struct {
	Version   string          `json:"version"`
	DataDir   string          `json:"data_dir"`
	Core      CoreStatus      `json:"core"`
	Edges     []EdgeInfo      `json:"edges"`
	Spool     *SpoolStatus    `json:"spool,omitempty"`
	Uploader  upload.Status   `json:"uploader"`
	Warehouse warehouse.Stats `json:"warehouse"`
}

// CoreStatus describes the running core.
type CoreStatus struct {
	PID       int           `json:"pid"`
	StartedAt time.Time     `json:"started_at"`
	StartedBy string        `json:"started_by"`
	Addr      string        `json:"addr"`
	Socket    string        `json:"socket,omitempty"`
	IdleExit  time.Duration `json:"idle_exit_ns,omitempty"`
}

// SpoolStatus summarises the spool directory.
type SpoolStatus struct {
	Segments int   `json:"segments"`
	Bytes    int64 `json:"bytes"`
	Records  int64 `json:"records"`
	Pending  int64 `json:"pending"` // records not yet committed to the warehouse
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	resp := StatusResponse{Version: s.opts.Version, DataDir: s.opts.DataDir, Edges: s.edges.list(),
		Core: CoreStatus{PID: s.pid, StartedAt: s.started, StartedBy: s.opts.StartedBy, Socket: s.opts.Socket, IdleExit: s.opts.IdleExit}}
	if s.ln != nil {
		resp.Core.Addr = s.ln.Addr().String()
	}
	if s.opts.Uploader != nil {
		resp.Uploader = s.opts.Uploader()
	}
	if s.opts.SpoolDir != "" {
		if rep, err := spool.Stat(s.opts.SpoolDir); err == nil {
			resp.Spool = &SpoolStatus{Segments: len(rep.Segments), Bytes: rep.Bytes, Records: rep.Records, Pending: rep.Pending}
		}
	}
	st, err := s.opts.Warehouse.Stats(r.Context())
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]any{"error": err.Error()})
		return
	}
	resp.Warehouse = st
	writeJSON(w, http.StatusOK, resp)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	_ = enc.Encode(v)
}
