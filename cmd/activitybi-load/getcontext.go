package main

// get-context: get_context over stdio from another process, through every
// tier, beside the protocol floor and the reference memory server, in one
// run (bench/memory.md).

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/activitybi/activitybi/internal/memory/memorytest"
	"github.com/activitybi/activitybi/internal/server"
)

// getContextReport is what get-context prints with --json.
type getContextReport struct {
	Mode      string `json:"mode"`
	Date      string `json:"date"`
	Customers int    `json:"customers"`
	Events    int    `json:"events_per_customer"`
	Insights  int    `json:"insights_per_customer"`
	Customer  string `json:"customer"`
	// Warm is the core's warm-up on start: every customer built and
	// written (the refresh of all active customers), from its metrics.
	Warm refreshStats `json:"warm"`
	// Refresh is one refresh round with nothing new (every customer
	// skipped), when --refresh-round is set.
	Refresh *refreshStats  `json:"refresh,omitempty"`
	Tiers   *stdioReport   `json:"tiers"`
	Build   *stdioReport   `json:"build,omitempty"`
	Targets []targetResult `json:"targets"`
}

type refreshStats struct {
	Customers  float64 `json:"customers"`
	RoundMS    float64 `json:"round_ms"`
	PerP50MS   float64 `json:"per_customer_p50_ms"`
	PerP95MS   float64 `json:"per_customer_p95_ms"`
	PerP99MS   float64 `json:"per_customer_p99_ms"`
	PerMeanMS  float64 `json:"per_customer_mean_ms"`
	RowReadP50 float64 `json:"row_load_p50_ms,omitempty"`
}

type targetResult struct {
	What   string  `json:"what"`
	Got    float64 `json:"got_ms"`
	Target float64 `json:"target_ms"`
	Holds  bool    `json:"holds"`
}

// getContextBench prepares a warehouse of customers x events (or reuses
// --data-dir), starts redis-server and a core, then measures get_context
// through four edges of one customer, each a stdio process of its own:
//
//	hot    the default edge: L1 answers
//	redis  --cache-l1-ttl 1ns and Redis: L2 answers
//	cold   --cache-l1-ttl 1ns, no Redis: the core answers over its socket
//	       (its own L1 is 1 ns too, and it has no Redis), from context_cache
//
// beside the floor (bench/mcpfloor's noop) and @modelcontextprotocol/
// server-memory's search_nodes on graphs of --entities, interleaved in
// rounds with one client (mcp-stdio's machinery). With --build, a second
// run against a core with --memory-no-rows measures the cold path without
// materialization (every get_context builds).
//
//	activitybi-load get-context --bin /tmp/activitybi --floor /tmp/mcpfloor \
//	  --memory-server bench/node/node_modules/@modelcontextprotocol/server-memory/dist/index.js
func getContextBench(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("get-context", flag.ContinueOnError)
	bin := fs.String("bin", "./activitybi", "activitybi binary")
	floor := fs.String("floor", "/tmp/mcpfloor", "bench/mcpfloor binary (empty: no floor)")
	memSrv := fs.String("memory-server", "bench/node/node_modules/@modelcontextprotocol/server-memory/dist/index.js", "server-memory's dist/index.js, run with node (empty: none)")
	entities := fs.String("entities", "2000,20000", "server-memory graph sizes")
	dataDir := fs.String("data-dir", "", "data directory: its warehouse is reused, or written there when it has none (default: a temp dir)")
	customers := fs.Int("customers", 100, "customers in the warehouse")
	events := fs.Int("events", 10_000, "events per customer")
	insights := fs.Int("insights", 100, "insights per customer")
	customer := fs.String("customer", "customer-042", "the customer the edges act for")
	calls := fs.Int("calls", 5000, "measured calls per server")
	warmup := fs.Int("warmup", 200, "warm-up calls per server")
	rounds := fs.Int("rounds", 20, "rounds (servers interleaved)")
	noRedis := fs.Bool("no-redis", false, "do not start redis-server (no redis row)")
	build := fs.Bool("build", false, "also measure the cold path without context_cache (a core with --memory-no-rows)")
	buildCalls := fs.Int("build-calls", 500, "measured calls of the --build run")
	refresh := fs.Bool("refresh-round", true, "also time one refresh round with nothing new (core with --memory-refresh-every 20s)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	rep := &getContextReport{Mode: "get-context", Date: time.Now().UTC().Format(time.RFC3339),
		Customers: *customers, Events: *events, Insights: *insights, Customer: *customer}

	work, err := os.MkdirTemp("", "activitybi-getcontext")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	dir := *dataDir
	if dir == "" {
		dir = filepath.Join(work, "data")
	}
	if _, err := os.Stat(filepath.Join(dir, "warehouse.duckdb")); errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
		t0 := time.Now()
		if err := memorytest.WriteFleet(ctx, filepath.Join(dir, "warehouse.duckdb"), memorytest.FleetOptions{
			Customers: *customers, Events: *events, Insights: *insights}); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "warehouse: %d customers x %d events, %d insights each, written in %s\n",
			*customers, *events, *insights, time.Since(t0).Round(time.Millisecond))
	}

	redisURL := ""
	if !*noRedis {
		stop, url, err := startRedisServer(ctx, work)
		if err != nil {
			return err
		}
		defer stop()
		redisURL = url
	}

	coreArgs := []string{"--cache-l1-ttl", "1ns"}
	if *refresh {
		coreArgs = append(coreArgs, "--memory-refresh-every", "20s")
	}
	stopCore, info, err := startCore(ctx, *bin, dir, coreArgs)
	if err != nil {
		return err
	}
	// The warm-up: every customer of the last 7 days built and written.
	warmCount := `activitybi_memory_refresh_round_duration_seconds_count{kind="warm"}`
	if err := waitMetric(ctx, info, warmCount, 1, 10*time.Minute); err != nil {
		stopCore()
		return fmt.Errorf("warm-up: %w", err)
	}
	if rep.Warm, err = scrapeRefresh(info, "warm"); err != nil {
		stopCore()
		return err
	}
	if *refresh {
		if err := waitMetric(ctx, info, `activitybi_memory_refresh_round_duration_seconds_count{kind="refresh"}`, 1, time.Minute); err != nil {
			stopCore()
			return fmt.Errorf("refresh round: %w", err)
		}
		r, err := scrapeRefresh(info, "refresh")
		if err != nil {
			stopCore()
			return err
		}
		rep.Refresh = &r
	}

	// The servers, in one mcp-stdio run.
	env := func(name string, extra ...string) []string {
		out := []string{"--env", name + "=HOME=" + dir, "--env", name + "=ACTIVITYBI_DATA_DIR=" + dir,
			"--env", name + "=ACTIVITYBI_CUSTOMER=" + *customer, "--env", name + "=ACTIVITYBI_LISTEN=127.0.0.1:0"}
		for _, e := range extra {
			out = append(out, "--env", name+"="+e)
		}
		return out
	}
	var sargs []string
	if *floor != "" {
		sargs = append(sargs, "--server", "floor="+*floor, "--tool", "floor=noop", "--args", `floor={"n":{{seq}}}`)
	}
	edge := func(name string, l1 bool, redis bool) {
		cmd := *bin + " mcp"
		if !l1 {
			cmd += " --cache-l1-ttl 1ns"
		}
		var extra []string
		if redis {
			extra = append(extra, "ACTIVITYBI_CACHE_REDIS_URL="+redisURL)
		}
		sargs = append(sargs, "--server", name+"="+cmd, "--tool", name+"=get_context", "--args", name+"={}")
		sargs = append(sargs, env(name, extra...)...)
	}
	edge("hot", true, false)
	if redisURL != "" {
		edge("redis", false, true)
	}
	edge("cold", false, false)
	if *memSrv != "" {
		for _, n := range strings.Split(*entities, ",") {
			k, err := strconv.Atoi(strings.TrimSpace(n))
			if err != nil || k < 1 {
				stopCore()
				return fmt.Errorf("--entities %q", *entities)
			}
			path := filepath.Join(work, fmt.Sprintf("memory-%d.jsonl", k))
			if err := writeMemoryGraph(path, k); err != nil {
				stopCore()
				return err
			}
			name := fmt.Sprintf("memory-%d", k)
			sargs = append(sargs, "--server", name+"=node "+*memSrv, "--tool", name+"=search_nodes",
				"--args", name+`={"query":"e1234"}`, "--env", name+"=MEMORY_FILE_PATH="+path)
		}
	}
	common := []string{"--calls", strconv.Itoa(*calls), "--warmup", strconv.Itoa(*warmup), "--rounds", strconv.Itoa(*rounds), "--settle", "3s"}
	var quiet strings.Builder
	rep.Tiers, err = runMCPStdio(ctx, append(sargs, common...), &quiet)
	stopCore()
	if err != nil {
		return err
	}
	if *build {
		stopCore, _, err := startCore(ctx, *bin, dir, []string{"--cache-l1-ttl", "1ns", "--memory-no-rows"})
		if err != nil {
			return err
		}
		var bargs []string
		if *floor != "" {
			bargs = append(bargs, "--server", "floor="+*floor, "--tool", "floor=noop", "--args", `floor={"n":{{seq}}}`)
		}
		bargs = append(bargs, "--server", "build="+*bin+" mcp --cache-l1-ttl 1ns", "--tool", "build=get_context", "--args", "build={}")
		bargs = append(bargs, env("build")...)
		rep.Build, err = runMCPStdio(ctx, append(bargs, "--calls", strconv.Itoa(*buildCalls), "--warmup", "50",
			"--rounds", strconv.Itoa(min(*rounds, *buildCalls)), "--settle", "1s"), &quiet)
		stopCore()
		if err != nil {
			return err
		}
	}
	rep.Targets = checkTargets(rep)
	if *asJSON {
		return writeJSON(stdout, rep)
	}
	rep.print(stdout)
	return nil
}

func serverByName(r *stdioReport, name string) *stdioServer {
	if r == nil {
		return nil
	}
	for _, s := range r.Servers {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// checkTargets compares the run with the targets: hot p95 within
// 1.5x the floor's p95 (same run), via Redis p95 < 5 ms, cold p95 < 25 ms.
func checkTargets(r *getContextReport) []targetResult {
	var out []targetResult
	if f, h := serverByName(r.Tiers, "floor"), serverByName(r.Tiers, "hot"); f != nil && h != nil {
		t := 1.5 * f.Latency.P95
		out = append(out, targetResult{"hot (L1) p95 <= 1.5 x floor p95", h.Latency.P95, t, h.Latency.P95 <= t})
	}
	if s := serverByName(r.Tiers, "redis"); s != nil {
		out = append(out, targetResult{"via Redis p95 < 5 ms", s.Latency.P95, 5, s.Latency.P95 < 5})
	}
	if s := serverByName(r.Tiers, "cold"); s != nil {
		out = append(out, targetResult{"cold (context_cache) p95 < 25 ms", s.Latency.P95, 25, s.Latency.P95 < 25})
	}
	if s := serverByName(r.Build, "build"); s != nil {
		out = append(out, targetResult{"cold without context_cache (build) p95 < 25 ms", s.Latency.P95, 25, s.Latency.P95 < 25})
	}
	return out
}

func (r *getContextReport) print(w io.Writer) {
	fmt.Fprintf(w, "get-context: %d customers x %d events (%d insights each), edges act for %s; %s\n",
		r.Customers, r.Events, r.Insights, r.Customer, r.Date)
	fmt.Fprintf(w, "warm-up on start (every customer built and written): %.0f customers in %.0f ms; per customer p50 %.1f ms, p95 %.1f ms, p99 %.1f ms, mean %.1f ms\n",
		r.Warm.Customers, r.Warm.RoundMS, r.Warm.PerP50MS, r.Warm.PerP95MS, r.Warm.PerP99MS, r.Warm.PerMeanMS)
	if r.Refresh != nil {
		fmt.Fprintf(w, "refresh round with nothing new (every customer skipped): %.0f customers in %.1f ms\n", r.Refresh.Customers, r.Refresh.RoundMS)
	}
	r.Tiers.print(w)
	if r.Build != nil {
		fmt.Fprintln(w, "without context_cache (core --memory-no-rows: every load builds):")
		r.Build.print(w)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "target\tgot p95\ttarget\tholds")
	for _, t := range r.Targets {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%v\n", t.What, fmtMS(t.Got), fmtMS(t.Target), t.Holds)
	}
	tw.Flush()
}

// writeMemoryGraph writes a server-memory graph of n entities (its JSONL
// format: one {"type":"entity",...} per line) and n/2 relations.
func writeMemoryGraph(path string, n int) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	enc := json.NewEncoder(w)
	for i := range n {
		if err := enc.Encode(map[string]any{"type": "entity", "name": fmt.Sprintf("e%d", i), "entityType": "fact",
			"observations": []string{fmt.Sprintf("prefers tool%d", i%12), fmt.Sprintf("worked on project proj-%d", i%5)}}); err != nil {
			return err
		}
	}
	for i := 0; i+1 < n; i += 2 {
		if err := enc.Encode(map[string]any{"type": "relation", "from": fmt.Sprintf("e%d", i), "to": fmt.Sprintf("e%d", i+1), "relationType": "relates_to"}); err != nil {
			return err
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return f.Close()
}

// startRedisServer starts redis-server on a free loopback port, without
// persistence.
func startRedisServer(ctx context.Context, work string) (stop func(), url string, err error) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		return nil, "", errors.New("redis-server is not installed (or pass --no-redis)")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.CommandContext(ctx, "redis-server", "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", work, "--loglevel", "warning")
	if err := cmd.Start(); err != nil {
		return nil, "", err
	}
	stop = func() { cmd.Process.Kill(); cmd.Wait() }
	addr := "127.0.0.1:" + strconv.Itoa(port)
	for deadline := time.Now().Add(10 * time.Second); ; {
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			c.Close()
			return stop, "redis://" + addr + "/0", nil
		}
		if time.Now().After(deadline) {
			stop()
			return nil, "", errors.New("redis-server did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startCore runs `activitybi serve` on dir and waits until it is ready.
func startCore(ctx context.Context, bin, dir string, args []string) (stop func(), info server.CoreInfo, err error) {
	os.Remove(filepath.Join(dir, server.CoreInfoFile))
	cmd := exec.Command(bin, append([]string{"serve", "--data-dir", dir, "--listen", "127.0.0.1:0"}, args...)...)
	cmd.Env = append(os.Environ(), "HOME="+dir)
	logf, err := os.OpenFile(filepath.Join(dir, "bench-core.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, info, err
	}
	cmd.Stderr = logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, info, err
	}
	stop = func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		logf.Close()
	}
	if info, err = waitCore(dir, cmd.Process.Pid); err != nil {
		stop()
		return nil, info, fmt.Errorf("%w (see %s)", err, logf.Name())
	}
	return stop, info, nil
}

// waitMetric waits until the core's sample reaches want.
func waitMetric(ctx context.Context, info server.CoreInfo, sample string, want float64, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if v, err := scrapeSample(info, sample); err == nil && v >= want {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not reach %v in %s", sample, want, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// scrapeSample reads one sample ("name{labels}" as exposed) of /metrics.
func scrapeSample(info server.CoreInfo, sample string) (float64, error) {
	lines, err := scrapeLines(info)
	if err != nil {
		return 0, err
	}
	for _, l := range lines {
		if v, ok := strings.CutPrefix(l, sample+" "); ok {
			return strconv.ParseFloat(v, 64)
		}
	}
	return 0, fmt.Errorf("%s not exposed", sample)
}

func scrapeLines(info server.CoreInfo) ([]string, error) {
	resp, err := http.Get(info.URL() + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return strings.Split(string(b), "\n"), err
}

// scrapeLabeled reads the histogram name{kind="..."} of /metrics.
func scrapeLabeled(info server.CoreInfo, name, kind string) (histogram, float64, error) {
	lines, err := scrapeLines(info)
	if err != nil {
		return histogram{}, 0, err
	}
	var h histogram
	var sum float64
	pre := name + `_bucket{kind="` + kind + `",le="`
	for _, l := range lines {
		switch {
		case strings.HasPrefix(l, pre):
			le, val, _ := strings.Cut(strings.TrimPrefix(l, pre), `"} `)
			b := math.Inf(1)
			if le != "+Inf" {
				b, _ = strconv.ParseFloat(le, 64)
			}
			v, _ := strconv.ParseFloat(val, 64)
			h.bounds, h.counts = append(h.bounds, b), append(h.counts, v)
		case strings.HasPrefix(l, name+`_count{kind="`+kind+`"} `):
			h.count, _ = strconv.ParseFloat(strings.TrimPrefix(l, name+`_count{kind="`+kind+`"} `), 64)
		case strings.HasPrefix(l, name+`_sum{kind="`+kind+`"} `):
			sum, _ = strconv.ParseFloat(strings.TrimPrefix(l, name+`_sum{kind="`+kind+`"} `), 64)
		}
	}
	if len(h.bounds) == 0 {
		return h, 0, fmt.Errorf("%s{kind=%q} not exposed", name, kind)
	}
	return h, sum, nil
}

// scrapeRefresh reads a round's duration and its customers' rebuild
// times (percentiles interpolated in the histogram's buckets, as
// Prometheus' histogram_quantile does).
func scrapeRefresh(info server.CoreInfo, kind string) (refreshStats, error) {
	var r refreshStats
	_, roundSum, err := scrapeLabeled(info, "activitybi_memory_refresh_round_duration_seconds", kind)
	if err != nil {
		return r, err
	}
	r.RoundMS = roundSum * 1000
	for _, res := range []string{"changed", "unchanged", "skipped", "failed"} {
		v, _ := scrapeSample(info, `activitybi_memory_refreshed_total{kind="`+kind+`",result="`+res+`"}`)
		r.Customers += v
	}
	h, sum, err := scrapeLabeled(info, "activitybi_memory_refresh_duration_seconds", kind)
	if err != nil || h.count == 0 {
		return r, nil // nothing was rebuilt (a round of skips)
	}
	r.PerP50MS, r.PerP95MS, r.PerP99MS = h.quantile(0.5)*1000, h.quantile(0.95)*1000, h.quantile(0.99)*1000
	r.PerMeanMS = sum / h.count * 1000
	return r, nil
}
