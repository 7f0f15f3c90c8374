package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/activitybi/activitybi/internal/audit"
	"github.com/activitybi/activitybi/internal/config"
	"github.com/activitybi/activitybi/internal/event"
	"github.com/activitybi/activitybi/internal/server"
	"github.com/activitybi/activitybi/internal/sqltmpl"
)

// defaultCoreIdleExit is how long a core started by an edge lives with no
// edge attached.
const defaultCoreIdleExit = 30 * time.Minute

// edgeTrimDelay is when an edge trims its memory after start: after the
// client's initialize and first calls have touched what they need.
const edgeTrimDelay = 2 * time.Second

// coreTrimDelay is when a core trims the pages of the binary that starting
// it touched (DuckDB's initialisers, migrations, opening the warehouse):
// once it is serving. An idle core goes from ~75 MB to ~29 MB.
const coreTrimDelay = 3 * time.Second

// retrimDelay is how long after its first trim a process trims again.
const retrimDelay = 15 * time.Second

type edgeOptions struct {
	noCore   bool
	coreIdle time.Duration
	remote   string
	token    string
	// cacheL1TTL is the hidden --cache-l1-ttl (bench/memory.md, tests).
	cacheL1TTL time.Duration
}

func (a *app) mcpCmd() *cobra.Command {
	var o edgeOptions
	cmd := &cobra.Command{
		Use:   "mcp",
		Short: "Run the stdio MCP server that a Claude client launches (the edge)",
		Long: `Run activitybi as a stdio MCP server: the command Claude Desktop and Claude
Code start (see ` + "`activitybi install`" + `). Its tools log to the spool at once, so
logging never waits for the warehouse and works while no core runs.

The edge attaches to the core of its data directory over a local socket and,
when there is none, starts one in the background (one core however many edges
start at once); that core exits after --core-idle-exit with no edge attached.
A core stopped with ` + "`activitybi stop`" + ` is not restarted by running edges.

With --remote URL the edge ships to a team's activitybi server instead, with
the bearer token in $` + envToken + ` (preferred: a command line shows in
` + "`ps`" + `) or --token. Its events wait in a local spool of their own, one per
server and token.

stdout carries only the MCP protocol; logs go to stderr.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.runEdge(cmd.Context(), o)
		},
	}
	cmd.Flags().BoolVar(&o.noCore, "no-core", false, "never start a core (events wait in the spool until one runs)")
	cmd.Flags().DurationVar(&o.coreIdle, "core-idle-exit", defaultCoreIdleExit, "idle time after which a core started by an edge exits")
	cmd.Flags().StringVar(&o.remote, "remote", "", "ship events to the activitybi server at this URL (https://host:port) instead of a local core")
	cmd.Flags().StringVar(&o.token, "token", "", "bearer `TOKEN` for --remote; prefer $"+envToken+": a command line shows in ps output to every user of the machine")
	cmd.Flags().DurationVar(&o.cacheL1TTL, "cache-l1-ttl", 0, "freshness of the edge's in-process memory cache (0 = 5m)")
	_ = cmd.Flags().MarkHidden("cache-l1-ttl")
	return cmd
}

func (a *app) runEdge(ctx context.Context, o edgeOptions) error {
	setEdgeGC()
	if o.remote != "" || o.token != "" {
		return a.runRemoteEdge(ctx, o)
	}
	sw, err := a.openSpool()
	if err != nil {
		return err
	}
	defer func() {
		if err := sw.Close(); err != nil {
			a.log.Error("close spool", "err", err)
		}
	}()
	var clientMu sync.Mutex
	client := ""
	metrics := &server.EdgeMetrics{}
	// get_context: the edge's own cache (and Redis when configured) in
	// front of the core, which builds contexts from the warehouse.
	memCache, err := a.newCache(nil, o.cacheL1TTL, false)
	if err != nil {
		return err
	}
	defer memCache.Close()
	mem := &server.Memory{Cache: memCache, Load: server.CoreContextLoader(a.cfg.DataDir)}
	// Once attached, the edge loads its customer's context in the
	// background, so that the first get_context is served from memory.
	warm := func(ctx context.Context) {
		src, err := mem.Warm(ctx, a.cfg.Customer)
		if err != nil {
			if ctx.Err() == nil {
				a.log.Debug("edge: warming the context failed; get_context loads it when asked", "err", err)
			}
			return
		}
		a.log.Debug("edge: context warmed", "tier", src.String())
	}
	// get_context is served here from the edge's cache: the edge audits it
	// through its own spool (queries and cards are audited by the core).
	auditLog, err := audit.New(audit.Options{Appender: sw, Source: event.SourceMCP, Logger: a.log})
	if err != nil {
		return err
	}
	// Repeated get_context reads are counted into summary records
	// (audit.Log.Coalesce); Close writes the pending ones before the
	// spool closes (deferred after it, so it runs first).
	defer func() {
		if err := auditLog.Close(); err != nil {
			a.log.Error("audit: pending summaries not written", "err", err)
		}
	}()
	mo := server.MCPOptions{
		Appender: sw, Identity: server.FixedIdentity(a.cfg.Customer), Source: "mcp", Audit: auditLog,
		Version: versionString(), Logger: a.log, Metrics: metrics, Memory: mem,
		// Queries run in the core; the templates are embedded, so the
		// edge describes them itself.
		Queries: server.NewSocketQueries(a.cfg.DataDir), Templates: server.TemplateInfos(sqltmpl.Default()),
		Cards:    server.NewSocketCards(a.cfg.DataDir),
		OnClient: func(c string) { clientMu.Lock(); client = c; clientMu.Unlock() },
		// Shared by the go-sdk's tools and the fast path.
		Recent: server.NewRecentIDs(edgeRecentIDs),
	}
	ms, err := server.NewMCPServer(mo)
	if err != nil {
		return err
	}
	fast, err := server.NewStdioFast(mo)
	if err != nil {
		return err
	}
	a.trimAtStart() // before link.Run can start a core
	linkCtx, stopLink := context.WithCancel(ctx)
	var linkDone sync.WaitGroup
	link := &server.EdgeLink{DataDir: a.cfg.DataDir, Metrics: metrics, CacheStats: memCache.Stats}
	if !o.noCore {
		link = &server.EdgeLink{
			DataDir: a.cfg.DataDir, Spawn: a.spawnCore(o.coreIdle), Logger: a.log, Metrics: metrics,
			OnInvalidate: memCache.InvalidateLocal,
			OnAttach:     warm,
			CacheStats:   memCache.Stats,
			Info:         server.EdgeInfo{PID: os.Getpid(), Customer: a.cfg.Customer},
			Client:       func() string { clientMu.Lock(); defer clientMu.Unlock(); return client },
		}
		linkDone.Add(1)
		go func() { defer linkDone.Done(); link.Run(linkCtx) }()
	}
	a.log.Debug("edge serving MCP on stdio", "customer", a.cfg.Customer, "spool", a.cfg.SpoolDir())
	go a.trimAfterStart(linkCtx, edgeTrimDelay)
	go func() {
		if err := memCache.Run(linkCtx); err != nil && linkCtx.Err() == nil {
			a.log.Warn("memory cache subscriber stopped", "err", err)
		}
	}()
	err = ms.Run(ctx, fast.Transport(a.stdin, a.stdout))
	a.log.Debug("edge: MCP session over", "fast_path_calls", fast.Served())
	stopLink()
	linkDone.Wait()
	link.Flush(context.WithoutCancel(ctx))
	if err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, io.EOF) {
		return fmt.Errorf("mcp: %w", err)
	}
	return nil
}

// spawnCore returns a function that starts `activitybi serve` for this data
// directory in the background, detached from the edge (its own session, so
// the client's signals do not reach it), with its output in core.log.
func (a *app) spawnCore(idle time.Duration) func() error {
	return func() error {
		exe, err := os.Executable()
		if err != nil {
			return err
		}
		args := []string{"serve", "--idle-exit", idle.String(), "--started-by", "edge", "--data-dir", a.cfg.DataDir}
		args = append(args, a.explicitFlags("data_dir")...)
		logf, err := os.OpenFile(filepath.Join(a.cfg.DataDir, server.CoreLogFile), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
		if err != nil {
			return err
		}
		defer logf.Close()
		cmd := exec.Command(exe, args...)
		cmd.Stdout, cmd.Stderr = logf, logf
		cmd.SysProcAttr = detached()
		if err := cmd.Start(); err != nil {
			return err
		}
		a.log.Info("started a core in the background", "pid", cmd.Process.Pid, "log", logf.Name())
		go cmd.Wait() // reap it if it exits while this edge lives
		return nil
	}
}

// explicitFlags re-creates the config the user gave by flag (and --config),
// so that a process this one starts sees the same settings.
func (a *app) explicitFlags(skip ...string) []string {
	var out []string
	if a.cfg.File != "" {
		out = append(out, "--config", a.cfg.File)
	}
	keys := config.Keys()
	sort.Strings(keys)
	for _, k := range keys {
		if contains(skip, k) || !strings.HasPrefix(a.cfg.Sources[k], "flag ") {
			continue
		}
		name := strings.TrimPrefix(a.cfg.Sources[k], "flag ")
		out = append(out, name+"="+a.cfg.Get(k))
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// edgeRecentIDs is how many caller-given activity ids an edge remembers to
// answer "duplicate" (~100 bytes each). A client retries within seconds,
// and the warehouse's primary key makes any later retry harmless; the
// server's DefaultRecentIDs (100,000, ~10 MB once full) is sized for a
// core serving many sessions, and would be most of a long-lived edge's
// heap, tripled by its GOGC.
const edgeRecentIDs = 10_000

// edgeGCPercent is the edge's GOGC unless the environment sets one. An
// edge's live heap is ~2-3 MB, and Go's heap goal is the live heap times
// (1 + GOGC/100): at the default 100 an edge holds ~6 MB of heap, at 200
// ~9-11 MB, a third of the < 30 MB an edge may take. Its hot calls
// (log_event, get_context) take the stdio fast path (server.StdioFast),
// which allocates ~8 KB a call where the go-sdk allocated 200-450 KB, so
// collecting often is cheap: at 50 an edge's RSS under load fell from 32-33
// MB (200) to ~27 MB, with no slower calls (bench/mcp.md, "Session 6").
const edgeGCPercent = 50

// setEdgeGC applies edgeGCPercent, unless GOGC is set.
func setEdgeGC() {
	if _, ok := os.LookupEnv("GOGC"); !ok {
		debug.SetGCPercent(edgeGCPercent)
	}
}

// trimAtStart trims (see trimExecutable) at once, before the process
// starts any other (an edge, the core it starts).
//
// A binary the Go linker has just written (go build, go install) sits in
// the page cache in large folios, which every process running it then maps
// whole. They can be evicted only while no process maps them, and the
// delayed trims never found such a moment: the core and the edges each kept
// some mapped while the others trimmed. The first process to run the new
// binary evicts them here, before it starts a core; the pages then come
// back one at a time (this process, under MADV_RANDOM) or in readahead's
// smaller folios (the core's start-up). From a binary just built, an edge
// that started its own core ended 40,000 log_event calls at 25-29 MB
// instead of 38-40 MB, one beside a core started by hand at 21-24 MB
// (bench/mcp.md, "Session 11"). On a binary that has been run before it
// costs what a delayed trim costs (~ms).
func (a *app) trimAtStart() {
	before, after := trimExecutable()
	a.log.Debug("memory trimmed at start", "rss_before", before, "rss_after", after)
}

// trimAfterStart gives back, delay after start, the pages of the binary
// only start-up touched (see trimExecutable), and again retrimDelay later:
// a core started at the same time reads the binary at its own start and
// trims after its own delay, and until then the pages it keeps mapped
// cannot be evicted, so what this process faulted back meanwhile came from
// the core's large folios (bench/mcp.md, "Session 10": an edge beside the
// core it started, on a binary just built, idle at 29 MB instead of 37).
func (a *app) trimAfterStart(ctx context.Context, delay time.Duration) {
	for _, d := range []time.Duration{delay, retrimDelay} {
		select {
		case <-time.After(d):
			before, after := trimExecutable()
			a.log.Debug("memory trimmed", "rss_before", before, "rss_after", after)
		case <-ctx.Done():
			return
		}
	}
}
