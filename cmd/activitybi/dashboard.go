package main

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/activitybi/activitybi/internal/card"
	"github.com/activitybi/activitybi/internal/dashboard"
	"github.com/activitybi/activitybi/internal/memory"
	"github.com/activitybi/activitybi/internal/server"
	"github.com/activitybi/activitybi/internal/upload"
	"github.com/activitybi/activitybi/internal/warehouse/duckdb"
)

// newDashboard is the web dashboard at / on the core. On a loopback
// address it shows the configured customer (this machine's user) without a
// login; on any other address it asks for a token and shows the token's
// customer.
func (a *app) newDashboard(db *duckdb.DB, verify func(string) (server.Principal, error), mem *server.Memory,
	up *upload.Uploader, pending func() int, cm *card.Metrics, reg prometheus.Registerer) (*dashboard.Dashboard, error) {
	auth := dashboard.Local(a.cfg.Customer)
	if !loopback(a.cfg.Listen) {
		auth = dashboard.Tokens(func(tok string) (string, error) {
			p, err := verify(tok)
			return p.Customer, err
		})
	}
	maxPending := int64(a.cfg.Spool.MaxPending)
	return dashboard.New(dashboard.Options{
		Warehouse:   db,
		Auth:        auth,
		CardMetrics: cm,
		Memory: func(ctx context.Context, customer, scope string) (*memory.Context, error) {
			c, _, err := mem.Get(ctx, customer, scope)
			return c, err
		},
		Pipeline: func() dashboard.PipelineStatus {
			st := up.Status()
			state := "running"
			switch {
			case !st.Started:
				state = "not started"
			case st.ConsecutiveFails > 0:
				state = "retrying"
			}
			n := int64(pending())
			return dashboard.PipelineStatus{UploaderState: state, SpoolPending: &n, MaxPending: maxPending, BacklogBytes: st.BacklogBytes,
				Segments: st.Segments, Lag: st.LastLag, LastCommit: st.LastCommit, LastError: st.LastError,
				ConsecutiveFailures: st.ConsecutiveFails, Quarantined: st.Quarantined}
		},
		Registry: reg,
		Logger:   a.log,
	})
}

// loopback reports whether a listen address is on this machine only (the
// rule server.CheckListen applies).
func loopback(addr string) bool { return server.CheckListen(addr, false) == nil }
