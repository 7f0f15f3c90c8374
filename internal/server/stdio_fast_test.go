package server

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/activitybi/activitybi/internal/cache"
	"github.com/activitybi/activitybi/internal/spool"
)

// stdioBed is one MCP server on a real spool, served over a pair of pipes
// as an edge serves stdin/stdout, with the fast path in front or not.
type stdioBed struct {
	b    *toolBundle // records() reads the spool
	fast *StdioFast  // nil: the go-sdk alone
	in   *io.PipeWriter
	out  *bufio.Reader
	done chan error
}

func newStdioBed(t *testing.T, withFast bool) *stdioBed {
	t.Helper()
	return newStdioBedMem(t, withFast, nil)
}

// newStdioBedMem is newStdioBed serving get_context from mem.
func newStdioBedMem(t *testing.T, withFast bool, mem *Memory) *stdioBed {
	t.Helper()
	dir := t.TempDir()
	w, err := spool.Open(spool.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	opts := MCPOptions{Appender: w, Identity: FixedIdentity("alice"), Version: "test", Recent: NewRecentIDs(100), Memory: mem}
	s, err := NewMCPServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	sb := &stdioBed{b: &toolBundle{dir: dir, w: w}, in: inW, out: bufio.NewReader(outR), done: make(chan error, 1)}
	var tr mcp.Transport = &mcp.IOTransport{Reader: inR, Writer: outW}
	if withFast {
		if sb.fast, err = NewStdioFast(opts); err != nil {
			t.Fatal(err)
		}
		tr = sb.fast.Transport(inR, outW)
	}
	go func() { sb.done <- s.Run(context.Background(), tr); outW.Close() }()
	t.Cleanup(func() {
		inW.Close()
		select {
		case <-sb.done:
		case <-time.After(10 * time.Second):
			t.Error("the server did not end when its stdin closed")
		}
	})
	return sb
}

// TestStdioFastPathAfterARefusedInitialize: when the go-sdk refuses the
// client's initialize, the fast path does not answer tool calls either;
// the go-sdk refuses them and nothing is logged (found in review, session
// 8). After an initialize the go-sdk accepts, it answers again.
func TestStdioFastPathAfterARefusedInitialize(t *testing.T) {
	t.Parallel()
	sb := newStdioBed(t, true)
	a := sb.send(t, `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":"bad","clientInfo":{"name":"t","version":"1"}}}`, true)
	if !strings.Contains(a, `"error"`) {
		t.Fatalf("the go-sdk should refuse this initialize: %s", a)
	}
	sb.send(t, `{"jsonrpc":"2.0","method":"notifications/initialized"}`, false)
	a = sb.send(t, logEventBody(`1`, `{"activity":"called_tool","activity_id":"z1"}`), true)
	if !strings.Contains(a, `"error"`) || sb.fast.Served() != 0 || len(sb.b.records(t)["event"]) != 0 {
		t.Fatalf("a call after a refused initialize: %s (fast path served %d, %d events logged)", a, sb.fast.Served(), len(sb.b.records(t)["event"]))
	}
	a = sb.send(t, `{"jsonrpc":"2.0","id":2,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`, true)
	if !strings.Contains(a, `"result"`) {
		t.Fatalf("a good initialize: %s", a)
	}
	sb.send(t, `{"jsonrpc":"2.0","method":"notifications/initialized"}`, false)
	a = sb.send(t, logEventBody(`3`, `{"activity":"called_tool","activity_id":"z2"}`), true)
	if !strings.Contains(a, `"duplicate":false`) || sb.fast.Served() != 1 || len(sb.b.records(t)["event"]) != 1 {
		t.Fatalf("a call after a good initialize: %s (fast path served %d)", a, sb.fast.Served())
	}
}

// send writes one line and, for a request, returns the answer line.
func (sb *stdioBed) send(t *testing.T, line string, answer bool) string {
	t.Helper()
	if _, err := io.WriteString(sb.in, line+"\n"); err != nil {
		t.Fatal(err)
	}
	if !answer {
		return ""
	}
	got := make(chan string, 1)
	go func() {
		l, err := sb.out.ReadString('\n')
		if err != nil {
			l = "read error: " + err.Error()
		}
		got <- l
	}()
	select {
	case l := <-got:
		return l
	case <-time.After(10 * time.Second):
		t.Fatalf("no answer to %s", line)
		return ""
	}
}

func (sb *stdioBed) served() int64 {
	if sb.fast == nil {
		return 0
	}
	return sb.fast.Served()
}

const stdioInit = `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"%s","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`

func (sb *stdioBed) initialize(t *testing.T, version string) {
	t.Helper()
	if a := sb.send(t, fmt.Sprintf(stdioInit, version), true); !strings.Contains(a, `"result"`) {
		t.Fatalf("initialize: %s", a)
	}
	sb.send(t, `{"jsonrpc":"2.0","method":"notifications/initialized"}`, false)
}

// Every answer of the fast path is byte for byte the go-sdk's, for every
// kind of log_event call, in every protocol version it serves; what it does
// not serve reaches the go-sdk; the spool holds the same events either way.
func TestStdioFastPathAnswersAsTheGoSDK(t *testing.T) {
	t.Parallel()
	ts := `"2026-11-20T10:00:00Z"`
	cases := []struct {
		name, id, args string
		fast           bool // the fast path answers it
	}{
		{"ok", `7`, `{"activity":"called_tool","activity_id":"P-1","ts":` + ts + `,"features":{"tool":"Bash","n":1}}`, true},
		{"duplicate", `8`, `{"activity":"called_tool","activity_id":"P-1","ts":` + ts + `}`, true},
		{"string id", `"req-9"`, `{"activity":"ran_tests","activity_id":"P-2","ts":` + ts + `,"revenue_impact":-0.5,"link":"https://x.y/<z>&"}`, true},
		{"html in the id", `16`, `{"activity":"called_tool","activity_id":"P-<&>\u2028","ts":` + ts + `}`, true},
		{"bad activity", `10`, `{"activity":"NotAVerb","features":[1]}`, true},
		{"unknown field", `11`, `{"activity":"called_tool","colour":"red","ts":"yesterday"}`, true},
		{"customer field", `12`, `{"activity":"called_tool","customer":"bob"}`, true},
		{"arguments not an object", `13`, `[1,2]`, true},
		{"arguments null", `14`, `null`, true},
		{"oversize features", `17`, `{"activity":"called_tool","features":{"x":"` + strings.Repeat("a", 70<<10) + `"}}`, true},
		{"over the line limit", `18`, `{"activity":"called_tool","features":{"x":"` + strings.Repeat("a", maxFastBody) + `"}}`, false},
	}
	for _, version := range []string{"2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"} {
		t.Run(version, func(t *testing.T) {
			t.Parallel()
			sdk, fast := newStdioBed(t, false), newStdioBed(t, true)
			sdk.initialize(t, version)
			fast.initialize(t, version)
			for _, c := range cases {
				line := `{"jsonrpc":"2.0","id":` + c.id + `,"method":"tools/call","params":{"name":"log_event","arguments":` + c.args + `}}`
				before := fast.served()
				want, got := sdk.send(t, line, true), fast.send(t, line, true)
				if got != want {
					t.Errorf("%s: answers differ:\nfast: %.300s\nsdk:  %.300s", c.name, got, want)
				}
				if n := fast.served() - before; (n == 1) != c.fast {
					t.Errorf("%s: served by the fast path %d times, want it to answer: %v", c.name, n, c.fast)
				}
			}
			// The same events in both spools.
			for _, sb := range []*stdioBed{sdk, fast} {
				ids := sb.b.eventIDs(t, "alice")
				if want := map[string]int{"P-1": 1, "P-2": 1, "P-<&>\u2028": 1}; fmt.Sprint(ids) != fmt.Sprint(want) {
					t.Errorf("records by id = %v, want %v", ids, want)
				}
			}
		})
	}
}

// Before the client's notifications/initialized, in a protocol version the
// fast path does not copy, and for anything but a plain log_event call,
// the go-sdk answers.
func TestStdioFastPathLeavesTheRestToTheGoSDK(t *testing.T) {
	t.Parallel()
	call := func(id int, extra string) string {
		return fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"log_event","arguments":{"activity":"called_tool","activity_id":"x%d","ts":"2026-11-20T10:00:00Z"}%s}}`, id, id, extra)
	}
	t.Run("before initialized", func(t *testing.T) {
		t.Parallel()
		sdk, fast := newStdioBed(t, false), newStdioBed(t, true)
		for _, sb := range []*stdioBed{sdk, fast} {
			sb.send(t, fmt.Sprintf(stdioInit, "2025-11-25"), true)
		}
		if got, want := fast.send(t, call(1, ""), true), sdk.send(t, call(1, ""), true); got != want {
			t.Errorf("answers differ:\nfast: %s\nsdk:  %s", got, want)
		}
		if fast.served() != 0 {
			t.Errorf("the fast path answered before the session was initialised")
		}
		fast.send(t, `{"jsonrpc":"2.0","method":"notifications/initialized"}`, false)
		if a := fast.send(t, call(2, ""), true); !strings.Contains(a, `"duplicate":false`) || fast.served() != 1 {
			t.Errorf("after initialized: served %d, answer %s", fast.served(), a)
		}
	})
	t.Run("unknown version", func(t *testing.T) {
		t.Parallel()
		fast := newStdioBed(t, true)
		fast.initialize(t, "2099-01-01")
		if a := fast.send(t, call(1, ""), true); !strings.Contains(a, `"duplicate":false`) {
			t.Fatalf("answer %s", a)
		}
		if fast.served() != 0 {
			t.Errorf("the fast path answered in a version the go-sdk renegotiated")
		}
	})
	t.Run("other requests", func(t *testing.T) {
		t.Parallel()
		fast := newStdioBed(t, true)
		fast.initialize(t, "2025-11-25")
		for _, line := range []string{
			call(1, `,"_meta":{"progressToken":"p"}`),
			`{"jsonrpc":"2.0","id":2,"method":"tools/list"}`,
			`{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"get_context","arguments":{}}}`,
			`{"jsonrpc":"2.0","id":4,"method":"ping"}`,
			`{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"log_event","arguments":{"activity":"called_tool"},"name":"log_event"}}`,
		} {
			if a := fast.send(t, line, true); !strings.HasPrefix(a, `{"jsonrpc":"2.0","id":`) {
				t.Errorf("%s: answer %s", line, a)
			}
		}
		if fast.served() != 0 {
			t.Errorf("the fast path answered %d of the other requests", fast.served())
		}
		// A plain call after them is the fast path's; the one with
		// _meta above was logged by the go-sdk, so this is a duplicate
		// for both.
		if a := fast.send(t, call(1, ""), true); !strings.Contains(a, `"duplicate":true`) || fast.served() != 1 {
			t.Errorf("served %d, answer %s", fast.served(), a)
		}
	})
}

// benchMemory is a Memory holding benchContext for every customer.
func benchMemory(t *testing.T) *Memory {
	t.Helper()
	c, err := cache.New(cache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	bc := benchContext()
	bc.Facts[0].Value = json.RawMessage(`"<b>tags</b> & \u2028 stay escaped"`)
	js, err := json.Marshal(bc)
	if err != nil {
		t.Fatal(err)
	}
	return &Memory{Cache: c, Load: func(context.Context, string, string) (cache.Entry, error) {
		return cache.Entry{Value: js, Version: bc.Version, AsOf: bc.AsOf}, nil
	}}
}

// get_context through the fast path answers as the go-sdk does: pages,
// items, cursors, bad input.
func TestStdioFastPathGetContext(t *testing.T) {
	t.Parallel()
	sdk, fast := newStdioBedMem(t, false, benchMemory(t)), newStdioBedMem(t, true, benchMemory(t))
	sdk.initialize(t, "2025-11-25")
	fast.initialize(t, "2025-11-25")
	args := []string{
		`{}`, `{}`, `{"max_tokens":300}`, `{"topics":["facts","tools"],"items":true}`, `{"scope":"proj-1","max_tokens":2000}`,
		`{"max_tokens":"x"}`, `{"customer":"bob"}`, `{"colour":"red"}`, `{"topics":["nope"]}`, `null`,
	}
	for i, a := range args {
		line := fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"get_context","arguments":%s}}`, i+1, a)
		before := fast.served()
		want, got := sdk.send(t, line, true), fast.send(t, line, true)
		if got != want {
			t.Errorf("%s: answers differ:\nfast: %.400s\nsdk:  %.400s", a, got, want)
		}
		if fast.served() != before+1 {
			t.Errorf("%s: not answered by the fast path", a)
		}
	}
	// A page's cursor, from the fast path's own answer, pages on.
	first := fast.send(t, `{"jsonrpc":"2.0","id":100,"method":"tools/call","params":{"name":"get_context","arguments":{"max_tokens":300}}}`, true)
	var resp struct {
		Result struct {
			StructuredContent struct {
				NextCursor string `json:"next_cursor"`
			} `json:"structuredContent"`
		} `json:"result"`
	}
	if err := json.Unmarshal([]byte(first), &resp); err != nil || resp.Result.StructuredContent.NextCursor == "" {
		t.Fatalf("no next_cursor in %.300s (%v)", first, err)
	}
	line := `{"jsonrpc":"2.0","id":101,"method":"tools/call","params":{"name":"get_context","arguments":{"max_tokens":300,"cursor":"` + resp.Result.StructuredContent.NextCursor + `"}}}`
	if got, want := fast.send(t, line, true), sdk.send(t, line, true); got != want {
		t.Errorf("second page: answers differ:\nfast: %.400s\nsdk:  %.400s", got, want)
	}
}

// FuzzStdioFilter: whatever arrives on stdin, the go-sdk receives every
// byte of it, in order, except whole lines the fast path answered, and
// each answered line gets exactly one answer line.
func FuzzStdioFilter(f *testing.F) {
	init := fmt.Sprintf(stdioInit, "2025-11-25") + "\n" + `{"jsonrpc":"2.0","method":"notifications/initialized"}` + "\n"
	call := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"log_event","arguments":{"activity":"called_tool"}}}`
	f.Add([]byte(init + call + "\n" + `{"jsonrpc":"2.0","id":2,"method":"ping"}` + "\n"))
	f.Add([]byte(init + call + "\r\n" + call))
	f.Add([]byte(init + "[" + call + "]\n" + call + "\n\n"))
	f.Add([]byte(call + "\n" + init + strings.Repeat("x", stdioReadBuffer+10) + "\n" + call + "\n"))
	w, err := spool.Open(spool.Options{Dir: f.TempDir()})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { w.Close() })
	fast, err := NewStdioFast(MCPOptions{Appender: w, Identity: FixedIdentity("alice"), Recent: NewRecentIDs(10)})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		pr, pw := io.Pipe()
		var out strings.Builder
		lw := &lockedWriter{w: &out}
		before := fast.Served()
		go fast.filter(context.Background(), strings.NewReader(string(in)), pw, lw, &initWatch{assume: true})
		passed, err := io.ReadAll(pr)
		if err != nil {
			t.Fatal(err)
		}
		answered := fast.Served() - before
		// The passed bytes are the input's lines, in order, less the
		// answered ones.
		lines := strings.SplitAfter(string(in), "\n")
		rest := string(passed)
		var missing int64
		for _, l := range lines {
			if strings.HasPrefix(rest, l) {
				rest = rest[len(l):]
			} else {
				missing++
			}
		}
		if rest != "" || missing != answered {
			t.Fatalf("passed %q of %q: %d lines not passed, %d answered", passed, in, missing, answered)
		}
		if got := int64(strings.Count(out.String(), "\n")); got != answered {
			t.Fatalf("%d answer lines for %d answered calls", got, answered)
		}
	})
}

// blockingMemory is a Memory whose loads wait for their context: a cold
// get_context that waits for the core. loads says when one has started;
// ended receives each load's context error.
func blockingMemory(t *testing.T) (mem *Memory, loads chan struct{}, ended chan error) {
	t.Helper()
	c, err := cache.New(cache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	loads, ended = make(chan struct{}, 10), make(chan error, 10)
	return &Memory{Cache: c, Load: func(ctx context.Context, _, _ string) (cache.Entry, error) {
		loads <- struct{}{}
		<-ctx.Done()
		ended <- ctx.Err()
		return cache.Entry{}, ctx.Err()
	}}, loads, ended
}

// A get_context the fast path runs is cancelled by the client's
// notifications/cancelled as one the go-sdk runs is: its wait for the
// memory store stops, and it is answered as the go-sdk answers a
// cancelled call. Before, the fast path's call was out of the go-sdk's
// sight and ran on until the load gave up (10 s for the core).
func TestStdioFastPathGetContextCancelled(t *testing.T) {
	t.Parallel()
	memSDK, loadsSDK, endedSDK := blockingMemory(t)
	memFast, loadsFast, endedFast := blockingMemory(t)
	sdk, fast := newStdioBedMem(t, false, memSDK), newStdioBedMem(t, true, memFast)
	sdk.initialize(t, "2025-11-25")
	fast.initialize(t, "2025-11-25")
	for _, id := range []string{`7`, `"ctx-8"`} {
		answers := map[string]string{}
		for name, c := range map[string]struct {
			sb    *stdioBed
			loads chan struct{}
			ended chan error
			call  string
		}{
			// The same call on a bed with the go-sdk alone and on one with
			// the fast path in front.
			"sdk":  {sdk, loadsSDK, endedSDK, `{"jsonrpc":"2.0","id":` + id + `,"method":"tools/call","params":{"name":"get_context","arguments":{}}}`},
			"fast": {fast, loadsFast, endedFast, `{"jsonrpc":"2.0","id":` + id + `,"method":"tools/call","params":{"name":"get_context","arguments":{}}}`},
		} {
			before := c.sb.served()
			c.sb.send(t, c.call, false)
			select {
			case <-c.loads:
			case <-time.After(10 * time.Second):
				t.Fatalf("%s: the load did not start", name)
			}
			// The same id written as the go-sdk reads it: 7.0 is 7.
			reqID := id
			if id == `7` {
				reqID = `7.0`
			}
			answer := make(chan string, 1)
			go func() {
				l, err := c.sb.out.ReadString('\n')
				if err != nil {
					l = err.Error()
				}
				answer <- l
			}()
			c.sb.send(t, `{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":`+reqID+`,"reason":"user"}}`, false)
			select {
			case err := <-c.ended:
				if !errors.Is(err, context.Canceled) {
					t.Errorf("%s: the load ended with %v", name, err)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("%s: the load went on after the client cancelled the call", name)
			}
			select {
			case a := <-answer:
				answers[name] = a
			case <-time.After(5 * time.Second):
				t.Fatalf("%s: no answer after the cancellation", name)
			}
			if name == "fast" && c.sb.served() != before+1 {
				t.Errorf("the fast path did not take the call")
			}
		}
		if answers["fast"] != answers["sdk"] || !strings.Contains(answers["fast"], "context canceled") {
			t.Errorf("id %s: answers to a cancelled call differ:\nfast: %s\nsdk:  %s", id, answers["fast"], answers["sdk"])
		}
	}
	// The session goes on: a cancellation for an id nobody runs changes
	// nothing, and the next call is answered.
	fast.send(t, `{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":99}}`, false)
	if a := fast.send(t, logEventBody(`9`, `{"activity":"called_tool"}`), true); !strings.Contains(a, `"duplicate":false`) {
		t.Errorf("after the cancellations: %s", a)
	}
}

// When the client's input ends, a get_context the fast path still runs is
// cancelled (its wait for the core stops) and not answered, as the go-sdk
// does with its own requests when its reader ends.
func TestStdioFastPathGetContextEndsWithTheInput(t *testing.T) {
	t.Parallel()
	mem, loads, ended := blockingMemory(t)
	sb := newStdioBedMem(t, true, mem)
	sb.initialize(t, "2025-11-25")
	sb.send(t, `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_context","arguments":{}}}`, false)
	select {
	case <-loads:
	case <-time.After(10 * time.Second):
		t.Fatal("the load did not start")
	}
	rest := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(sb.out)
		rest <- string(b)
	}()
	sb.in.Close()
	select {
	case err := <-ended:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("the load ended with %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the load went on after the client's input ended")
	}
	select {
	case out := <-rest:
		if out != "" {
			t.Errorf("answered after the input ended: %q", out)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the output did not end")
	}
}
