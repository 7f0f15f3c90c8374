package server

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"testing"

	"github.com/activitybi/activitybi/internal/cache"
)

// An edge's loader hands a context the core answered stale to its cache as
// a *cache.StaleEntry (served marked stale, cached nowhere), and a fresh
// one as an entry.
func TestCoreContextLoaderStale(t *testing.T) {
	t.Parallel()
	dir, err := os.MkdirTemp("", "ctxl")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	ln, err := net.Listen("unix", SocketPath(dir))
	if err != nil {
		t.Fatal(err)
	}
	var stale atomic.Bool
	stale.Store(true)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		resp := ContextResponse{Context: []byte(`{"text":"old"}`), Version: 3, Source: "l1"}
		if stale.Load() {
			resp.Source, resp.Stale, resp.StaleReason = "l1 (stale)", true, "the warehouse is unavailable"
		}
		writeJSON(w, http.StatusOK, resp)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	load := CoreContextLoader(dir)
	_, err = load(context.Background(), "alice", "")
	var se *cache.StaleEntry
	if !errors.As(err, &se) || se.Entry.Version != 3 || string(se.Entry.Value) != `{"text":"old"}` || se.Err == nil || se.Err.Error() != "the warehouse is unavailable" {
		t.Fatalf("stale answer loaded as %v (%T)", err, err)
	}
	stale.Store(false)
	e, err := load(context.Background(), "alice", "")
	if err != nil || e.Version != 3 {
		t.Fatalf("fresh answer: %+v %v", e, err)
	}
}
