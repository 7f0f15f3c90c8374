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
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

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
)

// Querier is what the admin API needs from the warehouse.
type Querier interface {
	Query(ctx context.Context, sql string, maxRows int) (*warehouse.Table, error)
	Stats(ctx context.Context) (warehouse.Stats, error)
}

// Options configure a Server.
type Options struct {
	// Addr is host:port; required. A non-loopback host is refused unless
	// InsecureListen is set (TLS arrives with the HTTP MCP surface).
	Addr           string
	InsecureListen bool
	Registry       *prometheus.Registry // required
	Warehouse      Querier              // required
	// Uploader reports pipeline state for /readyz and status.
	Uploader func() upload.Status
	// AdminToken authorises the local admin API (/v1/sql, /v1/status).
	AdminToken string
	DataDir    string
	Version    string
	Logger     *slog.Logger
}

// Server is the core's HTTP server.
type Server struct {
	opts Options
	log  *slog.Logger
	ln   net.Listener
	srv  *http.Server
	reqs *prometheus.CounterVec
	dur  *prometheus.HistogramVec
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
	if err := CheckListen(opts.Addr, opts.InsecureListen); err != nil {
		return nil, err
	}
	s := &Server{opts: opts, log: telemetry.OrDiscard(opts.Logger)}
	s.reqs = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "activitybi_http_requests_total",
		Help: "HTTP requests by route and status code."}, []string{"route", "code"})
	s.dur = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "activitybi_http_request_duration_seconds",
		Help: "HTTP request latency by route.", Buckets: prometheus.ExponentialBuckets(0.0001, 3, 12)}, []string{"route"})
	if err := opts.Registry.Register(s.reqs); err != nil {
		return nil, err
	}
	if err := opts.Registry.Register(s.dur); err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	s.handle(mux, "GET /healthz", s.healthz)
	s.handle(mux, "GET /readyz", s.readyz)
	mux.Handle("GET /metrics", promhttp.HandlerFor(opts.Registry, promhttp.HandlerOpts{Registry: opts.Registry}))
	s.handle(mux, "POST /v1/sql", s.admin(s.sql))
	s.handle(mux, "GET /v1/status", s.admin(s.status))
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	return s, nil
}

// CheckListen refuses a non-loopback address unless insecure is set.
func CheckListen(addr string, insecure bool) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("listen: %q is not host:port: %v", addr, err)
	}
	if host == "localhost" {
		return nil
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

func (s *Server) handle(mux *http.ServeMux, pattern string, h http.HandlerFunc) {
	route := pattern[strings.IndexByte(pattern, ' ')+1:]
	mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rw := &statusWriter{ResponseWriter: w, code: 200}
		h(rw, r)
		s.reqs.WithLabelValues(route, fmt.Sprint(rw.code)).Inc()
		s.dur.WithLabelValues(route).Observe(time.Since(start).Seconds())
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

// Listen binds the address now, so the caller can publish the real one.
func (s *Server) Listen() (net.Addr, error) {
	ln, err := net.Listen("tcp", s.opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", s.opts.Addr, err)
	}
	s.ln = ln
	return ln.Addr(), nil
}

// Run serves until ctx ends, then shuts down gracefully.
func (s *Server) Run(ctx context.Context) error {
	if s.ln == nil {
		if _, err := s.Listen(); err != nil {
			return err
		}
	}
	errc := make(chan error, 1)
	go func() { errc <- s.srv.Serve(s.ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	if err := s.srv.Shutdown(sctx); err != nil {
		// Requests still running after the grace period are cut off; the
		// shutdown itself goes on.
		s.log.Warn("http: requests still running at shutdown were closed", "err", err)
		s.srv.Close()
	}
	<-errc
	return nil
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
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "failing", "error": st.LastError, "consecutive_failures": st.ConsecutiveFails})
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
		writeJSON(w, code, map[string]any{"error": err.Error()})
		return
	}
	s.log.Info("admin sql", "rows", len(t.Rows), "duration", time.Since(start))
	writeJSON(w, http.StatusOK, EncodeTable(t))
}

// StatusResponse is the body of GET /v1/status.
type StatusResponse struct {
	Version   string          `json:"version"`
	DataDir   string          `json:"data_dir"`
	Uploader  upload.Status   `json:"uploader"`
	Warehouse warehouse.Stats `json:"warehouse"`
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	resp := StatusResponse{Version: s.opts.Version, DataDir: s.opts.DataDir}
	if s.opts.Uploader != nil {
		resp.Uploader = s.opts.Uploader()
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
