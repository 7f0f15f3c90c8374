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
// Cost (BenchmarkBuild: a customer with 1M events over a year, 82,000 of
// them in the window, and 10,000 insight atoms, on an idle 2-vCPU VM): a
// Build takes ~39 ms p50, ~57 ms p95, of which events.sql is ~29 ms p50 and
// insights.sql ~10 ms (they run concurrently but both want both CPUs).
// That is over the 25 ms target of a cold get_context. DuckDB's fixed costs
// dominate at this size: ~7 ms to bind and plan events.sql on every call,
// about a millisecond per hash aggregate or window even on a few rows, and
// ~1.5 us per event read (sql/events.sql lists what was measured). Reading
// the 5,000 events into Go instead was no faster (~23 ms: the driver's row
// scan costs ~0.3 us per value). What would fix it is materialization
// where events arrive: a per-session rollup (session key, start, end,
// counts, cost, activity and tool histograms) and daily per-tool statistics
// kept up to date by the loader, and the session_id, tool and project
// features as typed columns, so that Build reads tens of rows and parses no
// JSON; and, on the serving side, answering a cold get_context from the
// context the core already materialized in context_cache (one row) rather
// than from Build.
//
// # Render
//
// [Render] turns a Context into one [Page] for get_context: a compact text
// for Claude (a heading per section, one line per item) and the same items
// as structured content, together within RenderRequest.MaxTokens by the
// estimate of [EstimateTokens], paged with an opaque cursor that is tied to
// the context's version, scope and topics.
package memory
