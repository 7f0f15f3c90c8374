package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// defaultLogEventArgs makes every call a distinct event whose activity_id
// names the run, so a test can count the run's rows in the warehouse.
const defaultLogEventArgs = `{"activity":"called_tool","activity_id":"load-{{run}}-{{seq}}","features":{"tool":"activitybi-load","seq":{{seq}}}}`

// httpStep is one fixed-rate stretch of an mcp-http run.
type httpStep struct {
	TargetRate   float64           `json:"target_rate"`
	Duration     string            `json:"duration"`
	Issued       int64             `json:"issued"`
	IssuedRate   float64           `json:"issued_rate"`
	Acknowledged int64             `json:"acknowledged"`
	AckRate      float64           `json:"acknowledged_rate"`
	Duplicates   int64             `json:"duplicates"`
	Errors       map[string]int64  `json:"errors"`
	ErrExamples  map[string]string `json:"error_examples,omitempty"`
	HTTPStatuses map[string]int64  `json:"http_statuses_4xx_5xx"`
	Latency      latency           `json:"latency"`
	// SendLag is how late calls left against their schedule: if its p99 is
	// large, the load tool (not the server) failed to keep the rate.
	SendLag latency `json:"send_lag"`
	// Timeline (--timeline, --raw only) is the step second by second, by
	// when calls were sent: where in a run the tail came from.
	Timeline []timelineSecond `json:"timeline,omitempty"`
	Pass     *bool            `json:"pass,omitempty"`
	// CPU over the step, of this load tool and of the server (--pid), per
	// acknowledged call (/proc/PID/stat, 10 ms resolution).
	LoadCPUPerCallUS   float64 `json:"load_cpu_per_call_us"`
	ServerCPUPerCallUS float64 `json:"server_cpu_per_call_us,omitempty"`
}

type httpReport struct {
	Mode            string            `json:"mode"`
	Date            string            `json:"date"`
	Run             string            `json:"run"`
	URL             string            `json:"url"`
	Tool            string            `json:"tool"`
	Lean            bool              `json:"lean,omitempty"`
	Raw             bool              `json:"raw,omitempty"`
	ProtocolVersion string            `json:"protocol_version"`
	Sessions        int               `json:"sessions"`
	SessionsOpened  int               `json:"sessions_opened"`
	SessionErrors   map[string]int64  `json:"session_errors"`
	SessionExamples map[string]string `json:"session_error_examples,omitempty"`
	SessionOpen     latency           `json:"session_open"`
	Steps           []httpStep        `json:"steps"`
	Acknowledged    int64             `json:"acknowledged"`
	// MaxRate is set by --find-max: the highest step that passed (0: none).
	MaxRate     float64 `json:"max_rate,omitempty"`
	P99Limit    string  `json:"p99_limit,omitempty"`
	MinAckRatio float64 `json:"min_ack_ratio,omitempty"`
	// Server RSS, with --pid.
	PID        int   `json:"pid,omitempty"`
	RSSStartKB int64 `json:"rss_start_kb,omitempty"`
	RSSEndKB   int64 `json:"rss_end_kb,omitempty"`
	RSSPeakKB  int64 `json:"rss_peak_kb,omitempty"`
}

// mcpHTTP opens many Streamable HTTP sessions and drives tool calls at an
// open-loop aggregate rate spread round-robin over them: calls leave on
// schedule whether or not earlier ones have returned.
func mcpHTTP(ctx context.Context, args []string, stdout io.Writer) error {
	_, err := runMCPHTTP(ctx, args, stdout)
	return err
}

func runMCPHTTP(ctx context.Context, args []string, stdout io.Writer) (*httpReport, error) {
	fs := flag.NewFlagSet("mcp-http", flag.ContinueOnError)
	rawURL := fs.String("url", "http://127.0.0.1:8080/mcp", "MCP endpoint (a URL without a path gets /mcp)")
	token := fs.String("token", "", "bearer `TOKEN` (from activitybi token create); empty sends no Authorization header")
	sessions := fs.Int("sessions", 1000, "client sessions to open and spread the calls over")
	rate := fs.Float64("rate", 2000, "target calls per second, over all sessions")
	dur := fs.Duration("duration", 60*time.Second, "how long to send at --rate")
	tool := fs.String("tool", "log_event", "tool to call")
	argsTmpl := fs.String("args", defaultLogEventArgs, "arguments template ({{seq}}, {{run}}, {{now}} expand per call)")
	timeout := fs.Duration("timeout", 10*time.Second, "per call")
	maxInflight := fs.Int("max-inflight", 20000, "calls outstanding at once; a call due beyond this is not sent and counts as error client_backlog")
	connectPar := fs.Int("connect-concurrency", 32, "sessions opened at once")
	sse := fs.Bool("sse", false, "let each session open the standalone SSE GET stream (as Claude Code does; holds one more connection per session)")
	proto := fs.String("protocol-version", defaultProtocolVersion, "MCP protocol version to ask for (empty: the SDK's newest)")
	findMax := fs.Bool("find-max", false, "step the rate up through --steps and report the highest that passed (ignores --rate, --duration)")
	stepsFlag := fs.String("steps", "2000,4000,6000,8000,10000,12000,14000,16000,18000,20000", "rates for --find-max (2K style allowed)")
	stepDur := fs.Duration("step-duration", 20*time.Second, "how long each --find-max step sends")
	stepPause := fs.Duration("step-pause", time.Second, "idle time between --find-max steps, for the server to drain")
	p99Limit := fs.Duration("p99-limit", 50*time.Millisecond, "a --find-max step passes with p99 below this, no errors, and --min-ack-ratio of its rate acknowledged")
	minAck := fs.Float64("min-ack-ratio", 0.95, "share of a --find-max step's target rate that must be acknowledged per second for it to pass")
	pid := fs.Int("pid", 0, "server process to sample VmRSS of (optional)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	prof := fs.String("cpuprofile", "", "write a CPU profile of this load tool to `FILE`")
	lean := fs.Bool("lean", false, "open sessions with the go-sdk client, then send each call as a raw POST of pre-encoded JSON-RPC (measures the server apart from the go-sdk client)")
	raw := fs.Bool("raw", false, "open sessions with the go-sdk client, then write each call and parse its answer on this tool's own persistent HTTP/1.1 connections (no net/http: the cheapest client, for measuring the server at high rates)")
	rawConns := fs.Int("raw-conns", 0, "connections --raw keeps open at most (0: one per session)")
	timeline := fs.Bool("timeline", false, "with --raw: also report each step second by second (calls, p99, max latency), to see when a tail happened")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if *lean && *raw {
		return nil, errors.New("--lean and --raw are two ways of sending the calls; give one")
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *prof != "" {
		f, err := os.Create(*prof)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	if *sessions < 1 || *rate <= 0 || *connectPar < 1 || *maxInflight < 1 {
		return nil, errors.New("--sessions, --rate, --connect-concurrency and --max-inflight must be positive")
	}
	tmpl, err := parseTemplate(*argsTmpl)
	if err != nil {
		return nil, err
	}
	type plan struct {
		rate float64
		dur  time.Duration
	}
	plans := []plan{{*rate, *dur}}
	if *findMax {
		rates, err := parseFloatList(*stepsFlag)
		if err != nil {
			return nil, fmt.Errorf("--steps: %w", err)
		}
		plans = plans[:0]
		for _, r := range rates {
			plans = append(plans, plan{r, *stepDur})
		}
	}

	endpoint := endpointURL(*rawURL, "/mcp")
	rep := &httpReport{Mode: "mcp-http", Date: time.Now().UTC().Format(time.RFC3339), Run: newRunID(), URL: endpoint,
		Tool: *tool, ProtocolVersion: *proto, Sessions: *sessions, PID: *pid, Lean: *lean, Raw: *raw}
	if *findMax {
		rep.P99Limit, rep.MinAckRatio = p99Limit.String(), *minAck
	}
	conns := *sessions
	if *sse {
		conns *= 2
	}
	bt := &bearerTransport{token: *token, base: newHTTPTransport(conns)}
	hc := &http.Client{Transport: bt}
	defer hc.CloseIdleConnections()

	var rss *rssSampler
	if *pid > 0 {
		rss = sampleRSS(*pid)
	}
	css, err := openSessions(ctx, rep, hc, endpoint, *proto, !*sse, *sessions, *connectPar)
	defer closeSessions(css)
	if err != nil {
		return nil, err
	}

	g := &generator{sessions: css, tool: *tool, tmpl: tmpl, run: rep.Run, timeout: *timeout, timeline: *timeline,
		maxInflight: int64(*maxInflight), bt: bt, pid: *pid}
	if *lean {
		g.lean = &leanCaller{endpoint: endpoint, proto: *proto, token: *token, rt: bt.base, bt: bt}
		for _, cs := range css {
			g.ids = append(g.ids, cs.ID())
		}
	}
	if *raw {
		var rs []rawSession
		for _, cs := range css {
			r := rawSession{id: cs.ID(), proto: *proto}
			if ir := cs.InitializeResult(); ir != nil {
				r.proto = ir.ProtocolVersion
			}
			rs = append(rs, r)
		}
		conns := *rawConns
		if conns <= 0 {
			conns = len(css)
		}
		g.raw, err = newRawCaller(endpoint, *token, rs, conns, &bt.status)
		if err != nil {
			return nil, err
		}
		defer g.raw.close()
	}
	for i, p := range plans {
		if i > 0 {
			sleepCtx(ctx, *stepPause)
		}
		st := g.step(ctx, p.rate, p.dur)
		rep.Acknowledged += st.Acknowledged
		if *findMax {
			ok := sumCounts(st.Errors) == 0 && st.Latency.N > 0 &&
				st.Latency.P99 < float64(*p99Limit)/float64(time.Millisecond) && st.AckRate >= *minAck*p.rate
			st.Pass = &ok
			if ok {
				rep.MaxRate = p.rate
			}
		}
		rep.Steps = append(rep.Steps, st)
		if ctx.Err() != nil || (st.Pass != nil && !*st.Pass) {
			break
		}
	}
	if rss != nil {
		rss.finish()
		rep.RSSStartKB, rep.RSSEndKB, rep.RSSPeakKB = rss.start, rss.end, rss.peak.Load()
	}
	if *asJSON {
		return rep, writeJSON(stdout, rep)
	}
	rep.print(stdout)
	return rep, ctx.Err()
}

func openSessions(ctx context.Context, rep *httpReport, hc *http.Client, endpoint, proto string, noSSE bool, n, par int) ([]*mcp.ClientSession, error) {
	client := mcp.NewClient(&mcp.Implementation{Name: "activitybi-load", Version: "1"},
		&mcp.ClientOptions{Capabilities: &mcp.ClientCapabilities{}})
	var (
		mu   sync.Mutex
		css  []*mcp.ClientSession
		lat  []time.Duration
		errs errCounter
		wg   sync.WaitGroup
		next atomic.Int64
	)
	for range min(par, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) && ctx.Err() == nil {
				t := &mcp.StreamableClientTransport{Endpoint: endpoint, HTTPClient: hc, DisableStandaloneSSE: noSSE}
				cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
				a := time.Now()
				cs, err := client.Connect(cctx, t, &mcp.ClientSessionOptions{ProtocolVersion: proto})
				d := time.Since(a)
				cancel()
				if err != nil {
					errs.add(classifyCallErr(err), err.Error())
					continue
				}
				mu.Lock()
				css = append(css, cs)
				lat = append(lat, d)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	rep.SessionsOpened = len(css)
	rep.SessionErrors, rep.SessionExamples = errs.snapshot()
	rep.SessionOpen = summarize(lat)
	if len(css) == 0 {
		return nil, fmt.Errorf("no session opened: %s; e.g. %v", fmtCounts(rep.SessionErrors), rep.SessionExamples)
	}
	return css, ctx.Err()
}

func closeSessions(css []*mcp.ClientSession) {
	var wg sync.WaitGroup
	ch := make(chan *mcp.ClientSession)
	for range min(32, len(css)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for cs := range ch {
				cs.Close()
			}
		}()
	}
	for _, cs := range css {
		ch <- cs
	}
	close(ch)
	wg.Wait()
}

// generator issues calls on schedule over a fixed set of sessions.
type generator struct {
	sessions    []*mcp.ClientSession
	tool        string
	tmpl        *argsTemplate
	run         string
	timeout     time.Duration
	maxInflight int64
	bt          *bearerTransport
	seq         atomic.Int64
	pid         int // server, for its CPU; 0 = none
	// lean, when set, sends the calls itself on the sessions ids.
	lean *leanCaller
	ids  []string
	// raw, when set, sends them on its own connections (session i of
	// sessions is its session i).
	raw      *rawCaller
	timeline bool // keep when each raw call was sent (httpStep.Timeline)
}

// step sends at rate for dur: call i is due at start + i/rate and goes to
// session i mod sessions. The scheduler wakes every millisecond and sends
// everything due; latency is measured from the moment a call is sent, and
// how late it was sent is reported apart (SendLag).
func (g *generator) step(ctx context.Context, rate float64, dur time.Duration) httpStep {
	var (
		mu       sync.Mutex
		lat, lag []time.Duration
		errs     errCounter
		acked    atomic.Int64
		dups     atomic.Int64
		inflight atomic.Int64
		wg       sync.WaitGroup
	)
	statusBefore := g.bt.badStatuses()
	expected := int(rate*dur.Seconds()) + 16
	lat = make([]time.Duration, 0, expected)
	lag = make([]time.Duration, 0, expected)
	// Lean calls are encoded before the clock starts.
	var bodies [][]byte
	if g.lean != nil || g.raw != nil {
		bodies = make([][]byte, expected)
		for i := range bodies {
			seq := g.seq.Add(1)
			bodies[i] = leanBody(nil, g.tool, seq, g.tmpl.render(seq, g.run))
		}
	}
	// --raw: one worker goroutine per connection, started before the clock
	// (their stacks grow once, not per call); the pacer hands each due call
	// to whichever worker is idle.
	var (
		jobs    chan rawJob
		workers []*rawWorker
		wwg     sync.WaitGroup
	)
	var timelineOf func() []timelineSecond
	var ready sync.WaitGroup // workers holding their connection
	if g.raw != nil {
		jobs = make(chan rawJob, g.maxInflight)
		workers = make([]*rawWorker, g.raw.maxConn)
		for i := range workers {
			w := &rawWorker{lat: make([]time.Duration, 0, expected/len(workers)+16), lag: make([]time.Duration, 0, expected/len(workers)+16)}
			if g.timeline {
				w.at = make([]time.Time, 0, expected/len(workers)+16)
			}
			workers[i] = w
			wwg.Add(1)
			ready.Add(1)
			go func() {
				defer wwg.Done()
				w.run(ctx, g.raw, jobs, g.timeout, &ready, &errs, &acked, &dups, &inflight)
			}()
		}
		// Like a fleet whose sessions connected when they initialised, every
		// connection is open before the clock starts: dialling 1,000 of them
		// in the first quarter second was a stall of its own.
		ready.Wait()
	}
	selfCPU, srvCPU := startCPU(0), startCPU(g.pid)
	start := time.Now()
	var issued int64
	for ctx.Err() == nil {
		el := time.Since(start)
		if el >= dur {
			break
		}
		due := int64(rate * el.Seconds())
		for ; issued < due; issued++ {
			if inflight.Load() >= g.maxInflight {
				errs.add("client_backlog", fmt.Sprintf("more than %d calls outstanding", g.maxInflight))
				continue
			}
			intended := start.Add(time.Duration(float64(issued) / rate * float64(time.Second)))
			cs := g.sessions[issued%int64(len(g.sessions))]
			if g.lean != nil || g.raw != nil {
				var body []byte
				if issued < int64(len(bodies)) {
					body = bodies[issued]
				} else {
					seq := g.seq.Add(1)
					body = leanBody(nil, g.tool, seq, g.tmpl.render(seq, g.run))
				}
				si := int(issued % int64(len(g.sessions)))
				inflight.Add(1)
				if jobs != nil {
					// Never blocks: at most maxInflight are outstanding.
					jobs <- rawJob{session: si, body: body, intended: intended, sent: time.Now()}
					continue
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					defer inflight.Add(-1)
					a := time.Now()
					var (
						dup  bool
						kind string
						err  error
					)
					if g.raw != nil {
						dup, kind, err = g.raw.call(si, body, g.timeout)
					} else {
						cctx, cancel := context.WithTimeout(ctx, g.timeout)
						dup, kind, err = g.lean.call(cctx, g.ids[si], body)
						cancel()
					}
					d := time.Since(a)
					if err != nil {
						errs.add(kind, err.Error())
						return
					}
					acked.Add(1)
					if dup {
						dups.Add(1)
					}
					mu.Lock()
					lat = append(lat, d)
					lag = append(lag, a.Sub(intended))
					mu.Unlock()
				}()
				continue
			}
			seq := g.seq.Add(1)
			inflight.Add(1)
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer inflight.Add(-1)
				params := &mcp.CallToolParams{Name: g.tool, Arguments: g.tmpl.render(seq, g.run)}
				cctx, cancel := context.WithTimeout(ctx, g.timeout)
				defer cancel()
				a := time.Now()
				res, err := cs.CallTool(cctx, params)
				d := time.Since(a)
				switch {
				case err != nil:
					errs.add(classifyCallErr(err), err.Error())
					return
				case res.IsError:
					errs.add("tool_error", toolErrorText(res))
					return
				}
				acked.Add(1)
				if m, ok := res.StructuredContent.(map[string]any); ok && m["duplicate"] == true {
					dups.Add(1)
				}
				mu.Lock()
				lat = append(lat, d)
				lag = append(lag, a.Sub(intended))
				mu.Unlock()
			}()
		}
		time.Sleep(time.Millisecond)
	}
	sent := time.Since(start)
	wg.Wait()
	if jobs != nil {
		close(jobs)
		wwg.Wait()
		var at []time.Time
		for _, w := range workers {
			lat = append(lat, w.lat...)
			lag = append(lag, w.lag...)
			at = append(at, w.at...)
		}
		if g.timeline {
			timelineOf = func() []timelineSecond { return buildTimeline(start, at, lat) }
		}
	}
	selfCPU.finish()
	srvCPU.finish()
	st := httpStep{TargetRate: rate, Duration: dur.String(), Issued: issued, IssuedRate: float64(issued) / sent.Seconds(),
		Acknowledged: acked.Load(), AckRate: float64(acked.Load()) / sent.Seconds(), Duplicates: dups.Load()}
	st.Errors, st.ErrExamples = errs.snapshot()
	st.HTTPStatuses = map[string]int64{}
	for k, v := range g.bt.badStatuses() {
		if d := v - statusBefore[k]; d > 0 {
			st.HTTPStatuses[k] = d
		}
	}
	if timelineOf != nil {
		st.Timeline = timelineOf()
	}
	st.Latency = summarize(lat)
	st.SendLag = summarize(lag)
	if n := st.Acknowledged; n > 0 {
		st.LoadCPUPerCallUS = float64(selfCPU.total().Microseconds()) / float64(n)
		if g.pid > 0 {
			st.ServerCPUPerCallUS = float64(srvCPU.total().Microseconds()) / float64(n)
		}
	}
	return st
}

func (r *httpReport) print(w io.Writer) {
	mode := "go-sdk client"
	if r.Lean {
		mode = "lean (raw POSTs on go-sdk sessions)"
	}
	if r.Raw {
		mode = "raw (own HTTP/1.1 connections on go-sdk sessions)"
	}
	fmt.Fprintf(w, "mcp-http: %s, tool %s, protocol %s, %s, run %s\n", r.URL, r.Tool, r.ProtocolVersion, mode, r.Run)
	fmt.Fprintf(w, "  sessions: %d of %d opened (errors: %s); open latency %s\n",
		r.SessionsOpened, r.Sessions, fmtCounts(r.SessionErrors), r.SessionOpen)
	for k, ex := range r.SessionExamples {
		fmt.Fprintf(w, "    session %s, e.g. %s\n", k, ex)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "target/s\tsent/s\tacked/s\tacked\tdups\terrors\tp50\tp95\tp99\tmax\tsend lag p99\tload CPU/call\tserver CPU/call\tpass\t")
	for _, s := range r.Steps {
		pass := "-"
		if s.Pass != nil {
			pass = map[bool]string{true: "yes", false: "no"}[*s.Pass]
		}
		srv := "-"
		if s.ServerCPUPerCallUS > 0 {
			srv = fmt.Sprintf("%.0f µs", s.ServerCPUPerCallUS)
		}
		fmt.Fprintf(tw, "%.0f\t%.0f\t%.0f\t%d\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t%.0f µs\t%s\t%s\t\n", s.TargetRate, s.IssuedRate, s.AckRate,
			s.Acknowledged, s.Duplicates, sumCounts(s.Errors), fmtMS(s.Latency.P50), fmtMS(s.Latency.P95),
			fmtMS(s.Latency.P99), fmtMS(s.Latency.Max), fmtMS(s.SendLag.P99), s.LoadCPUPerCallUS, srv, pass)
	}
	tw.Flush()
	for _, s := range r.Steps {
		if len(s.Timeline) > 0 {
			fmt.Fprintf(w, "  at %.0f/s, second by second (by send time): second calls p99 max\n", s.TargetRate)
			for _, t := range s.Timeline {
				fmt.Fprintf(w, "    %3d %6d %8s %8s\n", t.Second, t.Calls, fmtMS(t.P99), fmtMS(t.Max))
			}
		}
	}
	for _, s := range r.Steps {
		if len(s.Errors) > 0 || len(s.HTTPStatuses) > 0 {
			fmt.Fprintf(w, "  at %.0f/s: errors %s; HTTP statuses >= 400: %s\n", s.TargetRate, fmtCounts(s.Errors), fmtCounts(s.HTTPStatuses))
			for k, ex := range s.ErrExamples {
				fmt.Fprintf(w, "    %s, e.g. %s\n", k, ex)
			}
		}
	}
	fmt.Fprintf(w, "  acknowledged calls in total: %d (run id %s)\n", r.Acknowledged, r.Run)
	if r.P99Limit != "" {
		if r.MaxRate > 0 {
			fmt.Fprintf(w, "  highest passing rate: %.0f calls/s (p99 < %s, no errors, >= %.0f%% of the rate acknowledged)\n", r.MaxRate, r.P99Limit, 100*r.MinAckRatio)
		} else {
			fmt.Fprintf(w, "  no step passed (p99 < %s, no errors, >= %.0f%% of the rate acknowledged)\n", r.P99Limit, 100*r.MinAckRatio)
		}
	}
	if r.PID > 0 {
		fmt.Fprintf(w, "  server pid %d RSS: start %s, end %s, peak %s (sampled every 200 ms)\n", r.PID, fmtMB(r.RSSStartKB), fmtMB(r.RSSEndKB), fmtMB(r.RSSPeakKB))
	}
}
