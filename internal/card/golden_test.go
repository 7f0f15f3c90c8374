package card

import (
	"bytes"
	"flag"
	"image"
	"image/draw"
	"image/png"
	"os"
	"path/filepath"
	"testing"

	"github.com/activitybi/activitybi/internal/warehouse"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// goldenCase is one card drawn from fixed data.
type goldenCase struct {
	name string
	t    *warehouse.Table
	spec Spec
	opts Options
	// want* check the card beyond the files.
	capped, noData bool
}

func goldenCases() []goldenCase {
	return []goldenCase{
		{name: "line", t: latencyByHour(), spec: Spec{Kind: KindLine, Title: "p95 latency by model", X: "hour", Y: []string{"p95_ms"}, Series: "model", YLabel: "p95 latency", Unit: "ms"}},
		{name: "line_daily", t: eventsByDay(), spec: Spec{Kind: KindLine, Title: "Events per day", X: "day", Y: []string{"events"}, Unit: "events"}},
		{name: "bar", t: callsByTool(), spec: Spec{Kind: KindBar, Title: "Tool calls, last 30 days", X: "tool", Y: []string{"calls"}, Unit: "calls"}},
		{name: "stacked_bar", t: costByDayModel(), spec: Spec{Kind: KindStackedBar, Title: "Daily cost by model", X: "day", Y: []string{"cost_usd"}, Series: "model", YLabel: "Cost", Unit: "USD"}},
		{name: "table", t: sessions(), spec: Spec{Kind: KindTable, Title: "Recent sessions"}},
		{name: "kpi", t: weekCost(), spec: Spec{Kind: KindKPI, Title: "Cost this week", Y: []string{"cost_usd"}, Delta: "prev_cost_usd", Unit: "USD"}},
		{name: "kpi_spark", t: dailyActive(), spec: Spec{Kind: KindKPI, Title: "Sessions per day", X: "day", Y: []string{"sessions"}, Unit: "sessions"}},
		{name: "heatmap", t: activityGrid(), spec: Spec{Kind: KindHeatmap, Title: "When Claude is used", X: "hour", Series: "weekday", Y: []string{"events"}, XLabel: "Hour of day (UTC)", YLabel: "Weekday", Unit: "events"}},
		{name: "heatmap_values", t: latencyGrid(), spec: Spec{Kind: KindHeatmap, Title: "Median latency by model and weekday", X: "weekday", Series: "model", Y: []string{"p50_s"}, Unit: "s"}},
		{name: "small_legend", t: eightProjects(), spec: Spec{Kind: KindLine, Title: "Sessions per week by project", X: "week", Y: []string{"sessions"}, Series: "project", Width: 320, Height: 200}},
		{name: "no_data", t: &warehouse.Table{Columns: cols("day", "DATE", "events", "BIGINT")}, spec: Spec{Kind: KindLine, Title: "Events per day", X: "day", Y: []string{"events"}}, noData: true},
		{name: "capped_bar", t: manyCategories(), spec: Spec{Kind: KindBar, Title: "Requests by endpoint", X: "endpoint", Y: []string{"requests"}}, capped: true},
		{name: "capped_line", t: longLine(), spec: Spec{Kind: KindLine, Title: "Requests per second", X: "minute", Y: []string{"rps"}, Unit: "req/s"}, capped: true},
	}
}

// TestGolden renders every kind from fixed data and compares with
// testdata/golden: the SVG and the Markdown byte for byte, the PNG pixel
// by pixel within a small tolerance (anti-aliasing may differ between
// platforms; a moved label or bar does not pass). Run with -update to
// rewrite them, then look at the PNGs.
func TestGolden(t *testing.T) {
	for _, tc := range goldenCases() {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := Render(tc.t, tc.spec, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if c.Capped != tc.capped || c.NoData != tc.noData {
				t.Errorf("Capped %v NoData %v, want %v %v (notes %q)", c.Capped, c.NoData, tc.capped, tc.noData, c.Notes)
			}
			again, err := Render(tc.t, tc.spec, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(c.SVG, again.SVG) || !bytes.Equal(c.PNG, again.PNG) || c.Markdown != again.Markdown {
				t.Fatal("two renders of the same input differ")
			}
			base := filepath.Join("testdata", "golden", tc.name)
			if *update {
				for ext, b := range map[string][]byte{".svg": c.SVG, ".png": c.PNG, ".md": []byte(c.Markdown)} {
					if err := os.WriteFile(base+ext, b, 0o644); err != nil {
						t.Fatal(err)
					}
				}
				return
			}
			for ext, got := range map[string][]byte{".svg": c.SVG, ".md": []byte(c.Markdown)} {
				want, err := os.ReadFile(base + ext)
				if err != nil {
					t.Fatalf("%v (run go test -update to create it)", err)
				}
				if !bytes.Equal(got, want) {
					t.Errorf("%s%s differs from the golden file (%d bytes, want %d); run go test -run TestGolden -update and look at the diff", tc.name, ext, len(got), len(want))
				}
			}
			want, err := os.ReadFile(base + ".png")
			if err != nil {
				t.Fatal(err)
			}
			if msg := comparePNG(c.PNG, want); msg != "" {
				t.Errorf("%s.png: %s", tc.name, msg)
			}
		})
	}
}

// PNG tolerance: a pixel differs when a channel differs by more than
// pngChannelTolerance; at most pngPixelShare of the pixels may differ.
const (
	pngChannelTolerance = 24
	pngPixelShare       = 0.002
)

func comparePNG(got, want []byte) string {
	g, err := decodeRGBA(got)
	if err != nil {
		return "decode rendered: " + err.Error()
	}
	w, err := decodeRGBA(want)
	if err != nil {
		return "decode golden: " + err.Error()
	}
	if g.Bounds() != w.Bounds() {
		return "size " + g.Bounds().String() + ", want " + w.Bounds().String()
	}
	diff := 0
	for i := 0; i < len(g.Pix); i += 4 {
		for k := range 4 {
			if d := int(g.Pix[i+k]) - int(w.Pix[i+k]); d > pngChannelTolerance || d < -pngChannelTolerance {
				diff++
				break
			}
		}
	}
	total := g.Bounds().Dx() * g.Bounds().Dy()
	if float64(diff) > pngPixelShare*float64(total) {
		return "differs in " + itoa(diff) + " of " + itoa(total) + " pixels"
	}
	return ""
}

func decodeRGBA(b []byte) (*image.RGBA, error) {
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	out := image.NewRGBA(img.Bounds())
	draw.Draw(out, out.Bounds(), img, img.Bounds().Min, draw.Src)
	return out, nil
}

func itoa(n int) string { return plainNumber(float64(n)) }
