package dashboard

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/activitybi/activitybi/internal/card"
	"github.com/activitybi/activitybi/internal/memory"
	"github.com/activitybi/activitybi/internal/warehouse"
)

// bucketWord names a bucket in a heading: "per day".
func bucketWord(b string) string { return "per " + b }

// bucketLabel names a time axis: "Day".
func bucketLabel(b string) string { return strings.ToUpper(b[:1]) + b[1:] }

// Chart size in points (the card package's unit): wide and low, to sit
// in a page section.
const (
	chartWidth  = 720
	chartHeight = 300
)

// headline is the kpis.sql row.
type headline struct {
	events, sessions, prompts, responses, toolCalls, toolErrors int64
	inputTokens, outputTokens                                   int64
	cost                                                        float64
}

func readHeadline(t *warehouse.Table) headline {
	r := newResult(t)
	cost, _ := r.float(0, "cost_usd")
	return headline{
		events: r.int(0, "events"), sessions: r.int(0, "sessions"), prompts: r.int(0, "prompts"),
		responses: r.int(0, "responses"), toolCalls: r.int(0, "tool_calls"), toolErrors: r.int(0, "tool_errors"),
		inputTokens: r.int(0, "input_tokens"), outputTokens: r.int(0, "output_tokens"), cost: cost,
	}
}

func errorRate(errs, calls int64) string {
	if calls == 0 {
		return "no calls"
	}
	return percent(float64(errs)/float64(calls)) + " of calls"
}

const noEvents = "No events in this range."

func (d *Dashboard) overview(ctx context.Context, customer string, f Filter, v *view) error {
	var kp, act, cost, tools *warehouse.Table
	if err := d.runAll(ctx, customer,
		query{"headline", sqlKPIs, streamArgs(f), 1, &kp},
		query{"activity over time", sqlActivity, streamArgs(f, f.Bucket, int64(MaxSeries)), maxBucketRows, &act},
		query{"cost by model", sqlCostByDay, streamArgs(f, f.Bucket, int64(MaxSeries)), maxBucketRows, &cost},
		query{"tool latency", sqlTools, streamArgs(f, int64(MaxChartTools)), MaxChartTools, &tools},
	); err != nil {
		return err
	}
	h := readHeadline(kp)
	v.KPIs = []kpi{
		{Key: "events", Label: "events", Value: intText(h.events)},
		{Key: "sessions", Label: "sessions", Value: intText(h.sessions), Note: "distinct session_id"},
		{Key: "prompts", Label: "prompts", Value: intText(h.prompts)},
		{Key: "tool_calls", Label: "tool calls", Value: intText(h.toolCalls)},
		{Key: "tool_errors", Label: "tool errors", Value: intText(h.toolErrors), Note: errorRate(h.toolErrors, h.toolCalls)},
		{Key: "cost", Label: "cost", Value: money(h.cost)},
	}
	actSec := section{ID: "activity", Title: "Activity",
		Note: fmt.Sprintf("Events %s by activity; the %d most frequent by name, the rest as other.", bucketWord(f.Bucket), MaxSeries)}
	d.chart(&actSec, fillBuckets(act, f.Bucket, f.From, f.To), card.Spec{Kind: card.KindLine, Title: "Events " + bucketWord(f.Bucket) + " by activity",
		X: "bucket", XLabel: bucketLabel(f.Bucket), Width: chartWidth, Height: chartHeight, Y: []string{"events"}, Series: "activity", YLabel: "events", Unit: "events"})
	costSec := section{ID: "cost", Title: "Cost",
		Note: "USD (the negated revenue_impact of each event), by the model feature of the event."}
	d.chart(&costSec, fillBuckets(cost, f.Bucket, f.From, f.To), card.Spec{Kind: card.KindStackedBar, Title: "Cost by model " + bucketWord(f.Bucket),
		X: "bucket", XLabel: bucketLabel(f.Bucket), Width: chartWidth, Height: chartHeight, Y: []string{"cost_usd"}, Series: "model", YLabel: "cost", Unit: "USD"})
	toolSec := section{ID: "latency", Title: "Tool latency",
		Note: fmt.Sprintf("p50 and p95 of duration_ms of the %d most called tools.", MaxChartTools)}
	d.chart(&toolSec, tools, card.Spec{Kind: card.KindBar, Title: "p50 and p95 latency by tool",
		X: "tool", XLabel: "tool", Width: chartWidth, Height: chartHeight, Y: []string{"p50_ms", "p95_ms"}, YLabel: "latency", Unit: "ms"})
	toolSec.Table = toolTable(tools, false)
	for _, s := range []*section{&actSec, &costSec, &toolSec} {
		if s.Chart == "" && s.Table == nil {
			s.Empty = noEvents
		}
	}
	if h.cost == 0 && costSec.Chart == "" {
		costSec.Empty = "No costs in this range (no event with a revenue_impact)."
	}
	if len(newResult(tools).t.Rows) == 0 {
		toolSec.Table, toolSec.Empty = nil, "No tool calls in this range."
	}
	v.Sections = []section{actSec, costSec, toolSec}
	return nil
}

// toolTable lists tools.sql rows; full adds the error and p99 columns.
func toolTable(t *warehouse.Table, full bool) *tableView {
	r := newResult(t)
	if r.len() == 0 {
		return nil
	}
	tv := &tableView{Cols: []column{{Label: "Tool"}, {Label: "Calls", Num: true}, {Label: "Errors", Num: true}}}
	if full {
		tv.Cols = append(tv.Cols, column{Label: "Error rate", Num: true})
	}
	tv.Cols = append(tv.Cols, column{Label: "p50", Num: true}, column{Label: "p95", Num: true})
	if full {
		tv.Cols = append(tv.Cols, column{Label: "p99", Num: true}, column{Label: "Max", Num: true}, column{Label: "Last call"})
	}
	ms := func(i int, col string) cell {
		if f, ok := r.float(i, col); ok {
			return cell{Text: millis(f), Num: true}
		}
		return cell{Text: "—", Num: true, Title: "no duration_ms"}
	}
	for i := 0; i < r.len(); i++ {
		row := []cell{{Text: r.str(i, "tool")}, {Text: intText(r.int(i, "calls")), Num: true}, {Text: intText(r.int(i, "errors")), Num: true}}
		if full {
			rate, _ := r.float(i, "error_rate")
			row = append(row, cell{Text: percent(rate), Num: true})
		}
		row = append(row, ms(i, "p50_ms"), ms(i, "p95_ms"))
		if full {
			row = append(row, ms(i, "p99_ms"), ms(i, "max_ms"), cell{Text: timeText(r.time(i, "last_call"))})
		}
		tv.Rows = append(tv.Rows, row)
	}
	return tv
}

func (d *Dashboard) tools(ctx context.Context, customer string, f Filter, v *view) error {
	var kp, tools, calls, fails *warehouse.Table
	if err := d.runAll(ctx, customer,
		query{"headline", sqlKPIs, streamArgs(f), 1, &kp},
		query{"tools", sqlTools, streamArgs(f, int64(MaxTableRows+1)), MaxTableRows + 1, &tools},
		query{"tool calls over time", sqlToolCalls, streamArgs(f, f.Bucket, int64(MaxSeries)), maxBucketRows, &calls},
		query{"failures", sqlFailures, streamArgs(f, int64(MaxFailures)), MaxFailures, &fails},
	); err != nil {
		return err
	}
	h := readHeadline(kp)
	more := d.cut(tools)
	r := newResult(tools)
	slowest, slowestTool := 0.0, ""
	for i := 0; i < r.len(); i++ {
		if p, ok := r.float(i, "p95_ms"); ok && p > slowest {
			slowest, slowestTool = p, r.str(i, "tool")
		}
	}
	toolsUsed := intText(int64(r.len()))
	if more != "" {
		toolsUsed = fmt.Sprintf("%d+", MaxTableRows)
	}
	v.KPIs = []kpi{
		{Key: "tool_calls", Label: "tool calls", Value: intText(h.toolCalls)},
		{Key: "tools", Label: "tools used", Value: toolsUsed},
		{Key: "tool_errors", Label: "failed calls", Value: intText(h.toolErrors)},
		{Key: "error_rate", Label: "error rate", Value: rateValue(h.toolErrors, h.toolCalls)},
	}
	if slowestTool != "" {
		v.KPIs = append(v.KPIs, kpi{Key: "slowest_p95", Label: "slowest p95", Value: millis(slowest), Note: slowestTool})
	}
	callSec := section{ID: "calls", Title: "Tool calls",
		Note: fmt.Sprintf("The %d most called tools by name, the rest as other.", MaxSeries)}
	d.chart(&callSec, fillBuckets(calls, f.Bucket, f.From, f.To), card.Spec{Kind: card.KindStackedBar, Title: "Tool calls " + bucketWord(f.Bucket) + " by tool",
		X: "bucket", XLabel: bucketLabel(f.Bucket), Width: chartWidth, Height: chartHeight, Y: []string{"calls"}, Series: "tool", YLabel: "calls", Unit: "calls"})
	top := &warehouse.Table{Columns: tools.Columns, Rows: tools.Rows[:min(len(tools.Rows), MaxChartTools)]}
	latSec := section{ID: "latency", Title: "Latency by tool",
		Note: "Percentiles of duration_ms; a call failed when success is false or it carries an error.", Table: toolTable(tools, true)}
	if latSec.Table != nil {
		latSec.Table.More = more
	}
	d.chart(&latSec, top, card.Spec{Kind: card.KindBar, Title: "p50 and p95 latency by tool", X: "tool", XLabel: "tool", Width: chartWidth, Height: chartHeight, Y: []string{"p50_ms", "p95_ms"}, YLabel: "latency", Unit: "ms"})
	failSec := section{ID: "failures", Title: "Latest failed calls", Note: fmt.Sprintf("At most %d, newest first.", MaxFailures)}
	fr := newResult(fails)
	if fr.len() > 0 {
		failSec.Table = &tableView{Cols: []column{{Label: "When (UTC)"}, {Label: "Tool"}, {Label: "Error"}}}
		for i := 0; i < fr.len(); i++ {
			errText := fr.str(i, "error")
			if errText == "" {
				errText = "(success false, no error text)"
			}
			failSec.Table.Rows = append(failSec.Table.Rows, []cell{{Text: timeText(fr.time(i, "ts"))}, {Text: fr.str(i, "tool")},
				{Text: clipRunes(errText, 200), Title: errText}})
		}
	} else {
		failSec.Empty = "No failed tool calls in this range."
	}
	if callSec.Chart == "" {
		callSec.Empty = "No tool calls in this range."
	}
	if latSec.Table == nil {
		latSec.Empty = "No tool calls in this range."
	}
	v.Sections = []section{callSec, latSec, failSec}
	return nil
}

func rateValue(errs, calls int64) string {
	if calls == 0 {
		return "—"
	}
	return percent(float64(errs) / float64(calls))
}

func (d *Dashboard) cost(ctx context.Context, customer string, f Filter, v *view) error {
	var kp, byDay, byModel, byProject *warehouse.Table
	if err := d.runAll(ctx, customer,
		query{"headline", sqlKPIs, streamArgs(f), 1, &kp},
		query{"cost over time", sqlCostByDay, streamArgs(f, f.Bucket, int64(MaxSeries)), maxBucketRows, &byDay},
		query{"cost by model", sqlCostByModel, streamArgs(f, int64(MaxTableRows+1)), MaxTableRows + 1, &byModel},
		query{"cost by project", sqlCostByProject, streamArgs(f, int64(MaxTableRows+1)), MaxTableRows + 1, &byProject},
	); err != nil {
		return err
	}
	h := readHeadline(kp)
	days := f.To.Sub(f.From).Hours() / 24
	v.KPIs = []kpi{
		{Key: "cost", Label: "cost", Value: money(h.cost)},
		{Key: "cost_per_day", Label: "per day", Value: money(h.cost / days), Note: fmt.Sprintf("over %s days", trimFloat(days))},
		{Key: "responses", Label: "responses", Value: intText(h.responses)},
		{Key: "input_tokens", Label: "input tokens", Value: intText(h.inputTokens)},
		{Key: "output_tokens", Label: "output tokens", Value: intText(h.outputTokens)},
	}
	if h.responses > 0 {
		v.KPIs = append(v.KPIs, kpi{Key: "cost_per_response", Label: "per response", Value: money(h.cost / float64(h.responses))})
	}
	daySec := section{ID: "by-day", Title: "Cost over time", Note: "USD, the negated revenue_impact of each event."}
	d.chart(&daySec, fillBuckets(byDay, f.Bucket, f.From, f.To), card.Spec{Kind: card.KindStackedBar, Title: "Cost by model " + bucketWord(f.Bucket),
		X: "bucket", XLabel: bucketLabel(f.Bucket), Width: chartWidth, Height: chartHeight, Y: []string{"cost_usd"}, Series: "model", YLabel: "cost", Unit: "USD"})
	if daySec.Chart == "" {
		daySec.Empty = "No costs in this range."
	}
	share := func(c float64) string {
		if h.cost == 0 {
			return "—"
		}
		return percent(c / h.cost)
	}
	modelSec := section{ID: "by-model", Title: "By model", Note: "Tokens are the input_tokens and output_tokens features."}
	mr := newResult(byModel)
	mMore := d.cut(byModel)
	if mr.len() > 0 {
		modelSec.Table = &tableView{More: mMore, Cols: []column{{Label: "Model"}, {Label: "Responses", Num: true},
			{Label: "Input tokens", Num: true}, {Label: "Output tokens", Num: true}, {Label: "Cost", Num: true}, {Label: "Share", Num: true}}}
		for i := 0; i < mr.len(); i++ {
			c, _ := mr.float(i, "cost_usd")
			modelSec.Table.Rows = append(modelSec.Table.Rows, []cell{{Text: mr.str(i, "model")},
				{Text: intText(mr.int(i, "responses")), Num: true}, {Text: intText(mr.int(i, "input_tokens")), Num: true},
				{Text: intText(mr.int(i, "output_tokens")), Num: true}, {Text: money(c), Num: true}, {Text: share(c), Num: true}})
		}
	} else {
		modelSec.Empty = "No responses or costs in this range."
	}
	projSec := section{ID: "by-project", Title: "By project",
		Note: "A cost is the project's when the event or its session names the project."}
	pr := newResult(byProject)
	pMore := d.cut(byProject)
	if pr.len() > 0 {
		projSec.Table = &tableView{More: pMore, Cols: []column{{Label: "Project"}, {Label: "Cost events", Num: true}, {Label: "Cost", Num: true}, {Label: "Share", Num: true}}}
		for i := 0; i < pr.len(); i++ {
			c, _ := pr.float(i, "cost_usd")
			projSec.Table.Rows = append(projSec.Table.Rows, []cell{{Text: pr.str(i, "project")},
				{Text: intText(pr.int(i, "cost_events")), Num: true}, {Text: money(c), Num: true}, {Text: share(c), Num: true}})
		}
	} else {
		projSec.Empty = "No costs in this range."
	}
	v.Sections = []section{daySec, modelSec, projSec}
	return nil
}

func trimFloat(f float64) string {
	s := fmt.Sprintf("%.1f", f)
	return strings.TrimSuffix(s, ".0")
}

func (d *Dashboard) insights(ctx context.Context, customer string, f Filter, v *view) error {
	var ins *warehouse.Table
	if err := d.runAll(ctx, customer,
		query{"insights", sqlInsights, []any{f.From, f.To, f.Scope, int64(MaxTableRows + 1), int64(maxSparkPoints)}, MaxTableRows + 1, &ins},
	); err != nil {
		return err
	}
	more := d.cut(ins)
	r := newResult(ins)
	var atoms, unverified, withProv int64
	sampled := false
	for i := 0; i < r.len(); i++ {
		sampled = sampled || r.bool(i, "points_sampled")
		atoms += r.int(i, "atoms")
		if !r.bool(i, "verified") {
			unverified++
		}
		if r.str(i, "provenance") != "" {
			withProv++
		}
	}
	if sampled {
		d.m.limit("points")
	}
	series := intText(int64(r.len()))
	if more != "" {
		series = fmt.Sprintf("%d+", MaxTableRows)
	}
	v.KPIs = []kpi{
		{Key: "atoms", Label: "insight atoms", Value: intText(atoms)},
		{Key: "series", Label: "subject · metric", Value: series},
		{Key: "with_provenance", Label: "with provenance", Value: intText(withProv)},
		{Key: "unverified", Label: "unverified", Value: intText(unverified), Note: "latest value not checked against its query"},
	}
	sec := section{ID: "atoms", Title: "Insight atoms",
		Note: "Per subject and metric: the latest value, the numeric values of the range as a trend, and where the latest came from."}
	if f.Scope != "" {
		sec.Note += " With a project: that project's facts and subjects naming no project."
	}
	if r.len() == 0 {
		sec.Empty = "No insight atoms in this range."
		v.Sections = []section{sec}
		return nil
	}
	sec.Table = &tableView{More: more, Cols: []column{{Label: "Subject"}, {Label: "Metric"}, {Label: "Latest value"},
		{Label: "Trend"}, {Label: "Atoms", Num: true}, {Label: "Updated (UTC)"}, {Label: "Provenance"}}}
	for i := 0; i < r.len(); i++ {
		pts := r.floats(i, "points")
		trend := cell{HTML: sparkline(pts)}
		if len(pts) >= 2 {
			trend.Title = fmt.Sprintf("%s → %s", trimNum(pts[0]), trimNum(pts[len(pts)-1]))
		} else {
			trend.Text = "—"
		}
		sec.Table.Rows = append(sec.Table.Rows, []cell{
			{Text: r.str(i, "subject")}, {Text: r.str(i, "metric")},
			{Text: jsonText(r.str(i, "last_value")), Mono: true},
			trend,
			{Text: intText(r.int(i, "atoms")), Num: true},
			{Text: timeText(r.time(i, "last_ts"))},
			provenanceCell(r, i),
		})
	}
	v.Sections = []section{sec}
	return nil
}

func trimNum(f float64) string {
	return strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.4f", f), "0"), ".")
}

// provenanceCell says where an insight's latest value came from: the
// query ticket of its provenance hash when stored, and whether it was
// verified.
func provenanceCell(r result, i int) cell {
	verified := "unverified"
	if r.bool(i, "verified") {
		verified = "verified"
	}
	src := r.str(i, "source")
	hash := r.str(i, "provenance")
	c := cell{Title: "source: " + src}
	switch {
	case hash == "":
		c.Text = "none given · " + verified
	case r.str(i, "ticket_id") != "":
		id := r.str(i, "ticket_id")
		c.Text = fmt.Sprintf("ticket %s (%s) · %s", id, r.str(i, "template"), verified)
		c.Href = "/queries?" + url.Values{"range": {"90d"}}.Encode() + "#" + ticketAnchor(id)
	default:
		c.Text = fmt.Sprintf("query %s (no ticket stored) · %s", clipRunes(hash, 13), verified)
	}
	c.Mono = hash != ""
	return c
}

func (d *Dashboard) queries(ctx context.Context, customer string, f Filter, v *view) error {
	var tickets, arts *warehouse.Table
	// Expired artifacts are no longer served: they are not listed or
	// linked, whether or not the sweep has deleted them yet.
	now := d.now().UTC()
	if err := d.runAll(ctx, customer,
		query{"tickets", sqlTickets, []any{f.From, f.To, int64(MaxTableRows + 1), now}, MaxTableRows + 1, &tickets},
		query{"artifacts", sqlArtifacts, []any{f.From, f.To, int64(MaxTableRows + 1), now}, MaxTableRows + 1, &arts},
	); err != nil {
		return err
	}
	tMore, aMore := d.cut(tickets), d.cut(arts)
	tr, ar := newResult(tickets), newResult(arts)
	states := map[string]int64{}
	for i := 0; i < tr.len(); i++ {
		states[tr.str(i, "state")]++
	}
	v.KPIs = []kpi{{Key: "tickets", Label: "query tickets", Value: countText(int64(tr.len()), tMore)}}
	names := make([]string, 0, len(states))
	for s := range states {
		names = append(names, s)
	}
	sort.Strings(names)
	for _, s := range names {
		v.KPIs = append(v.KPIs, kpi{Key: "state_" + s, Label: s, Value: intText(states[s])})
	}
	v.KPIs = append(v.KPIs, kpi{Key: "artifacts", Label: "cards and files", Value: countText(int64(ar.len()), aMore)})
	if f.Scope != "" {
		v.Notes = append(v.Notes, "The project filter does not apply to tickets and artifacts: every one of the range is listed.")
	}
	tSec := section{ID: "tickets", Title: "Query tickets", Note: "Every submitted query, newest first, with its outcome."}
	if tr.len() == 0 {
		tSec.Empty = "No query tickets in this range."
	} else {
		tSec.Table = &tableView{More: tMore, Cols: []column{{Label: "Ticket"}, {Label: "Template"}, {Label: "Request"}, {Label: "State"},
			{Label: "Result"}, {Label: "Run time", Num: true}, {Label: "Created (UTC)"}, {Label: "Result kept until (UTC)"}}}
		for i := 0; i < tr.len(); i++ {
			id := tr.str(i, "ticket_id")
			state := tr.str(i, "state")
			if p, ok := tr.float(i, "progress"); ok && p < 1 && (state == "running" || state == "queued") {
				state += " " + percent(p)
			}
			// A stage says what a live ticket is doing; a finished one's
			// state says it all.
			if st := tr.str(i, "stage"); st != "" && (tr.str(i, "state") == "running" || tr.str(i, "state") == "queued") {
				state += " (" + clipRunes(st, 80) + ")"
			}
			stateCell := cell{Text: state}
			if e := tr.str(i, "error"); e != "" {
				stateCell.Text += ": " + clipRunes(e, 120)
				stateCell.Title = e
			}
			run := cell{Text: "—", Num: true}
			if ms, ok := tr.float(i, "run_ms"); ok {
				run.Text = durationText(time.Duration(ms * float64(time.Millisecond)))
			}
			result := cell{}
			if tr.str(i, "state") == "succeeded" {
				result.Text = fmt.Sprintf("%s rows, %s", intText(tr.int(i, "result_rows")), byteText(tr.int(i, "result_bytes")))
				if tr.bool(i, "sampled") {
					rate, _ := tr.float(i, "sample_rate")
					result.Text += ", sampled at " + percent(rate)
				}
				if tr.bool(i, "truncated") {
					result.Text += ", cut at the byte cap"
				}
				if a := tr.str(i, "result_artifact"); a != "" {
					result.Href, result.Title = "/artifacts/"+url.PathEscape(a), "the whole result, NDJSON"
				}
			}
			tSec.Table.Rows = append(tSec.Table.Rows, []cell{
				{Text: id, ID: ticketAnchor(id), Mono: true}, {Text: tr.str(i, "template")},
				{Text: clipRunes(tr.str(i, "params"), 120), Title: tr.str(i, "params"), Mono: true},
				stateCell, result, run, {Text: timeText(tr.time(i, "created_at"))}, {Text: timeText(tr.time(i, "expires_at"))},
			})
		}
	}
	aSec := section{ID: "artifacts", Title: "Cards and result files", Note: "Stored for your queries and cards, newest first; each opens from the core."}
	if ar.len() == 0 {
		aSec.Empty = "No artifacts in this range."
	} else {
		aSec.Table = &tableView{More: aMore, Cols: []column{{Label: "Artifact"}, {Label: "Kind"}, {Label: "Type"}, {Label: "Size", Num: true},
			{Label: "Created (UTC)"}, {Label: "Expires (UTC)"}, {Label: "Preview"}}}
		for i := 0; i < ar.len(); i++ {
			id := ar.str(i, "artifact_id")
			href := "/artifacts/" + url.PathEscape(id)
			label := ar.str(i, "name")
			if label == "" {
				label = id
			}
			size := cell{Num: true}
			if _, ok := ar.float(i, "size_bytes"); ok {
				size.Text = byteText(ar.int(i, "size_bytes"))
			}
			preview := cell{}
			if ct := ar.str(i, "content_type"); ct == "image/svg+xml" || ct == "image/png" {
				preview.HTML = template.HTML(`<img class="thumb" src="` + template.HTMLEscapeString(href) + `" alt="` + template.HTMLEscapeString(label) + `">`)
			}
			aSec.Table.Rows = append(aSec.Table.Rows, []cell{{Text: label, Href: href, Title: id, Mono: true}, {Text: ar.str(i, "kind")},
				{Text: ar.str(i, "content_type")}, size, {Text: timeText(ar.time(i, "created_at"))}, {Text: timeText(ar.time(i, "expires_at"))}, preview})
		}
	}
	v.Sections = []section{tSec, aSec}
	return nil
}

func countText(n int64, more string) string {
	if more != "" {
		return fmt.Sprintf("%d+", MaxTableRows)
	}
	return intText(n)
}

func (d *Dashboard) memoryPage(ctx context.Context, customer string, f Filter, v *view) error {
	v.ScopeOnly = true
	v.FilterLabel = "all projects"
	if f.Scope != "" {
		v.FilterLabel = "project " + f.Scope
	}
	v.Notes = append(v.Notes, "Memory covers its own window (the last 30 days by default), not a date range; the project filter applies.")
	if d.opts.Memory == nil {
		v.Sections = []section{{ID: "context", Title: "What get_context returns", Empty: errNoMemory.Error() + "."}}
		return nil
	}
	c, err := d.opts.Memory(ctx, customer, f.Scope)
	if err != nil {
		if errors.Is(err, memory.ErrInvalidRequest) {
			return &badRequestError{msg: err.Error()}
		}
		return fmt.Errorf("memory could not be read: %w", err)
	}
	page, err := memory.Render(c, memory.RenderRequest{})
	if err != nil {
		return fmt.Errorf("memory could not be rendered: %w", err)
	}
	n := page.Counts
	v.KPIs = []kpi{
		{Key: "facts", Label: "facts", Value: intText(int64(n.Facts))},
		{Key: "sessions", Label: "recent sessions", Value: intText(int64(n.Sessions))},
		{Key: "insights", Label: "insights", Value: intText(int64(n.Insights))},
		{Key: "tools", Label: "tools", Value: intText(int64(n.Tools))},
		{Key: "failures", Label: "recent failures", Value: intText(int64(n.Failures))},
		{Key: "tokens", Label: "tokens (first page)", Value: intText(int64(page.Tokens))},
	}
	note := fmt.Sprintf("The first page of get_context as Claude gets it now: version %d, built %s UTC from %s events.",
		page.Version, page.AsOf.UTC().Format("2006-01-02 15:04:05"), intText(int64(c.Coverage.Events)))
	if page.Truncated {
		note += " More pages follow (get_context with the cursor)."
	}
	sec := section{ID: "context", Title: "What get_context returns", Note: note, Pre: page.Text}
	secs := []section{sec}
	if len(c.Facts) > 0 {
		fs := section{ID: "facts", Title: "Facts", Note: "What the person asked Claude to remember (insights on user and project:<name>)."}
		fs.Table = &tableView{Cols: []column{{Label: "Subject"}, {Label: "Key"}, {Label: "Value"}, {Label: "Since (UTC)"}}}
		for _, x := range c.Facts {
			fs.Table.Rows = append(fs.Table.Rows, []cell{{Text: x.Subject}, {Text: x.Metric}, {Text: jsonText(string(x.Value)), Mono: true}, {Text: timeText(x.TS)}})
		}
		secs = append(secs, fs)
	}
	v.Sections = secs
	return nil
}

func (d *Dashboard) pipeline(ctx context.Context, customer string, f Filter, v *view) error {
	now := d.now().UTC()
	var rec, src *warehouse.Table
	if err := d.runAll(ctx, customer,
		query{"arrivals", sqlReceived, []any{now}, 1, &rec},
		query{"sources", sqlSources, streamArgs(f), 100, &src},
	); err != nil {
		return err
	}
	if d.opts.Pipeline != nil {
		p := d.opts.Pipeline()
		depth := kpi{Key: "spool_pending", Label: "records waiting in the spool", Value: "unknown", Note: "not reported by this core"}
		if p.SpoolPending != nil {
			depth.Value, depth.Note = intText(*p.SpoolPending), ""
			if p.MaxPending > 0 {
				depth.Note = fmt.Sprintf("%s of the %s limit", percent(float64(*p.SpoolPending)/float64(p.MaxPending)), intText(p.MaxPending))
			}
		}
		state := kpi{Key: "uploader", Label: "uploader", Value: p.UploaderState}
		switch {
		case p.LastError == "":
		case d.opts.Auth.server():
			// The error is the whole process's: it may quote another
			// customer's record (a value the warehouse refused) or the
			// server's paths. A customer sees that loads fail, not why.
			state.Note = fmt.Sprintf("%d failures in a row; the reason is in the server's log and `activitybi status`", p.ConsecutiveFailures)
		default:
			state.Note = fmt.Sprintf("%d failures in a row: %s", p.ConsecutiveFailures, clipRunes(p.LastError, 160))
		}
		v.KPIs = append(v.KPIs, state, depth,
			kpi{Key: "backlog", Label: "spool backlog", Value: byteText(p.BacklogBytes), Note: fmt.Sprintf("%d segments", p.Segments)},
			kpi{Key: "lag", Label: "ingestion lag", Value: durationText(p.Lag), Note: "last batch, accepted to committed"},
			kpi{Key: "last_commit", Label: "last commit", Value: ago(p.LastCommit, now)},
			kpi{Key: "quarantined", Label: "quarantined records", Value: intText(p.Quarantined), Note: "all customers; reasons in upload_quarantine"},
		)
	} else {
		v.Notes = append(v.Notes, "The core's intake status is not wired into this dashboard; only your own arrivals are shown.")
	}
	rr := newResult(rec)
	v.KPIs = append(v.KPIs,
		kpi{Key: "last_received", Label: "your latest event arrived", Value: ago(rr.time(0, "last_received"), now)},
		kpi{Key: "last_hour", Label: "your events in the last hour", Value: intText(rr.int(0, "last_hour"))},
	)
	sec := section{ID: "sources", Title: "Arrivals by source",
		Note: "Your events of the range by how they arrived (_source); delay is from ts to acceptance."}
	sr := newResult(src)
	if sr.len() == 0 {
		sec.Empty = noEvents
	} else {
		sec.Table = &tableView{Cols: []column{{Label: "Source"}, {Label: "Events", Num: true}, {Label: "Last arrival (UTC)"}, {Label: "Longest delay", Num: true}}}
		for i := 0; i < sr.len(); i++ {
			delay, _ := sr.float(i, "max_delay_s")
			sec.Table.Rows = append(sec.Table.Rows, []cell{{Text: sr.str(i, "source")}, {Text: intText(sr.int(i, "events")), Num: true},
				{Text: timeText(sr.time(i, "last_received"))}, {Text: durationText(time.Duration(delay * float64(time.Second))), Num: true}})
		}
	}
	v.Sections = []section{sec}
	return nil
}
