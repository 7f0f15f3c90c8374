package server

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/activitybi/activitybi/internal/artifact"
	"github.com/activitybi/activitybi/internal/query"
	"github.com/activitybi/activitybi/internal/spool"
)

// refusingQueries and refusingCards stand for the core's engine and
// renderer: the calls these tests make must never reach them.
type refusingQueries struct{}

var errReached = errors.New("the engine was reached")

func (refusingQueries) Submit(context.Context, string, string, query.Request) (*query.Ticket, error) {
	return nil, errReached
}
func (refusingQueries) Wait(context.Context, string, string, time.Duration, func(*query.Ticket)) (*query.Ticket, error) {
	return nil, errReached
}
func (refusingQueries) Result(context.Context, string, string, int, int) (*query.Page, error) {
	return nil, errReached
}
func (refusingQueries) Cancel(context.Context, string, string) (*query.Ticket, error) {
	return nil, errReached
}
func (refusingQueries) HashKnown(context.Context, string, string) (bool, error) {
	return false, errReached
}
func (refusingQueries) AddInsight(string, string, string) {}

type refusingCards struct{}

func (refusingCards) RenderCard(context.Context, string, string, string, json.RawMessage) (*CardResult, error) {
	return nil, errReached
}
func (refusingCards) Artifact(context.Context, string, string) (*artifact.Meta, []byte, error) {
	return nil, nil, errReached
}

// TestEdgeCallsOverTheSocketLimitSaySo: an edge's submit_query or
// render_card too big for the core's socket gets an answer that says what
// is too big and the limit, not a complaint about the request's customer
// (which the edge did send).
func TestEdgeCallsOverTheSocketLimitSaySo(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	setupHTTP(t, spool.Options{}, func(o *Options) {
		o.Socket = SocketPath(dir)
		o.Queries = refusingQueries{}
		o.Cards = refusingCards{}
	})
	ms, err := NewMCPServer(MCPOptions{Appender: &memAppender{}, Identity: FixedIdentity("alice"),
		Queries: NewSocketQueries(dir), Cards: NewSocketCards(dir)})
	if err != nil {
		t.Fatal(err)
	}
	cs := connectInMemory(t, ms)
	ctx := context.Background()
	big := strings.Repeat("x", 300<<10)
	for _, c := range []struct {
		tool string
		args map[string]any
		want string
	}{
		{"submit_query", map[string]any{"dataset": map[string]any{"cohort": map[string]any{"activity": "started_session",
			"filters": []any{map[string]any{"feature": "f", "op": "eq", "value": big}}}}}, "KiB"},
		{"render_card", map[string]any{"ticket": "t1", "card": map[string]any{"kind": "table", "title": big[:80<<10]}}, "KiB"},
	} {
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: c.tool, Arguments: c.args})
		if err != nil {
			t.Fatal(err)
		}
		msg := text(res)
		if !res.IsError || strings.Contains(msg, "customer") || !strings.Contains(msg, c.want) {
			t.Errorf("%s: %s", c.tool, msg)
		}
	}
}
