package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// --lean and --raw against a real go-sdk Streamable HTTP server (for --raw,
// SSE answers in chunked bodies read by its own parser): every call reaches
// the tool on one of the sessions the go-sdk client opened, the
// acknowledged count is what the server stored, and duplicates and tool
// errors are told apart as without them.
func TestMCPHTTPLeanAndRaw(t *testing.T) {
	t.Parallel()
	for _, mode := range []struct {
		flag  string
		extra []string
		note  string
		on    func(*httpReport) bool
	}{
		{"--lean", nil, "lean (", func(r *httpReport) bool { return r.Lean }},
		{"--raw", []string{"--raw-conns", "4"}, "raw (own HTTP/1.1", func(r *httpReport) bool { return r.Raw }},
	} {
		t.Run(mode.flag, func(t *testing.T) {
			t.Parallel()
			s := startMCPHTTP(t, "secret", 0)
			var out bytes.Buffer
			args := append([]string{mode.flag, "--url", s.url, "--token", "secret", "--sessions", "10", "--rate", "400", "--duration", "500ms"}, mode.extra...)
			rep, err := runMCPHTTP(context.Background(), args, &out)
			if err != nil {
				t.Fatal(err)
			}
			t.Log("\n" + out.String())
			st := rep.Steps[0]
			if len(st.Errors) != 0 || len(st.HTTPStatuses) != 0 {
				t.Fatalf("errors %v %v", st.Errors, st.HTTPStatuses)
			}
			s.mu.Lock()
			ids, sessions := len(s.ids), len(s.sessions)
			s.mu.Unlock()
			if rep.Acknowledged == 0 || rep.Acknowledged != s.calls.Load() || int64(ids) != rep.Acknowledged || st.Duplicates != 0 {
				t.Errorf("acknowledged %d, server calls %d, distinct ids %d, dups %d", rep.Acknowledged, s.calls.Load(), ids, st.Duplicates)
			}
			if st.Issued != st.Acknowledged {
				t.Errorf("issued %d, acknowledged %d", st.Issued, st.Acknowledged)
			}
			if sessions != 10 || !mode.on(rep) || !strings.Contains(out.String(), mode.note) {
				t.Errorf("calls reached %d sessions, want 10 (mode reported: %v)", sessions, mode.on(rep))
			}
			if st.LoadCPUPerCallUS <= 0 {
				t.Errorf("load CPU per call %v", st.LoadCPUPerCallUS)
			}

			rep, err = runMCPHTTP(context.Background(), []string{mode.flag, "--url", s.url, "--token", "secret",
				"--sessions", "2", "--rate", "200", "--duration", "300ms", "--args", `{"activity":"x","activity_id":"same` + mode.flag + `"}`}, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			if st := rep.Steps[0]; st.Acknowledged == 0 || st.Duplicates != st.Acknowledged-1 {
				t.Errorf("acknowledged %d, duplicates %d", st.Acknowledged, st.Duplicates)
			}
			rep, err = runMCPHTTP(context.Background(), []string{mode.flag, "--url", s.url, "--token", "secret",
				"--sessions", "2", "--rate", "100", "--duration", "200ms", "--args", `{"nope":1}`}, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			if st := rep.Steps[0]; st.Acknowledged != 0 || st.Errors["tool_error"] == 0 {
				t.Errorf("acknowledged %d, errors %v", st.Acknowledged, st.Errors)
			}
		})
	}
	if _, err := runMCPHTTP(context.Background(), []string{"--raw", "--lean", "--url", "http://127.0.0.1:1"}, io.Discard); err == nil {
		t.Error("--raw with --lean must be refused")
	}
}

// A session the server does not know: each call is an HTTP 404, counted.
func TestRawCallerHTTPError(t *testing.T) {
	t.Parallel()
	s := startMCPHTTP(t, "secret", 0)
	rc, err := newRawCaller(s.url+"/mcp", "secret", []rawSession{{id: "no-such-session", proto: defaultProtocolVersion}}, 2, new([600]atomic.Int64))
	if err != nil {
		t.Fatal(err)
	}
	defer rc.close()
	for range 3 {
		_, kind, err := rc.call(0, leanBody(nil, "log_event", 1, []byte(`{"activity":"called_tool"}`)), 5e9)
		if kind != "http_404" || err == nil {
			t.Fatalf("kind %q err %v", kind, err)
		}
	}
	if n := rc.status[404].Load(); n != 3 {
		t.Fatalf("404s counted %d", n)
	}
	if _, err := newRawCaller("https://127.0.0.1:1/mcp", "", nil, 1, new([600]atomic.Int64)); err == nil || !strings.Contains(err.Error(), "plain HTTP") {
		t.Fatalf("https: %v", err)
	}
}

func TestReadRawResponse(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		in   string
		code int
		body string
		keep bool
		bad  bool
	}{
		{"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", 200, "hello", true, false},
		{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\nT: 1\r\n\r\n", 200, "abcde", true, false},
		{"HTTP/1.1 404 Not Found\r\ncontent-length: 2\r\nConnection: close\r\n\r\nno", 404, "no", false, false},
		{"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx", 200, "x", false, false},
		{"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 200, "3\r\nabc\r\n0\r\n\r\n", false, false},
		{"HTTP/1.1 204 No Content\r\n\r\n", 204, "", true, false},
		{"HTTP/1.1 200 OK\r\n\r\nuntil close", 200, "until close", false, false},
		{"HTTP/1.1 200 OK\nContent-Length: 2\n\nok", 200, "ok", true, false},
		{"HTTP/1.1 100 Continue\r\n\r\n", 0, "", false, true},
		{"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshort", 0, "", false, true},
		{"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxx", 0, "", false, true},
		{"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", 0, "", false, true},
		{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 0, "", false, true},
		{"SMTP 200 OK\r\n\r\n", 0, "", false, true},
		{"", 0, "", false, true},
	} {
		code, body, keep, err := readRawResponse(bufio.NewReader(strings.NewReader(c.in)), nil)
		if (err != nil) != c.bad || (!c.bad && (code != c.code || string(body) != c.body || keep != c.keep)) {
			t.Errorf("%q: %d %q keep %v err %v", c.in, code, body, keep, err)
		}
	}
}

// FuzzReadRawResponse: no input panics, and what this parser accepts as
// Content-Length or chunked, net/http reads the same: status and body.
func FuzzReadRawResponse(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
		"HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 200 OK\r\n\r\nrest",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		code, body, _, err := readRawResponse(bufio.NewReaderSize(bytes.NewReader(in), 256), nil)
		if err != nil {
			return
		}
		if code < 200 || code > 599 {
			t.Fatalf("status %d accepted", code)
		}
		resp, herr := http.ReadResponse(bufio.NewReader(bytes.NewReader(in)), nil)
		if herr != nil {
			return // net/http is stricter about some header forms
		}
		defer resp.Body.Close()
		hb, herr := io.ReadAll(resp.Body)
		if herr != nil {
			return
		}
		if resp.StatusCode != code || !bytes.Equal(hb, body) {
			t.Fatalf("%q: raw %d %q, net/http %d %q", in, code, body, resp.StatusCode, hb)
		}
	})
}

// With one connection and calls due faster than the server answers them,
// --raw's calls queue for the connection: that wait is latency (as the
// server's clients would feel it), not send lag, so a saturated client
// cannot make a find-max step pass. 150 calls due 10 ms apart on a server
// that takes 25 ms each: the last ones wait over 2 s.
func TestRawQueueWaitIsLatency(t *testing.T) {
	t.Parallel()
	s := startMCPHTTP(t, "secret", 25*time.Millisecond)
	rep, err := runMCPHTTP(context.Background(), []string{"--raw", "--raw-conns", "1", "--url", s.url, "--token", "secret",
		"--sessions", "2", "--rate", "100", "--duration", "1500ms", "--timeline", "--max-inflight", "1000"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	st := rep.Steps[0]
	if len(st.Errors) != 0 || st.Acknowledged != st.Issued || st.Issued < 30 {
		t.Fatalf("issued %d, acknowledged %d, errors %v", st.Issued, st.Acknowledged, st.Errors)
	}
	// Served one at a time, call k ends near 25 ms * (k+1) while it was
	// sent at 10 ms * k.
	if min := 15 * float64(st.Issued-1) / 1.5; st.Latency.Max < min {
		t.Errorf("max latency %.1f ms; the queue for the one connection alone is about %.0f ms", st.Latency.Max, 15*float64(st.Issued-1))
	}
	if st.SendLag.P99 >= st.Latency.Max/2 {
		t.Errorf("send lag p99 %.1f ms: the wait for the connection went into the lag (latency max %.1f ms)", st.SendLag.P99, st.Latency.Max)
	}
	// --timeline: every call in one second of the step, and the queue
	// (so the latency) grows second by second.
	var n int64
	for _, sec := range st.Timeline {
		n += int64(sec.Calls)
	}
	if len(st.Timeline) != 2 || n != st.Acknowledged || st.Timeline[1].Max <= st.Timeline[0].Max {
		t.Errorf("timeline %+v for %d calls", st.Timeline, st.Acknowledged)
	}
}
