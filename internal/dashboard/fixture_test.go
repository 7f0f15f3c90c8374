package dashboard

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/activitybi/activitybi/internal/artifact"
	"github.com/activitybi/activitybi/internal/card"
	"github.com/activitybi/activitybi/internal/event"
	"github.com/activitybi/activitybi/internal/memory"
	"github.com/activitybi/activitybi/internal/warehouse"
	"github.com/activitybi/activitybi/internal/warehouse/duckdb"
)

var update = flag.Bool("update", false, "rewrite the golden files and the screenshots in testdata/")

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	closeBig()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// The fixture: alice's and bob's histories with the clock at fxNow. Every
// number the tests expect is worked out from the lists below (see the
// comments at each expectation).
var fxNow = time.Date(2026, 3, 31, 12, 0, 0, 0, time.UTC)

type fxEvent struct {
	ts       string
	activity string
	features string
	revenue  float64
}

type fxInsight struct {
	ts, subject, metric, value, hash string
}

func at(s string) time.Time {
	t, err := time.Parse("2006-01-02 15:04", s)
	if err != nil {
		panic(err)
	}
	return t
}

// aliceEvents: 16 events in the last 7 days (sessions a1 in billing and a2
// in website, one event without a session), 3 more on 2026-03-20 (inside
// 30 days, outside 7).
var aliceEvents = []fxEvent{
	{"2026-03-30 09:00", "started_session", `{"session_id":"a1","project":"billing"}`, 0},
	{"2026-03-30 09:01", "submitted_prompt", `{"session_id":"a1"}`, 0},
	{"2026-03-30 09:02", "called_tool", `{"session_id":"a1","tool":"Bash","server":"shell","success":true,"duration_ms":100}`, 0},
	{"2026-03-30 09:03", "called_tool", `{"session_id":"a1","tool":"Bash","server":"shell","success":true,"duration_ms":300}`, 0},
	{"2026-03-30 09:04", "called_tool", `{"session_id":"a1","tool":"Read","server":"fs","success":true,"duration_ms":20}`, 0},
	{"2026-03-30 09:05", "called_tool", `{"session_id":"a1","tool":"Bash","server":"shell","success":false,"duration_ms":900,"error":"exit status 1"}`, 0},
	{"2026-03-30 09:06", "completed_response", `{"session_id":"a1","model":"claude-sonnet-4-5","input_tokens":1200,"output_tokens":300}`, -1.25},
	{"2026-03-30 09:10", "submitted_prompt", `{"session_id":"a1"}`, 0},
	{"2026-03-30 09:11", "completed_response", `{"session_id":"a1","model":"claude-sonnet-4-5","input_tokens":800,"output_tokens":200}`, -0.75},

	{"2026-03-31 08:00", "started_session", `{"session_id":"a2","project":"website"}`, 0},
	{"2026-03-31 08:01", "submitted_prompt", `{"session_id":"a2"}`, 0},
	{"2026-03-31 08:02", "called_tool", `{"session_id":"a2","tool":"Read","server":"fs","success":true,"duration_ms":40}`, 0},
	{"2026-03-31 08:03", "called_tool", `{"session_id":"a2","tool":"WebFetch","server":"fetch","success":false}`, 0},
	{"2026-03-31 08:04", "completed_response", `{"session_id":"a2","model":"claude-haiku-4-5","input_tokens":400,"output_tokens":100}`, -0.10},
	{"2026-03-31 08:05", "completed_response", `{"session_id":"a2","model":"claude-opus-4-1","input_tokens":2000,"output_tokens":500}`, -10.24},

	{"2026-03-29 15:00", "exported_report", `{"format":"csv"}`, 0},

	{"2026-03-20 10:00", "started_session", `{"session_id":"a0","project":"billing"}`, 0},
	{"2026-03-20 10:01", "called_tool", `{"session_id":"a0","tool":"Bash","server":"shell","success":true,"duration_ms":5000}`, 0},
	{"2026-03-20 10:02", "completed_response", `{"session_id":"a0","model":"claude-sonnet-4-5","input_tokens":100,"output_tokens":10}`, -3.00},
}

// bob shares the project name billing and uses his own names everywhere
// else: none of bobMarkers may appear on any page of alice.
var bobEvents = []fxEvent{
	{"2026-03-30 10:00", "started_session", `{"session_id":"b1","project":"billing"}`, 0},
	{"2026-03-30 10:01", "called_tool", `{"session_id":"b1","tool":"SecretTool","server":"bobsrv","success":false,"duration_ms":7777,"error":"bob-secret-error"}`, 0},
	{"2026-03-30 10:02", "completed_response", `{"session_id":"b1","model":"bob-model","input_tokens":9999,"output_tokens":9999}`, -99.99},
	{"2026-03-31 11:00", "submitted_prompt", `{"session_id":"b2","project":"bobproj"}`, 0},
}

var bobMarkers = []string{"bob", "Secret", "99.99", "7,777", "9,999"}

var aliceInsights = []fxInsight{
	{"2026-03-10 10:00", "tool:Bash", "p95_latency_ms", `500`, ""}, // outside 7 days
	{"2026-03-25 10:00", "tool:Bash", "p95_latency_ms", `400`, ""},
	{"2026-03-27 10:00", "tool:Bash", "p95_latency_ms", `450`, ""},
	{"2026-03-30 10:00", "tool:Bash", "p95_latency_ms", `600`, "0123456789abcdef"},
	{"2026-03-28 10:00", "user", "prefers_language", `"go"`, ""},
	{"2026-03-29 10:00", "project:billing", "deploy_cmd", `"make deploy"`, ""},
	{"2026-03-29 11:00", "project:website", "framework", `"hugo"`, ""},
	{"2026-03-30 11:00", "cost", "daily_usd", `1.25`, "fedcba9876543210"},
}

var bobInsights = []fxInsight{
	{"2026-03-30 10:00", "tool:SecretTool", "p95_latency_ms", `7777`, "0123456789abcdef"},
	{"2026-03-30 10:00", "project:billing", "deploy_cmd", `"bob secret deploy"`, ""},
}

// Tickets are stored as the query engine stores them (TicketStore); the
// artifacts through the artifact store (in memory), as render_card does.
var fxTickets = []warehouse.TicketRow{
	{TicketID: "tkt-0001", CustomerID: "alice", QueryHash: "0123456789abcdef", Template: "tool_latency",
		Request: []byte(`{"template":"tool_latency","params":{"days":7}}`), State: "succeeded", Progress: 1, Stage: "done",
		CreatedAt: at("2026-03-30 08:00"), StartedAt: at("2026-03-30 08:00").Add(time.Second),
		FinishedAt: at("2026-03-30 08:00").Add(3500 * time.Millisecond), ExpiresAt: at("2026-04-06 08:00"),
		Rows: 12, Bytes: 2048, Sampled: true, SampleRate: 0.1, Principal: "stdio"},
	{TicketID: "tkt-0002", CustomerID: "alice", QueryHash: "aaaaaaaaaaaaaaaa", Template: "cost_by_model",
		Request: []byte(`{"template":"cost_by_model","params":{"days":30}}`), State: "failed", Progress: 0.5, Stage: "failed",
		Error: "timeout after 30s", CreatedAt: at("2026-03-31 09:00"), StartedAt: at("2026-03-31 09:00"),
		FinishedAt: at("2026-03-31 09:00").Add(30 * time.Second), Principal: "stdio"},
	{TicketID: "tkt-0003", CustomerID: "alice", QueryHash: "bbbbbbbbbbbbbbbb", Template: "top_activities",
		Request: []byte(`{"template":"top_activities"}`), State: "running", Progress: 0.4, Stage: "reading claude_stream",
		CreatedAt: at("2026-03-31 11:00"), StartedAt: at("2026-03-31 11:00").Add(time.Second), Principal: "stdio"},
	{TicketID: "tkt-0000", CustomerID: "alice", QueryHash: "cccccccccccccccc", Template: "session_list",
		Request: []byte(`{"template":"session_list"}`), State: "succeeded", Progress: 1, Stage: "done",
		CreatedAt: at("2026-03-01 08:00"), StartedAt: at("2026-03-01 08:00"), FinishedAt: at("2026-03-01 08:01"), Rows: 1, Bytes: 10, Principal: "stdio"},
	{TicketID: "bob-ticket-secret", CustomerID: "bob", QueryHash: "0123456789abcdef", Template: "bob_template",
		Request: []byte(`{"template":"bob_template"}`), State: "succeeded", Progress: 1,
		CreatedAt: at("2026-03-30 09:00"), StartedAt: at("2026-03-30 09:00"), FinishedAt: at("2026-03-30 09:01"), Rows: 1, Bytes: 1, Principal: "bob-token"},
}

func normalizeEvents(tb testing.TB, customer string, fx []fxEvent) []event.Event {
	tb.Helper()
	out := make([]event.Event, 0, len(fx))
	for i, f := range fx {
		ts := at(f.ts)
		in := event.Input{ActivityID: fmt.Sprintf("%s-%03d", customer, i), TS: &ts,
			Activity: f.activity, Features: json.RawMessage(f.features)}
		if f.revenue != 0 {
			r := f.revenue
			in.RevenueImpact = &r
		}
		// Each event arrives 2 s after its ts.
		e, err := event.Normalize(in, event.Defaults{Customer: customer, Source: event.SourceMCP,
			Now: func() time.Time { return ts.Add(2 * time.Second) }})
		if err != nil {
			tb.Fatalf("event %d: %v", i, err)
		}
		out = append(out, e)
	}
	return out
}

func normalizeInsights(tb testing.TB, customer string, fx []fxInsight) []event.Insight {
	tb.Helper()
	out := make([]event.Insight, 0, len(fx))
	for i, f := range fx {
		ts := at(f.ts)
		x, err := event.NormalizeInsight(event.InsightInput{AtomID: fmt.Sprintf("%s-i%03d", customer, i), TS: &ts,
			Subject: f.subject, Metric: f.metric, Value: json.RawMessage(f.value), ProvenanceQueryHash: f.hash},
			event.Defaults{Customer: customer, Source: event.SourceMCP, Now: func() time.Time { return fxNow }})
		if err != nil {
			tb.Fatalf("insight %d: %v", i, err)
		}
		out = append(out, x)
	}
	return out
}

// fx is the fixture: the warehouse, the artifact store on it, and the
// card alice stored (its id is generated).
type fx struct {
	db    *duckdb.DB
	store *artifact.Store
	card  *artifact.Meta
	// result is the artifact id of tkt-0001's result file.
	result string
}

// replacer turns the fixture's generated values into the placeholders the
// expectations and golden files use, and back with reverse.
func (f *fx) replacer(reverse bool) *strings.Replacer {
	pairs := []string{"{card_id}", f.card.ID, "{card_size}", byteText(f.card.Size), "{result_id}", f.result}
	if reverse {
		for i := 0; i < len(pairs); i += 2 {
			pairs[i], pairs[i+1] = pairs[i+1], pairs[i]
		}
	}
	return strings.NewReplacer(pairs...)
}

// fixture builds the small warehouse in a temporary directory: both
// customers' events and insights through Load, their tickets through
// SaveTickets, a card each through the artifact store (in memory).
func fixture(tb testing.TB) *fx {
	tb.Helper()
	ctx := context.Background()
	db, err := duckdb.Open(ctx, duckdb.Options{Path: filepath.Join(tb.TempDir(), "w.duckdb")})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	if _, err := db.Migrate(ctx); err != nil {
		tb.Fatal(err)
	}
	for _, b := range []*warehouse.Batch{
		{Events: normalizeEvents(tb, "bob", bobEvents), Insights: normalizeInsights(tb, "bob", bobInsights)},
		{Events: normalizeEvents(tb, "alice", aliceEvents), Insights: normalizeInsights(tb, "alice", aliceInsights)},
	} {
		if _, err := db.Load(ctx, b); err != nil {
			tb.Fatal(err)
		}
	}
	clock := at("2026-03-30 08:00").Add(4 * time.Second)
	store, err := artifact.Open(ctx, artifact.Options{URL: "mem://", Index: db, Now: func() time.Time { return clock }})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { store.Close() })
	// alice's card: the Bash latency card as render_card would store it.
	lat := &warehouse.Table{Columns: []warehouse.Column{{Name: "tool", Type: "VARCHAR"}, {Name: "p50_ms", Type: "DOUBLE"}, {Name: "p95_ms", Type: "DOUBLE"}},
		Rows: [][]any{{"Bash @shell", 300.0, 840.0}, {"Read @fs", 30.0, 39.0}}}
	c, err := card.Render(lat, card.Spec{Kind: card.KindBar, Title: "Tool latency", X: "tool", Y: []string{"p50_ms", "p95_ms"}, Unit: "ms"},
		card.Options{Formats: card.FormatSVG})
	if err != nil {
		tb.Fatal(err)
	}
	m, err := store.Put(ctx, "alice", artifact.Meta{ContentType: "image/svg+xml", Kind: "card_svg", Name: "tool-latency.svg"}, bytes.NewReader(c.SVG))
	if err != nil {
		tb.Fatal(err)
	}
	// tkt-0001's result, as the query engine stores it (a second after the
	// card, so that the newest-first list has one order: ids made in the
	// same millisecond order at random).
	clock = clock.Add(time.Second)
	res, err := store.PutResult(ctx, "alice", "tkt-0001", []byte(`{"format":"activitybi-result"}`+"\n"+`["Bash",300]`+"\n"), at("2026-04-06 08:10"))
	if err != nil {
		tb.Fatal(err)
	}
	tickets := append([]warehouse.TicketRow(nil), fxTickets...)
	tickets[0].ResultPath = "artifact:" + res
	if err := db.SaveTickets(ctx, tickets); err != nil {
		tb.Fatal(err)
	}
	clock = at("2026-03-30 09:00")
	if _, err := store.Put(ctx, "bob", artifact.Meta{ContentType: "image/png", Kind: "card_png", Name: "bob-secret.png"}, strings.NewReader("bob")); err != nil {
		tb.Fatal(err)
	}
	return &fx{db: db, store: store, card: m, result: res}
}

// memoryOf serves get_context's contexts from a real memory.Builder on w.
func memoryOf(tb testing.TB, w memory.Querier) MemoryFunc {
	tb.Helper()
	b, err := memory.NewBuilder(memory.Options{Warehouse: w, Now: func() time.Time { return fxNow }})
	if err != nil {
		tb.Fatal(err)
	}
	return func(ctx context.Context, customer, scope string) (*memory.Context, error) {
		c, err := b.Build(ctx, customer, scope)
		if err != nil {
			return nil, err
		}
		c.Version = c.AsOf.UnixMicro()
		return c, nil
	}
}

// fxPipeline is what upload.Status and the spool would say.
func fxPipeline() PipelineStatus {
	pending := int64(1234)
	return PipelineStatus{UploaderState: "running", SpoolPending: &pending, MaxPending: 100_000, BacklogBytes: 3 << 20,
		Segments: 4, Lag: 350 * time.Millisecond, LastCommit: fxNow.Add(-12 * time.Second), Quarantined: 2}
}
