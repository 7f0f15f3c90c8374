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
// than from Build, which is what Store does (below).
//
// # Materialization
//
// [Store] keeps each customer's whole context (scope "") in context_cache
// and is the core's loader behind the cache tiers. A load reads the row
// through CustomerQuery (one row, ~1 ms) and answers from it when the row
// is fresh: younger than MaxAge (1 h), written after the customer's latest
// invalidation, and written by this process (a row left by an earlier
// process may predate an insight that process had no time to act on).
// Otherwise it builds, answers, and writes the row in the background. A
// scoped context is always built.
//
// Versions: a rebuild whose content (everything but AsOf, the window's
// start and the version) hashes the same keeps the version, so cursors stay
// valid across refreshes and restarts; otherwise the version becomes the
// build's time in microseconds (at least the old version plus one).
//
// Freshness: [Store.Invalidate] (a committed insight) distrusts the
// customer's rows at once and queues an eager rebuild. [Store.Run] warms
// on start (every customer with an event or insight in the last WarmFor,
// 7 days: built, written, then OnWarm so the caller fills its caches),
// then every RefreshEvery (5 min) rebuilds the active customers: an event
// or insight, or a get_context that reached this process ([Store.Touch]),
// within ActiveFor (1 h). A customer whose event and insight counts and
// latest times (warehouse.CustomerActivity, from stream_partitions: no
// scan of the stream) are those of its last build is skipped until that
// build is RebuildAfter (30 min) old. A rebuild that changes the version
// calls OnChange, which drops the customer from every cache tier. Rounds
// run at most Concurrency (2) builds at once and take at most
// MaxRefreshCustomers (10,000) / MaxWarmCustomers (1,000) customers, the
// most recently active first; the customers a round leaves out are counted
// (activitybi_memory_round_customers_left_out_total, exactly up to 10,000
// a round) and logged, once per round, at Warn. Metrics:
// activitybi_memory_refresh_duration_seconds (per customer),
// activitybi_memory_refresh_round_duration_seconds (per round),
// activitybi_memory_refreshed_total{kind,result},
// activitybi_memory_loads_total{from} and their durations.
//
// # Render
//
// [Render] turns a Context into one [Page] for get_context: a compact text
// for Claude (a heading per section, one line per item) and the same items
// as structured content, together within RenderRequest.MaxTokens by the
// estimate of [EstimateTokens], paged with an opaque cursor that is tied to
// the context's version, scope and topics.
package memory
