package card

import (
	"fmt"
	"math"
	"time"

	"github.com/activitybi/activitybi/internal/warehouse"
)

// Fixed data for the golden cards: formulas, no randomness, so the files
// only change when the drawing does.

var t0 = time.Date(2025, 3, 3, 0, 0, 0, 0, time.UTC) // a Monday

func cols(spec ...string) []warehouse.Column {
	var out []warehouse.Column
	for i := 0; i < len(spec); i += 2 {
		out = append(out, warehouse.Column{Name: spec[i], Type: spec[i+1]})
	}
	return out
}

// latencyByHour: p95 latency per model, hourly over three days, with a
// daily rhythm and one model getting slower.
func latencyByHour() *warehouse.Table {
	t := &warehouse.Table{Columns: cols("hour", "TIMESTAMP", "model", "VARCHAR", "p95_ms", "DOUBLE")}
	models := []string{"claude-sonnet-4-5", "claude-opus-4-1", "claude-haiku-4-5"}
	base := []float64{2400, 5200, 900}
	for h := range 72 {
		for i, m := range models {
			day := math.Sin(float64(h%24-6) / 24 * 2 * math.Pi)
			v := base[i] * (1 + 0.25*day)
			if i == 0 {
				v *= 1 + float64(h)/72*0.4
			}
			t.Rows = append(t.Rows, []any{t0.Add(time.Duration(h) * time.Hour), m, math.Round(v)})
		}
	}
	return t
}

// eventsByDay: one series of daily counts over 30 days (DATE, BIGINT)
// with a gap (NULL) on one day.
func eventsByDay() *warehouse.Table {
	t := &warehouse.Table{Columns: cols("day", "DATE", "events", "BIGINT")}
	for d := range 30 {
		var v any = int64(1200 + 40*d + 300*((d*7)%5) - 250*b2i(d%7 >= 5))
		if d == 17 {
			v = nil
		}
		t.Rows = append(t.Rows, []any{t0.AddDate(0, 0, d), v})
	}
	return t
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// callsByTool: tool call counts, most used first (as ORDER BY would give).
func callsByTool() *warehouse.Table {
	t := &warehouse.Table{Columns: cols("tool", "VARCHAR", "calls", "BIGINT")}
	tools := []string{"Bash", "Read", "Edit", "Grep", "Glob", "Write", "WebFetch", "TodoWrite", "Task", "WebSearch", "NotebookEdit", "mcp__activitybi__log_event"}
	for i, name := range tools {
		t.Rows = append(t.Rows, []any{name, int64(4200 / (i + 1))})
	}
	return t
}

// costByDayModel: daily cost per model over two weeks (stacked).
func costByDayModel() *warehouse.Table {
	t := &warehouse.Table{Columns: cols("day", "DATE", "model", "VARCHAR", "cost_usd", "DECIMAL(18,4)")}
	models := []string{"claude-sonnet-4-5", "claude-opus-4-1", "claude-haiku-4-5"}
	for d := range 14 {
		for i, m := range models {
			v := []float64{4.2, 9.5, 0.6}[i] * (1 + 0.3*math.Sin(float64(d+i))) * (1 + float64(d)/20)
			t.Rows = append(t.Rows, []any{t0.AddDate(0, 0, d), m, math.Round(v*100) / 100})
		}
	}
	return t
}

// sessions: a small table of mixed types.
func sessions() *warehouse.Table {
	t := &warehouse.Table{Columns: cols("session_id", "VARCHAR", "started", "TIMESTAMP", "events", "BIGINT", "cost_usd", "DOUBLE", "top_tool", "VARCHAR", "project", "VARCHAR")}
	for i := range 8 {
		t.Rows = append(t.Rows, []any{
			fmt.Sprintf("01JN%02dX7Q2M", i*7+3),
			t0.Add(time.Duration(i*5+1)*time.Hour + time.Duration(i*13)*time.Minute),
			int64(40 + i*i*17),
			float64(int64(150+i*i*97)) / 100,
			[]string{"Bash", "Read", "Edit", "Grep"}[i%4],
			[]string{"activitybi", "docs | site", "infra/terraform", "activitybi"}[i%4],
		})
	}
	t.Rows[5][3] = nil
	return t
}

// weekCost: a KPI with its previous period in a column.
func weekCost() *warehouse.Table {
	return &warehouse.Table{
		Columns: cols("cost_usd", "DOUBLE", "prev_cost_usd", "DOUBLE"),
		Rows:    [][]any{{184.37, 152.9}},
	}
}

// dailyActive: a KPI over days (compares last with first, sparkline).
func dailyActive() *warehouse.Table {
	t := &warehouse.Table{Columns: cols("day", "DATE", "sessions", "BIGINT")}
	for d := range 14 {
		t.Rows = append(t.Rows, []any{t0.AddDate(0, 0, d), int64(30 + d*2 + (d*5)%7 - 6*b2i(d%7 >= 5))})
	}
	return t
}

// activityGrid: events by hour of day and weekday.
func activityGrid() *warehouse.Table {
	t := &warehouse.Table{Columns: cols("hour", "BIGINT", "weekday", "VARCHAR", "events", "BIGINT")}
	days := []string{"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"}
	for di, d := range days {
		for h := range 24 {
			if di == 6 && h < 6 {
				continue // no rows: cells stay grey
			}
			work := 0.0
			if h >= 9 && h <= 18 && di < 5 {
				work = 1
			}
			v := 5 + 180*work*math.Sin(float64(h-8)/11*math.Pi) + float64(h%5*3) + float64(di)
			t.Rows = append(t.Rows, []any{int64(h), d, int64(math.Max(0, math.Round(v)))})
		}
	}
	return t
}

// manyCategories: 75 categories with long names, for the category cap and
// turned labels.
func manyCategories() *warehouse.Table {
	t := &warehouse.Table{Columns: cols("endpoint", "VARCHAR", "requests", "BIGINT")}
	for i := range 75 {
		t.Rows = append(t.Rows, []any{fmt.Sprintf("/v1/resource_%02d/items", i), int64(9000 - i*97)})
	}
	return t
}

// longLine: 2,000 minutes of one series: more points than DefaultMaxPoints.
func longLine() *warehouse.Table {
	t := &warehouse.Table{Columns: cols("minute", "TIMESTAMP", "rps", "DOUBLE")}
	for i := range 2000 {
		t.Rows = append(t.Rows, []any{t0.Add(time.Duration(i) * time.Minute), 50 + 20*math.Sin(float64(i)/60) + float64(i%7)})
	}
	return t
}

// latencyGrid: a small heatmap with decimals, so values fit in the cells.
func latencyGrid() *warehouse.Table {
	t := &warehouse.Table{Columns: cols("weekday", "VARCHAR", "model", "VARCHAR", "p50_s", "DOUBLE")}
	days := []string{"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"}
	models := []string{"claude-sonnet-4-5", "claude-opus-4-1", "claude-haiku-4-5"}
	for mi, m := range models {
		for di, d := range days {
			v := []float64{2.1, 4.8, 0.7}[mi] * (1 + 0.15*math.Cos(float64(di)))
			t.Rows = append(t.Rows, []any{d, m, math.Round(v*100) / 100})
		}
	}
	return t
}

// eightProjects: eight series with long names, for a small card's legend.
func eightProjects() *warehouse.Table {
	t := &warehouse.Table{Columns: cols("week", "DATE", "project", "VARCHAR", "sessions", "BIGINT")}
	for w := range 6 {
		for p := range 8 {
			t.Rows = append(t.Rows, []any{t0.AddDate(0, 0, 7*w), fmt.Sprintf("project-with-a-long-name-%d", p), int64(10 + p*3 + w*(p%3))})
		}
	}
	return t
}
