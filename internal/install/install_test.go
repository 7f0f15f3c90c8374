package install

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var testNow = func() time.Time { return time.Date(2026, 3, 4, 5, 6, 7, 0, time.FixedZone("X", 3600)) }

// The backup name is in UTC, whatever the local zone.
const testBackup = ".activitybi-backup-20260304T040607"

// dirState is every file under dir with its mode and content, to show that
// nothing was written.
func dirState(t *testing.T, dir string) map[string]string {
	t.Helper()
	st := map[string]string{}
	filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			st[p] = "error " + err.Error()
			return nil
		}
		fi, err := e.Info()
		if err != nil {
			return err
		}
		b, _ := os.ReadFile(p)
		st[p] = fmt.Sprintf("%v %q", fi.Mode(), b)
		return nil
	})
	return st
}

func mode(t *testing.T, p string) fs.FileMode {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func testdataIn(t *testing.T, name string) []byte {
	return readFile(t, filepath.Join("testdata", "splice", name+".in"))
}

// TestApply: the file-level cases, each asserting exactly what is on disk
// afterwards.
func TestApply(t *testing.T) {
	t.Parallel()
	opts := func(path string) Options { return Options{Path: path, Server: testEntry, Now: testNow} }
	t.Run("missing file and directories are created private", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		path := filepath.Join(dir, "Claude", "sub", DesktopConfigName)
		r, err := Apply(opts(path))
		if err != nil {
			t.Fatal(err)
		}
		if r.Action != Added || !r.Created || r.Backup != "" {
			t.Fatalf("result %+v", r)
		}
		golden(t, filepath.Join("splice", "missing.golden"), readFile(t, path))
		if m := mode(t, path); m != 0o600 {
			t.Errorf("file mode %v", m)
		}
		if m := mode(t, filepath.Join(dir, "Claude")); m != 0o700 {
			t.Errorf("dir mode %v", m)
		}
		if m := mode(t, filepath.Dir(path)); m != 0o700 {
			t.Errorf("dir mode %v", m)
		}
	})
	t.Run("empty file counts as missing and keeps its mode", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), DesktopConfigName)
		if err := os.WriteFile(path, nil, 0o640); err != nil {
			t.Fatal(err)
		}
		r, err := Apply(opts(path))
		if err != nil {
			t.Fatal(err)
		}
		if r.Action != Added || !r.Created || r.Backup != path+testBackup {
			t.Fatalf("result %+v", r)
		}
		golden(t, filepath.Join("splice", "empty.golden"), readFile(t, path))
		if m := mode(t, path); m != 0o640 {
			t.Errorf("mode %v, want 0640", m)
		}
	})
	t.Run("existing file is backed up for its owner only, then replaced", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		path := filepath.Join(dir, DesktopConfigName)
		src := testdataIn(t, "comments")
		if err := os.WriteFile(path, src, 0o644); err != nil {
			t.Fatal(err)
		}
		os.Chmod(path, 0o644) // whatever the umask
		r, err := Apply(opts(path))
		if err != nil {
			t.Fatal(err)
		}
		if r.Action != Added || r.Created || r.Backup != path+testBackup {
			t.Fatalf("result %+v", r)
		}
		if got := readFile(t, r.Backup); !bytes.Equal(got, src) {
			t.Errorf("backup differs from the original:\n%s", got)
		}
		if m := mode(t, r.Backup); m != 0o600 {
			t.Errorf("backup mode %v, want 0600 (the file holds other servers' secrets)", m)
		}
		if m := mode(t, path); m != 0o644 {
			t.Errorf("file mode %v", m)
		}
		golden(t, filepath.Join("splice", "comments.golden"), readFile(t, path))
		// No temporary file left behind.
		if ents, _ := os.ReadDir(dir); len(ents) != 2 {
			t.Errorf("directory holds %d files, want the file and its backup", len(ents))
		}

		// Again in the same second: replaced (different entry), and the
		// backup gets a fresh name.
		o := opts(path)
		o.Server = DesktopServer("/elsewhere/activitybi", []string{"mcp"})
		r2, err := Apply(o)
		if err != nil {
			t.Fatal(err)
		}
		if r2.Action != Replaced || r2.Backup != path+testBackup+"-2" {
			t.Fatalf("result %+v", r2)
		}
		if want := string(pretty(mustMarshal(t, testEntry))); string(r2.Previous) != want {
			t.Errorf("previous %s, want %s", r2.Previous, want)
		}
	})
	t.Run("identical entry: nothing written, no backup", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		path := filepath.Join(dir, DesktopConfigName)
		os.WriteFile(path, testdataIn(t, "unchanged"), 0o600)
		before := dirState(t, dir)
		r, err := Apply(opts(path))
		if err != nil {
			t.Fatal(err)
		}
		if r.Action != Unchanged || r.Backup != "" {
			t.Fatalf("result %+v", r)
		}
		if after := dirState(t, dir); fmt.Sprint(after) != fmt.Sprint(before) {
			t.Fatalf("directory changed:\n%v\n%v", before, after)
		}
	})
	t.Run("dry run writes nothing", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		path := filepath.Join(dir, DesktopConfigName)
		os.WriteFile(path, testdataIn(t, "other_servers"), 0o600)
		before := dirState(t, dir)
		o := opts(path)
		o.DryRun = true
		r, err := Apply(o)
		if err != nil {
			t.Fatal(err)
		}
		if r.Action != Added || !r.DryRun || r.Backup != path+testBackup {
			t.Fatalf("result %+v", r)
		}
		if after := dirState(t, dir); fmt.Sprint(after) != fmt.Sprint(before) {
			t.Fatalf("directory changed:\n%v\n%v", before, after)
		}
		// A dry run for a missing file creates no directory either.
		o.Path = filepath.Join(dir, "new", "x.json")
		if _, err := Apply(o); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(dir, "new")); !os.IsNotExist(err) {
			t.Fatalf("dry run created a directory: %v", err)
		}
	})
	t.Run("symbolic link is followed and kept", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		target := filepath.Join(dir, "dotfiles", "claude.json")
		os.MkdirAll(filepath.Dir(target), 0o700)
		os.WriteFile(target, testdataIn(t, "claude_code"), 0o600)
		link := filepath.Join(dir, CodeUserConfig)
		if err := os.Symlink(target, link); err != nil {
			t.Skip("no symbolic links:", err)
		}
		r, err := Apply(Options{Path: link, Server: CodeServer("/opt/activitybi/bin/activitybi", []string{"mcp"}), Now: testNow})
		if err != nil {
			t.Fatal(err)
		}
		if r.Path != target || r.Backup != target+testBackup {
			t.Fatalf("result %+v", r)
		}
		if fi, err := os.Lstat(link); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
			t.Fatalf("link replaced: %v %v", fi.Mode(), err)
		}
		golden(t, filepath.Join("splice", "claude_code.golden"), readFile(t, link))
	})

	// Refusals: a clear error and not a byte written.
	refusals := []struct {
		name    string
		setup   func(t *testing.T, path string)
		errLike string
	}{
		{"not an object", func(t *testing.T, p string) { os.WriteFile(p, testdataIn(t, "not_object"), 0o600) },
			"top-level value is an array, not an object (nothing written)"},
		{"garbage", func(t *testing.T, p string) { os.WriteFile(p, testdataIn(t, "garbage"), 0o600) },
			"not valid JSON"},
		{"mcpServers not an object", func(t *testing.T, p string) { os.WriteFile(p, testdataIn(t, "servers_array"), 0o600) },
			`"mcpServers" (at 2:3) is an array, not an object`},
		{"duplicate entry", func(t *testing.T, p string) { os.WriteFile(p, testdataIn(t, "dup_entry"), 0o600) },
			`"activitybi" appears 2 times`},
		{"directory in place of the file", func(t *testing.T, p string) { os.Mkdir(p, 0o700) },
			"is a directory, not a config file"},
		{"unreadable file", func(t *testing.T, p string) {
			if os.Geteuid() == 0 {
				t.Skip("root reads files whatever their mode; the directory case covers an unreadable path")
			}
			os.WriteFile(p, testdataIn(t, "other_servers"), 0o600)
			os.Chmod(p, 0)
		}, "cannot read the config file: open "},
	}
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			path := filepath.Join(dir, DesktopConfigName)
			tc.setup(t, path)
			before := dirState(t, dir)
			_, err := Apply(opts(path))
			if err == nil || !strings.Contains(err.Error(), tc.errLike) {
				t.Fatalf("error %v, want one containing %q", err, tc.errLike)
			}
			if after := dirState(t, dir); fmt.Sprint(after) != fmt.Sprint(before) {
				t.Fatalf("directory changed:\n%v\n%v", before, after)
			}
		})
	}
}

// TestLargeProjects: a ~/.claude.json with a large "projects" member (with
// per-project mcpServers, one even named activitybi) keeps it byte for byte.
func TestLargeProjects(t *testing.T) {
	t.Parallel()
	var projects strings.Builder
	projects.WriteString("{")
	for i := range 3000 {
		if i > 0 {
			projects.WriteString(",")
		}
		fmt.Fprintf(&projects, `
    "/home/u/src/p%d": {
      "allowedTools": [],
      "history": [{"display": "step %d: \"quote\" \\ and \u00e9", "pastedContents": {}}],
      "mcpServers": {"activitybi": {"type": "stdio", "command": "/local/%d", "args": [], "env": {}}},
      "lastCost": %d.25,
      "hasTrustDialogAccepted": %t
    }`, i, i, i, i, i%2 == 0)
	}
	projects.WriteString("\n  }")
	src := []byte(`{
  "numStartups": 7,
  "projects": ` + projects.String() + `,
  "mcpServers": {
    "context7": {"type": "stdio", "command": "npx", "args": ["-y", "@upstash/context7-mcp"], "env": {}}
  },
  "userID": "u"
}
`)
	path := filepath.Join(t.TempDir(), CodeUserConfig)
	if err := os.WriteFile(path, src, 0o600); err != nil {
		t.Fatal(err)
	}
	entry := CodeServer("/opt/activitybi/bin/activitybi", []string{"mcp"})
	r, err := Apply(Options{Path: path, Server: entry, Now: testNow})
	if err != nil {
		t.Fatal(err)
	}
	if r.Action != Added {
		t.Fatalf("action %s", r.Action)
	}
	out := readFile(t, path)
	// Everything up to the end of the context7 entry is untouched.
	prefix := src[:bytes.Index(src, []byte(`"env": {}}`+"\n  },"))+len(`"env": {}}`)]
	if !bytes.HasPrefix(out, prefix) {
		t.Fatal("bytes before the insertion changed")
	}
	if !bytes.HasSuffix(out, []byte("\n  },\n  \"userID\": \"u\"\n}\n")) {
		t.Fatalf("tail changed: %q", out[len(out)-40:])
	}
	t.Logf("file is %d bytes", len(src))
	c, err := Set(src, DefaultName, mustMarshal(t, entry))
	if err != nil {
		t.Fatal(err)
	}
	checkChange(t, src, DefaultName, mustMarshal(t, entry), c)
}

func TestDescribe(t *testing.T) {
	t.Parallel()
	pe, _ := marshal(testEntry, "  ")
	cases := map[string]Result{
		"added_new":  {Path: "/h/.config/Claude/claude_desktop_config.json", Name: DefaultName, Action: Added, Created: true, Entry: pe},
		"added":      {Path: "/h/c.json", Name: DefaultName, Action: Added, Entry: pe, Backup: "/h/c.json" + testBackup},
		"replaced":   {Path: "/h/c.json", Name: DefaultName, Action: Replaced, Entry: pe, Previous: pretty([]byte(`{"command": "/old" /* c */, "args": []}`)), Backup: "/h/c.json" + testBackup},
		"unchanged":  {Path: "/h/c.json", Name: DefaultName, Action: Unchanged, Entry: pe},
		"dry_run":    {Path: "/h/c.json", Name: "my-bi", Action: Added, Entry: pe, Backup: "/h/c.json" + testBackup, DryRun: true},
		"dry_run_uc": {Path: "/h/c.json", Name: DefaultName, Action: Unchanged, Entry: pe, DryRun: true},
	}
	for name, r := range cases {
		var b bytes.Buffer
		if err := r.Describe(&b); err != nil {
			t.Fatal(err)
		}
		golden(t, filepath.Join("describe", name+".golden"), b.Bytes())
	}
}

func TestConfigFiles(t *testing.T) {
	t.Parallel()
	env := func(kv ...string) func(string) string {
		return func(k string) string {
			for i := 0; i < len(kv); i += 2 {
				if kv[i] == k {
					return kv[i+1]
				}
			}
			return ""
		}
	}
	j := filepath.Join
	for _, tc := range []struct {
		goos   string
		getenv func(string) string
		want   string
	}{
		{"darwin", env("HOME", "/Users/u"), j("/Users/u", "Library", "Application Support", "Claude", "claude_desktop_config.json")},
		{"windows", env("APPDATA", `C:\Users\u\AppData\Roaming`, "USERPROFILE", `C:\Users\u`), j(`C:\Users\u\AppData\Roaming`, "Claude", "claude_desktop_config.json")},
		{"windows", env("USERPROFILE", `C:\Users\u`), j(`C:\Users\u`, "AppData", "Roaming", "Claude", "claude_desktop_config.json")},
		{"linux", env("HOME", "/home/u"), j("/home/u", ".config", "Claude", "claude_desktop_config.json")},
		{"linux", env("HOME", "/home/u", "XDG_CONFIG_HOME", "/xdg"), j("/xdg", "Claude", "claude_desktop_config.json")},
		{"linux", env("HOME", "/home/u", "XDG_CONFIG_HOME", "relative"), j("/home/u", ".config", "Claude", "claude_desktop_config.json")},
		{"freebsd", env("HOME", "/home/u"), j("/home/u", ".config", "Claude", "claude_desktop_config.json")},
	} {
		got, err := DesktopConfigFile(tc.goos, tc.getenv)
		if err != nil || got != tc.want {
			t.Errorf("DesktopConfigFile(%s) = %q, %v; want %q", tc.goos, got, err, tc.want)
		}
	}
	if got, err := CodeUserConfigFile("linux", env("HOME", "/home/u")); err != nil || got != j("/home/u", ".claude.json") {
		t.Errorf("CodeUserConfigFile = %q, %v", got, err)
	}
	if got, err := CodeUserConfigFile("windows", env("USERPROFILE", `C:\Users\u`)); err != nil || got != j(`C:\Users\u`, ".claude.json") {
		t.Errorf("CodeUserConfigFile(windows) = %q, %v", got, err)
	}
	if got := CodeProjectConfigFile("/src/app"); got != j("/src/app", ".mcp.json") {
		t.Errorf("CodeProjectConfigFile = %q", got)
	}
}

// Re-installing over an entry the user has added to (a token in env, a
// timeout) sets the command, its arguments and the type, and keeps the
// rest: env merged with the user's variables winning, other members in
// their order. Installing again changes nothing.
func TestApplyKeepsTheUsersAdditions(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), ".claude.json")
	src := `{
  // hand-edited
  "mcpServers": {
    "activitybi": {
      "command": "/opt/old/activitybi",
      "args": ["mcp", "--data-dir", "/old"],
      "env": {"ACTIVITYBI_TOKEN": "abi_x_<secret>&", "ACTIVITYBI_LOG_LEVEL": "debug"},
      "timeout": 30000,
      "url": "https://old.example/mcp",
      "headers": {"Authorization": "Bearer abi_x_secret"},
      "type": "stdio",
    }
  }
}
`
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	entry := CodeServer("/usr/local/bin/activitybi", []string{"mcp"})
	entry.Env["ACTIVITYBI_TOKEN"] = "ours"
	entry.Env["OURS_ONLY"] = "1"
	r, err := Apply(Options{Path: path, Server: entry, Now: testNow})
	if err != nil {
		t.Fatal(err)
	}
	if r.Action != Replaced || strings.Join(r.Kept, ",") != "env,timeout" {
		t.Fatalf("result %+v", r)
	}
	std, err := Standardize(readFile(t, path))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		MCPServers map[string]json.RawMessage `json:"mcpServers"`
	}
	if err := json.Unmarshal(std, &doc); err != nil {
		t.Fatal(err)
	}
	want := `{"type":"stdio","command":"/usr/local/bin/activitybi","args":["mcp"],` +
		`"env":{"ACTIVITYBI_TOKEN":"abi_x_<secret>&","ACTIVITYBI_LOG_LEVEL":"debug","OURS_ONLY":"1"},"timeout":30000}`
	var got bytes.Buffer
	if err := json.Compact(&got, doc.MCPServers["activitybi"]); err != nil {
		t.Fatal(err)
	}
	if got.String() != want {
		t.Errorf("entry\n%s\nwant\n%s", got.String(), want)
	}
	if !strings.Contains(string(readFile(t, path)), "// hand-edited") {
		t.Error("the comment is gone")
	}
	var out strings.Builder
	if err := r.Describe(&out); err != nil || !strings.Contains(out.String(), "kept from the previous entry: env, timeout") {
		t.Errorf("describe: %v\n%s", err, out.String())
	}
	again, err := Apply(Options{Path: path, Server: entry, Now: testNow})
	if err != nil || again.Action != Unchanged {
		t.Fatalf("second install: %+v %v", again, err)
	}
}
