package server

// The /mcp fast path: a POST that carries exactly one JSON-RPC request,
// tools/call of log_event, on a session the go-sdk's Streamable HTTP
// handler issued and still holds, is answered here instead of by the
// go-sdk. bench/mcp.md measured the go-sdk server at 570-880 µs of CPU per
// call for a tool that does nothing (a 32 KiB decoder buffer per message,
// the JSON encoded twice, an SSE stream per POST), several times what
// log_event itself costs; this path costs what the tool costs.
//
// What stays the go-sdk's: every other request (initialize, other methods,
// notifications, batches, GET, DELETE), and any log_event call this code
// is not sure it would answer exactly as the go-sdk does — an unknown or
// closed session, another customer's session, unusual headers, a body that
// is not the plain form below. Those fall through with their body restored.
// Authentication stays in front of both (auth.RequireBearerToken), so the
// customer is the token's on either path.
//
// Sessions are learnt by watching the go-sdk: an initialize answered with
// an Mcp-Session-Id (and found initialised in the mcp.Server) adds one; a
// DELETE or a 404 from the go-sdk removes it. The go-sdk closes a session
// mcpSessionTimeout after the last POST it served for it, and calls served
// here do not reset its timer; so a session's call falls through once the
// go-sdk last saw it fastRefreshAfter ago (that call resets the timer), and
// a periodic check against mcp.Server.Sessions drops whatever the go-sdk
// closed for another reason.
//
// Known differences from the go-sdk, all deliberate: the answer is
// application/json, never an SSE stream (the spec lets a server choose
// for a POST of a request; the go-sdk and TypeScript clients read both);
// two calls with the same JSON-RPC id in flight at once on one session are
// both answered (the go-sdk refuses the second with a 400); and a session
// the go-sdk closed by itself for a reason other than DELETE, its idle
// timer or a failed initialize (none exists in this core's configuration:
// no KeepAlive) is still answered here until the next sweep, at most
// fastSweepEvery later. (The sessions the token guard closes when their
// token is refused, mcp_tokens.go, are forgotten here first.)

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/activitybi/activitybi/internal/telemetry"
)

// Limits of the fast path.
const (
	// maxFastBody is the largest log_event request answered here; a larger
	// one falls through to the go-sdk (features are at most 64 KiB).
	maxFastBody = 128 << 10
	// maxFastSessions bounds the sessions tracked; beyond it new sessions
	// are served by the go-sdk alone (counted as reason "table_full"). It
	// also bounds the work of confirming each new session, a scan of the
	// go-sdk's sessions (mcp.Server.Sessions copies them all).
	maxFastSessions = 10_000
	// fastRefreshAfter: a session the go-sdk has not served for this long
	// sends its next call through the go-sdk, which resets its idle timer.
	fastRefreshAfter = mcpSessionTimeout / 2
	// fastSweepEvery is how often the tracked sessions are checked against
	// the sessions the go-sdk still holds.
	fastSweepEvery = 10 * time.Second
	// maxFastIDDigits bounds a numeric JSON-RPC id answered here: the go-sdk
	// decodes ids through float64, so longer integers would not round-trip
	// the same way and are left to it.
	maxFastIDDigits = 15
)

// fastProtocolVersions are the Mcp-Protocol-Version values whose log_event
// answer this path gives exactly as the go-sdk v1.8.0 does (the stateful
// versions; "" is what the go-sdk treats as 2025-03-26). Newer versions
// carry per-request _meta and header rules: they fall through.
var fastProtocolVersions = map[string]bool{"": true, "2025-11-25": true, "2025-06-18": true, "2025-03-26": true, "2024-11-05": true}

// Reasons a log_event call fell through, the labels of
// activitybi_mcp_fast_path_declined_total.
const (
	declineUnknownSession = "unknown_session" // not (or no longer) tracked
	declineRefresh        = "refresh"         // the go-sdk's idle timer needs resetting
	declineCustomer       = "customer"        // the token's customer did not open this session
	declineHeaders        = "headers"         // Accept, Content-Type, version, Host or other Mcp-* headers
	declineBody           = "body"            // chunked and over maxFastBody, or unreadable; any method
	declineTableFull      = "table_full"      // a new session was not tracked: maxFastSessions
)

// fastSession is what is known of one go-sdk session.
type fastSession struct {
	customer string       // the user id of the token that opened it
	added    time.Time    // when it was tracked
	lastSDK  atomic.Int64 // unix nanos: when the go-sdk last finished a POST of it
}

// fastMCP wraps the go-sdk's Streamable HTTP handler.
type fastMCP struct {
	sdk   http.Handler
	ms    *mcp.Server
	tools *tools
	now   func() time.Time

	mu       sync.RWMutex
	sessions map[string]*fastSession

	sweeping  atomic.Bool
	lastSweep atomic.Int64 // unix nanos

	served   prometheus.Counter
	declined *prometheus.CounterVec
}

// newFastMCP puts the fast path in front of sdk, the go-sdk handler serving
// ms; mo must be the options ms was made with (the same Recent, so that
// duplicates are answered the same on both paths).
func newFastMCP(mo MCPOptions, ms *mcp.Server, sdk http.Handler, reg prometheus.Registerer) (*fastMCP, error) {
	if mo.Recent == nil {
		return nil, errors.New("server: the /mcp fast path needs the MCP server's RecentIDs")
	}
	// The defaults NewMCPServer applies.
	if mo.Source == "" {
		mo.Source = defaultSource
	}
	if mo.Now == nil {
		mo.Now = time.Now
	}
	f := &fastMCP{sdk: sdk, ms: ms, now: time.Now, sessions: map[string]*fastSession{},
		tools: &tools{opts: mo, log: telemetry.OrDiscard(mo.Logger)},
		served: prometheus.NewCounter(prometheus.CounterOpts{Name: "activitybi_mcp_fast_path_calls_total",
			Help: "log_event calls over /mcp answered by the fast path instead of the go-sdk handler."}),
		declined: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "activitybi_mcp_fast_path_declined_total",
			Help: "log_event calls on a known /mcp session that fell through to the go-sdk handler, by reason (body: a chunked body over the fast path's size limit or an unreadable one, of any method)."}, []string{"reason"}),
	}
	for _, c := range []prometheus.Collector{f.served, f.declined} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return f, nil
}

func (f *fastMCP) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	sid := r.Header.Get(hdrSessionID)
	switch {
	case r.Method == http.MethodPost && sid == "":
		f.serveNewSession(w, r)
	case r.Method == http.MethodPost:
		if !f.tryLogEvent(w, r, sid) {
			f.serveKnownSession(w, r, sid)
		}
	case r.Method == http.MethodDelete && sid != "":
		// Forget first: no call is answered here once the client asked to
		// end the session, whatever the go-sdk then answers.
		f.forget(sid)
		f.sdk.ServeHTTP(w, r)
	default:
		f.sdk.ServeHTTP(w, r)
	}
}

const (
	hdrSessionID       = "Mcp-Session-Id"
	hdrProtocolVersion = "Mcp-Protocol-Version"
)

// serveNewSession passes a POST without a session (initialize) to the
// go-sdk and tracks the session it opens. The session is added when the
// answer's header is written, before the client can read the answer and
// use the id.
func (f *fastMCP) serveNewSession(w http.ResponseWriter, r *http.Request) {
	var customer string
	if ti := auth.TokenInfoFromContext(r.Context()); ti != nil {
		customer = ti.UserID
	}
	ow := &observeWriter{ResponseWriter: w, onHeader: func(code int, h http.Header) {
		if code != http.StatusOK {
			return
		}
		if sid := h.Get(hdrSessionID); sid != "" {
			f.track(sid, customer)
		}
	}}
	f.sdk.ServeHTTP(ow, r)
}

// serveKnownSession passes a POST on a session to the go-sdk and notes
// when it finished (the go-sdk's idle timer restarts then) or that the
// session is gone.
func (f *fastMCP) serveKnownSession(w http.ResponseWriter, r *http.Request, sid string) {
	ow := &observeWriter{ResponseWriter: w}
	f.sdk.ServeHTTP(ow, r)
	switch ow.code {
	case http.StatusOK, http.StatusAccepted:
		// Only a POST the go-sdk found its session for gets these: its
		// timer was reset when it ended, just now.
		f.mu.RLock()
		s := f.sessions[sid]
		f.mu.RUnlock()
		if s != nil {
			s.lastSDK.Store(f.now().UnixNano())
		}
	case http.StatusNotFound:
		f.forget(sid)
	}
}

// track adds a session the go-sdk just initialised.
func (f *fastMCP) track(sid, customer string) {
	f.mu.RLock()
	full := len(f.sessions) >= maxFastSessions
	f.mu.RUnlock()
	if full {
		f.declined.WithLabelValues(declineTableFull).Inc()
		return
	}
	if !f.sdkHolds(sid) {
		return
	}
	now := f.now()
	s := &fastSession{customer: customer, added: now}
	s.lastSDK.Store(now.UnixNano())
	f.mu.Lock()
	full = len(f.sessions) >= maxFastSessions
	if !full {
		f.sessions[sid] = s
	}
	f.mu.Unlock()
	if full {
		f.declined.WithLabelValues(declineTableFull).Inc()
	}
}

// sdkHolds reports whether the go-sdk has an initialised session sid.
func (f *fastMCP) sdkHolds(sid string) bool {
	for ss := range f.ms.Sessions() {
		if ss.ID() == sid {
			return ss.InitializeParams() != nil
		}
	}
	return false
}

func (f *fastMCP) forget(sid string) {
	f.mu.Lock()
	delete(f.sessions, sid)
	f.mu.Unlock()
}

// maybeSweep drops, at most every fastSweepEvery, the sessions the go-sdk
// no longer holds or has let expire. It runs on a request (one at a time),
// so that the fast path needs no goroutine of its own.
func (f *fastMCP) maybeSweep(now time.Time) {
	if now.UnixNano()-f.lastSweep.Load() < int64(fastSweepEvery) || !f.sweeping.CompareAndSwap(false, true) {
		return
	}
	defer f.sweeping.Store(false)
	f.lastSweep.Store(now.UnixNano())
	live := liveSessions(f.ms)
	f.mu.Lock()
	defer f.mu.Unlock()
	for sid, s := range f.sessions {
		// A session tracked after Sessions() was read is not in live yet.
		if (!live[sid] && s.added.Before(now)) || now.UnixNano()-s.lastSDK.Load() >= int64(mcpSessionTimeout) {
			delete(f.sessions, sid)
		}
	}
}

// tryLogEvent answers r if it is a plain log_event call on a tracked
// session; otherwise it leaves w untouched, restores r's body and returns
// false.
func (f *fastMCP) tryLogEvent(w http.ResponseWriter, r *http.Request, sid string) bool {
	if r.ContentLength > maxFastBody {
		return false
	}
	now := f.now()
	f.maybeSweep(now)
	f.mu.RLock()
	s := f.sessions[sid]
	f.mu.RUnlock()
	if s == nil {
		// Not counted: most such requests are not log_event calls.
		return false
	}
	body, ok := readFastBody(r)
	if !ok {
		f.declined.WithLabelValues(declineBody).Inc()
		return false
	}
	call, ok := sniffLogEventCall(body)
	if !ok {
		// Most likely another method: not a decline of log_event.
		return false
	}
	ti := auth.TokenInfoFromContext(r.Context())
	switch {
	case !fastHeaders(r):
		f.declined.WithLabelValues(declineHeaders).Inc()
		return false
	case ti == nil || ti.UserID != s.customer:
		f.declined.WithLabelValues(declineCustomer).Inc()
		return false
	case now.UnixNano()-s.lastSDK.Load() >= int64(fastRefreshAfter):
		f.declined.WithLabelValues(declineRefresh).Inc()
		return false
	}
	// What the go-sdk's tools/call does with a tool added by tools.add.
	start := time.Now()
	req := &mcp.CallToolRequest{Params: &mcp.CallToolParamsRaw{Name: logEventTool.Name, Arguments: call.args},
		Extra: &mcp.RequestExtra{TokenInfo: ti, Header: r.Header}}
	res, outcome := f.tools.call(r.Context(), req, logEventTool.Name, f.tools.logEvent)
	if f.tools.opts.Metrics != nil {
		f.tools.opts.Metrics.ObserveTool(logEventTool.Name, outcome, time.Since(start))
	}
	result, err := encodeToolResult(res)
	if err != nil {
		// Not reachable with the results tools.call makes; let the go-sdk
		// answer rather than answer differently.
		f.tools.log.Error("mcp fast path: encoding a result", "err", err)
		return false
	}
	out := make([]byte, 0, len(result)+len(call.id)+40)
	out = append(out, `{"jsonrpc":"2.0","id":`...)
	out = append(out, call.id...)
	out = append(out, `,"result":`...)
	out = append(out, result...)
	out = append(out, '}')
	// Canonical keys set directly: Header.Set would allocate a slice per
	// value; the constant ones are shared (net/http only reads them).
	h := w.Header()
	h["Cache-Control"] = fastCacheControl
	h["Content-Type"] = fastContentType
	h["Content-Length"] = []string{strconv.Itoa(len(out))}
	w.WriteHeader(http.StatusOK)
	w.Write(out)
	f.served.Inc()
	return true
}

// Header values of every fast-path answer; never modified.
var (
	fastCacheControl = []string{"no-cache, no-transform"}
	fastContentType  = []string{"application/json"}
)

// fastHeaders reports whether r's headers are ones the go-sdk would accept
// for a tools/call and answer like any other (else it falls through, and
// the go-sdk gives its own answer, often an error).
func fastHeaders(r *http.Request) bool {
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			return false
		}
	}
	if jsonOK, streamOK := acceptsJSONAndStream(r.Header.Values("Accept")); !jsonOK || !streamOK {
		return false
	}
	if !fastProtocolVersions[r.Header.Get(hdrProtocolVersion)] {
		return false
	}
	// Any other Mcp-* header (Mcp-Method, Mcp-Name, Mcp-Param-*) or a
	// Last-Event-ID is the go-sdk's to check.
	for k := range r.Header {
		if k == "Last-Event-Id" || (len(k) > 4 && strings.EqualFold(k[:4], "mcp-") && k != hdrSessionID && k != hdrProtocolVersion) {
			return false
		}
	}
	// The go-sdk's DNS-rebinding check: a loopback listener accepts only a
	// loopback Host.
	if la, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok && la != nil && isLoopback(la.String()) && !isLoopback(r.Host) {
		return false
	}
	return true
}

// acceptsJSONAndStream reads Accept as the go-sdk does.
func acceptsJSONAndStream(values []string) (jsonOK, streamOK bool) {
	for _, v := range values {
		for raw := range strings.SplitSeq(v, ",") {
			base, _, _ := strings.Cut(strings.TrimSpace(raw), ";")
			switch strings.ToLower(strings.TrimSpace(base)) {
			case "application/json", "application/*":
				jsonOK = true
			case "text/event-stream", "text/*":
				streamOK = true
			case "*/*":
				jsonOK, streamOK = true, true
			}
		}
	}
	return jsonOK, streamOK
}

// isLoopback is the go-sdk's test of a host or host:port.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = strings.Trim(addr, "[]")
	}
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// readFastBody reads r's body if it is at most maxFastBody; either way the
// body is left readable from its start for the go-sdk.
func readFastBody(r *http.Request) ([]byte, bool) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, false
	}
	var b []byte
	var err error
	if n := r.ContentLength; n >= 0 {
		b = make([]byte, n)
		var m int
		m, err = io.ReadFull(r.Body, b)
		b = b[:m]
	} else {
		b, err = io.ReadAll(io.LimitReader(r.Body, maxFastBody+1))
	}
	if err != nil || len(b) > maxFastBody {
		r.Body = restoredBody{io.MultiReader(bytes.NewReader(b), r.Body), r.Body}
		return nil, false
	}
	r.Body = io.NopCloser(bytes.NewReader(b))
	return b, true
}

// restoredBody reads what was already read, then the rest; Close closes
// the original.
type restoredBody struct {
	io.Reader
	c io.Closer
}

func (b restoredBody) Close() error { return b.c.Close() }

// observeWriter tells what status (and headers) the go-sdk answered with.
type observeWriter struct {
	http.ResponseWriter
	code     int
	onHeader func(code int, h http.Header)
}

func (w *observeWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
		if w.onHeader != nil {
			w.onHeader(code, w.Header())
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *observeWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

// Flush and Unwrap keep the go-sdk's SSE streams working through it.
func (w *observeWriter) Flush() {
	if w.code == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if fl, ok := w.ResponseWriter.(http.Flusher); ok {
		fl.Flush()
	}
}

func (w *observeWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// encodeToolResult is json.Marshal(res), byte for byte
// (TestMCPFastPathAnswersAsTheGoSDK compares), written by hand for the
// common success form — one text content beside structured content — which
// is a fifth of the fast path's own CPU when reflection writes it.
func encodeToolResult(res *mcp.CallToolResult) ([]byte, error) {
	raw, isRaw := res.StructuredContent.(json.RawMessage)
	if res.IsError || res.Meta != nil || !isRaw || len(res.Content) != 1 {
		return json.Marshal(res)
	}
	tc, ok := res.Content[0].(*mcp.TextContent)
	if !ok || tc.Meta != nil || tc.Annotations != nil {
		return json.Marshal(res)
	}
	text, err := json.Marshal(tc.Text)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(text)+len(raw)+64)
	out = append(out, `{"content":[{"type":"text","text":`...)
	out = append(out, text...)
	out = append(out, `}],"structuredContent":`...)
	// encoding/json writes a RawMessage compacted and HTML-escaped;
	// compacted here straight into out's spare capacity.
	n := len(out)
	buf := bytes.NewBuffer(out)
	if err := json.Compact(buf, raw); err != nil {
		return nil, err
	}
	out = buf.Bytes()
	if bytes.ContainsAny(out[n:], "<>&\u2028\u2029") {
		return json.Marshal(res)
	}
	return append(out, '}'), nil
}

// liveSessions is the set of session ids the go-sdk holds now.
func liveSessions(ms *mcp.Server) map[string]bool {
	live := map[string]bool{}
	for ss := range ms.Sessions() {
		live[ss.ID()] = true
	}
	return live
}
