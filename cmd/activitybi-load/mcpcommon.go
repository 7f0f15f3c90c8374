package main

// Shared by the MCP and HTTP ingest modes (mcp-stdio, mcp-http, events-http):
// argument templates, latency summaries, error kinds, the bearer-token HTTP
// transport and a small command-line splitter.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// defaultProtocolVersion is what the MCP modes ask for unless
// --protocol-version says otherwise: the spec version the project targets
// (../shared/facts.md), which keeps Streamable HTTP sessions stateful
// (Mcp-Session-Id) as today's clients use them. The empty string asks for the
// SDK's newest (2026-07-28, server/discover first).
const defaultProtocolVersion = "2025-11-25"

// runMode gives a mode a context cancelled by Ctrl-C or SIGTERM, so child
// servers and sessions are closed on the way out.
func runMode(mode func(context.Context, []string, io.Writer) error, args []string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := mode(ctx, args, os.Stdout); !errors.Is(err, flag.ErrHelp) {
		return err
	}
	return nil
}

// newRunID names one run; {{run}} in a template expands to it, so ids made
// from {{run}}-{{seq}} never collide with an earlier run's.
func newRunID() string {
	var b [4]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// argsTemplate is a JSON text with placeholders, expanded per call:
//
//	{{seq}}  the call's sequence number (1, 2, ...; warm-up calls included)
//	{{run}}  the run id (8 hex digits, printed in the report)
//	{{now}}  the current time, RFC 3339 with nanoseconds, UTC
//
// Placeholders are replaced as text, so put {{run}} and {{now}} inside a JSON
// string and {{seq}} either inside a string or as a number.
type argsTemplate struct {
	lits []string // len(keys)+1 literal pieces around the placeholders
	keys []string
}

var templateKeys = map[string]bool{"seq": true, "run": true, "now": true}

// parseTemplate splits s and checks that it expands to a JSON object.
func parseTemplate(s string) (*argsTemplate, error) {
	t := &argsTemplate{}
	rest := s
	for {
		i := strings.Index(rest, "{{")
		if i < 0 {
			break
		}
		j := strings.Index(rest[i:], "}}")
		if j < 0 {
			return nil, fmt.Errorf("template %q: unclosed {{", s)
		}
		key := rest[i+2 : i+j]
		if !templateKeys[key] {
			return nil, fmt.Errorf("template %q: unknown placeholder {{%s}} (known: {{seq}} {{run}} {{now}})", s, key)
		}
		t.lits = append(t.lits, rest[:i])
		t.keys = append(t.keys, key)
		rest = rest[i+j+2:]
	}
	t.lits = append(t.lits, rest)
	probe := t.render(1, "00000000")
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(probe, &obj); err != nil {
		return nil, fmt.Errorf("template %q does not expand to a JSON object: %v (expanded: %s)", s, err, probe)
	}
	return t, nil
}

func (t *argsTemplate) render(seq int64, run string) json.RawMessage {
	return t.appendTo(make([]byte, 0, 256), seq, run)
}

func (t *argsTemplate) appendTo(b []byte, seq int64, run string) []byte {
	for i, key := range t.keys {
		b = append(b, t.lits[i]...)
		switch key {
		case "seq":
			b = strconv.AppendInt(b, seq, 10)
		case "run":
			b = append(b, run...)
		case "now":
			b = time.Now().UTC().AppendFormat(b, time.RFC3339Nano)
		}
	}
	return append(b, t.lits[len(t.lits)-1]...)
}

// latency is a percentile summary in milliseconds (JSON-friendly).
type latency struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50_ms"`
	P95 float64 `json:"p95_ms"`
	P99 float64 `json:"p99_ms"`
	Max float64 `json:"max_ms"`
}

// summarize sorts l in place and returns its percentiles (nearest rank).
func summarize(l []time.Duration) latency {
	sort.Slice(l, func(i, j int) bool { return l[i] < l[j] })
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	return latency{N: len(l), P50: ms(pct(l, 0.50)), P95: ms(pct(l, 0.95)), P99: ms(pct(l, 0.99)), Max: ms(pct(l, 1))}
}

// fmtMS prints milliseconds with about three significant digits.
func fmtMS(v float64) string {
	switch {
	case v < 1:
		return fmt.Sprintf("%.3fms", v)
	case v < 10:
		return fmt.Sprintf("%.2fms", v)
	case v < 100:
		return fmt.Sprintf("%.1fms", v)
	}
	return fmt.Sprintf("%.0fms", v)
}

func (l latency) String() string {
	return fmt.Sprintf("p50 %s  p95 %s  p99 %s  max %s", fmtMS(l.P50), fmtMS(l.P95), fmtMS(l.P99), fmtMS(l.Max))
}

// errCounter counts errors by kind and keeps the first message of each kind,
// so a report can say what went wrong without a log.
type errCounter struct {
	mu       sync.Mutex
	counts   map[string]int64
	examples map[string]string
}

func (e *errCounter) add(kind string, msg string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.counts == nil {
		e.counts, e.examples = map[string]int64{}, map[string]string{}
	}
	if e.counts[kind] == 0 {
		e.examples[kind] = msg
	}
	e.counts[kind]++
}

func (e *errCounter) snapshot() (counts map[string]int64, examples map[string]string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	counts, examples = map[string]int64{}, map[string]string{}
	for k, v := range e.counts {
		counts[k] = v
		examples[k] = e.examples[k]
	}
	return counts, examples
}

func sumCounts(m map[string]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

// fmtCounts prints {"timeout":3,"http_503":1} as "http_503 1, timeout 3".
func fmtCounts(m map[string]int64) string {
	if len(m) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}

// classifyCallErr names the kind of a failed MCP call.
func classifyCallErr(err error) string {
	var we *jsonrpc.Error
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, mcp.ErrSessionMissing):
		return "session_missing"
	case errors.As(err, &we):
		return fmt.Sprintf("jsonrpc_%d", we.Code)
	case errors.Is(err, syscall.ECONNREFUSED):
		return "conn_refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "conn_reset"
	case errors.Is(err, mcp.ErrConnectionClosed), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection_closed"
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	}
	// The streamable client reports a bad HTTP status by its text only.
	msg := err.Error()
	for code := 400; code < 600; code++ {
		if t := http.StatusText(code); t != "" && strings.HasSuffix(msg, t) {
			return "http_" + strconv.Itoa(code)
		}
	}
	return "other"
}

// bearerTransport adds the Authorization header and counts HTTP statuses >=
// 400, which the MCP client otherwise reports only as text.
type bearerTransport struct {
	token  string
	base   http.RoundTripper
	status [600]atomic.Int64
}

func (t *bearerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if t.token != "" {
		req = req.Clone(req.Context())
		req.Header.Set("Authorization", "Bearer "+t.token)
	}
	resp, err := t.base.RoundTrip(req)
	if err == nil && resp.StatusCode >= 400 && resp.StatusCode < len(t.status) {
		t.status[resp.StatusCode].Add(1)
	}
	return resp, err
}

func (t *bearerTransport) badStatuses() map[string]int64 {
	m := map[string]int64{}
	for code := range t.status {
		if n := t.status[code].Load(); n > 0 {
			m["http_"+strconv.Itoa(code)] = n
		}
	}
	return m
}

// newHTTPTransport keeps enough idle connections for every session (or
// worker) to reuse its own, which the default of 2 per host does not.
func newHTTPTransport(conns int) *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = conns + 16
	tr.MaxIdleConnsPerHost = conns + 16
	tr.IdleConnTimeout = 5 * time.Minute
	return tr
}

// endpointURL appends path to a base URL given without one
// (http://127.0.0.1:8080 -> http://127.0.0.1:8080/mcp).
func endpointURL(raw, path string) string {
	s := strings.TrimSuffix(raw, "/")
	if i := strings.Index(s, "://"); i >= 0 && !strings.Contains(s[i+3:], "/") {
		return s + path
	}
	return raw
}

// procKB reads a "Name:   123 kB" field of /proc/PID/status (Linux); 0 if
// it cannot.
func procKB(pid int, field string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			f := strings.Fields(v)
			if len(f) > 0 {
				n, _ := strconv.ParseInt(f[0], 10, 64)
				return n
			}
		}
	}
	return 0
}

// rssSampler records the peak VmRSS of a process every 200 ms.
type rssSampler struct {
	pid        int
	start, end int64
	peak       atomic.Int64
	stop       chan struct{}
	done       chan struct{}
}

func sampleRSS(pid int) *rssSampler {
	s := &rssSampler{pid: pid, start: procKB(pid, "VmRSS"), stop: make(chan struct{}), done: make(chan struct{})}
	s.peak.Store(s.start)
	go func() {
		defer close(s.done)
		for {
			select {
			case <-s.stop:
				return
			case <-time.After(200 * time.Millisecond):
			}
			if r := procKB(pid, "VmRSS"); r > s.peak.Load() {
				s.peak.Store(r)
			}
		}
	}()
	return s
}

func (s *rssSampler) finish() {
	close(s.stop)
	<-s.done
	s.end = procKB(s.pid, "VmRSS")
	if s.end > s.peak.Load() {
		s.peak.Store(s.end)
	}
}

func fmtMB(kb int64) string { return fmt.Sprintf("%.1f MB", float64(kb)/1024) }

// splitCommandLine splits a command line as a POSIX shell would split plain
// words: blanks separate, '...' is literal, "..." allows \" and \\, and a
// backslash outside quotes escapes the next character. No variables, globs or
// operators.
func splitCommandLine(s string) ([]string, error) {
	var args []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n':
			if inWord {
				args = append(args, cur.String())
				cur.Reset()
				inWord = false
			}
		case c == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, fmt.Errorf("command line %q: unclosed '", s)
			}
			cur.WriteString(s[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case c == '"':
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) && (s[i+1] == '"' || s[i+1] == '\\') {
					i++
				}
				cur.WriteByte(s[i])
			}
			if i >= len(s) {
				return nil, fmt.Errorf("command line %q: unclosed \"", s)
			}
			inWord = true
		case c == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
			inWord = true
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		args = append(args, cur.String())
	}
	if len(args) == 0 {
		return nil, errors.New("empty command line")
	}
	return args, nil
}

// multiFlag collects a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, " ") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// floatList parses "2000,4000,6000".
func parseFloatList(s string) ([]float64, error) {
	var out []float64
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSuffix(strings.ToUpper(f), "K"), 64)
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("bad rate %q", f)
		}
		if strings.HasSuffix(strings.ToUpper(f), "K") {
			v *= 1000
		}
		out = append(out, v)
	}
	if len(out) == 0 {
		return nil, errors.New("no rates")
	}
	return out, nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
