package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/activitybi/activitybi/internal/spool"
)

func (a *app) spoolCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "spool",
		Short: "Inspect, verify or repair the spool (events not yet in the warehouse)",
	}
	report := func(r spool.Report, verb string) error {
		if asJSON {
			enc := json.NewEncoder(a.stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(r)
		}
		tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "SEGMENT\tSTATE\tBYTES\tRECORDS\tCOMMITTED\tCORRUPT\tTORN BYTES")
		for _, s := range r.Segments {
			state := "open"
			switch {
			case s.Removed:
				state = "removed"
			case s.Recovered:
				state = "recovered"
			case s.Closed:
				state = "closed"
			case s.Orphaned:
				state = "orphaned"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d\n", s.ID, state, humanBytes(s.Size), s.Records, s.Committed.Records, len(s.Corrupt), s.TornBytes)
		}
		tw.Flush()
		fmt.Fprintf(a.stdout, "%s: %d segments, %d records, %s, %d pending (not yet in the warehouse), %d corrupt, %d torn bytes, %d orphaned",
			r.Dir, len(r.Segments), r.Records, humanBytes(r.Bytes), r.Pending, r.Corrupt, r.TornBytes, r.Orphaned)
		if verb == "repair" {
			fmt.Fprintf(a.stdout, ", %d recovered", r.Recovered)
		}
		fmt.Fprintln(a.stdout)
		for _, s := range r.Segments {
			for _, c := range s.Corrupt {
				fmt.Fprintf(a.stdout, "corrupt: %s at byte %d: %s (the uploader quarantines it)\n", s.ID, c.Offset, c.Reason)
			}
		}
		return nil
	}
	// none reports an empty spool when the data directory has none yet
	// (nothing was ever logged with it): that is not an error.
	none := func(verb string) (bool, error) {
		dir := a.cfg.SpoolDir()
		if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
			return false, nil
		}
		fmt.Fprintf(a.stderr, "no spool at %s yet: nothing has been logged with this data directory\n", dir)
		return true, report(spool.Report{Dir: dir}, verb)
	}
	cmd.PersistentFlags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	cmd.AddCommand(&cobra.Command{
		Use:   "stat",
		Short: "Count segments, records and pending events (fast, checks nothing)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if empty, err := none("stat"); empty || err != nil {
				return err
			}
			r, err := spool.Stat(a.cfg.SpoolDir())
			if err != nil {
				return err
			}
			return report(r, "stat")
		},
	}, &cobra.Command{
		Use:   "verify",
		Short: "Check every record's integrity; changes nothing (exit 1 when problems are found)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if empty, err := none("verify"); empty || err != nil {
				return err
			}
			r, err := spool.Verify(a.cfg.SpoolDir())
			if err != nil {
				return err
			}
			if err := report(r, "verify"); err != nil {
				return err
			}
			if r.Corrupt > 0 || r.TornBytes > 0 {
				return &exitError{code: 1, err: fmt.Errorf("spool verify: %d corrupt records, %d torn bytes", r.Corrupt, r.TornBytes)}
			}
			return nil
		},
	}, &cobra.Command{
		Use:   "repair",
		Short: "Recover segments whose writer died: truncate torn tails, close them",
		Long: `Recover every open segment whose writer process is gone: truncate the torn
tail after its last good record (the lost bytes are reported) and close it.
Corrupt records in the middle stay in place; the uploader moves them to the
upload_quarantine table with the reason. Live writers are never touched.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if empty, err := none("repair"); empty || err != nil {
				return err
			}
			r, err := spool.Recover(a.cfg.SpoolDir(), a.log, nil)
			if err != nil {
				return err
			}
			return report(r, "repair")
		},
	})
	return cmd
}

// humanBytes prints n with a binary unit and one decimal.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
