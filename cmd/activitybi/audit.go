package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/activitybi/activitybi/internal/audit"
	"github.com/activitybi/activitybi/internal/event"
	"github.com/activitybi/activitybi/internal/server"
	"github.com/activitybi/activitybi/internal/warehouse"
	"github.com/activitybi/activitybi/internal/warehouse/duckdb"
)

// auditTableDetail is how much of a detail the table format shows, in
// characters (csv and json show all of it).
const auditTableDetail = 60

func (a *app) auditCmd() *cobra.Command {
	var (
		since, until, format string
		f                    warehouse.AuditFilter
	)
	cmd := &cobra.Command{
		Use:   "audit [--since 24h] [--customer C] [--principal P] [--action A] [--outcome O] [--target T]",
		Short: "List the audit log: who accessed which data, newest first",
		Long: `List audit_log rows, newest first: every query ticket, result fetch,
get_context, analyst SQL (` + "`activitybi sql`" + `) and listing of this log, with who
(principal), whose data (customer; empty for an analyst's access across all
customers), what (action, target), how much (rows, bytes), how long and how
it ended (outcome).

Repeated successful get_context reads (same principal, customer and scope)
are coalesced: the first is its own row at once, the others within 10 s are
one summary row (detail "N calls coalesced between T1 and T2"; rows, bytes
and duration_ms summed). Refusals and errors are always one row each.

It reads through the running core when there is one, otherwise it opens the
warehouse read-only. Filter values are bound, never spliced into SQL. This
listing is itself recorded (action listed_audit).

Records reach the log through the spool: an access made while no core runs
is listed once a core has loaded it.

--since and --until take a duration back from now (90m, 24h, 7d) or a
timestamp (RFC 3339, or 2006-01-02 [15:04:05] in UTC); --since is inclusive,
--until exclusive.
Actions: ` + strings.Join(event.AuditActions(), ", ") + `.
Outcomes: ` + strings.Join(event.AuditOutcomes(), ", ") + `.`,
		Example: `  activitybi audit --since 24h
  activitybi audit --customer alice --action got_context --format csv
  activitybi audit --action ran_sql --outcome refused --since 7d`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch format {
			case "table", "csv", "json":
			default:
				return fmt.Errorf("--format: %q is not one of table, csv, json", format)
			}
			now := time.Now().UTC()
			var err error
			if f.Since, err = parseWhen("--since", since, now); err != nil {
				return err
			}
			if f.Until, err = parseWhen("--until", until, now); err != nil {
				return err
			}
			if f.Limit < 1 || f.Limit > warehouse.MaxAuditLimit {
				return fmt.Errorf("--limit: %d; it must be between 1 and %d", f.Limit, warehouse.MaxAuditLimit)
			}
			t, err := a.listAudit(cmd.Context(), f)
			if err != nil {
				return err
			}
			if format == "table" {
				clipColumn(t, "detail", auditTableDetail)
			}
			// printTable's own truncation note names sql's flag.
			more := t.Truncated
			t.Truncated = false
			if err := printTable(a.stdout, t, format); err != nil {
				return err
			}
			if more {
				fmt.Fprintf(a.stderr, "activitybi audit: %d rows shown; more match: narrow the filters, raise --limit or page with --until\n", f.Limit)
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&since, "since", "", "only rows at or after this time: a duration back from now (24h, 7d) or a timestamp")
	fl.StringVar(&until, "until", "", "only rows before this time: a duration back from now or a timestamp")
	fl.StringVar(&f.Customer, "customer", "", "only accesses to this customer's data")
	fl.StringVar(&f.Principal, "principal", "", "only accesses by this principal (analyst:<user>, admin:<id>, a token id)")
	fl.StringVar(&f.Action, "action", "", "only this action ("+strings.Join(event.AuditActions(), ", ")+")")
	fl.StringVar(&f.Outcome, "outcome", "", "only this outcome ("+strings.Join(event.AuditOutcomes(), ", ")+")")
	fl.StringVar(&f.Target, "target", "", "only this target (a template, a statement hash, a ticket or artifact id)")
	fl.IntVar(&f.Limit, "limit", warehouse.DefaultAuditLimit, "most rows to print, newest first")
	fl.StringVar(&format, "format", "table", "output: table, csv or json")
	return cmd
}

// parseWhen parses a --since/--until value: "" (unbounded), a duration back
// from now (Go's units, plus d for days), or a timestamp.
func parseWhen(flag, s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		if n, err := strconv.ParseFloat(days, 64); err == nil && n >= 0 && n < 1e5 {
			return now.Add(-time.Duration(n * 24 * float64(time.Hour))), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, fmt.Errorf("%s: %q is negative; give how far back, e.g. 24h", flag, s)
		}
		return now.Add(-d), nil
	}
	t, err := parseTS(s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s: %q is neither a duration back from now (90m, 24h, 7d) nor a timestamp (RFC 3339, e.g. 2026-11-25T14:03:00Z, or 2026-11-25)", flag, s)
	}
	return t, nil
}

// listAudit asks the running core, or opens the warehouse read-only itself
// and records the listing in this process's spool.
func (a *app) listAudit(ctx context.Context, f warehouse.AuditFilter) (*server.WireTable, error) {
	if t, served, err := a.viaCore(ctx, func(c *server.Client) (*server.WireTable, error) { return c.Audit(ctx, f) }); served {
		return t, err
	}
	if err := f.Validate(); err != nil {
		return nil, err
	}
	db, err := a.openWarehouseToRead(ctx)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	start := time.Now()
	t, err := db.Audit(ctx, f)
	if err != nil {
		a.auditDirect(audit.ListingRecord(ctx, audit.AnalystPrincipal(), f, 0, 0, start, err))
		return nil, err
	}
	wt := server.EncodeTable(t)
	a.auditDirect(audit.ListingRecord(ctx, audit.AnalystPrincipal(), f, int64(len(t.Rows)), jsonSize(wt), start, nil))
	return wt, nil
}

// viaCore runs call against the running core: on its socket (this OS
// user, the principal analyst:<user>), else over TCP with the admin token
// of core.json. served is false when no core answers; the caller then
// opens the warehouse itself.
func (a *app) viaCore(ctx context.Context, call func(c *server.Client) (*server.WireTable, error)) (t *server.WireTable, served bool, err error) {
	var ue *server.UnreachableError
	sock := server.NewSocketClient(a.cfg.DataDir)
	defer sock.HTTP.CloseIdleConnections()
	t, err = call(sock)
	if err == nil || !errors.As(err, &ue) {
		return t, true, err
	}
	if info, ierr := server.ReadCoreInfo(a.cfg.DataDir); ierr == nil {
		t, err = call(&server.Client{Info: info})
		if err == nil || !errors.As(err, &ue) {
			return t, true, err
		}
	}
	a.log.Debug("no core answers; opening the warehouse directly", "err", err)
	return nil, false, nil
}

// openWarehouseToRead opens the warehouse read-only, saying what to do when
// there is none yet.
func (a *app) openWarehouseToRead(ctx context.Context) (*duckdb.DB, error) {
	if _, err := os.Stat(a.cfg.Warehouse.Path); errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("no warehouse at %s yet: start `activitybi serve` (or run `activitybi migrate`)", a.cfg.Warehouse.Path)
	}
	return a.openWarehouse(ctx, true)
}

// auditDirect records an access this process served itself (the warehouse
// opened read-only, no core running): appended to a spool writer of its
// own, loaded when a core next runs. These are the analyst's own accesses
// to the analyst's own file, so a record that cannot be written (the spool
// at its backpressure limit, say) is reported on stderr and does not
// withhold the answer (internal/server/audit.go makes the same choice for
// the core's admin API).
func (a *app) auditDirect(r event.Audit) {
	if err := a.recordDirect(r); err != nil {
		fmt.Fprintf(a.stderr, "activitybi: warning: this access was not written to the audit log: %v\n", err)
	}
}

func (a *app) recordDirect(r event.Audit) (err error) {
	w, err := a.openSpool()
	if err != nil {
		return err
	}
	defer func() {
		if cerr := w.Close(); err == nil {
			err = cerr
		}
	}()
	l, err := audit.New(audit.Options{Appender: w, Source: event.SourceCLI, Logger: a.log})
	if err != nil {
		return err
	}
	return l.Record(r)
}

// jsonSize is the size of v as the core sends it (json.Encoder, newline
// included), so that bytes mean the same on both paths.
func jsonSize(v any) int64 {
	var n countWriter
	if err := json.NewEncoder(&n).Encode(v); err != nil {
		return 0
	}
	return int64(n)
}

type countWriter int64

func (c *countWriter) Write(p []byte) (int, error) { *c += countWriter(len(p)); return len(p), nil }

var _ io.Writer = (*countWriter)(nil)

// clipColumn shortens the string values of column name to n characters.
func clipColumn(t *server.WireTable, name string, n int) {
	for j, c := range t.Columns {
		if c.Name != name {
			continue
		}
		for _, r := range t.Rows {
			if s, ok := r[j].(string); ok && utf8.RuneCountInString(s) > n {
				r[j] = string([]rune(s)[:n-1]) + "…"
			}
		}
	}
}
