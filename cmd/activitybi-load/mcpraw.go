package main

// mcp-http --raw: like --lean (sessions opened by the go-sdk client, calls
// pre-encoded), but each call is written and its answer parsed by this
// file on persistent HTTP/1.1 connections, without net/http. --lean still
// cost 215-470 µs of CPU per call in the load tool (bench/mcp.md), which on
// a 2-core machine leaves too little for a server meant to take 10,000
// calls/s; this mode costs what a write and a read on a socket cost.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Limits of the raw client.
const (
	// maxRawHeaderLine bounds one status or header line of an answer.
	maxRawHeaderLine = 8 << 10
	// maxRawHeaders bounds the header lines of one answer.
	maxRawHeaders = 100
	// rawReadBuffer is each connection's read buffer.
	rawReadBuffer = 16 << 10
)

// rawCaller sends tools/call requests on its own HTTP/1.1 connections.
type rawCaller struct {
	addr    string
	prefix  [][]byte // per session: the request up to the Content-Length value
	maxConn int
	status  *[600]atomic.Int64 // shared with the sessions' transport

	idle   chan *rawConn
	mu     sync.Mutex
	open   int
	closed bool
}

type rawConn struct {
	c   net.Conn
	br  *bufio.Reader
	out []byte
	in  []byte
}

// newRawCaller prepares the request heads of every session: endpoint must be
// http:// (the raw client speaks no TLS).
func newRawCaller(endpoint, token string, sessions []rawSession, maxConn int, status *[600]atomic.Int64) (*rawCaller, error) {
	u, err := url.Parse(endpoint)
	if err != nil {
		return nil, fmt.Errorf("--raw: %w", err)
	}
	if u.Scheme != "http" {
		return nil, fmt.Errorf("--raw speaks plain HTTP/1.1 only; %q is %s (use --lean for https)", endpoint, u.Scheme)
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "80")
	}
	path := u.RequestURI()
	r := &rawCaller{addr: addr, maxConn: max(1, maxConn), status: status, idle: make(chan *rawConn, max(1, maxConn))}
	for _, s := range sessions {
		var b []byte
		b = append(b, "POST "+path+" HTTP/1.1\r\nHost: "+u.Host+
			"\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nMcp-Session-Id: "+s.id+"\r\n"...)
		if s.proto != "" {
			b = append(b, "Mcp-Protocol-Version: "+s.proto+"\r\n"...)
		}
		if token != "" {
			b = append(b, "Authorization: Bearer "+token+"\r\n"...)
		}
		b = append(b, "Content-Length: "...)
		r.prefix = append(r.prefix, b)
	}
	return r, nil
}

// rawSession is what the raw client needs of a session the go-sdk opened.
type rawSession struct {
	id    string
	proto string // negotiated protocol version
}

// get takes an idle connection, dials one if fewer than maxConn are open,
// or waits for one until deadline.
func (r *rawCaller) get(deadline time.Time) (*rawConn, error) {
	select {
	case c := <-r.idle:
		return c, nil
	default:
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil, errors.New("raw client closed")
	}
	if r.open < r.maxConn {
		r.open++
		r.mu.Unlock()
		c, err := net.DialTimeout("tcp", r.addr, time.Until(deadline))
		if err != nil {
			r.mu.Lock()
			r.open--
			r.mu.Unlock()
			return nil, err
		}
		return &rawConn{c: c, br: bufio.NewReaderSize(c, rawReadBuffer)}, nil
	}
	r.mu.Unlock()
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case c := <-r.idle:
		return c, nil
	case <-t.C:
		return nil, fmt.Errorf("no connection free within the timeout (%d open): %w", r.maxConn, os.ErrDeadlineExceeded)
	}
}

func (r *rawCaller) put(c *rawConn) {
	select {
	case r.idle <- c:
	default:
		r.drop(c)
	}
}

func (r *rawCaller) drop(c *rawConn) {
	c.c.Close()
	r.mu.Lock()
	r.open--
	r.mu.Unlock()
}

// close closes every idle connection; calls still running close theirs.
func (r *rawCaller) close() {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	for {
		select {
		case c := <-r.idle:
			r.drop(c)
		default:
			return
		}
	}
}

// call sends body as a tools/call on session i on an idle connection and
// reads the answer; results as leanCaller.call.
func (r *rawCaller) call(i int, body []byte, timeout time.Duration) (dup bool, kind string, err error) {
	var c *rawConn
	dup, kind, err = r.callOn(&c, i, body, timeout)
	if c != nil {
		r.put(c)
	}
	return dup, kind, err
}

// callOn is call on the connection *cp, which a worker keeps between calls:
// nil takes an idle one or dials one (up to maxConn); a connection that
// failed or was asked to close is dropped and *cp set to nil.
func (r *rawCaller) callOn(cp **rawConn, i int, body []byte, timeout time.Duration) (dup bool, kind string, err error) {
	deadline := time.Now().Add(timeout)
	c := *cp
	if c == nil {
		if c, err = r.get(deadline); err != nil {
			return false, classifyCallErr(err), err
		}
		*cp = c
	}
	c.c.SetDeadline(deadline)
	c.out = append(c.out[:0], r.prefix[i]...)
	c.out = strconv.AppendInt(c.out, int64(len(body)), 10)
	c.out = append(c.out, "\r\n\r\n"...)
	c.out = append(c.out, body...)
	if _, err := c.c.Write(c.out); err != nil {
		r.drop(c)
		*cp = nil
		return false, classifyCallErr(err), err
	}
	code, ans, keep, err := readRawResponse(c.br, c.in[:0])
	if err != nil {
		r.drop(c)
		*cp = nil
		return false, classifyCallErr(err), err
	}
	c.in = ans
	// ans is c's buffer: judge it before c is used again.
	defer func() {
		if !keep {
			r.drop(c)
			*cp = nil
		}
	}()
	if code >= 400 {
		if code < len(r.status) {
			r.status[code].Add(1)
		}
		return false, "http_" + strconv.Itoa(code), fmt.Errorf("HTTP %d: %s", code, truncate(bytes.TrimSpace(ans), 300))
	}
	if code != 200 {
		return false, "bad_response", fmt.Errorf("HTTP %d to a tools/call", code)
	}
	return leanOutcome(ans)
}

// rawJob is one call the pacer hands to a --raw worker.
type rawJob struct {
	session  int
	body     []byte
	intended time.Time // when it was due
	// sent is when the pacer handed it over: its latency is counted from
	// here, so a wait for a free worker (connection) is latency, as it was
	// when each call had its own goroutine waiting for a connection; the
	// pacer's own delay is the send lag.
	sent time.Time
}

// rawWorker sends calls on one connection, one at a time, and keeps its own
// latencies (merged when the step ends, so no lock per call).
type rawWorker struct {
	lat, lag []time.Duration
	at       []time.Time // when each call was sent, if a timeline is kept
}

// timelineSecond is one second of a step's calls, by when they were sent.
type timelineSecond struct {
	Second int     `json:"second"`
	Calls  int     `json:"calls"`
	P99    float64 `json:"p99_ms"`
	Max    float64 `json:"max_ms"`
}

// buildTimeline groups calls sent at at[i] with latency lat[i] by the
// second of the step they were sent in.
func buildTimeline(start time.Time, at []time.Time, lat []time.Duration) []timelineSecond {
	var secs [][]time.Duration
	for i, t := range at {
		k := max(0, int(t.Sub(start)/time.Second))
		for len(secs) <= k {
			secs = append(secs, nil)
		}
		secs[k] = append(secs[k], lat[i])
	}
	out := make([]timelineSecond, len(secs))
	for k, l := range secs {
		sum := summarize(l)
		out[k] = timelineSecond{Second: k, Calls: sum.N, P99: sum.P99, Max: sum.Max}
	}
	return out
}

// run takes jobs until the channel is closed. A worker replaced the
// goroutine the generator used to start per call: at 5,000 calls/s that
// goroutine's creation, its stack growth and the wait for a free
// connection were ~15% of the load tool's CPU (bench/mcp.md, session 6).
//
// Before taking jobs it takes or dials its connection and marks ready
// (a failed dial is retried by the first call). Jobs go to the worker
// idle longest, so all of them, and all connections, take turns, as the
// sessions of a fleet each use their own.
//
// Once ctx is done, calls still queued are not sent (counted as error
// kind "cancelled"); a call already sent finishes.
func (w *rawWorker) run(ctx context.Context, r *rawCaller, jobs <-chan rawJob, timeout time.Duration, ready *sync.WaitGroup, errs *errCounter, acked, dups, inflight *atomic.Int64) {
	c, _ := r.get(time.Now().Add(timeout))
	ready.Done()
	defer func() {
		if c != nil {
			r.put(c)
		}
	}()
	for j := range jobs {
		if ctx.Err() != nil {
			inflight.Add(-1)
			errs.add("cancelled", "the run was stopped before this call was sent")
			continue
		}
		dup, kind, err := r.callOn(&c, j.session, j.body, timeout)
		d := time.Since(j.sent)
		inflight.Add(-1)
		if err != nil {
			errs.add(kind, err.Error())
			continue
		}
		acked.Add(1)
		if dup {
			dups.Add(1)
		}
		w.lat = append(w.lat, d)
		w.lag = append(w.lag, j.sent.Sub(j.intended))
		if w.at != nil {
			w.at = append(w.at, j.sent)
		}
	}
}

// readRawResponse reads one HTTP/1.1 response from br: its status, its body
// (appended to buf; Content-Length or chunked), and whether the connection
// stays usable. It is what this client needs, not a general parser: 1xx
// answers, trailers' contents and bodies delimited by closing the
// connection are refused or skipped as noted.
func readRawResponse(br *bufio.Reader, buf []byte) (code int, body []byte, keep bool, err error) {
	line, err := rawLine(br)
	if err != nil {
		return 0, buf, false, err
	}
	proto, rest, ok := bytes.Cut(line, []byte(" "))
	if !ok || !bytes.HasPrefix(proto, []byte("HTTP/1.")) || len(rest) < 3 {
		return 0, buf, false, fmt.Errorf("bad status line %q", truncate(line, 100))
	}
	code, err = strconv.Atoi(string(rest[:3]))
	if err != nil || code < 200 || code > 599 || (len(rest) > 3 && rest[3] != ' ') {
		return 0, buf, false, fmt.Errorf("bad or unsupported status in %q", truncate(line, 100))
	}
	http11 := string(proto) == "HTTP/1.1"
	keep = http11
	length, chunked := int64(-1), false
	for n := 0; ; n++ {
		if n > maxRawHeaders {
			return 0, buf, false, fmt.Errorf("more than %d header lines", maxRawHeaders)
		}
		line, err = rawLine(br)
		if err != nil {
			return 0, buf, false, err
		}
		if len(line) == 0 {
			break
		}
		k, v, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return 0, buf, false, fmt.Errorf("bad header line %q", truncate(line, 100))
		}
		v = bytes.TrimSpace(v)
		switch {
		case asciiEqualFold(k, "Content-Length"):
			l, err := strconv.ParseInt(string(v), 10, 64)
			if err != nil || l < 0 || (length >= 0 && l != length) {
				return 0, buf, false, fmt.Errorf("bad Content-Length %q", v)
			}
			length = l
		case asciiEqualFold(k, "Transfer-Encoding"):
			if !http11 {
				continue // HTTP/1.0 has no transfer codings; net/http ignores the header too
			}
			if !asciiEqualFold(v, "chunked") {
				return 0, buf, false, fmt.Errorf("unsupported Transfer-Encoding %q", v)
			}
			chunked = true
		case asciiEqualFold(k, "Connection"):
			if asciiEqualFold(v, "close") {
				keep = false
			}
		}
	}
	switch {
	case code == 204 || code == 304:
		return code, buf, keep, nil
	case chunked:
		body, err = readChunked(br, buf)
		return code, body, keep && err == nil, err
	case length >= 0:
		if length > maxLeanAnswer {
			return 0, buf, false, fmt.Errorf("answer of %d bytes is over %d", length, maxLeanAnswer)
		}
		start := len(buf)
		buf = append(buf, make([]byte, length)...)
		if _, err := io.ReadFull(br, buf[start:]); err != nil {
			return 0, buf[:start], false, err
		}
		return code, buf, keep, nil
	default:
		// Delimited by the end of the connection.
		b, err := io.ReadAll(io.LimitReader(br, maxLeanAnswer))
		return code, append(buf, b...), false, err
	}
}

// readChunked appends a chunked body to buf.
func readChunked(br *bufio.Reader, buf []byte) ([]byte, error) {
	for {
		line, err := rawLine(br)
		if err != nil {
			return buf, err
		}
		if i := bytes.IndexByte(line, ';'); i >= 0 {
			line = line[:i]
		}
		n, err := strconv.ParseInt(string(bytes.TrimSpace(line)), 16, 64)
		if err != nil || n < 0 {
			return buf, fmt.Errorf("bad chunk size %q", truncate(line, 40))
		}
		if n == 0 {
			// Trailers, up to the empty line.
			for i := 0; ; i++ {
				if i > maxRawHeaders {
					return buf, fmt.Errorf("more than %d trailer lines", maxRawHeaders)
				}
				line, err := rawLine(br)
				if err != nil {
					return buf, err
				}
				if len(line) == 0 {
					return buf, nil
				}
			}
		}
		if int64(len(buf))+n > maxLeanAnswer {
			return buf, fmt.Errorf("answer over %d bytes", maxLeanAnswer)
		}
		start := len(buf)
		buf = append(buf, make([]byte, n)...)
		if _, err := io.ReadFull(br, buf[start:]); err != nil {
			return buf[:start], err
		}
		if crlf, err := rawLine(br); err != nil || len(crlf) != 0 {
			return buf, fmt.Errorf("chunk not followed by CRLF")
		}
	}
}

// rawLine reads one line without its CRLF (or LF); the slice is valid until
// the next read.
func rawLine(br *bufio.Reader) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) || len(line) > maxRawHeaderLine {
		return nil, fmt.Errorf("line longer than %d bytes", min(maxRawHeaderLine, br.Size()))
	}
	if err != nil {
		if err == io.EOF && len(line) > 0 {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		x, y := b[i], s[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
