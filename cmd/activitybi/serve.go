package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/activitybi/activitybi/internal/artifact"
	"github.com/activitybi/activitybi/internal/audit"
	"github.com/activitybi/activitybi/internal/cache"
	"github.com/activitybi/activitybi/internal/card"
	"github.com/activitybi/activitybi/internal/event"
	"github.com/activitybi/activitybi/internal/memory"
	"github.com/activitybi/activitybi/internal/server"
	"github.com/activitybi/activitybi/internal/spool"
	"github.com/activitybi/activitybi/internal/sqltmpl"
	"github.com/activitybi/activitybi/internal/telemetry"
	"github.com/activitybi/activitybi/internal/upload"
	"github.com/activitybi/activitybi/internal/warehouse/duckdb"
)

// drainTimeout bounds the final upload on shutdown; what is left stays in
// the spool and is loaded at the next start.
const drainTimeout = 30 * time.Second

func (a *app) openWarehouse(ctx context.Context, readOnly bool) (*duckdb.DB, error) {
	return duckdb.Open(ctx, duckdb.Options{
		Path:        a.cfg.Warehouse.Path,
		ReadOnly:    readOnly,
		MemoryLimit: a.cfg.Warehouse.MemoryLimit,
		Threads:     a.cfg.Warehouse.Threads,
		Logger:      a.log,
	})
}

// serveOptions are serve's own flags.
type serveOptions struct {
	insecure  bool
	idleExit  time.Duration
	startedBy string
	tlsCert   string
	tlsKey    string
	// Hidden memory knobs, for tests and bench/memory.md.
	cacheL1TTL    time.Duration
	memoryRefresh time.Duration
	memoryNoRows  bool
	nice          int
}

// edgeCoreNice is the nice value of a core an edge started: on a laptop
// the core's uploads and queries run beside the person's Claude and the
// edges answering it, which should win the CPU when both want it (a 2-core
// machine showed log_event's p99 at 2x the protocol floor with the core
// loading at full priority beside it; bench/mcp.md).
const edgeCoreNice = 10

func (a *app) serveCmd() *cobra.Command {
	var o serveOptions
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the core: the uploader into the warehouse and the HTTP server",
		Long: `Run the core for the data directory: it owns the warehouse, uploads every
spooled event into it exactly once, and serves on 127.0.0.1 (--listen):
/healthz, /readyz, /metrics, MCP over Streamable HTTP at /mcp and POST
/v1/events and /v1/insights (bearer tokens from ` + "`activitybi token create`" + `).
Local edges (` + "`activitybi mcp`" + `) and the CLI reach it over a socket in the data
directory. One core runs per data directory; an edge that finds none starts
one (it then exits after --idle-exit with no edge attached).
SIGINT, SIGTERM or ` + "`activitybi stop`" + ` stops intake, drains the spool and closes
the warehouse.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.serve(cmd.Context(), o)
		},
	}
	cmd.Flags().BoolVar(&o.insecure, "insecure-listen", false, "allow a non-loopback --listen address without TLS")
	cmd.Flags().DurationVar(&o.idleExit, "idle-exit", 0, "exit after this long with no edge attached (0 = run until stopped)")
	cmd.Flags().StringVar(&o.startedBy, "started-by", "hand", "who started this core (hand or edge), shown by status")
	_ = cmd.Flags().MarkHidden("started-by")
	cmd.Flags().StringVar(&o.tlsCert, "tls-cert", "", "PEM certificate file: serve HTTPS (allows a non-loopback --listen)")
	cmd.Flags().StringVar(&o.tlsKey, "tls-key", "", "PEM private key file for --tls-cert")
	cmd.Flags().DurationVar(&o.cacheL1TTL, "cache-l1-ttl", 0, "freshness of the in-process memory cache (0 = 5m)")
	cmd.Flags().DurationVar(&o.memoryRefresh, "memory-refresh-every", 0, "how often active customers' contexts are rebuilt (0 = 5m)")
	cmd.Flags().BoolVar(&o.memoryNoRows, "memory-no-rows", false, "build every context a load needs instead of reading context_cache")
	cmd.Flags().IntVar(&o.nice, "nice", -1, fmt.Sprintf("lower the core's CPU priority to this nice value, 0-19, so that interactive processes win the CPU (default %d for a core an edge starts, 0 otherwise)", edgeCoreNice))
	for _, f := range []string{"cache-l1-ttl", "memory-refresh-every", "memory-no-rows"} {
		_ = cmd.Flags().MarkHidden(f)
	}
	return cmd
}

func (a *app) serve(ctx context.Context, o serveOptions) error {
	cfg := a.cfg
	if (o.tlsCert == "") != (o.tlsKey == "") {
		return errors.New("--tls-cert and --tls-key go together")
	}
	if err := server.CheckListen(cfg.Listen, o.insecure || o.tlsCert != ""); err != nil {
		return err
	}
	if o.startedBy != "hand" && o.startedBy != "edge" {
		return fmt.Errorf("--started-by must be hand or edge, not %q", o.startedBy)
	}
	switch {
	case o.nice == -1 && o.startedBy == "edge":
		o.nice = edgeCoreNice
	case o.nice == -1:
		o.nice = 0
	case o.nice < 0 || o.nice > 19:
		return fmt.Errorf("--nice must be between 0 and 19, not %d", o.nice)
	}
	if o.nice > 0 {
		// Before the warehouse opens, so that DuckDB's threads inherit it.
		if err := lowerPriority(o.nice); err != nil {
			a.log.Warn("core: CPU priority left as it was", "nice", o.nice, "err", err)
		} else {
			a.log.Debug("core: CPU priority lowered", "nice", o.nice)
		}
	}
	unlock, err := server.LockCore(cfg.DataDir)
	if err != nil {
		return err
	}
	defer unlock()

	db, err := a.openWarehouse(ctx, false)
	if err != nil {
		return err
	}
	defer func() {
		if err := db.Close(); err != nil {
			a.log.Error("close warehouse", "err", err)
		}
	}()
	if _, err := db.Migrate(ctx); err != nil { // the driver logs what it applies
		return fmt.Errorf("migrate: %w", err)
	}

	reg := telemetry.NewRegistry()
	spoolMetrics := spool.NewMetrics(reg)
	reg.MustRegister(upload.NewSpoolCollector(cfg.SpoolDir()))
	if err := os.MkdirAll(cfg.SpoolDir(), 0o700); err != nil {
		return err
	}
	if _, err := spool.Recover(cfg.SpoolDir(), a.log, spoolMetrics); err != nil {
		return fmt.Errorf("recover spool: %w", err)
	}
	// Memory: contexts materialized in context_cache by the store (built
	// from the warehouse, refreshed, warmed) behind the cache tiers; a
	// committed insight, or a refresh that changes a context, invalidates
	// that customer's context in the store, here, in Redis (other
	// processes) and in the attached edges.
	builder, err := memory.NewBuilder(memory.Options{Warehouse: db, Logger: a.log})
	if err != nil {
		return err
	}
	memCache, err := a.newCache(reg, o.cacheL1TTL, true)
	if err != nil {
		return err
	}
	defer memCache.Close()
	edgeCache, err := cache.NewReported(reg)
	if err != nil {
		return err
	}
	var srv *server.Server // set below; invalidations before it exists reach no edge anyway
	var srvMu sync.Mutex
	invalidateCaches := func(c string) {
		ictx, cancel := context.WithTimeout(context.Background(), time.Second)
		if err := memCache.Invalidate(ictx, c); err != nil {
			a.log.Warn("memory: invalidation not published; other processes see the change when their cache expires", "err", err)
		}
		cancel()
		srvMu.Lock()
		if srv != nil {
			srv.InvalidateEdges(c)
		}
		srvMu.Unlock()
	}
	var mem *server.Memory // set below; the store warms through it
	store, err := memory.NewStore(memory.StoreOptions{
		Builder: builder, Warehouse: db, Logger: a.log, Registerer: reg,
		RefreshEvery: o.memoryRefresh, NoRows: o.memoryNoRows,
		OnChange: invalidateCaches,
		OnWarm: func(ctx context.Context, c string) {
			if _, err := mem.Warm(ctx, c); err != nil && ctx.Err() == nil {
				a.log.Debug("memory: warming a context into the cache failed", "err", err)
			}
		},
	})
	if err != nil {
		return err
	}
	mem = &server.Memory{Cache: memCache, Load: server.StoreLoader(store), Seen: store.Touch, Reported: edgeCache}
	onInsights := func(customers []string) {
		for _, c := range customers {
			store.Invalidate(c) // first: a load after the caches drop it must not read the old row
			invalidateCaches(c)
		}
	}
	up, err := upload.New(upload.Options{
		OnInsights:      onInsights,
		SpoolDir:        cfg.SpoolDir(),
		Warehouse:       db,
		BatchMaxRecords: cfg.Upload.BatchMaxRecords,
		BatchMaxBytes:   cfg.Upload.BatchMaxBytes,
		PollInterval:    cfg.Upload.PollInterval,
		RetryMin:        cfg.Upload.RetryMin,
		RetryMax:        cfg.Upload.RetryMax,
		SpoolMetrics:    spoolMetrics,
		Logger:          a.log,
		Registerer:      reg,
	})
	if err != nil {
		return err
	}
	token, err := server.NewToken()
	if err != nil {
		return err
	}
	// The core's own spool writer takes what arrives over HTTP.
	sw, err := a.openSpoolWith(spoolMetrics)
	if err != nil {
		return err
	}
	swClosed := false
	closeSpool := func() {
		if !swClosed {
			swClosed = true
			if err := sw.Close(); err != nil {
				a.log.Error("close spool writer", "err", err)
			}
		}
	}
	defer closeSpool()
	toolMetrics, err := server.NewToolMetrics(reg)
	if err != nil {
		return err
	}
	// The accesses the core serves are audited through its own spool writer.
	auditLog, err := audit.New(audit.Options{Appender: sw, Source: event.SourceAPI, Registry: reg, Logger: a.log})
	if err != nil {
		return err
	}
	verify, err := a.tokenVerifier()
	if err != nil {
		return err
	}
	// Queries: tickets over SafeSQL templates and dataset specs; their
	// results and cards kept in the artifact store.
	artifacts, err := artifact.Open(ctx, artifact.Options{URL: cfg.Artifacts.URL, DataDir: cfg.DataDir, Index: db, Registry: reg, Logger: a.log})
	if err != nil {
		return fmt.Errorf("artifact store: %w", err)
	}
	defer artifacts.Close()
	engine, err := a.newQueryEngine(db, artifacts, reg, auditLog)
	if err != nil {
		return err
	}
	cardMetrics := card.NewMetrics(reg)
	cards := &server.CardRenderer{Engine: engine, Store: artifacts, Templates: sqltmpl.Default(), Audit: auditLog, Metrics: cardMetrics, Logger: a.log}
	dash, err := a.newDashboard(db, verify, mem, up, sw.Pending, cardMetrics, reg)
	if err != nil {
		return err
	}
	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	sopts := server.Options{
		Addr: cfg.Listen, InsecureListen: o.insecure, TLSCert: o.tlsCert, TLSKey: o.tlsKey,
		Socket: server.SocketPath(cfg.DataDir), Registry: reg, Warehouse: db,
		Uploader: up.Status, AdminToken: token, Appender: sw, Audit: auditLog, VerifyToken: verify, ToolMetrics: toolMetrics,
		Memory:  mem,
		Queries: engine, Templates: server.TemplateInfos(sqltmpl.Default()), Cards: cards, Artifacts: artifacts,
		Dashboard: dash.Handler(), SessionCustomer: dash.Customer,
		IdleExit: o.idleExit, StartedBy: o.startedBy,
		// A core started by an edge must not fail because another data
		// directory's core has the port: it takes a free one (status shows it).
		FreePortIfBusy: o.startedBy == "edge",
		Shutdown:       func(reason string) { cancel(fmt.Errorf("stopped: %s", reason)) },
		DataDir:        cfg.DataDir, SpoolDir: cfg.SpoolDir(), Version: versionString(), Logger: a.log,
	}
	s, err := server.New(sopts)
	if err != nil {
		return err
	}
	srvMu.Lock()
	srv = s
	srvMu.Unlock()
	addr, err := srv.Listen()
	if err != nil {
		return err
	}
	scheme := "http://"
	if o.tlsCert != "" {
		scheme = "https://"
	}
	if err := server.WriteCoreInfo(cfg.DataDir, server.CoreInfo{
		PID: os.Getpid(), Addr: addr.String(), Token: token, StartedAt: time.Now().UTC(), Version: versionString(),
		Socket: sopts.Socket, StartedBy: o.startedBy,
	}); err != nil {
		return err
	}
	defer server.RemoveCoreInfo(cfg.DataDir)
	a.log.Info("activitybi core running", "http", scheme+addr.String(), "socket", sopts.Socket, "data_dir", cfg.DataDir,
		"warehouse", cfg.Warehouse.Path, "started_by", o.startedBy, "idle_exit", o.idleExit)
	a.trimAtStart()
	go a.trimAfterStart(runCtx, coreTrimDelay)

	// Run the parts; the first to fail stops the others.
	go func() {
		if err := memCache.Run(runCtx); err != nil && runCtx.Err() == nil {
			a.log.Warn("memory cache subscriber stopped", "err", err)
		}
	}()
	// The store warms (in the background: start-up does not wait), then
	// refreshes; it stops, and the row writes of the last loads (the HTTP
	// server may serve a little longer than it runs) finish, before the
	// warehouse closes.
	storeDone := make(chan struct{})
	go func() {
		defer close(storeDone)
		_ = store.Run(runCtx)
	}()
	defer func() { cancel(nil); <-storeDone; store.Wait() }()
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	wg.Add(4)
	// The engine and the artifact sweep stop with the server, before the
	// spool writer closes: the audit records of cancelled tickets and the
	// tickets' last state are written first.
	go func() {
		defer wg.Done()
		if err := engine.Run(runCtx); err != nil && runCtx.Err() == nil {
			errs <- fmt.Errorf("query engine: %w", err)
			cancel(err)
		}
	}()
	go func() {
		defer wg.Done()
		if err := artifacts.Run(runCtx); err != nil && runCtx.Err() == nil {
			errs <- fmt.Errorf("artifact sweep: %w", err)
			cancel(err)
		}
	}()
	go func() {
		defer wg.Done()
		if err := srv.Run(runCtx); err != nil {
			errs <- fmt.Errorf("http: %w", err)
			cancel(err)
		}
	}()
	go func() {
		defer wg.Done()
		if err := up.Run(runCtx); err != nil {
			errs <- fmt.Errorf("uploader: %w", err)
			cancel(err)
		}
	}()
	<-runCtx.Done()
	a.log.Info("shutting down: draining the spool", "reason", context.Cause(runCtx), "timeout", drainTimeout)
	wg.Wait()
	// The summaries of get_context reads still being counted go to the
	// spool before it closes (and so into this drain).
	if err := auditLog.Close(); err != nil {
		a.log.Error("audit: pending summaries not written", "err", err)
	}
	closeSpool() // HTTP intake is stopped; flush what it accepted before the drain
	// Graceful order: intake stopped (HTTP down), drain, then close.
	dctx, dcancel := context.WithTimeout(context.WithoutCancel(ctx), drainTimeout)
	defer dcancel()
	if err := up.Drain(dctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		a.log.Error("drain", "err", err)
	} else if err != nil {
		a.log.Warn("drain did not finish; the rest stays in the spool for the next start", "err", err)
	}
	st := up.Status()
	a.log.Info("core stopped", "inserted", st.Inserted, "duplicates", st.Duplicates, "quarantined", st.Quarantined)
	close(errs)
	for err := range errs {
		return err
	}
	return nil
}
