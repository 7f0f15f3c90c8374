package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/activitybi/activitybi/internal/server"
	"github.com/activitybi/activitybi/internal/spool"
)

// stopWait bounds how long `stop` waits for the core to drain and exit.
const stopWait = drainTimeout + 20*time.Second

func (a *app) statusCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the core, its edges, the spool and the upload lag",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.status(cmd.Context(), asJSON)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// localStatus is what status reports when no core runs.
type localStatus struct {
	DataDir string              `json:"data_dir"`
	Core    string              `json:"core"`
	Spool   *server.SpoolStatus `json:"spool,omitempty"`
	// RemoteSpools are the spools of remote edges (mcp --remote) that hold
	// records not yet shipped.
	RemoteSpools []remoteSpool `json:"remote_spools,omitempty"`
}

func (a *app) status(ctx context.Context, asJSON bool) error {
	c := server.NewSocketClient(a.cfg.DataDir)
	st, err := c.Status(ctx)
	remote := pendingRemoteSpools(a.cfg.DataDir)
	if err != nil {
		ls := localStatus{DataDir: a.cfg.DataDir, Core: "not running", RemoteSpools: remote}
		if server.CoreRunning(a.cfg.DataDir) {
			ls.Core = "starting or not answering (" + err.Error() + ")"
		}
		if rep, err := spool.Stat(a.cfg.SpoolDir()); err == nil {
			ls.Spool = &server.SpoolStatus{Segments: len(rep.Segments), Bytes: rep.Bytes, Records: rep.Records, Pending: rep.Pending}
		}
		if asJSON {
			return printJSON(a.stdout, ls)
		}
		fmt.Fprintf(a.stdout, "data dir   %s\ncore       %s (an edge starts one; or run `activitybi serve`)\n", termSafe(ls.DataDir), termSafe(ls.Core))
		if ls.Spool != nil {
			fmt.Fprintf(a.stdout, "spool      %d segments, %s, %d records not yet in the warehouse\n",
				ls.Spool.Segments, humanBytes(ls.Spool.Bytes), ls.Spool.Pending)
		}
		printRemoteSpools(a.stdout, remote)
		return nil
	}
	if asJSON {
		return printJSON(a.stdout, struct {
			*server.StatusResponse
			RemoteSpools []remoteSpool `json:"remote_spools,omitempty"`
		}{st, remote})
	}
	printStatus(a.stdout, st, time.Now())
	printRemoteSpools(a.stdout, remote)
	return nil
}

// pendingRemoteSpools lists the remote spools of dataDir holding records
// not yet shipped (or that cannot be read).
func pendingRemoteSpools(dataDir string) []remoteSpool {
	all, err := listRemoteSpools(dataDir, "", true)
	if err != nil {
		return []remoteSpool{{Dir: filepath.Join(dataDir, remoteDirName), Err: err.Error()}}
	}
	var out []remoteSpool
	for _, sp := range all {
		if sp.Pending > 0 || sp.Err != "" {
			out = append(out, sp)
		}
	}
	return out
}

// printRemoteSpools says which remote spools hold records not yet shipped,
// whose they are and what ships them.
func printRemoteSpools(w io.Writer, spools []remoteSpool) {
	for i, sp := range spools {
		label := ""
		if i == 0 {
			label = "remote"
		}
		server := sp.URL
		if server == "" {
			server = "(server not recorded)"
		}
		var whose string
		switch {
		case sp.Legacy && sp.Customer == "":
			whose = "spool of a previous version, not claimed yet: the first edge for that server ships it"
		case sp.Legacy:
			whose = fmt.Sprintf("spool of a previous version, claimed by customer %q", sp.Customer)
		case sp.Customer != "":
			whose = fmt.Sprintf("token %s, customer %q", sp.TokenID, sp.Customer)
		default:
			whose = fmt.Sprintf("token %s, customer not known yet", sp.TokenID)
		}
		fmt.Fprintf(w, "%-11s%s\n           %d records not yet shipped to %s (%s)\n", label, termSafe(sp.Dir), sp.Pending, termSafe(server), termSafe(whose))
		if sp.Err != "" {
			fmt.Fprintf(w, "           cannot read it: %s\n", termSafe(sp.Err))
		}
	}
}

// printJSON prints v as indented JSON, C1 control characters escaped
// (termSafeJSON): what it prints may be shown on a terminal.
func printJSON(w io.Writer, v any) error {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return err
	}
	_, err := w.Write(termSafeJSON(b.Bytes()))
	return err
}

func printStatus(w io.Writer, st *server.StatusResponse, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	// What the core reports is printed escaped (termSafe): an edge's
	// client name is what its MCP client said, and the uploader's last
	// error can quote a record.
	core := fmt.Sprintf("running, pid %d, version %s, up %s, started by %s", st.Core.PID, termSafe(st.Version),
		now.Sub(st.Core.StartedAt).Round(time.Second), termSafe(st.Core.StartedBy))
	if st.Core.IdleExit > 0 {
		core += fmt.Sprintf(" (exits after %s with no edge)", st.Core.IdleExit)
	}
	fmt.Fprintf(tw, "data dir\t%s\n", termSafe(st.DataDir))
	fmt.Fprintf(tw, "core\t%s\n", core)
	fmt.Fprintf(tw, "\thttp://%s   socket %s\n", termSafe(st.Core.Addr), termSafe(st.Core.Socket))
	fmt.Fprintf(tw, "edges\t%d attached\n", len(st.Edges))
	for _, e := range st.Edges {
		client := e.Client
		if client == "" {
			client = "(client not yet known)"
		}
		fmt.Fprintf(tw, "\tpid %d  %s  customer %s  since %s\n", e.PID, termSafe(client), termSafe(e.Customer), e.Since.Local().Format(time.TimeOnly))
	}
	if sp := st.Spool; sp != nil {
		fmt.Fprintf(tw, "spool\t%d segments, %s, %d records not yet in the warehouse\n", sp.Segments, humanBytes(sp.Bytes), sp.Pending)
	}
	u := st.Uploader
	last := "never"
	if !u.LastCommit.IsZero() {
		last = now.Sub(u.LastCommit).Round(time.Millisecond).String() + " ago"
	}
	fmt.Fprintf(tw, "uploader\tlast commit %s, backlog %s; inserted %d events, %d insights; duplicates %d, quarantined %d\n",
		last, humanBytes(u.BacklogBytes), u.Inserted, u.InsightsInserted, u.Duplicates, u.Quarantined)
	if u.LastLag > 0 {
		fmt.Fprintf(tw, "lag\t%s from acceptance to the warehouse (slowest record of the last batch)\n", u.LastLag.Round(time.Millisecond))
	}
	if u.LastError != "" {
		fmt.Fprintf(tw, "\tlast error (%d in a row): %s\n", u.ConsecutiveFails, termSafe(u.LastError))
	}
	wh := st.Warehouse
	fmt.Fprintf(tw, "warehouse\t%d events, %d insights, %d quarantined, schema v%d\n", wh.StreamRows, wh.InsightRows, wh.QuarantineRows, wh.SchemaVersion)
	tw.Flush()
}

func (a *app) stopCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "stop",
		Short: "Stop the core gracefully: intake stops, the spool is drained, the warehouse closed",
		Long: `Stop the core of the data directory. It stops taking requests, loads what is
in the spool into the warehouse and exits; this command waits for that.
Running edges keep logging to the spool and do not restart the core; the
next edge to start, or ` + "`activitybi serve`" + `, starts it again.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			c := server.NewSocketClient(a.cfg.DataDir)
			pid, err := c.Shutdown(ctx)
			if err != nil {
				if !server.CoreRunning(a.cfg.DataDir) {
					fmt.Fprintf(a.stderr, "no core is running for %s\n", a.cfg.DataDir)
					return nil
				}
				return fmt.Errorf("the core holds the lock but did not take the stop request: %w", err)
			}
			fmt.Fprintf(a.stderr, "stopping the core (pid %d): draining the spool...\n", pid)
			deadline := time.Now().Add(stopWait)
			for server.CoreRunning(a.cfg.DataDir) {
				if time.Now().After(deadline) {
					return fmt.Errorf("the core (pid %d) has not exited after %s; see %s", pid, stopWait, a.cfg.DataDir)
				}
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(50 * time.Millisecond):
				}
			}
			left := int64(0)
			if rep, err := spool.Stat(a.cfg.SpoolDir()); err == nil {
				left = rep.Pending
			}
			if left > 0 {
				fmt.Fprintf(a.stdout, "core stopped; %d records are still in the spool (written after the drain, or the drain timed out) and load at the next start\n", left)
			} else {
				fmt.Fprintln(a.stdout, "core stopped; the spool is drained")
			}
			return nil
		},
	}
}
