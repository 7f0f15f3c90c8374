package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime/pprof"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// defaultEventRecord is one /v1/events record: log_event's arguments with
// feature_json for features. The activity_id names the run.
const defaultEventRecord = `{"activity":"called_tool","activity_id":"load-{{run}}-{{seq}}","feature_json":{"tool":"activitybi-load","seq":{{seq}}}}`

// eventsResponse is the body of a 2xx answer from POST /v1/events.
type eventsResponse struct {
	Accepted   int64 `json:"accepted"`
	Duplicates int64 `json:"duplicates"`
	Rejected   int64 `json:"rejected"`
}

type eventsReport struct {
	Mode        string `json:"mode"`
	Date        string `json:"date"`
	Run         string `json:"run"`
	URL         string `json:"url"`
	Format      string `json:"format"`
	Batch       int    `json:"batch"`
	Concurrency int    `json:"concurrency"`
	Duration    string `json:"duration"`
	Elapsed     string `json:"elapsed"`
	Requests    int64  `json:"requests_ok"`
	// EventsSent counts events in batches answered 2xx; Accepted,
	// Duplicates and Rejected are the server's own counts, summed.
	EventsSent int64 `json:"events_sent"`
	Accepted   int64 `json:"accepted"`
	Duplicates int64 `json:"duplicates"`
	Rejected   int64 `json:"rejected"`
	// Acknowledged = Accepted + Duplicates: events the server has taken
	// responsibility for. EventsPerSec is Acknowledged per second.
	Acknowledged    int64             `json:"acknowledged"`
	EventsPerSec    float64           `json:"events_per_sec"`
	TooMany         int64             `json:"http_429"`
	RetryAfterTotal string            `json:"retry_after_slept"`
	Errors          map[string]int64  `json:"errors"`
	ErrExamples     map[string]string `json:"error_examples,omitempty"`
	Latency         latency           `json:"latency"`
	PID             int               `json:"pid,omitempty"`
	RSSStartKB      int64             `json:"rss_start_kb,omitempty"`
	RSSEndKB        int64             `json:"rss_end_kb,omitempty"`
	RSSPeakKB       int64             `json:"rss_peak_kb,omitempty"`
	// CPU used over the run by this load tool and by the server (--pid),
	// from /proc/PID/stat (10 ms resolution), and per acknowledged event.
	LoadCPU             string  `json:"load_cpu"`
	LoadCPUPerEventUS   float64 `json:"load_cpu_per_event_us"`
	ServerCPU           string  `json:"server_cpu,omitempty"`
	ServerCPUPerEventUS float64 `json:"server_cpu_per_event_us,omitempty"`
}

// eventsHTTP posts batches to /v1/events from closed-loop workers (each
// sends its next batch when the last is answered) and reports the sustained
// rate. A 429 is honoured: the worker sleeps Retry-After and resends the
// same batch.
func eventsHTTP(ctx context.Context, args []string, stdout io.Writer) error {
	_, err := runEventsHTTP(ctx, args, stdout)
	return err
}

func runEventsHTTP(ctx context.Context, args []string, stdout io.Writer) (*eventsReport, error) {
	fs := flag.NewFlagSet("events-http", flag.ContinueOnError)
	rawURL := fs.String("url", "http://127.0.0.1:8080/v1/events", "ingest endpoint (a URL without a path gets /v1/events)")
	token := fs.String("token", "", "bearer `TOKEN` (from activitybi token create)")
	batch := fs.Int("batch", 1000, "events per request")
	concurrency := fs.Int("concurrency", 4, "workers, each with one request in flight")
	dur := fs.Duration("duration", 30*time.Second, "how long to send")
	format := fs.String("format", "ndjson", "body format: ndjson (application/x-ndjson) or json (application/json array)")
	record := fs.String("record", defaultEventRecord, "event template ({{seq}}, {{run}}, {{now}} expand per event)")
	timeout := fs.Duration("timeout", 30*time.Second, "per request")
	maxRetryAfter := fs.Duration("max-retry-after", 30*time.Second, "longest Retry-After honoured")
	pid := fs.Int("pid", 0, "server process to sample VmRSS and CPU time of (optional)")
	prof := fs.String("cpuprofile", "", "write a CPU profile of this load tool to `FILE`")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *batch < 1 || *concurrency < 1 {
		return nil, errors.New("--batch and --concurrency must be >= 1")
	}
	var ctype string
	switch *format {
	case "ndjson":
		ctype = "application/x-ndjson"
	case "json":
		ctype = "application/json"
	default:
		return nil, fmt.Errorf("--format %q: want ndjson or json", *format)
	}
	tmpl, err := parseTemplate(*record)
	if err != nil {
		return nil, err
	}
	endpoint := endpointURL(*rawURL, "/v1/events")
	rep := &eventsReport{Mode: "events-http", Date: time.Now().UTC().Format(time.RFC3339), Run: newRunID(), URL: endpoint,
		Format: *format, Batch: *batch, Concurrency: *concurrency, Duration: dur.String(), PID: *pid}
	hc := &http.Client{Transport: newHTTPTransport(*concurrency), Timeout: *timeout}
	defer hc.CloseIdleConnections()
	if *prof != "" {
		f, err := os.Create(*prof)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return nil, err
		}
		defer pprof.StopCPUProfile()
	}
	var rss *rssSampler
	var srvCPU *cpuUse
	if *pid > 0 {
		rss = sampleRSS(*pid)
		srvCPU = startCPU(*pid)
	}
	selfCPU := startCPU(0)

	var (
		seq                      atomic.Int64
		okReqs, sent             atomic.Int64
		accepted, dups, rejected atomic.Int64
		tooMany, retrySlept      atomic.Int64
		errs                     errCounter
		mu                       sync.Mutex
		lat                      []time.Duration
		wg                       sync.WaitGroup
	)
	start := time.Now()
	deadline := start.Add(*dur)
	for range *concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var body []byte
			for ctx.Err() == nil && time.Now().Before(deadline) {
				body = body[:0]
				if *format == "json" {
					body = append(body, '[')
				}
				for i := range *batch {
					if i > 0 && *format == "json" {
						body = append(body, ',')
					}
					body = tmpl.appendTo(body, seq.Add(1), rep.Run)
					if *format == "ndjson" {
						body = append(body, '\n')
					}
				}
				if *format == "json" {
					body = append(body, ']')
				}
				// The same batch until it is answered with something other than 429.
				for ctx.Err() == nil && time.Now().Before(deadline) {
					req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
					if err != nil {
						errs.add("request", err.Error())
						return
					}
					req.Header.Set("Content-Type", ctype)
					if *token != "" {
						req.Header.Set("Authorization", "Bearer "+*token)
					}
					a := time.Now()
					resp, err := hc.Do(req)
					if err != nil {
						if ctx.Err() == nil {
							errs.add(classifyCallErr(err), err.Error())
							sleepCtx(ctx, 100*time.Millisecond)
						}
						break
					}
					rb, rerr := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
					resp.Body.Close()
					d := time.Since(a)
					if resp.StatusCode == http.StatusTooManyRequests {
						tooMany.Add(1)
						wait := min(retryAfter(resp.Header.Get("Retry-After")), *maxRetryAfter, time.Until(deadline))
						retrySlept.Add(int64(wait))
						sleepCtx(ctx, wait)
						continue
					}
					if resp.StatusCode < 200 || resp.StatusCode > 299 {
						errs.add("http_"+strconv.Itoa(resp.StatusCode), string(bytes.TrimSpace(truncate(rb, 300))))
						if resp.StatusCode == http.StatusRequestEntityTooLarge {
							return // every batch of this size will be too large
						}
						sleepCtx(ctx, 100*time.Millisecond)
						break
					}
					var r eventsResponse
					if rerr != nil || json.Unmarshal(rb, &r) != nil {
						errs.add("bad_response", string(truncate(rb, 300)))
						break
					}
					okReqs.Add(1)
					sent.Add(int64(*batch))
					accepted.Add(r.Accepted)
					dups.Add(r.Duplicates)
					rejected.Add(r.Rejected)
					mu.Lock()
					lat = append(lat, d)
					mu.Unlock()
					break
				}
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	selfCPU.finish()
	if srvCPU != nil {
		srvCPU.finish()
	}
	if rss != nil {
		rss.finish()
		rep.RSSStartKB, rep.RSSEndKB, rep.RSSPeakKB = rss.start, rss.end, rss.peak.Load()
	}
	rep.Elapsed = el.Round(time.Millisecond).String()
	rep.Requests, rep.EventsSent = okReqs.Load(), sent.Load()
	rep.Accepted, rep.Duplicates, rep.Rejected = accepted.Load(), dups.Load(), rejected.Load()
	rep.Acknowledged = rep.Accepted + rep.Duplicates
	rep.EventsPerSec = float64(rep.Acknowledged) / el.Seconds()
	rep.TooMany = tooMany.Load()
	rep.RetryAfterTotal = time.Duration(retrySlept.Load()).Round(time.Millisecond).String()
	rep.Errors, rep.ErrExamples = errs.snapshot()
	rep.Latency = summarize(lat)
	perEvent := func(d time.Duration) float64 {
		if rep.Acknowledged == 0 {
			return 0
		}
		return float64(d.Microseconds()) / float64(rep.Acknowledged)
	}
	rep.LoadCPU, rep.LoadCPUPerEventUS = selfCPU.total().String(), perEvent(selfCPU.total())
	if srvCPU != nil {
		rep.ServerCPU, rep.ServerCPUPerEventUS = srvCPU.total().String(), perEvent(srvCPU.total())
	}
	if *asJSON {
		return rep, writeJSON(stdout, rep)
	}
	rep.print(stdout)
	return rep, ctx.Err()
}

// retryAfter reads Retry-After as seconds or an HTTP date; 1 s if absent or
// unreadable.
func retryAfter(v string) time.Duration {
	if v == "" {
		return time.Second
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil && s >= 0 {
		return time.Duration(s * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(0, time.Until(t))
	}
	return time.Second
}

func truncate(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}

func (r *eventsReport) print(w io.Writer) {
	fmt.Fprintf(w, "events-http: %s, %s batches of %d, %d workers, %s, run %s\n", r.URL, r.Format, r.Batch, r.Concurrency, r.Duration, r.Run)
	fmt.Fprintf(w, "  %.0f events/s acknowledged over %s: %d requests ok, %d events sent, accepted %d, duplicates %d, rejected %d\n",
		r.EventsPerSec, r.Elapsed, r.Requests, r.EventsSent, r.Accepted, r.Duplicates, r.Rejected)
	fmt.Fprintf(w, "  request latency %s\n", r.Latency)
	fmt.Fprintf(w, "  429: %d (Retry-After slept %s in total over all workers); errors: %s\n", r.TooMany, r.RetryAfterTotal, fmtCounts(r.Errors))
	for k, ex := range r.ErrExamples {
		fmt.Fprintf(w, "    %s, e.g. %s\n", k, ex)
	}
	fmt.Fprintf(w, "  acknowledged events (accepted + duplicates): %d (run id %s)\n", r.Acknowledged, r.Run)
	if r.PID > 0 {
		fmt.Fprintf(w, "  server pid %d RSS: start %s, end %s, peak %s (sampled every 200 ms)\n", r.PID, fmtMB(r.RSSStartKB), fmtMB(r.RSSEndKB), fmtMB(r.RSSPeakKB))
		fmt.Fprintf(w, "  server CPU %s (%.2f µs per acknowledged event)\n", r.ServerCPU, r.ServerCPUPerEventUS)
	}
	fmt.Fprintf(w, "  load tool CPU %s (%.2f µs per acknowledged event)\n", r.LoadCPU, r.LoadCPUPerEventUS)
}
