package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/activitybi/activitybi/internal/audit"
	"github.com/activitybi/activitybi/internal/server"
)

func (a *app) sqlCmd() *cobra.Command {
	var format string
	var maxRows int
	cmd := &cobra.Command{
		Use:   `sql "SELECT ..." | sql -`,
		Short: "Run one read-only SQL query on the warehouse",
		Long: `Run exactly one read-only SQL statement on the warehouse and print the result.
It goes through the running core when one holds the warehouse, otherwise it
opens the warehouse file read-only. Writes, several statements, ATTACH, COPY,
PRAGMA/SET, INSTALL/LOAD and functions that read files are refused.

Tables: claude_stream (the activity stream), insight_atoms, upload_quarantine,
upload_offsets, audit_log, ...`,
		Example: `  activitybi sql "SELECT activity, count(*) FROM claude_stream GROUP BY ALL ORDER BY 2 DESC"
  echo "SELECT * FROM claude_stream LIMIT 5" | activitybi sql - --format json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			q := args[0]
			if q == "-" {
				b, err := io.ReadAll(io.LimitReader(a.stdin, 1<<20))
				if err != nil {
					return err
				}
				q = string(b)
			}
			if strings.TrimSpace(q) == "" {
				return errors.New("sql: the query is empty")
			}
			switch format {
			case "table", "csv", "json":
			default:
				return fmt.Errorf("--format: %q is not one of table, csv, json", format)
			}
			if maxRows < 1 {
				return fmt.Errorf("--max-rows: %d; it must be at least 1", maxRows)
			}
			t, err := a.runSQL(cmd.Context(), q, maxRows)
			if err != nil {
				return err
			}
			if err := printTable(a.stdout, t, format); err != nil {
				return err
			}
			if t.Truncated && format != "table" {
				fmt.Fprintf(a.stderr, "activitybi sql: output truncated at %d rows; raise --max-rows to see more\n", maxRows)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&format, "format", "table", "output: table, csv or json")
	cmd.Flags().IntVar(&maxRows, "max-rows", 10_000, "most rows to print")
	return cmd
}

// runSQL asks the running core (which records the statement in the audit
// log), or opens the warehouse read-only itself and records the statement
// in this process's spool (principal analyst:<OS user>, across all
// customers).
func (a *app) runSQL(ctx context.Context, q string, maxRows int) (*server.WireTable, error) {
	if t, served, err := a.viaCore(ctx, func(c *server.Client) (*server.WireTable, error) { return c.SQL(ctx, q, maxRows) }); served {
		return t, err
	}
	db, err := a.openWarehouseToRead(ctx)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	start := time.Now()
	t, err := db.Query(ctx, q, maxRows)
	if err != nil {
		a.auditDirect(audit.SQLRecord(ctx, audit.AnalystPrincipal(), q, 0, 0, start, err))
		return nil, err
	}
	wt := server.EncodeTable(t)
	a.auditDirect(audit.SQLRecord(ctx, audit.AnalystPrincipal(), q, int64(len(t.Rows)), jsonSize(wt), start, nil))
	return wt, nil
}

func printTable(w io.Writer, t *server.WireTable, format string) error {
	switch format {
	case "json":
		rows := make([]map[string]any, len(t.Rows))
		for i, r := range t.Rows {
			m := make(map[string]any, len(r))
			for j, c := range t.Columns {
				m[c.Name] = r[j]
			}
			rows[i] = m
		}
		return printJSON(w, rows)
	case "csv":
		cw := csv.NewWriter(w)
		head := make([]string, len(t.Columns))
		for i, c := range t.Columns {
			head[i] = termSafe(c.Name)
		}
		cw.Write(head)
		for _, r := range t.Rows {
			rec := make([]string, len(r))
			for j, v := range r {
				if v != nil {
					rec[j] = cell(v)
				}
			}
			cw.Write(rec)
		}
		cw.Flush()
		return cw.Error()
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	head := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		head[i] = termSafe(c.Name)
	}
	fmt.Fprintln(tw, strings.Join(head, "\t"))
	for _, r := range t.Rows {
		cells := make([]string, len(r))
		for j, v := range r {
			cells[j] = cell(v)
			if v == nil {
				cells[j] = "NULL"
			}
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	suffix := ""
	if t.Truncated {
		suffix = " (truncated: raise --max-rows to see more)"
	}
	_, err := fmt.Fprintf(w, "(%d rows)%s\n", len(t.Rows), suffix)
	return err
}

// cell is a value as the table and csv outputs print it: a string with
// its control characters escaped (termSafe; a tab or line break would
// also break the table's layout), anything else as JSON.
func cell(v any) string {
	switch x := v.(type) {
	case string:
		return termSafe(x)
	case nil:
		return ""
	case float64, int64, int, bool, int32, uint64:
		return fmt.Sprint(x)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return termSafe(fmt.Sprint(v))
	}
	return string(termSafeJSON(b))
}
