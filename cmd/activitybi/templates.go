package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/activitybi/activitybi/internal/sqltmpl"
)

func (a *app) templatesCmd() *cobra.Command {
	var asJSON bool
	var dialect string
	cmd := &cobra.Command{
		Use:   "templates [NAME]",
		Short: "List the SafeSQL query templates, or show one with its parameters and SQL",
		Long: `List the SafeSQL templates: the questions Claude can ask the warehouse through
submit_query (the same list the MCP tool list_templates gives). With a NAME,
show that template: what it reads, its parameters with types, defaults and
ranges, its result columns, its default card and its SQL for --dialect.

Values are always bound (? placeholders), never spliced into the SQL; a slot
/* SLOT: x */ ... /* END */ is filled with a fixed fragment chosen by the enum
parameter x. Needs no data directory or running core.`,
		Example: `  activitybi templates
  activitybi templates tool_stats
  activitybi templates tool_stats --dialect snowflake
  activitybi templates --json`,
		Args: cobra.MaximumNArgs(1),
		// The templates are compiled in: no configuration is read, so the
		// command works anywhere, even with a broken config file.
		PersistentPreRunE: func(*cobra.Command, []string) error { return nil },
		RunE: func(cmd *cobra.Command, args []string) error {
			d := sqltmpl.Dialect(dialect)
			if d != sqltmpl.DuckDB && d != sqltmpl.Snowflake {
				return fmt.Errorf("--dialect: %q is not one of duckdb, snowflake", dialect)
			}
			lib := sqltmpl.Default()
			if len(args) == 0 {
				if asJSON {
					return writeJSON(a.stdout, lib.List())
				}
				return listTemplates(a.stdout, lib.List())
			}
			t, err := lib.Get(args[0])
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(a.stdout, t)
			}
			return showTemplate(a.stdout, t, d)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the full metadata as JSON")
	cmd.Flags().StringVar(&dialect, "dialect", string(sqltmpl.DuckDB), "SQL to show: duckdb or snowflake")
	return cmd
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// listTemplates prints each template's name and first sentence, and its
// parameters on the line below.
func listTemplates(w io.Writer, list []*sqltmpl.Template) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, t := range list {
		fmt.Fprintf(tw, "%s\t%s\n", t.Name, firstSentence(t.Description))
		fmt.Fprintf(tw, "\tparams: %s\n", t.Signature())
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "\n%d templates; `activitybi templates NAME` shows one.\n", len(list))
	return err
}

func firstSentence(s string) string {
	if i := strings.Index(s, ". "); i >= 0 {
		return s[:i+1]
	}
	return s
}

func showTemplate(w io.Writer, t *sqltmpl.Template, d sqltmpl.Dialect) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n\n%s\n\nReads: %s\nTimeout: %s\n", t.Name, t.Description, t.Reads, t.Timeout)
	fmt.Fprintf(&b, "Card: %s", t.Card.Kind)
	if t.Card.X != "" {
		fmt.Fprintf(&b, " (x %s, y %s", t.Card.X, strings.Join(t.Card.Y, ", "))
		if t.Card.Series != "" {
			fmt.Fprintf(&b, ", series %s", t.Card.Series)
		}
		b.WriteString(")")
	}
	b.WriteString("\n\nParameters:\n")
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	for _, p := range t.Params {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", p.Name, p.Type, paramRule(p), p.Description)
	}
	tw.Flush()
	b.WriteString("\nColumns:\n")
	tw = tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	for _, c := range t.Columns {
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", c.Name, c.Type, c.Description)
	}
	tw.Flush()
	src, _ := t.SQL(d)
	fmt.Fprintf(&b, "\nSQL (%s; $name is a bound value):\n%s\n", d, src)
	_, err := io.WriteString(w, b.String())
	return err
}

// paramRule says whether a parameter is required and what it accepts.
func paramRule(p sqltmpl.Param) string {
	var parts []string
	switch {
	case p.Default != nil:
		parts = append(parts, fmt.Sprintf("default %v", p.Default))
	case p.Optional:
		parts = append(parts, "optional")
	default:
		parts = append(parts, "required")
	}
	if p.Min != nil && p.Max != nil {
		unit := ""
		if p.Type == sqltmpl.TypeDuration {
			unit = " s"
		}
		parts = append(parts, fmt.Sprintf("%v..%v%s", *p.Min, *p.Max, unit))
	}
	if p.Type == sqltmpl.TypeString {
		n := p.MaxLen
		if n == 0 {
			n = sqltmpl.DefaultMaxLen
		}
		parts = append(parts, fmt.Sprintf("<= %d chars", n))
	}
	if len(p.Values) > 0 {
		parts = append(parts, strings.Join(p.Values, "|"))
	}
	return strings.Join(parts, ", ")
}
