package server

// The stdio fast path: an edge's log_event and get_context calls answered
// without the go-sdk, as /mcp's fast path does log_event over HTTP
// (mcp_fast.go).
//
// Why: over stdio the go-sdk decodes each message four to six times, each
// time through a fresh JSON decoder with its own 32 KiB buffer
// (BenchmarkGetContextHot's memory profile: 80% of the bytes allocated);
// an edge taking a few hundred calls a second collected garbage every few
// calls, and a heap that turns over that fast is what kept an edge's RSS
// high (bench/mcp.md, "Session 6, the lead's runs"). These two are the
// calls an edge takes most often: this path reads them, runs the same tool
// code (tools.call: the same validation, spool append, duplicate check,
// cache tiers and audit), and writes the same answer the go-sdk would,
// byte for byte (TestStdioFastPathAnswersAsTheGoSDK,
// TestStdioFastPathGetContext).
//
// Everything else — initialize, other methods and tools, notifications,
// batches, requests with _meta, lines over maxFastBody, anything before the
// client's notifications/initialized, any protocol version not in
// fastProtocolVersions — goes to the go-sdk unchanged, as bytes, through a
// pipe: the go-sdk's own stdio reader (mcp.IOTransport) decodes it.
// The go-sdk's writes and this path's share one lock, one line each.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/activitybi/activitybi/internal/telemetry"
)

// stdioReadBuffer holds one line the fast path may answer: a longer line
// is passed to the go-sdk as it comes.
const stdioReadBuffer = maxFastBody + 1

// StdioFast answers an edge's log_event and get_context calls on its stdio
// MCP session.
type StdioFast struct {
	tools  *tools
	log    *slog.Logger
	served atomic.Int64
}

// NewStdioFast returns the fast path for a server NewMCPServer made from
// the same opts; opts.Recent must be set and shared with that server, so
// that a duplicate is one whichever path saw the first call.
func NewStdioFast(opts MCPOptions) (*StdioFast, error) {
	if opts.Recent == nil {
		return nil, errors.New("server: the stdio fast path needs the MCP server's RecentIDs")
	}
	if opts.Appender == nil || opts.Identity == nil {
		return nil, errors.New("server: MCPOptions.Appender and Identity are required")
	}
	// The defaults NewMCPServer applies.
	if opts.Source == "" {
		opts.Source = defaultSource
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	log := telemetry.OrDiscard(opts.Logger)
	return &StdioFast{tools: &tools{opts: opts, log: log}, log: log}, nil
}

// Served is how many calls this path answered.
func (f *StdioFast) Served() int64 { return f.served.Load() }

// Transport serves MCP on in and out (the edge's stdin and stdout) for
// mcp.Server.Run, with the fast path in front of the go-sdk's reader.
func (f *StdioFast) Transport(in io.Reader, out io.Writer) mcp.Transport {
	return &stdioFastTransport{f: f, in: in, out: &lockedWriter{w: out}}
}

type stdioFastTransport struct {
	f   *StdioFast
	in  io.Reader
	out *lockedWriter
}

func (t *stdioFastTransport) Connect(ctx context.Context) (mcp.Connection, error) {
	pr, pw := io.Pipe()
	iw := &initWatch{}
	go t.f.filter(ctx, t.in, pw, t.out, iw)
	return (&mcp.IOTransport{Reader: pr, Writer: nopCloser{&watchWriter{w: t.out, iw: iw}}}).Connect(ctx)
}

// initWatch learns from the go-sdk's answer whether it accepted the
// client's initialize: the fast path answers only on a session the go-sdk
// set up (a refused initialize leaves the go-sdk refusing tool calls, and
// so must the fast path; found in review, session 8).
type initWatch struct {
	mu       sync.Mutex
	id       []byte // the id of the client's last initialize, until its answer
	accepted bool   // the go-sdk answered that initialize with a result
	// assume, in tests of the filter without a go-sdk behind it, takes
	// every initialize as accepted.
	assume bool
}

// asked notes an initialize with id, passed to the go-sdk.
func (iw *initWatch) asked(id []byte) {
	iw.mu.Lock()
	defer iw.mu.Unlock()
	iw.id, iw.accepted = bytes.Clone(id), false
}

// answered looks at a line the go-sdk writes while an initialize is
// unanswered. An id written differently from the request's leaves the
// session to the go-sdk, which is never wrong, only slower.
func (iw *initWatch) answered(line []byte) {
	iw.mu.Lock()
	defer iw.mu.Unlock()
	if iw.id == nil {
		return
	}
	var m struct {
		ID     json.RawMessage `json:"id"`
		Result json.RawMessage `json:"result"`
		Error  json.RawMessage `json:"error"`
	}
	if json.Unmarshal(line, &m) != nil || !bytes.Equal(m.ID, iw.id) {
		return
	}
	iw.accepted = m.Result != nil && m.Error == nil
	iw.id = nil
}

func (iw *initWatch) ok() bool {
	iw.mu.Lock()
	defer iw.mu.Unlock()
	return iw.accepted || iw.assume
}

// watchWriter is the go-sdk's writer: it shows each line to the initWatch
// before writing it.
type watchWriter struct {
	w  io.Writer
	iw *initWatch
}

func (w *watchWriter) Write(b []byte) (int, error) {
	w.iw.answered(b)
	return w.w.Write(b)
}

// lockedWriter writes each Write whole, one at a time: the go-sdk writes a
// message as one Write of its line, and so does the fast path.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (w *lockedWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(b)
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

// stdioState is what the filter has learnt of the session.
type stdioState struct {
	version     string // the protocolVersion the client's initialize asked for
	initialized bool   // the client sent notifications/initialized after it
	init        *initWatch
}

// filter reads in line by line, answers the lines the fast path takes and
// passes every other byte to pw, in order. It closes pw at the end of in
// (or with in's error), which ends the go-sdk's session as stdin's end
// would; the get_context calls it still runs are then cancelled and not
// answered, as the go-sdk cancels its own in-flight requests when its
// reader ends and writes nothing more.
func (f *StdioFast) filter(ctx context.Context, in io.Reader, pw *io.PipeWriter, out io.Writer, iw *initWatch) {
	br := bufio.NewReaderSize(in, stdioReadBuffer)
	st := stdioState{init: iw}
	calls := &fastCalls{}
	defer calls.cancelAll(errStdinEnded)
	var buf []byte
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// Too long for the fast path: pass it on as it comes.
			if _, werr := pw.Write(line); werr != nil {
				return
			}
			for errors.Is(err, bufio.ErrBufferFull) {
				line, err = br.ReadSlice('\n')
				if _, werr := pw.Write(line); werr != nil {
					return
				}
			}
			if err != nil {
				pw.CloseWithError(err)
				return
			}
			continue
		}
		if len(line) > 0 {
			if st.initialized && f.answer(ctx, line, out, &buf, calls) {
				continue
			}
			st.observe(line)
			// A cancellation goes to the go-sdk too: the id may be one of
			// its requests (it ignores ids it does not know).
			calls.observeCancel(line)
			if _, werr := pw.Write(line); werr != nil {
				return // the go-sdk's session is over
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				pw.Close()
			} else {
				pw.CloseWithError(err)
			}
			return
		}
	}
}

// observe notes the client's initialize (its protocol version) and its
// notifications/initialized, from a line passed to the go-sdk.
func (st *stdioState) observe(line []byte) {
	if !bytes.Contains(line, []byte("initialize")) {
		return
	}
	var m struct {
		ID     json.RawMessage `json:"id"`
		Method string          `json:"method"`
		Params struct {
			ProtocolVersion string `json:"protocolVersion"`
		} `json:"params"`
	}
	if json.Unmarshal(line, &m) != nil {
		return
	}
	switch {
	case m.Method == "initialize" && m.ID != nil:
		st.version, st.initialized = m.Params.ProtocolVersion, false
		st.init.asked(m.ID)
	case m.Method == "notifications/initialized" && m.ID == nil:
		// Only a version the go-sdk takes as asked: its answers are
		// the ones this path copies; and only once the go-sdk has
		// accepted the initialize (a client waits for that answer
		// before it sends this notification).
		st.initialized = st.version != "" && fastProtocolVersions[st.version] && st.init.ok()
	}
}

// answer answers line if it is a plain call of log_event or (when the
// edge serves memory) get_context, and reports whether it did. A
// log_event call is answered before the next line is read (a spool
// append); a get_context call in a goroutine of its own, as the go-sdk
// would, since a cold one waits for the core, on a context that the
// client's notifications/cancelled for its id cancels (calls). buf is
// reused for log_event's answers.
func (f *StdioFast) answer(ctx context.Context, line []byte, out io.Writer, buf *[]byte, calls *fastCalls) bool {
	body := bytes.TrimRight(line, "\r\n")
	names := fastToolsLog
	if f.tools.opts.Memory != nil {
		names = fastToolsLogContext
	}
	call, ok := sniffToolCall(body, names...)
	if !ok {
		return false
	}
	f.served.Add(1)
	if call.tool == logEventTool.Name {
		*buf = f.reply(ctx, call, f.tools.logEvent, out, (*buf)[:0])
		return true
	}
	// The line's bytes are the reader's until the next read.
	call.id, call.args = bytes.Clone(call.id), bytes.Clone(call.args)
	cctx, c := calls.add(ctx, call.id)
	go func() {
		defer calls.remove(c)
		f.reply(cctx, call, f.tools.getContext, out, nil)
	}()
	return true
}

// errStdinEnded cancels the get_context calls still running when the
// client's input ends: nobody is left to read their answers.
var errStdinEnded = errors.New("the client's input ended")

// fastCalls are the get_context calls the fast path is running, by
// JSON-RPC id, so that a notifications/cancelled naming one cancels it,
// as the go-sdk cancels the requests it runs (the go-sdk never sees these
// ids). A cancelled call is answered as the go-sdk answers one: the
// tool's error, "context canceled" (TestStdioFastPathGetContextCancelled).
type fastCalls struct {
	mu sync.Mutex
	m  map[string][]*runningCall
}

type runningCall struct {
	key    string
	cancel context.CancelCauseFunc
}

// add registers a call with the raw JSON-RPC id (fastID's forms: a
// canonical integer or a string no encoder escapes) and returns its
// context.
func (fc *fastCalls) add(ctx context.Context, id []byte) (context.Context, *runningCall) {
	cctx, cancel := context.WithCancelCause(ctx)
	c := &runningCall{key: string(id), cancel: cancel}
	fc.mu.Lock()
	if fc.m == nil {
		fc.m = map[string][]*runningCall{}
	}
	fc.m[c.key] = append(fc.m[c.key], c)
	fc.mu.Unlock()
	return cctx, c
}

// remove forgets a finished call.
func (fc *fastCalls) remove(c *runningCall) {
	c.cancel(nil)
	fc.mu.Lock()
	defer fc.mu.Unlock()
	l := fc.m[c.key]
	for i, x := range l {
		if x == c {
			l = append(l[:i], l[i+1:]...)
			break
		}
	}
	if len(l) == 0 {
		delete(fc.m, c.key)
	} else {
		fc.m[c.key] = l
	}
}

// observeCancel cancels the calls a notifications/cancelled line names.
func (fc *fastCalls) observeCancel(line []byte) {
	if !bytes.Contains(line, []byte("notifications/cancelled")) {
		return
	}
	fc.mu.Lock()
	empty := len(fc.m) == 0
	fc.mu.Unlock()
	if empty {
		return
	}
	var m struct {
		ID     json.RawMessage `json:"id"`
		Method string          `json:"method"`
		Params struct {
			RequestID json.RawMessage `json:"requestId"`
		} `json:"params"`
	}
	if json.Unmarshal(line, &m) != nil || m.Method != "notifications/cancelled" || m.ID != nil {
		return
	}
	key, ok := idKey(m.Params.RequestID)
	if !ok {
		return
	}
	fc.mu.Lock()
	l := fc.m[key]
	fc.mu.Unlock()
	for _, c := range l {
		c.cancel(nil) // context.Canceled, as the go-sdk's cancellation
	}
}

// cancelAll cancels every call with cause.
func (fc *fastCalls) cancelAll(cause error) {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	for _, l := range fc.m {
		for _, c := range l {
			c.cancel(cause)
		}
	}
}

// idKey writes a requestId as fastID's form of the same id: an integer
// in its canonical digits (the go-sdk reads ids as numbers: 7 and 7.0 are
// one id), a string quoted.
func idKey(raw json.RawMessage) (string, bool) {
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return "", false
	}
	switch x := v.(type) {
	case float64:
		if x != math.Trunc(x) || math.Abs(x) >= 1<<53 {
			return "", false
		}
		return strconv.FormatInt(int64(x), 10), true
	case string:
		return strconv.Quote(x), true
	}
	return "", false
}

var (
	fastToolsLog        = []string{`"log_event"`}
	fastToolsLogContext = []string{`"log_event"`, `"get_context"`}
)

// reply runs call as the go-sdk's tools/call would (tools.add) and writes
// its answer line, built in o.
func (f *StdioFast) reply(ctx context.Context, call fastCall, tool toolFunc, out io.Writer, o []byte) []byte {
	start := time.Now()
	req := &mcp.CallToolRequest{Params: &mcp.CallToolParamsRaw{Name: call.tool, Arguments: call.args}}
	res, outcome := f.tools.call(ctx, req, call.tool, tool)
	if f.tools.opts.Metrics != nil {
		f.tools.opts.Metrics.ObserveTool(call.tool, outcome, time.Since(start))
	}
	if errors.Is(context.Cause(ctx), errStdinEnded) {
		return o // the session is over: no answer, as from the go-sdk
	}
	o = append(o, `{"jsonrpc":"2.0","id":`...)
	o = append(o, call.id...)
	if result, err := encodeToolResult(res); err == nil {
		o = append(o, `,"result":`...)
		o = append(o, result...)
	} else {
		// Not reachable with the results tools.call makes. The call was
		// made, so it must not go to the go-sdk to be made again: answer
		// with a JSON-RPC internal error.
		f.log.Error("mcp stdio fast path: encoding a result", "err", err)
		o = append(o, `,"error":{"code":-32603,"message":"internal error: encoding the result failed"}`...)
	}
	o = append(o, "}\n"...)
	if _, err := out.Write(o); err != nil {
		f.log.Debug("mcp stdio fast path: writing an answer", "err", err)
	}
	return o
}
