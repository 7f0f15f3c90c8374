package server

// What a bearer token opened on /mcp ends when the token stops being
// accepted. The bearer middleware checks the token on every request, but
// a request can outlive its check: the go-sdk's standalone GET stream is
// open for as long as the session, a POST answered as an SSE stream for
// as long as its tool runs, and the session itself lives on (its id
// works with any token of the same customer) until it is deleted or idle
// for mcpSessionTimeout. So the tokens of the requests in flight, and of
// the sessions they opened, are checked again every tokenRecheckEvery; a
// token refused (revoked, expired, or the token file unreadable: fail
// closed) ends its requests (their contexts are cancelled: a GET stream
// ends, a POST stops waiting for its answer) and closes the sessions it
// opened (mcp.ServerSession.Close: the go-sdk answers 404 for them from
// then on, and the fast path forgets them first). The token file is read
// again at most every auth.ReloadInterval (250 ms), so a revocation by
// `activitybi token revoke` in another process, or an expiry, ends what
// the token opened within tokenCloseBound.
//
// Requests the fast path answers (log_event) are not tracked: they last
// microseconds, and the middleware checked their token.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/prometheus/client_golang/prometheus"
)

const (
	// tokenRecheckEvery is how often the tokens of live /mcp requests
	// and sessions are verified again.
	tokenRecheckEvery = time.Second
	// tokenCloseBound is the documented bound from a revocation (or an
	// expiry) to the end of what the token opened: a check, plus a token
	// file read up to auth.ReloadInterval old at that check.
	tokenCloseBound = 2 * tokenRecheckEvery
	// tokenSweepEvery is how often sessions the go-sdk closed by itself
	// (DELETE, idle timeout) are dropped from the guard's table.
	tokenSweepEvery = 10 * time.Second
)

// errTokenRefused is the cause of a request context cancelled because its
// token is no longer accepted.
var errTokenRefused = errors.New("the bearer token is no longer accepted")

// tokenGuard tracks which token each live /mcp request and session came
// with, and ends them when the token is refused.
type tokenGuard struct {
	verify func(string) (Principal, error)
	ms     *mcp.Server
	// forget drops a session from the fast path's table (set once, before
	// the first request).
	forget func(sid string)
	log    *slog.Logger
	closed *prometheus.CounterVec

	mu        sync.Mutex
	reqs      map[*guardedReq]string    // request -> its token
	sessions  map[string]guardedSession // session id -> what opened it
	lastSweep time.Time
}

type guardedReq struct{ cancel context.CancelCauseFunc }

type guardedSession struct {
	token string
	added time.Time
}

func newTokenGuard(verify func(string) (Principal, error), ms *mcp.Server, log *slog.Logger, reg prometheus.Registerer) (*tokenGuard, error) {
	g := &tokenGuard{verify: verify, ms: ms, log: log, reqs: map[*guardedReq]string{}, sessions: map[string]guardedSession{},
		closed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "activitybi_mcp_token_closed_total",
			Help: "Requests in flight and sessions on /mcp ended because their bearer token was no longer accepted (revoked, expired, or the token file unreadable), by what (request, session)."},
			[]string{"what"})}
	if err := reg.Register(g.closed); err != nil {
		return nil, err
	}
	return g, nil
}

// wrap tracks every request next serves (after the bearer middleware) by
// its token, and a session an initialize opens by the token it came with.
func (g *tokenGuard) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok := bearerToken(r)
		if tok == "" { // not after the middleware: nothing to watch
			next.ServeHTTP(w, r)
			return
		}
		ctx, cancel := context.WithCancelCause(r.Context())
		gr := &guardedReq{cancel: cancel}
		g.mu.Lock()
		g.reqs[gr] = tok
		g.mu.Unlock()
		defer func() {
			g.mu.Lock()
			delete(g.reqs, gr)
			g.mu.Unlock()
			cancel(nil)
		}()
		if r.Method == http.MethodPost && r.Header.Get(hdrSessionID) == "" {
			w = &observeWriter{ResponseWriter: w, onHeader: func(code int, h http.Header) {
				if sid := h.Get(hdrSessionID); code == http.StatusOK && sid != "" {
					g.mu.Lock()
					g.sessions[sid] = guardedSession{token: tok, added: time.Now()}
					g.mu.Unlock()
				}
			}}
		}
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// bearerToken is the token of r's Authorization header, read as the
// go-sdk's middleware reads it.
func bearerToken(r *http.Request) string {
	f := strings.Fields(r.Header.Get("Authorization"))
	if len(f) != 2 || !strings.EqualFold(f[0], "bearer") {
		return ""
	}
	return f[1]
}

// run checks the tokens every tokenRecheckEvery until done is closed.
func (g *tokenGuard) run(done <-chan struct{}) {
	t := time.NewTicker(tokenRecheckEvery)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case now := <-t.C:
			g.check(now)
		}
	}
}

// check verifies every token in use once and ends what the refused ones
// opened.
func (g *tokenGuard) check(now time.Time) {
	g.sweep(now)
	g.mu.Lock()
	toks := map[string]bool{}
	for _, tok := range g.reqs {
		toks[tok] = true
	}
	for _, s := range g.sessions {
		toks[s.token] = true
	}
	g.mu.Unlock()
	refused := map[string]error{}
	for tok := range toks {
		if _, err := g.verify(tok); err != nil {
			refused[tok] = err
		}
	}
	if len(refused) == 0 {
		return
	}
	var cancels []func()
	sids := map[string]bool{}
	g.mu.Lock()
	for gr, tok := range g.reqs {
		if err := refused[tok]; err != nil {
			cause := fmt.Errorf("%w: %v", errTokenRefused, err)
			cancels = append(cancels, func() { gr.cancel(cause) })
			delete(g.reqs, gr) // cancelled once; its handler's defer finds it gone
		}
	}
	for sid, s := range g.sessions {
		if refused[s.token] != nil {
			sids[sid] = true
			delete(g.sessions, sid)
		}
	}
	g.mu.Unlock()
	for _, err := range refused {
		// The error names the token's id and customer, never the token.
		g.log.Info("mcp: a bearer token is no longer accepted; ending its streams and sessions", "reason", err)
	}
	for sid := range sids {
		if g.forget != nil {
			g.forget(sid) // before the go-sdk closes it: no call answered here after
		}
	}
	for _, c := range cancels {
		c()
	}
	g.closed.WithLabelValues("request").Add(float64(len(cancels)))
	if len(sids) == 0 {
		return
	}
	n := 0
	for ss := range g.ms.Sessions() {
		if sids[ss.ID()] {
			n++
			// Close waits for the session's tool calls to return; the
			// check goes on meanwhile. The fast path forgets the session
			// again once it is closed: an initialize answered just before
			// the check may have put it back in its table meanwhile.
			go func(sid string) {
				ss.Close()
				if g.forget != nil {
					g.forget(sid)
				}
			}(ss.ID())
		}
	}
	g.closed.WithLabelValues("session").Add(float64(n))
}

// sweep drops, every tokenSweepEvery, the sessions the go-sdk no longer
// holds (deleted, timed out).
func (g *tokenGuard) sweep(now time.Time) {
	g.mu.Lock()
	due := now.Sub(g.lastSweep) >= tokenSweepEvery && len(g.sessions) > 0
	if due {
		g.lastSweep = now
	}
	g.mu.Unlock()
	if !due {
		return
	}
	read := time.Now()
	live := liveSessions(g.ms)
	g.mu.Lock()
	defer g.mu.Unlock()
	for sid, s := range g.sessions {
		// A session added after Sessions() was read is not in live yet.
		if !live[sid] && s.added.Before(read) {
			delete(g.sessions, sid)
		}
	}
}
