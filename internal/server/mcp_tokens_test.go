package server

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/activitybi/activitybi/internal/auth"
	"github.com/activitybi/activitybi/internal/spool"
)

// streamWatch is a go-sdk client's HTTP transport that sends a bearer
// token and tells when the client's standalone GET stream opened and
// when its body ended.
type streamWatch struct {
	token          string
	opened, ended  chan struct{}
	openOnce, once sync.Once
}

func newStreamWatch(token string) *streamWatch {
	return &streamWatch{token: token, opened: make(chan struct{}), ended: make(chan struct{})}
}

func (s *streamWatch) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+s.token)
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err == nil && r.Method == http.MethodGet && resp.StatusCode == http.StatusOK {
		first := false
		s.openOnce.Do(func() { first = true })
		if first {
			resp.Body = &endBody{ReadCloser: resp.Body, end: func() { s.once.Do(func() { close(s.ended) }) }}
			close(s.opened)
		}
	}
	return resp, err
}

// connectWatched connects a go-sdk client to baseURL's /mcp with token and
// waits until its GET stream is open; the session is closed at the end of
// the test.
func connectWatched(t *testing.T, baseURL, token string) (*mcp.ClientSession, *streamWatch) {
	t.Helper()
	sw := newStreamWatch(token)
	tr := &mcp.StreamableClientTransport{Endpoint: baseURL + "/mcp", HTTPClient: &http.Client{Transport: sw}}
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "t", Version: "1"}, nil).Connect(context.Background(), tr, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cs.Close() })
	select {
	case <-sw.opened:
	case <-time.After(10 * time.Second):
		t.Fatal("the client's GET stream did not open")
	}
	return cs, sw
}

type endBody struct {
	io.ReadCloser
	end func()
}

func (b *endBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil {
		b.end()
	}
	return n, err
}

// A token revoked as the CLI revokes it (another process's Store writes
// tokens.json), or one that expires, ends what it opened on /mcp within
// tokenCloseBound: the go-sdk client's open GET stream ends, the session
// is closed (a valid token of the same customer gets 404 for it, on the
// fast path's route and the go-sdk's), and the client's next call fails
// with an auth error. Before, the stream and the session outlived the
// token until the client left or the session idled out (30 min).
func TestMCPRefusedTokenEndsItsStreamsAndSessions(t *testing.T) {
	t.Parallel()
	for _, how := range []string{"revoked", "expired"} {
		t.Run(how, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			cli, err := auth.Open(dir) // the CLI's side
			if err != nil {
				t.Fatal(err)
			}
			var expires time.Time
			if how == "expired" {
				expires = time.Now().Add(4 * time.Second)
			}
			tok, info, err := cli.Create("alice", expires, "")
			if err != nil {
				t.Fatal(err)
			}
			other, _, err := cli.Create("alice", time.Time{}, "")
			if err != nil {
				t.Fatal(err)
			}
			core, err := auth.Open(dir) // the core's side, as tokenVerifier wires it
			if err != nil {
				t.Fatal(err)
			}
			b := setupHTTP(t, spool.Options{}, func(o *Options) {
				o.VerifyToken = func(tk string) (Principal, error) {
					tok, err := core.Verify(tk, time.Now())
					if err != nil {
						return Principal{}, err
					}
					return Principal{Customer: tok.Customer, TokenID: tok.ID, Expires: tok.ExpiresAt}, nil
				}
			})
			ctx := context.Background()
			cs, sw := connectWatched(t, b.url, tok)
			call := func() (*mcp.CallToolResult, error) {
				return cs.CallTool(ctx, &mcp.CallToolParams{Name: "log_event", Arguments: map[string]any{"activity": "called_tool"}})
			}
			if res, err := call(); err != nil || res.IsError {
				t.Fatalf("a call with the token: %v %v", err, res)
			}
			sid := cs.ID()

			var from time.Time
			switch how {
			case "revoked":
				from = time.Now()
				if err := cli.Revoke(info.ID); err != nil {
					t.Fatal(err)
				}
			case "expired":
				if time.Now().After(expires) {
					t.Fatal("the token expired before the session was set up; the machine is too slow for this test")
				}
				from = expires
			}
			select {
			case <-sw.ended:
				took := time.Since(from)
				t.Logf("the stream ended %v after the token was %s (bound %v)", took.Round(time.Millisecond), how, tokenCloseBound)
				// The bound, with room for a loaded machine under -race.
				if took > tokenCloseBound+2*time.Second {
					t.Errorf("the stream ended %v after the token was %s; the bound is %v", took, how, tokenCloseBound)
				}
			case <-time.After(time.Until(from) + tokenCloseBound + 10*time.Second):
				t.Fatalf("the GET stream is still open %v after the token was %s", time.Since(from).Round(time.Second), how)
			}

			// The session is closed: another of alice's tokens is told it
			// is gone, on both routes.
			body := logEventBody(`5`, `{"activity":"called_tool"}`)
			deadline := time.Now().Add(5 * time.Second)
			for {
				fast, _, _ := rawMCP(t, b.url, other, sid, body)
				sdk, _, _ := rawMCP(t, b.url, other, sid, body, forceSDK...)
				if fast == http.StatusNotFound && sdk == http.StatusNotFound {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("the session is still served: %d (fast path's route), %d (go-sdk's)", fast, sdk)
				}
				time.Sleep(50 * time.Millisecond)
			}
			// The token itself is refused, saying why.
			if code, _, out := rawMCP(t, b.url, tok, sid, body); code != http.StatusUnauthorized || !strings.Contains(string(out), how) {
				t.Errorf("a request with the %s token: %d %s", how, code, out)
			}
			// The client's next call fails with an auth error.
			if res, err := call(); err == nil || !strings.Contains(err.Error(), "Unauthorized") {
				t.Errorf("a call after the token was %s: %v %v", how, res, err)
			}
			reqs, sess := testutil.ToFloat64(b.srv.tokens.closed.WithLabelValues("request")), testutil.ToFloat64(b.srv.tokens.closed.WithLabelValues("session"))
			if reqs < 1 || sess != 1 {
				t.Errorf("activitybi_mcp_token_closed_total: %v requests, %v sessions; want the stream and the session", reqs, sess)
			}
		})
	}
}

// A session and stream opened with a valid token are left alone by the
// checks.
func TestMCPValidTokenKeepsItsStream(t *testing.T) {
	t.Parallel()
	b := setupHTTP(t, spool.Options{})
	cs, sw := connectWatched(t, b.url, tokA)
	select {
	case <-sw.ended:
		t.Fatal("the stream of a valid token ended")
	case <-time.After(tokenCloseBound + tokenRecheckEvery):
	}
	if res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "log_event", Arguments: map[string]any{"activity": "called_tool"}}); err != nil || res.IsError {
		t.Fatalf("%v %v", err, res)
	}
}
