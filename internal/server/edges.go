package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"time"
)

// Edge attachment: every `activitybi mcp` process holds one long request
// open on the core's socket (GET /v1/edges/attach). The core lists them in
// status, and a core started by an edge exits after IdleExit with none
// attached. The stream carries one line at a time:
//
//	hello <core pid>     first, when attached
//	ping                 every attachPing, so either side sees the other die
//	inv <customer>       that customer's context changed: drop it from the
//	                     edge's cache (sent only to that customer's edges)
//	bye <reason>         the core is stopping: "stop" (activitybi stop),
//	                     "idle", "signal" or "error"
const attachPing = 15 * time.Second

// EdgeInfo describes one attached edge.
type EdgeInfo struct {
	ID       int64     `json:"id"`
	PID      int       `json:"pid"`
	Client   string    `json:"client,omitempty"` // MCP client name and version, when known
	Customer string    `json:"customer"`
	Remote   string    `json:"remote,omitempty"` // set for an edge shipping to a remote server
	Since    time.Time `json:"since"`
}

// edges is the registry of attached edges.
type edges struct {
	mu       sync.Mutex
	next     int64
	m        map[int64]EdgeInfo
	notify   map[int64]chan string // invalidation lines per edge
	zeroAt   time.Time             // when the count last became zero (or the core started)
	stopping chan struct{}
	reason   string
	once     sync.Once
	changed  chan struct{} // poked on every attach and detach (buffer 1)
}

func newEdges(now time.Time) *edges {
	return &edges{m: map[int64]EdgeInfo{}, notify: map[int64]chan string{}, zeroAt: now, stopping: make(chan struct{}), changed: make(chan struct{}, 1)}
}

// notifyBuffer is how many invalidations may wait for one edge; past it
// they are dropped (and counted): the edge's cache TTL bounds the staleness.
const notifyBuffer = 256

func (e *edges) add(info EdgeInfo) (int64, chan string) {
	ch := make(chan string, notifyBuffer)
	e.mu.Lock()
	e.next++
	info.ID = e.next
	e.m[info.ID] = info
	e.notify[info.ID] = ch
	e.mu.Unlock()
	e.poke()
	return info.ID, ch
}

// invalidate queues "inv <customer>" for every edge of that customer and
// returns how many were dropped because an edge's queue was full.
func (e *edges) invalidate(customer string) (dropped int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for id, info := range e.m {
		if info.Customer != customer {
			continue
		}
		select {
		case e.notify[id] <- customer:
		default:
			dropped++
		}
	}
	return dropped
}

func (e *edges) remove(id int64, now time.Time) {
	e.mu.Lock()
	delete(e.m, id)
	delete(e.notify, id)
	if len(e.m) == 0 {
		e.zeroAt = now
	}
	e.mu.Unlock()
	e.poke()
}

func (e *edges) poke() {
	select {
	case e.changed <- struct{}{}:
	default:
	}
}

// idleSince returns when the core became edgeless, or zero while edges are
// attached.
func (e *edges) idleSince() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.m) > 0 {
		return time.Time{}
	}
	return e.zeroAt
}

func (e *edges) list() []EdgeInfo {
	e.mu.Lock()
	out := make([]EdgeInfo, 0, len(e.m))
	for _, v := range e.m {
		out = append(out, v)
	}
	e.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// stop tells every attached edge why the core is going away.
func (e *edges) stop(reason string) {
	e.once.Do(func() {
		e.mu.Lock()
		e.reason = reason
		e.mu.Unlock()
		close(e.stopping)
	})
}

func (e *edges) stopReason() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.reason
}

// attach serves GET /v1/edges/attach on the socket.
func (s *Server) attach(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	pid, _ := strconv.Atoi(q.Get("pid"))
	info := EdgeInfo{PID: pid, Client: q.Get("client"), Customer: q.Get("customer"), Remote: q.Get("remote"), Since: s.opts.now().UTC()}
	fl, ok := w.(http.Flusher)
	if !ok {
		writeJSON(w, http.StatusInternalServerError, errBody("streaming unsupported"))
		return
	}
	select {
	case <-s.edges.stopping:
		writeJSON(w, http.StatusServiceUnavailable, errBody("the core is stopping: "+s.edges.stopReason()))
		return
	default:
	}
	id, notify := s.edges.add(info)
	defer s.edges.remove(id, s.opts.now())
	s.log.Info("edge attached", "pid", info.PID, "client", info.Client, "customer", info.Customer)
	defer s.log.Info("edge detached", "pid", info.PID)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	fmt.Fprintf(w, "hello %d\n", s.pid)
	fl.Flush()
	t := time.NewTicker(attachPing)
	defer t.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-s.edges.stopping:
			fmt.Fprintf(w, "bye %s\n", s.edges.stopReason())
			fl.Flush()
			return
		case <-t.C:
			if _, err := fmt.Fprint(w, "ping\n"); err != nil {
				return
			}
			fl.Flush()
		case c := <-notify:
			if _, err := fmt.Fprintf(w, "inv %s\n", c); err != nil {
				return
			}
			fl.Flush()
		}
	}
}

// maxEdgeReport bounds a POST /v1/edges/metrics body.
const maxEdgeReport = 16 << 20

// edgeMetrics serves POST /v1/edges/metrics on the socket.
func (s *Server) edgeMetrics(w http.ResponseWriter, r *http.Request) {
	var rep edgeReport
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxEdgeReport)).Decode(&rep); err != nil {
		writeJSON(w, http.StatusBadRequest, errBody("bad report: "+err.Error()))
		return
	}
	if s.opts.ToolMetrics != nil {
		s.opts.ToolMetrics.record(&rep.EdgeReport)
	}
	if rep.Cache != nil && s.opts.Memory != nil && s.opts.Memory.Reported != nil {
		if err := s.opts.Memory.Reported.Add(*rep.Cache); err != nil {
			s.log.Warn("edge cache report refused", "pid", rep.PID, "err", err)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"recorded": len(rep.Calls)})
}

// watchIdle calls Shutdown("idle") once no edge has been attached for
// IdleExit. It returns when done is closed.
func (s *Server) watchIdle(done <-chan struct{}) {
	if s.opts.IdleExit <= 0 || s.opts.Shutdown == nil {
		return
	}
	check := s.opts.IdleExit / 10
	if check > 10*time.Second {
		check = 10 * time.Second
	}
	if check < 10*time.Millisecond {
		check = 10 * time.Millisecond
	}
	t := time.NewTicker(check)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-s.edges.changed:
		case <-t.C:
		}
		if since := s.edges.idleSince(); !since.IsZero() && s.opts.now().Sub(since) >= s.opts.IdleExit {
			s.log.Info("no edge attached; stopping the idle core", "idle_exit", s.opts.IdleExit)
			s.opts.Shutdown("idle")
			return
		}
	}
}

// InvalidateEdges tells the attached edges of customer that its context
// changed (a new insight was committed), so their caches drop it.
func (s *Server) InvalidateEdges(customer string) {
	if n := s.edges.invalidate(customer); n > 0 {
		s.log.Warn("edge invalidation queue full; those edges serve their cached context until it expires", "dropped", n)
	}
}
