package dashboard

import (
	"context"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/activitybi/activitybi/internal/card"
	"github.com/activitybi/activitybi/internal/warehouse"
)

//go:embed sql/*.sql
var sqlFS embed.FS

// The statements. Those over claude_stream are ev.sql (the range and scope
// prelude, $1..$3) followed by their own file; they are constants, and
// every value is bound.
var (
	sqlKPIs          = streamSQL("kpis.sql")
	sqlActivity      = streamSQL("activity.sql")
	sqlCostByDay     = streamSQL("cost_by_day.sql")
	sqlCostByModel   = streamSQL("cost_by_model.sql")
	sqlCostByProject = streamSQL("cost_by_project.sql")
	sqlTools         = streamSQL("tools.sql")
	sqlToolCalls     = streamSQL("tool_calls.sql")
	sqlFailures      = streamSQL("failures.sql")
	sqlSources       = streamSQL("sources.sql")
	sqlInsights      = mustSQL("insights.sql")
	sqlTickets       = mustSQL("tickets.sql")
	sqlArtifacts     = mustSQL("artifacts.sql")
	sqlReceived      = mustSQL("received.sql")
)

func mustSQL(name string) string {
	b, err := sqlFS.ReadFile("sql/" + name)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func streamSQL(name string) string { return mustSQL("ev.sql") + mustSQL(name) }

// streamArgs are ev.sql's values followed by a statement's own.
func streamArgs(f Filter, more ...any) []any {
	return append([]any{f.From, f.To, f.Scope}, more...)
}

// query is one statement of a page.
type query struct {
	name string
	sql  string
	args []any
	max  int
	out  **warehouse.Table
}

// runAll runs a page's statements concurrently as customer and fails with
// the first error, naming the statement.
func (d *Dashboard) runAll(ctx context.Context, customer string, qs ...query) error {
	var wg sync.WaitGroup
	errs := make([]error, len(qs))
	for i := range qs {
		wg.Go(func() {
			t, err := d.opts.Warehouse.CustomerQuery(ctx, customer, qs[i].sql, qs[i].args, qs[i].max)
			if err != nil {
				errs[i] = fmt.Errorf("the warehouse could not answer (%s): %w", qs[i].name, err)
				return
			}
			*qs[i].out = t
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// result reads a table's values by column name. A missing column or a
// value of another type reads as the zero value: the statements are ours,
// and the tests pin their columns.
type result struct {
	t   *warehouse.Table
	idx map[string]int
}

func newResult(t *warehouse.Table) result {
	r := result{t: t, idx: map[string]int{}}
	if t == nil {
		r.t = &warehouse.Table{}
	}
	for i, c := range r.t.Columns {
		r.idx[c.Name] = i
	}
	return r
}

func (r result) len() int { return len(r.t.Rows) }

func (r result) val(i int, col string) any {
	j, ok := r.idx[col]
	if !ok || i >= len(r.t.Rows) {
		return nil
	}
	return r.t.Rows[i][j]
}

func (r result) str(i int, col string) string {
	switch v := r.val(i, col).(type) {
	case nil:
		return ""
	case string:
		return v
	default:
		return fmt.Sprint(v)
	}
}

func (r result) int(i int, col string) int64 {
	switch v := r.val(i, col).(type) {
	case int64:
		return v
	case float64:
		return int64(math.Round(v))
	}
	return 0
}

// float returns the value and whether there is one (NULL: false).
func (r result) float(i int, col string) (float64, bool) {
	switch v := r.val(i, col).(type) {
	case int64:
		return float64(v), true
	case float64:
		return v, !math.IsNaN(v)
	}
	return 0, false
}

func (r result) time(i int, col string) time.Time {
	t, _ := r.val(i, col).(time.Time)
	return t
}

func (r result) bool(i int, col string) bool {
	b, _ := r.val(i, col).(bool)
	return b
}

// floats reads a JSON list of numbers (to_json of a list), skipping nulls.
func (r result) floats(i int, col string) []float64 {
	var raw []any
	switch v := r.val(i, col).(type) {
	case []any:
		raw = v
	case string:
		_ = json.Unmarshal([]byte(v), &raw)
	}
	out := make([]float64, 0, len(raw))
	for _, x := range raw {
		switch x := x.(type) {
		case float64:
			out = append(out, x)
		case int64:
			out = append(out, float64(x))
		case json.Number:
			if f, err := x.Float64(); err == nil {
				out = append(out, f)
			}
		}
	}
	return out
}

// cut keeps at most MaxTableRows rows of a result asked for with one more,
// counts the limit when it cut, and says so.
func (d *Dashboard) cut(t *warehouse.Table) (more string) {
	if t == nil {
		return ""
	}
	if len(t.Rows) > MaxTableRows || t.Truncated {
		if len(t.Rows) > MaxTableRows {
			t.Rows = t.Rows[:MaxTableRows]
		}
		d.m.limit("rows")
		return fmt.Sprintf("Showing the first %d rows; there are more (narrow the range or the project to see the rest).", MaxTableRows)
	}
	return ""
}

// jsonText shows a JSON value for people: a string unquoted, anything
// else as compact JSON, clipped.
func jsonText(s string) string {
	var str string
	if err := json.Unmarshal([]byte(s), &str); err == nil {
		return clipRunes(str, 120)
	}
	return clipRunes(s, 120)
}

// chart draws t as the card of spec s (the card package's SVG, as Claude
// gets it from render_card) into sec, or notes why it could not. The
// card's own notes (series or categories left out) go under the chart.
func (d *Dashboard) chart(sec *section, t *warehouse.Table, s card.Spec) {
	if t == nil || len(t.Rows) == 0 {
		return
	}
	alt := s.Title
	c, err := card.Render(t, s, card.Options{Formats: card.FormatSVG, Metrics: d.opts.CardMetrics})
	if err != nil {
		d.log.Warn("dashboard chart failed", "chart", alt, "err", err)
		sec.Note = strings.TrimSpace(sec.Note + " The chart could not be drawn: " + err.Error())
		return
	}
	if c.NoData {
		return
	}
	for _, n := range c.Notes {
		sec.Note = strings.TrimSpace(sec.Note + " " + n)
	}
	sec.Chart = template.URL("data:image/svg+xml;base64," + base64.StdEncoding.EncodeToString(c.SVG))
	sec.ChartAlt = alt
}

// errNoMemory is shown when the core did not wire get_context's source.
var errNoMemory = errors.New("this dashboard was started without memory (get_context) wired in")

func ticketAnchor(id string) string { return "t-" + strings.Map(anchorRune, id) }

func anchorRune(r rune) rune {
	if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
		return r
	}
	return '_'
}
