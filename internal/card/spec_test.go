package card

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/activitybi/activitybi/internal/warehouse"
)

func TestParseSpec(t *testing.T) {
	t.Parallel()
	got, err := ParseSpec(json.RawMessage(`{"kind":"stacked_bar","title":"Cost","x":"day","y":["cost_usd"],"series":"model","x_label":"Day","y_label":"Cost","unit":"USD","width":800,"height":400}`))
	if err != nil {
		t.Fatal(err)
	}
	want := Spec{Kind: KindStackedBar, Title: "Cost", X: "day", Y: []string{"cost_usd"}, Series: "model", XLabel: "Day", YLabel: "Cost", Unit: "USD", Width: 800, Height: 400}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
	// What ParseSpec accepts, Marshal gives back the same.
	b, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	again, err := ParseSpec(b)
	if err != nil || !reflect.DeepEqual(again, got) {
		t.Fatalf("round trip: %+v, %v", again, err)
	}
}

// TestParseSpecErrors: every bad spec fails with ErrInvalidSpec and a
// message that says what is wrong and what is accepted.
func TestParseSpecErrors(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("a", MaxTitleRunes+1)
	for name, tc := range map[string]struct{ raw, want string }{
		"empty":            {``, `invalid card spec: spec is empty; want a JSON object like {"kind":"line","x":"day","y":["events"]}`},
		"not json":         {`{kind: line}`, `invalid card spec: spec is not valid JSON at byte 2: invalid character 'k' looking for beginning of object key string`},
		"truncated":        {`{"kind":"line"`, `invalid card spec: spec is not valid JSON: it ends early`},
		"array":            {`[]`, `invalid card spec: spec must be a JSON object, not array`},
		"two objects":      {`{"kind":"kpi","y":["n"]} {}`, `invalid card spec: spec must be a single JSON object; found more after it`},
		"unknown field":    {`{"kind":"line","x":"d","y":["n"],"colour":"red"}`, `invalid card spec: unknown field "colour"; the fields are kind, title, x, y, series, x_label, y_label, unit, delta, width, height`},
		"go field name":    {`{"kind":"line","x":"d","y":["n"],"XLabel":"Day"}`, `invalid card spec: unknown field "XLabel"; the fields are kind, title, x, y, series, x_label, y_label, unit, delta, width, height`},
		"y as string":      {`{"kind":"line","x":"d","y":"n"}`, `invalid card spec: field "y" must be an array of column names, e.g. ["count"], not string`},
		"width as string":  {`{"kind":"line","x":"d","y":["n"],"width":"800"}`, `invalid card spec: field "width" must be a whole number of points, not string`},
		"kind missing":     {`{"x":"d","y":["n"]}`, `invalid card spec: kind is missing; the kinds are line, bar, stacked_bar, table, kpi, heatmap`},
		"kind unknown":     {`{"kind":"pie","x":"d","y":["n"]}`, `invalid card spec: unknown kind "pie"; the kinds are line, bar, stacked_bar, table, kpi, heatmap`},
		"kind wrong case":  {`{"kind":"Line","x":"d","y":["n"]}`, `invalid card spec: unknown kind "Line"; the kinds are line, bar, stacked_bar, table, kpi, heatmap`},
		"line without x":   {`{"kind":"line","y":["n"]}`, `invalid card spec: line needs x, the column for the x axis`},
		"bar without y":    {`{"kind":"bar","x":"tool"}`, `invalid card spec: bar needs y, the value column(s)`},
		"series two y":     {`{"kind":"line","x":"d","y":["a","b"],"series":"m"}`, `invalid card spec: line with series splits one value column into series; y names 2 (use one y with series, or several y without it)`},
		"line with delta":  {`{"kind":"line","x":"d","y":["n"],"delta":"p"}`, `invalid card spec: line does not use delta; a line card uses x, y (value columns) and optionally series, x_label, y_label, unit`},
		"table with x":     {`{"kind":"table","x":"d"}`, `invalid card spec: table does not use x; a table card uses y (the columns to show, in order; empty = all) and title`},
		"kpi two y":        {`{"kind":"kpi","y":["a","b"]}`, `invalid card spec: kpi needs exactly one y column, the value; y names 2`},
		"kpi with series":  {`{"kind":"kpi","y":["a"],"series":"m"}`, `invalid card spec: kpi does not use series; a kpi card uses y (one value column), optionally delta (previous value), x (orders the rows), unit`},
		"heatmap partial":  {`{"kind":"heatmap","x":"hour","y":["n"]}`, `invalid card spec: heatmap needs x (the grid's columns), series (its rows) and exactly one y (the cell value)`},
		"too many y":       {`{"kind":"line","x":"d","y":["a","b","c","d","e","f","g","h","i"]}`, `invalid card spec: y names 9 columns; at most 8 are drawn (one colour each)`},
		"empty y":          {`{"kind":"line","x":"d","y":[""]}`, `invalid card spec: y[0] is empty; want a column name`},
		"repeated y":       {`{"kind":"line","x":"d","y":["a","a"]}`, `invalid card spec: y names column "a" twice`},
		"narrow":           {`{"kind":"line","x":"d","y":["n"],"width":100}`, `invalid card spec: width 100 is outside 240..2400 points (0 = 576)`},
		"tall":             {`{"kind":"line","x":"d","y":["n"],"height":5000}`, `invalid card spec: height 5000 is outside 160..2400 points (0 = 360)`},
		"negative width":   {`{"kind":"line","x":"d","y":["n"],"width":-1}`, `invalid card spec: width -1 is outside 240..2400 points (0 = 576)`},
		"long title":       {`{"kind":"kpi","y":["n"],"title":"` + long + `"}`, `invalid card spec: title is 201 characters; at most 200`},
		"control in title": {`{"kind":"kpi","y":["n"],"title":"a\nb"}`, `invalid card spec: title contains the control character U+000A; use plain text`},
		"long unit":        {`{"kind":"kpi","y":["n"],"unit":"` + strings.Repeat("u", 21) + `"}`, `invalid card spec: unit is 21 characters; at most 20`},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ParseSpec(json.RawMessage(tc.raw))
			if !errors.Is(err, ErrInvalidSpec) {
				t.Fatalf("err %v, want ErrInvalidSpec", err)
			}
			if err.Error() != tc.want {
				t.Fatalf("got  %s\nwant %s", err, tc.want)
			}
		})
	}
}

func TestParseSpecTooLarge(t *testing.T) {
	t.Parallel()
	raw := `{"kind":"kpi","y":["n"],"title":"` + strings.Repeat(" ", MaxSpecBytes) + `"}`
	_, err := ParseSpec(json.RawMessage(raw))
	want := fmt.Sprintf("invalid card spec: spec is %d bytes, more than the 16384 accepted", len(raw))
	if err == nil || err.Error() != want {
		t.Fatalf("got %v, want %s", err, want)
	}
}

// TestRenderSpecErrors: a spec that does not fit the result fails with
// ErrInvalidSpec naming the columns that exist.
func TestRenderSpecErrors(t *testing.T) {
	t.Parallel()
	tbl := &warehouse.Table{
		Columns: cols("day", "DATE", "tool", "VARCHAR", "calls", "BIGINT", "calls", "BIGINT", "Cost", "DOUBLE"),
		Rows:    [][]any{{t0, "Bash", int64(3), int64(4), 1.5}},
	}
	const list = "the result's columns are day DATE, tool VARCHAR, calls BIGINT, calls BIGINT, Cost DOUBLE"
	for name, tc := range map[string]struct {
		spec Spec
		want string
	}{
		"no such x":        {Spec{Kind: KindLine, X: "hour", Y: []string{"Cost"}}, `invalid card spec: x: no column "hour" in the result; ` + list},
		"no such y":        {Spec{Kind: KindBar, X: "tool", Y: []string{"count"}}, `invalid card spec: y[0]: no column "count" in the result; ` + list},
		"y is text":        {Spec{Kind: KindBar, X: "day", Y: []string{"tool"}}, `invalid card spec: y[0]: column "tool" is text (VARCHAR) but must be a number; ` + list},
		"y is a date":      {Spec{Kind: KindLine, X: "tool", Y: []string{"day"}}, `invalid card spec: y[0]: column "day" is time (DATE) but must be a number; ` + list},
		"ambiguous":        {Spec{Kind: KindBar, X: "tool", Y: []string{"calls"}}, `invalid card spec: y[0]: the result has 2 columns named "calls"; give them distinct names with AS`},
		"no such series":   {Spec{Kind: KindStackedBar, X: "day", Y: []string{"Cost"}, Series: "model"}, `invalid card spec: series: no column "model" in the result; ` + list},
		"no such delta":    {Spec{Kind: KindKPI, Y: []string{"Cost"}, Delta: "prev"}, `invalid card spec: delta: no column "prev" in the result; ` + list},
		"delta is text":    {Spec{Kind: KindKPI, Y: []string{"Cost"}, Delta: "tool"}, `invalid card spec: delta: column "tool" is text (VARCHAR) but must be a number; ` + list},
		"table column":     {Spec{Kind: KindTable, Y: []string{"tool", "nope"}}, `invalid card spec: y[1]: no column "nope" in the result; ` + list},
		"heatmap value":    {Spec{Kind: KindHeatmap, X: "day", Series: "tool", Y: []string{"tool"}}, `invalid card spec: y[0]: column "tool" is text (VARCHAR) but must be a number; ` + list},
		"unknown kind":     {Spec{Kind: "donut"}, `invalid card spec: unknown kind "donut"; the kinds are line, bar, stacked_bar, table, kpi, heatmap`},
		"spec on its own":  {Spec{Kind: KindLine, Y: []string{"Cost"}}, `invalid card spec: line needs x, the column for the x axis`},
		"case insensitive": {Spec{Kind: KindLine, X: "DAY", Y: []string{"cost"}}, ""},
	} {
		t.Run(name, func(t *testing.T) {
			c, err := Render(tbl, tc.spec, Options{Formats: FormatNone})
			if tc.want == "" {
				if err != nil || c == nil {
					t.Fatalf("got %v", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidSpec) {
				t.Fatalf("err %v, want ErrInvalidSpec", err)
			}
			if err.Error() != tc.want {
				t.Fatalf("got  %s\nwant %s", err, tc.want)
			}
		})
	}
}

// TestRenderEmptyResult: no rows is a "no data" card for every kind, not
// an error, and a spec that does not fit the (empty) result's columns is
// still refused.
func TestRenderEmptyResult(t *testing.T) {
	t.Parallel()
	empty := &warehouse.Table{Columns: cols("day", "DATE", "tool", "VARCHAR", "calls", "BIGINT")}
	for _, s := range []Spec{
		{Kind: KindLine, Title: "T", X: "day", Y: []string{"calls"}},
		{Kind: KindBar, Title: "T", X: "tool", Y: []string{"calls"}},
		{Kind: KindStackedBar, Title: "T", X: "day", Y: []string{"calls"}, Series: "tool"},
		{Kind: KindTable, Title: "T"},
		{Kind: KindKPI, Title: "T", Y: []string{"calls"}},
		{Kind: KindHeatmap, Title: "T", X: "day", Series: "tool", Y: []string{"calls"}},
	} {
		for name, tbl := range map[string]*warehouse.Table{"no rows": empty, "nil": nil} {
			if tbl == nil && s.Kind != KindTable {
				continue // a nil result has no columns to check the spec against
			}
			c, err := Render(tbl, s, Options{DPI: MinDPI})
			if err != nil {
				t.Fatalf("%s %s: %v", s.Kind, name, err)
			}
			if !c.NoData || c.Markdown != "**T**: no data. The query returned no rows.\n" || len(c.SVG) == 0 || len(c.PNG) == 0 {
				t.Errorf("%s %s: NoData %v, Markdown %q", s.Kind, name, c.NoData, c.Markdown)
			}
			if !strings.Contains(string(c.SVG), ">No data</text>") {
				t.Errorf("%s %s: the SVG does not say No data", s.Kind, name)
			}
		}
	}
	_, err := Render(empty, Spec{Kind: KindLine, X: "hour", Y: []string{"calls"}}, Options{})
	if !errors.Is(err, ErrInvalidSpec) {
		t.Fatalf("a wrong column on an empty result: %v", err)
	}
	// Rows but no value to draw: no data, and the notes say why.
	nulls := &warehouse.Table{Columns: empty.Columns, Rows: [][]any{{t0, "Bash", nil}, {t0, "Read", nil}}}
	c, err := Render(nulls, Spec{Kind: KindBar, Title: "T", X: "tool", Y: []string{"calls"}}, Options{Formats: FormatNone})
	if err != nil {
		t.Fatal(err)
	}
	if want := "**T**: no data. None of the 2 rows has a value to draw.\n\nNotes:\n- 2 values without a number not drawn.\n"; !c.NoData || c.Markdown != want {
		t.Fatalf("got %q\nwant %q", c.Markdown, want)
	}
}

func TestOptionsErrors(t *testing.T) {
	t.Parallel()
	tbl, s := callsByTool(), Spec{Kind: KindBar, X: "tool", Y: []string{"calls"}}
	for _, tc := range []struct {
		o    Options
		want string
	}{
		{Options{MaxPoints: -1}, "card options: MaxPoints is -1; want 0 (default 500) or more"},
		{Options{MaxSeries: 9}, "card options: MaxSeries is 9; at most 8"},
		{Options{DPI: 1000}, "card options: DPI 1000 is outside 36..300"},
	} {
		_, err := Render(tbl, s, tc.o)
		if err == nil || err.Error() != tc.want || errors.Is(err, ErrInvalidSpec) {
			t.Errorf("%+v: got %v, want %s", tc.o, err, tc.want)
		}
	}
}

func FuzzParseSpec(f *testing.F) {
	for _, c := range goldenCases() {
		b, _ := json.Marshal(c.spec)
		f.Add(b)
	}
	for _, s := range []string{``, `{}`, `[]`, `null`, `{"kind":"pie"}`, `{"kind":"line","y":"n"}`, `{"kind":"kpi","y":["n"],"width":1e400}`, `{"kind":"table","y":["\u0000"]}`} {
		f.Add([]byte(s))
	}
	tbl := latencyByHour()
	f.Fuzz(func(t *testing.T, raw []byte) {
		s, err := ParseSpec(raw)
		if err != nil {
			if !errors.Is(err, ErrInvalidSpec) {
				t.Fatalf("error without ErrInvalidSpec: %v", err)
			}
			if strings.ContainsAny(err.Error(), "\n\r") {
				t.Fatalf("multi-line error: %q", err)
			}
			return
		}
		// An accepted spec is valid, survives a round trip, and renders or
		// fails only for the result's columns.
		if err := s.Validate(); err != nil {
			t.Fatalf("accepted but invalid: %v", err)
		}
		b, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		again, err := ParseSpec(b)
		if err != nil || !reflect.DeepEqual(again, s) {
			t.Fatalf("round trip of %s: %+v, %v", b, again, err)
		}
		if _, err := Render(tbl, s, Options{Formats: FormatNone}); err != nil && !errors.Is(err, ErrInvalidSpec) {
			t.Fatalf("render %+v: %v", s, err)
		}
	})
}

// TestSVGEscapes: text from the data and the spec cannot inject markup
// into an SVG that the dashboard inlines.
func TestSVGEscapes(t *testing.T) {
	t.Parallel()
	tbl := &warehouse.Table{Columns: cols("tool", "VARCHAR", "calls", "BIGINT"), Rows: [][]any{
		{`<script>alert(1)</script>`, int64(3)}, {"a\uFFFEb\x00c", int64(2)}, {`" onload="x`, int64(1)},
	}}
	c, err := Render(tbl, Spec{Kind: KindBar, Title: `<b>"T"</b> & co`, X: "tool", Y: []string{"calls"}}, Options{Formats: FormatSVG})
	if err != nil {
		t.Fatal(err)
	}
	svg := string(c.SVG)
	for _, bad := range []string{"<script", "<b>", "\uFFFE", "\x00", `" onload`} {
		if strings.Contains(svg, bad) {
			t.Errorf("the SVG contains %q", bad)
		}
	}
	for _, good := range []string{"&lt;script&gt;alert(1)&lt;/scr…", "&#34; onload=&#34;x", "&lt;b&gt;&#34;T&#34;&lt;/b&gt; &amp; co", "a\uFFFDb c"} {
		if !strings.Contains(svg, good) {
			t.Errorf("the SVG lacks %q", good)
		}
	}
	if strings.Contains(c.Markdown, "<script>") || !strings.Contains(c.Markdown, "&lt;script&gt;") {
		t.Errorf("Markdown: %s", c.Markdown)
	}
}
