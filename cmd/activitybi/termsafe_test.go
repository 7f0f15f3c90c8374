package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/activitybi/activitybi/internal/auth"
	"github.com/activitybi/activitybi/internal/event"
	"github.com/activitybi/activitybi/internal/server"
	"github.com/activitybi/activitybi/internal/spool"
	"github.com/activitybi/activitybi/internal/upload"
	"github.com/activitybi/activitybi/internal/warehouse"
)

func TestTermSafe(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"plain text, é and a \\ stay":                    "plain text, é and a \\ stay",
		"a\tb\nc\rd":                                     `a\tb\nc\rd`,
		"\x1b[2J\x1b]0;title\x07":                        `\x1b[2J\x1b]0;title\x07`,
		"\x00\x7f":                                       `\x00\x7f`,
		"C1 \u009b31m \u0085 \u0080":                     `C1 \u009b31m \u0085 \u0080`,
		"bad \xff\xc2":                                   `bad \xff\xc2`,
		"not C1: \u00a0\u00ff":                           "not C1: \u00a0\u00ff",
		"bidi \u202ecba\u202c \u202a\u202b\u202d":        `bidi \u202ecba\u202c \u202a\u202b\u202d`,
		"isolates \u2066\u2067\u2068x\u2069":             `isolates \u2066\u2067\u2068x\u2069`,
		"marks \u200e\u200f\u061c":                       `marks \u200e\u200f\u061c`,
		"not bidi: \u061b\u200d\u2029\u202f\u2065\u206a": "not bidi: \u061b\u200d\u2029\u202f\u2065\u206a",
	} {
		if got := termSafe(in); got != want {
			t.Errorf("termSafe(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestTermSafeJSON(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"a\u009bb\u0085", "© é \u00a0 \u0080\u009f", "plain", "\x1b and \u009b",
		"acme \u202egnp.exe\u202c \u2067x\u2069 \u200e\u200f\u061c", "\u009b\u202e\u0085"} {
		b, err := json.Marshal(map[string]string{s: s})
		if err != nil {
			t.Fatal(err)
		}
		got := termSafeJSON(b)
		if hasControl(got) {
			t.Errorf("%q: %q still holds control characters", s, got)
		}
		var back map[string]string
		if err := json.Unmarshal(got, &back); err != nil || back[s] != s {
			t.Errorf("%q: %q decodes to %v (%v), want the same value", s, got, back, err)
		}
	}
}

// hasControl reports raw C0 (other than a newline), DEL, C1 or bidi control
// characters in output meant for a terminal.
func hasControl(b []byte) bool {
	for _, r := range string(b) {
		if r < 0x20 && r != '\n' || r == 0x7f || r >= 0x80 && r <= 0x9f ||
			r == 0x061c || r == 0x200e || r == 0x200f || r >= 0x202a && r <= 0x202e || r >= 0x2066 && r <= 0x2069 {
			return true
		}
	}
	return false
}

// What `activitybi sql` and `activitybi audit` print of stored strings:
// escaped in the table and csv outputs, valid JSON with the same values
// in the json output, and no control character a terminal acts on in
// any of them.
func TestPrintTableEscapesControls(t *testing.T) {
	t.Parallel()
	evil := "id\u009b2J\x1b[31m\ttab\nline\u202eeman\u2066"
	wt := &server.WireTable{
		Columns: []warehouse.Column{{Name: "activity_id", Type: "VARCHAR"}, {Name: "col\u009b", Type: "VARCHAR"}, {Name: "feature_json", Type: "JSON"}},
		Rows:    [][]any{{evil, "x", map[string]any{"text": "\u0085red\u009b\u202e"}}},
	}
	want := map[string]string{
		"table": `id\u009b2J\x1b[31m\ttab\nline\u202eeman\u2066`,
		"csv":   `id\u009b2J\x1b[31m\ttab\nline\u202eeman\u2066`,
		"json":  `"id\u009b2J\u001b[31m\ttab\nline\u202eeman\u2066"`,
	}
	for _, format := range []string{"table", "csv", "json"} {
		var out bytes.Buffer
		if err := printTable(&out, wt, format); err != nil {
			t.Fatal(err)
		}
		if hasControl(out.Bytes()) {
			t.Errorf("%s output holds control characters: %q", format, out.String())
		}
		if !strings.Contains(out.String(), want[format]) || !strings.Contains(out.String(), `red\u009b\u202e`) {
			t.Errorf("%s output lacks %s or red\\u009b\\u202e:\n%s", format, want[format], out.String())
		}
		if format == "json" {
			var rows []map[string]any
			if err := json.Unmarshal(out.Bytes(), &rows); err != nil || len(rows) != 1 || rows[0]["activity_id"] != evil ||
				rows[0]["feature_json"].(map[string]any)["text"] != "\u0085red\u009b\u202e" {
				t.Errorf("json output does not decode to the values: %v %v", rows, err)
			}
		}
	}
}

// `activitybi status` prints what edges and the uploader report: an edge's
// client name is what its MCP client said it was.
func TestPrintStatusEscapesControls(t *testing.T) {
	t.Parallel()
	now := time.Now()
	st := &server.StatusResponse{Version: "v1", DataDir: "/data",
		Core:     server.CoreStatus{PID: 1, StartedAt: now, StartedBy: "hand", Addr: "127.0.0.1:1"},
		Edges:    []server.EdgeInfo{{PID: 2, Client: "claude\u009b2J\x1b]0;owned\x07", Customer: "ali\u0085ce\u202eniamod", Since: now}},
		Uploader: upload.Status{LastError: "load: bad value \u009b31m", ConsecutiveFails: 1}}
	var out bytes.Buffer
	printStatus(&out, st, now)
	if hasControl(out.Bytes()) {
		t.Errorf("status holds control characters: %q", out.String())
	}
	for _, want := range []string{`claude\u009b2J\x1b]0;owned\x07`, `customer ali\u0085ce\u202eniamod`, `bad value \u009b31m`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("status lacks %s:\n%s", want, out.String())
		}
	}
	out.Reset()
	if err := printJSON(&out, st); err != nil {
		t.Fatal(err)
	}
	if hasControl(out.Bytes()) || !strings.Contains(out.String(), `claude\u009b2J\u001b]0;owned\u0007`) ||
		!strings.Contains(out.String(), `ali\u0085ce\u202eniamod`) {
		t.Errorf("status --json: %s", out.String())
	}
}

// TestTerminalOutputsEscapeStoredControls, end to end: strings stored with
// control characters — a feature value (features may hold them), an audit
// record and a token note written before C1 controls were refused — and
// with bidi controls (still accepted: they are text, only shown escaped)
// come out of `sql`, `audit` and `token list` escaped, never as raw bytes
// a terminal would obey or reorder by; new C1 controls in a token note or
// an event id are refused.
func TestTerminalOutputsEscapeStoredControls(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.mustRun(strings.NewReader(`{"activity_id":"ctl-1","activity":"called_tool","feature_json":{"t":"\u009b31mred\u001b[0m\u202eder\u2066"}}`+"\n"), "ingest", "-")
	if _, errs, code := e.run(strings.NewReader(`{"activity_id":"ctl\u009b2","activity":"called_tool"}`+"\n"), "ingest", "-"); code != 1 ||
		!strings.Contains(errs, "activity_id: contains control characters (U+009B") {
		t.Errorf("a C1 control in a new event's id: exit %d: %s", code, errs)
	}
	// An audit record as an earlier version could write it: C1 in the
	// principal (its rules for stored records still load it).
	w, err := spool.Open(spool.Options{Dir: filepath.Join(e.dataDir, "spool")})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	rec := event.Audit{AuditID: "old-audit-1", At: now, Principal: "analyst:ev\u009b2Jil\u202elive", Action: event.ActionRanSQL,
		Target: "0123456789abcdef", Outcome: event.OutcomeOK, ReceivedAt: now, Source: event.SourceCLI}
	b, err := event.MarshalAudit(&rec)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Append(upload.KindAudit, b); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	c := e.startCore()
	e.waitCount("SELECT count(*) FROM claude_stream WHERE activity_id = 'ctl-1'", 1, 60*time.Second)
	e.waitCount("SELECT count(*) FROM audit_log WHERE audit_id = 'old-audit-1'", 1, 60*time.Second)
	c.stop(t)

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"sql", "SELECT feature_json->>'t' AS t FROM claude_stream WHERE activity_id = 'ctl-1'"}, `\u009b31mred\x1b[0m\u202eder\u2066`},
		{[]string{"sql", "--format", "csv", "SELECT feature_json->>'t' AS t FROM claude_stream WHERE activity_id = 'ctl-1'"}, `\u009b31mred\x1b[0m\u202eder\u2066`},
		{[]string{"sql", "--format", "json", "SELECT feature_json->>'t' AS t FROM claude_stream WHERE activity_id = 'ctl-1'"}, `"\u009b31mred\u001b[0m\u202eder\u2066"`},
		{[]string{"audit", "--action", "ran_sql"}, `analyst:ev\u009b2Jil\u202elive`},
		{[]string{"audit", "--action", "ran_sql", "--format", "json"}, `"analyst:ev\u009b2Jil\u202elive"`},
	} {
		out := e.mustRun(nil, tc.args...)
		if hasControl([]byte(out)) || !strings.Contains(out, tc.want) {
			t.Errorf("%v: want %s, escaped, and no raw control characters:\n%q", tc.args, tc.want, out)
		}
	}

	// token list: a note from a file an earlier version wrote.
	_, id, _ := e.createToken("--customer", "acme", "--note", "plain")
	path := filepath.Join(e.dataDir, auth.TokensFile)
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	raw = bytes.Replace(raw, []byte(`"note": "plain"`), []byte(`"note": "pl\u009b2Jain\u0085\u202enialp"`), 1)
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"token", "list"}, {"token", "list", "--json"}} {
		out := e.mustRun(nil, args...)
		if hasControl([]byte(out)) || !strings.Contains(out, id) || !strings.Contains(out, `pl\u009b2Jain\u0085\u202enialp`) {
			t.Errorf("%v: want the note escaped:\n%q", args, out)
		}
	}
	if _, errs, code := e.run(nil, "token", "create", "--customer", "acme", "--note", "a\u009bb"); code == 0 || !strings.Contains(errs, "note: contains control characters") {
		t.Errorf("a C1 control in a new note: exit %d: %s", code, errs)
	}
}
