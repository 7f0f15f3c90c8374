package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/activitybi/activitybi/internal/server"
	"github.com/activitybi/activitybi/internal/spool"
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

func (a *app) serveCmd() *cobra.Command {
	var insecure bool
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the core: the uploader into the warehouse and the HTTP server",
		Long: `Run the core for the data directory: it owns the warehouse, uploads every
spooled event into it exactly once, and serves /healthz, /readyz and /metrics
on 127.0.0.1 (--listen). One core runs per data directory.
SIGINT or SIGTERM stops intake, drains the spool and closes the warehouse.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.serve(cmd.Context(), insecure)
		},
	}
	cmd.Flags().BoolVar(&insecure, "insecure-listen", false, "allow a non-loopback --listen address without TLS")
	return cmd
}

func (a *app) serve(ctx context.Context, insecure bool) error {
	cfg := a.cfg
	if err := server.CheckListen(cfg.Listen, insecure); err != nil {
		return err
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
	up, err := upload.New(upload.Options{
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
	srv, err := server.New(server.Options{
		Addr: cfg.Listen, InsecureListen: insecure, Registry: reg, Warehouse: db,
		Uploader: up.Status, AdminToken: token, DataDir: cfg.DataDir, Version: versionString(), Logger: a.log,
	})
	if err != nil {
		return err
	}
	addr, err := srv.Listen()
	if err != nil {
		return err
	}
	if err := server.WriteCoreInfo(cfg.DataDir, server.CoreInfo{
		PID: os.Getpid(), Addr: addr.String(), Token: token, StartedAt: time.Now().UTC(), Version: versionString(),
	}); err != nil {
		return err
	}
	defer server.RemoveCoreInfo(cfg.DataDir)
	a.log.Info("activitybi core running", "http", "http://"+addr.String(), "data_dir", cfg.DataDir, "warehouse", cfg.Warehouse.Path)

	// Run the parts; the first to fail stops the others.
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	wg.Add(2)
	go func() {
		defer wg.Done()
		if err := srv.Run(runCtx); err != nil {
			errs <- fmt.Errorf("http: %w", err)
			cancel()
		}
	}()
	go func() {
		defer wg.Done()
		if err := up.Run(runCtx); err != nil {
			errs <- fmt.Errorf("uploader: %w", err)
			cancel()
		}
	}()
	<-runCtx.Done()
	a.log.Info("shutting down: draining the spool", "timeout", drainTimeout)
	wg.Wait()
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
