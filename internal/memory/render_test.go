package memory

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

// largeContext is a context at every Builder bound, with the longest
// strings and values the pipeline accepts in some items: 255-character
// subjects, 4 KiB object values, 300-character errors, control characters.
// Every item carries a unique key that shortening never clips (a time, or
// a short prefix), so pages can be matched to the context.
func largeContext(version int64) *Context {
	long := strings.Repeat("x", 250)
	obj := `{"k":"` + strings.Repeat("v", 4000) + `"}`
	c := &Context{Version: version, AsOf: t0.Add(30 * 24 * time.Hour), Scope: "proj",
		Coverage: Coverage{Events: 10_000, From: t0.Add(15 * time.Hour), WindowStart: t0, Capped: true}}
	for i := range DefaultMaxFacts {
		f := Fact{Subject: "user", Metric: fmt.Sprintf("m%04d", i), Value: json.RawMessage(`"go"`), TS: t0.Add(time.Duration(i) * time.Minute)}
		switch i % 7 {
		case 1:
			f.Subject = "project:" + long[:247]
		case 2:
			f.Value = json.RawMessage(obj)
		case 3:
			f.Metric += "_" + long
			f.Value = json.RawMessage(`"line one\nline two \u2028 end"`)
		}
		c.Facts = append(c.Facts, f)
	}
	for i := range DefaultRecentSessions {
		s := Session{ID: fmt.Sprintf("session-%d-%s", i, long[:i*20]), Start: t0.Add(time.Duration(i) * time.Hour),
			End: t0.Add(time.Duration(i)*time.Hour + 41*time.Minute), Events: 250, Failures: i, CostUSD: 0.615,
			Place: "/home/someone/src/" + long[:i*20], Partial: i == 9}
		for j := range maxSessionActivities {
			s.Activities = append(s.Activities, ActivityCount{fmt.Sprintf("did_thing%d_%s", j, long[:i*10]), 100 - j})
		}
		for j := range maxSessionTools {
			s.Tools = append(s.Tools, fmt.Sprintf("tool%d%s", j, long[:i*5]))
		}
		c.Sessions = append(c.Sessions, s)
	}
	for i := range DefaultMaxInsights {
		x := InsightSummary{Subject: fmt.Sprintf("tool:t%d", i%30), Metric: fmt.Sprintf("i%04d", i), Value: json.RawMessage(`412.5`),
			TS: t0.Add(time.Duration(i) * time.Minute), Count: 40}
		if i%3 == 0 {
			x.Trend = newTrend(t0, 380, 412.5, 14)
		}
		if i%11 == 0 {
			x.Subject, x.Value, x.Trend = "series:"+long, json.RawMessage(obj), nil
		}
		c.Insights = append(c.Insights, x)
	}
	for i := range DefaultMaxTools {
		p50, p95 := 120.0, 840.5
		tool := fmt.Sprintf("tool%d", i)
		if i%5 == 0 {
			tool += long
		}
		c.Tools = append(c.Tools, ToolStat{Tool: tool, Server: "srv" + long[:i], Calls: 1000 - i, Failures: i, P50Ms: &p50, P95Ms: &p95,
			LastUsed: t0.Add(time.Duration(i) * time.Second)})
	}
	for i := range DefaultMaxFailures {
		c.Failures = append(c.Failures, Failure{TS: t0.Add(time.Duration(i) * time.Second), Tool: "Bash", Server: "shell",
			Session: "session-" + long, Error: strings.Repeat("error text\t", 28)[:300]})
	}
	for i := range 5 {
		c.Tickets = append(c.Tickets, Ticket{ID: fmt.Sprintf("tk%d", i), State: "running", Template: "tool_latency_" + long,
			CreatedAt: t0.Add(time.Duration(i) * time.Second)})
	}
	return c
}

// itemKeys are the keys of a context's or a page's items, per section.
func itemKeys(it Items) [numSections][]string {
	var k [numSections][]string
	for _, f := range it.Facts {
		k[secFacts] = append(k[secFacts], f.Metric[:5])
	}
	for _, s := range it.Sessions {
		k[secSessions] = append(k[secSessions], s.Start.String())
	}
	for _, x := range it.Insights {
		k[secInsights] = append(k[secInsights], x.Metric[:5])
	}
	for _, x := range it.Tools {
		k[secTools] = append(k[secTools], x.LastUsed.String())
	}
	for _, x := range it.Failures {
		k[secFailures] = append(k[secFailures], x.TS.String())
	}
	for _, x := range it.Tickets {
		k[secTickets] = append(k[secTickets], x.CreatedAt.String())
	}
	return k
}

func contextItems(c *Context) Items {
	return Items{Facts: c.Facts, Sessions: c.Sessions, Insights: c.Insights, Tools: c.Tools, Failures: c.Failures, Tickets: c.Tickets}
}

// checkPage asserts the page's size accounting from scratch: the text and
// the page's JSON together, as documented.
func checkPage(t *testing.T, p Page, maxTokens int) {
	t.Helper()
	js, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	want := (3*len(p.Text) + 4*(len(js)+ReserveBytes) + 11) / 12 // text at 4 bytes per token, JSON at 3
	if p.Tokens != want {
		t.Fatalf("max_tokens %d: Tokens %d, recomputed %d", maxTokens, p.Tokens, want)
	}
	if p.Tokens > maxTokens {
		t.Fatalf("max_tokens %d: page of %d tokens", maxTokens, p.Tokens)
	}
	if p.Truncated != (p.NextCursor != "") || (p.Truncated && !strings.Contains(p.Text, p.NextCursor)) {
		t.Fatalf("max_tokens %d: truncated %v, cursor %q, text mentions it: %v", maxTokens, p.Truncated, p.NextCursor, strings.Contains(p.Text, p.NextCursor))
	}
	for i, line := range strings.Split(strings.TrimSuffix(p.Text, "\n"), "\n") {
		if line == "" || strings.ContainsAny(line, "\t\r\u2028") {
			t.Fatalf("max_tokens %d: text line %d is empty or holds control characters: %q", maxTokens, i, line)
		}
	}
}

// TestRenderWithinMaxTokens renders the first page of a large context at
// every max_tokens from 300 to 20,000 (~10 s; with -short or -race every
// value to 3,000 and every 37th beyond).
func TestRenderWithinMaxTokens(t *testing.T) {
	t.Parallel()
	c := largeContext(7)
	for mt := MinMaxTokens; mt <= HardMaxTokens; mt++ {
		if (testing.Short() || raceEnabled) && mt > 3000 && mt%37 != 0 && mt != HardMaxTokens {
			continue
		}
		for _, withItems := range []bool{false, true} {
			p, err := Render(c, RenderRequest{MaxTokens: mt, Items: withItems})
			if err != nil {
				t.Fatalf("max_tokens %d items %v: %v", mt, withItems, err)
			}
			checkPage(t, p, mt)
			if n := textItems(p.Text); n == 0 || (withItems && countItems(p.Items) != n) || (!withItems && countItems(p.Items) != 0) {
				t.Fatalf("max_tokens %d items %v: %d items in the text, %d structured", mt, withItems, n, countItems(p.Items))
			}
		}
	}
	// The whole context fits nowhere: it is larger than the hard limit.
	if p, _ := Render(c, RenderRequest{MaxTokens: HardMaxTokens}); !p.Truncated {
		t.Error("a context larger than 20,000 tokens rendered in one page")
	}
}

// textItems counts the item lines of a page's text (each item is one line
// starting "- ").
func textItems(text string) int {
	n := 0
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, "- ") {
			n++
		}
	}
	return n
}

func countItems(it Items) int {
	return len(it.Facts) + len(it.Sessions) + len(it.Insights) + len(it.Tools) + len(it.Failures) + len(it.Tickets)
}

// TestRenderWorstHeader: a 16-digit version (the server's) and a long
// scope of 4-byte characters still leave room for every item at 200 tokens.
func TestRenderWorstHeader(t *testing.T) {
	t.Parallel()
	c := largeContext(time.Now().UnixMicro())
	c.Scope = strings.Repeat("\U0001F600", MaxScopeLen)
	for _, withItems := range []bool{false, true} {
		cur, pages := "", 0
		for {
			p, err := Render(c, RenderRequest{MaxTokens: MinMaxTokens, Cursor: cur, Items: withItems})
			if err != nil {
				t.Fatalf("items %v page %d: %v", withItems, pages, err)
			}
			checkPage(t, p, MinMaxTokens)
			pages++
			if !p.Truncated {
				break
			}
			cur = p.NextCursor
		}
		if want := countItems(contextItems(c)); pages < want/3 {
			t.Errorf("items %v: %d pages for %d items", withItems, pages, want)
		}
	}
}

// TestRenderPaging follows cursors to the end: every item of the selected
// topics appears exactly once, in order, and every page is within budget.
func TestRenderPaging(t *testing.T) {
	t.Parallel()
	c := largeContext(3)
	want := itemKeys(contextItems(c))
	for _, topics := range [][]string{nil, {"sessions"}, {"failures", "facts"}, {"tickets", "tools", "insights"}, {"TOOLS"}} {
		mask, err := parseTopics(topics)
		if err != nil {
			t.Fatal(err)
		}
		wantN := 0
		for s := section(0); s < numSections; s++ {
			if mask&(1<<s) != 0 {
				wantN += len(want[s])
			}
		}
		for _, mt := range []int{300, 301, 333, 400, 512, 1000, 2000, 4999, 20_000} {
			for _, withItems := range []bool{false, true} {
				var got [numSections][]string
				cur := ""
				pages, lines := 0, 0
				for {
					p, err := Render(c, RenderRequest{Topics: topics, MaxTokens: mt, Cursor: cur, Items: withItems})
					if err != nil {
						t.Fatalf("topics %v max_tokens %d items %v page %d: %v", topics, mt, withItems, pages, err)
					}
					checkPage(t, p, mt)
					n := textItems(p.Text)
					if n == 0 {
						t.Fatalf("topics %v max_tokens %d items %v page %d: no items", topics, mt, withItems, pages)
					}
					if withItems && countItems(p.Items) != n {
						t.Fatalf("topics %v max_tokens %d page %d: %d items in the text, %d structured", topics, mt, pages, n, countItems(p.Items))
					}
					lines += n
					k := itemKeys(p.Items)
					for s := range numSections {
						got[s] = append(got[s], k[s]...)
					}
					pages++
					if !p.Truncated {
						break
					}
					cur = p.NextCursor
					if pages > 2000 {
						t.Fatal("paging does not end")
					}
				}
				if lines != wantN {
					t.Errorf("topics %v max_tokens %d items %v: %d items over %d pages, want %d", topics, mt, withItems, lines, pages, wantN)
				}
				if !withItems {
					continue
				}
				for s := section(0); s < numSections; s++ {
					w := want[s]
					if mask&(1<<s) == 0 {
						w = nil
					}
					if fmt.Sprint(got[s]) != fmt.Sprint(w) {
						t.Errorf("topics %v max_tokens %d: %s items seen %d (%v...), want %d", topics, mt, s, len(got[s]), head(got[s]), len(w))
					}
				}
				if mt == MinMaxTokens && mask == 1<<numSections-1 && pages < 100 {
					t.Errorf("max_tokens %d: only %d pages", mt, pages)
				}
			}
		}
	}
}

func head(s []string) []string {
	if len(s) > 3 {
		return s[:3]
	}
	return s
}

// TestRenderClipped: an item larger than the page is shortened, marked,
// and still counted once; items that fit are never shortened.
func TestRenderClipped(t *testing.T) {
	t.Parallel()
	c := largeContext(1)
	p, err := Render(c, RenderRequest{Topics: []string{"facts"}, MaxTokens: MinMaxTokens, Items: true, Cursor: cursor{version: 1, section: secFacts, offset: 2, topics: 1 << secFacts, scopeHash: scopeHash("proj")}.encode()})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Items.Facts) != 1 || !p.Items.Facts[0].Clipped || !strings.Contains(p.Text, "…") {
		t.Fatalf("4 KiB fact at 200 tokens: %+v\n%s", p.Items.Facts, p.Text)
	}
	var s string
	if err := json.Unmarshal(p.Items.Facts[0].Value, &s); err != nil || !strings.HasPrefix(s, `{"k":"vvv`) {
		t.Errorf("clipped value %s: want a string of the value's start", p.Items.Facts[0].Value)
	}
	p, err = Render(c, RenderRequest{MaxTokens: HardMaxTokens, Items: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range p.Items.Facts {
		if f.Clipped {
			t.Errorf("fact %s clipped on a page with room", f.Metric)
		}
	}
}

func TestRenderTopics(t *testing.T) {
	t.Parallel()
	c := largeContext(1)
	p, err := Render(c, RenderRequest{Topics: []string{"tools", "tickets"}, MaxTokens: HardMaxTokens, Items: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Items.Tools) != len(c.Tools) || len(p.Items.Tickets) != len(c.Tickets) || len(p.Items.Facts)+len(p.Items.Sessions) != 0 || p.Truncated {
		t.Errorf("tools+tickets page: %d tools %d tickets %d facts, truncated %v", len(p.Items.Tools), len(p.Items.Tickets), len(p.Items.Facts), p.Truncated)
	}
	if !strings.Contains(p.Text, "## tools since 2026-03-01 15:00") {
		t.Errorf("tools heading (capped read: since its first event):\n%s", p.Text[:200])
	}
	if p.Counts != (Counts{Facts: 500, Sessions: 10, Insights: 200, Tools: 30, Failures: 20, Tickets: 5}) {
		t.Errorf("counts %+v", p.Counts)
	}
	// A topic without items: an empty page that says so.
	c.Tickets = nil
	p, err = Render(c, RenderRequest{Topics: []string{"tickets"}})
	if err != nil || p.Truncated || !strings.Contains(p.Text, "(nothing yet)") {
		t.Errorf("no tickets: %v %+v", err, p)
	}
}

func TestRenderErrors(t *testing.T) {
	t.Parallel()
	c := largeContext(5)
	first, err := Render(c, RenderRequest{MaxTokens: 500})
	if err != nil || first.NextCursor == "" {
		t.Fatal(err)
	}
	other := largeContext(6)
	scoped := largeContext(5)
	scoped.Scope = "elsewhere"
	for _, tc := range []struct {
		name  string
		c     *Context
		r     RenderRequest
		field string
		msg   string
		stale bool
	}{
		{"max_tokens low", c, RenderRequest{MaxTokens: 299}, "max_tokens", "must be between 300 and 20000 (default 2000), got 299", false},
		{"max_tokens high", c, RenderRequest{MaxTokens: 20_001}, "max_tokens", "got 20001", false},
		{"max_tokens negative", c, RenderRequest{MaxTokens: -1}, "max_tokens", "got -1", false},
		{"topic", c, RenderRequest{Topics: []string{"facts", "memories"}}, "topics", `unknown topic "memories"; accepted: facts, sessions, insights, tools, failures, tickets`, false},
		{"garbage cursor", c, RenderRequest{Cursor: "not a cursor!"}, "cursor", "not a cursor from get_context; start again without a cursor", false},
		{"truncated cursor", c, RenderRequest{Cursor: first.NextCursor[:len(first.NextCursor)-2]}, "cursor", "not a cursor", false},
		{"other version", other, RenderRequest{Cursor: first.NextCursor, MaxTokens: 500}, "cursor", "context changed since this cursor; start again without one", true},
		{"other scope", scoped, RenderRequest{Cursor: first.NextCursor, MaxTokens: 500}, "cursor", "context changed since this cursor", true},
		{"other topics", c, RenderRequest{Cursor: first.NextCursor, Topics: []string{"facts"}}, "cursor", "was made for topics facts, sessions, insights, tools, failures, tickets", false},
		{"offset past the end", c, RenderRequest{Cursor: cursor{version: 5, section: secTickets, offset: 5, topics: 1<<numSections - 1, scopeHash: scopeHash("proj")}.encode()}, "cursor", "not a cursor", false},
	} {
		_, err := Render(tc.c, tc.r)
		var re *RequestError
		if !errors.As(err, &re) || re.Field != tc.field || !strings.Contains(err.Error(), tc.msg) || !errors.Is(err, ErrInvalidRequest) {
			t.Errorf("%s: %v; want a %s error containing %q", tc.name, err, tc.field, tc.msg)
			continue
		}
		if errors.Is(err, ErrStaleCursor) != tc.stale {
			t.Errorf("%s: stale %v, want %v", tc.name, errors.Is(err, ErrStaleCursor), tc.stale)
		}
	}
	if _, err := Render(nil, RenderRequest{}); err == nil {
		t.Error("nil context: no error")
	}
	// The cursor works with the same request.
	if _, err := Render(c, RenderRequest{Cursor: first.NextCursor, MaxTokens: 9000}); err != nil {
		t.Errorf("cursor with another max_tokens: %v", err)
	}
}

func TestCursorRoundTrip(t *testing.T) {
	t.Parallel()
	for _, c := range []cursor{
		{version: 0, section: secFacts, offset: 0, topics: 1, scopeHash: 0},
		{version: 1<<63 - 1, section: secTickets, offset: maxCursorOffset, topics: 1<<numSections - 1, scopeHash: 1<<32 - 1},
		{version: -1, section: secTools, offset: 17, topics: 1 << secTools, scopeHash: scopeHash("x")},
	} {
		s := c.encode()
		if len(s) > maxCursorLen {
			t.Errorf("%+v encodes to %d characters", c, len(s))
		}
		d, err := decodeCursor(s)
		if err != nil || d != c {
			t.Errorf("%+v -> %q -> %+v, %v", c, s, d, err)
		}
	}
}

func FuzzDecodeCursor(f *testing.F) {
	c := largeContext(9)
	for _, s := range []string{"", "bQEJAAD_", cursor{version: 9, topics: 63, scopeHash: scopeHash("proj")}.encode(),
		cursor{version: 9, section: secInsights, offset: 150, topics: 63, scopeHash: scopeHash("proj")}.encode(), "bQEAAQc_gRydxQ", "===="} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		cur, err := decodeCursor(s)
		if err != nil {
			if !errors.Is(err, errBadCursor) {
				t.Fatalf("%q: %v", s, err)
			}
			return
		}
		// Exactly one string encodes each cursor.
		if e := cur.encode(); e != s {
			t.Fatalf("%q decodes to %+v, which encodes to %q", s, cur, e)
		}
		p, err := Render(c, RenderRequest{Cursor: s, MaxTokens: MinMaxTokens})
		if err != nil {
			if !errors.Is(err, ErrInvalidRequest) {
				t.Fatalf("%q: %v", s, err)
			}
			return
		}
		checkPage(t, p, MinMaxTokens)
	})
}

// FuzzJSONStringLen: the pager's accounting of the text inside the
// structured content is exactly what encoding/json writes.
func FuzzJSONStringLen(f *testing.F) {
	for _, s := range []string{"", "plain", "line\nnext\t\"q\" \\", "<a&b>", "\u2028\u2029é😀", "\x00\x1f\x7f", "bad \xff\xfe utf8"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := jsonStringLen(s), len(b)-2; got != want {
			t.Fatalf("jsonStringLen(%q) = %d, encoding/json wrote %d bytes: %s", s, got, want, b)
		}
	})
}
