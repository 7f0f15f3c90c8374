package dashboard

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// Browser tests open every page in Debian's Chromium over real loopback
// HTTP, read the numbers a person sees, fail on any console error or
// uncaught exception, and write a full-page screenshot per page to
// $ACTIVITYBI_SCREENSHOTS (default: the test's temporary directory); with
// -update the screenshots are also copied to testdata/screenshots/.
//
// Without Chromium they are skipped, unless CI=true, where they fail.

// chromiumPath finds the browser: $ACTIVITYBI_CHROMIUM, else chromium on
// the PATH (Debian's package), else Chrome.
func chromiumPath() string {
	if p := os.Getenv("ACTIVITYBI_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// browserTimeout bounds one page's steps in a test.
const browserTimeout = 60 * time.Second

// newBrowser starts a headless Chromium for the test and returns its
// context; the browser stops at cleanup.
func newBrowser(tb testing.TB) context.Context {
	tb.Helper()
	path := chromiumPath()
	if path == "" {
		if os.Getenv("CI") == "true" {
			tb.Fatal("chromium is not installed and CI=true: the dashboard's browser tests need it (apt-get install chromium; .ci/run installs it)")
		}
		tb.Skip("chromium is not installed: skipping the dashboard's browser tests (apt-get install chromium to run them; with CI=true this fails)")
	}
	// Not t.TempDir: Chromium's helpers may still write there for a moment
	// after it stops, so the directory is removed with retries.
	dir, err := os.MkdirTemp("", "dashboard-chromium-*")
	if err != nil {
		tb.Fatal(err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.DisableGPU,
		chromedp.WindowSize(1280, 900),
		chromedp.UserDataDir(dir),
	)
	// No sandbox: Chromium refuses its sandbox as root and cannot set it
	// up in many CI containers; this browser only opens the test's own
	// pages on loopback.
	opts = append(opts, chromedp.NoSandbox)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	tb.Cleanup(func() {
		cancel()
		cancelAlloc()
		for range 50 {
			if err := os.RemoveAll(dir); err == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	if err := chromedp.Do(ctx); err != nil {
		tb.Fatalf("start %s: %v", path, err)
	}
	return ctx
}

// consoleLog collects what a tab writes to its console.
type consoleLog struct {
	mu     sync.Mutex
	errors []string
}

func (c *consoleLog) listen(ev any) {
	var msg string
	switch ev := ev.(type) {
	case *runtime.EventExceptionThrown:
		msg = "exception: " + ev.ExceptionDetails.Text
		if ev.ExceptionDetails.Exception != nil {
			msg += " " + ev.ExceptionDetails.Exception.Description
		}
	case *runtime.EventConsoleAPICalled:
		if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeAssert {
			msg = fmt.Sprintf("console.%s", ev.Type)
			for _, a := range ev.Args {
				msg += " " + string(a.Value) + a.Description
			}
		}
	case *log.EventEntryAdded:
		// The browser's own log: failed loads, CSP violations.
		if ev.Entry.Level == log.EntryLevelError || ev.Entry.Level == log.EntryLevelWarning {
			msg = fmt.Sprintf("%s %s: %s %s", ev.Entry.Source, ev.Entry.Level, ev.Entry.Text, ev.Entry.URL)
		}
	}
	if msg != "" {
		c.mu.Lock()
		c.errors = append(c.errors, msg)
		c.mu.Unlock()
	}
}

func (c *consoleLog) take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.errors
	c.errors = nil
	return out
}

// tab opens a new tab of the browser with a console listener.
func tab(tb testing.TB, browser context.Context) (context.Context, *consoleLog) {
	tb.Helper()
	cl := &consoleLog{}
	ctx, cancel := chromedp.NewContext(browser, chromedp.WithListener(cl.listen))
	tb.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		tb.Fatal(err)
	}
	tctx, cancelT := context.WithTimeout(ctx, browserTimeout)
	tb.Cleanup(cancelT)
	return tctx, cl
}

// screenshotDir is where screenshots go.
func screenshotDir(tb testing.TB) string {
	tb.Helper()
	dir := os.Getenv("ACTIVITYBI_SCREENSHOTS")
	if dir == "" {
		return tb.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	return dir
}

// screenshot writes a full-page PNG of the tab as name.png.
func screenshot(tb testing.TB, ctx context.Context, dir, name string) {
	tb.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		tb.Fatalf("screenshot %s: %v", name, err)
	}
	file := filepath.Join(dir, name+".png")
	if err := os.WriteFile(file, png, 0o644); err != nil {
		tb.Fatal(err)
	}
	tb.Logf("screenshot: %s", file)
	if *update {
		keep := filepath.Join("testdata", "screenshots")
		if err := os.MkdirAll(keep, 0o755); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(keep, name+".png"), png, 0o644); err != nil {
			tb.Fatal(err)
		}
	}
}

// seen is what a person sees on a page: KPI values by key, each table
// row's text (cells separated by single spaces), and the main text.
type seen struct {
	KPIs   map[string]string `json:"kpis"`
	Rows   []string          `json:"rows"`
	Main   string            `json:"main"`
	Images int               `json:"images"`
	// Broken counts images that did not load or decode.
	Broken int `json:"broken"`
	// Styled is true when the stylesheet applied (the header's colour).
	Styled bool   `json:"styled"`
	Status string `json:"status"`
}

// seeJS reads seen from the rendered page (innerText is what is visible).
const seeJS = `(() => {
  const norm = s => s.split(/\s+/).filter(Boolean).join(' ');
  const kpis = {};
  for (const k of document.querySelectorAll('[data-kpi]')) kpis[k.dataset.kpi] = norm(k.querySelector('.value').innerText);
  const imgs = Array.from(document.images);
  const header = document.querySelector('header.top');
  return {
    kpis,
    rows: Array.from(document.querySelectorAll('tbody tr')).map(r => norm(r.innerText)),
    main: norm(document.querySelector('main').innerText),
    images: imgs.length,
    broken: imgs.filter(i => !i.complete || i.naturalWidth === 0).length,
    styled: !!header && getComputedStyle(header).backgroundColor === 'rgb(29, 35, 48)',
    status: document.body.dataset.status || '',
  };
})()`

func look(tb testing.TB, ctx context.Context) seen {
	tb.Helper()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[seen](seeJS))
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func checkSeen(t testing.TB, path string, s seen, want pageWant, rep *strings.Replacer) {
	t.Helper()
	checkKPIs(t, path, s.KPIs, want.kpis)
	for needle, row := range want.rows {
		row = rep.Replace(row)
		found := false
		for _, r := range s.Rows {
			if strings.Contains(r, needle) {
				found = true
				if r != row {
					t.Errorf("%s: row %q\n got %q\nwant %q", path, needle, r, row)
				}
				break
			}
		}
		if !found {
			t.Errorf("%s: no row shows %q", path, needle)
		}
	}
	if s.Broken != 0 {
		t.Errorf("%s: %d of %d images did not load", path, s.Broken, s.Images)
	}
	if !s.Styled {
		t.Errorf("%s: the stylesheet did not apply", path)
	}
	for _, m := range bobMarkers {
		if strings.Contains(s.Main, m) {
			t.Errorf("%s: bob's %q is visible", path, m)
		}
	}
}

// serve mounts the dashboard as the core does, with the artifact store's
// GET /artifacts/{id} answering to the dashboard's sign-in.
func serve(t testing.TB, d *Dashboard, b bundle) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle("GET /artifacts/{id}", b.fx.store.Handler(d.Customer))
	mux.Handle("/", d.Handler())
	return httptest.NewServer(mux)
}

func TestBrowserPages(t *testing.T) {
	browser := newBrowser(t)
	d, b := setup(t, Auth{})
	srv := serve(t, d, b)
	defer srv.Close()
	dir := screenshotDir(t)
	for _, path := range pagePaths {
		name := strings.Trim(path, "/")
		if name == "" {
			name = "overview"
		}
		t.Run(name, func(t *testing.T) {
			ctx, cl := tab(t, browser)
			if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+path)); err != nil {
				t.Fatal(err)
			}
			s := look(t, ctx)
			if s.Status != "200" {
				t.Errorf("status %s: %s", s.Status, s.Main)
			}
			checkSeen(t, path, s, fixturePages[path], b.fx.replacer(false))
			// Charts: the Overview, Tools and Cost pages draw some.
			if (path == "/" || path == "/tools" || path == "/cost") && s.Images == 0 {
				t.Errorf("%s: no chart", path)
			}
			screenshot(t, ctx, dir, name)
			if errs := cl.take(); len(errs) > 0 {
				t.Errorf("%s: console errors:\n%s", path, strings.Join(errs, "\n"))
			}
		})
	}
	// A bad filter: the error banner, the 400 status, nothing else.
	t.Run("bad-filter", func(t *testing.T) {
		ctx, cl := tab(t, browser)
		resp, err := chromedp.RunResponse(ctx, chromedp.Navigate(srv.URL+"/cost?from=2026-03-10&to=2026-03-01"))
		if err != nil {
			t.Fatal(err)
		}
		if resp.Status != 400 {
			t.Errorf("status %d", resp.Status)
		}
		s := look(t, ctx)
		if !strings.Contains(s.Main, `from: "2026-03-10" is not before to "2026-03-01"; the range must not be empty`) || len(s.KPIs) != 0 {
			t.Errorf("bad filter page: %+v", s)
		}
		screenshot(t, ctx, dir, "bad-filter")
		// The 400 itself is logged by the browser as a failed load; nothing else may be.
		for _, e := range cl.take() {
			if !strings.Contains(e, "400") {
				t.Errorf("console: %s", e)
			}
		}
	})
	// The filter form: a person types a project and applies it.
	t.Run("filter-form", func(t *testing.T) {
		ctx, cl := tab(t, browser)
		if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/?range=30d")); err != nil {
			t.Fatal(err)
		}
		if _, err := chromedp.Run(ctx, chromedp.WaitEvent(page.LoadEventFired, nil,
			chromedp.Steps(chromedp.SendKeys(chromedp.CSS(`input[name="scope"]`), "billing"),
				chromedp.Click(chromedp.CSS(`form.filter button`))))); err != nil {
			t.Fatal(err)
		}
		s := look(t, ctx)
		// billing over 30 days: sessions a0 and a1.
		checkKPIs(t, "filter form", s.KPIs, map[string]string{"events": "12", "sessions": "2", "cost": "$5.00"})
		if !strings.Contains(s.Main, "project billing") {
			t.Errorf("the heading does not name the project: %s", s.Main)
		}
		if errs := cl.take(); len(errs) > 0 {
			t.Errorf("console errors:\n%s", strings.Join(errs, "\n"))
		}
	})
}

// TestBrowserSignIn: server mode in a real browser — redirected to the
// sign-in, a wrong token refused, the right one lands on the page asked
// for, sign-out ends it.
func TestBrowserSignIn(t *testing.T) {
	browser := newBrowser(t)
	store := &tokens{m: map[string]string{aliceToken: "alice", bobToken: "bob"}}
	d, b := setup(t, Tokens(store.verify))
	srv := serve(t, d, b)
	defer srv.Close()
	dir := screenshotDir(t)
	ctx, cl := tab(t, browser)

	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/cost")); err != nil {
		t.Fatal(err)
	}
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	if !strings.HasSuffix(loc, "/login?next=%2Fcost") {
		t.Fatalf("not sent to the sign-in: %s", loc)
	}
	screenshot(t, ctx, dir, "login")
	submit := func(token string) {
		t.Helper()
		if _, err := chromedp.Run(ctx, chromedp.WaitEvent(page.LoadEventFired, nil,
			chromedp.Steps(chromedp.SendKeys(chromedp.ID("token"), token), chromedp.Click(chromedp.CSS(`main.login button`))))); err != nil {
			t.Fatal(err)
		}
	}
	submit("abi_wrong_0000")
	s := look(t, ctx)
	if !strings.Contains(s.Main, "That token was not accepted: unknown or revoked token.") {
		t.Errorf("wrong token: %s", s.Main)
	}
	screenshot(t, ctx, dir, "login-refused")
	// The refusal is a 401, which the browser logs; nothing else may be logged.
	for _, e := range cl.take() {
		if !strings.Contains(e, "401") {
			t.Errorf("console: %s", e)
		}
	}

	submit(aliceToken)
	loc, _ = chromedp.Run(ctx, chromedp.Location())
	if !strings.HasSuffix(loc, "/cost") {
		t.Fatalf("after sign-in at %s, want /cost", loc)
	}
	checkSeen(t, "/cost (signed in)", look(t, ctx), fixturePages["/cost"], b.fx.replacer(false))
	screenshot(t, ctx, dir, "cost-signed-in")
	// The card on the Queries page comes from /artifacts with the sign-in.
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/queries")); err != nil {
		t.Fatal(err)
	}
	if s := look(t, ctx); s.Images != 1 || s.Broken != 0 {
		t.Errorf("queries signed in: %d images, %d broken", s.Images, s.Broken)
	}

	if _, err := chromedp.Run(ctx, chromedp.WaitEvent(page.LoadEventFired, nil,
		chromedp.Click(chromedp.CSS(`header.top .who button`)))); err != nil {
		t.Fatal(err)
	}
	loc, _ = chromedp.Run(ctx, chromedp.Location())
	s = look(t, ctx)
	if !strings.HasSuffix(loc, "/login?reason=out") || !strings.Contains(s.Main, "You are signed out.") {
		t.Errorf("sign-out: at %s: %s", loc, s.Main)
	}
	if errs := cl.take(); len(errs) > 0 {
		t.Errorf("console errors:\n%s", strings.Join(errs, "\n"))
	}
}
