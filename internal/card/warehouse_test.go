package card

import (
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

	"github.com/activitybi/activitybi/internal/event"
	"github.com/activitybi/activitybi/internal/warehouse"
	"github.com/activitybi/activitybi/internal/warehouse/duckdb"
)

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// TestCardsFromDuckDB renders cards from real query results: events loaded
// into a DuckDB warehouse in a temporary directory, aggregated by SQL run
// through CustomerQuery, so the cards meet the driver's own types (DATE,
// TIMESTAMP, BIGINT, HUGEINT, DOUBLE, DECIMAL, VARCHAR, JSON). Every number
// the test expects is worked out in Go from the events it loaded; bob's
// events must not count.
func TestCardsFromDuckDB(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, err := duckdb.Open(ctx, duckdb.Options{Path: filepath.Join(t.TempDir(), "w.duckdb")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}

	// alice: on each of 5 days, tool i is called (day+1)*(i+1) times at
	// 09:00 + i hours, each call taking 100*(i+1)+day ms and costing
	// 0.01*(i+1) USD. bob: 50 calls of Bash, which alice's cards must not
	// see.
	tools := []string{"Bash", "Read", "Edit"}
	day0 := time.Date(2025, 3, 3, 0, 0, 0, 0, time.UTC)
	var evs []event.Event
	calls := map[string]int{}
	msByDay := make([]int, 5)
	costByDay := make([]float64, 5)
	byHourDay := map[[2]int]int{}
	add := func(customer string, ts time.Time, tool string, ms int, cost float64) {
		rev := -cost
		in := event.Input{TS: &ts, Activity: "called_tool", RevenueImpact: &rev,
			Features: json.RawMessage(fmt.Sprintf(`{"tool":%q,"duration_ms":%d}`, tool, ms))}
		e, err := event.Normalize(in, event.Defaults{Customer: customer, Source: event.SourceMCP, Now: func() time.Time { return ts }})
		if err != nil {
			t.Fatal(err)
		}
		evs = append(evs, e)
	}
	for d := range 5 {
		for i, tool := range tools {
			for k := range (d + 1) * (i + 1) {
				ts := day0.AddDate(0, 0, d).Add(time.Duration(9+i)*time.Hour + time.Duration(k)*time.Second)
				ms, cost := 100*(i+1)+d, 0.01*float64(i+1)
				add("alice", ts, tool, ms, cost)
				calls[tool]++
				msByDay[d] += ms
				costByDay[d] += cost
				byHourDay[[2]int{9 + i, d}]++
			}
		}
	}
	for k := range 50 {
		add("bob", day0.Add(time.Duration(k)*time.Minute), "Bash", 1_000_000, 99)
	}
	if _, err := db.Load(ctx, &warehouse.Batch{Events: evs}); err != nil {
		t.Fatal(err)
	}
	query := func(q string, args ...any) *warehouse.Table {
		t.Helper()
		tbl, err := db.CustomerQuery(ctx, "alice", q, args, 10_000)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return tbl
	}
	render := func(tbl *warehouse.Table, s Spec, wantTypes string) string {
		t.Helper()
		var types []string
		for _, c := range tbl.Columns {
			types = append(types, c.Name+" "+c.Type)
		}
		if got := strings.Join(types, ", "); got != wantTypes {
			t.Fatalf("%s: the driver's types are %s, want %s", s.Kind, got, wantTypes)
		}
		c, err := Render(tbl, s, Options{})
		if err != nil {
			t.Fatalf("%s: %v", s.Kind, err)
		}
		if c.NoData || len(c.SVG) == 0 || len(c.PNG) == 0 {
			t.Fatalf("%s: NoData %v, %d bytes of SVG, %d of PNG", s.Kind, c.NoData, len(c.SVG), len(c.PNG))
		}
		return c.Markdown
	}
	mustContain := func(md string, want ...string) {
		t.Helper()
		for _, w := range want {
			if !strings.Contains(md, w) {
				t.Errorf("the summary lacks %q:\n%s", w, md)
			}
		}
	}

	md := render(query(`SELECT feature_json->>'tool' AS tool, count(*) AS calls
		FROM claude_stream WHERE activity = 'called_tool' GROUP BY 1 ORDER BY calls DESC, tool`),
		Spec{Kind: KindBar, Title: "Calls", X: "tool", Y: []string{"calls"}, Unit: "calls"},
		"tool VARCHAR, calls BIGINT")
	total := calls["Bash"] + calls["Read"] + calls["Edit"]
	mustContain(md,
		fmt.Sprintf("3 categories; total %d calls.", total),
		fmt.Sprintf("Highest: Edit %d calls (%s), Read %d calls (%s), Bash %d calls (%s).",
			calls["Edit"], share(float64(calls["Edit"]), float64(total)),
			calls["Read"], share(float64(calls["Read"]), float64(total)),
			calls["Bash"], share(float64(calls["Bash"]), float64(total))))

	md = render(query(`SELECT CAST(ts AS DATE) AS day,
			SUM(CAST(feature_json->>'duration_ms' AS INTEGER)) AS total_ms,
			-SUM(revenue_impact) AS cost
		FROM claude_stream GROUP BY 1 ORDER BY 1`),
		Spec{Kind: KindLine, Title: "Time in tools", X: "day", Y: []string{"total_ms"}, Unit: "ms"},
		"day DATE, total_ms HUGEINT, cost DOUBLE")
	mustContain(md,
		"2025-03-03 to 2025-03-07.",
		fmt.Sprintf("Total: %s ms at 2025-03-07, %s from the previous point (%s ms)",
			thousands(fmt.Sprint(msByDay[4])), change(float64(msByDay[3]), float64(msByDay[4])), thousands(fmt.Sprint(msByDay[3]))))

	md = render(query(`SELECT date_trunc('day', ts) AS day, feature_json->>'tool' AS tool,
			CAST(-SUM(revenue_impact) AS DECIMAL(10,2)) AS cost
		FROM claude_stream GROUP BY ALL ORDER BY 1, 2`),
		Spec{Kind: KindStackedBar, Title: "Cost", X: "day", Y: []string{"cost"}, Series: "tool", Unit: "USD"},
		"day TIMESTAMP, tool VARCHAR, cost DECIMAL(10,2)")
	grand := 0.0
	for _, c := range costByDay {
		grand += c
	}
	mustContain(md,
		fmt.Sprintf("5 categories, 3 series; total %s.", withUnit(grand, "USD")),
		fmt.Sprintf("Latest, 2025-03-07: %s, %s from 2025-03-06 (%s).", withUnit(costByDay[4], "USD"), change(costByDay[3], costByDay[4]), withUnit(costByDay[3], "USD")))

	md = render(query(`SELECT hour(ts) AS hour, dayname(ts) AS weekday, count(*) AS n
		FROM claude_stream GROUP BY ALL ORDER BY 1, 2`),
		Spec{Kind: KindHeatmap, Title: "When", X: "hour", Series: "weekday", Y: []string{"n"}},
		"hour BIGINT, weekday VARCHAR, n BIGINT")
	// Highest: Edit on the last day (a Friday), at 11:00.
	n := 0
	for _, c := range byHourDay {
		n += c
	}
	mustContain(md, fmt.Sprintf("5 × 3 cells, 15 with a value; total %d.", n), fmt.Sprintf("Highest: Friday, 11 = %d.", byHourDay[[2]int{11, 4}]))

	cut := day0.AddDate(0, 0, 4)
	md = render(query(`SELECT count(*) FILTER (WHERE ts >= ?) AS today, count(*) FILTER (WHERE ts < ? AND ts >= ?) AS yesterday
		FROM claude_stream`, cut, cut, cut.AddDate(0, 0, -1)),
		Spec{Kind: KindKPI, Title: "Calls today", Y: []string{"today"}, Delta: "yesterday"},
		"today BIGINT, yesterday BIGINT")
	today, yesterday := 5*(1+2+3), 4*(1+2+3)
	mustContain(md, fmt.Sprintf("**Calls today**: %d, %s vs previous period (%d).", today, change(float64(yesterday), float64(today)), yesterday))

	md = render(query(`SELECT ts, activity, feature_json, revenue_impact FROM claude_stream ORDER BY ts, activity_id LIMIT 3`),
		Spec{Kind: KindTable, Title: "First calls"},
		"ts TIMESTAMP, activity VARCHAR, feature_json JSON, revenue_impact DOUBLE")
	mustContain(md, "3 rows × 4 columns", "| 2025-03-03 09:00:00 | called_tool | {\"duration_ms\":100,\"tool\":\"Bash\"} | -0.01 |")
}
