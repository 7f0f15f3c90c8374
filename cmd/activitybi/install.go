package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/activitybi/activitybi/internal/config"
	"github.com/activitybi/activitybi/internal/install"
)

// installFlags are the flags both install subcommands take.
type installFlags struct {
	dryRun     bool
	name       string
	configFile string
}

func (f *installFlags) bind(cmd *cobra.Command, what string) {
	cmd.Flags().BoolVar(&f.dryRun, "dry-run", false, "print what would change and write nothing")
	cmd.Flags().StringVar(&f.name, "name", install.DefaultName, "the server's name under mcpServers")
	cmd.Flags().StringVar(&f.configFile, "config-file", "", what+" to edit instead of the default")
}

func (a *app) installCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "install",
		Short: "Add activitybi's MCP server to a Claude client",
		Long: `Add activitybi's MCP server ("activitybi mcp") to a Claude client's config file.

Only the one entry under "mcpServers" is added or replaced; every other server,
key, comment and bit of formatting stays as it was. The file is backed up
first (<file>.activitybi-backup-<UTC time>) and replaced atomically.

The entry runs this binary. When --data-dir or --config (or ACTIVITYBI_DATA_DIR,
ACTIVITYBI_CONFIG) are set, they are passed on, so the client works on the same
data as this command line.`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(a.installDesktopCmd(), a.installCodeCmd())
	return cmd
}

func (a *app) installDesktopCmd() *cobra.Command {
	var f installFlags
	cmd := &cobra.Command{
		Use:   "claude-desktop",
		Short: "Add activitybi to Claude Desktop (claude_desktop_config.json)",
		Long: `Add activitybi to Claude Desktop's claude_desktop_config.json:
~/Library/Application Support/Claude/ on macOS, %APPDATA%\Claude\ on Windows,
$XDG_CONFIG_HOME/Claude/ (~/.config/Claude/) elsewhere.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path := f.configFile
			if path == "" {
				var err error
				if path, err = install.DesktopConfigFile(runtime.GOOS, os.Getenv); err != nil {
					return err
				}
			}
			args, err := a.mcpArgs(cmd)
			if err != nil {
				return err
			}
			return a.runInstall(f, path, install.DesktopServer(args[0], args[1:]),
				"Restart Claude Desktop (quit it fully, then start it) to load the change.")
		},
	}
	f.bind(cmd, "claude_desktop_config.json")
	return cmd
}

func (a *app) installCodeCmd() *cobra.Command {
	var f installFlags
	var scope string
	cmd := &cobra.Command{
		Use:   "claude-code",
		Short: "Add activitybi to Claude Code (~/.claude.json or .mcp.json)",
		Long: `Add activitybi to Claude Code. User scope (the default) edits the top-level
"mcpServers" of ~/.claude.json, so it is available in every project; per-project
entries in that file are left alone. Project scope edits .mcp.json in the
current directory, which is meant to be shared through version control.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path := f.configFile
			hint := "Restart Claude Code (start a new session) to load the change; `claude mcp list` shows what it sees."
			switch scope {
			case "user":
				if path == "" {
					var err error
					if path, err = install.CodeUserConfigFile(runtime.GOOS, os.Getenv); err != nil {
						return err
					}
					if d := os.Getenv("CLAUDE_CONFIG_DIR"); d != "" {
						fmt.Fprintf(a.stderr, "note: CLAUDE_CONFIG_DIR is set (%s); if Claude Code keeps its settings there, pass --config-file %s\n",
							d, filepath.Join(d, install.CodeUserConfig))
					}
				}
				hint += "\nClaude Code rewrites ~/.claude.json while it runs: if the entry goes missing, quit Claude Code and run this again."
			case "project":
				if path == "" {
					wd, err := os.Getwd()
					if err != nil {
						return err
					}
					path = install.CodeProjectConfigFile(wd)
				}
				hint += "\nClaude Code asks you to approve servers from .mcp.json the first time."
			default:
				return fmt.Errorf("--scope: %q is not user or project", scope)
			}
			args, err := a.mcpArgs(cmd)
			if err != nil {
				return err
			}
			return a.runInstall(f, path, install.CodeServer(args[0], args[1:]), hint)
		},
	}
	f.bind(cmd, "~/.claude.json or .mcp.json")
	cmd.Flags().StringVar(&scope, "scope", "user", "user (~/.claude.json, every project) or project (./.mcp.json)")
	return cmd
}

func (a *app) runInstall(f installFlags, path string, server install.Server, hint string) error {
	if f.name == "" || strings.ContainsFunc(f.name, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return fmt.Errorf("--name: %q must be non-empty, without control characters", f.name)
	}
	r, err := install.Apply(install.Options{Path: path, Name: f.name, Server: server, DryRun: f.dryRun})
	if err != nil {
		return err
	}
	if err := r.Describe(a.stdout); err != nil {
		return err
	}
	if !f.dryRun && r.Action != install.Unchanged {
		fmt.Fprintln(a.stdout, hint)
	}
	return nil
}

// mcpArgs is the command line the client should run: this binary, "mcp",
// and the data dir and config file when the user chose them (by flag or
// environment), so the client's edge reads the same data. What came from
// defaults or the default config file needs no passing on: the client finds
// it the same way.
func (a *app) mcpArgs(cmd *cobra.Command) ([]string, error) {
	exe, err := installedBinary(os.Args[0])
	if err != nil {
		return nil, err
	}
	args := []string{exe, "mcp"}
	explicit := func(src string) bool { return strings.HasPrefix(src, "flag ") || strings.HasPrefix(src, "env ") }
	if explicit(a.cfg.Sources["data_dir"]) {
		args = append(args, "--data-dir", a.cfg.DataDir)
	}
	if fl := cmd.Flags().Lookup("config"); a.cfg.File != "" && (fl != nil && fl.Changed || os.Getenv(config.EnvConfigFile) != "") {
		file, err := filepath.Abs(a.cfg.File)
		if err != nil {
			return nil, err
		}
		args = append(args, "--config", file)
	}
	// Other settings chosen by flag or environment do not reach the
	// client; say so rather than let them silently differ.
	var lost []string
	for k, src := range a.cfg.Sources {
		if k != "data_dir" && explicit(src) {
			lost = append(lost, k+" ("+src+")")
		}
	}
	if len(lost) > 0 {
		sort.Strings(lost)
		fmt.Fprintf(a.stderr, "note: not passed to the client: %s; put them in the config file if the client needs them\n", strings.Join(lost, ", "))
	}
	return args, nil
}

// installedBinary is the path the entry should run: the one this binary
// was started by (argv[0], looked up in $PATH when it has no directory),
// as long as it leads to this very file — so a link a package manager
// keeps stable across upgrades (Homebrew's /opt/homebrew/bin/activitybi ->
// ../Cellar/activitybi/<version>/...) stays a link in the entry — else the
// file itself. A binary `go run` built in its temporary cache is refused:
// the entry would point at a file that is gone once the run ends.
func installedBinary(argv0 string) (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("find this binary: %w", err)
	}
	if exe, err = filepath.EvalSymlinks(exe); err != nil {
		return "", fmt.Errorf("find this binary: %w", err)
	}
	if exe, err = filepath.Abs(exe); err != nil {
		return "", err
	}
	if strings.Contains(filepath.ToSlash(exe), "/go-build") && strings.Contains(filepath.ToSlash(exe), "/exe/") {
		return "", fmt.Errorf("this activitybi is a temporary build of `go run` (%s), which is removed when it exits; "+
			"install a binary first (`go install ./cmd/activitybi`, or `go build -o ~/.local/bin/activitybi ./cmd/activitybi`) and run install from it", exe)
	}
	invoked := argv0
	if invoked != "" && !strings.ContainsRune(invoked, os.PathSeparator) && !strings.ContainsRune(invoked, '/') {
		if invoked, err = exec.LookPath(invoked); err != nil {
			return exe, nil
		}
	}
	if invoked == "" {
		return exe, nil
	}
	if invoked, err = filepath.Abs(invoked); err != nil {
		return exe, nil
	}
	a, errA := os.Stat(invoked)
	b, errB := os.Stat(exe)
	if errA != nil || errB != nil || !os.SameFile(a, b) {
		return exe, nil
	}
	return invoked, nil
}
