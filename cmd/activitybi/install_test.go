package main

// End-to-end tests of `activitybi install` through the built binary.

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/activitybi/activitybi/internal/install"
)

// installedEntry decodes the pretty entry `install` prints after "entry:".
func installedEntry(t *testing.T, out string) install.Server {
	t.Helper()
	_, after, ok := strings.Cut(out, "\nentry:\n")
	if !ok {
		t.Fatalf("no entry in the output:\n%s", out)
	}
	var s install.Server
	if err := json.NewDecoder(strings.NewReader(after)).Decode(&s); err != nil {
		t.Fatalf("entry: %v\n%s", err, out)
	}
	return s
}

// servers reads a client config file (comments allowed) and returns its
// mcpServers.
func servers(t *testing.T, path string) map[string]install.Server {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	std, err := install.Standardize(b)
	if err != nil {
		t.Fatalf("%s: %v\n%s", path, err, b)
	}
	var doc struct {
		MCPServers map[string]install.Server `json:"mcpServers"`
	}
	if err := json.Unmarshal(std, &doc); err != nil {
		t.Fatalf("%s: %v\n%s", path, err, b)
	}
	return doc.MCPServers
}

func backups(t *testing.T, path string) []string {
	t.Helper()
	m, err := filepath.Glob(path + ".activitybi-backup-*")
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func realBinPath(t *testing.T) string {
	t.Helper()
	p, err := filepath.EvalSymlinks(binPath)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

const desktopConfig = `{
  // hand-edited
  "mcpServers": {
    "weather": {"command": "uv", "args": ["run", "weather.py"], "env": {"K": "v"}},
  },
  "globalShortcut": "Alt+Space"
}
`

func TestInstallClaudeDesktop(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	file := filepath.Join(t.TempDir(), "claude_desktop_config.json")
	if err := os.WriteFile(file, []byte(desktopConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	want := install.Server{Command: realBinPath(t), Args: []string{"mcp", "--data-dir", e.dataDir}}

	// Dry run: the entry is described, the file left alone.
	out := e.mustRun(nil, "install", "claude-desktop", "--dry-run", "--config-file", file)
	for _, s := range []string{"config file: " + file + "\n", `added: mcpServers["activitybi"]`, "backup: would be " + file + ".activitybi-backup-", "dry run: nothing written\n"} {
		if !strings.Contains(out, s) {
			t.Errorf("dry run output lacks %q:\n%s", s, out)
		}
	}
	if got := installedEntry(t, out); !reflect.DeepEqual(got, want) {
		t.Fatalf("entry %+v, want %+v", got, want)
	}
	if b, _ := os.ReadFile(file); string(b) != desktopConfig {
		t.Fatalf("dry run changed the file:\n%s", b)
	}
	if b := backups(t, file); len(b) != 0 {
		t.Fatalf("dry run made backups %v", b)
	}

	// For real: the entry is written and the original kept as a backup.
	out = e.mustRun(nil, "install", "claude-desktop", "--config-file", file)
	if !strings.Contains(out, `added: mcpServers["activitybi"]`) || !strings.Contains(out, "Restart Claude Desktop") {
		t.Fatalf("output:\n%s", out)
	}
	got := servers(t, file)
	if !reflect.DeepEqual(got["activitybi"], want) || got["weather"].Command != "uv" || len(got) != 2 {
		t.Fatalf("servers after install: %+v", got)
	}
	b, _ := os.ReadFile(file)
	if !strings.HasPrefix(string(b), desktopConfig[:strings.Index(desktopConfig, "},\n  },")]) || !strings.HasSuffix(string(b), "  },\n  \"globalShortcut\": \"Alt+Space\"\n}\n") {
		t.Fatalf("bytes around the entry changed:\n%s", b)
	}
	bk := backups(t, file)
	if len(bk) != 1 || !strings.Contains(out, "backup: "+bk[0]+"\n") {
		t.Fatalf("backups %v, output:\n%s", bk, out)
	}
	if b, _ := os.ReadFile(bk[0]); string(b) != desktopConfig {
		t.Fatalf("backup differs from the original:\n%s", b)
	}
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o644 {
		t.Fatalf("mode after install: %v %v", fi.Mode(), err)
	}

	// Again: nothing to do, nothing written.
	out = e.mustRun(nil, "install", "claude-desktop", "--config-file", file)
	if !strings.Contains(out, "unchanged: ") || len(backups(t, file)) != 1 {
		t.Fatalf("second install:\n%s", out)
	}

	// Under another name, with an explicit config file: both are passed on.
	cfg := filepath.Join(t.TempDir(), "activitybi.yaml")
	os.WriteFile(cfg, []byte("durability: sync\n"), 0o600)
	out = e.mustRun(nil, "install", "claude-desktop", "--config-file", file, "--name", "bi2", "--config", cfg)
	want2 := install.Server{Command: want.Command, Args: []string{"mcp", "--data-dir", e.dataDir, "--config", cfg}}
	if got := servers(t, file); !reflect.DeepEqual(got["bi2"], want2) || !reflect.DeepEqual(got["activitybi"], want) {
		t.Fatalf("servers: %+v\n%s", got, out)
	}

	// The default location, under $HOME (the test env drops XDG_*).
	if runtime.GOOS == "linux" {
		out = e.mustRun(nil, "install", "claude-desktop")
		def := filepath.Join(e.home, ".config", "Claude", "claude_desktop_config.json")
		if !strings.Contains(out, "config file: "+def+" (new)") || !reflect.DeepEqual(servers(t, def)["activitybi"], want) {
			t.Fatalf("default location:\n%s", out)
		}
	}
}

func TestInstallClaudeCode(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	want := install.Server{Type: "stdio", Command: realBinPath(t), Args: []string{"mcp", "--data-dir", e.dataDir}, Env: map[string]string{}}

	// User scope: ~/.claude.json, keeping per-project entries as they are.
	user := filepath.Join(e.home, ".claude.json")
	const claudeJSON = `{
  "numStartups": 3,
  "projects": {
    "/src/app": {"mcpServers": {"activitybi": {"type": "stdio", "command": "/old", "args": [], "env": {}}}}
  }
}
`
	os.WriteFile(user, []byte(claudeJSON), 0o600)
	out := e.mustRun(nil, "install", "claude-code")
	if !strings.Contains(out, "config file: "+user+"\n") || !strings.Contains(out, "Restart Claude Code") {
		t.Fatalf("output:\n%s", out)
	}
	if got := servers(t, user); !reflect.DeepEqual(got["activitybi"], want) || len(got) != 1 {
		t.Fatalf("user servers: %+v", got)
	}
	b, _ := os.ReadFile(user)
	if !strings.HasPrefix(string(b), claudeJSON[:strings.LastIndex(claudeJSON, "\n}")]) {
		t.Fatalf("projects changed:\n%s", b)
	}

	// Project scope: .mcp.json in the working directory, created.
	proj := t.TempDir()
	cmd := e.command("install", "claude-code", "--scope", "project")
	cmd.Dir = proj
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	mcp := filepath.Join(proj, ".mcp.json")
	if got := servers(t, mcp); !reflect.DeepEqual(got["activitybi"], want) {
		t.Fatalf("project servers: %+v", got)
	}
	if fi, err := os.Stat(mcp); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("new file mode: %v %v", fi.Mode(), err)
	}

	if _, errs, code := e.run(nil, "install", "claude-code", "--scope", "local"); code == 0 || !strings.Contains(errs, "--scope") {
		t.Fatalf("bad scope: %d %s", code, errs)
	}
}

func TestInstallRefusesAndWritesNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	dir := t.TempDir()
	for name, content := range map[string]string{
		"array.json":   `[{"mcpServers": {}}]`,
		"servers.json": `{"mcpServers": "none"}`,
		"dup.json":     `{"mcpServers": {"activitybi": {}, "activitybi": {}}}`,
		"broken.json":  `{"mcpServers": {`,
	} {
		file := filepath.Join(dir, name)
		os.WriteFile(file, []byte(content), 0o600)
		out, errs, code := e.run(nil, "install", "claude-desktop", "--config-file", file)
		if code != 1 || !strings.Contains(errs, file) || !strings.Contains(errs, "nothing written") || out != "" {
			t.Errorf("%s: exit %d\nstdout: %s\nstderr: %s", name, code, out, errs)
		}
		if b, _ := os.ReadFile(file); string(b) != content {
			t.Errorf("%s changed: %s", name, b)
		}
		if b := backups(t, file); len(b) != 0 {
			t.Errorf("%s backed up: %v", name, b)
		}
	}
	// A directory where the file should be.
	sub := filepath.Join(dir, "claude_desktop_config.json")
	os.Mkdir(sub, 0o700)
	if _, errs, code := e.run(nil, "install", "claude-desktop", "--config-file", sub); code != 1 || !strings.Contains(errs, "is a directory") {
		t.Errorf("directory: exit %d: %s", code, errs)
	}
}

// The entry runs the binary by the path it was started by when that is a
// link to it (a package manager's stable bin/ link), found in $PATH or
// given with a directory; the link's target would break at the next
// upgrade.
func TestInstallKeepsTheLinkItWasRunBy(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	bin := filepath.Join(t.TempDir(), "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(bin, "activitybi")
	if err := os.Symlink(binPath, link); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "claude_desktop_config.json")
	for _, how := range []struct {
		name string
		argv string
		path string
	}{{"by path", link, os.Getenv("PATH")}, {"from $PATH", "activitybi", bin + string(os.PathListSeparator) + os.Getenv("PATH")}} {
		cmd := exec.Command(link, "install", "claude-desktop", "--dry-run", "--config-file", file)
		cmd.Args[0] = how.argv
		cmd.Env = append(e.environ(), "PATH="+how.path)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s: %v", how.name, err)
		}
		if got := installedEntry(t, string(out)); got.Command != link {
			t.Errorf("%s: the entry runs %q, want the link %q", how.name, got.Command, link)
		}
	}
	// Started by another name that is not this binary: the file itself.
	cmd := exec.Command(link, "install", "claude-desktop", "--dry-run", "--config-file", file)
	cmd.Args[0] = "/nonexistent/activitybi"
	cmd.Env = e.environ()
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	if got := installedEntry(t, string(out)); got.Command != realBinPath(t) {
		t.Errorf("the entry runs %q, want %q", got.Command, realBinPath(t))
	}
}
