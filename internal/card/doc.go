// Package card draws a query result as a card: a chart or table in SVG and
// PNG (gonum.org/v1/plot, no browser) and a short Markdown summary with the
// key numbers, the trend and what changed. render_card and the dashboard
// call [Render]; a spec that comes as JSON (from a tool call) goes through
// [ParseSpec] first.
//
// # Kinds
//
//   - line: one or more series over x. x may be a time (a date axis whose
//     ticks fall on whole minutes, hours, days, Mondays, months or years,
//     the finest step whose labels do not overlap), a number or text. The
//     series are the y columns, or the values of the series column.
//   - bar, stacked_bar: one bar (or group, or stack) per x category, in
//     the result's order for text and ascending for times and numbers.
//     Stacks put positive values above zero and negative ones below. Text
//     categories whose labels do not fit under their bars are drawn as
//     horizontal bars (labels level and whole) when the rows fit. A single
//     series gets its values written at the bar ends.
//   - table: the rows (the y columns, or all), numbers right-aligned; the
//     picture's height follows the rows.
//   - kpi: one big number with its unit, the change (arrow, percentage,
//     difference) against the delta column or, without one, the first row,
//     and a sparkline when there are three values or more.
//   - heatmap: x by series grid coloured by the one y column, with a
//     colour scale; cells without a row stay grey.
//
// # Design
//
// A card has a left-aligned title, a muted line saying what was not drawn
// (when a limit was hit), a legend in rows under the title (never over the
// data), light horizontal gridlines and a grey x axis. Series take the
// Okabe-Ito palette, which stays distinct under every kind of colour
// blindness; the heatmap uses a single-hue sequential scale (ColorBrewer
// Blues). Text is Liberation Sans, embedded in gonum/plot, so every
// machine draws the same glyphs; the SVG names Arial (same metrics) as the
// fallback for viewers without it. Value ticks are nice steps (1, 2, 2.5,
// 5 x 10^k; whole numbers for whole data) labelled compactly (1.2k, 3.4M)
// with the unit in the axis label; a time axis is labelled "(UTC)". Text
// categories that do not fit level (and are not drawn as horizontal bars)
// are turned 45 degrees and, when even that does not fit, only every k-th
// is labelled; times and numbers are thinned instead. Values written on a
// chart share one number of decimals. A legend takes at most a row per 80
// points of height and says how many entries it left out. A glyph missing
// from the font (emoji, CJK) shows as a box in the PNG.
//
// # Limits
//
// A card draws aggregates: the SQL groups and orders, the card reads at
// most DefaultMaxRows rows and draws at most DefaultMaxPoints points per
// series, DefaultMaxCategories categories, DefaultMaxSeries series (the
// largest by total) and DefaultMaxTableRows rows (Options override them).
// What a limit leaves out is said under the title, in Card.Notes and in
// the Markdown, Card.Capped is set, and the limit is counted in
// activitybi_card_limit_hits_total. Reading is one pass over at most
// DefaultMaxRows rows, so a result of any size renders in bounded time
// (bench/card.md).
//
// # Errors
//
// Every mistake in a spec (unknown kind or field, a column the result does
// not have or of the wrong type, a field the kind does not use) is an error
// wrapping [ErrInvalidSpec] that says what is accepted and lists the
// result's columns. A result with no rows is not an error: the card says
// "No data". Missing values are skipped (a line breaks at them) and
// counted in the notes.
//
// # Determinism
//
// The same input gives byte-identical SVG and PNG: no timestamps, random
// ids or map order reach the output, and the fonts are compiled in (the
// SVG names them; it does not embed them). Floating point rounding is the
// platform's, so golden files are exact on one architecture (the tests
// compare SVGs exactly and PNGs with a small tolerance).
//
// # Cost
//
// A card costs 5-65 ms of CPU, most of it the PNG (rasterizing and
// encoding); the SVG alone costs 2-3 ms and the Markdown alone 0.1 ms
// (bench/card.md). The PNG is 120 dpi (960 x 600 pixels by default).
package card
