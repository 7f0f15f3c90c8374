// Package install adds activitybi's MCP server to a Claude client's config
// file: Claude Desktop's claude_desktop_config.json, Claude Code's
// ~/.claude.json (user scope) or a project's .mcp.json.
//
// These files are edited by people and by the clients themselves, so the
// edit is surgical: Set splices the one entry into the original bytes and
// leaves every other server, key, comment and quirk of formatting as it
// was. Apply backs the file up first and replaces it atomically.
package install

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/activitybi/activitybi/internal/fsutil"
)

// DefaultName is the key of activitybi's entry under "mcpServers".
const DefaultName = "activitybi"

const (
	// dirMode is for directories created to hold a new config file.
	dirMode = 0o700
	// fileMode is for a new config file: it can hold tokens, so only the
	// user may read it. An existing file keeps its mode.
	fileMode = 0o600
	// backupMode bounds a backup's mode: the owner's bits of the file's.
	backupMode = 0o600
	// backupSuffix plus a UTC time names the copy made before an edit:
	// claude_desktop_config.json.activitybi-backup-20260102T150405.
	backupSuffix = ".activitybi-backup-"
	backupTime   = "20060102T150405"
)

// Server is one stdio MCP server entry. Field order is the order clients
// write them in.
type Server struct {
	// Type is "stdio" in entries Claude Code writes; Claude Desktop's have
	// none.
	Type    string   `json:"type,omitempty"`
	Command string   `json:"command"`
	Args    []string `json:"args"`
	// Env is written when non-nil, so an empty map gives "env": {} as
	// `claude mcp add` writes it.
	Env map[string]string `json:"env,omitzero"`
}

// DesktopServer is the entry shape of claude_desktop_config.json:
// {"command": ..., "args": [...]} ("env" is optional and not needed here).
func DesktopServer(command string, args []string) Server {
	return Server{Command: command, Args: args}
}

// CodeServer is the entry shape `claude mcp add` writes for a stdio server:
// {"type": "stdio", "command": ..., "args": [...], "env": {}}.
func CodeServer(command string, args []string) Server {
	return Server{Type: "stdio", Command: command, Args: args, Env: map[string]string{}}
}

// Options says what to install where.
type Options struct {
	// Path is the client's config file. Required. A symbolic link is
	// followed, so the link stays and its target is edited.
	Path string
	// Name is the entry's key under "mcpServers". Default DefaultName.
	Name string
	// Server is the entry.
	Server Server
	// DryRun works out the change and writes nothing.
	DryRun bool
	// Now stamps the backup's name. Default time.Now.
	Now func() time.Time
}

// Result says what Apply did (or, in a dry run, would do).
type Result struct {
	Path   string // the file edited, symbolic links resolved
	Name   string
	Action Action
	// Created is true when the file was missing or empty.
	Created bool
	// Previous is the replaced entry, pretty-printed (comments dropped);
	// nil unless Action is Replaced.
	Previous []byte
	// Entry is the new entry, pretty-printed.
	Entry []byte
	// Backup is the copy of the old file; "" when there was nothing to back
	// up or nothing changed. In a dry run, the name it would get.
	Backup string
	DryRun bool
	// Kept names the members of the replaced entry that were kept as they
	// were (everything but "type", "command", "args", and an HTTP entry's
	// "url" and "headers"; "env" merged, its variables winning over ours).
	Kept []string
}

// Apply sets the entry in the file at o.Path. A missing file is created
// (with its directories) holding just {"mcpServers": {...}}; an empty file
// counts as missing. An existing file is first copied to
// <file>.activitybi-backup-<UTC time>, readable by its owner only, then
// replaced atomically, keeping its mode. When an equal entry is already there,
// nothing is written. On any error nothing has been written either, except
// possibly the backup.
func Apply(o Options) (*Result, error) {
	if o.Path == "" {
		return nil, errors.New("install: no config file path")
	}
	if o.Name == "" {
		o.Name = DefaultName
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	path, err := filepath.Abs(o.Path)
	if err != nil {
		return nil, err
	}
	if real, err := filepath.EvalSymlinks(path); err == nil {
		path = real
	}
	exists, mode := true, fs.FileMode(fileMode)
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		exists = false
	case err != nil:
		return nil, err
	case fi.IsDir():
		return nil, fmt.Errorf("%s is a directory, not a config file", path)
	case !fi.Mode().IsRegular():
		return nil, fmt.Errorf("%s is not a regular file (%s)", path, fi.Mode().Type())
	default:
		mode = fi.Mode().Perm()
	}
	var src []byte
	if exists {
		if src, err = os.ReadFile(path); err != nil {
			return nil, fmt.Errorf("cannot read the config file: %w", err)
		}
	}

	value, err := marshal(o.Server, "")
	if err != nil {
		return nil, err
	}
	c, err := Set(src, o.Name, value)
	if err != nil {
		return nil, fmt.Errorf("%s: %w (nothing written)", path, err)
	}
	var kept []string
	if c.Previous != nil {
		// An entry already there may carry what the user added by hand
		// (env such as ACTIVITYBI_TOKEN, a timeout): only the command, its
		// arguments and the type are ours to set.
		if value, kept, err = keepOthers(c.Previous, value); err != nil {
			return nil, fmt.Errorf("%s: %w (nothing written)", path, err)
		}
		if c, err = Set(src, o.Name, value); err != nil {
			return nil, fmt.Errorf("%s: %w (nothing written)", path, err)
		}
	}
	r := &Result{Path: path, Name: o.Name, Action: c.Action, Created: c.Created, DryRun: o.DryRun, Kept: kept}
	if r.Entry, err = indent(value); err != nil {
		return nil, err
	}
	if c.Action == Replaced {
		r.Previous = pretty(c.Previous)
	}
	if c.Action == Unchanged {
		return r, nil
	}
	if exists {
		r.Backup = path + backupSuffix + o.Now().UTC().Format(backupTime)
	}
	if o.DryRun {
		return r, nil
	}

	if exists {
		// Only the user may read the backup, whatever the file's mode: these
		// files hold other servers' tokens and keys, and backups stay
		// behind after the file is tightened or a token in it is replaced.
		if r.Backup, err = writeBackup(r.Backup, src, mode&backupMode); err != nil {
			return nil, fmt.Errorf("back up %s: %w (nothing written)", path, err)
		}
	} else if err := os.MkdirAll(filepath.Dir(path), dirMode); err != nil {
		return nil, err
	}
	if err := replaceFile(path, c.Out, mode, src, exists); err != nil {
		if r.Backup != "" {
			return nil, fmt.Errorf("%w (the backup %s is a copy of the unchanged file)", err, r.Backup)
		}
		return nil, err
	}
	return r, nil
}

// Describe writes what happened, for people: the file, the action, the
// previous and new entry and the backup.
func (r *Result) Describe(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "config file: %s", r.Path)
	if r.Created {
		b.WriteString(" (new)")
	}
	b.WriteString("\n")
	entry := fmt.Sprintf("%s[%s]", ServersKey, quote(r.Name))
	switch r.Action {
	case Unchanged:
		fmt.Fprintf(&b, "unchanged: %s already holds this entry; nothing written\n", entry)
	case Replaced:
		fmt.Fprintf(&b, "replaced: %s\nprevious entry:\n%s\n", entry, r.Previous)
	default:
		fmt.Fprintf(&b, "added: %s\n", entry)
	}
	fmt.Fprintf(&b, "entry:\n%s\n", r.Entry)
	if len(r.Kept) > 0 && r.Action != Unchanged {
		fmt.Fprintf(&b, "kept from the previous entry: %s\n", strings.Join(r.Kept, ", "))
	}
	if r.Backup != "" {
		if r.DryRun {
			fmt.Fprintf(&b, "backup: would be %s\n", r.Backup)
		} else {
			fmt.Fprintf(&b, "backup: %s\n", r.Backup)
		}
	}
	if r.DryRun && r.Action != Unchanged {
		b.WriteString("dry run: nothing written\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func marshal(v any, indent string) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", indent)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// ours are the members Apply sets in an entry, and those of an HTTP
// server's entry ("url", "headers": a bearer token would otherwise stay in
// a stdio entry that never sends it); every other member of an entry
// already there is the user's.
var ours = map[string]bool{"type": true, "command": true, "args": true, "url": true, "headers": true}

// keepOthers returns value (our entry, standard JSON) with the members of
// prev (the entry already in the file, as the file spells it) that are not
// ours appended in prev's order, and "env" merged: prev's variables are
// kept, and win over value's (the user set them on purpose). It names what
// it kept. A prev that is not an object is replaced whole.
func keepOthers(prev, value []byte) ([]byte, []string, error) {
	prevMembers, ok := members(prev)
	if !ok {
		return value, nil, nil
	}
	mine, ok := members(value)
	if !ok {
		return nil, nil, errors.New("install: our entry is not an object")
	}
	var kept []string
	for _, pm := range prevMembers {
		if ours[pm.key] {
			continue
		}
		i := slices.IndexFunc(mine, func(m rawMember) bool { return m.key == pm.key })
		if i < 0 {
			mine = append(mine, pm)
			kept = append(kept, pm.key)
			continue
		}
		if pm.key != "env" {
			mine[i] = pm
			kept = append(kept, pm.key)
			continue
		}
		merged, n := mergeEnv(pm.value, mine[i].value)
		mine[i].value = merged
		if n > 0 {
			kept = append(kept, "env")
		}
	}
	return orderedObject(mine).bytes(), kept, nil
}

// mergeEnv is prev's env object with ours' variables added where prev has
// none; n counts prev's variables. A prev env that is not an object gives
// ours.
func mergeEnv(prev, mine json.RawMessage) (json.RawMessage, int) {
	pm, ok := members(prev)
	if !ok {
		return mine, 0
	}
	n := len(pm)
	mm, _ := members(mine)
	for _, m := range mm {
		if !slices.ContainsFunc(pm[:n], func(p rawMember) bool { return p.key == m.key }) {
			pm = append(pm, m)
		}
	}
	return orderedObject(pm).bytes(), n
}

// rawMember is one member of a JSON object, its value as it was.
type rawMember struct {
	key   string
	value json.RawMessage
}

// orderedObject is a JSON object's members in order.
type orderedObject []rawMember

// bytes is the object as compact JSON, keys written without HTML escaping
// (as marshal writes them) and values as they were.
func (o orderedObject) bytes() []byte {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, m := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := marshal(m.key, "") // a string always marshals
		b.Write(k)
		b.WriteByte(':')
		b.Write(m.value)
	}
	b.WriteByte('}')
	return b.Bytes()
}

// members splits a JSON object (comments and trailing commas allowed, as
// config files have them) into its members in order, each value as
// standard JSON; ok is false when raw is not an object.
func members(raw []byte) ([]rawMember, bool) {
	d, err := scan(raw)
	if err != nil || d.root == nil || d.root.kind != '{' {
		return nil, false
	}
	out := make([]rawMember, 0, len(d.root.members))
	for _, m := range d.root.members {
		out = append(out, rawMember{m.key, json.RawMessage(d.standard(m.val.start, m.val.end))})
	}
	return out, true
}

// indent pretty-prints a standard JSON value for people.
func indent(value []byte) ([]byte, error) {
	var b bytes.Buffer
	if err := json.Indent(&b, value, "", "  "); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// pretty indents a value taken from a config file; what cannot be made
// standard JSON is shown as it was.
func pretty(raw []byte) []byte {
	std, err := Standardize(raw)
	if err != nil {
		return raw
	}
	var b bytes.Buffer
	if err := json.Indent(&b, std, "", "  "); err != nil {
		return raw
	}
	return b.Bytes()
}

// writeBackup copies data to name, or to name-2, name-3... when that is
// taken (two runs in one second), and returns the name used.
func writeBackup(name string, data []byte, mode fs.FileMode) (string, error) {
	for i := 1; i <= 100; i++ {
		try := name
		if i > 1 {
			try = fmt.Sprintf("%s-%d", name, i)
		}
		f, err := os.OpenFile(try, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return "", err
		}
		err = writeSync(f, data, mode)
		if err != nil {
			os.Remove(try)
			return "", err
		}
		return try, fsutil.SyncDir(filepath.Dir(try))
	}
	return "", fmt.Errorf("%s and 99 like it already exist", name)
}

// writeSync writes data to f, sets its mode (create is subject to the
// umask), syncs and closes it.
func writeSync(f *os.File, data []byte, mode fs.FileMode) error {
	_, err := f.Write(data)
	if err == nil {
		err = f.Chmod(mode)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// replaceFile puts data at path atomically: a temporary file in the same
// directory, synced, renamed over path. If path no longer holds old (a
// running client rewrote it meanwhile), it gives up rather than lose that
// write.
func replaceFile(path string, data []byte, mode fs.FileMode, old []byte, existed bool) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	if err := writeSync(f, data, mode); err != nil {
		os.Remove(tmp)
		return err
	}
	now, err := os.ReadFile(path)
	switch {
	case existed && err != nil, !existed && !errors.Is(err, fs.ErrNotExist), existed && !bytes.Equal(now, old):
		os.Remove(tmp)
		return fmt.Errorf("%s changed while it was being edited (is the client running and rewriting it?); nothing written, run again", path)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return fsutil.SyncDir(dir)
}
