// Package query is activitybi's query engine: every analytical question
// (the submit_query tool) becomes a ticket that a bounded worker pool runs
// asynchronously through the warehouse's customer-scoped read path
// (warehouse.Driver.CustomerQuery), within a timeout, a result byte cap and a
// per-customer budget. Results are kept as files for a while and read back in
// pages that fit a tool's output. Nothing runs on the caller's path.
//
// # Tickets
//
// A ticket is queued, then running, then succeeded, failed or cancelled; a
// finished ticket becomes expired when its result is removed (ResultTTL,
// default 24 h, after it finished) and is forgotten from memory a day later
// (the store keeps it for TicketRetention, 30 days, for provenance). The
// engine does not compile requests itself: Options.Compile (the SafeSQL
// templates and the ActivitySchema dataset compiler) turns a Request into one
// read-only statement with bound values and a canonical Key.
//
// Submit is the only call on the path of submit_query, and does only what
// must be done before a ticket can be promised: compile, check the budget and
// the queue limits, insert, enqueue, wake a worker. Persistence is
// write-behind: tickets are written to Options.Store in one batch once a
// second, so a slow warehouse write (the single writer connection is shared
// with the uploader's loads) never reaches Submit. Only what a restart needs
// is written: a new ticket, its final state, its expiry, its insights; a
// ticket's start and stages only wake its waiters. (One SaveTickets costs
// DuckDB 17-30 ms of CPU whatever its size, BenchmarkSaveTickets. Written
// at every change, BenchmarkTickets' tickets cost 81 ms of CPU through the
// engine against 60 ms run directly; written like this, 77 against 65
// (means of 4 and 8 noisy runs), and at most ~3% of a core in all.) Submit's p99 is about 0.1-0.2 ms on a
// loaded 2-core machine (bench/query.md; the target is 10 ms).
//
// # Fairness
//
// Each customer has a FIFO queue; the Workers (default 4) take the oldest
// ticket of the next customer in a round-robin ring of customers with queued
// tickets. A customer who queues 40 tickets delays another customer's first
// ticket by at most one ticket per worker (TestFairness: with two workers,
// two of alice's 40 tickets finished before bob's second). Limits: QueueLimit
// (default 1,000) tickets waiting in all, MaxQueuedPerCustomer (200) for one
// customer; a full queue is a retryable error wrapping ErrBusy, counted in
// activitybi_query_queue_full_total{scope}.
//
// # Timeouts and cancellation
//
// A ticket's timeout is its template's (Compiled.Timeout), else
// DefaultTimeout (30 s), capped at MaxTimeout (default 5 min; the warehouse
// driver's own statement timeout, 60 s by default, applies too: configure
// the two together). It is a context deadline around every
// warehouse call of the ticket, the sampling runs included, so it bounds the
// ticket's engine time. DuckDB is interrupted when the context ends
// (duckdb-go calls duckdb_interrupt, and again every 500 ms until the call
// returns): TestCancelMidRun and TestTimeout check that the worker is free
// for the next ticket at once. Cancel of a queued ticket takes it off its
// queue; of a running one it cancels the context and waits up to 2 s for the
// worker to record the cancellation. When Run's context ends, running and
// queued tickets fail with a message saying to submit them again.
//
// # Result cap and sampling
//
// Every run reads at most MaxResultRows (100,000) rows into memory (the
// driver wraps the statement in LIMIT), and the rows are measured as the JSON
// lines they are stored as. A result within ResultCap (default 1 MiB) is kept
// as it is. Over the cap the question is answered on a Bernoulli sample of
// the result rows at a rate aimed at 90% of the cap (rate = 0.9 * cap /
// size, rounded down to a millionth, at least MinSampleRate = 0.1%), and the
// ticket says Sampled and SampleRate:
//
//   - When every row was read (not truncated at MaxResultRows) and the
//     template has no SampleSQL of its own, the rows already in memory are
//     sampled (a PCG generator seeded from the query hash), which is the same
//     Bernoulli sample of the same rows that the wrapped statement would
//     return, without running the statement again, and keeps the rows'
//     order. A sample still over the cap (a rare draw) is drawn again at a
//     lower rate.
//   - Otherwise the statement runs again on a sample: Compiled.SampleSQL(rate)
//     when the template samples its own way (e.g. events before
//     aggregation), else the statement wrapped as
//     `SELECT * FROM (q) AS sampled USING SAMPLE p PERCENT (bernoulli, seed)`
//     (DuckDB) or `... SAMPLE BERNOULLI (p)` (Snowflake, which takes no
//     seed for a subquery), p a number the engine formats itself (four
//     decimals), never input. When
//     the first run stopped at MaxResultRows, a `SELECT count(*)` of the
//     statement first tells the real row count, so that the sample is aimed
//     right the first time. At most MaxSampleRuns (3) sampled runs, each
//     aimed lower when the last was still over.
//   - A sample still over the cap at MinSampleRate is cut at the cap and
//     marked Truncated (rows beyond it are missing); so is a last sampled
//     run that still had more than MaxResultRows rows (over 100 million
//     rows at MinSampleRate), whose rows past the bound were never read.
//     A single row larger than the cap fails the ticket: no sample can
//     hold it.
//
// Why bernoulli and not something faster: DuckDB's ways of taking a 0.1%
// row sample of 10 million rows of range() cost, in CPU per statement on
// this repository's 2-core machine (BenchmarkSampleMethods): seeded
// bernoulli 400 ms, unseeded 355 ms, `WHERE random() < r` 422 ms, a hash
// filter `WHERE hash(sampled, seed) % 1000000 < k` 158 ms, system sampling
// 18 ms (a plain count: 11 ms). system samples whole vectors of 2,048 rows,
// so neighbours in the result are kept or dropped together: not a row
// sample. The hash filter keeps or drops identical rows together
// (correlated duplicates). The sampled run only happens for results over
// 100,000 rows or templates that ask for it, where well under a second per
// ten million rows is acceptable for a sound sample.
//
// Memory: a worker holds at most MaxResultRows rows of one run (plus the
// encoded result, at most ResultCap): 100,000 rows of 2 to 5 narrow columns
// are 6.4-21.7 MiB of Go heap (BenchmarkResultMemory), so four workers stay far inside
// the core's 200 MB target. The bound is on rows, not bytes (CustomerQuery
// takes a row limit): a statement returning long values (raw feature_json
// of many events) holds more, which the templates avoid.
//
// # Progress
//
// Ticket.Progress is 0 while queued and 1 once succeeded; Stage says what a
// running ticket does ("running the query", "sampling 12.5% of the 80000
// rows (the result was 7.9 MiB, over the 1.0 MiB cap)", "counting the rows
// (more than 100000)", "writing the result"). While it runs, Progress is an
// estimate from how long earlier runs took (Ticket.ProgressEstimated):
// the same customer's same question (query hash), else the same template,
// as a running average (estimateWeight), kept per engine for maxEstimates
// of each and seeded at start from the stored succeeded tickets. The
// expected time fills 90% of the bar; past it the estimate creeps toward
// 99% and never says done. A question of a template the customer never ran
// has no estimate: -1 (unknown). Wait re-reports every progressStep so a
// progress notification moves.
//
// Why an estimate: DuckDB does report query progress
// (duckdb_query_progress), but not to us: it is only computed when the
// connection-local option enable_progress_bar is on, and the driver opens
// every database with lock_configuration=true (the guard that keeps
// external access off), which refuses SET; a local option cannot be given
// when the database is opened either ("could not set invalid or local
// option for global database config"). duckdb-go also keeps the connection
// handle that duckdb_query_progress needs unexported. In a scratch test
// without the lock, with the handle taken by reflection and polled every
// 100 ms, a 5 s aggregation over a 50M-row table got a single answer
// (96.6%) and a scan of range() only -1: too little for the risk of
// reaching into the driver's internals.
//
// # Results and pages
//
// A succeeded ticket's result is one file (format in result.go: a header
// line, then one JSON array per row). With Options.Results (the core gives
// its artifact store) it is an artifact of the ticket's customer, kind
// query_result, expiring resultStoreSlack after the ticket: Ticket.
// ResultArtifact names it, query_tickets.result_path keeps
// "artifact:<id>" so a restart finds it, and its owner can download it
// whole at /artifacts/{id} (or resources/read activitybi://artifacts/{id}
// over MCP). Expiry and a cancellation after the write delete it (outside
// mu: an expiry found by a lookup is deleted by the next sweep); a failed
// delete is left to the store's own expiry. Without Options.Results it is
// the file <Dir>/<ticket id>.ndjson, written atomically with mode 0600 in
// a 0700 directory, removed when the ticket expires; files of tickets the
// engine does not know are removed at start (results of an earlier run
// without the store are still read from there). Result reads a
// page of rows [offset, offset+limit) within MaxPageBytes (16 KiB) of row
// JSON: fewer rows than asked when they do not fit, and a single row larger
// than a page has its long values clipped (Page.Clipped). NextOffset is -1
// after the last page. Numbers come back exact (json.Number), times as RFC
// 3339 strings.
//
// # Budgets
//
// Per customer (Budget): PerMinute submissions in any rolling minute
// (default 30), Concurrent unfinished tickets (default 10) and
// EngineSecondsPerDay of engine time per UTC day (default 1,800; counted
// when a ticket finishes, so the tickets running when it runs out — at most
// Workers — can overshoot it by their timeouts; a queued ticket that would
// start after it ran out fails instead, with the budget's message;
// recounted at start from the stored tickets finished that day). A spent
// budget is a *BudgetError naming the budget, its limit, what is used and
// when to retry, counted in activitybi_query_budget_refusals_total{budget}.
//
// # Provenance
//
// Every ticket has QueryHash(customer, Key): the same customer asking the
// same question (template and normalized params, or canonical dataset) gets
// the same hash in every process and release of the hash's version, and
// different customers never share one. HashKnown tells whether the customer
// has a ticket with a hash (in memory, else in the store, expired tickets
// included), for log_insight's provenance_query_hash; AddInsight lists an
// insight on the customer's tickets with that hash (at most
// MaxInsightsPerTicket), which their status then shows.
//
// # Persistence and restarts
//
// Tickets are rows of query_tickets (warehouse.TicketStore). New loads the
// unexpired ones; a ticket that was queued or running when the earlier run
// ended fails with "the core restarted before the query finished; submit it
// again". A failed store write keeps the tickets changed, and the next flush
// (a second later) writes them; Run's exit writes what is left within 10 s.
// A crash forgets the tickets of its last second.
//
// # Audit and metrics
//
// Options.Audit receives every submission (accepted or refused), finished
// ticket (run_query), result page and cancellation, and every result read
// or cancel of a ticket the customer does not have (not_found: the id
// asked for as the target). Metrics
// (activitybi_query_*): tickets by state, finished tickets by state,
// submissions by outcome, queue depth, run duration by state, sampled and
// truncated results, sample runs, budget refusals by budget, full queues by
// scope, timeouts, store errors, dropped insight ids, clipped pages.
//
// Lock order: Engine.mu is the only lock; no store, warehouse, audit or
// file-writing call is made while holding it (expiry removes a result file
// under it, a local unlink).
package query
