package card

import (
	"bytes"
	"errors"
	"fmt"
	"image/png"
	"strings"
	"time"

	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"

	"github.com/activitybi/activitybi/internal/warehouse"
)

// Card is a rendered card.
type Card struct {
	Spec Spec
	SVG  []byte // nil unless Options.Formats asked for it
	PNG  []byte // nil unless Options.Formats asked for it
	// Markdown is a short summary for a person or a model: the key
	// numbers, the trend, what changed, and the notes.
	Markdown string
	// Capped says that the card's own limits (Options) left rows, series,
	// categories or columns undrawn; Notes and Markdown say how many.
	Capped bool
	// NoData says the result had no rows (or none with a value to draw);
	// the card then says "No data" instead of failing.
	NoData bool
	// Notes are the caveats, also at the end of Markdown: caps hit, rows
	// skipped for missing values, a result the query itself truncated.
	Notes []string
}

// Format is a set of output formats.
type Format uint8

// The formats.
const (
	FormatSVG Format = 1 << iota
	FormatPNG
	// FormatNone renders only the Markdown summary.
	FormatNone Format = 1 << 7
)

// Limits of what a card draws. A card draws aggregates (the SQL groups
// and orders); these keep a result that did not from making a slow render
// or an unreadable picture, and every one that is hit is said in Notes and
// counted (activitybi_card_limit_hits_total).
const (
	// DefaultMaxRows is the most rows of a result a card reads: it bounds
	// the one pass over the rows (0.1-0.2 us of CPU a row, so at most about
	// 35 ms), so that a result of any size renders in bounded time. The
	// rows after it are not read; the card says so.
	DefaultMaxRows = 200_000
	// DefaultMaxPoints is the most points drawn per series of a line chart:
	// about one per point of width at the default size.
	DefaultMaxPoints = 500
	// DefaultMaxCategories is the most x categories of a bar, stacked bar
	// or heatmap (and heatmap rows): beyond about 60 a label no longer fits
	// under its bar.
	DefaultMaxCategories = 60
	// DefaultMaxSeries is the most series drawn: the 8 colours of the
	// Okabe-Ito palette. The series with the largest total are kept.
	DefaultMaxSeries = 8
	// DefaultMaxTableRows is the most rows a table card draws (its picture
	// grows with the rows up to this).
	DefaultMaxTableRows = 30
	// DefaultMaxTableCells bounds the cells a table card draws (rows x
	// columns); with many columns fewer rows are drawn.
	DefaultMaxTableCells = 2000
	// DefaultMarkdownRows is the most rows of a table card's Markdown.
	DefaultMarkdownRows = 10
	// DefaultDPI is the PNG's resolution: the default card is 960 x 600
	// pixels, 1.25 pixels per CSS pixel, sharp at the scaling of most
	// screens and about 770 image tokens for Claude (144, retina-sharp,
	// costs 1,100 tokens and a third more render time). The dashboard
	// inlines the SVG, which is sharp at any size.
	DefaultDPI = 120
	// MinDPI and MaxDPI bound Options.DPI.
	MinDPI = 36
	MaxDPI = 300
)

// Options tune a render. The zero value renders SVG and PNG with the
// default limits.
type Options struct {
	// Formats to produce; 0 = FormatSVG|FormatPNG; FormatNone = only the
	// Markdown.
	Formats Format
	// MaxRows caps the rows of the result the card reads (the first ones);
	// 0 = DefaultMaxRows.
	MaxRows int
	// MaxPoints caps the points per series of a line chart; 0 =
	// DefaultMaxPoints. The first MaxPoints rows of each series (in the
	// result's order) are drawn.
	MaxPoints int
	// MaxCategories caps the x categories of bar, stacked_bar and heatmap
	// and the heatmap's rows; 0 = DefaultMaxCategories. The first ones met
	// in the result's order are drawn.
	MaxCategories int
	// MaxSeries caps the series; 0 = DefaultMaxSeries (at most 8).
	MaxSeries int
	// MaxTableRows and MaxTableCells cap a table card; 0 =
	// DefaultMaxTableRows, DefaultMaxTableCells.
	MaxTableRows  int
	MaxTableCells int
	// MarkdownRows caps the rows of a table card's Markdown; 0 =
	// DefaultMarkdownRows.
	MarkdownRows int
	// DPI of the PNG; 0 = DefaultDPI.
	DPI int
	// Metrics counts renders, durations and limits hit; nil = not counted.
	Metrics *Metrics

	unread int // rows after MaxRows, set by Render for the builders
}

func (o Options) withDefaults() (Options, error) {
	def := func(name string, v *int, d, max int) error {
		switch {
		case *v < 0:
			return fmt.Errorf("card options: %s is %d; want 0 (default %d) or more", name, *v, d)
		case *v == 0:
			*v = d
		case max > 0 && *v > max:
			return fmt.Errorf("card options: %s is %d; at most %d", name, *v, max)
		}
		return nil
	}
	for _, e := range []error{
		def("MaxRows", &o.MaxRows, DefaultMaxRows, 0),
		def("MaxPoints", &o.MaxPoints, DefaultMaxPoints, 0),
		def("MaxCategories", &o.MaxCategories, DefaultMaxCategories, 0),
		def("MaxSeries", &o.MaxSeries, DefaultMaxSeries, len(palette)),
		def("MaxTableRows", &o.MaxTableRows, DefaultMaxTableRows, 0),
		def("MaxTableCells", &o.MaxTableCells, DefaultMaxTableCells, 0),
		def("MarkdownRows", &o.MarkdownRows, DefaultMarkdownRows, 0),
	} {
		if e != nil {
			return o, e
		}
	}
	if o.DPI == 0 {
		o.DPI = DefaultDPI
	}
	if o.DPI < MinDPI || o.DPI > MaxDPI {
		return o, fmt.Errorf("card options: DPI %d is outside %d..%d", o.DPI, MinDPI, MaxDPI)
	}
	if o.Formats == 0 {
		o.Formats = FormatSVG | FormatPNG
	}
	return o, nil
}

// ErrInternal marks a render that failed on our side (a drawing library
// panic, an encoder error), not because of the spec or the data.
var ErrInternal = errors.New("card render failed")

// picture is what a kind's builder hands to Render: the size, how to draw,
// the summary and notes.
type picture struct {
	w, h   vg.Length
	draw   func(c draw.Canvas)
	md     string // summary without the notes
	notes  []string
	capped bool
	noData bool
	hits   []string // limits hit, for the metric
}

// Render draws the card of spec s from the result t. The spec is checked on
// its own and against t's columns; errors that are the spec's fault wrap
// ErrInvalidSpec and name the columns that exist. A result without rows
// (nil included) is not an error: the card says "No data". Render is safe
// for concurrent use, and the same input gives byte-identical SVG and PNG.
func Render(t *warehouse.Table, s Spec, o Options) (c *Card, err error) {
	start := time.Now()
	m := o.Metrics
	defer func() {
		if r := recover(); r != nil {
			c, err = nil, fmt.Errorf("%w: %s: %v", ErrInternal, s.Kind, r)
		}
		m.observe(s.Kind, c, err, time.Since(start))
	}()
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if o, err = o.withDefaults(); err != nil {
		return nil, err
	}
	if t == nil {
		t = &warehouse.Table{}
	}
	returned := len(t.Rows)
	if len(t.Rows) > o.MaxRows {
		o.unread = len(t.Rows) - o.MaxRows
		t = &warehouse.Table{Columns: t.Columns, Rows: t.Rows[:o.MaxRows], Truncated: t.Truncated}
	}
	var pic *picture
	switch s.Kind {
	case KindLine:
		pic, err = buildLine(t, s, o)
	case KindBar, KindStackedBar:
		pic, err = buildBar(t, s, o)
	case KindTable:
		pic, err = buildTable(t, s, o)
	case KindKPI:
		pic, err = buildKPI(t, s, o)
	case KindHeatmap:
		pic, err = buildHeatmap(t, s, o)
	}
	if err != nil {
		return nil, err
	}
	if unread := o.unread; unread > 0 {
		pic.capped = true
		pic.hits = append(pic.hits, limitRows)
		pic.notes = append(pic.notes, fmt.Sprintf("Only the first %s rows were read; %s more were not (at most %s; aggregate in SQL).",
			plainNumber(float64(o.MaxRows)), plainNumber(float64(unread)), plainNumber(float64(o.MaxRows))))
	}
	if t.Truncated {
		pic.notes = append(pic.notes, fmt.Sprintf("The query returned only its first %s rows; the result had more.", plainNumber(float64(returned))))
	}
	c = &Card{Spec: s, Capped: pic.capped, NoData: pic.noData, Notes: pic.notes}
	var md strings.Builder
	md.WriteString(strings.TrimRight(pic.md, "\n") + "\n")
	if len(pic.notes) > 0 {
		md.WriteString("\nNotes:\n")
		for _, n := range pic.notes {
			md.WriteString("- " + n + "\n")
		}
	}
	c.Markdown = md.String()
	if o.Formats&FormatSVG != 0 {
		if c.SVG, err = renderSVG(pic); err != nil {
			return nil, err
		}
	}
	if o.Formats&FormatPNG != 0 {
		if c.PNG, err = renderPNG(pic, o.DPI); err != nil {
			return nil, err
		}
	}
	m.hit(pic.hits)
	return c, nil
}

// svgFontFamily is how vgsvg names the font; svgFontStack adds fallbacks
// for a viewer without Liberation Sans (Arial has the same metrics, so the
// layout holds).
var (
	svgFontFamily = []byte("font-family:Liberation Sans;")
	svgFontStack  = []byte("font-family:'Liberation Sans',Arial,Helvetica,sans-serif;")
)

func renderSVG(p *picture) ([]byte, error) {
	cv := vgsvg.New(p.w, p.h)
	dc := draw.New(cv)
	// The PNG canvas starts white; an SVG starts transparent.
	dc.SetColor(white)
	dc.Fill(dc.Rectangle.Path())
	p.draw(dc)
	var b bytes.Buffer
	if _, err := cv.WriteTo(&b); err != nil {
		return nil, fmt.Errorf("%w: write svg: %v", ErrInternal, err)
	}
	return bytes.ReplaceAll(b.Bytes(), svgFontFamily, svgFontStack), nil
}

func renderPNG(p *picture, dpi int) ([]byte, error) {
	cv := newPNGCanvas(p.w, p.h, dpi)
	p.draw(draw.New(cv))
	var b bytes.Buffer
	// BestSpeed: a card is mostly flat colour, so it compresses well
	// anyway, and the default level costs several times the encode time.
	enc := png.Encoder{CompressionLevel: png.BestSpeed}
	if err := enc.Encode(&b, cv.img); err != nil {
		return nil, fmt.Errorf("%w: encode png: %v", ErrInternal, err)
	}
	return b.Bytes(), nil
}
