package dashboard

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/activitybi/activitybi/internal/card"
	"github.com/activitybi/activitybi/internal/memory"
	"github.com/activitybi/activitybi/internal/telemetry"
	"github.com/activitybi/activitybi/internal/warehouse"
)

// Limits and defaults of a dashboard. Each limit that a page can hit is
// counted in activitybi_dashboard_limit_hits_total{limit}.
const (
	// PageTimeout bounds the warehouse work of one page view.
	PageTimeout = 30 * time.Second
	// MaxTableRows is the most rows a table on a page lists (tools,
	// models, projects, insights, tickets, artifacts); a longer list says
	// that it was cut (limit "rows").
	MaxTableRows = 100
	// MaxSeries is the most series a chart draws by name (activities,
	// models, tools); the rest are summed as "other".
	MaxSeries = 6
	// MaxChartTools is the most tools the latency charts draw.
	MaxChartTools = 10
	// MaxFailures is the most failed tool calls the Tools page lists.
	MaxFailures = 20
	// maxBucketRows bounds a time series result: buckets (at most ~120)
	// times series (MaxSeries + other).
	maxBucketRows = 2000
)

// Querier runs one of our read-only statements for one customer, where the
// customer tables' bare names see only that customer's rows. The warehouse
// drivers' CustomerQuery satisfies it.
type Querier interface {
	CustomerQuery(ctx context.Context, customer, q string, args []any, maxRows int) (*warehouse.Table, error)
}

var _ Querier = warehouse.Driver(nil)

// MemoryFunc returns what get_context serves a customer now for a scope
// ("" for all): the core wires the same cache tiers and builder as the
// get_context tool.
type MemoryFunc func(ctx context.Context, customer, scope string) (*memory.Context, error)

// PipelineStatus is the state of the core's intake, for the Pipeline page.
// It is process-wide (every customer's events share the spool), so the page
// shows counts only, never records.
type PipelineStatus struct {
	// UploaderState is a word for the uploader: running, retrying,
	// stopped, not started.
	UploaderState string
	// SpoolPending is how many records the spool holds that are not yet in
	// the warehouse (the core's spool writer's Pending()); nil when not
	// known, and the page says so rather than show 0.
	SpoolPending *int64
	// MaxPending is the backpressure limit (0 = unknown).
	MaxPending int64
	// BacklogBytes are spool bytes not yet committed; Segments the spool's
	// segment files.
	BacklogBytes int64
	Segments     int
	// Lag is, for the last committed batch, the longest time from a
	// record's acceptance to its commit.
	Lag        time.Duration
	LastCommit time.Time
	// LastError and ConsecutiveFailures describe a failing warehouse.
	LastError           string
	ConsecutiveFailures int
	// Quarantined counts records moved to upload_quarantine.
	Quarantined int64
}

// Options configure New. Zero means the default.
type Options struct {
	// Warehouse runs every page's statements as the signed-in customer;
	// required.
	Warehouse Querier
	// Auth says who sees which customer: Local(customer) on a loopback
	// core, Tokens(verify) in server mode; required.
	Auth Auth
	// CardMetrics counts the dashboard's chart renders with the card
	// package's metrics; nil counts nothing.
	CardMetrics *card.Metrics
	// Memory feeds the Memory page; nil shows that memory is not wired.
	Memory MemoryFunc
	// Pipeline feeds the Pipeline page; nil shows that the core's intake
	// status is not wired (the customer's own arrivals are still shown).
	Pipeline func() PipelineStatus
	// Registry gets the dashboard's metrics; nil registers none.
	Registry prometheus.Registerer
	// Logger gets a line per failed page; nil discards.
	Logger *slog.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time
	// SessionTTL is how long a server-mode login lasts; default
	// DefaultSessionTTL.
	SessionTTL time.Duration
	// MaxSessions bounds server-mode logins held at once; default
	// DefaultMaxSessions.
	MaxSessions int
}

// Dashboard serves the web pages. It is safe for concurrent use.
type Dashboard struct {
	opts     Options
	log      *slog.Logger
	now      func() time.Time
	m        *metrics
	pages    *template.Template
	login    *template.Template
	sessions *sessionStore
	static   http.Handler
}

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// New validates opts and prepares the pages.
func New(opts Options) (*Dashboard, error) {
	if opts.Warehouse == nil {
		return nil, errors.New("dashboard: Options.Warehouse is required")
	}
	if err := opts.Auth.validate(); err != nil {
		return nil, err
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.SessionTTL < 0 || opts.MaxSessions < 0 {
		return nil, errors.New("dashboard: SessionTTL and MaxSessions must not be negative")
	}
	if opts.SessionTTL == 0 {
		opts.SessionTTL = DefaultSessionTTL
	}
	if opts.MaxSessions == 0 {
		opts.MaxSessions = DefaultMaxSessions
	}
	m, err := newMetrics(opts.Registry)
	if err != nil {
		return nil, fmt.Errorf("dashboard: metrics: %w", err)
	}
	pages, err := template.New("layout.html").ParseFS(templateFS, "templates/layout.html")
	if err != nil {
		return nil, fmt.Errorf("dashboard: templates: %w", err)
	}
	login, err := template.New("login.html").ParseFS(templateFS, "templates/login.html")
	if err != nil {
		return nil, fmt.Errorf("dashboard: templates: %w", err)
	}
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, err
	}
	d := &Dashboard{
		opts: opts, log: telemetry.OrDiscard(opts.Logger), now: opts.Now, m: m,
		pages: pages, login: login,
		sessions: newSessionStore(opts.SessionTTL, opts.MaxSessions, opts.Now, m),
		static:   http.StripPrefix("/static/", http.FileServerFS(sub)),
	}
	return d, nil
}

// pageDef is one dashboard page: its path, nav label and builder.
type pageDef struct {
	Name, Path, Label string
	build             func(d *Dashboard, ctx context.Context, customer string, f Filter, v *view) error
}

// pageList is the navigation, in order.
var pageList = []pageDef{
	{"overview", "/", "Overview", (*Dashboard).overview},
	{"tools", "/tools", "Tools", (*Dashboard).tools},
	{"cost", "/cost", "Cost", (*Dashboard).cost},
	{"insights", "/insights", "Insights", (*Dashboard).insights},
	{"queries", "/queries", "Queries", (*Dashboard).queries},
	{"memory", "/memory", "Memory", (*Dashboard).memoryPage},
	{"pipeline", "/pipeline", "Pipeline", (*Dashboard).pipeline},
}

// Handler serves the dashboard: the pages, /login, /logout and /static/.
// The core mounts it on its TCP listener at "/".
func (d *Dashboard) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /static/", d.static)
	mux.HandleFunc("GET /login", d.loginForm)
	mux.HandleFunc("POST /login", d.loginSubmit)
	mux.HandleFunc("POST /logout", d.logout)
	for _, p := range pageList {
		pattern := "GET " + p.Path
		if p.Path == "/" {
			pattern = "GET /{$}"
		}
		mux.Handle(pattern, d.pageHandler(p))
	}
	mux.HandleFunc("/", d.notFound)
	return d.secure(mux)
}

// view is what the layout template draws.
type view struct {
	Page, Title string
	Customer    string
	Server      bool // token mode: show the sign-out button
	CSRF        string
	Nav         []navLink
	Presets     []navLink
	Form        formValues
	FilterLabel string
	// ShowFilter shows the filter form; ScopeOnly leaves the range out of
	// it (pages the range does not apply to).
	ShowFilter   bool
	ScopeOnly    bool
	RangeOptions []option
	Status       int
	Error        string
	Notes        []string
	KPIs         []kpi
	Sections     []section
	AsOf         string
}

type navLink struct {
	Label, Href string
	Active      bool
}

type option struct {
	Value, Label string
	Selected     bool
}

// rangeOptions are the range list of the filter form: the presets and
// "custom dates", which sends no range so that from and to apply.
func rangeOptions(selected string) []option {
	out := make([]option, 0, len(presets)+1)
	for _, p := range presets {
		out = append(out, option{Value: p.Name, Label: p.Label, Selected: p.Name == selected})
	}
	return append(out, option{Value: "", Label: "Custom dates (from, to)", Selected: selected == ""})
}

type formValues struct {
	Range, From, To, Scope string
}

type kpi struct {
	Key, Label, Value, Note string
}

type section struct {
	ID, Title, Note string
	// Chart is the chart as a data: URL of its SVG: drawn by an <img>, an
	// SVG can run no script and its styles do not meet the page's CSP.
	Chart    template.URL
	ChartAlt string
	Table    *tableView
	Pre      string
	Empty    string // shown when there is nothing else
}

type tableView struct {
	Cols []column
	Rows [][]cell
	More string
}

type column struct {
	Label string
	Num   bool
}

type cell struct {
	Text  string
	HTML  template.HTML
	Href  string
	ID    string
	Num   bool
	Mono  bool
	Title string
}

// pageHandler runs one page: who is asking, which filter, the data, the
// template, the metrics.
func (d *Dashboard) pageHandler(p pageDef) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		customer, sess, ok := d.authenticate(w, r)
		if !ok {
			d.m.renders.WithLabelValues(p.Name, "auth").Inc()
			return
		}
		v := &view{Page: p.Name, Title: p.Label, Customer: customer, Server: d.opts.Auth.server(), ShowFilter: true}
		if sess != nil {
			v.CSRF = sess.csrf
		}
		now := d.now().UTC()
		v.AsOf = now.Format("2006-01-02 15:04:05") + " UTC"
		q := r.URL.Query()
		v.Form = formValues{Range: q.Get("range"), From: q.Get("from"), To: q.Get("to"), Scope: q.Get("scope")}
		f, err := ParseFilter(q, now)
		status := http.StatusOK
		sel := v.Form.Range
		if sel == "" && v.Form.From == "" && v.Form.To == "" {
			sel = DefaultPreset
		}
		v.RangeOptions = rangeOptions(sel)
		if err != nil {
			var fe *FilterError
			if errors.As(err, &fe) && fe.LimitHit != "" {
				d.m.limit(fe.LimitHit)
			}
			status = http.StatusBadRequest
			v.Error = err.Error()
			v.Nav = navLinks(p.Name, "")
			v.Presets = presetLinks(p.Path, Filter{Scope: f.Scope})
		} else {
			if v.Form.Range == "" && v.Form.From == "" {
				v.Form.Range = f.Preset
			}
			v.FilterLabel = f.Label()
			if f.Scope != "" {
				v.FilterLabel += ", project " + f.Scope
			}
			v.Nav = navLinks(p.Name, f.Query().Encode())
			v.Presets = presetLinks(p.Path, f)
			ctx, cancel := context.WithTimeout(r.Context(), PageTimeout)
			err = p.build(d, ctx, customer, f, v)
			cancel()
			if err != nil {
				status = http.StatusInternalServerError
				var be *badRequestError
				if errors.As(err, &be) {
					status = http.StatusBadRequest
				} else {
					d.log.Error("dashboard page failed", "page", p.Name, "err", err)
				}
				v.Error = err.Error()
				v.KPIs, v.Sections = nil, nil
			}
		}
		v.Status = status
		d.write(w, d.pages, v, status)
		d.m.renders.WithLabelValues(p.Name, strconv.Itoa(status)).Inc()
		d.m.duration.WithLabelValues(p.Name).Observe(time.Since(start).Seconds())
	})
}

// badRequestError is a page error caused by the address (an unknown scope
// on the Memory page), answered with 400.
type badRequestError struct{ msg string }

func (e *badRequestError) Error() string { return e.msg }

// write renders t into a buffer first, so that a template error never
// leaves half a page behind a 200.
func (d *Dashboard) write(w http.ResponseWriter, t *template.Template, data any, status int) {
	var buf bytes.Buffer
	if err := t.Execute(&buf, data); err != nil {
		d.log.Error("dashboard template failed", "err", err)
		http.Error(w, "the page could not be drawn; the server log has the reason", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func (d *Dashboard) notFound(w http.ResponseWriter, r *http.Request) {
	customer, sess, ok := d.authenticate(w, r)
	if !ok {
		return
	}
	v := &view{Page: "", Title: "Not found", Customer: customer, Server: d.opts.Auth.server(),
		Nav: navLinks("", ""), Status: http.StatusNotFound,
		Error: fmt.Sprintf("there is no page at %s; the pages are listed above", r.URL.Path)}
	if sess != nil {
		v.CSRF = sess.csrf
	}
	d.write(w, d.pages, v, http.StatusNotFound)
	d.m.renders.WithLabelValues("not_found", "404").Inc()
}

func navLinks(active, query string) []navLink {
	out := make([]navLink, len(pageList))
	for i, p := range pageList {
		out[i] = navLink{Label: p.Label, Href: pathWithQuery(p.Path, query), Active: p.Name == active}
	}
	return out
}

func presetLinks(path string, f Filter) []navLink {
	out := make([]navLink, len(presets))
	for i, p := range presets {
		q := Filter{Preset: p.Name, Scope: f.Scope}.Query().Encode()
		out[i] = navLink{Label: p.Name, Href: pathWithQuery(path, q), Active: f.Preset == p.Name}
	}
	return out
}

func pathWithQuery(path, query string) string {
	if query == "" {
		return path
	}
	return path + "?" + query
}
