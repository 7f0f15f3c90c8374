package install

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// testEntry is the entry the golden files hold.
var testEntry = DesktopServer("/opt/activitybi/bin/activitybi", []string{"mcp", "--data-dir", "/home/u/data"})

func mustMarshal(t testing.TB, v any) []byte {
	t.Helper()
	b, err := marshal(v, "")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// golden compares got with testdata/<name>, or rewrites it under -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (run with -update to accept):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// TestSet runs every testdata/splice/*.in (plus a missing file) through Set
// and compares the result, or the error, with the .golden file next to it.
func TestSet(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		entry   Server
		action  Action // "" when an error is expected
		errLike string
	}{
		{name: "missing", action: Added},
		{name: "empty", action: Added},
		{name: "blank", action: Added},
		{name: "comments_only", action: Added},
		{name: "other_servers", action: Added},
		{name: "comments", action: Added},
		{name: "tabs", action: Added},
		{name: "oneline", action: Added},
		{name: "crlf", action: Added},
		{name: "bom", action: Added},
		{name: "no_servers", action: Added},
		{name: "no_servers_oneline", action: Added},
		{name: "servers_empty", action: Added},
		{name: "servers_only_comment", action: Added},
		{name: "replace", action: Replaced},
		{name: "replace_oneline_entry", action: Replaced},
		{name: "unchanged", action: Unchanged},
		{name: "claude_code", entry: CodeServer("/opt/activitybi/bin/activitybi", []string{"mcp"}), action: Added},
		{name: "not_object", errLike: "top-level value is an array, not an object"},
		{name: "garbage", errLike: "not valid JSON"},
		{name: "truncated", errLike: "unexpected end of file"},
		{name: "servers_array", errLike: `"mcpServers" (at 2:3) is an array, not an object`},
		{name: "dup_servers", errLike: `"mcpServers" appears 2 times in the top-level object (at 2:3, 4:3)`},
		{name: "dup_entry", errLike: `"activitybi" appears 2 times in "mcpServers" (at 3:5, 4:5)`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			src, err := os.ReadFile(filepath.Join("testdata", "splice", tc.name+".in"))
			if err != nil && !(tc.name == "missing" && errors.Is(err, os.ErrNotExist)) {
				t.Fatal(err)
			}
			entry := tc.entry
			if entry.Command == "" {
				entry = testEntry
			}
			value := mustMarshal(t, entry)
			c, err := Set(src, DefaultName, value)
			if tc.action == "" {
				if err == nil {
					t.Fatalf("Set succeeded, want an error like %q:\n%s", tc.errLike, c.Out)
				}
				if !strings.Contains(err.Error(), tc.errLike) {
					t.Fatalf("error %q, want one containing %q", err, tc.errLike)
				}
				golden(t, filepath.Join("splice", tc.name+".golden"), []byte("error: "+err.Error()+"\n"))
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Action != tc.action {
				t.Fatalf("action %s, want %s", c.Action, tc.action)
			}
			checkChange(t, src, DefaultName, value, c)
			golden(t, filepath.Join("splice", tc.name+".golden"), c.Out)
		})
	}
}

// checkChange asserts what must hold of any successful Set: the output is
// JSON (once comments and trailing commas are gone) holding the entry; every
// other top-level member and every other server is as before; the edits
// touch no other member's bytes; and setting the entry again is a no-op.
func checkChange(t testing.TB, src []byte, name string, value []byte, c *Change) {
	t.Helper()
	out := decodeJSONC(t, c.Out, "output")
	servers, ok := out[ServersKey].(map[string]any)
	if !ok {
		t.Fatalf("output has no %s object:\n%s", ServersKey, c.Out)
	}
	var want any
	if err := json.Unmarshal(value, &want); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(servers[name], want) {
		t.Fatalf("output entry %v, want %v:\n%s", servers[name], want, c.Out)
	}
	if c.Created {
		if len(out) != 1 || len(servers) != 1 {
			t.Fatalf("new document holds more than the entry:\n%s", c.Out)
		}
	} else {
		in := decodeJSONC(t, src, "input")
		for k, v := range in {
			if k != ServersKey && !reflect.DeepEqual(out[k], v) {
				t.Fatalf("top-level %q changed: %v -> %v", k, v, out[k])
			}
		}
		if len(out) != len(in) && !(len(out) == len(in)+1 && in[ServersKey] == nil) {
			t.Fatalf("top-level keys %d -> %d", len(in), len(out))
		}
		before, _ := in[ServersKey].(map[string]any)
		for k, v := range before {
			if k != name && !reflect.DeepEqual(servers[k], v) {
				t.Fatalf("server %q changed: %v -> %v", k, v, servers[k])
			}
		}
		if _, had := before[name]; len(servers) != len(before)+map[bool]int{true: 0, false: 1}[had] {
			t.Fatalf("servers %d -> %d", len(before), len(servers))
		}
	}
	if c.Action == Unchanged {
		if !bytes.Equal(c.Out, src) {
			t.Fatal("unchanged but the output differs")
		}
	} else {
		checkEdits(t, src, name, c)
	}
	again, err := Set(c.Out, name, value)
	if err != nil {
		t.Fatalf("setting again: %v\n%s", err, c.Out)
	}
	if again.Action != Unchanged {
		t.Fatalf("setting again: %s, want unchanged:\n%s\n---\n%s", again.Action, c.Out, again.Out)
	}
}

// checkEdits asserts that the output is the source with only the recorded
// edits applied, and that no edit reaches into a member other than the one
// being set (or into the "mcpServers" member's neighbours).
func checkEdits(t testing.TB, src []byte, name string, c *Change) {
	t.Helper()
	var rebuilt []byte
	pos := 0
	for _, e := range c.edits {
		if e.start < pos || e.end < e.start {
			t.Fatalf("edits overlap or are out of order: %+v", c.edits)
		}
		rebuilt = append(append(rebuilt, src[pos:e.start]...), e.text...)
		pos = e.end
	}
	rebuilt = append(rebuilt, src[pos:]...)
	if !bytes.Equal(rebuilt, c.Out) {
		t.Fatal("output is not the source with the edits applied")
	}
	if c.Created {
		return
	}
	d, err := scan(src)
	if err != nil {
		t.Fatal(err)
	}
	// Spans no edit may touch: each top-level member but "mcpServers", and
	// each server but name.
	var keep []span
	for _, m := range d.root.members {
		if m.key != ServersKey {
			keep = append(keep, span{m.keyStart, m.val.end})
			continue
		}
		for _, s := range m.val.members {
			if s.key != name {
				keep = append(keep, span{s.keyStart, s.val.end})
			}
		}
	}
	for _, e := range c.edits {
		for _, k := range keep {
			if e.start < k.end && e.end > k.start || e.start == e.end && e.start > k.start && e.start < k.end {
				t.Fatalf("edit %+v reaches into %q", e, src[k.start:k.end])
			}
		}
	}
}

// decodeJSONC decodes a JSON object after stripping comments and trailing
// commas with stripJSONC, which shares no code with the scanner under test.
func decodeJSONC(t testing.TB, b []byte, what string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(stripJSONC(b), &m); err != nil || m == nil {
		t.Fatalf("%s does not decode as a JSON object (%v):\n%s", what, err, b)
	}
	return m
}

// stripJSONC removes a byte order mark, comments and trailing commas.
func stripJSONC(b []byte) []byte {
	b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))
	var out []byte
	for i := 0; i < len(b); i++ {
		switch {
		case b[i] == '"':
			j := i + 1
			for j < len(b) && b[j] != '"' {
				if b[j] == '\\' {
					j++
				}
				j++
			}
			out = append(out, b[i:min(j+1, len(b))]...)
			i = j
		case b[i] == '/' && i+1 < len(b) && b[i+1] == '/':
			for i < len(b) && b[i] != '\n' && b[i] != '\r' {
				i++
			}
			i--
		case b[i] == '/' && i+1 < len(b) && b[i+1] == '*':
			end := bytes.Index(b[i+2:], []byte("*/"))
			if end < 0 {
				return append(out, b[i:]...) // let json report it
			}
			i += 2 + end + 1
		default:
			out = append(out, b[i])
		}
	}
	// Trailing commas: a comma followed, past whitespace, by } or ].
	var res []byte
	inStr := false
	for i := 0; i < len(out); i++ {
		c := out[i]
		if inStr {
			if c == '\\' {
				res = append(res, c, out[i+1])
				i++
				continue
			}
			inStr = c != '"'
		} else if c == '"' {
			inStr = true
		} else if c == ',' {
			j := i + 1
			for j < len(out) && strings.IndexByte(" \t\r\n", out[j]) >= 0 {
				j++
			}
			if j < len(out) && (out[j] == '}' || out[j] == ']') {
				continue
			}
		}
		res = append(res, c)
	}
	return res
}

func TestStandardize(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		`{"a": [1, 2,], /* x */ "b": "//not a comment",} // end`: `{"a": [1, 2],  "b": "//not a comment"} `,
		"\xef\xbb\xbf{\"a\":1}":                                  `{"a":1}`,
		`[ "/*", "*/", ]`:                                        `[ "/*", "*/" ]`,
	} {
		got, err := Standardize([]byte(in))
		if err != nil || string(got) != want {
			t.Errorf("Standardize(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

// TestScanAgreesWithEncodingJSON: standard JSON always scans, and the
// scanner rejects what is broken even allowing comments and trailing commas.
func TestScanAgreesWithEncodingJSON(t *testing.T) {
	t.Parallel()
	good := []string{`{}`, `[]`, `0`, `-0.5e+10`, `"\u00e9\n"`, `{"a":[true,false,null,{"b":{}}]}`, " \t\r\n{}\n"}
	for _, s := range good {
		if _, err := scan([]byte(s)); err != nil {
			t.Errorf("scan(%q): %v", s, err)
		}
	}
	bad := []string{`{`, `{"a"}`, `{"a":}`, `{,}`, `[,]`, `[1,,2]`, `{"a":1 "b":2}`, `01`, `1.`, `.5`, `-`, `1e`, `tru`, `nul`,
		`"\x"`, "\"a\tb\"", `"\u12"`, `/* open`, `/ x`, `{} {}`, `{"a":1}}`, `'a'`, `{a:1}`, `[1 2]`, `"abc`}
	for _, s := range bad {
		if _, err := scan([]byte(s)); err == nil {
			t.Errorf("scan(%q) succeeded", s)
		}
	}
	deep := strings.Repeat("[", maxDepth) + strings.Repeat("]", maxDepth)
	if _, err := scan([]byte(deep)); err != nil || !json.Valid([]byte(deep)) {
		t.Errorf("%d levels: scan %v, json.Valid %v", maxDepth, err, json.Valid([]byte(deep)))
	}
	if _, err := scan([]byte("[" + deep + "]")); err == nil {
		t.Errorf("%d levels accepted", maxDepth+1)
	}
}

func TestSetRejectsBadArguments(t *testing.T) {
	t.Parallel()
	if _, err := Set([]byte(`{}`), "", []byte(`{}`)); err == nil {
		t.Error("empty name accepted")
	}
	if _, err := Set([]byte(`{}`), "x", []byte(`{`)); err == nil {
		t.Error("bad value accepted")
	}
}

// FuzzSplice: for any input, Set either fails or gives output in which the
// entry is present and everything outside the splice is unchanged.
func FuzzSplice(f *testing.F) {
	ins, _ := filepath.Glob(filepath.Join("testdata", "splice", "*.in"))
	for _, p := range ins {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, DefaultName)
	}
	for _, s := range []string{`{"mcpServers":{"x":{}},}`, `{"mcpServers":{"x":1 /*c*/}/**/}`, "{\"a\":1 // c\n}", `{"mcpServers":{"x":{"y":[]},"x":2}}`} {
		f.Add([]byte(s), "x")
	}
	value := mustMarshal(f, testEntry)
	f.Fuzz(func(t *testing.T, src []byte, name string) {
		c, err := Set(src, name, value)
		if err != nil {
			var se *SyntaxError
			if errors.As(err, &se) && json.Valid(src) {
				t.Fatalf("standard JSON rejected: %v", err)
			}
			return
		}
		if name == "" || !utf8.ValidString(name) {
			t.Fatalf("name %q accepted", name)
		}
		checkChange(t, src, name, value, c)
	})
}
