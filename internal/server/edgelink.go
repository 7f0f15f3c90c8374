package server

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/activitybi/activitybi/internal/cache"
	"github.com/activitybi/activitybi/internal/telemetry"
)

// SpawnLockFile is flock'ed by an edge while it looks for a core and starts
// one, so that edges starting at the same moment start exactly one core.
const SpawnLockFile = "spawn.lock"

// Timing of the edge's link to the core.
const (
	// spawnWait bounds how long an edge waits for a core it started (or
	// found starting) to answer: opening DuckDB and migrating take a while.
	spawnWait = 60 * time.Second
	// spawnLockWait bounds waiting for another edge's spawn.
	spawnLockWait = 90 * time.Second
	// relinkMin/Max bound the backoff between attach attempts.
	relinkMin = 200 * time.Millisecond
	relinkMax = 10 * time.Second
	// reportEvery is how often an attached edge reports its tool calls.
	reportEvery = 2 * time.Second
)

// EdgeLink keeps an edge attached to the core of its data directory,
// starting the core when there is none. Events never wait for it: the edge
// writes to the spool whether or not the core is up.
type EdgeLink struct {
	DataDir string
	// Spawn starts a core in the background (a detached `activitybi serve`);
	// nil = never start one.
	Spawn func() error
	// Info describes this edge; Client is read at each attach.
	Info   EdgeInfo
	Client func() string
	Logger *slog.Logger
	// Metrics, when set, is reported to the core every reportEvery while
	// attached, and by Flush.
	Metrics *EdgeMetrics
	// OnInvalidate is told the customer whose context the core says changed.
	OnInvalidate func(customer string)
	// OnAttach runs in the background each time the edge attaches (after
	// OnInvalidate has dropped what it may have missed): the edge warms
	// its customer's context into its cache there. Its context ends when
	// the attachment does.
	OnAttach func(ctx context.Context)
	// CacheStats, when set, reads the edge's cache counters; what changed
	// since the last delivered report goes to the core with Metrics.
	CacheStats func() cache.Stats
	// OnState is told "attached", "detached", "stopped" (the core was
	// stopped by hand: the edge does not restart it) — for tests and logs.
	OnState func(state string)

	cacheMu   sync.Mutex
	cacheSent cache.Stats // CacheStats as of the last delivered report
}

// edgeReport is the body of POST /v1/edges/metrics: the tool calls and the
// cache counters' difference since the previous report.
type edgeReport struct {
	EdgeReport
	Cache *cache.Stats `json:"cache,omitempty"`
}

// Run keeps the edge attached until ctx ends.
func (l *EdgeLink) Run(ctx context.Context) {
	log := telemetry.OrDiscard(l.Logger)
	c := NewSocketClient(l.DataDir)
	spawnAllowed := l.Spawn != nil
	backoff := relinkMin
	for ctx.Err() == nil {
		if !c.Healthy(ctx) && spawnAllowed {
			if err := l.ensureCore(ctx, c); err != nil && ctx.Err() == nil {
				log.Warn("edge: could not start the core; events stay in the spool until one runs", "err", err)
			}
		}
		reason, err := l.attach(ctx, c)
		switch {
		case ctx.Err() != nil:
			return
		case reason == "stop":
			// Stopped by hand: respect it. Attach again if someone starts
			// it, but do not start it ourselves.
			log.Info("edge: the core was stopped; events stay in the spool until it runs again")
			l.state("stopped")
			spawnAllowed = false
		case err == nil:
			l.state("detached")
			backoff = relinkMin
		default:
			log.Debug("edge: attach failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		if backoff *= 2; backoff > relinkMax {
			backoff = relinkMax
		}
	}
}

func (l *EdgeLink) state(s string) {
	if l.OnState != nil {
		l.OnState(s)
	}
}

// attach holds the attach stream until it ends and returns the core's
// reason ("stop", "idle", "signal", ...) if it said goodbye.
func (l *EdgeLink) attach(ctx context.Context, c *Client) (reason string, err error) {
	q := url.Values{}
	q.Set("pid", strconv.Itoa(os.Getpid()))
	q.Set("customer", l.Info.Customer)
	if l.Info.Remote != "" {
		q.Set("remote", l.Info.Remote)
	}
	if l.Client != nil {
		q.Set("client", l.Client())
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base()+"/v1/edges/attach?"+q.Encode(), nil)
	if err != nil {
		return "", err
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("attach: HTTP %d", resp.StatusCode)
	}
	l.state("attached")
	if l.OnInvalidate != nil {
		// Invalidations sent while this edge was not attached are lost:
		// start from a clean cache for its customer.
		l.OnInvalidate(l.Info.Customer)
	}
	if l.OnAttach != nil {
		wctx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			l.OnAttach(wctx)
		}()
		defer func() { stop(); <-done }()
	}
	if l.Metrics != nil || l.CacheStats != nil {
		rctx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		defer func() { stop(); <-done }()
		go func() {
			defer close(done)
			t := time.NewTicker(reportEvery)
			defer t.Stop()
			for {
				select {
				case <-rctx.Done():
					return
				case <-t.C:
					l.report(rctx, c)
				}
			}
		}()
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if r, ok := strings.CutPrefix(line, "bye "); ok {
			return r, nil
		}
		if c, ok := strings.CutPrefix(line, "inv "); ok && l.OnInvalidate != nil {
			l.OnInvalidate(c)
		}
	}
	return "", sc.Err()
}

// ensureCore starts a core unless one answers, holding the spawn lock so
// that of several edges starting at once exactly one starts it and the
// others wait for it.
func (l *EdgeLink) ensureCore(ctx context.Context, c *Client) error {
	if err := os.MkdirAll(l.DataDir, dirPerm); err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(l.DataDir, SpawnLockFile), os.O_CREATE|os.O_RDWR, filePerm)
	if err != nil {
		return err
	}
	defer f.Close()
	deadline := time.Now().Add(spawnLockWait)
	for {
		err := tryLock(f)
		if err == nil {
			break
		}
		if !errors.Is(err, errLocked) {
			return fmt.Errorf("spawn lock: %w", err)
		}
		if time.Now().After(deadline) {
			return errors.New("spawn lock: another edge has been starting the core for too long")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	// Locked (released when f is closed). Another edge may have started it
	// while we waited, or a core may be starting (holding core.lock).
	if c.Healthy(ctx) {
		return nil
	}
	if !coreLockHeld(l.DataDir) {
		if err := l.Spawn(); err != nil {
			return fmt.Errorf("start core: %w", err)
		}
	}
	wait := time.Now().Add(spawnWait)
	for time.Now().Before(wait) {
		if c.Healthy(ctx) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("the core did not answer within %s; see %s", spawnWait, filepath.Join(l.DataDir, CoreLogFile))
}

// CoreLogFile receives the output of a core started by an edge.
const CoreLogFile = "core.log"

// coreLockHeld reports whether a core process holds the data directory's
// core lock (it may be starting and not answering yet).
func coreLockHeld(dataDir string) bool {
	f, err := os.OpenFile(filepath.Join(dataDir, CoreLockFile), os.O_RDWR, filePerm)
	if err != nil {
		return false
	}
	defer f.Close()
	return errors.Is(tryLock(f), errLocked)
}

// CoreRunning reports whether a core holds the lock of dataDir.
func CoreRunning(dataDir string) bool { return coreLockHeld(dataDir) }

// report sends the buffered tool calls and the cache counters' difference
// to the core; on failure the calls go back into the buffer and the
// difference stays for the next try.
func (l *EdgeLink) report(ctx context.Context, c *Client) error {
	// One report at a time: the ticker's and Flush's may overlap at exit.
	l.cacheMu.Lock()
	defer l.cacheMu.Unlock()
	var calls []ToolCallStat
	var dropped int64
	if l.Metrics != nil {
		calls, dropped = l.Metrics.take()
	}
	var cur cache.Stats
	rep := edgeReport{EdgeReport: EdgeReport{PID: os.Getpid(), Calls: calls, Dropped: dropped}}
	if l.CacheStats != nil {
		cur = l.CacheStats()
		if d := cur.Sub(l.cacheSent); !d.IsZero() {
			rep.Cache = &d
		}
	}
	if len(calls) == 0 && dropped == 0 && rep.Cache == nil {
		return nil
	}
	var out map[string]any
	err := c.do(ctx, http.MethodPost, "/v1/edges/metrics", rep, &out)
	if err != nil {
		if l.Metrics != nil {
			l.Metrics.putBack(calls, dropped)
		}
		return err
	}
	if rep.Cache != nil {
		l.cacheSent = cur
	}
	return nil
}

// Flush reports what is buffered, if a core answers within a second: the
// edge calls it on its way out.
func (l *EdgeLink) Flush(ctx context.Context) {
	if l.Metrics == nil && l.CacheStats == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	_ = l.report(ctx, NewSocketClient(l.DataDir))
}
