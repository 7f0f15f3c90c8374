package card

import (
	"bytes"
	"encoding/xml"
	"errors"
	"image/png"
	"io"
	"math"
	"math/big"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/activitybi/activitybi/internal/warehouse"
)

// randomCase makes a result and a spec from r: mostly plausible, with
// hostile values mixed in (NULLs, NaN and infinities, values of the wrong
// type, huge numbers, times at the ends of the calendar, control
// characters and invalid UTF-8, JSON values, duplicate and empty column
// names, rows of the wrong length).
func randomCase(r *rand.Rand) (*warehouse.Table, Spec, Options) {
	types := []string{"TIMESTAMP", "DATE", "BIGINT", "DOUBLE", "VARCHAR", "HUGEINT", "DECIMAL(18,2)", "BOOLEAN", "JSON", "", "STRUCT(a INTEGER)", "BIGINT", "DOUBLE", "VARCHAR", "TIMESTAMP"}
	good := []string{"a", "b", "c", "x y", "ünï"}
	names := append(slices.Clone(good), "A", "", "dup", "bad\x00name") // for chaos
	nc := 1 + r.IntN(5)
	t := &warehouse.Table{Truncated: r.IntN(8) == 0}
	for i := range nc {
		name := good[i]
		if r.IntN(7) == 0 {
			name = names[r.IntN(len(names))] // may repeat another column's name
		}
		t.Columns = append(t.Columns, warehouse.Column{Name: name, Type: types[r.IntN(len(types))]})
	}
	nr := []int{0, 1, 2, 3, 7, 30, 200, 700}[r.IntN(8)]
	for range nr {
		n := nc
		if r.IntN(50) == 0 {
			n = r.IntN(nc + 2) // a malformed row
		}
		row := make([]any, n)
		for i := range row {
			typ := ""
			if i < nc {
				typ = t.Columns[i].Type
			}
			row[i] = randomValue(r, typ)
		}
		t.Rows = append(t.Rows, row)
	}
	pick := func() string {
		if r.IntN(6) == 0 {
			return names[r.IntN(len(names))]
		}
		return t.Columns[r.IntN(nc)].Name
	}
	// Numeric columns, for the value roles of a well-shaped spec.
	var numeric []string
	for _, c := range t.Columns {
		if k, ok := kindOfType(c.Type); ok && k == colNumber {
			numeric = append(numeric, c.Name)
		}
	}
	pickNum := func() string {
		if len(numeric) == 0 || r.IntN(10) == 0 {
			return pick()
		}
		return numeric[r.IntN(len(numeric))]
	}
	allKinds := append(Kinds(), "bogus")
	s := Spec{Kind: allKinds[r.IntN(len(allKinds))], Title: []string{"", "T", "a title that goes on and on and on and on and on and on and on and on and on"}[r.IntN(3)]}
	if r.IntN(5) == 0 {
		// Anything at all.
		if r.IntN(4) > 0 {
			s.X = pick()
		}
		for range r.IntN(4) {
			s.Y = append(s.Y, pick())
		}
		if r.IntN(3) == 0 {
			s.Series = pick()
		}
		if r.IntN(5) == 0 {
			s.Delta = pick()
		}
	} else {
		// The fields the kind needs, from the result's columns.
		switch s.Kind {
		case KindLine, KindBar, KindStackedBar:
			s.X = pick()
			s.Y = []string{pickNum()}
			if r.IntN(2) == 0 {
				s.Series = pick()
			} else if y2 := pickNum(); r.IntN(2) == 0 && y2 != s.Y[0] {
				s.Y = append(s.Y, y2)
			}
		case KindTable:
			for range r.IntN(3) {
				if c := pick(); !slices.Contains(s.Y, c) && c != "" {
					s.Y = append(s.Y, c)
				}
			}
		case KindKPI:
			s.Y = []string{pickNum()}
			if r.IntN(2) == 0 {
				s.Delta = pickNum()
			}
			if r.IntN(2) == 0 {
				s.X = pick()
			}
		case KindHeatmap:
			s.X, s.Series, s.Y = pick(), pick(), []string{pickNum()}
		}
	}
	if s.Kind != KindTable || r.IntN(5) == 0 {
		s.Unit = []string{"", "ms", "USD", "%", "events"}[r.IntN(5)]
	}
	if r.IntN(4) == 0 {
		s.Width = []int{MinWidth, MaxWidth, 100, 300}[r.IntN(4)]
		s.Height = []int{MinHeight, 200, 5000, 161}[r.IntN(4)]
	}
	o := Options{Formats: FormatSVG}
	if r.IntN(4) == 0 {
		o.MaxPoints, o.MaxCategories, o.MaxSeries, o.MaxTableRows, o.MaxTableCells = 1+r.IntN(5), 1+r.IntN(5), 1+r.IntN(8), 1+r.IntN(5), 1+r.IntN(20)
	}
	return t, s, o
}

func randomValue(r *rand.Rand, typ string) any {
	if r.IntN(10) == 0 {
		chaos := []any{nil, math.NaN(), math.Inf(1), math.Inf(-1), -1e308, 1e308, int64(math.MaxInt64), int64(math.MinInt64),
			"", "a\nb\tc", "\xff\xfe", "\uFFFE\uFFFF", "<script>&amp;</script>", "123456789012345678901234567890", true,
			time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
			map[string]any{"k": 1.0, "a": []any{"x"}}, []any{1.0, "two"}, big.NewInt(7), float32(1.5), uint64(math.MaxUint64)}
		return chaos[r.IntN(len(chaos))]
	}
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	switch typ {
	case "TIMESTAMP":
		return base.Add(time.Duration(r.IntN(1000)) * time.Duration([]int64{1, int64(time.Second), int64(time.Minute), int64(time.Hour), 24 * int64(time.Hour)}[r.IntN(5)]))
	case "DATE":
		return base.AddDate(0, 0, r.IntN(400))
	case "BIGINT", "HUGEINT":
		return int64(r.IntN(2000) - 500)
	case "DOUBLE", "DECIMAL(18,2)":
		return r.NormFloat64() * 1000
	case "BOOLEAN":
		return r.IntN(2) == 0
	case "VARCHAR":
		return []string{"Bash", "Read", "Edit", "a | b", "*bold*", "<tag>", "ünïcödé", "🙂"}[r.IntN(8)]
	}
	return []any{"s", int64(1), 2.5, base}[r.IntN(4)]
}

// checkRender renders one random case: it never panics (Render turns a
// panic into ErrInternal, which fails here), fails only with
// ErrInvalidSpec or an Options error, and what it renders parses.
func checkRender(t *testing.T, tbl *warehouse.Table, s Spec, o Options) (rendered bool) {
	c, err := Render(tbl, s, o)
	if err != nil {
		if errors.Is(err, ErrInternal) {
			t.Fatalf("render failed inside: %v\nspec %+v\ncolumns %+v\nrows %d", err, s, tbl.Columns, len(tbl.Rows))
		}
		return false
	}
	if c.Markdown == "" {
		t.Fatalf("empty Markdown for %+v", s)
	}
	if o.Formats&FormatSVG != 0 {
		dec := xml.NewDecoder(bytes.NewReader(c.SVG))
		for {
			_, err := dec.Token()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("SVG is not XML: %v\nspec %+v", err, s)
			}
		}
	}
	if o.Formats&FormatPNG != 0 {
		if _, err := png.Decode(bytes.NewReader(c.PNG)); err != nil {
			t.Fatalf("PNG: %v", err)
		}
	}
	return !c.NoData
}

// TestRenderNeverPanics renders random tables with random specs (fixed
// seeds, so a failure reproduces).
func TestRenderNeverPanics(t *testing.T) {
	t.Parallel()
	n := 400
	if testing.Short() || raceEnabled {
		n = 120
	}
	drawn := map[Kind]int{}
	for seed := range uint64(n) {
		r := rand.New(rand.NewPCG(seed, 42))
		tbl, s, o := randomCase(r)
		if seed%25 == 0 {
			o.Formats = FormatSVG | FormatPNG
		}
		if checkRender(t, tbl, s, o) {
			drawn[s.Kind]++
		}
	}
	// The generator must reach the drawing code of every kind, not only
	// the spec checks.
	t.Logf("cards with data drawn per kind: %v", drawn)
	for _, k := range kinds {
		if drawn[k] < n/40 {
			t.Errorf("only %d %s cards with data drawn of %d cases", drawn[k], k, n)
		}
	}
}

// FuzzRender drives the same generator from the fuzzer's seeds.
func FuzzRender(f *testing.F) {
	for _, s := range []uint64{0, 1, 7, 99} {
		f.Add(s, s*31)
	}
	f.Fuzz(func(t *testing.T, a, b uint64) {
		tbl, s, o := randomCase(rand.New(rand.NewPCG(a, b)))
		checkRender(t, tbl, s, o)
	})
}
