package dashboard

import (
	"context"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/activitybi/activitybi/internal/warehouse"
	"github.com/activitybi/activitybi/internal/warehouse/duckdb"
)

// bundle is what setup returns beside the dashboard.
type bundle struct {
	fx  *fx
	reg *prometheus.Registry
}

// setup makes a dashboard on the fixture with auth (Local("alice") when
// zero).
func setup(t *testing.T, auth Auth) (*Dashboard, bundle) {
	t.Helper()
	f := fixture(t)
	d, b := setupOn(t, f.db, auth)
	b.fx = f
	return d, b
}

func setupOn(t testing.TB, db *duckdb.DB, auth Auth) (*Dashboard, bundle) {
	t.Helper()
	if auth.local == "" && auth.verify == nil {
		auth = Local("alice")
	}
	reg := prometheus.NewRegistry()
	d, err := New(Options{Warehouse: db, Auth: auth, Memory: memoryOf(t, db), Pipeline: fxPipeline,
		Registry: reg, Now: func() time.Time { return fxNow }})
	if err != nil {
		t.Fatal(err)
	}
	return d, bundle{reg: reg}
}

// get serves one local GET from the loopback interface.
func get(t testing.TB, h http.Handler, target string) (*http.Response, string) {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, target, nil)
	r.RemoteAddr = "127.0.0.1:50000"
	r.Host = "127.0.0.1:7314"
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	res := w.Result()
	body, _ := io.ReadAll(res.Body)
	return res, string(body)
}

var kpiRE = regexp.MustCompile(`data-kpi="([^"]+)"><div class="value">([^<]*)</div>`)

// kpis reads the KPI cards of a page: key -> shown value.
func kpis(body string) map[string]string {
	out := map[string]string{}
	for _, m := range kpiRE.FindAllStringSubmatch(body, -1) {
		out[m[1]] = html.UnescapeString(m[2])
	}
	return out
}

var tagRE = regexp.MustCompile(`(?s)<(script|style)[^>]*>.*?</(script|style)>|<[^>]+>`)

// text is a page's visible text with whitespace collapsed, roughly what a
// person reads.
func text(body string) string {
	s := tagRE.ReplaceAllString(body, " ")
	return strings.Join(strings.Fields(html.UnescapeString(s)), " ")
}

// rowText is the visible text of the table row containing needle.
func rowText(t testing.TB, body, needle string) string {
	t.Helper()
	for _, row := range strings.Split(body, "<tr>")[1:] {
		if i := strings.Index(row, "</tr>"); i >= 0 {
			row = row[:i]
		}
		if strings.Contains(text(row), needle) {
			return text(row)
		}
	}
	t.Fatalf("no table row contains %q", needle)
	return ""
}

func checkKPIs(t testing.TB, page string, got map[string]string, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: KPI %s = %q, want %q (all: %v)", page, k, got[k], v, got)
		}
	}
}

func noBob(t testing.TB, page, body string) {
	t.Helper()
	for _, m := range bobMarkers {
		if strings.Contains(body, m) {
			i := strings.Index(body, m)
			t.Errorf("%s: bob's %q is on alice's page: ...%s...", page, m, body[max(0, i-80):min(len(body), i+80)])
		}
	}
}

// pageWant is what a page shows on the fixture, default range (the last 7
// days before fxNow): KPI values by key, table rows by a cell's text (the
// row's whole visible text), and text the page has.
type pageWant struct {
	kpis map[string]string
	rows map[string]string
	has  []string
}

// fixturePages: the numbers are worked out from the fixture.
var fixturePages = map[string]pageWant{
	"/": {
		// 16 events in 7 days; sessions a1, a2; prompts 3; tool calls 6
		// of which 2 failed (a false success, a false success with an
		// error); cost 1.25 + 0.75 + 0.10 + 10.24.
		kpis: map[string]string{"events": "16", "sessions": "2", "prompts": "3", "tool_calls": "6", "tool_errors": "2", "cost": "$12.34"},
		// Bash: 100, 300, 900 ms -> p50 300, p95 300 + 0.9 * 600 = 840.
		// Read: 20, 40 -> p50 30, p95 39. WebFetch: no duration.
		rows: map[string]string{"Bash @shell": "Bash @shell 3 1 300 ms 840 ms", "Read @fs": "Read @fs 2 0 30 ms 39 ms", "WebFetch @fetch": "WebFetch @fetch 1 1 — —"},
		has:  []string{"33.3% of calls", "Last 7 days", `alt="Events per day by activity"`, `alt="Cost by model per day"`, `alt="p50 and p95 latency by tool"`},
	},
	"/tools": {
		kpis: map[string]string{"tool_calls": "6", "tools": "3", "tool_errors": "2", "error_rate": "33.3%", "slowest_p95": "840 ms"},
		// p99 of Bash 300 + 0.98 * 600 = 888; max 900.
		rows: map[string]string{"Bash @shell": "Bash @shell 3 1 33.3% 300 ms 840 ms 888 ms 900 ms 2026-03-30 09:05",
			"exit status 1": "2026-03-30 09:05 Bash @shell exit status 1"},
		has: []string{"Latest failed calls", "WebFetch @fetch"},
	},
	"/cost": {
		// per day: 12.34 / 7; tokens 1200+800+400+2000 and 300+200+100+500.
		kpis: map[string]string{"cost": "$12.34", "cost_per_day": "$1.76", "responses": "4", "input_tokens": "4,400", "output_tokens": "1,100"},
		rows: map[string]string{
			"claude-opus-4-1":   "claude-opus-4-1 1 2,000 500 $10.24 83.0%",
			"claude-sonnet-4-5": "claude-sonnet-4-5 2 2,000 500 $2.00 16.2%",
			"claude-haiku-4-5":  "claude-haiku-4-5 1 400 100 $0.10 0.8%",
			// website: 0.10 + 10.24 through session a2; billing: a1's.
			"website": "website 2 $10.34 83.8%",
			"billing": "billing 2 $2.00 16.2%",
		},
	},
	"/insights": {
		// 3 Bash atoms in 7 days + user + billing + website + cost.
		kpis: map[string]string{"atoms": "7", "series": "5", "with_provenance": "2", "unverified": "5"},
		rows: map[string]string{
			"p95_latency_ms": "tool:Bash p95_latency_ms 600 3 2026-03-30 10:00 ticket tkt-0001 (tool_latency) · unverified",
			"daily_usd":      "cost daily_usd 1.25 — 1 2026-03-30 11:00 query fedcba987654… (no ticket stored) · unverified",
			"deploy_cmd":     "project:billing deploy_cmd make deploy — 1 2026-03-29 10:00 none given · unverified",
		},
		has: []string{`aria-label="trend of 3 values"`},
	},
	"/queries": {
		kpis: map[string]string{"tickets": "3", "state_succeeded": "1", "state_failed": "1", "state_running": "1", "artifacts": "2"},
		rows: map[string]string{
			"tkt-0001": `tkt-0001 tool_latency {"template":"tool_latency","params":{"days":7}} succeeded 12 rows, 2.0 KiB, sampled at 10.0% 2.5 s 2026-03-30 08:00 2026-04-06 08:00`,
			"tkt-0002": `tkt-0002 cost_by_model {"template":"cost_by_model","params":{"days":30}} failed: timeout after 30s 30.0 s 2026-03-31 09:00`,
			"tkt-0003": `tkt-0003 top_activities {"template":"top_activities"} running 40.0% (reading claude_stream) — 2026-03-31 11:00`,
			// The card: its id and size are the store's.
			"tool-latency.svg": "tool-latency.svg card_svg image/svg+xml {card_size} 2026-03-30 08:00 2026-04-06 08:00",
		},
		has: []string{`href="/artifacts/{card_id}"`, `<img class="thumb" src="/artifacts/{card_id}"`,
			// tkt-0001's result cell and its row among the artifacts.
			`title="the whole result, NDJSON"><a href="/artifacts/{result_id}">12 rows`, `tkt-0001.ndjson`},
	},
	"/memory": {
		// The memory builder's 30-day window: sessions a0, a1, a2 and the
		// one without a session_id; facts user + two projects.
		kpis: map[string]string{"facts": "3", "sessions": "4", "tools": "3"},
		has:  []string{"What get_context returns", "prefers_language", "make deploy"},
	},
	"/pipeline": {
		// The latest of alice's events arrived 2026-03-31 08:05:02.
		kpis: map[string]string{"uploader": "running", "spool_pending": "1,234", "backlog": "3.0 MiB", "lag": "350 ms",
			"last_commit": "12 s ago", "quarantined": "2", "last_received": "3 h ago", "last_hour": "0"},
		rows: map[string]string{"mcp": "mcp 16 2026-03-31 08:05 2.0 s"},
		has:  []string{"1.2% of the 100,000 limit"},
	},
}

// pagePaths are fixturePages' paths in navigation order.
var pagePaths = []string{"/", "/tools", "/cost", "/insights", "/queries", "/memory", "/pipeline"}

func TestPagesShowTheFixture(t *testing.T) {
	t.Parallel()
	d, b := setup(t, Auth{})
	h := d.Handler()
	rep := b.fx.replacer(false)
	for _, path := range pagePaths {
		want := fixturePages[path]
		res, body := get(t, h, path)
		if res.StatusCode != http.StatusOK {
			t.Errorf("%s: status %d: %s", path, res.StatusCode, text(body))
			continue
		}
		checkKPIs(t, path, kpis(body), want.kpis)
		for needle, row := range want.rows {
			if got := rowText(t, body, needle); got != rep.Replace(row) {
				t.Errorf("%s: row %q\n got %q\nwant %q", path, needle, got, rep.Replace(row))
			}
		}
		for _, s := range want.has {
			if !strings.Contains(body, rep.Replace(s)) {
				t.Errorf("%s: page lacks %q", path, rep.Replace(s))
			}
		}
		noBob(t, path, body)
		if strings.Contains(body, "data-error") {
			t.Errorf("%s: error banner: %s", path, text(body))
		}
		goldenPage(t, path, b.fx.replacer(true).Replace(body))
	}
	if got := testutil.ToFloat64(d.m.renders.WithLabelValues("overview", "200")); got != 1 {
		t.Errorf("renders{overview,200} = %v, want 1", got)
	}
	if n, err := testutil.GatherAndCount(b.reg, "activitybi_dashboard_render_duration_seconds"); err != nil || n != len(pagePaths) {
		t.Errorf("render duration series = %d (%v), want %d", n, err, len(pagePaths))
	}
}

var (
	cellEndRE  = regexp.MustCompile(`</t[dh]>`)
	blockEndRE = regexp.MustCompile(`</(tr|h1|h2|p|div|section|header|pre|form|nav|label|a)>|<br>|<pre[^>]*>`)
)

// goldenText is a page's visible text, a line per block and " | "
// between table cells, for a readable golden file.
func goldenText(body string) string {
	s := cellEndRE.ReplaceAllString(body, " | ")
	s = blockEndRE.ReplaceAllString(s, "\n")
	s = tagRE.ReplaceAllString(s, " ")
	var out []string
	for _, line := range strings.Split(html.UnescapeString(s), "\n") {
		if l := strings.Join(strings.Fields(line), " "); l != "" {
			out = append(out, strings.TrimSuffix(l, " |"))
		}
	}
	return strings.Join(out, "\n") + "\n"
}

// goldenPage compares a page's visible text with testdata/pages/<name>.txt.
func goldenPage(t testing.TB, path, body string) {
	t.Helper()
	name := strings.Trim(path, "/")
	if name == "" {
		name = "overview"
	}
	file := filepath.Join("testdata", "pages", name+".txt")
	got := goldenText(body)
	if *update {
		if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v (run with -update to write it)", err)
	}
	if string(want) != got {
		t.Errorf("%s: page text differs from %s (run with -update and review the diff):\n%s", path, file, got)
	}
}

func TestRangeAndScope(t *testing.T) {
	t.Parallel()
	d, _ := setup(t, Auth{})
	h := d.Handler()
	cases := []struct {
		query string
		want  map[string]string
	}{
		// 30 days adds 2026-03-20: 3 events, session a0, one Bash call, $3.
		{"range=30d", map[string]string{"events": "19", "sessions": "3", "tool_calls": "7", "cost": "$15.34"}},
		// Only 2026-03-30 (a whole UTC day): session a1.
		{"from=2026-03-30&to=2026-03-30", map[string]string{"events": "9", "sessions": "1", "tool_calls": "4", "tool_errors": "1", "cost": "$2.00"}},
		// RFC 3339 bounds, to excluded: 09:02 up to 09:05 -> three calls.
		{"from=2026-03-30T09:02:00Z&to=2026-03-30T09:05:00Z", map[string]string{"events": "3", "tool_calls": "3", "tool_errors": "0", "cost": "$0.00"}},
		// billing: session a1 (7 days); bob's billing session is not alice's.
		{"scope=billing", map[string]string{"events": "9", "sessions": "1", "prompts": "2", "tool_calls": "4", "tool_errors": "1", "cost": "$2.00"}},
		{"range=30d&scope=billing", map[string]string{"events": "12", "sessions": "2", "tool_calls": "5", "cost": "$5.00"}},
		{"scope=website", map[string]string{"events": "6", "sessions": "1", "cost": "$10.34"}},
		// bob's project is not alice's: nothing, not an error.
		{"scope=bobproj", map[string]string{"events": "0", "sessions": "0", "cost": "$0.00"}},
		{"range=24h", map[string]string{"events": "6", "sessions": "1", "cost": "$10.34"}},
	}
	for _, c := range cases {
		res, body := get(t, h, "/?"+c.query)
		if res.StatusCode != http.StatusOK {
			t.Errorf("%s: status %d: %s", c.query, res.StatusCode, text(body))
			continue
		}
		checkKPIs(t, c.query, kpis(body), c.want)
	}
	// The scope also narrows insights: website's fact drops out.
	_, body := get(t, h, "/insights?scope=billing")
	checkKPIs(t, "insights?scope=billing", kpis(body), map[string]string{"atoms": "6", "series": "4"})
	if strings.Contains(body, "hugo") {
		t.Error("insights?scope=billing shows website's framework")
	}
	// Filters are carried across the navigation.
	if !strings.Contains(body, `href="/tools?range=7d&amp;scope=billing"`) {
		t.Errorf("nav does not keep the filter: %s", body[:min(len(body), 2000)])
	}
}

func TestBadFilters(t *testing.T) {
	t.Parallel()
	d, _ := setup(t, Auth{})
	h := d.Handler()
	cases := map[string]string{
		"range=2w":                          `range: "2w" is not a range; use one of 24h, 7d, 30d, 90d, or from and to`,
		"range=7d&from=2026-03-01":          `range: "7d" cannot be combined with from/to`,
		"to=2026-03-01":                     `to: "2026-03-01" needs a from`,
		"from=yesterday":                    `from: "yesterday" is not a day (YYYY-MM-DD, e.g. 2026-03-01) or an RFC 3339 time`,
		"from=2026-03-10&to=2026-03-01":     "is not before to",
		"from=2024-01-01&to=2026-03-01":     "the range spans 791 days; at most 366 days are shown at once",
		"customer=bob":                      "customer: a page cannot name a customer",
		"scope=a%0Ab":                       "scope: \"a\\nb\" contains a control character",
		"range=7d&range=30d":                "range: given 2 times",
		"from=1969-12-31":                   "outside 1970-01-01 to 9999-01-01",
		"scope=" + strings.Repeat("x", 300): "scope: 300 characters long; a project name has at most 255",
	}
	for q, want := range cases {
		for _, path := range []string{"/", "/cost", "/memory"} {
			res, body := get(t, h, path+"?"+q)
			if res.StatusCode != http.StatusBadRequest {
				t.Errorf("%s?%s: status %d, want 400", path, q, res.StatusCode)
			}
			if !strings.Contains(text(body), want) {
				t.Errorf("%s?%s: message lacks %q:\n%s", path, q, want, text(body))
			}
			if strings.Contains(body, `data-kpi=`) {
				t.Errorf("%s?%s: a page with a bad filter shows numbers", path, q)
			}
		}
	}
	if got := testutil.ToFloat64(d.m.limits.WithLabelValues("range")); got != 3 {
		t.Errorf("limit_hits{range} = %v, want 3 (one per page)", got)
	}
	// An unknown scope on the Memory page is memory's error, as a 400.
	res, body := get(t, h, "/memory?scope=nosuchproject")
	if res.StatusCode != http.StatusBadRequest || !strings.Contains(text(body), "nosuchproject") {
		t.Errorf("memory with an unknown scope: %d %s", res.StatusCode, text(body))
	}
	res, _ = get(t, h, "/nosuchpage")
	if res.StatusCode != http.StatusNotFound {
		t.Errorf("unknown page: %d", res.StatusCode)
	}
}

func TestLocalModeServesThisMachineOnly(t *testing.T) {
	t.Parallel()
	d, _ := setup(t, Auth{})
	h := d.Handler()
	cases := []struct {
		remote, host string
		want         int
	}{
		{"127.0.0.1:5000", "127.0.0.1:7314", 200},
		{"127.0.0.1:5000", "localhost:7314", 200},
		{"[::1]:5000", "[::1]:7314", 200},
		{"127.0.0.1:5000", "LOCALHOST", 200},
		// DNS rebinding: a page on evil.example whose name now resolves to 127.0.0.1.
		{"127.0.0.1:5000", "evil.example:7314", 403},
		{"127.0.0.1:5000", "127.0.0.1.evil.example", 403},
		// Another machine, even naming localhost.
		{"192.0.2.7:5000", "localhost:7314", 403},
	}
	for _, c := range cases {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr, r.Host = c.remote, c.host
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != c.want {
			t.Errorf("remote %s host %s: %d, want %d: %s", c.remote, c.host, w.Code, c.want, w.Body.String())
		}
		for k, v := range map[string]string{"X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff", "Content-Security-Policy": contentSecurityPolicy} {
			if got := w.Header().Get(k); got != v {
				t.Errorf("%s = %q, want %q", k, got, v)
			}
		}
	}
	// Through a reverse proxy on this machine: loopback address and Host,
	// but forwarded for someone else.
	for _, hdr := range []string{"X-Forwarded-For", "Forwarded", "X-Real-IP", "X-Forwarded-Host"} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr, r.Host = "127.0.0.1:5000", "127.0.0.1:7314"
		r.Header.Set(hdr, "192.0.2.7")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), "through a proxy") {
			t.Errorf("%s in local mode: %d %s", hdr, w.Code, w.Body.String())
		}
		if _, err := d.Customer(r); err == nil {
			t.Errorf("%s in local mode: Customer signed in", hdr)
		}
	}
	// A header naming a customer is refused.
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.RemoteAddr, r.Host = "127.0.0.1:5000", "127.0.0.1"
	r.Header.Set("X-Activitybi-Customer", "bob")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusBadRequest {
		t.Errorf("customer header: %d", w.Code)
	}
	// No sign-in in local mode.
	res, _ := get(t, h, "/login")
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/" {
		t.Errorf("GET /login in local mode: %d %s", res.StatusCode, res.Header.Get("Location"))
	}
	// The stylesheet is served, typed.
	res, body := get(t, h, "/static/style.css")
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/css") || !strings.Contains(body, ".kpi") {
		t.Errorf("style.css: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
}

// tokens is a token store for tests: token -> customer, revocable.
type tokens struct {
	mu sync.Mutex
	m  map[string]string
}

func (s *tokens) verify(tok string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.m[tok]
	if !ok {
		return "", errors.New("unknown or revoked token")
	}
	return c, nil
}

func (s *tokens) revoke(tok string) {
	s.mu.Lock()
	delete(s.m, tok)
	s.mu.Unlock()
}

const (
	aliceToken = "abi_alice01_0123456789abcdef0123456789abcdef"
	bobToken   = "abi_bob0001_fedcba9876543210fedcba9876543210"
)

// client is a browser-like HTTP client for a real server: a cookie jar,
// no redirects followed, and Sec-Fetch-Site on POSTs as browsers send it.
func client(t testing.TB) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func post(t testing.TB, c *http.Client, u string, form url.Values, site string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if site != "" {
		req.Header.Set("Sec-Fetch-Site", site)
	}
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

func fetch(t testing.TB, c *http.Client, u string) (*http.Response, string) {
	t.Helper()
	res, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func TestTokenSignIn(t *testing.T) {
	t.Parallel()
	store := &tokens{m: map[string]string{aliceToken: "alice", bobToken: "bob"}}
	d, _ := setup(t, Tokens(store.verify))
	srv := httptest.NewServer(d.Handler())
	defer srv.Close()
	c := client(t)

	// No cookie: to the sign-in, remembering the page.
	res, _ := fetch(t, c, srv.URL+"/tools?range=30d")
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/login?next=%2Ftools%3Frange%3D30d" {
		t.Fatalf("no cookie: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	res, body := fetch(t, c, srv.URL+"/login?next=%2Ftools%3Frange%3D30d")
	if res.StatusCode != 200 || !strings.Contains(body, `name="token"`) || !strings.Contains(body, `value="/tools?range=30d"`) {
		t.Fatalf("login form: %d %s", res.StatusCode, body)
	}
	// Bad tokens: 401 with the reason; no cookie.
	for tok, want := range map[string]string{
		"abi_nope_0000":      "That token was not accepted: unknown or revoked token.",
		"hunter2":            "That is not an activitybi token: tokens look like abi_<id>_<secret>",
		"":                   "Paste your token (abi_...) to sign in.",
		"abi_a" + aliceToken: "That token was not accepted",
	} {
		res, body := post(t, c, srv.URL+"/login", url.Values{"token": {tok}}, "same-origin")
		wantCode := http.StatusUnauthorized
		if tok == "" {
			wantCode = http.StatusBadRequest
		}
		if res.StatusCode != wantCode || !strings.Contains(html.UnescapeString(body), want) {
			t.Errorf("token %q: %d, want %d with %q: %s", tok, res.StatusCode, wantCode, want, text(body))
		}
		if len(res.Cookies()) != 0 {
			t.Errorf("token %q set a cookie", tok)
		}
	}
	// A sign-in posted from another site is refused before the token is looked at.
	res, body = post(t, c, srv.URL+"/login", url.Values{"token": {aliceToken}}, "cross-site")
	if res.StatusCode != http.StatusForbidden || len(res.Cookies()) != 0 {
		t.Errorf("cross-site sign-in: %d %s", res.StatusCode, body)
	}
	// Too big a form.
	res, _ = post(t, c, srv.URL+"/login", url.Values{"token": {strings.Repeat("a", MaxLoginBody)}}, "same-origin")
	if res.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("huge form: %d", res.StatusCode)
	}
	if got := testutil.ToFloat64(d.m.limits.WithLabelValues("login_body")); got != 1 {
		t.Errorf("limit_hits{login_body} = %v", got)
	}

	// The good token: a session cookie, back to the page asked for.
	res, _ = post(t, c, srv.URL+"/login", url.Values{"token": {aliceToken}, "next": {"/tools?range=30d"}}, "same-origin")
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/tools?range=30d" {
		t.Fatalf("sign-in: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	cookies := res.Cookies()
	if len(cookies) != 1 || cookies[0].Name != cookieName || !cookies[0].HttpOnly || cookies[0].SameSite != http.SameSiteStrictMode ||
		!cookies[0].Secure || len(cookies[0].Value) < 43 || strings.Contains(cookies[0].Value, "alice") {
		t.Fatalf("cookie: %+v", cookies)
	}
	res, body = fetch(t, c, srv.URL+"/tools?range=30d")
	if res.StatusCode != 200 {
		t.Fatalf("page after sign-in: %d %s", res.StatusCode, text(body))
	}
	// 30 days: 7 calls.
	checkKPIs(t, "tools", kpis(body), map[string]string{"tool_calls": "7"})
	noBob(t, "tools (signed in)", body)
	if !strings.Contains(body, `data-customer>alice<`) {
		t.Error("page does not say whom it shows")
	}
	// Signed in, /login goes back to the pages.
	if res, _ := fetch(t, c, srv.URL+"/login"); res.StatusCode != http.StatusSeeOther {
		t.Errorf("/login while signed in: %d", res.StatusCode)
	}
	// Sign-out needs the page's CSRF token.
	if res, _ := post(t, c, srv.URL+"/logout", url.Values{"csrf": {"wrong"}}, "same-origin"); res.StatusCode != http.StatusForbidden {
		t.Errorf("sign-out with a wrong csrf: %d", res.StatusCode)
	}
	m := csrfRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatal("no csrf field on the page")
	}
	res, _ = post(t, c, srv.URL+"/logout", url.Values{"csrf": {m[1]}}, "same-origin")
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/login?reason=out" {
		t.Errorf("sign-out: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	if d.sessions.len() != 0 {
		t.Errorf("%d sessions after sign-out", d.sessions.len())
	}
	// The old cookie value no longer opens anything.
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/", nil)
	req.AddCookie(cookies[0])
	res, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusSeeOther || !strings.Contains(res.Header.Get("Location"), "reason=expired") {
		t.Errorf("old cookie: %d %q", res.StatusCode, res.Header.Get("Location"))
	}

	// bob signs in in another browser and sees bob's numbers only.
	cb := client(t)
	post(t, cb, srv.URL+"/login", url.Values{"token": {bobToken}}, "same-origin")
	_, body = fetch(t, cb, srv.URL+"/")
	// bob, 7 days: 4 events, sessions b1 b2, 1 call failing, $99.99.
	checkKPIs(t, "bob's overview", kpis(body), map[string]string{"events": "4", "sessions": "2", "tool_calls": "1", "tool_errors": "1", "cost": "$99.99"})
	if strings.Contains(body, "claude-opus") || strings.Contains(body, "Bash") {
		t.Error("bob sees alice's data")
	}
	// Revoking bob's token ends his sign-in at the next view.
	store.revoke(bobToken)
	res, _ = fetch(t, cb, srv.URL+"/")
	if res.StatusCode != http.StatusSeeOther || !strings.Contains(res.Header.Get("Location"), "reason=revoked") {
		t.Errorf("revoked: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	_, body = fetch(t, cb, srv.URL+res.Header.Get("Location"))
	if !strings.Contains(body, "no longer accepted") {
		t.Errorf("revoked notice missing: %s", text(body))
	}
}

func TestSessionsExpireAndAreBounded(t *testing.T) {
	t.Parallel()
	now := fxNow
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	m, _ := newMetrics(nil)
	s := newSessionStore(time.Hour, 3, clock, m)
	ids := make([]string, 4)
	for i := range ids {
		ids[i], _ = s.create("alice", aliceToken)
		mu.Lock()
		now = now.Add(time.Minute)
		mu.Unlock()
	}
	// The fourth evicted the oldest.
	if s.get(ids[0]) != nil || s.get(ids[1]) == nil || s.len() != 3 {
		t.Errorf("eviction: len %d", s.len())
	}
	if got := testutil.ToFloat64(m.limits.WithLabelValues("sessions")); got != 1 {
		t.Errorf("limit_hits{sessions} = %v", got)
	}
	mu.Lock()
	now = now.Add(time.Hour)
	mu.Unlock()
	if s.get(ids[3]) != nil {
		t.Error("a session outlived its TTL")
	}
	if s.get("") != nil || s.get("nonsense") != nil {
		t.Error("an unknown id found a session")
	}
}

func TestNewValidates(t *testing.T) {
	t.Parallel()
	db := fixture(t).db
	for name, o := range map[string]Options{
		"no warehouse": {Auth: Local("alice")},
		"no auth":      {Warehouse: db},
		"both auths":   {Warehouse: db, Auth: Auth{local: "a", verify: func(string) (string, error) { return "a", nil }}},
		"negative ttl": {Warehouse: db, Auth: Local("alice"), SessionTTL: -time.Second},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("%s: New accepted it", name)
		}
	}
	// Two dashboards may share a registry (metrics are shared).
	reg := prometheus.NewRegistry()
	for range 2 {
		if _, err := New(Options{Warehouse: db, Auth: Local("alice"), Registry: reg}); err != nil {
			t.Fatal(err)
		}
	}
}

func TestSafeNext(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"/tools?range=30d":     "/tools?range=30d",
		"":                     "/",
		"//evil.example/":      "/",
		"/\\evil.example":      "/",
		"https://evil.example": "/",
		"tools":                "/",
		"/login?next=/":        "/",
		"/a\r\nSet-Cookie: x":  "/",
	} {
		if got := safeNext(in); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzSafeNext(f *testing.F) {
	for _, s := range []string{"/", "/tools", "//x", "/\\x", "https://x", "/%2F%2Fx", "/ok?a=b#c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := safeNext(s)
		u, err := url.Parse(got)
		if err != nil || u.Host != "" || u.Scheme != "" || !strings.HasPrefix(got, "/") || strings.HasPrefix(got, "//") || strings.ContainsAny(got, "\\\r\n") {
			t.Fatalf("safeNext(%q) = %q leaves the site", s, got)
		}
	})
}

// Customer is what the core's /artifacts route asks after the bearer
// token: the dashboard's sign-in, never anything the request names.
func TestCustomerOfARequest(t *testing.T) {
	t.Parallel()
	f := fixture(t)
	local, _ := setupOn(t, f.db, Local("alice"))
	req := func(remote, host string) *http.Request {
		r := httptest.NewRequest(http.MethodGet, "/artifacts/x?customer=bob", nil)
		r.RemoteAddr, r.Host = remote, host
		return r
	}
	if c, err := local.Customer(req("127.0.0.1:1", "localhost:7314")); c != "alice" || err != nil {
		t.Errorf("local: %q %v", c, err)
	}
	for _, r := range []*http.Request{req("192.0.2.1:1", "localhost"), req("127.0.0.1:1", "evil.example")} {
		if c, err := local.Customer(r); !errors.Is(err, ErrNotSignedIn) || c != "" {
			t.Errorf("local from %s for %s: %q %v", r.RemoteAddr, r.Host, c, err)
		}
	}
	store := &tokens{m: map[string]string{aliceToken: "alice"}}
	server, _ := setupOn(t, f.db, Tokens(store.verify))
	r := req("192.0.2.1:1", "dash.example")
	if _, err := server.Customer(r); !errors.Is(err, ErrNotSignedIn) {
		t.Errorf("no cookie: %v", err)
	}
	id, _ := server.sessions.create("alice", aliceToken)
	r.AddCookie(&http.Cookie{Name: cookieName, Value: id})
	if c, err := server.Customer(r); c != "alice" || err != nil {
		t.Errorf("signed in: %q %v", c, err)
	}
	store.revoke(aliceToken)
	if _, err := server.Customer(r); !errors.Is(err, ErrNotSignedIn) || server.sessions.len() != 0 {
		t.Errorf("revoked: %v, %d sessions", err, server.sessions.len())
	}
}

// Over TLS the session cookie is Secure and __Host- prefixed.
func TestSignInOverTLS(t *testing.T) {
	t.Parallel()
	store := &tokens{m: map[string]string{aliceToken: "alice"}}
	d, _ := setup(t, Tokens(store.verify))
	srv := httptest.NewTLSServer(d.Handler())
	defer srv.Close()
	c := srv.Client()
	c.Jar, _ = cookiejar.New(nil)
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	res, _ := post(t, c, srv.URL+"/login", url.Values{"token": {aliceToken}}, "same-origin")
	ck := res.Cookies()
	if res.StatusCode != http.StatusSeeOther || len(ck) != 1 || ck[0].Name != cookieName || !ck[0].Secure || !ck[0].HttpOnly ||
		ck[0].SameSite != http.SameSiteStrictMode || ck[0].Path != "/" || ck[0].Domain != "" {
		t.Fatalf("TLS sign-in: %d %+v", res.StatusCode, ck)
	}
	res, body := fetch(t, c, srv.URL+"/cost")
	if res.StatusCode != 200 {
		t.Fatalf("page over TLS: %d", res.StatusCode)
	}
	checkKPIs(t, "cost over TLS", kpis(body), map[string]string{"cost": "$12.34"})
}

// The session cookie is Secure and __Host- prefixed however the request
// reached the core: with TLS ended by a proxy in front of it the core sees
// plain HTTP, and a cookie without Secure would be sent back over plain
// HTTP to the same host. The sign-in page warns when nothing says the
// browser's side was HTTPS (a browser drops a Secure cookie set over plain
// HTTP from another machine).
func TestSessionCookieSecureBehindAProxy(t *testing.T) {
	t.Parallel()
	store := &tokens{m: map[string]string{aliceToken: "alice"}}
	d, _ := setup(t, Tokens(store.verify))
	srv := httptest.NewServer(d.Handler()) // plain HTTP, as behind a proxy
	defer srv.Close()
	for _, c := range []struct {
		name    string
		host    string
		headers map[string]string
		warn    bool
	}{
		{"proxy says https", "dash.example", map[string]string{"X-Forwarded-Proto": "https", "X-Forwarded-For": "198.51.100.7"}, false},
		{"Forwarded proto=https", "dash.example", map[string]string{"Forwarded": "for=198.51.100.7;proto=https"}, false},
		{"proxy says nothing", "dash.example", map[string]string{"X-Forwarded-For": "198.51.100.7"}, true},
		{"plain HTTP from elsewhere", "dash.example", nil, true},
		{"this machine", "127.0.0.1", nil, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			do := func(method, path string, form url.Values) (*http.Response, string) {
				req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(form.Encode()))
				req.Host = c.host
				for k, v := range c.headers {
					req.Header.Set(k, v)
				}
				if method == http.MethodPost {
					req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
					req.Header.Set("Sec-Fetch-Site", "same-origin")
				}
				res, err := http.DefaultTransport.RoundTrip(req)
				if err != nil {
					t.Fatal(err)
				}
				defer res.Body.Close()
				b, _ := io.ReadAll(res.Body)
				return res, string(b)
			}
			res, body := do(http.MethodGet, "/login", nil)
			if res.StatusCode != http.StatusOK || strings.Contains(body, "data-warning") != c.warn {
				t.Errorf("sign-in page: %d, warning shown: %v, want %v: %s", res.StatusCode, strings.Contains(body, "data-warning"), c.warn, text(body))
			}
			res, _ = do(http.MethodPost, "/login", url.Values{"token": {aliceToken}})
			ck := res.Cookies()
			if res.StatusCode != http.StatusSeeOther || len(ck) != 1 || ck[0].Name != "__Host-abi_session" || !ck[0].Secure || !ck[0].HttpOnly ||
				ck[0].SameSite != http.SameSiteStrictMode || ck[0].Path != "/" || ck[0].Domain != "" {
				t.Fatalf("sign-in: %d %+v", res.StatusCode, ck)
			}
		})
	}
}

// Without Memory and Pipeline wired, those pages say so and still show
// what they can.
func TestUnwiredSources(t *testing.T) {
	t.Parallel()
	f := fixture(t)
	d, err := New(Options{Warehouse: f.db, Auth: Local("alice"), Now: func() time.Time { return fxNow }})
	if err != nil {
		t.Fatal(err)
	}
	h := d.Handler()
	res, body := get(t, h, "/memory")
	if res.StatusCode != 200 || !strings.Contains(text(body), "started without memory (get_context) wired in") {
		t.Errorf("memory: %d %s", res.StatusCode, text(body))
	}
	res, body = get(t, h, "/pipeline")
	if res.StatusCode != 200 || !strings.Contains(text(body), "not wired into this dashboard") {
		t.Errorf("pipeline: %d %s", res.StatusCode, text(body))
	}
	checkKPIs(t, "pipeline unwired", kpis(body), map[string]string{"last_received": "3 h ago", "last_hour": "0"})
	if _, ok := kpis(body)["spool_pending"]; ok {
		t.Error("pipeline shows a spool depth it was not given")
	}
	// A status without the spool's depth says so instead of showing 0.
	d, err = New(Options{Warehouse: f.db, Auth: Local("alice"), Now: func() time.Time { return fxNow },
		Pipeline: func() PipelineStatus { return PipelineStatus{UploaderState: "retrying", MaxPending: 100_000} }})
	if err != nil {
		t.Fatal(err)
	}
	_, body = get(t, d.Handler(), "/pipeline")
	checkKPIs(t, "pipeline without depth", kpis(body), map[string]string{"uploader": "retrying", "spool_pending": "unknown"})
}

var sparkPointsRE = regexp.MustCompile(`aria-label="trend of (\d+) values"><polyline points="([^"]*)"`)

// An insight logged often (a value a script records every minute) is one
// trend of thousands of values: the sparkline draws at most
// maxSparkPoints of them, the first and the last among them, so the page
// does not grow with the number of atoms.
func TestInsightTrendIsBounded(t *testing.T) {
	t.Parallel()
	d, b := setup(t, Auth{})
	const n = 5000
	var fx []fxInsight
	start := at("2026-03-27 00:00")
	for i := range n {
		fx = append(fx, fxInsight{ts: start.Add(time.Duration(i) * time.Minute).Format("2006-01-02 15:04"),
			subject: "tool:Grep", metric: "calls_per_min", value: strconv.Itoa(1000 + i)})
	}
	ins := normalizeInsights(t, "alice", fx)
	for i := range ins {
		ins[i].AtomID = fmt.Sprintf("alice-grep-%04d", i) // not the fixture's ids
	}
	if _, err := b.fx.db.Load(context.Background(), &warehouse.Batch{Insights: ins}); err != nil {
		t.Fatal(err)
	}
	res, body := get(t, d.Handler(), "/insights")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("insights: %d %s", res.StatusCode, text(body))
	}
	row := rowText(t, body, "calls_per_min")
	if want := fmt.Sprintf("tool:Grep calls_per_min %d", 1000+n-1); !strings.HasPrefix(row, want) || !strings.Contains(row, "5,000") {
		t.Errorf("row %q, want it to start %q and count 5,000 atoms", row, want)
	}
	// The trend's tooltip still runs from the first value to the last.
	if want := fmt.Sprintf(`title="1000 → %d"`, 1000+n-1); !strings.Contains(body, want) {
		t.Errorf("page lacks %s", want)
	}
	for _, m := range sparkPointsRE.FindAllStringSubmatch(body, -1) {
		if pts := len(strings.Fields(m[2])); pts > maxSparkPoints+1 {
			t.Errorf("a sparkline draws %s values (%d points); at most %d", m[1], pts, maxSparkPoints+1)
		}
	}
	if len(body) > 200<<10 {
		t.Errorf("the insights page is %d bytes", len(body))
	}
	if got := testutil.ToFloat64(d.m.limits.WithLabelValues("points")); got != 1 {
		t.Errorf("limit_hits{points} = %v, want 1", got)
	}
}

// The uploader's last error is the whole process's: in server mode it may
// quote another customer's record (a warehouse refusing a value names the
// value) or the server's own paths, so a signed-in customer sees that
// loads are failing and how often, not the text. A local core's one user
// sees the text.
func TestPipelineErrorTextIsNotSharedInServerMode(t *testing.T) {
	t.Parallel()
	f := fixture(t)
	failing := func() PipelineStatus {
		p := fxPipeline()
		p.UploaderState, p.ConsecutiveFailures = "retrying", 3
		p.LastError = `load: record rejected by the warehouse: Conversion Error: Malformed JSON in {"customer":"bob","note":"bob-secret-note"} at /srv/activitybi/spool/seg-000042`
		return p
	}
	store := &tokens{m: map[string]string{aliceToken: "alice"}}
	d, err := New(Options{Warehouse: f.db, Auth: Tokens(store.verify), Pipeline: failing, Now: func() time.Time { return fxNow }})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(d.Handler())
	defer srv.Close()
	c := client(t)
	post(t, c, srv.URL+"/login", url.Values{"token": {aliceToken}}, "same-origin")
	res, body := fetch(t, c, srv.URL+"/pipeline")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("pipeline: %d %s", res.StatusCode, text(body))
	}
	for _, s := range []string{"bob", "/srv/activitybi", "Malformed JSON"} {
		if strings.Contains(body, s) {
			t.Errorf("server mode: alice's pipeline page shows %q of the uploader's error: %s", s, text(body))
		}
	}
	if !strings.Contains(text(body), "3 failures in a row") {
		t.Errorf("server mode: the page does not say the loads are failing: %s", text(body))
	}
	// Local mode: the machine's own user sees the reason.
	local, err := New(Options{Warehouse: f.db, Auth: Local("alice"), Pipeline: failing, Now: func() time.Time { return fxNow }})
	if err != nil {
		t.Fatal(err)
	}
	_, body = get(t, local.Handler(), "/pipeline")
	if !strings.Contains(text(body), "3 failures in a row: load: record rejected") {
		t.Errorf("local mode: the reason is not shown: %s", text(body))
	}
}

// An artifact past its expiry is no longer listed or linked on the
// Queries page, though its row is still in the warehouse (the sweep, every
// few minutes, has not deleted it): the core would answer 404 for it.
func TestQueriesHideExpiredArtifacts(t *testing.T) {
	t.Parallel()
	f := fixture(t)
	cardLink := "/artifacts/" + f.card.ID
	resultLink := "/artifacts/" + f.result
	for _, c := range []struct {
		name         string
		now          time.Time
		artifacts    string
		card, result bool
	}{
		// The card expires 2026-04-06 08:00:04 (the store's default TTL),
		// tkt-0001's result file at 08:10.
		{"before either expiry", at("2026-04-06 08:00"), "2", true, true},
		{"the card expired", at("2026-04-06 08:05"), "1", false, true},
		{"both expired", at("2026-04-06 08:15"), "0", false, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			d, err := New(Options{Warehouse: f.db, Auth: Local("alice"), Now: func() time.Time { return c.now }})
			if err != nil {
				t.Fatal(err)
			}
			res, body := get(t, d.Handler(), "/queries?range=30d")
			if res.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", res.StatusCode, text(body))
			}
			checkKPIs(t, c.name, kpis(body), map[string]string{"artifacts": c.artifacts})
			if got := strings.Contains(body, cardLink); got != c.card {
				t.Errorf("card linked: %v, want %v", got, c.card)
			}
			if got := strings.Contains(text(body), "tool-latency.svg"); got != c.card {
				t.Errorf("card listed: %v, want %v", got, c.card)
			}
			if got := strings.Contains(body, resultLink); got != c.result {
				t.Errorf("result file linked: %v, want %v", got, c.result)
			}
			// The ticket itself stays, with what its result was.
			if row := rowText(t, body, "tkt-0001"); !strings.Contains(row, "12 rows, 2.0 KiB") {
				t.Errorf("tkt-0001's row: %q", row)
			}
		})
	}
	// The rows are still there: only the listing filters them.
	n, err := f.db.CustomerQuery(context.Background(), "alice", "SELECT count(*) AS n FROM artifacts", nil, 10)
	if err != nil || len(n.Rows) != 1 || fmt.Sprint(n.Rows[0][0]) != "2" {
		t.Fatalf("artifact rows: %v %v", n, err)
	}
}
