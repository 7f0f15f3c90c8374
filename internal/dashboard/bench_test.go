package dashboard

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/activitybi/activitybi/internal/memory/memorytest"
	"github.com/activitybi/activitybi/internal/warehouse/duckdb"
)

// The benchmark warehouse: customer "big" with 1M events over the 90 days
// before bigNow, beside customer "other" with 10,000. Written in SQL
// straight into claude_stream (the loader's occurrence columns stay NULL:
// no page reads them) once into a cached file, reused by later runs:
// $ACTIVITYBI_BENCH_CACHE or the system temp directory, named with the
// schema version and the fixture's version so a change rebuilds it.
//
// big's events come in 4,000 sessions of 250 events, one every 32.4 min,
// each lasting 41.5 min (10 s between events; sessions overlap a little).
// Each starts with started_session naming project proj-<s%5>; then per 5
// events a submitted_prompt, three called_tool (tool<i%12> on srv<i%3>,
// duration_ms, every 37th failing with an error) and a completed_response
// of model claude-<i%3> costing $0.0123. A 7-day page reads ~78,000 of
// them, a 90-day page all of them.
const (
	bigEvents       = 1_000_000
	bigFixtureVer   = 1
	bigCacheEnv     = "ACTIVITYBI_BENCH_CACHE"
	bigSessionEvery = 32*time.Minute + 24*time.Second
)

var bigNow = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)

const bigEventsSQL = `INSERT INTO claude_stream (activity_id, ts, customer, activity, feature_json,
    revenue_impact, _received_at, _source)
SELECT printf('%026d', i),
    $1::TIMESTAMP + to_microseconds((i // 250) * $3 + (i % 250) * 10000000),
    'big',
    CASE WHEN i % 250 = 0 THEN 'started_session' WHEN i % 5 = 1 THEN 'submitted_prompt'
         WHEN i % 5 = 4 THEN 'completed_response' ELSE 'called_tool' END,
    '{"session_id":"s' || (i // 250) || '",' ||
    CASE WHEN i % 250 = 0 THEN '"project":"proj-' || ((i // 250) % 5) || '"}'
         WHEN i % 5 = 1 THEN '"topic":"t' || (i % 97) || '"}'
         WHEN i % 5 = 4 THEN '"model":"claude-' || (i % 3) || '","input_tokens":' || (i % 5000) || ',"output_tokens":' || (i % 700) || '}'
         ELSE '"tool":"tool' || (i % 12) || '","server":"srv' || (i % 3) || '","success":' || (i % 37 <> 0) ||
              ',"duration_ms":' || ((i * 7) % 2000) ||
              CASE WHEN i % 37 = 0 THEN ',"error":"error ' || i || '"' ELSE '' END || '}' END,
    CASE WHEN i % 5 = 4 AND i % 250 <> 0 THEN -0.0123 END,
    $1::TIMESTAMP + to_microseconds((i // 250) * $3 + (i % 250) * 10000000 + 1000000), 'mcp'
FROM range($2) t(i)`

const otherEventsSQL = `INSERT INTO claude_stream (activity_id, ts, customer, activity, feature_json,
    revenue_impact, _received_at, _source)
SELECT printf('o%025d', i), $1::TIMESTAMP - to_microseconds(i * 60000000), 'other', 'called_tool',
    '{"tool":"othertool","server":"othersrv","project":"other-proj","success":false,"error":"other-error"}',
    -1.0, $1::TIMESTAMP, 'mcp'
FROM range(10000) t(i)`

var (
	bigOnce sync.Once
	bigDB   *duckdb.DB
	bigErr  error
	bigPath string
	bigTook time.Duration
)

// bigFixture opens the cached benchmark warehouse, building it first when
// it is missing.
func bigFixture(tb testing.TB) *duckdb.DB {
	tb.Helper()
	bigOnce.Do(func() {
		start := time.Now()
		bigDB, bigPath, bigErr = openBig()
		bigTook = time.Since(start)
	})
	if bigErr != nil {
		tb.Fatal(bigErr)
	}
	tb.Logf("benchmark warehouse %s (ready in %s)", bigPath, bigTook.Round(time.Millisecond))
	return bigDB
}

func closeBig() {
	if bigDB != nil {
		bigDB.Close()
	}
}

func openBig() (*duckdb.DB, string, error) {
	ctx := context.Background()
	dir := os.Getenv(bigCacheEnv)
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "activitybi-bench")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, "", err
	}
	// The schema version is part of the name: open a scratch warehouse to
	// learn it.
	probe, err := duckdb.Open(ctx, duckdb.Options{Path: filepath.Join(dir, "probe.duckdb")})
	if err != nil {
		return nil, "", err
	}
	if _, err := probe.Migrate(ctx); err != nil {
		probe.Close()
		return nil, "", err
	}
	ver, err := probe.SchemaVersion(ctx)
	probe.Close()
	os.Remove(filepath.Join(dir, "probe.duckdb"))
	os.Remove(filepath.Join(dir, "probe.duckdb.wal"))
	if err != nil {
		return nil, "", err
	}
	path := filepath.Join(dir, fmt.Sprintf("dashboard-1m-s%d-v%d.duckdb", ver, bigFixtureVer))
	if _, err := os.Stat(path); err != nil {
		if err := buildBig(ctx, path); err != nil {
			os.Remove(path)
			return nil, path, err
		}
	}
	db, err := duckdb.Open(ctx, duckdb.Options{Path: path})
	return db, path, err
}

func buildBig(ctx context.Context, path string) error {
	tmp := path + ".building"
	os.Remove(tmp)
	raw, err := memorytest.OpenMigrated(ctx, tmp)
	if err != nil {
		return err
	}
	start := bigNow.Add(-90 * 24 * time.Hour)
	for _, s := range []struct {
		q    string
		args []any
	}{
		{bigEventsSQL, []any{start, int64(bigEvents), bigSessionEvery.Microseconds()}},
		{otherEventsSQL, []any{bigNow.Add(-time.Hour)}},
		{"CHECKPOINT", nil},
	} {
		if _, err := raw.ExecContext(ctx, s.q, s.args...); err != nil {
			raw.Close()
			return fmt.Errorf("build the benchmark warehouse: %w", err)
		}
	}
	if err := raw.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// reportCPU adds the process's CPU time per op since cpu0, in ms: what a
// page costs, which a busy machine does not inflate as it inflates wall
// time (the server runs in this process; Chromium does not).
func reportCPU(b *testing.B, cpu0 time.Duration) {
	b.ReportMetric(float64(processCPU()-cpu0)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op")
}

// reportPercentiles adds p50/p95/p99 of per-request latencies, in ms.
func reportPercentiles(b *testing.B, prefix string, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	at := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))]) / float64(time.Millisecond) }
	b.ReportMetric(at(0.50), prefix+"p50-ms")
	b.ReportMetric(at(0.95), prefix+"p95-ms")
	b.ReportMetric(at(0.99), prefix+"p99-ms")
}

// benchServer serves the dashboard on the 1M-event warehouse on loopback,
// as customer big, with the clock at bigNow.
func benchServer(b *testing.B) *httptest.Server {
	db := bigFixture(b)
	d, err := New(Options{Warehouse: db, Auth: Local("big"), Now: func() time.Time { return bigNow }})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(d.Handler())
	b.Cleanup(srv.Close)
	return srv
}

var benchRanges = []string{"24h", "7d", "90d"}

// BenchmarkOverviewHTTP: the Overview page over loopback HTTP, time to
// first byte (the page is rendered whole before it is sent, so this is
// the warehouse's and the template's time) and to the last byte.
func BenchmarkOverviewHTTP(b *testing.B) {
	srv := benchServer(b)
	for _, rng := range benchRanges {
		b.Run("range="+rng, func(b *testing.B) {
			u := srv.URL + "/?range=" + rng
			var ttfb, full []time.Duration
			var size int64
			cpu0 := processCPU()
			for b.Loop() {
				var first time.Time
				start := time.Now()
				ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
					GotFirstResponseByte: func() { first = time.Now() }})
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
				res, err := http.DefaultClient.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				n, _ := io.Copy(io.Discard, res.Body)
				res.Body.Close()
				end := time.Now()
				if res.StatusCode != 200 || n < 1000 {
					b.Fatalf("status %d, %d bytes", res.StatusCode, n)
				}
				size = n
				ttfb = append(ttfb, first.Sub(start))
				full = append(full, end.Sub(start))
			}
			reportCPU(b, cpu0)
			b.ReportMetric(float64(size)/1024, "html-KiB")
			reportPercentiles(b, "ttfb-", ttfb)
			reportPercentiles(b, "body-", full)
		})
	}
}

// navTiming is the page's Navigation Timing: time to first byte and to
// the load event, as the browser measured them, in ms from the start of
// the navigation.
type navTiming struct {
	TTFB float64 `json:"ttfb"`
	Load float64 `json:"load"`
}

const navTimingJS = `(() => { const n = performance.getEntriesByType('navigation')[0];
  return {ttfb: n.responseStart - n.startTime, load: n.loadEventStart - n.startTime}; })()`

// BenchmarkOverviewBrowser: the Overview page in Chromium: the browser's
// own time to first byte and to the load event (the stylesheet and the
// chart images included), and the wall time of chromedp's navigation
// (which waits for the load event).
func BenchmarkOverviewBrowser(b *testing.B) {
	srv := benchServer(b)
	ctx := newBrowser(b)
	for _, rng := range benchRanges {
		b.Run("range="+rng, func(b *testing.B) {
			u := srv.URL + "/?range=" + rng
			var ttfb, load, nav []time.Duration
			ms := func(f float64) time.Duration { return time.Duration(f * float64(time.Millisecond)) }
			for b.Loop() {
				start := time.Now()
				if err := chromedp.Do(ctx, chromedp.Navigate(u)); err != nil {
					b.Fatal(err)
				}
				nav = append(nav, time.Since(start))
				b.StopTimer()
				nt, err := chromedp.Run(ctx, chromedp.Evaluate[navTiming](navTimingJS))
				if err != nil || nt.Load <= 0 {
					b.Fatalf("navigation timing %+v: %v", nt, err)
				}
				ttfb, load = append(ttfb, ms(nt.TTFB)), append(load, ms(nt.Load))
				b.StartTimer()
			}
			reportPercentiles(b, "ttfb-", ttfb)
			reportPercentiles(b, "load-", load)
			reportPercentiles(b, "nav-", nav)
		})
	}
}

// BenchmarkOverviewParts: each statement of the Overview page alone, and
// the charts, on the 1M-event warehouse, 7 days (~78,000 events), to see
// where a page's time goes.
func BenchmarkOverviewParts(b *testing.B) {
	db := bigFixture(b)
	d, err := New(Options{Warehouse: db, Auth: Local("big"), Now: func() time.Time { return bigNow }})
	if err != nil {
		b.Fatal(err)
	}
	for _, rng := range []string{"7d", "90d"} {
		f, err := ParseFilter(map[string][]string{"range": {rng}}, bigNow)
		if err != nil {
			b.Fatal(err)
		}
		stmts := []query{
			{"headline", sqlKPIs, streamArgs(f), 1, nil},
			{"activity", sqlActivity, streamArgs(f, f.Bucket, int64(MaxSeries)), maxBucketRows, nil},
			{"cost_by_day", sqlCostByDay, streamArgs(f, f.Bucket, int64(MaxSeries)), maxBucketRows, nil},
			{"tools", sqlTools, streamArgs(f, int64(MaxChartTools)), MaxChartTools, nil},
			{"count_only", "SELECT count(*) FROM claude_stream WHERE ts >= $1 AND ts < $2", []any{f.From, f.To}, 1, nil},
		}
		for _, s := range stmts {
			b.Run(rng+"/"+s.name, func(b *testing.B) {
				var lat []time.Duration
				cpu0 := processCPU()
				for b.Loop() {
					start := time.Now()
					if _, err := db.CustomerQuery(context.Background(), "big", s.sql, s.args, s.max); err != nil {
						b.Fatal(err)
					}
					lat = append(lat, time.Since(start))
				}
				reportCPU(b, cpu0)
				reportPercentiles(b, "", lat)
			})
		}
		b.Run(rng+"/page", func(b *testing.B) {
			var lat []time.Duration
			cpu0 := processCPU()
			for b.Loop() {
				start := time.Now()
				v := &view{}
				if err := d.overview(context.Background(), "big", f, v); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(start))
			}
			reportCPU(b, cpu0)
			reportPercentiles(b, "", lat)
		})
	}
}
