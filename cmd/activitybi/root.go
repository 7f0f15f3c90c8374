package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/activitybi/activitybi/internal/config"
	"github.com/activitybi/activitybi/internal/telemetry"
)

// app is what every subcommand shares: the resolved configuration, the
// logger and the standard streams.
type app struct {
	flags  *config.Flags
	cfg    *config.Config
	log    *slog.Logger
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
}

// exitError carries a specific exit code (e.g. 1 when some ingest lines were
// rejected but the rest were kept).
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr}
	root := a.rootCmd()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		// After the first signal, let a second one end the process at once
		// (while serve drains, say).
		<-ctx.Done()
		stop()
	}()
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintln(stderr, "activitybi:", ee.err)
		}
		return ee.code
	}
	fmt.Fprintln(stderr, "activitybi:", err)
	return 1
}

func (a *app) rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "activitybi",
		Short: "Every interaction with Claude as an ActivitySchema stream: durable, queryable, private",
		Long: `activitybi captures interactions with Claude (Claude Desktop, Claude Code) as an
ActivitySchema v2.0 activity stream, keeps it durably in an analytics warehouse
(embedded DuckDB by default) and answers questions about usage, tools, latency
and cost.

Configuration comes from, in increasing precedence: defaults, a YAML file
(--config), ACTIVITYBI_* environment variables and flags. ` + "`activitybi config`" + ` shows
the effective values and where each came from.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if cmd.Name() == "version" || cmd.Name() == "help" {
				return nil
			}
			cfg, err := config.Load(a.flags, nil)
			if err != nil {
				return err
			}
			a.cfg = cfg
			a.log, err = telemetry.NewLogger(a.stderr, cfg.LogLevel, cfg.LogFormat)
			return err
		},
	}
	a.flags = config.BindFlags(root.PersistentFlags())
	root.AddCommand(
		a.serveCmd(),
		a.mcpCmd(),
		a.statusCmd(),
		a.stopCmd(),
		a.logCmd(),
		a.ingestCmd(),
		a.sqlCmd(),
		a.auditCmd(),
		a.spoolCmd(),
		a.migrateCmd(),
		a.configCmd(),
		a.tokenCmd(),
		a.installCmd(),
		a.templatesCmd(),
		a.versionCmd(),
	)
	return root
}
