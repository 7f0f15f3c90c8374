// Package sqltmpl is the SafeSQL template library: the only SQL that a
// question from Claude can reach the warehouse through, apart from the
// ActivitySchema dataset compiler (sub-package dataset).
//
// # Templates
//
// Each template is one embedded file, templates/<name>.sql: a metadata
// header in a leading block comment (YAML: name, description, the features
// it reads, typed parameters with ranges and defaults, timeout, result
// columns, default card) followed by one SQL statement per dialect, each
// after a `-- dialect: duckdb` or `-- dialect: snowflake` line.
//
// The SQL of a section stays valid SQL of its dialect, with two kinds of
// slots, in the spirit of river's sqlctemplate:
//
//   - $name is a value: it becomes a ? placeholder and the parameter's
//     normalized value is appended to Rendered.Args. ($name is valid syntax
//     in both dialects: a named parameter in DuckDB, a session variable in
//     Snowflake.) A value is never part of the SQL text.
//   - /* SLOT: name */ default /* END */ is an identifier or expression
//     chosen by an enum parameter: the text between the markers is replaced
//     by the fixed fragment the metadata maps the chosen value to (a time
//     bucket, a group-by dimension, an aggregate). The fragments are
//     constants reviewed with the template; input only selects one.
//
// Load fails on any mismatch between metadata and SQL: a $name or slot that
// no parameter declares, a parameter that a dialect does not use, an enum
// value without a fragment, a stray ? or $, a second statement, a default
// outside its own range. So a template that loads renders only what its
// metadata says.
//
// # Windows and buckets
//
// A template with `window:` in its metadata gets the parameters days, from
// and to, and may use three derived values: $window_start, $window_end (the
// window is [start, end)) and $prev_start (the start of the window of the
// same length just before it, for period-over-period comparisons). days
// counts back from to, or from the render's now, which the caller passes
// in. A template with `bucket:` gets the enum parameter bucket (hour, day,
// week, month) and the slot bucket; the number of buckets a window spans is
// bounded by MaxBuckets.
//
// # Isolation
//
// Templates read bare table names (claude_stream, insight_atoms) and never
// name a customer: they run through warehouse.Driver.CustomerQuery, where
// those names hold only the caller's customer's rows.
//
// # Parameters
//
// Render takes the parameters as the JSON object of a tool call, checks
// every one (unknown, duplicated, wrong type, out of range, too long, not
// an allowed value, missing) and reports every problem at once in an
// *InvalidParamsError, which wraps ErrInvalidParams. The limits are named
// constants (MaxParamsBytes, DefaultMaxLen, MaxWindowDays, MaxBuckets and
// each parameter's Min, Max and MaxLen) and every refusal is counted
// (Register).
//
// # Writing a template
//
// DuckDB sections parse each event's features once: select
// json_extract_string(feature_json, list_value('a', 'b')) AS f in a
// subquery and read f[1], f[2] (one ->> per key parses the JSON once per
// key, about three times the cost; bench/sqltmpl.md). If ->> is used,
// parenthesize it wherever it meets another operator, as in
// (feature_json->>'k') = $x: DuckDB gives ->> a low precedence, and without
// the parentheses a filter of the form "$x is empty OR feature_json->>'k'
// equals $x" matched no rows, and "feature_json->>'k' IS NOT NULL" after a
// parameter failed with a cast error. Snowflake sections quote their output
// aliases ("calls") so that columns come back lowercase, as the metadata
// names them. Every value that may be absent is an optional string bound as
// the empty string (no filter) or has a default: arguments are never NULL.
// The tests run every DuckDB statement, with every enum value, on a real
// warehouse; the Snowflake text is checked by its golden files only.
package sqltmpl
