package memory

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Render limits. A page's size is estimated as
//
//	tokens = ceil(len(Text)/TextBytesPerToken + (len(JSON)+ReserveBytes)/JSONBytesPerToken)
//
// in bytes of UTF-8, where JSON is the Page marshalled with encoding/json
// (which holds the text too, and the items when asked for): the text
// content and the structured content both count, since a client may pass
// either or both to the model and counts both against its tool-output limit
// (Claude Code: 25,000 tokens; it passes the model the structured content
// alone when there is one, which is why the text is in it). JSON is counted at 3 bytes
// per token, not the 4 usual for prose, because quotes, braces, digits and
// RFC 3339 timestamps tokenize densely; the text's short lines at 4. The
// estimate is a heuristic, not a tokenizer: for text and JSON both as dense
// as 3 and 2.5 bytes per token, a 20,000-token page is about 23,000 real
// tokens, still under Claude Code's limit.
const (
	DefaultMaxTokens  = 2000
	MinMaxTokens      = 300
	HardMaxTokens     = 20_000
	TextBytesPerToken = 4
	JSONBytesPerToken = 3
	// ReserveBytes is room for what the caller adds to the structured
	// content next to the Page's fields (get_context: "stale" and
	// "source", about 30 bytes).
	ReserveBytes = 40
)

// The pager counts in twelfths of a token: a text byte is 3 units, a JSON
// byte 4, so that both rates stay integers.
const (
	unitsPerToken = TextBytesPerToken * JSONBytesPerToken
	textUnit      = unitsPerToken / TextBytesPerToken
	jsonUnit      = unitsPerToken / JSONBytesPerToken
)

// EstimateTokens is the estimate above for a page's text and JSON.
func EstimateTokens(textBytes, jsonBytes int) int {
	units := textBytes*textUnit + (jsonBytes+ReserveBytes)*jsonUnit
	return (units + unitsPerToken - 1) / unitsPerToken
}

// ErrInvalidRequest marks the caller's mistakes: an unknown topic or scope,
// max_tokens out of range, a bad or stale cursor. errors.Is(err,
// ErrInvalidRequest) tells the get_context tool to answer with the message,
// as a tool error, rather than log a failure.
var ErrInvalidRequest = errors.New("invalid get_context request")

// ErrStaleCursor says that a cursor was made for another version (or scope)
// of the context; the *RequestError for it wraps this.
var ErrStaleCursor = errors.New("context changed since this cursor; start again without one")

// RequestError is one bad field of a request.
type RequestError struct {
	Field string // scope, topics, max_tokens, cursor
	Msg   string
	err   error
}

func (e *RequestError) Error() string { return e.Field + ": " + e.Msg }

// Unwrap returns ErrStaleCursor for a stale cursor.
func (e *RequestError) Unwrap() error { return e.err }

// Is makes every RequestError an ErrInvalidRequest.
func (e *RequestError) Is(target error) bool { return target == ErrInvalidRequest }

// RenderRequest selects a page of a context.
type RenderRequest struct {
	// Topics are the sections to show, of Topics(); empty means all.
	Topics []string
	// MaxTokens bounds the page (see EstimateTokens); 0 means
	// DefaultMaxTokens, otherwise MinMaxTokens..HardMaxTokens.
	MaxTokens int
	// Cursor is a previous page's NextCursor; "" for the first page.
	Cursor string
	// Items asks for the page's items as structured data (Page.Items) as
	// well as in the text. Without it a page's JSON is its text and a few
	// numbers, about half the size for the same items: a model reads the
	// text either way; programs that want the fields ask for them.
	Items bool
}

// Page is one page of a context: the structured content get_context
// returns (this struct as JSON), whose Text is the compact rendering for
// Claude, also returned as the text content.
type Page struct {
	Version int64     `json:"version"`
	AsOf    time.Time `json:"as_of"`
	// Counts are the context's sizes, whatever the topics and the page.
	Counts Counts `json:"counts"`
	// Items are the items of this page, in the context's order, when the
	// request asked for them (RenderRequest.Items); empty otherwise.
	Items Items `json:"items,omitzero"`
	// NextCursor, when Truncated, gives the next page.
	NextCursor string `json:"next_cursor,omitempty"`
	Truncated  bool   `json:"truncated"`
	// Tokens is the page's estimated size (see EstimateTokens).
	Tokens int `json:"tokens"`
	// Text is the page for Claude: a heading per section and one line per
	// item, with the cursor at the end when there is more.
	Text string `json:"text"`
}

// Items are the structured items of a page; empty sections are left out.
type Items struct {
	Facts    []Fact           `json:"facts,omitempty"`
	Sessions []Session        `json:"sessions,omitempty"`
	Insights []InsightSummary `json:"insights,omitempty"`
	Tools    []ToolStat       `json:"tools,omitempty"`
	Failures []Failure        `json:"failures,omitempty"`
	Tickets  []Ticket         `json:"tickets,omitempty"`
}

// Counts are the number of items of each section of a context.
type Counts struct {
	Facts    int `json:"facts"`
	Sessions int `json:"sessions"`
	Insights int `json:"insights"`
	Tools    int `json:"tools"`
	Failures int `json:"failures"`
	Tickets  int `json:"tickets"`
}

// section is one list of a Context, in the order pages show them: what to
// remember first, then what happened, then measurements.
type section uint8

const (
	secFacts section = iota
	secSessions
	secInsights
	secTools
	secFailures
	secTickets
	numSections
)

var sectionNames = [numSections]string{"facts", "sessions", "insights", "tools", "failures", "tickets"}

// Topics returns the accepted topic names, in page order.
func Topics() []string { return append([]string(nil), sectionNames[:]...) }

func (s section) String() string { return sectionNames[s] }

func (s section) len(c *Context) int {
	switch s {
	case secFacts:
		return len(c.Facts)
	case secSessions:
		return len(c.Sessions)
	case secInsights:
		return len(c.Insights)
	case secTools:
		return len(c.Tools)
	case secFailures:
		return len(c.Failures)
	case secTickets:
		return len(c.Tickets)
	}
	return 0
}

// parseTopics returns the mask of the named sections (all for none).
func parseTopics(topics []string) (uint8, error) {
	if len(topics) == 0 {
		return 1<<numSections - 1, nil
	}
	var mask uint8
	for _, t := range topics {
		found := false
		for i, n := range sectionNames {
			if strings.EqualFold(strings.TrimSpace(t), n) {
				mask |= 1 << i
				found = true
				break
			}
		}
		if !found {
			return 0, &RequestError{Field: "topics", Msg: fmt.Sprintf("unknown topic %q; accepted: %s (none means all)",
				clip(t, 40), strings.Join(sectionNames[:], ", "))}
		}
	}
	return mask, nil
}

// Render returns one page of c: the items from the cursor on (from the
// start without one) of the selected topics, as many as fit in MaxTokens
// (see EstimateTokens). Every page holds at least one item
// when any is left: one that does not fit alone is shortened (long strings
// and lists clipped, the item marked Clipped). Following NextCursor until
// Truncated is false visits every item of the selected topics exactly once.
// Render does not modify c.
func Render(c *Context, r RenderRequest) (Page, error) {
	if c == nil {
		return Page{}, errors.New("memory: render: no context")
	}
	maxTokens := r.MaxTokens
	if maxTokens == 0 {
		maxTokens = DefaultMaxTokens
	}
	if maxTokens < MinMaxTokens || maxTokens > HardMaxTokens {
		return Page{}, &RequestError{Field: "max_tokens", Msg: fmt.Sprintf(
			"must be between %d and %d (default %d), got %d", MinMaxTokens, HardMaxTokens, DefaultMaxTokens, r.MaxTokens)}
	}
	mask, err := parseTopics(r.Topics)
	if err != nil {
		return Page{}, err
	}
	pos := cursor{version: c.Version, topics: mask, scopeHash: scopeHash(c.Scope), section: firstSection(mask)}
	if r.Cursor != "" {
		cur, err := decodeCursor(r.Cursor)
		if err != nil {
			return Page{}, &RequestError{Field: "cursor", Msg: err.Error() + "; start again without a cursor"}
		}
		if cur.version != c.Version || cur.scopeHash != pos.scopeHash {
			return Page{}, &RequestError{Field: "cursor", Msg: ErrStaleCursor.Error(), err: ErrStaleCursor}
		}
		if cur.topics != mask {
			return Page{}, &RequestError{Field: "cursor", Msg: fmt.Sprintf(
				"was made for topics %s; ask for the same topics, or start again without a cursor", maskNames(cur.topics))}
		}
		if cur.offset >= cur.section.len(c) {
			return Page{}, &RequestError{Field: "cursor", Msg: errBadCursor.Error() + "; start again without a cursor"}
		}
		pos = cur
	}
	return (&pager{c: c, budget: maxTokens*unitsPerToken - ReserveBytes*jsonUnit, maxTokens: maxTokens, withItems: r.Items}).page(pos)
}

func firstSection(mask uint8) section {
	for s := section(0); s < numSections; s++ {
		if mask&(1<<s) != 0 {
			return s
		}
	}
	return 0
}

func maskNames(mask uint8) string {
	var names []string
	for s := section(0); s < numSections; s++ {
		if mask&(1<<s) != 0 {
			names = append(names, s.String())
		}
	}
	return strings.Join(names, ", ")
}

// pager fills one page.
type pager struct {
	c         *Context
	budget    int // units (twelfths of a token) for text and JSON
	maxTokens int
	withItems bool // the items' JSON is on the page too
}

// textCost is what a piece of the text costs: once as text content, once
// as the JSON string of the structured content's "text" (escaped as
// encoding/json escapes it).
func textCost(s string) int {
	return len(s)*textUnit + jsonStringLen(s)*jsonUnit
}

// jsonStringLen is the length of s inside a JSON string as encoding/json
// writes it (HTML-safe), without the quotes.
func jsonStringLen(s string) int {
	n := 0
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			switch {
			case b == '"' || b == '\\' || b == '\n' || b == '\r' || b == '\t' || b == '\b' || b == '\f':
				n += 2
			case b < 0x20 || b == '<' || b == '>' || b == '&':
				n += 6
			default:
				n++
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1, r == '\u2028', r == '\u2029':
			n += 6
		default:
			n += size
		}
		i += size
	}
	return n
}

func trailer(cur string) string {
	return "(more: get_context cursor \"" + cur + "\")\n"
}

// longestCursor is the length of the longest cursor into c for pos's
// topics: the offset at its largest.
func longestCursor(c *Context, pos cursor) int {
	longest := pos
	longest.section, longest.offset = numSections-1, 0
	for s := section(0); s < numSections; s++ {
		longest.offset = max(longest.offset, s.len(c))
	}
	return len(longest.encode())
}

func (p *pager) page(pos cursor) (Page, error) {
	c := p.c
	pg := Page{Version: c.Version, AsOf: c.AsOf, Counts: Counts{
		Facts: len(c.Facts), Sessions: len(c.Sessions), Insights: len(c.Insights),
		Tools: len(c.Tools), Failures: len(c.Failures), Tickets: len(c.Tickets),
	}}
	// The fixed part, at its largest: a cursor of the longest length, the
	// trailer line, the header.
	curLen := longestCursor(c, pos)
	probe := pg
	probe.NextCursor, probe.Truncated, probe.Tokens = strings.Repeat("x", curLen), true, p.maxTokens
	base, err := json.Marshal(probe)
	if err != nil {
		return Page{}, fmt.Errorf("memory: render: %w", err)
	}
	var text strings.Builder
	text.WriteString(header(c, pos))
	used := len(base)*jsonUnit + textCost(text.String()) + textCost(trailer(strings.Repeat("x", curLen)))
	if p.withItems {
		used += len(`,"items":{}`) * jsonUnit
	}

	var items Items
	placed := 0
	sec, off := pos.section, pos.offset
	firstSec := true
	full := false
	for ; sec < numSections && !full; sec, off = sec+1, 0 {
		if pos.topics&(1<<sec) == 0 {
			continue
		}
		n := sec.len(c)
		if off >= n {
			continue
		}
		head := sectionHeading(c, sec, off)
		// "name":[ ] plus a comma between sections.
		secJSON := len(sec.String()) + 5
		if !firstSec {
			secJSON++
		}
		for ; off < n; off++ {
			cost := 0
			if items.len(sec) == 0 {
				cost += textCost(head)
				if p.withItems {
					cost += secJSON * jsonUnit
				}
			}
			var line string
			var js []byte
			var item any
			var lineCost int
			fits := false
			for level := 0; level < numLevels; level++ {
				line, js, item, err = renderItem(c, sec, off, level, items.len(sec) > 0)
				if err != nil {
					return Page{}, err
				}
				lineCost = textCost(line)
				if p.withItems {
					lineCost += len(js) * jsonUnit
				}
				if used+cost+lineCost <= p.budget {
					fits = true
					break
				}
				if placed > 0 {
					break // shorten only the page's first item
				}
			}
			if !fits {
				if placed == 0 {
					return Page{}, fmt.Errorf("memory: render: %s item %d does not fit in %d tokens even shortened", sec, off, p.maxTokens)
				}
				full = true
				break
			}
			if items.len(sec) == 0 {
				text.WriteString(head)
				firstSec = false
			}
			used += cost + lineCost
			text.WriteString(line)
			items.add(item)
			placed++
		}
		if full {
			break
		}
	}
	// Whatever is left after sec/off, in the selected topics.
	if rest, ok := nextPosition(c, pos.topics, sec, off); ok {
		next := pos
		next.section, next.offset = rest, 0
		if rest == sec {
			next.offset = off
		}
		pg.NextCursor = next.encode()
		pg.Truncated = true
		text.WriteString(trailer(pg.NextCursor))
	} else if placed == 0 {
		text.WriteString("(nothing yet)\n")
	}
	if p.withItems {
		pg.Items = items
	}
	pg.Text = text.String()
	pg.Tokens = p.maxTokens
	final, err := json.Marshal(pg)
	if err != nil {
		return Page{}, fmt.Errorf("memory: render: %w", err)
	}
	// Tokens is part of the JSON it measures: iterate to the fixed point
	// (its digits shrink or stay).
	for range 4 {
		t := EstimateTokens(len(pg.Text), len(final))
		if t == pg.Tokens {
			break
		}
		pg.Tokens = t
		if final, err = json.Marshal(pg); err != nil {
			return Page{}, fmt.Errorf("memory: render: %w", err)
		}
	}
	if pg.Tokens > p.maxTokens {
		// The accounting above is an upper bound; this would be a bug.
		return Page{}, fmt.Errorf("memory: render: page of %d tokens exceeds max_tokens %d", pg.Tokens, p.maxTokens)
	}
	return pg, nil
}

// nextPosition is the first item at or after (sec, off) in the topics.
func nextPosition(c *Context, mask uint8, sec section, off int) (section, bool) {
	for ; sec < numSections; sec, off = sec+1, 0 {
		if mask&(1<<sec) != 0 && off < sec.len(c) {
			return sec, true
		}
	}
	return 0, false
}

// header is the page's first line: what and when on the first page, a
// reminder on the others (the JSON carries version and as_of).
func header(c *Context, pos cursor) string {
	if pos.offset > 0 || pos.section != firstSection(pos.topics) {
		return "# context, continued\n"
	}
	var b strings.Builder
	b.WriteString("# context")
	if c.Scope != "" {
		b.WriteString(" for " + strconv.Quote(clip(c.Scope, 16)))
	}
	b.WriteString(" as of " + minute(c.AsOf) + " UTC\n")
	return b.String()
}

func sectionHeading(c *Context, s section, off int) string {
	if off > 0 {
		return fmt.Sprintf("## %s (continued)\n", s)
	}
	var what string
	switch s {
	case secFacts:
		what = "facts to remember"
	case secSessions:
		what = "sessions, newest first"
	case secInsights:
		what = "insights, newest first"
	case secTools:
		since := day(c.Coverage.WindowStart)
		if c.Coverage.Capped && c.Coverage.From.After(c.Coverage.WindowStart) {
			since = minute(c.Coverage.From)
		}
		what = "tools since " + since
	case secFailures:
		what = "failed tool calls, newest first"
	case secTickets:
		what = "open tickets"
	}
	return fmt.Sprintf("## %s (%d)\n", what, s.len(c))
}

func (it *Items) len(s section) int {
	switch s {
	case secFacts:
		return len(it.Facts)
	case secSessions:
		return len(it.Sessions)
	case secInsights:
		return len(it.Insights)
	case secTools:
		return len(it.Tools)
	case secFailures:
		return len(it.Failures)
	case secTickets:
		return len(it.Tickets)
	}
	return 0
}

func (it *Items) add(v any) {
	switch v := v.(type) {
	case Fact:
		it.Facts = append(it.Facts, v)
	case Session:
		it.Sessions = append(it.Sessions, v)
	case InsightSummary:
		it.Insights = append(it.Insights, v)
	case ToolStat:
		it.Tools = append(it.Tools, v)
	case Failure:
		it.Failures = append(it.Failures, v)
	case Ticket:
		it.Tickets = append(it.Tickets, v)
	}
}

// Shortening levels of an item that does not fit alone on a page. Each
// keeps less: long strings and lists clipped, then optional parts dropped,
// and last a skeleton of times and numbers only, which fits any page of
// MinMaxTokens, so every page makes progress.
const (
	levelFull = iota
	levelClipped
	levelShort
	levelMinimal
	levelSkeleton
	numLevels
)

// clipLens are the longest strings (characters), values (bytes of JSON),
// error texts and lists kept at each level; 0 empties a string.
var clipLens = [numLevels]struct{ str, value, text, list int }{
	levelFull:     {math.MaxInt, math.MaxInt, math.MaxInt, math.MaxInt},
	levelClipped:  {60, 80, 120, 3},
	levelShort:    {20, 20, 24, 1},
	levelMinimal:  {12, 12, 12, 0},
	levelSkeleton: {0, 0, 0, 0},
}

// renderItem returns item i of section s at a shortening level: its text
// line, its JSON (with a leading comma when comma is set: it follows
// another item) and the item itself, which marshals to that JSON.
func renderItem(c *Context, s section, i, level int, comma bool) (string, []byte, any, error) {
	l := clipLens[level]
	var line string
	var v any
	switch s {
	case secFacts:
		f := c.Facts[i]
		f.Subject, f.Metric = clipMark(f.Subject, l.str, &f.Clipped), clipMark(f.Metric, l.str, &f.Clipped)
		f.Value = clipValue(f.Value, l.value, &f.Clipped)
		line = fmt.Sprintf("- %s %s: %s (%s)\n", oneLine(f.Subject), oneLine(f.Metric), oneLine(string(f.Value)), day(f.TS))
		v = f
	case secSessions:
		x := c.Sessions[i]
		x.ID, x.Place = clipMark(x.ID, l.str, &x.Clipped), clipMark(x.Place, l.str, &x.Clipped)
		x.Activities = clipList(x.Activities, l.list, &x.Clipped)
		for j := range x.Activities {
			x.Activities[j].Activity = clipMark(x.Activities[j].Activity, l.str, &x.Clipped)
		}
		tools := l.list
		if level >= levelShort {
			tools = 0
		}
		x.Tools = clipList(x.Tools, tools, &x.Clipped)
		for j := range x.Tools {
			x.Tools[j] = clipMark(x.Tools[j], l.str, &x.Clipped)
		}
		if level >= levelMinimal && (x.ID != "" || x.Place != "") {
			x.ID, x.Place, x.Clipped = "", "", true
		}
		if level == levelSkeleton && (x.Failures != 0 || x.CostUSD != 0) {
			x.Failures, x.CostUSD, x.Clipped = 0, 0, true
		}
		line = sessionLine(x)
		v = x
	case secInsights:
		x := c.Insights[i]
		x.Subject, x.Metric = clipMark(x.Subject, l.str, &x.Clipped), clipMark(x.Metric, l.str, &x.Clipped)
		x.Value = clipValue(x.Value, l.value, &x.Clipped)
		if level >= levelShort && x.Trend != nil {
			x.Trend, x.Clipped = nil, true
		}
		line = insightLine(x)
		v = x
	case secTools:
		x := c.Tools[i]
		x.Tool, x.Server = clipMark(x.Tool, l.str, &x.Clipped), clipMark(x.Server, l.str, &x.Clipped)
		if level >= levelShort && (x.P50Ms != nil || x.P95Ms != nil) {
			x.P50Ms, x.P95Ms, x.Clipped = nil, nil, true
		}
		if level >= levelMinimal && x.Server != "" {
			x.Server, x.Clipped = "", true
		}
		line = toolLine(x)
		v = x
	case secFailures:
		x := c.Failures[i]
		x.Tool, x.Server = clipMark(x.Tool, l.str, &x.Clipped), clipMark(x.Server, l.str, &x.Clipped)
		x.Session = clipMark(x.Session, l.str, &x.Clipped)
		x.Error = clipMark(x.Error, l.text, &x.Clipped)
		if level >= levelMinimal && (x.Server != "" || x.Session != "") {
			x.Server, x.Session, x.Clipped = "", "", true
		}
		line = fmt.Sprintf("- %s %s", minute(x.TS), toolName(x.Tool, x.Server))
		if x.Error != "" {
			line += ": " + oneLine(x.Error)
		}
		line += "\n"
		v = x
	case secTickets:
		x := c.Tickets[i]
		x.ID, x.State = clipMark(x.ID, l.str, &x.Clipped), clipMark(x.State, l.str, &x.Clipped)
		x.Template = clipMark(x.Template, l.str, &x.Clipped)
		line = fmt.Sprintf("- %s %s %s since %s\n", oneLine(x.ID), oneLine(x.State), oneLine(x.Template), minute(x.CreatedAt))
		v = x
	}
	js, err := json.Marshal(v)
	if err != nil {
		return "", nil, nil, fmt.Errorf("memory: render: %w", err)
	}
	if comma {
		js = append([]byte{','}, js...)
	}
	return line, js, v, nil
}

// clipList returns a copy of at most n elements of l (nil for none).
func clipList[T any](l []T, n int, clipped *bool) []T {
	if len(l) > n {
		l, *clipped = l[:n], true
	}
	if len(l) == 0 {
		return nil
	}
	return append([]T(nil), l...)
}

func sessionLine(x Session) string {
	var b strings.Builder
	fmt.Fprintf(&b, "- %s-%s (%s)", minute(x.Start), x.End.UTC().Format("15:04"), duration(x.End.Sub(x.Start)))
	if x.Place != "" {
		b.WriteString(" in " + oneLine(x.Place))
	}
	if x.ID != "" {
		b.WriteString(" id " + oneLine(x.ID))
	}
	b.WriteString(": " + plural(x.Events, "event"))
	if len(x.Activities) > 0 {
		b.WriteString(" (")
		for j, a := range x.Activities {
			if j > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%s %d", oneLine(a.Activity), a.Count)
		}
		b.WriteString(")")
	}
	if len(x.Tools) > 0 {
		b.WriteString("; tools ")
		for j, t := range x.Tools {
			if j > 0 {
				b.WriteString(", ")
			}
			b.WriteString(oneLine(t))
		}
	}
	if x.Failures > 0 {
		fmt.Fprintf(&b, "; %d failed", x.Failures)
	}
	if x.CostUSD != 0 {
		fmt.Fprintf(&b, "; $%s", num(x.CostUSD))
	}
	if x.Partial && !x.Clipped {
		b.WriteString("; may have begun earlier")
	}
	b.WriteString("\n")
	return b.String()
}

func insightLine(x InsightSummary) string {
	var b strings.Builder
	fmt.Fprintf(&b, "- %s %s = %s (%s", oneLine(x.Subject), x.Metric, oneLine(string(x.Value)), day(x.TS))
	if x.Count > 1 {
		fmt.Fprintf(&b, "; %d values", x.Count)
	}
	if t := x.Trend; t != nil {
		fmt.Fprintf(&b, "; since %s %s -> %s, %s", day(t.Since), num(t.First), num(t.Last), t.Direction)
		if t.Direction != TrendFlat {
			sign := "+"
			if t.Change < 0 {
				sign = ""
			}
			b.WriteString(" " + sign + num(t.Change))
		}
	}
	b.WriteString(")\n")
	return b.String()
}

func toolLine(x ToolStat) string {
	var b strings.Builder
	fmt.Fprintf(&b, "- %s: %s", toolName(x.Tool, x.Server), plural(x.Calls, "call"))
	if x.Failures > 0 {
		fmt.Fprintf(&b, ", %d failed", x.Failures)
	}
	if x.P50Ms != nil {
		fmt.Fprintf(&b, ", p50 %sms", num(*x.P50Ms))
	}
	if x.P95Ms != nil {
		fmt.Fprintf(&b, ", p95 %sms", num(*x.P95Ms))
	}
	fmt.Fprintf(&b, ", last %s\n", minute(x.LastUsed))
	return b.String()
}

func toolName(tool, server string) string {
	if tool == "" {
		tool = "(unnamed tool)"
	}
	if server == "" {
		return oneLine(tool)
	}
	return oneLine(tool) + " @" + oneLine(server)
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return strconv.Itoa(n) + " " + what + "s"
}

func minute(t time.Time) string { return t.UTC().Format("2006-01-02 15:04") }
func day(t time.Time) string    { return t.UTC().Format("2006-01-02") }

func duration(d time.Duration) string {
	switch {
	case d < time.Minute:
		return strconv.Itoa(int(d.Seconds())) + "s"
	case d < time.Hour:
		return strconv.Itoa(int(d.Minutes())) + "m"
	}
	return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
}

// num formats a number briefly: up to 4 significant decimals.
func num(f float64) string {
	return strconv.FormatFloat(math.Round(f*1e4)/1e4, 'f', -1, 64)
}

// oneLine makes s safe for one line of text: control characters become
// spaces.
func oneLine(s string) string {
	if !strings.ContainsFunc(s, unicode.IsControl) && !strings.ContainsAny(s, "\u2028\u2029") {
		return s
	}
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return ' '
		}
		return r
	}, s)
}

// clip shortens s to at most n characters, the last being "…"; n == 0
// leaves "…" alone.
func clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	if n <= 1 {
		return "…"
	}
	k := 0
	for i := range s {
		if k == n-1 {
			return s[:i] + "…"
		}
		k++
	}
	return s
}

func clipMark(s string, n int, clipped *bool) string {
	c := clip(s, n)
	if c != s {
		*clipped = true
	}
	return c
}

// clipValue shortens a JSON value longer than n bytes to a JSON string of
// its first characters.
func clipValue(v json.RawMessage, n int, clipped *bool) json.RawMessage {
	if len(v) <= n {
		return v
	}
	*clipped = true
	b, _ := json.Marshal(clip(string(v), n))
	return b
}
