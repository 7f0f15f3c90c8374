// Package memory builds, versions and renders a customer's context: what
// get_context gives Claude so that it remembers across sessions.
//
// # Build
//
// [Builder.Build] reads one customer's context from the warehouse, through
// [Querier.CustomerQuery] only (so every statement sees that customer's rows
// and nothing else, whatever it says), optionally narrowed to a scope:
//
//   - Sessions: the most recent RecentSessions (10) sessions, a session being
//     the events that share a session_id feature, or, for events without one,
//     a run of events without a pause longer than SessionGap (30 min), found
//     with window functions. Each has its start and end, event count, most
//     frequent activities, tools, failed tool calls and cost (the sum of
//     -revenue_impact).
//   - Facts: what the person asked Claude to remember, the latest value per
//     metric of insights on the subjects "user" and "project:<name>".
//   - Insights: the other subjects (tool:Bash, ...): per subject and metric
//     the latest value, how many values there are and, for numbers, the trend
//     over the Window (first and last value, change, up/down/flat), most
//     recently updated first, at most MaxInsights (200).
//   - Tools: the most-used tools of called_tool events in the Window, with
//     failures and p50/p95 of duration_ms; Failures: the latest failed tool
//     calls (success false, or an error feature) with their error text.
//   - Tickets: open query tickets (none until the query engine exists).
//
// Sessions, tools and failures come from one bounded read: the latest
// MaxEvents (5,000) events of the Window, or of all time when the Window
// holds no session. Context.Coverage says what was read; when the read is
// capped, tool statistics cover less than the Window and say since when.
// Insight atoms are all read (one aggregate).
//
// A scope narrows events to the sessions in which some event names it (a
// project, workspace or cwd feature equal to it, or a cwd ending in
// /scope), and facts to "user" and "project:<scope>"; other projects'
// subjects are left out, subjects that name no project stay. A scope that no
// event and no insight of the customer names is an [UnknownScopeError]
// listing the scopes that exist.
//
// # SQL
//
// The statements live in sql/*.sql, embedded, one comment per statement
// and per CTE. They are constants: every value (customer aside, which
// CustomerQuery binds itself) is a bound parameter, so no input can change a
// statement and the driver's statement check is cached. Each is bounded by
// LIMITs and maxRows. Two run concurrently per Build: events.sql (sessions,
// tools, failures from the bounded read) and insights.sql. An unknown scope
// costs up to two more (mentions.sql, scopes.sql), a customer idle for the
// whole Window one more (events.sql over all time).
//
// Cost (BenchmarkBuild, a customer with 1M events over a year and 10,000
// insight atoms, 2 vCPUs shared with other work): events.sql is most of a
// Build, ~7 ms of DuckDB planning plus ~2 µs per event read; insights.sql
// ~8 ms. What makes it fast or slow is written next to each statement; in
// short, DuckDB's fixed cost per operator (ms for a hash aggregate or a
// window on a few thousand rows) dominates at this size, so the statements
// use few operators, windows without PARTITION BY, and parse feature_json
// once per event read, never for the whole stream. The remedy beyond that
// is materialization by the loader: a per-session rollup (session key,
// start, end, counts, cost, tool histogram) and daily tool statistics,
// updated as events arrive, would make Build read tens of rows instead of
// thousands of events.
//
// # Render
//
// [Render] turns a Context into one [Page] for get_context: a compact text
// for Claude (a heading per section, one line per item) and the same items
// as structured content, together within RenderRequest.MaxTokens by the
// estimate of [EstimateTokens], paged with an opaque cursor that is tied to
// the context's version, scope and topics.
package memory
