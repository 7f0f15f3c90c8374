package memory

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/activitybi/activitybi/internal/warehouse"
)

// The statements, one file each, with their parameters documented at the
// top. Each runs through Querier.CustomerQuery with bound values (nothing is
// ever spliced into the text, so the text is a constant and the driver's
// check of it is cached), is bounded by LIMITs and by maxRows, and is
// written for DuckDB.
var (
	//go:embed sql/events.sql
	eventsSQL string
	//go:embed sql/insights.sql
	insightsSQL string
	//go:embed sql/scopes.sql
	scopesSQL string
	//go:embed sql/mentions.sql
	mentionsSQL string
)

// eventsResult is events.sql's one row, decoded.
type eventsResult struct {
	eventsRead int
	readFrom   time.Time
	// scopeSessions counts the sessions read in which an event names the
	// scope.
	scopeSessions int
	sessions      []Session
	tools         []ToolStat
	failures      []Failure
}

func (r *eventsResult) capped(maxEvents int) bool { return r.eventsRead >= maxEvents }

// events runs events.sql, reading events since readSince; tool statistics
// start at windowStart.
func (b *Builder) events(ctx context.Context, customer, scope string, readSince, windowStart time.Time) (*eventsResult, error) {
	o := b.opts
	t, err := o.Warehouse.CustomerQuery(ctx, customer, eventsSQL, []any{
		readSince, int64(o.MaxEvents), windowStart, o.SessionGap.Microseconds(), scope,
		int64(o.RecentSessions), int64(o.MaxTools), int64(o.MaxFailures),
	}, 1+o.RecentSessions+o.MaxTools+o.MaxFailures)
	if err != nil {
		return nil, fmt.Errorf("events: %w", err)
	}
	r := &eventsResult{}
	var failIDs []string
	for _, raw := range t.Rows {
		row, err := columns(t.Columns, raw, "kind", "t1", "t2", "n1", "n2", "x1", "x2", "s1", "s2", "s3", "s4", "s5", "m1", "m2")
		if err != nil {
			return nil, fmt.Errorf("events: %w", err)
		}
		switch toString(row[0]) {
		case "read":
			r.eventsRead, r.readFrom, r.scopeSessions = toInt(row[3]), toTime(row[1]), toInt(row[4])
		case "session":
			s := Session{
				ID: toString(row[7]), Start: toTime(row[1]), End: toTime(row[2]),
				Events: toInt(row[3]), Failures: toInt(row[4]), CostUSD: roundCost(toFloat(row[5])),
				Place: toString(row[8]), Activities: []ActivityCount{}, key: toString(row[9]),
			}
			for _, a := range ranked(row[12], maxSessionActivities) {
				s.Activities = append(s.Activities, ActivityCount{Activity: a.name, Count: a.n})
			}
			for _, tl := range ranked(row[13], maxSessionTools) {
				s.Tools = append(s.Tools, tl.name)
			}
			r.sessions = append(r.sessions, s)
		case "tool":
			r.tools = append(r.tools, ToolStat{
				Tool: toString(row[7]), Server: toString(row[8]),
				Calls: toInt(row[3]), Failures: toInt(row[4]),
				P50Ms: roundMs(row[5]), P95Ms: roundMs(row[6]), LastUsed: toTime(row[1]),
			})
		case "failure":
			r.failures = append(r.failures, Failure{
				TS: toTime(row[1]), Tool: toString(row[7]), Server: toString(row[8]),
				Session: toString(row[9]), Error: toString(row[10]),
			})
			failIDs = append(failIDs, toString(row[11]))
		default:
			return nil, fmt.Errorf("events: unknown row kind %v", row[0])
		}
	}
	// The statement's order, restored (UNION ALL keeps none).
	sort.Slice(r.sessions, func(i, j int) bool {
		a, b := r.sessions[i], r.sessions[j]
		if !a.End.Equal(b.End) {
			return a.End.After(b.End)
		}
		return a.key > b.key
	})
	sort.Slice(r.tools, func(i, j int) bool {
		a, b := r.tools[i], r.tools[j]
		if a.Calls != b.Calls {
			return a.Calls > b.Calls
		}
		if a.Tool != b.Tool {
			return a.Tool < b.Tool
		}
		return a.Server < b.Server
	})
	idx := make([]int, len(r.failures))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(i, j int) bool {
		a, b := r.failures[idx[i]], r.failures[idx[j]]
		if !a.TS.Equal(b.TS) {
			return a.TS.After(b.TS)
		}
		return failIDs[idx[i]] > failIDs[idx[j]]
	})
	fs := make([]Failure, len(idx))
	for i, k := range idx {
		fs[i] = r.failures[k]
	}
	r.failures = fs
	return r, nil
}

// Bounds of a session's lists.
const (
	maxSessionActivities = 5
	maxSessionTools      = 10
)

type rankedName struct {
	name string
	n    int
}

// ranked returns the entries of a histogram (a list of {key, value}), most
// frequent first, ties by name, at most max.
func ranked(v any, max int) []rankedName {
	l := toList(v)
	out := make([]rankedName, 0, len(l))
	for _, e := range l {
		m := toMap(e)
		out = append(out, rankedName{toString(m["key"]), toInt(m["value"])})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].n != out[j].n {
			return out[i].n > out[j].n
		}
		return out[i].name < out[j].name
	})
	if len(out) > max {
		out = out[:max]
	}
	return out
}

// roundMs keeps a latency percentile to the microsecond.
func roundMs(v any) *float64 {
	if v == nil {
		return nil
	}
	f := math.Round(toFloat(v)*1000) / 1000
	return &f
}

// fill puts the events' part into c.
func (r *eventsResult) fill(c *Context, o Options, readSince time.Time) {
	c.Coverage.Events = r.eventsRead
	c.Coverage.From = r.readFrom
	c.Coverage.Capped = r.capped(o.MaxEvents)
	for i := range r.sessions {
		s := &r.sessions[i]
		// The session holding the earliest event read may have begun
		// before it when the read was cut: by MaxEvents, or by the
		// window's start less than a gap before the session.
		cutByWindow := readSince.After(time.Unix(0, 0))
		if r.eventsRead > 0 && s.Start.Equal(r.readFrom) && (c.Coverage.Capped ||
			cutByWindow && s.Start.Sub(readSince) <= o.SessionGap) {
			s.Partial = true
		}
	}
	c.Sessions = append(c.Sessions, r.sessions...)
	c.Tools = append(c.Tools, r.tools...)
	c.Failures = append(c.Failures, r.failures...)
}

// insightsResult is insights.sql's rows, decoded.
type insightsResult struct {
	facts      []Fact
	insights   []InsightSummary
	scopeAtoms int
}

func (b *Builder) insights(ctx context.Context, customer, scope string, windowStart time.Time) (*insightsResult, error) {
	o := b.opts
	t, err := o.Warehouse.CustomerQuery(ctx, customer, insightsSQL,
		[]any{scope, windowStart, int64(o.MaxFacts), int64(o.MaxInsights)}, o.MaxFacts+o.MaxInsights)
	if err != nil {
		return nil, fmt.Errorf("insights: %w", err)
	}
	r := &insightsResult{}
	for _, raw := range t.Rows {
		row, err := columns(t.Columns, raw, "subject", "metric", "fact", "value", "ts", "n",
			"first_num", "first_ts", "last_num", "points", "scope_subjects")
		if err != nil {
			return nil, fmt.Errorf("insights: %w", err)
		}
		r.scopeAtoms = toInt(row[10])
		value := json.RawMessage(toString(row[3]))
		if !json.Valid(value) {
			return nil, fmt.Errorf("insights: %s %s: stored value is not JSON", toString(row[0]), toString(row[1]))
		}
		if b, _ := row[2].(bool); b {
			r.facts = append(r.facts, Fact{
				Subject: toString(row[0]), Metric: toString(row[1]), Value: value, TS: toTime(row[4]),
			})
			continue
		}
		s := InsightSummary{
			Subject: toString(row[0]), Metric: toString(row[1]), Value: value,
			TS: toTime(row[4]), Count: toInt(row[5]),
		}
		if points := toInt(row[9]); points >= 2 && isJSONNumber(value) && row[6] != nil && row[8] != nil {
			s.Trend = newTrend(toTime(row[7]), toFloat(row[6]), toFloat(row[8]), points)
		}
		r.insights = append(r.insights, s)
	}
	return r, nil
}

// fill puts the insights' part into c. Facts are grouped by subject (user
// first, then projects by name), most recent first within a subject;
// insights stay most recently updated first.
func (r *insightsResult) fill(c *Context) {
	sort.SliceStable(r.facts, func(i, j int) bool {
		a, b := r.facts[i], r.facts[j]
		if a.Subject != b.Subject {
			if a.Subject == "user" || b.Subject == "user" {
				return a.Subject == "user"
			}
			return a.Subject < b.Subject
		}
		return false // already most recent first
	})
	c.Facts = append(c.Facts, r.facts...)
	c.Insights = append(c.Insights, r.insights...)
}

func newTrend(since time.Time, first, last float64, points int) *Trend {
	t := &Trend{Since: since, First: first, Last: last, Change: last - first, Points: points, Direction: TrendFlat}
	if tol := FlatTolerance * math.Max(math.Abs(first), math.Abs(last)); math.Abs(t.Change) > tol {
		t.Direction = TrendUp
		if t.Change < 0 {
			t.Direction = TrendDown
		}
	}
	return t
}

func isJSONNumber(v json.RawMessage) bool {
	return len(v) > 0 && (v[0] == '-' || v[0] >= '0' && v[0] <= '9')
}

// roundCost keeps costs to 1e-6 USD, so sums of floats read back stably.
func roundCost(f float64) float64 { return math.Round(f*1e6) / 1e6 }

// columns returns row's values for the named columns, in that order, and an
// error naming a missing one: a statement and its decoder must agree.
func columns(cols []warehouse.Column, row []any, names ...string) ([]any, error) {
	out := make([]any, len(names))
	for i, n := range names {
		j := -1
		for k, c := range cols {
			if strings.EqualFold(c.Name, n) {
				j = k
				break
			}
		}
		if j < 0 || j >= len(row) {
			return nil, fmt.Errorf("result has no column %s", n)
		}
		out[i] = row[j]
	}
	return out, nil
}

// Decoding of Table values (string, int64, float64, bool, time.Time, nil,
// []any, map[string]any). A value of an unexpected type decodes as the
// zero value: the statements fix the types, so this only guards against a
// driver's change of representation.

func toString(v any) string {
	s, _ := v.(string)
	return s
}

func toInt(v any) int {
	switch v := v.(type) {
	case int64:
		return int(v)
	case float64:
		return int(v)
	}
	return 0
}

func toFloat(v any) float64 {
	switch v := v.(type) {
	case float64:
		return v
	case int64:
		return float64(v)
	}
	return 0
}

func toFloatPtr(v any) *float64 {
	if v == nil {
		return nil
	}
	f := toFloat(v)
	return &f
}

func toTime(v any) time.Time {
	t, _ := v.(time.Time)
	return t.UTC()
}

func toList(v any) []any {
	l, _ := v.([]any)
	return l
}

func toMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}
